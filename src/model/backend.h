/* The backend interface: every operation the model code performs on tensor memory, as one table
 * of functions (backend_ops) and a context (backend) that carries the backend's state. The model
 * (llama_forward.c, llama_backward.c, llama_decode.c, llama_lora.c, llama_workspace.c) calls only
 * through it: no kernel, BLAS or OpenMP call and no read or write of tensor memory outside a
 * backend. Tensor memory comes from the backend's alloc and reaches the host only through
 * download (and the host reaches it only through upload), so a backend may keep it on a device.
 *
 * Semantics are those of the CPU kernels (model/cpu/ops.h states the math of each op): layouts
 * row-major, "n" a number of token rows, backward ops ACCUMULATE (+=) into weight gradients and
 * into dx unless the op says "overwritten", and a NULL gradient output is skipped. Ops that do
 * work count it in be->counters (GEMM and attention FLOPs), so tests can check what a gradient
 * plan skips. Weights (w, table) are stored in a badam_dtype (fp32, bf16 or f16); everything else
 * is fp32, index arrays int32.
 *
 * Ownership: a llama_workspace and a llama_kv_cache each own one backend, the CPU backend unless
 * one is given at creation (llama_workspace_create_on, model/model_backend.h). A training run has
 * one backend (the trainer's, src/train/trainer_internal.h) for its workspace and its method's
 * optimizer state and gradient buffers (optim/trainable.h); model weights and LoRA adapters are
 * host memory that the backend reads in place (weight upload belongs to the per-layer
 * acquire/release hooks, not yet built). A backend is used from one thread at a time.
 *
 * Adding a backend: a file under src/model/<name>/ with a backend_ops table and a create
 * function, one line in tests/util/backend_list.c, and test_backend_ops checks every op of it
 * against the reference backend (tests/util/ref_backend.c). docs/architecture.md, "Backends". */
#ifndef BADAM_MODEL_BACKEND_H
#define BADAM_MODEL_BACKEND_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "badam/dtype.h"
#include "badam/status.h"
#include "base/memory.h"

/* Work actually performed (see backend.h's header). gemm_flops counts 2*m*n*k for every GEMM
 * (projections, MLP, LM head, LoRA); attention_flops counts the QK^T and PV products (and their
 * backward). */
typedef struct op_counters {
    uint64_t gemm_flops;
    uint64_t attention_flops;
} op_counters;

#define LOSS_IGNORE_INDEX (-100)

/* The scalars of one AdamW step (the adamw_update op; model/cpu/ops.h's opt_adamw_update states
 * the math): learning rate, the factor the gradient is multiplied by (1/tokens and the clip
 * coefficient), decoupled weight decay, Adam's betas and eps, and the step, counted from 1. */
typedef struct adamw_step_args {
    float lr, grad_scale, weight_decay;
    float beta1, beta2, eps;
    int step;
} adamw_step_args;

typedef struct backend backend;
typedef struct backend_ops backend_ops;

struct backend {
    const backend_ops *ops;
    op_counters counters;
};

/* The dropout mask every backend applies (so that a mask is the same on every backend and can be
 * regenerated in backward): element j of a tensor with mask key `key` is dropped when
 * backend_dropout_unit(key, j) < p. splitmix64 of key ^ j, top 53 bits as a double in [0, 1). */
static inline uint64_t backend_mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
static inline double backend_unit(uint64_t h) {
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}
static inline double backend_dropout_unit(uint64_t key, size_t j) {
    return backend_unit(backend_mix64(key ^ j));
}
/* The standard normal draw every backend makes for element j of a tensor with key `key` (MeZO's
 * perturbation z, regenerated from the key, never stored): Box-Muller in double from two units
 * of the same hash, u1 = unit(mix(key ^ 2j)), u2 = unit(mix(key ^ (2j + 1))),
 *   z = (float)(sqrt(-2 log(1 - u1)) cos(2 pi u2))
 * (tests/ref/zo_ratio_ref.py ports it; libm's log, cos and sqrt in double). */
