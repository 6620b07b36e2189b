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
 * LoRA adapters, when attached, are applied unmerged: y += (alpha / r) B (A x), no dropout. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "badam/decode.h"
#include "model/cpu/ops.h"

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
    int32_t *pos;
    int n_threads;
};

static void *xcalloc(size_t n, size_t size, int *failed) {
    void *p = calloc(n ? n : 1, size);
    if (!p) *failed = 1;
    return p;
}

void llama_kv_cache_free(llama_kv_cache *kv) {
    if (!kv) return;
    if (kv->small) {
        for (int i = 0; i < kv->m->n_params; i++)
            if (kv->small[i] != kv->m->params[i].data) free(kv->small[i]);
        free(kv->small);
    }
    free(kv->k), free(kv->v), free(kv->ids), free(kv->cos_t), free(kv->sin_t);
    free(kv->x), free(kv->xn), free(kv->q), free(kv->attn), free(kv->tmp);
    free(kv->gate), free(kv->up), free(kv->h), free(kv->lin_scratch), free(kv->scores);
    free(kv->lora_u), free(kv->pos);
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
    kv->m = m;
    kv->max_len = max_len;
    kv->max_chunk = max_chunk > 0 ? max_chunk : DEFAULT_CHUNK;
    if (kv->max_chunk > max_len) kv->max_chunk = max_len;
    kv->L = c->n_layers, kv->C = c->hidden_size, kv->I = c->intermediate_size;
    kv->V = c->vocab_size, kv->Hq = c->n_heads, kv->Hkv = c->n_kv_heads, kv->D = c->head_dim;
    kv->QD = kv->Hq * kv->D, kv->KVD = kv->Hkv * kv->D;
    kv->window = !strcmp(c->model_type, "mistral") ? c->sliding_window : 0;
    kv->n_threads = omp_get_max_threads();
    size_t N = (size_t)kv->max_chunk, half = (size_t)kv->D / 2;
    size_t kvn = (size_t)kv->L * max_len * kv->KVD;
    int in_max = kv->C > kv->QD ? kv->C : kv->QD;
    if (kv->I > in_max) in_max = kv->I;
    int r = m->lora ? m->lora->rank : 0;
    int f = 0;
    kv->k = xcalloc(kvn, sizeof(float), &f);
    kv->v = xcalloc(kvn, sizeof(float), &f);
    kv->ids = xcalloc((size_t)max_len, sizeof(int32_t), &f);
    kv->cos_t = xcalloc((size_t)max_len * half, sizeof(float), &f);
    kv->sin_t = xcalloc((size_t)max_len * half, sizeof(float), &f);
    kv->x = xcalloc(N * kv->C, sizeof(float), &f);
    kv->xn = xcalloc(N * kv->C, sizeof(float), &f);
    kv->q = xcalloc(N * kv->QD, sizeof(float), &f);
    kv->attn = xcalloc(N * kv->QD, sizeof(float), &f);
    kv->tmp = xcalloc(N * kv->C, sizeof(float), &f);
    kv->gate = xcalloc(N * kv->I, sizeof(float), &f);
    kv->up = xcalloc(N * kv->I, sizeof(float), &f);
    kv->h = xcalloc(N * kv->I, sizeof(float), &f);
    kv->lin_scratch = xcalloc(linear_scratch_floats(in_max), sizeof(float), &f);
    kv->scores = xcalloc((size_t)kv->n_threads * max_len, sizeof(float), &f);
    kv->lora_u = xcalloc(N * (size_t)(r > 0 ? r : 1), sizeof(float), &f);
    kv->pos = xcalloc(N, sizeof(int32_t), &f);
    kv->small = xcalloc((size_t)m->n_params, sizeof(float *), &f);
    for (int i = 0; !f && i < m->n_params; i++) {
        const llama_param *p = &m->params[i];
        if (p->ndim != 1) continue;
        if (m->dtype == BADAM_DTYPE_F32) {
            kv->small[i] = p->data;
        } else if ((kv->small[i] = xcalloc(p->numel, sizeof(float), &f))) {
            badam_convert(kv->small[i], BADAM_DTYPE_F32, p->data, m->dtype, p->numel);
        }
    }
    if (f) {
        llama_kv_cache_free(kv);
        return badam_fail(err, BADAM_E_NOMEM, "KV cache: out of memory for %d tokens", max_len);
    }
    rope_tables(kv->cos_t, kv->sin_t, m->inv_freq, max_len, (int)half);
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
    for (int i = 0; i < n; i++) {
        float *u = kv->lora_u + (size_t)i * r;
        for (int j = 0; j < r; j++) {
            float s = 0.0f;
            for (int c = 0; c < in; c++) s += A[(size_t)j * in + c] * x[(size_t)i * in + c];
            u[j] = s;
        }
    }
#pragma omp parallel for schedule(static)
    for (int o = 0; o < out; o++)
        for (int i = 0; i < n; i++) {
            float s = 0.0f;
            for (int j = 0; j < r; j++) s += B[(size_t)o * r + j] * kv->lora_u[(size_t)i * r + j];
            y[(size_t)i * out + o] += scale * s;
        }
}

