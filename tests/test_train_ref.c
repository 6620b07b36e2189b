/* The trainer against the PyTorch training reference (tests/ref/train_ref.py): the same tiny
 * model, data in file order, the same block order; final parameters within 1e-5 relative (fp32
 * weights) after >= 3 block switches for ascending, descending and a fixed random permutation;
 * bf16 weights within bf16 tolerance; Adam, SGD-BCD, LoRA (PEFT adapters) and LOMO (equal to
 * SGD on every layer) likewise; GaLore (projector refreshes, tall and wide matrices, and the
 * per-layer variant). Skips without torch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "badam/optim.h"
#include "io/safetensors.h"
#include "model_fixtures.h"
#include "ref_compare.h"

static char g_fixture[1024], g_model[1024];

/* A training config shared by both sides; method-specific fields appended by callers. */
typedef struct run_spec {
    const char *name, *method, *dtype, *order; /* order: ascending / descending / random */
    int steps, K, accum;
    float lr, eps, clip, wd;
    const char *schedule;
    int warmup;
    const char *extra_cli;
    double tol;
    double min_move; /* 0: 10 x tol */
} run_spec;

/* The reference's block list: one list of HF names per layer, and the visit order. */
static int write_ref_config(const run_spec *s, const char *path, int *order_out, int n_visits) {
    badam_error err = {0};
    char cfgpath[2048];
    snprintf(cfgpath, sizeof cfgpath, "%s/config.json", g_model);
    llama_config mc;
    llama_model *m = NULL;
    if (llama_config_load(cfgpath, &mc, &err) ||
        llama_model_describe(&mc, BADAM_DTYPE_F32, &m, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f,
            "{\"method\": \"%s\", \"dtype\": \"%s\", \"lr\": %g, \"eps\": %g, "
            "\"weight_decay\": %g, \"schedule\": \"%s\", \"warmup_steps\": %d, \"clip\": %g, "
            "\"batch_size\": 2, \"grad_accum\": %d, \"max_steps\": %d, \"switch_every\": %d, "
            "\"lora_rank\": 4, \"lora_alpha\": 8, \"galore_rank\": 4, \"galore_update_gap\": 3, "
            "\"galore_scale\": 0.25, \"adapter_size\": 8",
            !strcmp(s->method, "lomo") ? "sgd-bcd" : s->method, s->dtype, s->lr, s->eps, s->wd,
            s->schedule, s->warmup, s->clip, s->accum, s->steps, s->K);
    if (s->extra_cli && strstr(s->extra_cli, "--reference-compat"))
        fprintf(f, ", \"reference_compat\": true");
    int L = mc.n_layers;
    fprintf(f, ", \"blocks\": [");
    if (!strcmp(s->method, "lomo")) { /* one block: every layer parameter and the final norm */
        fprintf(f, "[");
        for (int i = 0, first = 1; i < m->n_params; i++)
            if (m->params[i].layer >= 0 || i == m->final_norm)
                fprintf(f, "%s\"%s\"", first ? "" : ", ", m->params[i].name), first = 0;
        fprintf(f, "]], \"block_order\": [0]");
    } else {
        for (int l = 0; l < L; l++) {
            fprintf(f, "%s[", l ? ", " : "");
            for (int i = 0, first = 1; i < m->n_params; i++)
                if (m->params[i].layer == l)
                    fprintf(f, "%s\"%s\"", first ? "" : ", ", m->params[i].name), first = 0;
            fprintf(f, "]");
        }
        block_order order;
        block_order_parse(s->order ? s->order : "ascending", &order, &err);
        fprintf(f, "], \"block_order\": [");
        for (int v = 0; v < n_visits; v++) {
            order_out[v] = block_for_visit(order, L, -1, 42, (uint64_t)v);
            fprintf(f, "%s%d", v ? ", " : "", order_out[v]);
        }
        fprintf(f, "]");
    }
    fprintf(f, "}\n");
    fclose(f);
    llama_model_free(m);
    return 0;
}

/* Absolute tolerance on parameters (values of order 0.01 to 1): it only decides for a tensor that
 * is all zeros or tiny in the reference. */
#define PARAM_ATOL 1e-7

static void check_run(const run_spec *s) {
    char dir[1024], cmd[8192], cfg[2048];
    snprintf(dir, sizeof dir, "%s", test_workdir(s->name));
    snprintf(cfg, sizeof cfg, "%s/ref_config.json", dir);
    int order[64];
    int visits = s->steps / s->K + 2; /* the reference-compat schedule has one more visit */
    if (write_ref_config(s, cfg, order, visits)) {
        CHECKF(0, "%s: cannot write the reference config", s->name);
        return;
    }
    const char *src = test_source_path("tests/ref");
    /* LoRA and bottleneck adapters start from an adapter fixture on both sides */
    int bottleneck = !strcmp(s->method, "adapter");
    int lora = !strcmp(s->method, "lora") || bottleneck;
    char adapter[1100] = "";
    if (lora) {
        snprintf(adapter, sizeof adapter, "%s/init_adapter", dir);
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 %s/make_train_fixture.py --adapter %s --model %s --rank 4 "
                 "--alpha 8 --seed 3%s",
                 src, adapter, g_model, bottleneck ? " --bottleneck 8" : "");
        if (ref_run(cmd)) {
            CHECKF(0, "%s: adapter fixture failed", s->name);
            return;
        }
    }
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/train_ref.py --model %s --data %s/train.jsonl --config %s "
             "--out %s/ref %s%s > %s/ref.log 2>&1",
             src, g_model, g_fixture, cfg, dir, lora ? "--init-adapter " : "", adapter, dir);
    if (ref_run(cmd)) {
        CHECKF(0, "%s: train_ref.py failed (see %s/ref.log)", s->name, dir);
        return;
    }
    snprintf(cmd, sizeof cmd,
             "%s train --model %s --data %s/train.jsonl --out %s/ours --method %s --dtype %s "
             "--lr %g --eps %g --weight-decay %g --schedule %s --warmup %d --clip %g "
             "--batch-size 2 --grad-accum %d --max-steps %d --switch-every %d --switch-mode %s "
             "--seq-len 64 --seed 42 --no-shuffle --no-group-by-length --quiet "
             "--lora-rank 4 --lora-alpha 8 --galore-rank 4 --galore-update-gap 3 "
             "--galore-scale 0.25 --adapter-size 8 %s%s %s > %s/ours.log 2>&1",
             getenv("BADAM_CLI"), g_model, g_fixture, dir, s->method,
             !strcmp(s->dtype, "bfloat16") ? "bf16" : "fp32", s->lr, s->eps, s->wd, s->schedule,
             s->warmup, s->clip, s->accum, s->steps, s->K, s->order ? s->order : "ascending",
             lora ? "--init-adapter " : "", adapter, s->extra_cli ? s->extra_cli : "", dir);
    if (ref_run(cmd)) {
        CHECKF(0, "%s: badam train failed (see %s/ours.log)", s->name, dir);
        return;
    }
    char ours[2048], ref[2048];
    size_t n = 0;
    snprintf(ours, sizeof ours, "%s/ours/model.safetensors", dir);
    snprintf(ref, sizeof ref, "%s/ref/model.safetensors", dir);
    if (lora) {
        snprintf(ours, sizeof ours, "%s/ours/adapter/adapter_model.safetensors", dir);
        snprintf(ref, sizeof ref, "%s/ref/adapter_model.safetensors", dir);
    }
    double e = ref_compare_files(ours, ref, s->name, PARAM_ATOL, s->tol, &n);
    fprintf(stderr,
            "  %-22s %zu tensors, worst |ours - ref| / (atol %.0e + rtol %.0e * max|ref|) = %.3g\n",
            s->name, n, PARAM_ATOL, s->tol, e);
    CHECKF(e <= 1.0, "%s: parameters differ from the reference by %.3g x the tolerance", s->name,
           e);
    CHECK(n > 0);
    /* Training must have moved the parameters well beyond the tolerance. */
    char start[2048];
    if (lora)
        snprintf(start, sizeof start, "%s/adapter_model.safetensors", adapter);
    else
        snprintf(start, sizeof start, "%s/model.safetensors", g_model);
    /* ratio > 1: some tensor moved by more than min_move * its largest start value */
    double min_move = s->min_move > 0 ? s->min_move : 10 * s->tol;
    double moved = ref_compare_files(ours, start, s->name, 0, min_move, &n);
    CHECKF(moved > 1.0, "%s: parameters moved only %.3g x %.3g of their scale from the start",
           s->name, moved, min_move);
}

