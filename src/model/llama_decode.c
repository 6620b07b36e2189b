/* Incremental decoding over a KV cache: n new tokens at positions p0 .. p0+n-1 that attend to
 * every cached key (a prompt is a chunk of rows, a generation step is one row). Each layer is
 * llama_forward.c's llama_layer_forward on the chunk's rows, with the layer's keys and values
 * written straight into the cache rows p0.. (after RoPE) and attention over cache rows lo .. p:
 *   P[t2] = softmax_t2(q . K[t2] / sqrt(D)),  out = sum_t2 P[t2] V[t2],  t2 in [lo, p]
 * for query head h over kv head h / (Hq/Hkv) (GQA, K and V never repeated), where lo = 0, or
 * p - window + 1 for Mistral's sliding window. Keys and values are kept in fp32 whatever the
 * weights' dtype, so the logits equal a full-sequence forward up to rounding. LoRA adapters, when
 * attached, are applied unmerged, without dropout. Layer weights come through the cache's weight
 * hooks (default: the stored weights). Every op runs on the cache's backend (kv->be, a CPU backend
 * the cache owns); its buffers are backend memory, and the token ids and positions are uploaded
 * to it per chunk. */
#include <stdlib.h>
#include <string.h>

#include "badam/decode.h"
#include "model/llama_internal.h"

#define DEFAULT_CHUNK 64

struct llama_kv_cache {
    const llama_model *m;
    int max_len, max_chunk, len;
    int L, C, QD, KVD, I, V, Hq, Hkv, D, window;
    float *k, *v;         /* [L][max_len][KVD] after RoPE (keys) */
    int32_t *ids;         /* [max_len] */
    float *cos_t, *sin_t; /* [max_len][D/2] */
    float *x[2]; /* chunk rows of the residual stream (a layer reads one, writes the other) */
    float *xn, *q, *attn, *x_mid, *gate, *up, *h; /* chunk rows */
    float *lin_scratch, *scores, *lora_u, *bottleneck;
    float *vec[2];      /* fp32 conversion slots for norm weights and biases */
    float *final_w;     /* the final norm's weight in fp32 */
    int32_t *pos, *tok; /* [max_chunk] positions and token ids of the chunk (backend memory) */
    int32_t *host_pos;  /* [max_chunk] host staging for pos */
    model_weight_hooks hooks;
    backend *be;
};

/* n elements of `size` bytes of backend memory (at least one); sets *failed when out of memory. */
static void *xcalloc(llama_kv_cache *kv, size_t n, size_t size, int *failed) {
    void *p = n > SIZE_MAX / size ? NULL : BE(kv->be, alloc, BADAM_MEM_OTHER, (n ? n : 1) * size);
    if (!p) *failed = 1;
    return p;
}

void llama_kv_cache_free(llama_kv_cache *kv) {
    if (!kv) return;
    backend *be = kv->be;
    if (be) {
        void *bufs[] = {
            kv->k,      kv->v,      kv->cos_t,  kv->sin_t,  kv->x[0],    kv->x[1], kv->xn,
            kv->q,      kv->attn,   kv->x_mid,  kv->gate,   kv->up,      kv->h,    kv->lin_scratch,
            kv->scores, kv->lora_u, kv->vec[0], kv->vec[1], kv->final_w, kv->pos,  kv->tok};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) BE(be, free, bufs[i]);
        if (kv->bottleneck) BE(be, free, kv->bottleneck);
    }
    free(kv->ids), free(kv->host_pos);
    backend_destroy(be);
    free(kv);
}

/* Allocates the cache's buffers; 0 when out of memory. */
static int alloc_buffers(llama_kv_cache *kv, const llama_model *m) {
    size_t N = (size_t)kv->max_chunk, half = (size_t)kv->D / 2;
    size_t kvn = (size_t)kv->L * kv->max_len * kv->KVD;
    int in_max = kv->C > kv->QD ? kv->C : kv->QD;
    if (kv->I > in_max) in_max = kv->I;
    int r = m->lora ? m->lora->rank : 0, f = 0;
    size_t vec = (size_t)(kv->C > kv->QD ? kv->C : kv->QD);
    const backend_ops *ops = kv->be->ops;
    kv->k = xcalloc(kv, kvn, sizeof(float), &f);
    kv->v = xcalloc(kv, kvn, sizeof(float), &f);
    kv->cos_t = xcalloc(kv, (size_t)kv->max_len * half, sizeof(float), &f);
    kv->sin_t = xcalloc(kv, (size_t)kv->max_len * half, sizeof(float), &f);
    for (int i = 0; i < 2; i++) {
        kv->x[i] = xcalloc(kv, N * kv->C, sizeof(float), &f);
        kv->vec[i] = xcalloc(kv, vec, sizeof(float), &f);
    }
    kv->xn = xcalloc(kv, N * kv->C, sizeof(float), &f);
    kv->q = xcalloc(kv, N * kv->QD, sizeof(float), &f);
    kv->attn = xcalloc(kv, N * kv->QD, sizeof(float), &f);
    kv->x_mid = xcalloc(kv, N * kv->C, sizeof(float), &f);
    kv->gate = xcalloc(kv, N * kv->I, sizeof(float), &f);
    kv->up = xcalloc(kv, N * kv->I, sizeof(float), &f);
    kv->h = xcalloc(kv, N * kv->I, sizeof(float), &f);
    kv->lin_scratch = xcalloc(kv, ops->linear_scratch_floats(in_max), sizeof(float), &f);
    kv->scores =
        xcalloc(kv, ops->attention_decode_scratch_floats(kv->be, kv->max_len), sizeof(float), &f);
    kv->lora_u = xcalloc(kv, N * (size_t)(r > 0 ? r : 1), sizeof(float), &f);
    if (m->bottleneck) /* a bottleneck adapter's input and hidden (nothing kept across sites) */
        kv->bottleneck = xcalloc(kv, N * (size_t)(kv->C + m->bottleneck->size), sizeof(float), &f);
    kv->final_w = xcalloc(kv, (size_t)kv->C, sizeof(float), &f);
    kv->pos = xcalloc(kv, N, sizeof(int32_t), &f);
    kv->tok = xcalloc(kv, N, sizeof(int32_t), &f);
    kv->ids = calloc((size_t)kv->max_len, sizeof(int32_t));
    kv->host_pos = calloc(N, sizeof(int32_t));
    return !f && kv->ids && kv->host_pos;
}

