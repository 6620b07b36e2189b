/* MeZO and BAdam's ratio mode against their PyTorch references (tests/ref/zo_ratio_ref.py, which
 * regenerates z and the masks with a port of our generator): the same tiny model and batches,
 * fp32 weights, final parameters within 1e-5 relative after 8 steps (three mask periods: two
 * renewals) and moved at least 10x that (MeZO also on LoRA adapters; ratio mode also with the
 * embedding and head); and a MeZO run at lr 0 on bf16 weights leaves every weight
 * bit-identical. Skips without torch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "badam/optim.h"
#include "io/safetensors.h"
#include "model_fixtures.h"
#include "ref_compare.h"

static char g_fixture[1024], g_model[1024];

/* config for the reference: the options both sides use, and our parameter table's names */
static int write_config(const char *path, const char *method, const char *extra_json) {
    badam_error err = {0};
    char cfgpath[2048];
    snprintf(cfgpath, sizeof cfgpath, "%s/config.json", g_model);
    llama_config mc;
    llama_model *m = NULL;
    if (llama_config_load(cfgpath, &mc, &err) ||
        llama_model_describe(&mc, BADAM_DTYPE_F32, &m, &err))
        return -1;
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f,
            "{\"method\": \"%s\", \"lr\": 1e-3, \"max_steps\": 8, \"batch_size\": 2, "
            "\"grad_accum\": 1, \"schedule\": \"constant\", \"weight_decay\": 0.01, "
            "\"eps\": 1e-5, \"seed\": 42, %s, \"param_names\": [",
            method, extra_json);
    for (int i = 0; i < m->n_params; i++) fprintf(f, "%s\"%s\"", i ? ", " : "", m->params[i].name);
    fprintf(f, "]}\n");
    fclose(f);
    llama_model_free(m);
    return 0;
}

/* adapter: a PEFT adapter folder both sides start from (mezo-lora), compared instead of the
 * model; NULL: the model is compared. */
static void check(const char *name, const char *method, const char *json, const char *cli,
                  const char *adapter) {
    char dir[1024], cmd[8192], cfg[2048], ours[2048], ref[2048], start[2048];
    snprintf(dir, sizeof dir, "%s", test_workdir(name));
    snprintf(cfg, sizeof cfg, "%s/ref_config.json", dir);
    if (write_config(cfg, method, json)) {
        CHECKF(0, "%s: cannot write the reference config", name);
        return;
    }
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/zo_ratio_ref.py --model %s --data %s/train.jsonl --config %s "
             "--out %s/ref %s%s > %s/ref.log 2>&1",
             test_source_path("tests/ref"), g_model, g_fixture, cfg, dir,
             adapter ? "--init-adapter " : "", adapter ? adapter : "", dir);
    if (ref_run(cmd)) {
        CHECKF(0, "%s: zo_ratio_ref.py failed (see %s/ref.log)", name, dir);
        return;
    }
    snprintf(cmd, sizeof cmd,
             "%s train --model %s --data %s/train.jsonl --out %s/ours --method %s --dtype fp32 "
             "--lr 1e-3 --eps 1e-5 --weight-decay 0.01 --schedule constant --batch-size 2 "
             "--max-steps 8 --seq-len 64 --seed 42 --no-shuffle --no-group-by-length --quiet %s "
             "%s%s > %s/ours.log 2>&1",
             getenv("BADAM_CLI"), g_model, g_fixture, dir, method, cli,
             adapter ? "--init-adapter " : "", adapter ? adapter : "", dir);
    if (ref_run(cmd)) {
        CHECKF(0, "%s: badam train failed (see %s/ours.log)", name, dir);
        return;
    }
    snprintf(ours, sizeof ours, "%s/ours/model.safetensors", dir);
    snprintf(ref, sizeof ref, "%s/ref/model.safetensors", dir);
    snprintf(start, sizeof start, "%s/model.safetensors", g_model);
    if (adapter) {
        snprintf(ours, sizeof ours, "%s/ours/adapter/adapter_model.safetensors", dir);
        snprintf(ref, sizeof ref, "%s/ref/adapter_model.safetensors", dir);
        snprintf(start, sizeof start, "%s/adapter_model.safetensors", adapter);
    }
    double e = ref_compare_files(ours, ref, name, 1e-7, 1e-5, NULL);
    double moved = ref_compare_files(ours, start, name, 0, 1e-4, NULL);
    fprintf(stderr,
            "  %-18s worst |ours - ref| / (1e-7 + 1e-5 max|ref|) = %.3g; moved %.3g x 1e-4\n", name,
            e, moved);
    CHECKF(e <= 1.0, "%s: parameters differ from the reference by %.3g x the tolerance", name, e);
    CHECKF(moved > 1.0, "%s: parameters moved only %.3g x 1e-4 of their scale", name, moved);
}

static void test_mezo(void) {
    check("zo-mezo", "mezo", "\"mezo_eps\": 1e-2, \"mezo_samples\": 1", "--clip 0 --mezo-eps 1e-2",
          NULL);
    check("zo-mezo-2samples", "mezo", "\"mezo_eps\": 1e-2, \"mezo_samples\": 2",
          "--clip 0 --mezo-eps 1e-2 --mezo-samples 2", NULL);
}

