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
    CHECK(fabsf(lr_at(&s, 2) - 0.5f) < 1e-7f);
    CHECK(fabsf(lr_at(&s, 4) - 1.0f) < 1e-7f);
    CHECK(fabsf(lr_at(&s, 12) - (0.1f + 0.9f * 0.5f)) < 1e-6f); /* halfway: cos(pi/2) = 0 */
    CHECK(fabsf(lr_at(&s, 20) - 0.1f) < 1e-6f);
    s.kind = LR_LINEAR;
    CHECK(fabsf(lr_at(&s, 12) - (0.1f + 0.9f * 0.5f)) < 1e-6f);
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
    CHECKF(test_rel_error(p, q, N) < 1e-5, "AdamW vs formula: %.3g", test_rel_error(p, q, N));
}

int main(void) {
    RUN_TEST(test_lr_schedule);
    RUN_TEST(test_block_orders);
    RUN_TEST(test_sgd_in_storage);
    RUN_TEST(test_adamw_formula);
    return test_result();
}