static badam_status stored_acquire(void *ctx, const llama_model *m, int layer,
                                   model_layer_weights *lw, badam_error *err) {
    (void)ctx;
    return model_layer_weights_stored(m, layer, lw, err);
}

model_weight_hooks llama_kv_cache_weight_hooks(const llama_kv_cache *kv) {
    return kv->hooks;
}

void llama_kv_cache_set_weight_hooks(llama_kv_cache *kv, const model_weight_hooks *hooks) {
    model_weight_hooks stored = {stored_acquire, NULL, NULL, NULL};
    kv->hooks = hooks ? *hooks : stored;
}

badam_status llama_kv_cache_create(const llama_model *m, int max_len, int max_chunk,
                                   llama_kv_cache **out, badam_error *err) {
    *out = NULL;
    const llama_config *c = &m->cfg;
    if (max_len <= 0 || max_len > c->max_position_embeddings)
        return badam_fail(err, BADAM_E_INVALID,
                          "KV cache: length %d is not in [1, max_position_embeddings = %d]",
                          max_len, c->max_position_embeddings);
    if (!m->storage) return badam_fail(err, BADAM_E_INVALID, "KV cache: the model has no weights");
    llama_kv_cache *kv = calloc(1, sizeof *kv);
    if (!kv) return badam_fail(err, BADAM_E_NOMEM, "KV cache: out of memory");
    badam_status st = backend_cpu_create(&kv->be, err);
    if (st) {
        free(kv);
        return st;
    }
    kv->m = m;
    kv->max_len = max_len;
    kv->max_chunk = max_chunk > 0 ? max_chunk : DEFAULT_CHUNK;
    if (kv->max_chunk > max_len) kv->max_chunk = max_len;
    kv->L = c->n_layers, kv->C = c->hidden_size, kv->I = c->intermediate_size;
    kv->V = c->vocab_size, kv->Hq = c->n_heads, kv->Hkv = c->n_kv_heads, kv->D = c->head_dim;
    kv->QD = kv->Hq * kv->D, kv->KVD = kv->Hkv * kv->D;
    kv->window = !strcmp(c->model_type, "mistral") ? c->sliding_window : 0;
    llama_kv_cache_set_weight_hooks(kv, NULL);
    if (!alloc_buffers(kv, m)) {
        llama_kv_cache_free(kv);
        return badam_fail(err, BADAM_E_NOMEM, "KV cache: out of memory for %d tokens", max_len);
    }
    BE(kv->be, rope_tables, kv->cos_t, kv->sin_t, m->inv_freq, max_len, kv->D / 2);
    *out = kv;
    return BADAM_OK;
}

int llama_kv_cache_length(const llama_kv_cache *kv) {
    return kv->len;
}

int llama_kv_cache_capacity(const llama_kv_cache *kv) {
    return kv->max_len;
}

const int32_t *llama_kv_cache_tokens(const llama_kv_cache *kv) {
    return kv->ids;
}

void llama_kv_cache_truncate(llama_kv_cache *kv, int len) {
    if (len < 0) len = 0;
    if (len < kv->len) kv->len = len;
}

/* Runs the chunk's rows kv->x[cur] (positions p0 .. p0+n-1) through every layer; returns the
 * buffer holding the last layer's output. */
