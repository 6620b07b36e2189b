/* Our encoder (bert, roberta) forward/backward against the PyTorch reference
 * (tests/ref/bert_ref.py, float64, HF's modeling_bert / modeling_roberta math) on random tiny
 * folders with HF names: BERT sequence pairs with token types and padding, RoBERTa with padding
 * (positions from the pad index), BERT and RoBERTa multiple choice; and on
 * ../shared/data/tiny-random-bert (a BertForSequenceClassification folder written by
 * transformers 4.30, with its I64 position_ids buffer; skipped when absent). Logits, loss and
 * every parameter gradient within 1e-4 relative in fp32; a partial gradient plan (BAdam's last
 * block + head) gives the same gradients and visits only that layer; the GEMM FLOP count matches
 * the counters; bf16 storage gives the loss within 2e-2; save + load gives the same logits;
 * dropout in training is deterministic per (seed, step) and its backward matches central
 * differences. Skips when /usr/bin/python3 has no torch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "badam/bert.h"
#include "badam/model.h"
#include "io/files.h"
#include "io/safetensors.h"
#include "enc_batch.h"
#include "model_fixtures.h"
#include "ref_compare.h"

/* Agreement with the float64 reference: |ours - ref| <= ATOL + RTOL * max|ref| per tensor. */
#define RTOL 1e-4
#define ATOL 1e-7

/* Forward + backward under the plan of `flags`; grads (all allocated) zeroed first, the flagged
 * ones accumulated; returns the mean loss (NAN on error). */
static double train_step(const model_arch *a, const llama_model *m, llama_workspace *ws,
                         const llama_batch *b, const uint8_t *flags, float **grads,
                         llama_grad_plan *plan, int recompute) {
    badam_error err = {0};
    fixture_grads_zero(m, grads);
    float **view = calloc((size_t)m->n_params, sizeof *view);
    fixture_grads_view(m, grads, flags, view);
    a->plan_for_flags(m, flags, 0, plan);
    plan->recompute = recompute;
    int rows = b->target_kind == MODEL_TARGETS_CHOICE ? b->B / b->n_choices : b->B, n = 0, got = 0;
    for (int i = 0; i < rows; i++) n += b->targets[i] != -100;
    double loss_sum = NAN;
    badam_status st = a->forward(m, ws, b, plan, 1.0f / (float)n, view, &loss_sum, &got, &err);
    if (!st) st = a->backward(m, ws, b, plan, view, &err);
    free(view);
    CHECKF(!st, "train step: %s", err.message);
    CHECK(got == n);
    return st ? NAN : loss_sum / n;
}

