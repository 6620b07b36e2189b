/* Optimizer building blocks: the LR schedule's values, block orders (every block once per block
 * epoch for random; ascending/descending/fixed), K auto, the in-storage SGD update equal to an
 * fp32 update rounded back, and AdamW against its formula written out. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "badam/optim.h"
#include "testutil.h"

static void test_lr_schedule(void) {
    lr_schedule s = {LR_COSINE, 1.0f, 4, 20, 0.1f};
    CHECK(lr_at(&s, 0) == 0.0f); /* Hugging Face: the first warmup step has lr 0 */
    CHECK_NEAR(lr_at(&s, 2), 0.5, 1e-7, 1e-7, "warmup lr");
    CHECK_NEAR(lr_at(&s, 4), 1.0, 1e-7, 1e-7, "peak lr");
    CHECK_NEAR(lr_at(&s, 12), 0.1 + 0.9 * 0.5, 1e-7, 1e-6, "cosine lr halfway"); /* cos(pi/2) = 0 */
    CHECK_NEAR(lr_at(&s, 20), 0.1, 1e-7, 1e-6, "cosine lr at the end");
    s.kind = LR_LINEAR;
    CHECK_NEAR(lr_at(&s, 12), 0.1 + 0.9 * 0.5, 1e-7, 1e-6, "cosine lr halfway, again");
    s.kind = LR_CONSTANT;
    CHECK(lr_at(&s, 15) == 1.0f && lr_at(&s, 1) == 0.25f);
}

static void test_block_orders(void) {
    enum { D = 7 };
    for (uint64_t epoch = 0; epoch < 5; epoch++) {
        int seen[D] = {0};
        for (int i = 0; i < D; i++)
            seen[block_for_visit(BLOCK_ORDER_RANDOM, D, -1, 9, epoch * D + i)]++;
        for (int b = 0; b < D; b++)
            CHECKF(seen[b] == 1, "epoch %llu block %d seen %d times", (unsigned long long)epoch, b,
                   seen[b]);
    }
    int differ = 0;
    for (int i = 0; i < D; i++)
        differ += block_for_visit(BLOCK_ORDER_RANDOM, D, -1, 9, (uint64_t)i) !=
                  block_for_visit(BLOCK_ORDER_RANDOM, D, -1, 9, (uint64_t)(D + i));
    CHECK(differ > 0); /* a fresh permutation every block epoch */
    CHECK(block_for_visit(BLOCK_ORDER_RANDOM, D, 3, 9, 0) == 3);
    for (int v = 0; v < 20; v++) {
        CHECK(block_for_visit(BLOCK_ORDER_ASCENDING, D, -1, 0, (uint64_t)v) == v % D);
        CHECK(block_for_visit(BLOCK_ORDER_DESCENDING, D, -1, 0, (uint64_t)v) == D - 1 - v % D);
        CHECK(block_for_visit(BLOCK_ORDER_FIXED, D, 2, 0, (uint64_t)v) == 2);
    }
    CHECK(block_switch_every_auto(1000, 8, 32) == 50);
    CHECK(block_switch_every_auto(100000, 8, 32) == 100);
    CHECK(block_switch_every_auto(20000, 8, 32) == 78);
}

static void test_sgd_in_storage(void) {
    enum { N = 1000 };
    test_rng rng;
    test_rng_seed(&rng, 4);
    float w[N], g[N], master[N];
    uint16_t stored[N], expect[N];
    test_fill_normal(&rng, w, N, 0.5f);
    test_fill_normal(&rng, g, N, 1.0f);
    badam_convert(stored, BADAM_DTYPE_BF16, w, BADAM_DTYPE_F32, N);
    badam_convert(master, BADAM_DTYPE_F32, stored, BADAM_DTYPE_BF16, N);
    sgd_update(master, g, N, 0.01f, 0.5f, 0.1f, expect, BADAM_DTYPE_BF16);
    sgd_update_stored(stored, BADAM_DTYPE_BF16, g, N, 0.01f, 0.5f, 0.1f);
    CHECK(!memcmp(stored, expect, sizeof stored));
}