/* MeZO on LoRA adapters (all seven projections, rank 4, alpha 8) from a PEFT adapter whose B is
 * not zero: the adapters against the reference's. */
static void test_mezo_lora(void) {
    char adapter[1100], cmd[4096];
    snprintf(adapter, sizeof adapter, "%s/init_adapter", test_workdir("zo-mezo-lora-adapter"));
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/make_train_fixture.py --adapter %s --model %s --rank 4 "
             "--alpha 8 --seed 3",
             test_source_path("tests/ref"), adapter, g_model);
    if (ref_run(cmd)) {
        CHECKF(0, "mezo-lora: adapter fixture failed");
        return;
    }
    check("zo-mezo-lora", "mezo-lora",
          "\"mezo_eps\": 1e-2, \"mezo_samples\": 2, \"lora_rank\": 4, \"lora_alpha\": 8",
          "--clip 0 --mezo-eps 1e-2 --mezo-samples 2 --lora-rank 4 --lora-alpha 8 "
          "--lora-targets all",
          adapter);
}

static void test_ratio(void) {
    check("ratio-adjacent", "badam-ratio",
          "\"clip\": 1.0, \"switch_every\": 3, \"update_ratio\": 0.25, \"mask_mode\": \"adjacent\"",
          "--clip 1 --switch-every 3 --update-ratio 0.25 --mask-mode adjacent", NULL);
    check("ratio-scatter", "badam-ratio",
          "\"clip\": 0.5, \"switch_every\": 3, \"update_ratio\": 0.3, \"mask_mode\": \"scatter\"",
          "--clip 0.5 --switch-every 3 --update-ratio 0.3 --mask-mode scatter", NULL);
    check("ratio-embed-head", "badam-ratio",
          "\"clip\": 1.0, \"switch_every\": 2, \"update_ratio\": 0.2, \"mask_mode\": "
          "\"scatter\", \"include_embedding\": true, \"include_head\": true",
          "--clip 1 --switch-every 2 --update-ratio 0.2 --mask-mode scatter --include-embedding "
          "--include-head",
          NULL);
}

/* bf16 weights, MeZO at lr 0 for 3 steps: every saved weight has the bits of the start model
 * rounded to bf16 (the perturbation never touched the stored weights). */
static void test_mezo_lr0_bf16(void) {
    char dir[1024], cmd[8192], ours[2048], start[2048];
    snprintf(dir, sizeof dir, "%s", test_workdir("zo-mezo-lr0"));
    snprintf(cmd, sizeof cmd,
             "%s train --model %s --data %s/train.jsonl --out %s/ours --method mezo --dtype bf16 "
             "--lr 0 --schedule constant --clip 0 --mezo-eps 1e-2 --mezo-samples 2 "
             "--batch-size 2 --max-steps 3 --seq-len 64 --no-shuffle --quiet > %s/ours.log 2>&1",
             getenv("BADAM_CLI"), g_model, g_fixture, dir, dir);
    if (ref_run(cmd)) {
        CHECKF(0, "mezo lr 0: badam train failed (see %s/ours.log)", dir);
        return;
    }
    snprintf(ours, sizeof ours, "%s/ours/model.safetensors", dir);
    snprintf(start, sizeof start, "%s/model.safetensors", g_model);
    badam_error err = {0};
    st_file *a = NULL, *b = NULL;
    if (st_open(ours, &a, &err) || st_open(start, &b, &err)) {
        CHECKF(0, "%s", err.message);
        st_close(a);
        return;
    }
    size_t differ = 0, compared = 0;
    for (size_t i = 0; i < b->n_tensors; i++) {
        const st_tensor *r = &b->tensors[i], *o = st_find(a, r->name);
        CHECKF(o && o->numel == r->numel && o->dtype == BADAM_DTYPE_BF16, "%s", r->name);
        if (!o || o->numel != r->numel || o->dtype != BADAM_DTYPE_BF16) continue;
        uint16_t *x = malloc(2 * r->numel + 2);
        badam_convert(x, BADAM_DTYPE_BF16, r->data, r->dtype, r->numel);
        for (size_t j = 0; j < r->numel; j++) differ += x[j] != ((const uint16_t *)o->data)[j];
        compared += r->numel;
        free(x);
    }
    st_close(a);
    st_close(b);
    fprintf(stderr, "  mezo lr 0 bf16: %zu of %zu weights differ\n", differ, compared);
    CHECKF(compared > 0 && differ == 0, "mezo at lr 0 changed %zu bf16 weights", differ);
}

int main(void) {
    if (!test_have_torch() || !getenv("BADAM_CLI") || !test_source_path("tests/ref")) {
        fprintf(stderr, "SKIP: needs /usr/bin/python3 with torch and the ctest environment\n");
        return TEST_SKIP_CODE;
    }
    setenv("BADAM_GEMM", "fp32", 1);
    if (ref_make_train_fixture("zo-ref-model", "zo-ref-data", g_model, sizeof g_model, g_fixture,
                               sizeof g_fixture))
        return 1;
    RUN_TEST(test_mezo_lr0_bf16);
    RUN_TEST(test_mezo);
    RUN_TEST(test_mezo_lora);
    RUN_TEST(test_ratio);
    return test_result();
}