static void setup(void) {
    if (ref_make_train_fixture("train-ref-model", "train-ref-data", g_model, sizeof g_model,
                               g_fixture, sizeof g_fixture))
        test_failures++;
}

static void test_badam_orders(void) {
    const char *orders[] = {"ascending", "descending", "random"};
    for (int i = 0; i < 3; i++) {
        char name[64];
        snprintf(name, sizeof name, "badam-fp32-%s", orders[i]);
        run_spec s = {name,  "badam", "float32", orders[i], 8, 2,    2,    1e-3f,
                      1e-5f, 0.5f,    0.01f,     "cosine",  2, NULL, 1e-5, 0};
        check_run(&s);
    }
}

/* --reference-compat against the reference with the BlockOptimizer's semantics: the first block
 * gets K - 1 steps, norm weights decay. K = 3 over 8 steps visits blocks for 2, 3, 3 steps
 * (default: 3, 3, 2), and the weight decay of 0.1 reaches the RMSNorm weights. Also a K = 1 run,
 * where both schedules give every block one step and only the decay groups differ. */
static void test_badam_reference_compat(void) {
    run_spec s = {
        "badam-compat", "badam",    "float32", "ascending",          8,    3, 1, 1e-3f, 1e-5f, 1.0f,
        0.1f,           "constant", 0,         "--reference-compat", 1e-5, 0};
    check_run(&s);
    run_spec k1 = {"badam-compat-k1",
                   "badam",
                   "float32",
                   "ascending",
                   4,
                   1,
                   1,
                   1e-3f,
                   1e-5f,
                   0.0f,
                   0.1f,
                   "cosine",
                   0,
                   "--reference-compat",
                   1e-5,
                   0};
    check_run(&k1);
}

