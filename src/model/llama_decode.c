/* Incremental decoding over a KV cache: the same layer math as llama_forward.c, for n new tokens
 * at positions p0 .. p0+n-1 that attend to every cached key (a prompt is a chunk of rows, a
 * generation step is one row):
 *   n1 = rmsnorm(x) * input_layernorm;  q = rope(q_proj(n1));  K[p] = rope(k_proj(n1));
 *   V[p] = v_proj(n1);  x += o_proj(attention(q, K[lo..p], V[lo..p]))
 *   n2 = rmsnorm(x) * post_attention_layernorm;  x += down_proj(silu(gate_proj(n2)) * up_proj(n2))
 * with attention for query head h over kv head h / (Hq/Hkv) (GQA, K and V never repeated):
 *   P[t2] = softmax_t2(q . K[t2] / sqrt(D)),  out = sum_t2 P[t2] V[t2],  t2 in [lo, p]
 * where lo = 0, or p - window + 1 for Mistral's sliding window. Keys and values are kept in
 * fp32 whatever the weights' dtype, so the logits equal a full-sequence forward up to rounding.
 * LoRA adapters, when attached, are applied unmerged: y += (alpha / r) B (A x), no dropout.
 * Every op runs on the cache's backend (kv->be, a CPU backend the cache owns); its buffers are
 * backend memory, and the token ids and positions are uploaded to it per chunk. */
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
    float **small;        /* [n_params]: fp32 view of each 1-D parameter (norms, biases) */
    float *x, *xn, *q, *attn, *tmp, *gate, *up, *h; /* chunk rows */
    float *lin_scratch, *scores, *lora_u;
    int32_t *pos, *tok; /* [max_chunk] positions and token ids of the chunk (backend memory) */
    int32_t *host_pos;  /* [max_chunk] host staging for pos */
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
    if (be && kv->small) {
        for (int i = 0; i < kv->m->n_params; i++)
            if (kv->small[i] != kv->m->params[i].data) BE(be, free, kv->small[i]);
    }
    free(kv->small);
    if (be) {
        void *bufs[] = {kv->k,           kv->v,      kv->cos_t,  kv->sin_t, kv->x,  kv->xn,
                        kv->q,           kv->attn,   kv->tmp,    kv->gate,  kv->up, kv->h,
                        kv->lin_scratch, kv->scores, kv->lora_u, kv->pos,   kv->tok};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) BE(be, free, bufs[i]);
    }
    free(kv->ids), free(kv->host_pos);
    backend_destroy(be);
    free(kv);
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
    size_t N = (size_t)kv->max_chunk, half = (size_t)kv->D / 2;
    size_t kvn = (size_t)kv->L * max_len * kv->KVD;
    int in_max = kv->C > kv->QD ? kv->C : kv->QD;
    if (kv->I > in_max) in_max = kv->I;
    int r = m->lora ? m->lora->rank : 0;
    int f = 0;
    const backend_ops *ops = kv->be->ops;
    kv->k = xcalloc(kv, kvn, sizeof(float), &f);
    kv->v = xcalloc(kv, kvn, sizeof(float), &f);
    kv->cos_t = xcalloc(kv, (size_t)max_len * half, sizeof(float), &f);
    kv->sin_t = xcalloc(kv, (size_t)max_len * half, sizeof(float), &f);
    kv->x = xcalloc(kv, N * kv->C, sizeof(float), &f);
    kv->xn = xcalloc(kv, N * kv->C, sizeof(float), &f);
    kv->q = xcalloc(kv, N * kv->QD, sizeof(float), &f);
    kv->attn = xcalloc(kv, N * kv->QD, sizeof(float), &f);
    kv->tmp = xcalloc(kv, N * kv->C, sizeof(float), &f);
    kv->gate = xcalloc(kv, N * kv->I, sizeof(float), &f);
    kv->up = xcalloc(kv, N * kv->I, sizeof(float), &f);
    kv->h = xcalloc(kv, N * kv->I, sizeof(float), &f);
    kv->lin_scratch = xcalloc(kv, ops->linear_scratch_floats(in_max), sizeof(float), &f);
    kv->scores =
        xcalloc(kv, ops->attention_decode_scratch_floats(kv->be, max_len), sizeof(float), &f);
    kv->lora_u = xcalloc(kv, N * (size_t)(r > 0 ? r : 1), sizeof(float), &f);
    kv->pos = xcalloc(kv, N, sizeof(int32_t), &f);
    kv->tok = xcalloc(kv, N, sizeof(int32_t), &f);
    kv->ids = calloc((size_t)max_len, sizeof(int32_t));
    kv->host_pos = calloc(N, sizeof(int32_t));
    kv->small = calloc((size_t)m->n_params, sizeof(float *));
    if (!kv->ids || !kv->host_pos || !kv->small) f = 1;
    for (int i = 0; !f && i < m->n_params; i++) {
        const llama_param *p = &m->params[i];
        if (p->ndim != 1) continue;
        if (m->dtype == BADAM_DTYPE_F32) {
            kv->small[i] = p->data;
        } else if ((kv->small[i] = xcalloc(kv, p->numel, sizeof(float), &f))) {
            BE(kv->be, convert, kv->small[i], BADAM_DTYPE_F32, p->data, m->dtype, p->numel);
        }
    }
    if (f) {
        llama_kv_cache_free(kv);
        return badam_fail(err, BADAM_E_NOMEM, "KV cache: out of memory for %d tokens", max_len);
    }
    BE(kv->be, rope_tables, kv->cos_t, kv->sin_t, m->inv_freq, max_len, (int)half);
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