static badam_status decode_layers(llama_kv_cache *kv, int p0, int n, int *cur, badam_error *err) {
    const llama_model *m = kv->m;
    layer_run r = {0};
    r.be = kv->be, r.n = n, r.pos = kv->pos, r.cos_t = kv->cos_t, r.sin_t = kv->sin_t;
    r.lin_scratch = kv->lin_scratch, r.vec[0] = kv->vec[0], r.vec[1] = kv->vec[1];
    r.p0 = p0, r.max_len = kv->max_len, r.window = kv->window, r.scores = kv->scores;
    layer_acts a = {0};
    a.xn1 = a.xn2 = kv->xn, a.q = kv->q, a.attn = kv->attn, a.x_mid = kv->x_mid;
    a.gate = kv->gate, a.up = kv->up, a.h = kv->h;
    for (int k = 0; k < LLAMA_P_KIND_COUNT; k++) a.lora_u[k] = kv->lora_u;
    a.bottleneck[0] = a.bottleneck[1] = kv->bottleneck;
    for (int l = 0; l < kv->L; l++) {
        float *k_layer = kv->k + (size_t)l * kv->max_len * kv->KVD;
        float *v_layer = kv->v + (size_t)l * kv->max_len * kv->KVD;
        r.k_cache = k_layer, r.v_cache = v_layer;
        a.k = k_layer + (size_t)p0 * kv->KVD, a.v = v_layer + (size_t)p0 * kv->KVD;
        model_layer_weights lw;
        badam_status st = llama_acquire_layer(&kv->hooks, m, l, &lw, err);
        if (st) return st;
        llama_layer_forward(m, &r, &lw, l, &a, kv->x[*cur], kv->x[1 - *cur]);
        llama_release_layer(&kv->hooks, m, l, &lw);
        *cur = 1 - *cur;
    }
    return BADAM_OK;
}

/* The final norm's weight in fp32 (read for every call: weights may change between calls). */
static const float *final_norm_f32(llama_kv_cache *kv) {
    const llama_model *m = kv->m;
    const llama_param *p = &m->params[m->final_norm];
    if (m->dtype == BADAM_DTYPE_F32) return p->data;
    BE(kv->be, convert, kv->final_w, BADAM_DTYPE_F32, p->data, m->dtype, p->numel);
    return kv->final_w;
}

/* Checks a decode call's arguments. */
static badam_status check_decode(const llama_model *m, const llama_kv_cache *kv,
                                 const int32_t *tokens, int n, badam_error *err) {
    if (m != kv->m)
        return badam_fail(err, BADAM_E_INVALID, "llama_decode: the cache belongs to another model");
    if (n <= 0) return badam_fail(err, BADAM_E_INVALID, "llama_decode: no tokens (n = %d)", n);
    if (n > kv->max_len - kv->len)
        return badam_fail(err, BADAM_E_INVALID,
                          "llama_decode: %d more tokens do not fit the KV cache (%d of %d used)", n,
                          kv->len, kv->max_len);
    if (!strcmp(m->cfg.model_type, "qwen2") && m->cfg.sliding_window > 0 &&
        kv->len + n > m->cfg.sliding_window)
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "llama_decode: sequence length %d exceeds the qwen2 sliding_window %d "
                          "(per-layer sliding windows are not implemented)",
                          kv->len + n, m->cfg.sliding_window);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= kv->V)
            return badam_fail(err, BADAM_E_SHAPE,
                              "llama_decode: token id %d (input %d) is outside the vocabulary "
                              "[0, %d)",
                              tokens[i], i, kv->V);
    return BADAM_OK;
}

badam_status llama_decode(const llama_model *m, llama_kv_cache *kv, const int32_t *tokens, int n,
                          float *logits, int all_logits, badam_error *err) {
    badam_status st = check_decode(m, kv, tokens, n, err);
    if (st) return st;
    if (kv->hooks.invalidate) kv->hooks.invalidate(kv->hooks.ctx, m); /* weights may have changed */
    int C = kv->C;
    const void *head = m->params[m->lm_head].data;
    const float *final_w = final_norm_f32(kv);
    for (int done = 0; done < n;) {
        int c = n - done < kv->max_chunk ? n - done : kv->max_chunk, p0 = kv->len, cur = 0;
        for (int i = 0; i < c; i++) {
            kv->host_pos[i] = p0 + i;
            kv->ids[p0 + i] = tokens[done + i];
        }
        BE(kv->be, upload, kv->pos, kv->host_pos, sizeof(int32_t) * (size_t)c);
        BE(kv->be, upload, kv->tok, tokens + done, sizeof(int32_t) * (size_t)c);
        BE(kv->be, embedding_forward, kv->x[cur], kv->tok, c, m->params[m->embed].data, m->dtype,
           C);
        if ((st = decode_layers(kv, p0, c, &cur, err))) return st;
        kv->len += c;
        const float *x = kv->x[cur];
        if (logits && all_logits) {
            BE(kv->be, rmsnorm_forward, kv->xn, NULL, x, final_w, c, C, m->cfg.rms_norm_eps);
            BE(kv->be, linear_forward, logits + (size_t)done * kv->V, kv->xn, head, m->dtype, NULL,
               c, C, kv->V, kv->lin_scratch);
        } else if (logits && done + c == n) {
            const float *last = x + (size_t)(c - 1) * C;
            BE(kv->be, rmsnorm_forward, kv->xn, NULL, last, final_w, 1, C, m->cfg.rms_norm_eps);
            BE(kv->be, linear_forward, logits, kv->xn, head, m->dtype, NULL, 1, C, kv->V,
               kv->lin_scratch);
        }
        done += c;
    }
    return BADAM_OK;
}
