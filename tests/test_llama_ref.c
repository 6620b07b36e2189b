/* Our Llama forward/backward against the PyTorch reference (tests/ref/llama_ref.py, float64) on
 * random tiny models written by tests/ref/make_tiny_model.py: logits, loss and every parameter
 * gradient within 1e-4 relative, fp32 weights. Also the same model loaded from shards and in
 * bf16 storage. Skips when /usr/bin/python3 has no torch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"
#include "io/json_write.h"
#include "io/safetensors.h"
#include "model_fixtures.h"
#include "ref_compare.h"

/* Agreement with the PyTorch float64 reference: |ours - ref| <= ATOL + RTOL * max|ref| per
 * tensor. */
#define RTOL 1e-4
#define ATOL 1e-7

typedef struct batch_data {
    int B, T;
    int32_t *tokens, *targets;
} batch_data;

static int load_batch(const char *path, batch_data *b) {
    json_t *json = NULL;
    badam_error err = {0};
    if (io_read_json(path, &json, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    int B2, T2;
    int rc = ref_read_int_rows(json_object_get(json, "input_ids"), &b->tokens, &b->B, &b->T) ||
             ref_read_int_rows(json_object_get(json, "targets"), &b->targets, &B2, &T2) ||
             B2 != b->B || T2 != b->T;
    json_decref(json);
    return rc ? -1 : 0;
}

/* Removes obj[key] and returns it (NULL when absent); the caller owns it. */
static json_t *detach(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    if (!v) return NULL;
    json_incref(v);
    json_object_del(obj, key);
    return v;
}

/* Rewrites a transformers 4 config.json the way transformers 5 saves it: rope_theta and
 * rope_scaling moved into rope_parameters (transformers 5 modeling_rope_utils.py,
 * standardize_rope_params), torch_dtype renamed dtype, head_dim null when implied. */
static int convert_to_transformers5(const char *path) {
    json_t *cfg = NULL;
    badam_error err = {0};
    if (io_read_json(path, &cfg, &err)) return -1;
    json_t *rp = detach(cfg, "rope_scaling");
    if (!rp || !json_is_object(rp)) {
        json_decref(rp);
        rp = json_object();
        json_object_set_new(rp, "rope_type", json_string("default"));
    }
    json_t *theta = detach(cfg, "rope_theta");
    if (theta) json_object_set_new(rp, "rope_theta", theta);
    json_object_set_new(cfg, "rope_parameters", rp);
    json_t *dt = detach(cfg, "torch_dtype");
    if (dt) json_object_set_new(cfg, "dtype", dt);
    if (!json_object_get(cfg, "head_dim")) json_object_set_new(cfg, "head_dim", json_null());
    char *text = io_json_dump(cfg, 2, NULL);
    json_decref(cfg);
    int rc = text && !io_write_file_atomic(path, text, strlen(text), &err) ? 0 : -1;
    free(text);
    return rc;
}

/* Generates the preset, runs the reference, and compares logits, loss and gradients. With
 * `transformers5`, our side reads the config rewritten in transformers 5's form while the
 * reference read the transformers 4 form. */
static void check_preset_form(const char *preset, int shards, int transformers5) {
    char name[128], cmd[16384], dir[1024], path[2048];
    snprintf(name, sizeof name, "ref-%s-%d%s", preset, shards, transformers5 ? "-v5" : "");
    snprintf(dir, sizeof dir, "%s", test_workdir(name));
    const char *refdir = test_source_path("tests/ref");
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/make_tiny_model.py --out %s/model --preset %s --shards %d && "
             "/usr/bin/python3 %s/llama_ref.py --model %s/model --batch %s/model/batch.json "
             "--out %s/ref.safetensors",
             refdir, dir, preset, shards, refdir, dir, dir, dir);
    if (test_system(cmd) != 0) {
        CHECKF(0, "%s: reference scripts failed: %s", preset, cmd);
        return;
    }
    snprintf(path, sizeof path, "%s/model/config.json", dir);
    if (transformers5 && convert_to_transformers5(path)) {
        CHECKF(0, "%s: cannot rewrite %s", preset, path);
        return;
    }
    badam_error err = {0};
    llama_model *m = NULL;
    snprintf(path, sizeof path, "%s/model", dir);
    CHECK_OK(llama_model_load(path, BADAM_DTYPE_F32, &m, &err), &err);
    batch_data bd;
    snprintf(path, sizeof path, "%s/model/batch.json", dir);
    if (load_batch(path, &bd)) {
        CHECKF(0, "%s: cannot read %s", preset, path);
        llama_model_free(m);
        return;
    }
    st_file *ref = NULL;
    snprintf(path, sizeof path, "%s/ref.safetensors", dir);
    CHECK_OK(st_open(path, &ref, &err), &err);

    llama_workspace *ws = NULL;
    CHECK_OK(llama_workspace_create(m, bd.B, bd.T, &ws, &err), &err);
    llama_batch batch = {.B = bd.B, .T = bd.T, .tokens = bd.tokens, .targets = bd.targets};
    size_t nlog = (size_t)bd.B * bd.T * m->cfg.vocab_size;
    float *logits = malloc(sizeof(float) * nlog);
    CHECK_OK(llama_forward_logits(m, ws, &batch, logits, &err), &err);
    ref_compare(preset, "logits", logits, st_find(ref, "logits"), nlog, ATOL, RTOL);

    uint8_t *all = malloc((size_t)m->n_params);
    memset(all, 1, (size_t)m->n_params);
    llama_grad_plan plan;
    llama_plan_for_flags(m, all, 0, &plan);
    float **grads = fixture_grads_alloc(m);
    for (int recompute = 0; recompute <= 1; recompute++) {
        plan.recompute = recompute;
        float loss = (float)fixture_train_step(m, ws, &batch, &plan, grads);
        char what[160];
        snprintf(what, sizeof what, "loss (recompute %d)", recompute);
        ref_compare(preset, what, &loss, st_find(ref, "loss"), 1, ATOL, RTOL);
        for (int i = 0; i < m->n_params; i++) {
            snprintf(what, sizeof what, "grad.%s", m->params[i].name);
            ref_compare(preset, what, grads[i], st_find(ref, what), m->params[i].numel, ATOL, RTOL);
        }
    }
    fixture_grads_free(m, grads);
    free(all);
    free(logits);
    llama_workspace_free(ws);
    st_close(ref);
    llama_model_free(m);
    free(bd.tokens);
    free(bd.targets);
}

static void check_preset(const char *preset, int shards) {
    check_preset_form(preset, shards, 0);
}

/* config.json as transformers 5 writes it: theta 500000 and llama3 scaling only under
 * rope_parameters (Llama), and the Qwen2 and Mistral presets. */
static void test_transformers5_configs(void) {
    check_preset_form("untied_pad_llama3", 1, 1);
    check_preset_form("gqa_tied_bias", 1, 1);
    check_preset_form("mistral_headdim", 1, 1);
}

static void test_gqa_tied_bias(void) {
    check_preset("gqa_tied_bias", 1);
}
static void test_untied_pad_llama3(void) {
    check_preset("untied_pad_llama3", 1);
}
static void test_mistral_headdim(void) {
    check_preset("mistral_headdim", 1);
}
static void test_llama_bias(void) {
    check_preset("llama_bias", 1);
}
static void test_sharded(void) {
    check_preset("untied_pad_llama3", 3);
}

int main(void) {
    if (!ref_can_run()) return TEST_SKIP_CODE;
    RUN_TEST(test_gqa_tied_bias);
    RUN_TEST(test_untied_pad_llama3);
    RUN_TEST(test_mistral_headdim);
    RUN_TEST(test_llama_bias);
    RUN_TEST(test_sharded);
    RUN_TEST(test_transformers5_configs);
    return test_result();
}