/* y = x W^T + b, then the adapter. */
static void project(llama_kv_cache *kv, int l, llama_param_kind kind, llama_param_kind bias,
                    float *y, const float *x, int n, int in, int out) {
    const llama_model *m = kv->m;
    linear_forward(y, x, weight(m, l, kind), m->dtype,
                   bias == LLAMA_P_KIND_COUNT ? NULL : small(kv, l, bias), n, in, out,
                   kv->lin_scratch, NULL);
    lora_add(kv, l, kind, y, x, n, in, out);
}

/* q . k with eight partial sums (the compiler vectorizes it; a single running sum it cannot). */
static float dot(const float *q, const float *k, int D) {
    float acc[8] = {0};
    int d = 0;
    for (; d + 8 <= D; d += 8)
        for (int j = 0; j < 8; j++) acc[j] += q[d + j] * k[d + j];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; d < D; d++) s += q[d] * k[d];
    return s;
}

/* Attention of n query rows (positions p0..p0+n-1) over the cached keys and values of layer l. */
static void attend(llama_kv_cache *kv, int l, int p0, int n) {
    int Hq = kv->Hq, D = kv->D, group = Hq / kv->Hkv, KVD = kv->KVD;
    float scale = 1.0f / sqrtf((float)D);
    const float *K = kv->k + (size_t)l * kv->max_len * KVD;
    const float *Vc = kv->v + (size_t)l * kv->max_len * KVD;
    long rows = (long)n * Hq;
#pragma omp parallel for schedule(dynamic, 4) num_threads(kv->n_threads)
    for (long rh = 0; rh < rows; rh++) {
        int i = (int)(rh / Hq), h = (int)(rh % Hq), kvh = h / group, t = p0 + i;
        int lo = kv->window > 0 && t - kv->window + 1 > 0 ? t - kv->window + 1 : 0;
        float *p = kv->scores + (size_t)omp_get_thread_num() * kv->max_len;
        const float *q = kv->q + ((size_t)i * Hq + h) * D;
        float mx = -INFINITY;
        for (int t2 = lo; t2 <= t; t2++) {
            const float *k = K + (size_t)t2 * KVD + (size_t)kvh * D;
            p[t2] = dot(q, k, D) * scale;
            if (p[t2] > mx) mx = p[t2];
        }
        float sum = 0.0f;
        for (int t2 = lo; t2 <= t; t2++) sum += (p[t2] = expf(p[t2] - mx));
        float inv = 1.0f / sum, *o = kv->attn + ((size_t)i * Hq + h) * D;
        for (int d = 0; d < D; d++) o[d] = 0.0f;
        for (int t2 = lo; t2 <= t; t2++) {
            const float *v = Vc + (size_t)t2 * KVD + (size_t)kvh * D;
            float w = p[t2] * inv;
            for (int d = 0; d < D; d++) o[d] += w * v[d];
        }
    }
}

