/* LoRA adapters on the encoder family (bert, roberta) against the PyTorch reference
 * (tests/ref/bert_ref.py run --lora: PEFT's lora.Linear, y = W x + b + (alpha / r) B A x, on
 * attention.self.query/key/value, attention.output.dense, intermediate.dense, output.dense), in
 * fp32 against float64: with random A and B on every projection, the loss, the head's and every
 * adapter's gradients on LoRA's plan (adapters + head), and every parameter's and adapter's
 * gradient on a plan that flags everything too, with and without recompute; the GEMM FLOP counter
 * equals the analytic count; the adapters are saved under PEFT names with the encoder's
 * target_modules and load back; merging gives the adapted logits; LoRA dropout (keyed as Llama's)
 * is deterministic per (seed, step) and its gradient matches central differences. Skips when
 * /usr/bin/python3 has no torch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "badam/bert.h"
#include "badam/model.h"
#include "enc_batch.h"
#include "io/files.h"
#include "io/safetensors.h"
#include "model_fixtures.h"
#include "ref_compare.h"

#define RTOL 1e-4
#define ATOL 1e-7
#define RANK 3
#define ALPHA 6.0f

/* Each adapter's (layer, kind) in slot order: calls f for every attached adapter. */
typedef void (*adapter_fn)(void *ctx, const llama_model *m, int layer, int kind, int slot);
static void each_adapter(const llama_model *m, adapter_fn f, void *ctx) {
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int k = 0; k < LLAMA_P_KIND_COUNT; k++) {
            int a = l * MODEL_ROLE_COUNT + k;
            if (m->lora->targets & (1u << k) && m->lora->A[a]) f(ctx, m, l, k, a);
        }
}

static size_t a_numel(const llama_model *m, int l, int k) {
    return (size_t)RANK * m->params[llama_param_index(m, l, (llama_param_kind)k)].shape[1];
}
static size_t b_numel(const llama_model *m, int l, int k) {
    return (size_t)RANK * m->params[llama_param_index(m, l, (llama_param_kind)k)].shape[0];
}

/* B random (attach leaves it 0, which would make A's gradient 0). */
static void fill_b(void *ctx, const llama_model *m, int l, int k, int a) {
    test_rng *rng = ctx;
    for (size_t j = 0; j < b_numel(m, l, k); j++) m->lora->B[a][j] = 0.3f * test_rng_normal(rng);
}
static void zero_grads(void *ctx, const llama_model *m, int l, int k, int a) {
    (void)ctx;
    memset(m->lora->dA[a], 0, sizeof(float) * a_numel(m, l, k));
    memset(m->lora->dB[a], 0, sizeof(float) * b_numel(m, l, k));
}

typedef struct cmp_ctx {
    const char *name, *what;
    st_file *ref;
    int n;
} cmp_ctx;

static void compare_adapter(void *ctx, const llama_model *m, int l, int k, int a) {
    cmp_ctx *c = ctx;
    char module[128], key[256], what[600];
    llama_lora_module_name(m, l, (llama_param_kind)k, module, sizeof module);
    for (int which = 0; which < 2; which++) {
        snprintf(key, sizeof key, "grad.base_model.model.%s.lora_%s.weight", module,
                 which ? "B" : "A");
        snprintf(what, sizeof what, "%s (%s)", key, c->what);
        ref_compare(c->name, what, which ? m->lora->dB[a] : m->lora->dA[a], st_find(c->ref, key),
                    which ? b_numel(m, l, k) : a_numel(m, l, k), ATOL, RTOL);
    }
    c->n++;
}

/* One forward + backward of the plan (flags, adapters trained); grads zeroed first; returns the
 * mean loss. */