/* Logits, loss and every gradient against ref; then BAdam's last block + head. */
static void check_model(const char *name, const char *dir, const enc_batch *bd, st_file *ref) {
    badam_error err = {0};
    const model_arch *a = NULL;
    llama_model *m = NULL;
    CHECK_OK(model_arch_for_folder(dir, &a, &err), &err);
    if (!a) return;
    CHECK(!strcmp(a->family, "bert"));
    CHECK_OK(a->load(dir, BADAM_DTYPE_F32, &m, &err), &err);
    if (!m) return;
    llama_workspace *ws = NULL;
    CHECK_OK(a->workspace_create(m, bd->B, bd->T, &ws, &err), &err);
    llama_batch b = enc_batch_model(bd);
    size_t nlog = (size_t)bd->B * m->cfg.num_labels;
    float *logits = malloc(sizeof(float) * nlog);
    CHECK_OK(bert_forward_logits(m, ws, &b, logits, &err), &err);
    ref_compare(name, "logits", logits, st_find(ref, "logits"), nlog, ATOL, RTOL);

    int P = m->n_params, L = m->cfg.n_layers;
    uint8_t *flags = malloc((size_t)P);
    memset(flags, 1, (size_t)P);
    float **grads = fixture_grads_alloc(m);
    llama_grad_plan plan;
    char what[160], key[160];
    float loss;
    for (int recompute = 0; recompute <= 1; recompute++) {
        llama_workspace_reset_counters(ws);
        loss = (float)train_step(a, m, ws, &b, flags, grads, &plan, recompute);
        if (!recompute)
            CHECK(llama_workspace_counters(ws).gemm_flops ==
                  a->gemm_flops(m, &plan, bd->B, bd->T, 0));
        snprintf(what, sizeof what, "loss (recompute %d)", recompute);
        ref_compare(name, what, &loss, st_find(ref, "loss"), 1, ATOL, RTOL);
        for (int i = 0; i < P; i++) {
            snprintf(what, sizeof what, "grad.%s (recompute %d)", m->params[i].name, recompute);
            snprintf(key, sizeof key, "grad.%s", m->params[i].name);
            ref_compare(name, what, grads[i], st_find(ref, key), m->params[i].numel, ATOL, RTOL);
        }
    }
    /* BAdam's block plan: the last layer and the head only */
    for (int i = 0; i < P; i++) flags[i] = m->params[i].layer == L - 1 || m->params[i].layer < 0;
    for (int i = 0; i < 5; i++) flags[i] = 0; /* the embeddings stay frozen */
    llama_workspace_reset_counters(ws);
    loss = (float)train_step(a, m, ws, &b, flags, grads, &plan, 0);
    CHECK(plan.lowest_input_grad_layer == L);
    CHECK(llama_workspace_counters(ws).gemm_flops == a->gemm_flops(m, &plan, bd->B, bd->T, 0));
    ref_compare(name, "loss (block plan)", &loss, st_find(ref, "loss"), 1, ATOL, RTOL);
    for (int i = 0; i < P; i++) {
        if (!flags[i]) continue;
        snprintf(what, sizeof what, "grad.%s", m->params[i].name);
        ref_compare(name, what, grads[i], st_find(ref, what), m->params[i].numel, ATOL, RTOL);
    }
    fixture_grads_free(m, grads);
    free(flags);
    free(logits);
    a->workspace_free(ws);
    a->free(m);
}

/* bf16 storage: the loss within a bf16 tolerance of the fp32 reference; and save + load of the
 * fp32 model gives the same logits bit for bit. */
static void check_bf16_and_save(const char *name, const char *dir, const char *work,
                                const enc_batch *bd, st_file *ref) {
    badam_error err = {0};
    const model_arch *a = NULL;
    CHECK_OK(model_arch_for_folder(dir, &a, &err), &err);
    if (!a) return;
    llama_model *m = NULL, *m2 = NULL;
    CHECK_OK(a->load(dir, BADAM_DTYPE_BF16, &m, &err), &err);
    llama_workspace *ws = NULL;
    CHECK_OK(a->workspace_create(m, bd->B, bd->T, &ws, &err), &err);
    llama_batch b = enc_batch_model(bd);
    double sum = 0;
    int n = 0;
    CHECK_OK(a->forward(m, ws, &b, NULL, 0.0f, NULL, &sum, &n, &err), &err);
    float loss = (float)(sum / n);
    ref_compare(name, "loss (bf16 weights)", &loss, st_find(ref, "loss"), 1, 1e-3, 2e-2);
    a->workspace_free(ws);
    a->free(m);

    char out[2048];
    snprintf(out, sizeof out, "%s/saved", work);
    CHECK_OK(a->load(dir, BADAM_DTYPE_F32, &m, &err), &err);
    CHECK_OK(a->save(m, dir, out, 0, &err), &err);
    CHECK_OK(a->load(out, BADAM_DTYPE_F32, &m2, &err), &err);
    if (m && m2) {
        size_t nl = (size_t)bd->B * m->cfg.num_labels;
        float *l1 = malloc(sizeof(float) * nl), *l2 = malloc(sizeof(float) * nl);
        CHECK_OK(a->workspace_create(m, bd->B, bd->T, &ws, &err), &err);
        CHECK_OK(bert_forward_logits(m, ws, &b, l1, &err), &err);
        CHECK_OK(bert_forward_logits(m2, ws, &b, l2, &err), &err);
        CHECKF(!memcmp(l1, l2, sizeof(float) * nl), "%s: logits after save + load differ", name);
        a->workspace_free(ws);
        free(l1), free(l2);
    }
    a->free(m);
    a->free(m2);
}

