/* The masked-LM layout of the encoder family (RobertaForMaskedLM, BertForMaskedLM: lm_head.* or
 * cls.predictions.*, the decoder tied to the word embeddings) against the PyTorch reference
 * (tests/ref/bert_ref.py, float64, HF's RobertaLMHead / BertLMPredictionHead math) on random tiny
 * folders: the loss (mean cross-entropy over the positions with a target) and every parameter's
 * gradient (the word embedding's holding the tied decoder's part) within 1e-4 relative in fp32,
 * with and without recompute; BAdam's last block + head; the GEMM FLOP count; predictions equal
 * the reference logits' argmax; save + load keeps the loss bit for bit and writes the MaskedLM
 * architecture. Skips when /usr/bin/python3 has no torch. */
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

/* ATOL: the key bias's gradient is 0 in exact arithmetic (each query's softmax ignores a shift
 * common to its keys), so fp32 leaves ~1e-7 of rounding there against a float64 0 */
#define RTOL 1e-4
#define ATOL 1e-6

static int count_targets(const llama_batch *b) {
    int n = 0;
    for (int i = 0; i < b->B * b->T; i++) n += b->targets[i] != -100;
    return n;
}

/* Forward + backward of the plan of `flags`; returns the mean loss. */
static double step(const model_arch *a, llama_model *m, llama_workspace *ws, const llama_batch *b,
                   const uint8_t *flags, float **grads, int recompute, llama_grad_plan *plan) {
    badam_error err = {0};
    fixture_grads_zero(m, grads);
    float **view = calloc((size_t)m->n_params, sizeof *view);
    fixture_grads_view(m, grads, flags, view);
    a->plan_for_flags(m, flags, 0, plan);
    plan->recompute = recompute;
    int n = count_targets(b), got = 0;
    double sum = NAN;
    llama_workspace_reset_counters(ws);
    badam_status st = a->forward(m, ws, b, plan, 1.0f / (float)n, view, &sum, &got, &err);
    if (!st) st = a->backward(m, ws, b, plan, view, &err);
    CHECKF(!st, "MLM step: %s", err.message);
    CHECK(got == n);
    free(view);
    return st ? NAN : sum / n;
}

static void compare_grads(const char *name, const char *what, const llama_model *m,
                          const uint8_t *flags, float **grads, st_file *ref) {
    for (int i = 0; i < m->n_params; i++) {
        if (!flags[i]) continue;
        char key[160], w2[400];
        snprintf(key, sizeof key, "grad.%s", m->params[i].name);
        snprintf(w2, sizeof w2, "%s (%s)", key, what);
        ref_compare(name, w2, grads[i], st_find(ref, key), m->params[i].numel, ATOL, RTOL);
    }
}

/* Every gradient (recompute 0 and 1), then BAdam's last layer + head. */
static void check_grads(const char *name, const model_arch *a, llama_model *m, llama_workspace *ws,
                        const llama_batch *b, st_file *ref) {
    int P = m->n_params, L = m->cfg.n_layers;
    uint8_t *flags = malloc((size_t)P);
    float **grads = fixture_grads_alloc(m);
    llama_grad_plan plan;
    for (int recompute = 0; recompute <= 1; recompute++) {
        memset(flags, 1, (size_t)P);
        float loss = (float)step(a, m, ws, b, flags, grads, recompute, &plan);
        if (!recompute)
            CHECK(llama_workspace_counters(ws).gemm_flops ==
                  a->gemm_flops(m, &plan, b->B, b->T, count_targets(b)));
        const char *what = recompute ? "recompute" : "all kept";
        ref_compare(name, what, &loss, st_find(ref, "loss"), 1, ATOL, RTOL);
        compare_grads(name, what, m, flags, grads, ref);
    }
    for (int i = 0; i < P; i++) flags[i] = m->params[i].layer == L - 1 || m->params[i].layer < 0;
    for (int i = 0; i < 5; i++) flags[i] = 0; /* the embeddings (and so the decoder) frozen */
    float loss = (float)step(a, m, ws, b, flags, grads, 0, &plan);
    CHECK(plan.lowest_input_grad_layer == L);
    CHECK(llama_workspace_counters(ws).gemm_flops ==
          a->gemm_flops(m, &plan, b->B, b->T, count_targets(b)));
    ref_compare(name, "block plan", &loss, st_find(ref, "loss"), 1, ATOL, RTOL);
    compare_grads(name, "block plan", m, flags, grads, ref);
    fixture_grads_free(m, grads);
    free(flags);
}