static double step(const model_arch *a, llama_model *m, llama_workspace *ws, const llama_batch *b,
                   const uint8_t *flags, float **grads, int recompute, uint64_t *flops) {
    badam_error err = {0};
    fixture_grads_zero(m, grads);
    each_adapter(m, zero_grads, NULL);
    float **view = calloc((size_t)m->n_params, sizeof *view);
    fixture_grads_view(m, grads, flags, view);
    llama_grad_plan plan;
    a->plan_for_flags(m, flags, 1, &plan);
    plan.recompute = recompute;
    int rows = b->target_kind == MODEL_TARGETS_CHOICE ? b->B / b->n_choices : b->B, n = 0, got;
    for (int i = 0; i < rows; i++) n += b->targets[i] != -100;
    double sum = NAN;
    llama_workspace_reset_counters(ws);
    badam_status st = a->forward(m, ws, b, &plan, 1.0f / (float)n, view, &sum, &got, &err);
    if (!st) st = a->backward(m, ws, b, &plan, view, &err);
    CHECKF(!st, "LoRA step: %s", err.message);
    if (flops) {
        uint64_t want = a->gemm_flops(m, &plan, b->B, b->T, 0);
        *flops = llama_workspace_counters(ws).gemm_flops;
        CHECKF(*flops == want, "GEMM FLOPs %llu, analytic %llu", (unsigned long long)*flops,
               (unsigned long long)want);
    }
    free(view);
    return st ? NAN : sum / n;
}

/* The gradient checks: LoRA's plan (adapters + head) and everything flagged. */
static void check_grads(const char *name, const model_arch *a, llama_model *m, llama_workspace *ws,
                        const llama_batch *b, st_file *ref) {
    int P = m->n_params;
    uint8_t *flags = calloc((size_t)P, 1);
    float **grads = fixture_grads_alloc(m);
    char what[256];
    for (int all = 0; all <= 1; all++)
        for (int recompute = 0; recompute <= 1; recompute++) {
            for (int i = 0; i < P; i++)
                flags[i] = all || m->params[i].tag.group == MODEL_GROUP_HEAD;
            uint64_t flops = 0; /* the count has no term for recomputed layers: checked without */
            float loss =
                (float)step(a, m, ws, b, flags, grads, recompute, recompute ? NULL : &flops);
            snprintf(what, sizeof what, "%s plan, recompute %d", all ? "full" : "LoRA", recompute);
            ref_compare(name, what, &loss, st_find(ref, "loss"), 1, ATOL, RTOL);
            cmp_ctx c = {name, what, ref, 0};
            each_adapter(m, compare_adapter, &c);
            CHECKF(c.n == 6 * m->cfg.n_layers, "%s: %d adapters compared", name, c.n);
            for (int i = 0; i < P; i++) {
                if (!flags[i]) continue;
                char key[160], w2[420];
                snprintf(key, sizeof key, "grad.%s", m->params[i].name);
                snprintf(w2, sizeof w2, "%s (%s)", key, what);
                ref_compare(name, w2, grads[i], st_find(ref, key), m->params[i].numel, ATOL, RTOL);
            }
        }
    fixture_grads_free(m, grads);
    free(flags);
}