/* Dropout while training: the same (seed, step) gives the same loss, another step another loss,
 * and the gradient of a few tensors matches central differences of the loss with the masks
 * fixed. */
static void check_dropout(const char *name, const char *dir, const enc_batch *bd) {
    badam_error err = {0};
    const model_arch *a = NULL;
    CHECK_OK(model_arch_for_folder(dir, &a, &err), &err);
    llama_model *m = NULL;
    CHECK_OK(a->load(dir, BADAM_DTYPE_F32, &m, &err), &err);
    if (!m) return;
    llama_workspace *ws = NULL;
    CHECK_OK(a->workspace_create(m, bd->B, bd->T, &ws, &err), &err);
    llama_batch b = enc_batch_model(bd);
    double s0, s1, s2;
    int n;
    CHECK_OK(a->forward(m, ws, &b, NULL, 0.0f, NULL, &s0, &n, &err), &err);
    bert_workspace_set_dropout(ws, 1, 7, 3);
    CHECK_OK(a->forward(m, ws, &b, NULL, 0.0f, NULL, &s1, &n, &err), &err);
    CHECK_OK(a->forward(m, ws, &b, NULL, 0.0f, NULL, &s2, &n, &err), &err);
    CHECKF(s1 == s2 && s1 != s0, "%s: dropout loss %.9g, again %.9g, eval %.9g", name, s1, s2, s0);
    bert_workspace_set_dropout(ws, 1, 7, 4);
    CHECK_OK(a->forward(m, ws, &b, NULL, 0.0f, NULL, &s2, &n, &err), &err);
    CHECKF(s2 != s1, "%s: dropout masks do not change with the step", name);
    bert_workspace_set_dropout(ws, 1, 7, 3);

    uint8_t *flags = malloc((size_t)m->n_params);
    memset(flags, 1, (size_t)m->n_params);
    float **grads = fixture_grads_alloc(m);
    llama_grad_plan plan;
    train_step(a, m, ws, &b, flags, grads, &plan, 1); /* masks rebuilt by the recomputation */
    /* word embedding, layer 0 query weight, last LayerNorm bias, classifier weight */
    int L = m->cfg.n_layers, probe[4] = {0, 5, 5 + 16 * L - 1, m->n_params - 2};
    for (int k = 0; k < 4; k++) {
        llama_param *p = &m->params[probe[k]];
        float *w = p->data, *g = grads[probe[k]];
        size_t j = 0;
        for (size_t i = 1; i < p->numel; i++)
            if (fabsf(g[i]) > fabsf(g[j])) j = i;
        float keep = w[j], h = 1e-2f;
        double lp, lm;
        w[j] = keep + h;
        a->forward(m, ws, &b, NULL, 0.0f, NULL, &lp, &n, &err);
        w[j] = keep - h;
        a->forward(m, ws, &b, NULL, 0.0f, NULL, &lm, &n, &err);
        w[j] = keep;
        double fd = (lp - lm) / (2.0 * h) / n;
        CHECKF(fabs(fd - g[j]) <= 1e-4 + 2e-2 * fabs(fd),
               "%s: dropout gradient of %s[%zu]: backward %.6g, central difference %.6g", name,
               p->name, j, g[j], fd);
    }
    fixture_grads_free(m, grads);
    free(flags);
    a->workspace_free(ws);
    a->free(m);
}

/* A counting wrapper around the workspace's default weight hooks. */
typedef struct counting_hooks {
    model_weight_hooks inner;
    int acquires, releases, invalidates, open; /* open: layers acquired and not released */
} counting_hooks;

