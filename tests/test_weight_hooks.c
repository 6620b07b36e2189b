/* Per-layer weight hooks (model.h): a counting hook wrapped around the default sees balanced,
 * never nested acquire/release of every layer a pass touches, in forward, forward_logits,
 * backward with and without recomputation, and decoding; invalidate starts every pass; results
 * are the same bits as without the wrapper; a hook that hands out its own copy of the weights is
 * what the model reads; and an acquire error ends the pass with that error. Run on fp32 and bf16
 * weights (bf16 takes the default's fp32 layer copy where the backend asks for it). */
#include <stdlib.h>
#include <string.h>

#include "badam/model.h"
#include "model/llama_internal.h"
#include "model_fixtures.h"

enum { B = 2, T = 7, C = 16, I = 24, L = 3, HQ = 2, HKV = 1, V = 29 };

typedef struct counter {
    model_weight_hooks inner;
    int acquired[L], released[L], invalidated;
    int held;    /* layer acquired and not yet released, or -1 */
    int nested;  /* acquires while another layer was held, or releases of a layer not held */
    int fail_at; /* acquire of this layer fails (-1: never) */
    int matrix_dtype[2]; /* acquires handing out the matrices as [0] stored, [1] fp32 copies */
} counter;

static badam_status count_acquire(void *ctx, const llama_model *m, int layer,
                                  model_layer_weights *lw, badam_error *err) {
    counter *c = ctx;
    if (c->held != -1) c->nested++;
    if (layer == c->fail_at) return badam_fail(err, BADAM_E_IO, "test hook: layer %d", layer);
    c->acquired[layer]++;
    c->held = layer;
    badam_status st = c->inner.acquire(c->inner.ctx, m, layer, lw, err);
    int q = llama_param_index(m, layer, LLAMA_P_Q) - lw->first;
    if (!st) c->matrix_dtype[lw->data[q] != m->params[lw->first + q].data]++;
    if (!st && lw->data[q] != m->params[lw->first + q].data) CHECK(lw->dtype[q] == BADAM_DTYPE_F32);
    return st;
}

static void count_release(void *ctx, const llama_model *m, int layer, model_layer_weights *lw) {
    counter *c = ctx;
    if (c->held != layer) c->nested++;
    c->released[layer]++;
    c->held = -1;
    if (c->inner.release) c->inner.release(c->inner.ctx, m, layer, lw);
}

static void count_invalidate(void *ctx, const llama_model *m) {
    counter *c = ctx;
    c->invalidated++;
    if (c->inner.invalidate) c->inner.invalidate(c->inner.ctx, m);
}

static model_weight_hooks counting(counter *c, model_weight_hooks inner) {
    memset(c, 0, sizeof *c);
    c->inner = inner;
    c->held = c->fail_at = -1;
    model_weight_hooks h = {count_acquire, count_release, count_invalidate, c};
    return h;
}

/* Every layer in [from, L) acquired `times` times, and released as often; nothing else. */
static void check_counts(const counter *c, int from, int times, int invalidated, const char *what) {
    CHECKF(c->nested == 0 && c->held == -1, "%s: nested or unbalanced calls", what);
    CHECKF(c->invalidated == invalidated, "%s: invalidated %d times, expected %d", what,
           c->invalidated, invalidated);
    for (int l = 0; l < L; l++) {
        int want = l >= from ? times : 0;
        CHECKF(c->acquired[l] == want && c->released[l] == want,
               "%s: layer %d acquired %d, released %d, expected %d", what, l, c->acquired[l],
               c->released[l], want);
    }
}

/* Forward + backward under a plan; returns the loss, gradients in grads. */
static double step(const llama_model *m, llama_workspace *ws, const llama_batch *b,
                   const llama_grad_plan *plan, float **view) {
    badam_error err = {0};
    double loss = 0;
    int n = 0;
    badam_status st = llama_forward(m, ws, b, plan, 1.0f, view, &loss, &n, &err);
    if (!st) st = llama_backward(m, ws, b, plan, view, &err);
    CHECKF(st == BADAM_OK, "forward/backward: %s", err.message);
    return loss;
}