/* Save + load of the adapters (PEFT names, the encoder's target_modules), and the merge. */
static void check_save_merge(const char *name, const char *work, llama_model *m,
                             llama_workspace *ws, const llama_batch *b) {
    badam_error err = {0};
    char adir[2048], path[2100], text[4096] = {0};
    snprintf(adir, sizeof adir, "%s/adapter", work);
    snprintf(path, sizeof path, "%s/adapter_config.json", adir);
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    CHECKF(got && strstr(text, "\"attention.output.dense\"") && strstr(text, "\"query\"") &&
               strstr(text, "\"intermediate.dense\"") && !strstr(text, "gate_proj"),
           "%s: adapter_config.json: %s", name, text);
    size_t n = (size_t)b->B * m->cfg.num_labels;
    float *l0 = malloc(sizeof(float) * n), *l1 = malloc(sizeof(float) * n);
    CHECK_OK(bert_forward_logits(m, ws, b, l0, &err), &err);
    /* load into fresh adapters: the same logits, bit for bit */
    llama_lora_detach(m);
    uint32_t all = 0;
    CHECK_OK(llama_lora_parse_targets("all", &all, &err), &err);
    CHECK_OK(llama_lora_attach(m, RANK, ALPHA, 0.0f, all, 99, &err), &err);
    CHECK_OK(llama_lora_load(m, adir, &err), &err);
    CHECK_OK(bert_forward_logits(m, ws, b, l1, &err), &err);
    CHECKF(!memcmp(l0, l1, sizeof(float) * n), "%s: logits after adapter save + load differ", name);
    llama_lora_merge(m);
    llama_lora_detach(m);
    llama_workspace *plain = NULL;
    const model_arch *a = model_arch_find(m->cfg.model_type);
    CHECK_OK(a->workspace_create(m, b->B, b->T, &plain, &err), &err);
    CHECK_OK(bert_forward_logits(m, plain, b, l1, &err), &err);
    for (size_t i = 0; i < n; i++)
        CHECKF(fabsf(l0[i] - l1[i]) <= 1e-5f * (1.0f + fabsf(l0[i])),
               "%s: merged logit %zu %.7g vs adapted %.7g", name, i, l1[i], l0[i]);
    a->workspace_free(plain);
    free(l0), free(l1);
}

/* LoRA dropout: deterministic per (seed, step), another step another loss, and central
 * differences of the loss in one A and one B element (masks fixed) match the gradients. */
static void check_dropout(const char *name, const model_arch *a, llama_model *m,
                          llama_workspace *ws, const llama_batch *b) {
    badam_error err = {0};
    llama_lora *lo = m->lora;
    double s0, s1, s2, lp, lm;
    int n;
    CHECK_OK(a->forward(m, ws, b, NULL, 0.0f, NULL, &s0, &n, &err), &err);
    lo->dropout = 0.3f, lo->training = 1, lo->dropout_seed = 5, lo->dropout_step = 2;
    CHECK_OK(a->forward(m, ws, b, NULL, 0.0f, NULL, &s1, &n, &err), &err);
    CHECK_OK(a->forward(m, ws, b, NULL, 0.0f, NULL, &s2, &n, &err), &err);
    CHECKF(s1 == s2 && s1 != s0, "%s: LoRA dropout loss %.9g, again %.9g, without %.9g", name, s1,
           s2, s0);
    lo->dropout_step = 3;
    CHECK_OK(a->forward(m, ws, b, NULL, 0.0f, NULL, &s2, &n, &err), &err);
    CHECKF(s2 != s1, "%s: LoRA dropout masks do not change with the step", name);
    lo->dropout_step = 2;
    uint8_t *flags = calloc((size_t)m->n_params, 1);
    float **grads = fixture_grads_alloc(m);
    step(a, m, ws, b, flags, grads, 1, NULL);
    int ad = 0 * MODEL_ROLE_COUNT + LLAMA_P_UP; /* layer 0's intermediate.dense adapter */
    float *probe[2] = {lo->A[ad], lo->B[ad]}, *grad[2] = {lo->dA[ad], lo->dB[ad]};
    size_t len[2] = {a_numel(m, 0, LLAMA_P_UP), b_numel(m, 0, LLAMA_P_UP)};
    for (int k = 0; k < 2; k++) {
        size_t j = 0;
        for (size_t i = 1; i < len[k]; i++)
            if (fabsf(grad[k][i]) > fabsf(grad[k][j])) j = i;
        float keep = probe[k][j], h = 1e-2f;
        probe[k][j] = keep + h;
        a->forward(m, ws, b, NULL, 0.0f, NULL, &lp, &n, &err);
        probe[k][j] = keep - h;
        a->forward(m, ws, b, NULL, 0.0f, NULL, &lm, &n, &err);
        probe[k][j] = keep;
        double fd = (lp - lm) / (2.0 * h) / n;
        CHECKF(fabs(fd - grad[k][j]) <= 1e-4 + 2e-2 * fabs(fd),
               "%s: LoRA dropout gradient of %s[%zu]: backward %.6g, central difference %.6g", name,
               k ? "B" : "A", j, grad[k][j], fd);
    }
    lo->dropout = 0.0f, lo->training = 0;
    fixture_grads_free(m, grads);
    free(flags);
}