/* Predictions: the argmax of the reference's logits at every position with a target. */
static void check_predict(const char *name, llama_model *m, llama_workspace *ws,
                          const llama_batch *b, st_file *ref) {
    badam_error err = {0};
    int N = b->B * b->T, V = m->cfg.vocab_size, wrong = 0;
    int32_t *pred = malloc(sizeof(int32_t) * (size_t)N);
    CHECK_OK(bert_mlm_predict(m, ws, b, pred, &err), &err);
    const st_tensor *t = st_find(ref, "logits");
    CHECK(t && t->numel == (size_t)N * V);
    for (int i = 0; t && i < N; i++) {
        const float *lg = (const float *)t->data + (size_t)i * V;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (lg[v] > lg[best]) best = v;
        wrong += b->targets[i] == -100 ? pred[i] != -1 : pred[i] != best;
    }
    CHECKF(!wrong, "%s: %d predictions differ from the reference's argmax", name, wrong);
    free(pred);
}

/* Save + load: the loss bit for bit, config.json keeps the MaskedLM architecture. */
static void check_save(const char *name, const char *dir, const char *work, llama_model *m,
                       llama_workspace *ws, const llama_batch *b) {
    badam_error err = {0};
    const model_arch *a = model_arch_find(m->cfg.model_type);
    char out[2048], cfg[2100], text[8192] = {0};
    snprintf(out, sizeof out, "%s/saved", work);
    CHECK_OK(a->save(m, dir, out, 0, &err), &err);
    llama_model *m2 = NULL;
    CHECK_OK(a->load(out, BADAM_DTYPE_F32, &m2, &err), &err);
    double s1 = 0, s2 = -1;
    int n;
    CHECK_OK(a->forward(m, ws, b, NULL, 0.0f, NULL, &s1, &n, &err), &err);
    if (m2) CHECK_OK(a->forward(m2, ws, b, NULL, 0.0f, NULL, &s2, &n, &err), &err);
    CHECKF(s1 == s2, "%s: loss after save + load %.9g vs %.9g", name, s2, s1);
    snprintf(cfg, sizeof cfg, "%s/config.json", out);
    FILE *f = fopen(cfg, "rb");
    if (f) {
        CHECK(fread(text, 1, sizeof text - 1, f) > 0);
        fclose(f);
    }
    CHECKF(strstr(text, "ForMaskedLM"), "%s: saved config: %s", name, text);
    a->free(m2);
}

typedef struct log_capture {
    char text[2048];
} log_capture;
static void capture(void *ctx, badam_log_level level, const char *text) {
    (void)level;
    snprintf(((log_capture *)ctx)->text, sizeof((log_capture *)ctx)->text, "%s", text);
}

/* The folder loaded for sequence classification (as transformers does): the body bit for bit,
 * the masked-LM head dropped, the classifier initialised from the seed (N(0, 0.02^2) weights,
 * zero biases) and named in one log line; the same seed the same weights, another seed others. */
