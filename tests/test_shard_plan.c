/* The per-rank memory plan (memory_plan_predict_ranks, `badam plan --world-size N
 * [--shard-weights]`) and the sharded-weights layout it counts (src/train/shard.h):
 *  - Llama-3-70B (configs/llama-3-70b): 70,553,706,496 parameters; on 4 ranks every unit's
 *    shard and the gather buffer equal sizes worked out by hand from the config's dimensions;
 *    with --recompute the per-rank total is under 80 GB (the README's claim), while whole
 *    weights on every rank (plain data parallel) are not;
 *  - a unit that N does not divide is padded (ceil), tied heads leave the last unit the norm;
 *  - N = 1 unsharded is the one-process plan, N = 2 is the one-process plan of B / 2 rows;
 *  - refusals: a method that cannot shard (named), a batch N does not divide; and the CLI. */
#include <stdlib.h>
#include <string.h>

#include "badam/memory.h"
#include "badam/train.h"
#include "testutil.h"
#include "train/shard.h"

static int load(const char *rel, llama_config *mc) {
    const char *path = test_source_path(rel);
    badam_error err = {0};
    if (!path || llama_config_load(path, mc, &err)) {
        fprintf(stderr, "%s: %s\n", rel, err.message);
        return 1;
    }
    return 0;
}

static train_config config(int batch, int seq, int recompute) {
    train_config c;
    train_config_defaults(&c);
    c.batch_size = batch, c.seq_len = seq, c.recompute = recompute;
    return c;
}

/* By hand: embedding and head 128256 x 8192 = 1,050,673,152; a layer 855,654,400 (q, o 8192^2;
 * k, v 8192 x 1024; gate, up, down 8192 x 28672; two norms of 8192); final norm 8192. */
static void test_70b_layout(void) {
    llama_config mc;
    if (load("configs/llama-3-70b/config.json", &mc)) {
        test_failures++;
        return;
    }
    CHECK(llama_param_count(&mc) == 70553706496ull);
    llama_model *m = NULL;
    badam_error err = {0};
    CHECK_OK(llama_model_describe(&mc, BADAM_DTYPE_BF16, &m, &err), &err);
    shard_layout lay;
    badam_status st = shard_layout_of(m, 4, &lay, &err);
    CHECK(st == BADAM_OK);
    CHECK(lay.n_units == 82);
    /* bf16 bytes (every tensor a multiple of 64 bytes, so unpadded): 80 x layer / 4 sharded,
     * embedding and (final norm + head) whole, two buffers of one layer */
    size_t embed = 2 * 1050673152ull, layer = 2 * 855654400ull, last = 2 * (8192 + 1050673152ull);
    CHECKF(lay.shard_bytes == 80 * (layer / 4), "%zu", lay.shard_bytes);
    CHECK(lay.whole_bytes == embed + last);
    CHECK(lay.largest_unit == layer);
    CHECK(lay.gather_bytes == 2 * layer);
    CHECK(lay.weight_bytes == 80 * (layer / 4) + embed + last + 2 * layer);
    CHECK(shard_layout_of(m, 0, &lay, &err) == BADAM_E_INVALID);
    llama_model_free(m);
}

static void test_70b_plan(void) {
    llama_config mc;
    if (load("configs/llama-3-70b/config.json", &mc)) {
        test_failures++;
        return;
    }
    train_config c = config(4, 1024, 1);
    memory_plan whole, shard;
    badam_error err = {0};
    CHECK_OK(memory_plan_predict_ranks(&mc, &c, 4, 0, &whole, &err), &err);
    CHECK_OK(memory_plan_predict_ranks(&mc, &c, 4, 1, &shard, &err), &err);
    CHECK(whole.bytes[BADAM_MEM_WEIGHTS] > 140000000000ull);
    size_t layer = 2 * 855654400ull;
    CHECKF(shard.bytes[BADAM_MEM_WEIGHTS] ==
               80 * (layer / 4) + 2 * 1050673152ull + 2 * (8192 + 1050673152ull) + 2 * layer,
           "%zu", shard.bytes[BADAM_MEM_WEIGHTS]);
    /* the block's master, gradient and moments are not sharded: the unsharded plan's */
    CHECK(shard.bytes[BADAM_MEM_GRADIENTS] == whole.bytes[BADAM_MEM_GRADIENTS]);
    CHECK(shard.bytes[BADAM_MEM_MASTER] == whole.bytes[BADAM_MEM_MASTER]);
    CHECK(shard.bytes[BADAM_MEM_OPTIMIZER] == whole.bytes[BADAM_MEM_OPTIMIZER]);
    CHECK(shard.bytes[BADAM_MEM_ACTIVATIONS] == whole.bytes[BADAM_MEM_ACTIVATIONS]);
    CHECKF(shard.total < 80000000000ull, "per-rank total %zu", shard.total);
    CHECKF(whole.total > 80000000000ull, "per-rank total %zu", whole.total);
    fprintf(stderr,
            "70B on 4 ranks, recompute, 1 x 1024 tokens per rank: %.2f GB per rank "
            "(weights %.2f GB), unsharded %.2f GB\n",
            shard.total / 1e9, shard.bytes[BADAM_MEM_WEIGHTS] / 1e9, whole.total / 1e9);
}

static size_t up(size_t x, size_t q) {
    return (x + q - 1) / q * q;
}