static void test_training_passes(badam_dtype dtype) {
    badam_error err = {0};
    llama_config cfg = fixture_config(C, I, L, HQ, HKV, V, 0, 1, 0);
    llama_model *m = NULL;
    CHECK_OK(llama_model_create(&cfg, dtype, &m, &err), &err);
    test_rng rng;
    test_rng_seed(&rng, 5);
    fixture_randomize(m, &rng, 0.2f);
    int32_t tokens[B * T], targets[B * T];
    fixture_batch(&rng, B, T, V, 1, tokens, targets);
    llama_batch b = {.B = B, .T = T, .tokens = tokens, .targets = targets};
    llama_workspace *ws = NULL, *plain = NULL;
    CHECK_OK(llama_workspace_create(m, B, T, &ws, &err), &err);
    CHECK_OK(llama_workspace_create(m, B, T, &plain, &err), &err);
    counter c;
    model_weight_hooks h = counting(&c, llama_workspace_weight_hooks(ws));
    llama_workspace_set_weight_hooks(ws, &h);

    float *lg = malloc(sizeof(float) * B * T * V), *lg0 = malloc(sizeof(float) * B * T * V);
    CHECK_OK(llama_forward_logits(m, ws, &b, lg, &err), &err);
    CHECK_OK(llama_forward_logits(m, plain, &b, lg0, &err), &err);
    CHECK(!memcmp(lg, lg0, sizeof(float) * B * T * V));
    check_counts(&c, 0, 1, 1, "forward_logits");
    /* the default hands out an fp32 copy exactly when the backend asks for one */
    CHECK(c.matrix_dtype[ws->layer_f32 != NULL] == L && c.matrix_dtype[ws->layer_f32 == NULL] == 0);

    /* Plans: everything (backward to layer 0), and layer 2 only (backward visits layer 2). */
    uint8_t *flags = calloc((size_t)m->n_params, 1);
    float **grads = fixture_grads_alloc(m), **grads0 = fixture_grads_alloc(m);
    float **view = calloc((size_t)m->n_params, sizeof *view);
    float **view0 = calloc((size_t)m->n_params, sizeof *view0);
    for (int which = 0; which < 2; which++)
        for (int recompute = 0; recompute < 2; recompute++) {
            for (int i = 0; i < m->n_params; i++)
                flags[i] = which == 0 || m->params[i].layer == L - 1;
            llama_grad_plan plan;
            llama_plan_for_flags(m, flags, 0, &plan);
            plan.recompute = recompute;
            int first = llama_plan_first_layer(m, &plan);
            CHECK(first == (which == 0 ? 0 : L - 1));
            fixture_grads_zero(m, grads), fixture_grads_zero(m, grads0);
            fixture_grads_view(m, grads, flags, view);
            fixture_grads_view(m, grads0, flags, view0);
            h = counting(&c, c.inner);
            llama_workspace_set_weight_hooks(ws, &h);
            double loss = step(m, ws, &b, &plan, view), loss0 = step(m, plain, &b, &plan, view0);
            CHECK(loss == loss0);
            for (int i = 0; i < m->n_params; i++)
                if (flags[i])
                    CHECK(!memcmp(grads[i], grads0[i], sizeof(float) * m->params[i].numel));
            /* forward acquires every layer once; backward each visited layer once more */
            for (int l = 0; l < L; l++) {
                int want = 1 + (l >= first);
                CHECKF(c.acquired[l] == want && c.released[l] == want,
                       "plan %d recompute %d: layer %d acquired %d released %d, expected %d", which,
                       recompute, l, c.acquired[l], c.released[l], want);
            }
            CHECK(c.nested == 0 && c.held == -1 && c.invalidated == 1);
        }

    /* A failing acquire ends the pass with its error. */
    h = counting(&c, c.inner);
    c.fail_at = 1;
    llama_workspace_set_weight_hooks(ws, &h);
    double loss;
    int n;
    CHECK(llama_forward(m, ws, &b, NULL, 1.0f, NULL, &loss, &n, &err) == BADAM_E_IO);
    CHECK(strstr(err.message, "test hook: layer 1") != NULL);
    llama_workspace_set_weight_hooks(ws, NULL); /* the default again */
    CHECK_OK(llama_forward_logits(m, ws, &b, lg, &err), &err);
    CHECK(!memcmp(lg, lg0, sizeof(float) * B * T * V));

    fixture_grads_free(m, grads), fixture_grads_free(m, grads0);
    free(view), free(view0), free(flags), free(lg), free(lg0);
    llama_workspace_free(ws);
    llama_workspace_free(plain);
    llama_model_free(m);
}

/* A hook with its own copy of the weights (as a memory-mapped or gathered copy would be): the
 * model reads what acquire hands out, not params[].data. */
typedef struct shadow {
    llama_model *copy;
} shadow;

static badam_status shadow_acquire(void *ctx, const llama_model *m, int layer,
                                   model_layer_weights *lw, badam_error *err) {
    (void)m;
    return model_layer_weights_stored(((shadow *)ctx)->copy, layer, lw, err);
}