static void check_preset(const char *preset) {
    char dir[1024], cmd[16384], model[1100], batch[1200], adir[1200], refp[1200];
    snprintf(dir, sizeof dir, "%s", test_workdir(preset));
    snprintf(model, sizeof model, "%s/model", dir);
    snprintf(batch, sizeof batch, "%s/model/batch.json", dir);
    snprintf(adir, sizeof adir, "%s/adapter", dir);
    snprintf(refp, sizeof refp, "%s/ref.safetensors", dir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/bert_ref.py make --out %s --preset %s",
             test_source_path("tests/ref"), model, preset);
    if (ref_run(cmd)) {
        CHECKF(0, "%s: %s failed", preset, cmd);
        return;
    }
    badam_error err = {0};
    const model_arch *a = NULL;
    llama_model *m = NULL;
    enc_batch bd;
    CHECK_OK(model_arch_for_folder(model, &a, &err), &err);
    if (!a || enc_batch_load(batch, &bd)) {
        CHECKF(0, "%s: cannot load %s", preset, batch);
        return;
    }
    CHECK_OK(a->load(model, BADAM_DTYPE_F32, &m, &err), &err);
    uint32_t all = 0;
    CHECK_OK(llama_lora_parse_targets("all", &all, &err), &err);
    CHECK_OK(llama_lora_attach(m, RANK, ALPHA, 0.0f, all, 7, &err), &err);
    test_rng rng;
    test_rng_seed(&rng, 3);
    each_adapter(m, fill_b, &rng);
    CHECK_OK(llama_lora_save(m, adir, model, &err), &err);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/bert_ref.py run --model %s --batch %s --out %s --lora %s",
             test_source_path("tests/ref"), model, batch, refp, adir);
    st_file *ref = NULL;
    llama_workspace *ws = NULL;
    if (!ref_run(cmd)) CHECK_OK(st_open(refp, &ref, &err), &err);
    CHECK_OK(a->workspace_create(m, bd.B, bd.T, &ws, &err), &err);
    llama_batch b = enc_batch_model(&bd);
    if (ref && ws) {
        check_grads(preset, a, m, ws, &b, ref);
        check_dropout(preset, a, m, ws, &b);
        check_save_merge(preset, dir, m, ws, &b);
    }
    a->workspace_free(ws);
    st_close(ref);
    enc_batch_free(&bd);
    a->free(m);
}

static void test_bert_pairs_pad(void) {
    check_preset("bert_pairs_pad");
}
static void test_roberta_pad(void) {
    check_preset("roberta_pad");
}
static void test_roberta_choice(void) {
    check_preset("roberta_choice");
}

/* Encoder module names are accepted as targets; a target the model lacks is refused. */
static void test_targets(void) {
    badam_error err = {0};
    uint32_t t = 0, want = 1u << LLAMA_P_Q | 1u << LLAMA_P_O | 1u << LLAMA_P_DOWN;
    CHECK_OK(llama_lora_parse_targets("query,attention.output.dense,output.dense", &t, &err), &err);
    CHECK(t == want);
    CHECK(llama_lora_parse_targets("dense", &t, &err) == BADAM_E_INVALID);
}

int main(void) {
    RUN_TEST(test_targets);
    if (!ref_can_run()) return test_result() ? test_result() : TEST_SKIP_CODE;
    RUN_TEST(test_bert_pairs_pad);
    RUN_TEST(test_roberta_pad);
    RUN_TEST(test_roberta_choice);
    return test_result();
}