static const void *weight(const llama_model *m, int l, llama_param_kind kind) {
    return m->params[llama_param_index(m, l, kind)].data;
}

static const float *small(const llama_kv_cache *kv, int l, llama_param_kind kind) {
    int i = llama_param_index(kv->m, l, kind);
    return i < 0 ? NULL : kv->small[i];
}

/* y[n,out] += scale * (x[n,in] A^T) B^T for the adapter on (l, kind), if any. */
static void lora_add(llama_kv_cache *kv, int l, llama_param_kind kind, float *y, const float *x,
                     int n, int in, int out) {
    const llama_lora *lo = kv->m->lora;
    if (!lo) return;
    size_t a = (size_t)l * LLAMA_P_KIND_COUNT + kind;
    const float *A = lo->A[a], *B = lo->B[a];
    if (!A || !B) return;
    int r = lo->rank;
    float scale = lo->alpha / (float)r;
    BE(kv->be, gemm_f32, 0, 1, n, r, in, 1.0f, x, in, A, in, 0.0f, kv->lora_u, r);
    BE(kv->be, gemm_f32, 0, 1, n, out, r, scale, kv->lora_u, r, B, r, 1.0f, y, out);
}

/* y = x W^T + b, then the adapter. */
static void project(llama_kv_cache *kv, int l, llama_param_kind kind, llama_param_kind bias,
                    float *y, const float *x, int n, int in, int out) {
    const llama_model *m = kv->m;
    BE(kv->be, linear_forward, y, x, weight(m, l, kind), m->dtype,
       bias == LLAMA_P_KIND_COUNT ? NULL : small(kv, l, bias), n, in, out, kv->lin_scratch);
    lora_add(kv, l, kind, y, x, n, in, out);
}