static void test_hook_supplies_weights(void) {
    badam_error err = {0};
    llama_config cfg = fixture_config(C, I, L, HQ, HKV, V, 1, 0, 0);
    llama_model *m = NULL, *other = NULL;
    CHECK_OK(llama_model_create(&cfg, BADAM_DTYPE_F32, &m, &err), &err);
    CHECK_OK(llama_model_create(&cfg, BADAM_DTYPE_F32, &other, &err), &err);
    test_rng rng;
    test_rng_seed(&rng, 9);
    fixture_randomize(m, &rng, 0.2f);
    fixture_randomize(other, &rng, 0.2f);
    /* `mixed`: m's embedding and head, other's layers */
    llama_model *mixed = NULL;
    CHECK_OK(llama_model_create(&cfg, BADAM_DTYPE_F32, &mixed, &err), &err);
    for (int i = 0; i < m->n_params; i++)
        memcpy(mixed->params[i].data, (m->params[i].layer >= 0 ? other : m)->params[i].data,
               m->params[i].numel * sizeof(float));
    int32_t tokens[T];
    for (int t = 0; t < T; t++) tokens[t] = (int32_t)(test_rng_u32(&rng) % V);
    llama_batch b = {.B = 1, .T = T, .tokens = tokens};
    llama_workspace *ws = NULL, *ws2 = NULL;
    CHECK_OK(llama_workspace_create(m, 1, T, &ws, &err), &err);
    CHECK_OK(llama_workspace_create(mixed, 1, T, &ws2, &err), &err);
    shadow sh = {other};
    model_weight_hooks h = {shadow_acquire, NULL, NULL, &sh};
    llama_workspace_set_weight_hooks(ws, &h);
    float *lg = malloc(sizeof(float) * T * V), *want = malloc(sizeof(float) * T * V);
    CHECK_OK(llama_forward_logits(m, ws, &b, lg, &err), &err);
    CHECK_OK(llama_forward_logits(mixed, ws2, &b, want, &err), &err);
    CHECK(!memcmp(lg, want, sizeof(float) * T * V));

    /* the same through the KV cache */
    llama_kv_cache *kv = NULL;
    CHECK_OK(llama_kv_cache_create(m, T, 3, &kv, &err), &err);
    llama_kv_cache_set_weight_hooks(kv, &h);
    CHECK_OK(llama_decode(m, kv, tokens, T, lg, 1, &err), &err);
    CHECK_CLOSE(lg, want, (size_t)T * V, 1e-5, 1e-4, "decode through a supplying hook");
    llama_kv_cache_free(kv);
    free(lg), free(want);
    llama_workspace_free(ws), llama_workspace_free(ws2);
    llama_model_free(m), llama_model_free(other), llama_model_free(mixed);
}

static void test_decode(badam_dtype dtype) {
    badam_error err = {0};
    llama_config cfg = fixture_config(C, I, L, HQ, HKV, V, 1, 1, 1);
    cfg.max_position_embeddings = 32;
    llama_model *m = NULL;
    CHECK_OK(llama_model_create(&cfg, dtype, &m, &err), &err);
    test_rng rng;
    test_rng_seed(&rng, 11);
    fixture_randomize(m, &rng, 0.2f);
    CHECK_OK(llama_lora_attach(m, 2, 4.0f, 0.0f, 1u << MODEL_ROLE_V, 3, &err), &err);
    int32_t tokens[8];
    for (int t = 0; t < 8; t++) tokens[t] = (int32_t)(test_rng_u32(&rng) % V);
    llama_kv_cache *kv = NULL, *plain = NULL;
    CHECK_OK(llama_kv_cache_create(m, 16, 3, &kv, &err), &err);
    CHECK_OK(llama_kv_cache_create(m, 16, 3, &plain, &err), &err);
    counter c;
    model_weight_hooks h = counting(&c, llama_kv_cache_weight_hooks(kv));
    llama_kv_cache_set_weight_hooks(kv, &h);
    float lg[V], lg0[V];
    /* a prompt of 7 tokens in chunks of 3 (3 chunks), then one token */
    CHECK_OK(llama_decode(m, kv, tokens, 7, lg, 0, &err), &err);
    CHECK_OK(llama_decode(m, plain, tokens, 7, lg0, 0, &err), &err);
    CHECK(!memcmp(lg, lg0, sizeof lg));
    check_counts(&c, 0, 3, 1, "decode prompt");
    CHECK_OK(llama_decode(m, kv, tokens + 7, 1, lg, 0, &err), &err);
    CHECK_OK(llama_decode(m, plain, tokens + 7, 1, lg0, 0, &err), &err);
    CHECK(!memcmp(lg, lg0, sizeof lg));
    check_counts(&c, 0, 4, 2, "decode step");
    llama_kv_cache_free(kv);
    llama_kv_cache_free(plain);
    llama_model_free(m);
}

static void test_fp32(void) {
    test_training_passes(BADAM_DTYPE_F32);
    test_decode(BADAM_DTYPE_F32);
}

static void test_bf16(void) {
    test_training_passes(BADAM_DTYPE_BF16);
    test_decode(BADAM_DTYPE_BF16);
}

int main(void) {
    RUN_TEST(test_fp32);
    RUN_TEST(test_bf16);
    RUN_TEST(test_hook_supplies_weights);
    return test_result();
}