static inline float backend_gaussian(uint64_t key, size_t j) {
    double u1 = backend_unit(backend_mix64(key ^ (2 * (uint64_t)j)));
    double u2 = backend_unit(backend_mix64(key ^ (2 * (uint64_t)j + 1)));
    return (float)(sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2));
}

struct backend_ops {
    const char *name;
    void (*destroy)(backend *be);

    /* ---- sizes of the scratch buffers the caller allocates (no context: a memory plan asks
     * before any backend exists) ---- */
    /* floats of `scratch` for linear ops on a weight with at most `in` columns (and rows, for the
     * weight gradient) */
    size_t (*linear_scratch_floats)(int in);
    /* floats of `workspace` for lm_head_loss with `chunk` rows */
    size_t (*lm_head_loss_workspace_floats)(int chunk, int C, int V);
    /* floats of `scratch` for attention_decode over a cache of max_len positions */
    size_t (*attention_decode_scratch_floats)(const backend *be, int max_len);
    /* 1 when GEMMs on weights stored in w_dtype run faster on an fp32 copy of a layer's matrices
     * made once per use (the CPU backend with bf16 or f16 weights and no native bf16 GEMM: one
     * full-size sgemm instead of a conversion and an sgemm per tile of rows); the model then keeps
     * one layer's fp32 copy in its workspace (llama_workspace_predict counts it) */
    int (*layer_weights_f32)(badam_dtype w_dtype);

    /* ---- memory ---- */
    /* zero-filled block of `bytes` counted in `category` (base/memory.h); NULL on failure */
    void *(*alloc)(backend *be, badam_mem_category category, size_t bytes);
    void (*free)(backend *be, void *p);
    void (*zero)(backend *be, void *p, size_t bytes);
    void (*copy)(backend *be, void *dst, const void *src, size_t bytes);    /* backend to backend */
    void (*upload)(backend *be, void *dst, const void *host, size_t bytes); /* host to backend */
    void (*download)(backend *be, void *host, const void *src, size_t bytes); /* backend to host */
    /* dst[i] = src[i] converted between dtypes (badam_convert's rounding), n elements; src may be
     * host memory (a weight) */
    void (*convert)(backend *be, void *dst, badam_dtype dst_dtype, const void *src,
                    badam_dtype src_dtype, size_t n);

    /* ---- elementwise ---- */
    /* y[i] = a[i] + b[i]  (y may alias a or b) */
    void (*add)(backend *be, float *y, const float *a, const float *b, size_t n);
    /* out[j] = (accumulate ? out[j] : 0) + (dropped(first + j) ? 0 : x[j] / (1 - p)), dropped(i)
     * as in backend_dropout_unit (first: where x starts in the tensor the mask covers, e.g. a
     * rank's rows within a data-parallel batch; 0 for a whole tensor) */
    void (*dropout)(backend *be, float *out, const float *x, size_t n, uint64_t key, size_t first,
                    double p, int accumulate);
    /* swiglu_forward: h = silu(g) * u  (overwritten) */
    void (*swiglu_forward)(backend *be, float *h, const float *g, const float *u, size_t n);
    /* swiglu_backward: dg = dh * u * s * (1 + g (1 - s)), du = dh * silu(g) (overwritten; either
     * may be NULL) */
    void (*swiglu_backward)(backend *be, float *dg, float *du, const float *dh, const float *g,
                            const float *u, size_t n);

    /* ---- linear algebra ---- */
    /* C[M,N] = alpha op(A) op(B) + beta C, fp32, row-major (cblas_sgemm's contract; beta 0 does
     * not read C) */
    void (*gemm_f32)(backend *be, int transa, int transb, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C,
                     int ldc);
    /* y[n,out] = x[n,in] W[out,in]^T + b  (y overwritten; b may be NULL) */
    void (*linear_forward)(backend *be, float *y, const float *x, const void *w,
                           badam_dtype w_dtype, const float *b, int n, int in, int out,
                           float *scratch);
    /* dx[n,in] += dy[n,out] W */
    void (*linear_backward_input)(backend *be, float *dx, const float *dy, const void *w,
                                  badam_dtype w_dtype, int n, int in, int out, float *scratch);
    /* dW[out,in] += dy^T x; db[out] += sum_rows dy (either may be NULL), for a weight stored in
     * w_dtype (a bf16 weight may take a bf16 GEMM, as its forward does) */
    void (*linear_backward_weight)(backend *be, float *dw, float *db, const float *dy,
                                   const float *x, badam_dtype w_dtype, int n, int in, int out,
                                   float *scratch, size_t scratch_floats);