static void check_load_as(const char *name, const char *dir, const llama_model *mlm) {
    badam_error err = {0};
    log_capture cap = {""};
    badam_logger lg = {capture, &cap};
    llama_encoder_head head =
        !strcmp(mlm->cfg.model_type, "roberta") ? LLAMA_HEAD_ROBERTA_CLASSIFIER : LLAMA_HEAD_POOLER;
    llama_model *m = NULL, *m2 = NULL, *m3 = NULL;
    CHECK_OK(bert_model_load_as(dir, BADAM_DTYPE_F32, head, 3, 5, &lg, &m, &err), &err);
    CHECK_OK(bert_model_load_as(dir, BADAM_DTYPE_F32, head, 3, 5, NULL, &m2, &err), &err);
    CHECK_OK(bert_model_load_as(dir, BADAM_DTYPE_F32, head, 3, 6, NULL, &m3, &err), &err);
    if (!m || !m2 || !m3) return;
    int body = 5 + 16 * m->cfg.n_layers, P = m->n_params;
    CHECK(m->cfg.num_labels == 3 && m->cfg.encoder_head == (int)head && P == body + 4);
    for (int i = 0; i < body; i++)
        CHECKF(!memcmp(m->params[i].data, mlm->params[i].data, m->params[i].numel * 4),
               "%s: %s differs from the masked-LM folder's", name, m->params[i].name);
    const llama_param *w = &m->params[P - 2], *b = &m->params[P - 1];
    double sq = 0;
    for (size_t j = 0; j < w->numel; j++)
        sq += (double)((float *)w->data)[j] * ((float *)w->data)[j];
    double sd = sqrt(sq / (double)w->numel), bsum = 0;
    for (size_t j = 0; j < b->numel; j++) bsum += fabs(((float *)b->data)[j]);
    CHECKF(sd > 0.012 && sd < 0.03 && bsum == 0, "%s: new classifier sd %.4f, |bias| %.3g", name,
           sd, bsum);
    CHECK(!memcmp(w->data, m2->params[P - 2].data, w->numel * 4));
    CHECK(memcmp(w->data, m3->params[P - 2].data, w->numel * 4) != 0);
    CHECKF(strstr(cap.text, w->name) && strstr(cap.text, "dropped"), "%s: log line '%s'", name,
           cap.text);
    llama_model_free(m), llama_model_free(m2), llama_model_free(m3);
    CHECK(bert_model_load_as(dir, BADAM_DTYPE_F32, LLAMA_HEAD_MLM, 2, 5, NULL, &m2, &err) ==
          BADAM_E_INVALID);
}

static void check_preset(const char *preset) {
    char dir[1024], cmd[8192], model[1100], batch[1200], refp[1200];
    snprintf(dir, sizeof dir, "%s", test_workdir(preset));
    snprintf(model, sizeof model, "%s/model", dir);
    snprintf(batch, sizeof batch, "%s/model/batch.json", dir);
    snprintf(refp, sizeof refp, "%s/ref.safetensors", dir);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/bert_ref.py make --out %s --preset %s && /usr/bin/python3 "
             "%s/bert_ref.py run --model %s --batch %s --out %s",
             test_source_path("tests/ref"), model, preset, test_source_path("tests/ref"), model,
             batch, refp);
    if (ref_run(cmd)) {
        CHECKF(0, "%s: %s failed", preset, cmd);
        return;
    }
    badam_error err = {0};
    const model_arch *a = NULL;
    llama_model *m = NULL;
    enc_batch bd;
    st_file *ref = NULL;
    CHECK_OK(model_arch_for_folder(model, &a, &err), &err);
    if (!a || enc_batch_load(batch, &bd)) {
        CHECKF(0, "%s: cannot load %s", preset, batch);
        return;
    }
    CHECK(bd.per_token);
    CHECK_OK(a->load(model, BADAM_DTYPE_F32, &m, &err), &err);
    CHECK_OK(st_open(refp, &ref, &err), &err);
    llama_workspace *ws = NULL;
    if (m) CHECK_OK(a->workspace_create(m, bd.B, bd.T, &ws, &err), &err);
    llama_batch b = enc_batch_model(&bd);
    if (m && ws && ref) {
        CHECK(m->cfg.encoder_head == LLAMA_HEAD_MLM);
        check_grads(preset, a, m, ws, &b, ref);
        check_predict(preset, m, ws, &b, ref);
        check_save(preset, model, dir, m, ws, &b);
        check_load_as(preset, model, m);
        llama_batch seq = b;
        seq.target_kind = MODEL_TARGETS_SEQUENCE;
        double s;
        int n;
        CHECK(a->forward(m, ws, &seq, NULL, 0.0f, NULL, &s, &n, &err) == BADAM_E_INVALID);
    }
    a->workspace_free(ws);
    st_close(ref);
    enc_batch_free(&bd);
    a->free(m);
}

static void test_roberta_mlm(void) {
    check_preset("roberta_mlm");
}
static void test_bert_mlm(void) {
    check_preset("bert_mlm");
}

int main(void) {
    if (!ref_can_run()) return TEST_SKIP_CODE;
    RUN_TEST(test_roberta_mlm);
    RUN_TEST(test_bert_mlm);
    return test_result();
}