static void test_badam_bf16(void) {
    run_spec s = {
        "badam-bf16", "badam", "bfloat16", "ascending", 8,    2,    1,   3e-3f, 1e-5f,
        1.0f,         0.0f,    "constant", 0,           NULL, 8e-3, 2e-2}; /* one bf16 ulp of the
                                                                              largest entries */
    check_run(&s);
}

static void test_adam_and_sgd(void) {
    run_spec adam1 = {"adam-1step", "adam", "float32", NULL,       1, 1,    1,    1e-3f,
                      1e-5f,        0.0f,   0.01f,     "constant", 0, NULL, 1e-5, 0};
    check_run(&adam1);
    run_spec adam = {"adam-6steps", "adam", "float32", NULL,     6, 1,    2,    1e-3f,
                     1e-5f,         1.0f,   0.01f,     "linear", 2, NULL, 1e-5, 0};
    check_run(&adam);
    run_spec sgd = {"sgd-bcd", "sgd-bcd", "float32", "descending", 8, 2,    1,    5e-2f,
                    1e-8f,     0.0f,      0.0f,      "cosine",     0, NULL, 1e-5, 0};
    check_run(&sgd);
}

static void test_lora_and_lomo(void) {
    run_spec lora1 = {"lora-1step", "lora", "float32", NULL, 1,          1, 1,
                      1e-3f,        1e-5f,  0.0f,      0.0f, "constant", 0, "--lora-targets all",
                      1e-5,         0};
    check_run(&lora1);
    run_spec lora = {"lora-5steps", "lora", "float32", NULL,  5,          1, 1,
                     1e-3f,         1e-5f,  1.0f,      0.01f, "constant", 0, "--lora-targets all",
                     1e-5,          0};
    check_run(&lora);
    run_spec lomo = {"lomo", "lomo", "float32", NULL,       6, 1000,       1,    5e-2f,
                     1e-8f,  0.0f,   0.0f,      "constant", 0, "--clip 0", 1e-5, 0};
    check_run(&lomo);
}