    /* ---- model ops ---- */
    /* out[i,:] = table[tokens[i], :]  (overwritten) */
    void (*embedding_forward)(backend *be, float *out, const int32_t *tokens, int n,
                              const void *table, badam_dtype table_dtype, int C);
    /* dtable[tokens[i], :] += dout[i, :] */
    void (*embedding_backward)(backend *be, float *dtable, const int32_t *tokens, int n,
                               const float *dout, int C);
    /* rstd[i] = 1/sqrt(mean x[i]^2 + eps); y = x rstd w  (rstd may be NULL; y may alias x) */
    void (*rmsnorm_forward)(backend *be, float *y, float *rstd, const float *x, const float *w,
                            int n, int C, float eps);
    /* dx += rstd (g - xhat mean(g xhat)); dw += sum_i dy xhat  (g = dy w, xhat = x rstd) */
    void (*rmsnorm_backward)(backend *be, float *dx, float *dw, const float *dy, const float *x,
                             const float *w, const float *rstd, int n, int C);
    /* cos_t[p*half+i] = cos(p inv_freq[i]), sin_t likewise, p < T (inv_freq: host memory) */
    void (*rope_tables)(backend *be, float *cos_t, float *sin_t, const float *inv_freq, int T,
                        int half);
    /* rotate_half RoPE in place on x[n, heads, head_dim], row r at position pos[r] */
    void (*rope_forward)(backend *be, float *x, const int32_t *pos, const float *cos_t,
                         const float *sin_t, int n, int heads, int head_dim);
    void (*rope_backward)(backend *be, float *dx, const int32_t *pos, const float *cos_t,
                          const float *sin_t, int n, int heads, int head_dim);
    /* causal GQA attention of B sequences of T tokens (ops.h: attention_forward); lse may be
     * NULL; seg_start (may be NULL) limits row t to keys [seg_start[b*T+t], t] */
    void (*attention_forward)(backend *be, float *out, float *lse, const float *q, const float *k,
                              const float *v, int B, int T, int Hq, int Hkv, int D,
                              const int32_t *seg_start);
    /* its backward (dq, dk, dv overwritten) */
    void (*attention_backward)(backend *be, float *dq, float *dk, float *dv, const float *dout,
                               const float *out, const float *lse, const float *q, const float *k,
                               const float *v, int B, int T, int Hq, int Hkv, int D,
                               const int32_t *seg_start);
    /* Decode attention: n query rows q[n,Hq,D] at positions p0 .. p0+n-1 over a cache K, V with
     * row stride kv_stride (position t2's kv head h at K + t2*kv_stride + h*D): row i attends to
     * t2 in [lo, p0+i], lo = max(0, p0+i-window+1) when window > 0, else 0. out [n,Hq,D]
     * overwritten; scratch of attention_decode_scratch_floats(max_len) floats. */
    void (*attention_decode)(backend *be, float *out, const float *q, const float *K,
                             const float *V, int n, int p0, int Hq, int Hkv, int D, int kv_stride,
                             int window, int max_len, float *scratch);
    /* fused LM head + cross-entropy over rows with a target (ops.h: lm_head_loss): returns the
     * loss sum, dh += scale dloss/dh, dW += scale dloss/dW (either may be NULL), *n_counted the
     * rows with a target */
    double (*lm_head_loss)(backend *be, float *dh, float *dw, const float *h, const void *w,
                           badam_dtype w_dtype, const int32_t *targets, int n, int C, int V,
                           int chunk, float scale, float *workspace, int *n_counted);