/* One layer on the chunk's residual stream kv->x [n, C]. */
static void layer_step(llama_kv_cache *kv, int l, int p0, int n) {
    const llama_model *m = kv->m;
    backend *be = kv->be;
    int C = kv->C, QD = kv->QD, KVD = kv->KVD, I = kv->I;
    float eps = m->cfg.rms_norm_eps;
    float *kdst = kv->k + ((size_t)l * kv->max_len + p0) * KVD;
    float *vdst = kv->v + ((size_t)l * kv->max_len + p0) * KVD;
    int has_qkv_bias = m->cfg.qkv_bias, has_o_bias = m->cfg.o_bias;
    llama_param_kind none = LLAMA_P_KIND_COUNT;

    BE(be, rmsnorm_forward, kv->xn, NULL, kv->x, small(kv, l, LLAMA_P_ATTN_NORM), n, C, eps);
    project(kv, l, LLAMA_P_Q, has_qkv_bias ? LLAMA_P_Q_BIAS : none, kv->q, kv->xn, n, C, QD);
    project(kv, l, LLAMA_P_K, has_qkv_bias ? LLAMA_P_K_BIAS : none, kdst, kv->xn, n, C, KVD);
    project(kv, l, LLAMA_P_V, has_qkv_bias ? LLAMA_P_V_BIAS : none, vdst, kv->xn, n, C, KVD);
    BE(be, rope_forward, kv->q, kv->pos, kv->cos_t, kv->sin_t, n, kv->Hq, kv->D);
    BE(be, rope_forward, kdst, kv->pos, kv->cos_t, kv->sin_t, n, kv->Hkv, kv->D);
    BE(be, attention_decode, kv->attn, kv->q, kv->k + (size_t)l * kv->max_len * KVD,
       kv->v + (size_t)l * kv->max_len * KVD, n, p0, kv->Hq, kv->Hkv, kv->D, KVD, kv->window,
       kv->max_len, kv->scores);
    project(kv, l, LLAMA_P_O, has_o_bias ? LLAMA_P_O_BIAS : none, kv->tmp, kv->attn, n, QD, C);
    size_t NC = (size_t)n * C;
    BE(be, add, kv->x, kv->x, kv->tmp, NC);

    BE(be, rmsnorm_forward, kv->xn, NULL, kv->x, small(kv, l, LLAMA_P_MLP_NORM), n, C, eps);
    project(kv, l, LLAMA_P_GATE, none, kv->gate, kv->xn, n, C, I);
    project(kv, l, LLAMA_P_UP, none, kv->up, kv->xn, n, C, I);
    BE(be, swiglu_forward, kv->h, kv->gate, kv->up, (size_t)n * I);
    project(kv, l, LLAMA_P_DOWN, none, kv->tmp, kv->h, n, I, C);
    BE(be, add, kv->x, kv->x, kv->tmp, NC);
}

badam_status llama_decode(const llama_model *m, llama_kv_cache *kv, const int32_t *tokens, int n,
                          float *logits, int all_logits, badam_error *err) {
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
    int C = kv->C;
    const void *head = m->params[m->lm_head].data;
    const float *final_w = kv->small[m->final_norm];
    for (int done = 0; done < n;) {
        int c = n - done < kv->max_chunk ? n - done : kv->max_chunk, p0 = kv->len;
        for (int i = 0; i < c; i++) {
            kv->host_pos[i] = p0 + i;
            kv->ids[p0 + i] = tokens[done + i];
        }
        BE(kv->be, upload, kv->pos, kv->host_pos, sizeof(int32_t) * (size_t)c);
        BE(kv->be, upload, kv->tok, tokens + done, sizeof(int32_t) * (size_t)c);
        BE(kv->be, embedding_forward, kv->x, kv->tok, c, m->params[m->embed].data, m->dtype, C);
        for (int l = 0; l < kv->L; l++) layer_step(kv, l, p0, c);
        kv->len += c;
        if (logits && all_logits) {
            BE(kv->be, rmsnorm_forward, kv->xn, NULL, kv->x, final_w, c, C, m->cfg.rms_norm_eps);
            BE(kv->be, linear_forward, logits + (size_t)done * kv->V, kv->xn, head, m->dtype, NULL,
               c, C, kv->V, kv->lin_scratch);
        } else if (logits && done + c == n) {
            const float *last = kv->x + (size_t)(c - 1) * C;
            BE(kv->be, rmsnorm_forward, kv->xn, NULL, last, final_w, 1, C, m->cfg.rms_norm_eps);
            BE(kv->be, linear_forward, logits, kv->xn, head, m->dtype, NULL, 1, C, kv->V,
               kv->lin_scratch);
        }
        done += c;
    }
    return BADAM_OK;
}