/* SmolLM-135M: tied (the last unit is the final norm alone: 576 elements), an embedding of
 * 49152 x 576 and 30 layers of 3,540,096 elements. */
static void test_padding_tied(void) {
    llama_config mc;
    if (load("configs/smollm-135m/config.json", &mc)) {
        test_failures++;
        return;
    }
    llama_model *m = NULL;
    badam_error err = {0};
    CHECK_OK(llama_model_describe(&mc, BADAM_DTYPE_BF16, &m, &err), &err);
    CHECK(shard_unit_of(m, m->embed) == 0);
    CHECK(shard_unit_of(m, m->final_norm) == mc.n_layers + 1);
    shard_layout lay;
    CHECK_OK(shard_layout_of(m, 7, &lay, &err), &err);
    size_t layer = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].layer == 0) layer += m->params[i].numel;
    CHECK(layer == 3540096);
    /* bf16 bytes, every tensor a multiple of 64 bytes: a layer of 7,080,192 bytes is a multiple
     * of 4 x 7 = 28, its shard of 1,011,456 a multiple of 64; the embedding (56,623,104 bytes)
     * and the final norm (1,152) are whole, padded to 28 */
    layer *= 2; /* bytes */
    CHECK(shard_unit_bytes(m, 1, 7) == layer);
    CHECK(shard_unit_bytes(m, 0, 7) == up(56623104, 28));
    CHECK(shard_unit_bytes(m, mc.n_layers + 1, 7) == up(1152, 28));
    CHECKF(lay.shard_bytes == 30 * (layer / 7), "%zu", lay.shard_bytes);
    CHECK(lay.whole_bytes == up(up(56623104, 28), 64) + up(up(1152, 28), 64));
    CHECK(lay.largest_unit == layer);
    llama_model_free(m);
}

static void test_unsharded_is_one_process(void) {
    llama_config mc;
    if (load("configs/smollm-135m/config.json", &mc)) {
        test_failures++;
        return;
    }
    badam_error err = {0};
    for (int method = 0; method < METHOD_COUNT; method++) {
        train_config c = config(4, 64, method & 1);
        c.method = (train_method)method;
        memory_plan one, ranks1, rows2, ranks2;
        CHECK_OK(memory_plan_predict(&mc, &c, 4, 64, &one, &err), &err);
        CHECK_OK(memory_plan_predict(&mc, &c, 2, 64, &rows2, &err), &err);
        CHECK_OK(memory_plan_predict_ranks(&mc, &c, 1, 0, &ranks1, &err), &err);
        CHECK_OK(memory_plan_predict_ranks(&mc, &c, 2, 0, &ranks2, &err), &err);
        CHECKF(!memcmp(&one, &ranks1, sizeof one), "%s", train_method_name(c.method));
        CHECKF(!memcmp(&rows2, &ranks2, sizeof one), "%s", train_method_name(c.method));
        memory_plan s;
        badam_status st = memory_plan_predict_ranks(&mc, &c, 2, 1, &s, &err);
        int shards = c.method == METHOD_BADAM || c.method == METHOD_SGD_BCD;
        CHECKF(st == (shards ? BADAM_OK : BADAM_E_UNSUPPORTED), "%s: %d",
               train_method_name(c.method), (int)st);
        if (!shards)
            CHECKF(strstr(err.message, train_method_name(c.method)) != NULL, "%s", err.message);
        if (shards) CHECK(s.bytes[BADAM_MEM_WEIGHTS] < one.bytes[BADAM_MEM_WEIGHTS]);
    }
    train_config c = config(3, 64, 0);
    memory_plan p;
    CHECK(memory_plan_predict_ranks(&mc, &c, 2, 0, &p, &err) == BADAM_E_INVALID);
    CHECKF(strstr(err.message, "--batch-size 3") != NULL, "%s", err.message);
}

static void test_cli(void) {
    const char *dir = test_workdir("shard_plan");
    static char out[16384];
    int rc = test_run_cli(dir, NULL,
                          "plan --model configs/llama-3-70b --batch-size 4 --world-size 4 "
                          "--shard-weights --recompute",
                          out, sizeof out);
    CHECKF(rc == 0 && strstr(out, "per rank of 4") && strstr(out, "badam") &&
               !strstr(out, "  adam "),
           "rc %d: %s", rc, out);
    rc =
        test_run_cli(dir, NULL, "plan --model configs/llama-3-70b --world-size 3", out, sizeof out);
    CHECKF(rc == 2 && strstr(out, "--world-size 3"), "rc %d: %s", rc, out);
    rc = test_run_cli(dir, NULL,
                      "plan --model configs/llama-3-70b --batch-size 4 --world-size 4 "
                      "--shard-weights --method adam",
                      out, sizeof out);
    CHECKF(rc == 1 && strstr(out, "method adam"), "rc %d: %s", rc, out);
}

int main(void) {
    if (!test_source_path("configs")) {
        fprintf(stderr, "skip: BADAM_SOURCE_DIR is not set\n");
        return TEST_SKIP_CODE;
    }
    RUN_TEST(test_70b_layout);
    RUN_TEST(test_70b_plan);
    RUN_TEST(test_padding_tied);
    RUN_TEST(test_unsharded_is_one_process);
    RUN_TEST(test_cli);
    return test_result();
}