    /* ---- optimizer (math in model/cpu/ops.h, "Optimizer element updates": PyTorch 1.13 AdamW
     * and SGD; each element's result a fixed function of its inputs). param, m, v, grad, lo are
     * backend memory; weight (the stored copy) may be host memory (model weights, today). ---- */
    /* AdamW on an fp32 master param[n] with state m, v; when weight != NULL, weight[i] = param[i]
     * rounded to weight_dtype (bf16 round-to-nearest-even, f16, or f32) */
    void (*adamw_update)(backend *be, float *param, float *m, float *v, const float *grad, size_t n,
                         const adamw_step_args *a, void *weight, badam_dtype weight_dtype);
    /* AdamW on a split master: p = badam_master_join(weight[i], lo[i]), the same update, then
     * badam_master_split(p, &weight[i], &lo[i]) (badam/dtype.h) */
    void (*adamw_update_split)(backend *be, uint16_t *weight, uint16_t *lo, float *m, float *v,
                               const float *grad, size_t n, const adamw_step_args *a);
    /* SGD: p = p (1 - lr wd) - lr grad_scale grad, and weight = p rounded (when not NULL) */
    void (*sgd_update)(backend *be, float *param, const float *grad, size_t n, float lr,
                       float grad_scale, float weight_decay, void *weight,
                       badam_dtype weight_dtype);
    /* SGD on a split master (as adamw_update_split) */
    void (*sgd_update_split)(backend *be, uint16_t *weight, uint16_t *lo, const float *grad,
                             size_t n, float lr, float grad_scale, float weight_decay);
    /* SGD on weights kept only in storage: w = round(float(w) (1 - lr wd) - lr grad_scale grad) */
    void (*sgd_update_stored)(backend *be, void *weight, badam_dtype weight_dtype,
                              const float *grad, size_t n, float lr, float grad_scale,
                              float weight_decay);

    /* ---- reductions and vector updates ---- */
    /* returns sum_i x[i]^2 accumulated in double (gradient norms) */
    double (*sum_squares)(backend *be, const float *x, size_t n);
    /* x[i] *= a */
    void (*scale)(backend *be, float *x, float a, size_t n);
    /* y[i] += a x[i]  (the product rounded to fp32, then the sum: no fused multiply-add) */
    void (*axpy)(backend *be, float *y, float a, const float *x, size_t n);