static badam_status count_acquire(void *ctx, const llama_model *m, int layer,
                                  model_layer_weights *lw, badam_error *err) {
    counting_hooks *h = ctx;
    h->acquires++, h->open++;
    return h->inner.acquire(h->inner.ctx, m, layer, lw, err);
}
static void count_release(void *ctx, const llama_model *m, int layer, model_layer_weights *lw) {
    counting_hooks *h = ctx;
    h->releases++, h->open--;
    if (h->inner.release) h->inner.release(h->inner.ctx, m, layer, lw);
}
static void count_invalidate(void *ctx, const llama_model *m) {
    counting_hooks *h = ctx;
    h->invalidates++;
    if (h->inner.invalidate) h->inner.invalidate(h->inner.ctx, m);
}

/* Weight hooks: every layer is read between balanced acquire / release calls (forward L, backward
 * from the plan's first layer), each pass invalidates first, and the gradients are the same bits
 * as without the wrapper; bf16 weights take the default hook's fp32 layer copy. */
static void check_hooks(const char *name, const char *dir, const enc_batch *bd) {
    badam_error err = {0};
    const model_arch *a = NULL;
    CHECK_OK(model_arch_for_folder(dir, &a, &err), &err);
    llama_model *m = NULL;
    CHECK_OK(a->load(dir, BADAM_DTYPE_BF16, &m, &err), &err);
    if (!m) return;
    llama_workspace *ws = NULL;
    CHECK_OK(a->workspace_create(m, bd->B, bd->T, &ws, &err), &err);
    llama_batch b = enc_batch_model(bd);
    int P = m->n_params, L = m->cfg.n_layers;
    uint8_t *flags = malloc((size_t)P);
    for (int i = 0; i < P; i++) flags[i] = m->params[i].layer >= 1 || m->params[i].layer < 0;
    for (int i = 0; i < 5; i++) flags[i] = 0;
    float **g0 = fixture_grads_alloc(m), **g1 = fixture_grads_alloc(m);
    llama_grad_plan plan;
    double l0 = train_step(a, m, ws, &b, flags, g0, &plan, 0);
    counting_hooks h = {llama_workspace_weight_hooks(ws), 0, 0, 0, 0};
    model_weight_hooks wrap = {count_acquire, count_release, count_invalidate, &h};
    llama_workspace_set_weight_hooks(ws, &wrap);
    double l1 = train_step(a, m, ws, &b, flags, g1, &plan, 0);
    int first = plan.lowest_input_grad_layer > 0 ? plan.lowest_input_grad_layer - 1 : 0;
    CHECKF(h.acquires == L + (L - first) && h.releases == h.acquires && h.open == 0 &&
               h.invalidates == 1,
           "%s: hooks: %d acquires, %d releases, %d invalidates (L %d, first %d)", name, h.acquires,
           h.releases, h.invalidates, L, first);
    CHECKF(l0 == l1, "%s: loss with the counting hook %.9g vs %.9g", name, l1, l0);
    for (int i = 0; i < P; i++)
        CHECKF(!memcmp(g0[i], g1[i], sizeof(float) * m->params[i].numel),
               "%s: %s differs under the counting hook", name, m->params[i].name);
    llama_workspace_set_weight_hooks(ws, NULL);
    fixture_grads_free(m, g0);
    fixture_grads_free(m, g1);
    free(flags);
    a->workspace_free(ws);
    a->free(m);
}

/* Runs the reference on folder `model` with batch `batch_path` and every check. */
static void check_folder(const char *name, const char *model, const char *batch_path,
                         const char *work, int dropout) {
    char cmd[8192], path[2048];
    snprintf(path, sizeof path, "%s/ref.safetensors", work);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/bert_ref.py run --model %s --batch %s --out %s",
             test_source_path("tests/ref"), model, batch_path, path);
    if (test_system(cmd) != 0) {
        CHECKF(0, "%s: reference failed: %s", name, cmd);
        return;
    }
    badam_error err = {0};
    st_file *ref = NULL;
    enc_batch bd;
    CHECK_OK(st_open(path, &ref, &err), &err);
    if (!ref || enc_batch_load(batch_path, &bd)) {
        CHECKF(0, "%s: cannot read the reference or %s", name, batch_path);
        st_close(ref);
        return;
    }
    check_model(name, model, &bd, ref);
    check_bf16_and_save(name, model, work, &bd, ref);
    if (dropout) check_dropout(name, model, &bd);
    check_hooks(name, model, &bd);
    enc_batch_free(&bd);
    st_close(ref);
}