/* One layer on the chunk's residual stream kv->x [n, C]. */
static void layer_step(llama_kv_cache *kv, int l, int p0, int n) {
    const llama_model *m = kv->m;
    int C = kv->C, QD = kv->QD, KVD = kv->KVD, I = kv->I;
    float eps = m->cfg.rms_norm_eps;
    float *kdst = kv->k + ((size_t)l * kv->max_len + p0) * KVD;
    float *vdst = kv->v + ((size_t)l * kv->max_len + p0) * KVD;
    int has_qkv_bias = m->cfg.qkv_bias, has_o_bias = m->cfg.o_bias;
    llama_param_kind none = LLAMA_P_KIND_COUNT;

    rmsnorm_forward(kv->xn, NULL, kv->x, small(kv, l, LLAMA_P_ATTN_NORM), n, C, eps);
    project(kv, l, LLAMA_P_Q, has_qkv_bias ? LLAMA_P_Q_BIAS : none, kv->q, kv->xn, n, C, QD);
    project(kv, l, LLAMA_P_K, has_qkv_bias ? LLAMA_P_K_BIAS : none, kdst, kv->xn, n, C, KVD);
    project(kv, l, LLAMA_P_V, has_qkv_bias ? LLAMA_P_V_BIAS : none, vdst, kv->xn, n, C, KVD);
    rope_forward(kv->q, kv->pos, kv->cos_t, kv->sin_t, n, kv->Hq, kv->D);
    rope_forward(kdst, kv->pos, kv->cos_t, kv->sin_t, n, kv->Hkv, kv->D);
    attend(kv, l, p0, n);
    project(kv, l, LLAMA_P_O, has_o_bias ? LLAMA_P_O_BIAS : none, kv->tmp, kv->attn, n, QD, C);
    size_t NC = (size_t)n * C;
    for (size_t i = 0; i < NC; i++) kv->x[i] += kv->tmp[i];

    rmsnorm_forward(kv->xn, NULL, kv->x, small(kv, l, LLAMA_P_MLP_NORM), n, C, eps);
    project(kv, l, LLAMA_P_GATE, none, kv->gate, kv->xn, n, C, I);
    project(kv, l, LLAMA_P_UP, none, kv->up, kv->xn, n, C, I);
    swiglu_forward(kv->h, kv->gate, kv->up, (size_t)n * I);
    project(kv, l, LLAMA_P_DOWN, none, kv->tmp, kv->h, n, I, C);
    for (size_t i = 0; i < NC; i++) kv->x[i] += kv->tmp[i];
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
            kv->pos[i] = p0 + i;
            kv->ids[p0 + i] = tokens[done + i];
        }
        embedding_forward(kv->x, tokens + done, c, m->params[m->embed].data, m->dtype, C);
        for (int l = 0; l < kv->L; l++) layer_step(kv, l, p0, c);
        kv->len += c;
        if (logits && all_logits) {
            rmsnorm_forward(kv->xn, NULL, kv->x, final_w, c, C, m->cfg.rms_norm_eps);
            linear_forward(logits + (size_t)done * kv->V, kv->xn, head, m->dtype, NULL, c, C, kv->V,
                           kv->lin_scratch, NULL);
        } else if (logits && done + c == n) {
            const float *last = kv->x + (size_t)(c - 1) * C;
            rmsnorm_forward(kv->xn, NULL, last, final_w, 1, C, m->cfg.rms_norm_eps);
            linear_forward(logits, kv->xn, head, m->dtype, NULL, 1, C, kv->V, kv->lin_scratch,
                           NULL);
        }
        done += c;
    }
    return BADAM_OK;
}