    /* ---- zeroth-order and masked updates (MeZO, BAdam's ratio mode; model/cpu/zo_mask.c) ---- */
    /* dst[i] = float(w[i]) + eps * z_i, z_i = backend_gaussian(key, i) (the product rounded to
     * fp32, then the sum); w in w_dtype, may be host memory (a weight) */
    void (*gaussian_perturb)(backend *be, float *dst, const void *w, badam_dtype w_dtype, size_t n,
                             float eps, uint64_t key);
    /* w[i] = round(float(w[i]) (1 - lr wd) - (lr coef) z_i) in storage, z_i as above */
    void (*gaussian_update_stored)(backend *be, void *w, badam_dtype w_dtype, size_t n, float lr,
                                   float coef, float weight_decay, uint64_t key);
    /* dst[k] = (accumulate ? dst[k] : 0) + float(src[idx[k]]), k < n (src in src_dtype, may be
     * host memory; idx int32 backend memory) */
    void (*gather)(backend *be, float *dst, const void *src, badam_dtype src_dtype,
                   const int32_t *idx, size_t n, int accumulate);
    /* dst[idx[k]] = src[k] rounded to dst_dtype, k < n (idx without repeats) */
    void (*scatter)(backend *be, void *dst, badam_dtype dst_dtype, const float *src,
                    const int32_t *idx, size_t n);
    /* ---- encoder ops (BERT / RoBERTa; model/cpu/ops_encoder.h states the math of each) ---- */
    /* LayerNorm with bias over rows of C: mean[i], rstd[i] = 1/sqrt(var_i + eps) (biased
     * variance), y = (x - mean) rstd w + b  (mean, rstd may be NULL; y may alias x) */
    void (*layernorm_forward)(backend *be, float *y, float *mean, float *rstd, const float *x,
                              const float *w, const float *b, int n, int C, float eps);
    /* its backward, g = dy w, xhat = (x - mean) rstd: dx += rstd (g - mean(g) - xhat
     * mean(g xhat)); dw += sum_i dy xhat; db += sum_i dy  (any output may be NULL) */
    void (*layernorm_backward)(backend *be, float *dx, float *dw, float *db, const float *dy,
                               const float *x, const float *mean, const float *rstd, const float *w,
                               int n, int C);
    /* exact GELU: y = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2  (overwritten; y may alias x) */
    void (*gelu_forward)(backend *be, float *y, const float *x, size_t n);
    /* dx = dy (Phi(x) + x phi(x))  (overwritten) */
    void (*gelu_backward)(backend *be, float *dx, const float *dy, const float *x, size_t n);
    /* y = tanh(x)  (overwritten; y may alias x) */
    void (*tanh_forward)(backend *be, float *y, const float *x, size_t n);
    /* dx = dy (1 - y^2) from the forward's output y  (overwritten) */
    void (*tanh_backward)(backend *be, float *dx, const float *dy, const float *y, size_t n);
    /* bidirectional multi-head attention of B sequences of T tokens (q, k, v, out [B,T,H,D]) over
     * the keys key_mask marks real (key_mask [B*T], NULL: all), the probabilities dropped out with
     * probability p_drop under mask key `key` (ops_encoder.h: attention_bidir_forward); lse may be
     * NULL */
    void (*attention_bidir_forward)(backend *be, float *out, float *lse, const float *q,
                                    const float *k, const float *v, int B, int T, int H, int D,
                                    const uint8_t *key_mask, double p_drop, uint64_t key);
    /* its backward (dq, dk, dv overwritten) from the forward's out and lse */
    void (*attention_bidir_backward)(backend *be, float *dq, float *dk, float *dv,
                                     const float *dout, const float *out, const float *lse,
                                     const float *q, const float *k, const float *v, int B, int T,
                                     int H, int D, const uint8_t *key_mask, double p_drop,
                                     uint64_t key);
    /* cross-entropy over n rows of K logits (a class per sequence, or a choice per group of K
     * scores): returns the loss sum over rows whose target is not LOSS_IGNORE_INDEX,
     * dlogits = scale (softmax - onehot) on those rows and 0 on the others (overwritten; may be
     * NULL), *n_counted the rows with a target */
    double (*class_loss)(backend *be, float *dlogits, const float *logits, const int32_t *targets,
                         int n, int K, float scale, int *n_counted);
    /* ---- GaLore (model/cpu/ops.h: galore_projector states the math) ---- */
    /* floats of `scratch` for galore_projector on a [rows, cols] gradient (no context) */
    size_t (*galore_projector_scratch_floats)(int rows, int cols);
    /* P = the rank-k projector of G [rows, cols] from its truncated SVD: Vh[:k, :] ([k, cols])
     * when rows >= cols, else U[:, :k] ([rows, k]), k = min(rank, rows, cols), signs fixed (the
     * largest-magnitude entry of each singular vector positive). Returns 0, or nonzero when the
     * SVD did not converge (P then undefined). */
    int (*galore_projector)(backend *be, float *P, const float *G, int rows, int cols, int rank,
                            float *scratch);

    /* ---- bottleneck adapters (model/cpu/ops.h: relu) ---- */
    /* y = max(x, 0)  (y may alias x) */
    void (*relu_forward)(backend *be, float *y, const float *x, size_t n);
    /* dx = y > 0 ? dy : 0 from the forward's output y  (overwritten; dx may alias dy) */
    void (*relu_backward)(backend *be, float *dx, const float *dy, const float *y, size_t n);
};

/* be->ops->op(be, ...) */
#define BE(be, op, ...) ((be)->ops->op((be), __VA_ARGS__))

/* The CPU backend (model/cpu): OpenMP kernels, OpenBLAS, oneDNN's bf16 matmul; its context holds
 * the oneDNN engine, stream and primitive cache, the thread count, and the counters. */
badam_status backend_cpu_create(backend **out, badam_error *err);
/* The CPU backend's table (for sizes asked before any backend exists). */
const backend_ops *backend_cpu_ops(void);

static inline void backend_destroy(backend *be) {
    if (be) be->ops->destroy(be);
}

#endif