static void check_preset(const char *preset) {
    char dir[1024], cmd[4096], model[2048], batch[2048];
    snprintf(dir, sizeof dir, "%s", test_workdir(preset));
    snprintf(model, sizeof model, "%s/model", dir);
    snprintf(batch, sizeof batch, "%s/model/batch.json", dir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/bert_ref.py make --out %s --preset %s",
             test_source_path("tests/ref"), model, preset);
    if (test_system(cmd) != 0) {
        CHECKF(0, "%s: %s failed", preset, cmd);
        return;
    }
    check_folder(preset, model, batch, dir, 1);
}

static void test_bert_pairs_pad(void) {
    check_preset("bert_pairs_pad");
}
static void test_roberta_pad(void) {
    check_preset("roberta_pad");
}
static void test_bert_choice(void) {
    check_preset("bert_choice");
}
static void test_roberta_choice(void) {
    check_preset("roberta_choice");
}

/* badam inspect and badam plan on an encoder folder (the I64 position_ids buffer accepted). */
static void test_cli_inspect_plan(void) {
    char dir[1024], run[1024], cmd[4096], args[2200], out[1 << 15];
    snprintf(dir, sizeof dir, "%s", test_workdir("bert-cli"));
    snprintf(run, sizeof run, "%s", test_workdir("bert-cli-run"));
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/bert_ref.py make --out %s/model --preset roberta_choice",
             test_source_path("tests/ref"), dir);
    CHECK(test_system(cmd) == 0);
    snprintf(args, sizeof args, "inspect %s/model", dir);
    CHECK(test_run_cli(run, NULL, args, out, sizeof out) == 0);
    CHECKF(strstr(out, "roberta (encoder, multiple choice") &&
               strstr(out, "roberta.encoder.layer.1.output.LayerNorm.bias") &&
               strstr(out, "roberta.pooler.dense.weight") && strstr(out, "classifier.bias") &&
               strstr(out, "block 1   roberta.encoder.layer.1.*") && !strstr(out, "MISSING"),
           "%s", out);
    snprintf(args, sizeof args, "plan --model %s/model --method badam --seq-len 16", dir);
    CHECK(test_run_cli(run, NULL, args, out, sizeof out) == 0);
    CHECKF(strstr(out, "roberta") && strstr(out, "2 blocks"), "%s", out);
}

static void test_tiny_random_bert(void) {
    const char *found = test_source_path("../shared/data/tiny-random-bert");
    char model[2048], cfg[2100];
    snprintf(model, sizeof model, "%s", found ? found : "");
    snprintf(cfg, sizeof cfg, "%s/config.json", model);
    FILE *f = found ? fopen(cfg, "rb") : NULL;
    if (!f) {
        fprintf(stderr, "skip: ../shared/data/tiny-random-bert absent (not part of the "
                        "repository)\n");
        return;
    }
    fclose(f);
    char dir[1024], cmd[8192], batch[2048];
    snprintf(dir, sizeof dir, "%s", test_workdir("tiny-random-bert"));
    snprintf(batch, sizeof batch, "%s/batch.json", dir);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/bert_ref.py batch --model %s --out %s --rows 5 --T 14 --pairs",
             test_source_path("tests/ref"), model, batch);
    if (test_system(cmd) != 0) {
        CHECKF(0, "tiny-random-bert: %s failed", cmd);
        return;
    }
    check_folder("tiny-random-bert", model, batch, dir, 0);
}

int main(void) {
    if (!ref_can_run()) return TEST_SKIP_CODE;
    RUN_TEST(test_bert_pairs_pad);
    RUN_TEST(test_roberta_pad);
    RUN_TEST(test_bert_choice);
    RUN_TEST(test_roberta_choice);
    RUN_TEST(test_cli_inspect_plan);
    RUN_TEST(test_tiny_random_bert);
    return test_result();
}