static void test_adamw_formula(void) {
    enum { N = 257 };
    test_rng rng;
    test_rng_seed(&rng, 5);
    float p[N], m[N] = {0}, v[N] = {0}, g[N], q[N];
    test_fill_normal(&rng, p, N, 1.0f);
    memcpy(q, p, sizeof p);
    double qm[N] = {0}, qv[N] = {0};
    adamw_hparams h = {0.9f, 0.999f, 1e-8f};
    for (int step = 1; step <= 3; step++) {
        test_fill_normal(&rng, g, N, 1.0f);
        adamw_update(p, m, v, g, N, 1e-2f, 0.5f, 0.1f, step, &h, NULL, BADAM_DTYPE_F32);
        for (int i = 0; i < N; i++) {
            double gi = g[i] * 0.5, bc1 = 1 - pow(0.9, step), bc2 = 1 - pow(0.999, step);
            q[i] = (float)(q[i] * (1 - 1e-2 * 0.1));
            qm[i] = 0.9 * qm[i] + 0.1 * gi;
            qv[i] = 0.999 * qv[i] + 0.001 * gi * gi;
            q[i] = (float)(q[i] - 1e-2 / bc1 * qm[i] / (sqrt(qv[i]) / sqrt(bc2) + 1e-8));
        }
    }
    CHECK_CLOSE(p, q, N, 1e-7, 1e-5, "AdamW vs formula");
}

/* join(split(p)) == p bit for bit, over every exponent, both signs, ties, the largest finite
 * values (whose weight rounds to infinity), zeros and subnormals; the weight is p rounded to
 * nearest (RNE except exact ties, which go away from zero). */
static void test_master_split_exact(void) {
    test_rng rng;
    test_rng_seed(&rng, 6);
    const uint32_t special[] = {0u,          0x80000000u, 1u,          0x00008000u, 0x7f7fffffu,
                                0xff7fffffu, 0x7f7f8000u, 0x3f808000u, 0x3f818000u, 0x7f800000u};
    int n_bad = 0, n_round = 0;
    for (int i = 0; i < 200000; i++) {
        uint32_t u = i < 10 ? special[i] : test_rng_u32(&rng);
        if ((u & 0x7fffffffu) > 0x7f800000u) continue; /* NaN payloads are not kept */
        float p;
        memcpy(&p, &u, 4);
        uint16_t w, lo;
        badam_master_split(p, &w, &lo);
        float back = badam_master_join(w, lo);
        if (memcmp(&back, &p, 4)) n_bad++;
        float wf = badam_bf16_to_f32(w);
        uint16_t rne = badam_f32_to_bf16(p);
        /* differs from round-to-nearest-even only on exact ties */
        if (w != rne && ((u & 0xffffu) != 0x8000u || fabsf(wf) < fabsf(p))) n_round++;
    }
    CHECKF(n_bad == 0, "%d values not rebuilt exactly", n_bad);
    CHECKF(n_round == 0, "%d weights not rounded to nearest", n_round);
}

/* AdamW and SGD on a split master give the fp32-master result bit for bit (the fp32 master
 * carried alongside as the oracle), over several steps. */
static void test_master_split_updates(void) {
    enum { N = 4099 };
    test_rng rng;
    test_rng_seed(&rng, 7);
    static float master[N], m1[N], v1[N], m2[N], v2[N], g[N], w0[N];
    static uint16_t weight[N], lo[N], expect[N];
    test_fill_normal(&rng, w0, N, 0.3f);
    badam_convert(weight, BADAM_DTYPE_BF16, w0, BADAM_DTYPE_F32, N);
    badam_convert(master, BADAM_DTYPE_F32, weight, BADAM_DTYPE_BF16, N);
    memset(lo, 0, sizeof lo);
    adamw_hparams h = {0.9f, 0.999f, 1e-8f};
    for (int step = 1; step <= 6; step++) {
        test_fill_normal(&rng, g, N, 1.0f);
        if (step % 3 == 0) {
            sgd_update(master, g, N, 1e-3f, 0.5f, 0.1f, expect, BADAM_DTYPE_BF16);
            sgd_update_split(weight, lo, g, N, 1e-3f, 0.5f, 0.1f);
        } else {
            adamw_update(master, m1, v1, g, N, 1e-3f, 0.5f, 0.1f, step, &h, expect,
                         BADAM_DTYPE_BF16);
            adamw_update_split(weight, lo, m2, v2, g, N, 1e-3f, 0.5f, 0.1f, step, &h);
        }
        int bad_master = 0, bad_weight = 0;
        for (int i = 0; i < N; i++) {
            float p = badam_master_join(weight[i], lo[i]);
            bad_master += memcmp(&p, &master[i], 4) != 0;
            bad_weight += weight[i] != expect[i] && (lo[i] != 0x8000u);
        }
        CHECKF(bad_master == 0, "step %d: %d masters differ", step, bad_master);
        CHECKF(bad_weight == 0, "step %d: %d weights differ (not at ties)", step, bad_weight);
        CHECK(!memcmp(m1, m2, sizeof m1) && !memcmp(v1, v2, sizeof v1));
    }
}

int main(void) {
    RUN_TEST(test_master_split_exact);
    RUN_TEST(test_master_split_updates);
    RUN_TEST(test_lr_schedule);
    RUN_TEST(test_block_orders);
    RUN_TEST(test_sgd_in_storage);
    RUN_TEST(test_adamw_formula);
    return test_result();
}