/* GaLore, rank 4 with a projector refresh every 3 steps (steps 1, 4, 7 of 8): q and o (48x48) and
 * gate, up (80x48) project from the right, k, v (24x48) and down (48x80) from the left; the
 * embedding, head and norms by AdamW. With clipping and accumulation, and the per-layer variant
 * (updates inside backward: no clip, no accumulation) against the same reference without clip;
 * bf16 weights (split masters) within bf16 tolerance. */
static void test_galore(void) {
    run_spec g = {"galore", "galore", "float32", NULL,     8, 1,    2,    1e-2f,
                  1e-5f,    1.0f,     0.01f,     "cosine", 2, NULL, 1e-5, 0};
    check_run(&g);
    run_spec pl = {"galore-per-layer",
                   "galore",
                   "float32",
                   NULL,
                   7,
                   1,
                   1,
                   1e-2f,
                   1e-5f,
                   0.0f,
                   0.01f,
                   "constant",
                   0,
                   "--clip 0 --galore-per-layer",
                   1e-5,
                   0};
    check_run(&pl);
    run_spec b = {"galore-bf16", "galore", "bfloat16", NULL, 8,    1,    1,   1e-2f, 1e-5f,
                  1.0f,          0.0f,     "constant", 0,    NULL, 8e-3, 2e-2}; /* as badam-bf16 */
    check_run(&b);
}

/* Bottleneck adapters (width 8, ReLU) after attention and MLP of every layer, from a random
 * nonzero start (so every tensor has a gradient at once): one step, and six with clipping, weight
 * decay (matrices only) and accumulation; fp32 and bf16 base weights (the adapters are fp32
 * either way, so both within 1e-5). */
static void test_adapter(void) {
    run_spec one = {"adapter-1step", "adapter", "float32", NULL,       1, 1,    1,    1e-3f,
                    1e-5f,           0.0f,      0.0f,      "constant", 0, NULL, 1e-5, 0};
    check_run(&one);
    run_spec six = {
        "adapter-6steps", "adapter", "float32", NULL, 6, 1, 2, 3e-3f, 1e-5f, 1.0f, 0.01f,
        "cosine",         1,         NULL,      1e-5, 0};
    check_run(&six);
    run_spec bf = {"adapter-bf16", "adapter", "bfloat16", NULL,       4, 1,    1,    3e-3f,
                   1e-5f,          1.0f,      0.0f,       "constant", 0, NULL, 1e-5, 0};
    check_run(&bf);
}

int main(void) {
    if (!test_have_torch() || !getenv("BADAM_CLI") || !test_source_path("tests/ref")) {
        fprintf(stderr, "SKIP: needs /usr/bin/python3 with torch and the ctest environment\n");
        return TEST_SKIP_CODE;
    }
    /* The reference computes in fp32/fp64 with bf16-stored weights; compare against the portable
     * fp32 GEMM (the native bf16 GEMM also rounds activations, checked in test_llama_bf16). */
    setenv("BADAM_GEMM", "fp32", 1);
    setup();
    RUN_TEST(test_badam_orders);
    RUN_TEST(test_badam_bf16);
    RUN_TEST(test_badam_reference_compat);
    RUN_TEST(test_adam_and_sgd);
    RUN_TEST(test_lora_and_lomo);
    RUN_TEST(test_galore);
    RUN_TEST(test_adapter);
    return test_result();
}
