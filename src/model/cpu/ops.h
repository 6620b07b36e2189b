/* CPU kernels for the Llama family, fp32 compute. Every op has a forward and a backward; the
 * math is stated once above each declaration. Layouts are row-major; "n" is a number of token
 * rows (batch * seq). Backward functions ACCUMULATE (+=) into weight gradients and into dx
 * unless the comment says "overwritten". Any gradient output may be NULL to skip it.
 *
 * Kernels: OpenMP over rows; hot loops vectorised (omp simd) and compiled three times, for the
 * x86-64 baseline, AVX2 and AVX-512, picked at every call by the active CPU path
 * (base/cpu_dispatch.h, BADAM_CPU). GEMMs: bf16 weights go to oneDNN's bf16 matmul (fp32
 * accumulation) on the avx512 path of a CPU with AVX512_BF16, else, or with BADAM_GEMM=fp32, to
 * OpenBLAS sgemm on weight tiles converted to fp32 (the portable path the tests also run).
 * Attention is flash-style (no [T x T] probabilities stored). The model reaches these kernels only
 * through the CPU backend (cpu_backend.c, model/backend.h); the reference backend's plain loops
 * (tests/util/ref_backend.c) are the oracles.
 *
 * Thread policy: one OpenMP pool (OMP_NUM_THREADS). Our loops, OpenBLAS (the OpenMP build,
 * pinned through the RPATH) and oneDNN (Debian's OpenMP build) all run on it, one after the
 * other: a GEMM is never called inside one of our parallel regions, so nothing oversubscribes
 * the cores. */
#ifndef BADAM_MODEL_CPU_OPS_H
#define BADAM_MODEL_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "badam/dtype.h"
#include "base/cpu_dispatch.h"
#include "model/backend.h"

#include <string.h>

/* exp(x) for x <= 0 (softmax arguments), vectorisable: 2^n * p(r) with n = round(x / ln 2),
 * r = x - n ln 2 split in two parts (Cody-Waite), p a degree-6 Taylor polynomial (relative error
 * below 2e-7 on |r| <= ln2/2). Arguments are clamped at -87 (exp: ~1.6e-38). */
CPU_BODY float ops_exp_neg(float x) {
    if (x != x) return x; /* NaN stays NaN (and never reaches the integer conversion) */
    x = x < -87.0f ? -87.0f : x;
    /* round to nearest by the 1.5 * 2^23 trick: no libm call, so the loop vectorises */
    float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145752f - n * 1.42860677e-6f;
    float p =
        1.0f +
        r * (1.0f +
             r * (0.5f + r * (1.66666672e-1f +
                              r * (4.16666679e-2f + r * (8.33333377e-3f + r * 1.38888889e-3f)))));
    uint32_t e = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &e, sizeof scale);
    return p * scale;
}

/* Work actually performed (op_counters, model/backend.h), so tests can check that a gradient
 * plan skips what it should; a NULL counters pointer counts nothing. */

/* Rows of a weight matrix converted to fp32 at a time when the weight is stored in bf16/f16. */
#define LINEAR_WEIGHT_TILE_ROWS 256
/* Floats of scratch the linear ops need for a weight with `in` columns. The bf16 GEMM path uses
 * the same scratch for bf16 copies of activations (2 * LINEAR_WEIGHT_TILE_ROWS * in of them). */
size_t linear_scratch_floats(int in);

/* State of the native bf16 GEMM (gemm_bf16.c): the oneDNN engine and stream (created on first
 * use) and a cache of matmul primitives. One per CPU backend context; not shared between threads
 * without the caller's care (calls on one context are serialised by its lock). */
typedef struct gemm_bf16_ctx gemm_bf16_ctx;
gemm_bf16_ctx *gemm_bf16_ctx_create(void); /* NULL when out of memory */
void gemm_bf16_ctx_free(gemm_bf16_ctx *g);

/* bf16 GEMM dispatch (gemm_bf16.c). gemm_bf16_available: 1 when bf16 weights go to a native
 * bf16 GEMM (oneDNN built in, CPU with AVX512_BF16; g not NULL), 0 for the portable fp32 path. The
 * environment variable BADAM_GEMM=fp32 forces the portable path (tests run both). With the bf16
 * path, the fp32 activations multiplying a bf16 weight are rounded to bf16 (round to nearest
 * even) and products are accumulated in fp32, as mixed-precision frameworks do. */
int gemm_bf16_available(gemm_bf16_ctx *g);
/* The same decision without a context (memory plans): oneDNN built in, BADAM_GEMM not fp32, and
 * the avx512 path of a CPU with AVX512_BF16 (or BADAM_GEMM=bf16). gemm_bf16_available can still
 * say 0 when oneDNN fails to start. */
int gemm_bf16_native_possible(void);

/* gemm_bf16: C[M,N] = (accumulate ? C : 0) + A @ B, with C fp32 (row stride ldc); A bf16 stored
 * as [K,M] with row stride lda when transa (A^T is multiplied), else as [M,K]; B bf16 stored as
 * [N,K] with row stride ldb when transb, else as [K,N]. Returns 0, or -1 when no bf16 GEMM is
 * available (C untouched). */
int gemm_bf16(gemm_bf16_ctx *g, int M, int N, int K, const uint16_t *A, int lda, int transa,
              const uint16_t *B, int ldb, int transb, float *C, int ldc, int accumulate);

/* convert_f32_to_bf16: dst[i] = bf16(src[i]), round to nearest even (NaN stays NaN). The _2d form
 * converts a rows x cols block between row strides lds (src) and ldd (dst). */
void convert_f32_to_bf16(uint16_t *dst, const float *src, size_t n);
void convert_f32_to_bf16_2d(uint16_t *dst, int ldd, const float *src, int lds, int rows, int cols);

/* The linear ops take the bf16 GEMM state `gemm` (NULL: the portable fp32 path only).
 * linear_forward: y[n,out] = x[n,in] @ W[out,in]^T + b[out]   (y overwritten; b may be NULL).
 * W is stored in w_dtype; non-fp32 weights are converted tile by tile into scratch. */
void linear_forward(float *y, const float *x, const void *w, badam_dtype w_dtype, const float *b,
                    int n, int in, int out, float *scratch, op_counters *counters,
                    gemm_bf16_ctx *gemm);

/* linear_backward_input: dx[n,in] += dy[n,out] @ W[out,in] */
void linear_backward_input(float *dx, const float *dy, const void *w, badam_dtype w_dtype, int n,
                           int in, int out, float *scratch, op_counters *counters,
                           gemm_bf16_ctx *gemm);

/* linear_backward_weight: dW[out,in] += dy[n,out]^T @ x[n,in];  db[out] += sum_rows dy
 * (fp32 sgemm). */
void linear_backward_weight(float *dw, float *db, const float *dy, const float *x, int n, int in,
                            int out, op_counters *counters);

/* linear_backward_weight_stored: the same for a weight stored in w_dtype. A bf16 weight's
 * gradient takes the bf16 GEMM when gemm_bf16_available(), like its forward: dy and x rounded to
 * bf16 (blocks of rows converted into scratch, linear_scratch_floats(max(in, out)) floats),
 * products accumulated in fp32 into the fp32 dW. Other weights, or a scratch too small for a
 * block of 16 rows, take linear_backward_weight. */
void linear_backward_weight_stored(float *dw, float *db, const float *dy, const float *x,
                                   badam_dtype w_dtype, int n, int in, int out, float *scratch,
                                   size_t scratch_floats, op_counters *counters,
                                   gemm_bf16_ctx *gemm);

/* embedding_forward: out[i,:] = table[tokens[i], :]   (out overwritten; table [V,C] in dtype) */
void embedding_forward(float *out, const int32_t *tokens, int n, const void *table,
                       badam_dtype table_dtype, int C);

/* embedding_backward: dtable[tokens[i], :] += dout[i, :] */
void embedding_backward(float *dtable, const int32_t *tokens, int n, const float *dout, int C);

/* rmsnorm_forward: rstd[i] = 1/sqrt(mean_j x[i,j]^2 + eps);  y[i,j] = x[i,j] * rstd[i] * w[j]
 * (y overwritten; rstd may be NULL when backward will not run; y may alias x) */
void rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int n, int C,
                     float eps);

/* rmsnorm_backward, with xhat = x * rstd and g = dy * w:
 *   dx[i,:] += rstd[i] * (g - xhat * mean_j(g[j] * xhat[j]))
 *   dw[j]   += sum_i dy[i,j] * xhat[i,j] */
void rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                      const float *rstd, int n, int C);

/* rope_tables: for position p < T and frequency index i < half:
 *   cos_t[p*half+i] = cos(p * inv_freq[i]),  sin_t[p*half+i] = sin(p * inv_freq[i]) */
void rope_tables(float *cos_t, float *sin_t, const float *inv_freq, int T, int half);

/* rope_forward (Hugging Face rotate_half convention), in place on x[n, n_heads, head_dim]; row r
 * is at position pos[r]. With half = head_dim/2, c = cos_t[pos*half+i], s = sin_t[pos*half+i]:
 *   x'[i]      = x[i] c - x[i+half] s
 *   x'[i+half] = x[i+half] c + x[i] s */
void rope_forward(float *x, const int32_t *pos, const float *cos_t, const float *sin_t, int n,
                  int n_heads, int head_dim);

/* rope_backward: the transpose rotation, in place on dx (same layout):
 *   dx'[i]      = dx[i] c + dx[i+half] s
 *   dx'[i+half] = dx[i+half] c - dx[i] s */
void rope_backward(float *dx, const int32_t *pos, const float *cos_t, const float *sin_t, int n,
                   int n_heads, int head_dim);

/* attention_forward: causal grouped-query attention for B sequences of T tokens.
 * q [B,T,Hq,D], k and v [B,T,Hkv,D], out [B,T,Hq,D] (overwritten). Query head h reads kv head
 * h / (Hq/Hkv) (no repeated K/V is materialised). For t2 <= t, with scores
 * S[b,h,t,t2] = q[b,t,h,:] . k[b,t2,kvh,:] / sqrt(D):
 *   P[b,h,t,t2] = softmax_t2(S),  P = 0 for t2 > t
 *   out[b,t,h,:] = sum_t2 P[b,h,t,t2] v[b,t2,kvh,:]
 *   lse[b,h,t] = log sum_t2 exp(S[b,h,t,t2])   (so P = exp(S - lse))
 * With seg_start (may be NULL: all zeros), query row t of sequence b only sees keys
 * t2 in [seg_start[b*T+t], t] (packed examples do not attend to each other).
 * lse [B,Hq,T] may be NULL when backward will not run. P is never stored (flash-style tiles). */
void attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                       int B, int T, int Hq, int Hkv, int D, const int32_t *seg_start,
                       op_counters *counters);

/* attention_backward (dq, dk, dv overwritten; same layouts as q, k, v), from the forward's out
 * and lse, with P = exp(S - lse) recomputed:
 *   dP = dout . v^T;  dS = P * (dP - sum_t2 P dP), where sum_t2 P dP = dout . out;
 *   dq = dS k / sqrt(D);  dk = dS^T q / sqrt(D) (summed over the query heads sharing a kv head);
 *   dv = P^T dout (same) */
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out,
                        const float *lse, const float *q, const float *k, const float *v, int B,
                        int T, int Hq, int Hkv, int D, const int32_t *seg_start,
                        op_counters *counters);

/* swiglu_forward: h = silu(g) * u with silu(g) = g * sigmoid(g)   (h overwritten) */
void swiglu_forward(float *h, const float *g, const float *u, size_t n);

/* swiglu_backward (dg, du overwritten; either may be NULL), with s = sigmoid(g):
 *   dg = dh * u * s * (1 + g * (1 - s));   du = dh * silu(g) */
void swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u,
                     size_t n);

/* cross_entropy_row: for logits z[V] and target y returns loss = logsumexp(z) - z[y] and, when
 * dz != NULL, writes dz = scale * (softmax(z) - onehot(y))  (dz may alias z). */
float cross_entropy_row(float *dz, const float *z, int V, int target, float scale);

/* Floats of workspace lm_head_loss needs for `chunk` rows. */
size_t lm_head_loss_workspace_floats(int chunk, int C, int V);

/* lm_head_loss: fused LM head and cross-entropy. h [n,C] is the final (normed) hidden state,
 * W [V,C] the head weight (in w_dtype), targets[i] the token row i predicts, or
 * LOSS_IGNORE_INDEX. Only rows with a real target are computed, `chunk` rows at a time, so
 * only a [chunk,V] logits buffer ever exists and ignored rows cost nothing.
 *   returns loss_sum = sum_{i: targets[i] != ignore} (logsumexp(h_i W^T) - (h_i W^T)[targets[i]])
 *   dh[i,:] += scale * d loss_sum / d h[i,:]   (dh may be NULL)
 *   dW      += scale * d loss_sum / d W        (dw may be NULL)
 * *n_counted receives the number of rows with a real target. */
double lm_head_loss(float *dh, float *dw, const float *h, const void *w, badam_dtype w_dtype,
                    const int32_t *targets, int n, int C, int V, int chunk, float scale,
                    float *workspace, int *n_counted, op_counters *counters, gemm_bf16_ctx *gemm);

/* lm_head_loss_online (lm_head_online.c): lm_head_loss without dW, in one pass over vocabulary
 * tiles with an online softmax, so a bf16/f16 W is converted to fp32 once per block of token rows
 * instead of twice per chunk; lm_head_loss takes it for a non-fp32 W on the portable GEMM path
 * when dw is NULL and a block holds at least `chunk` rows. Uses the same workspace
 * (workspace_floats of it, 8-byte aligned). Same results up to summation order.
 * lm_head_online_rows: the token rows per block that workspace_floats hold (0: none). */
int lm_head_online_rows(size_t workspace_floats, int C, int V);
double lm_head_loss_online(float *dh, const float *h, const void *w, badam_dtype w_dtype,
                           const int32_t *targets, int n, int C, int V, float scale,
                           float *workspace, size_t workspace_floats, int *n_counted,
                           op_counters *counters);

/* attention_decode: backend.h's attention_decode (decode over a KV cache), on n_threads OpenMP
 * threads, each with max_len floats of scratch (scratch: n_threads * max_len floats). */
void attention_decode(float *out, const float *q, const float *K, const float *V, int n, int p0,
                      int Hq, int Hkv, int D, int kv_stride, int window, int max_len,
                      float *scratch, int n_threads);

/* ---- Optimizer element updates (optim_update.c; the CPU backend's optimizer ops, and
 * include/badam/optim.h's update functions call them). One fused OpenMP pass over memory per
 * tensor, fp32 arithmetic, no fused multiply-add, so every element's result is a fixed function
 * of its inputs (the same on every CPU path and thread count).
 *
 * opt_adamw_update: torch.optim.AdamW (PyTorch 1.13, single-tensor) with g = grad * grad_scale:
 *   p *= 1 - lr wd;  m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 *   p -= (lr / (1 - beta1^step)) m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
 * (1 - beta^step in double, lr / bc1 and sqrt(bc2) then rounded to fp32); weight = p rounded to
 * weight_dtype when weight != NULL. */
void opt_adamw_update(float *param, float *m, float *v, const float *grad, size_t n,
                      const adamw_step_args *a, void *weight, badam_dtype weight_dtype);
/* opt_adamw_update_split: the same on a split master (badam_master_join / _split). */
void opt_adamw_update_split(uint16_t *weight, uint16_t *lo, float *m, float *v, const float *grad,
                            size_t n, const adamw_step_args *a);
/* opt_sgd_update: p = p (1 - lr wd) - (lr grad_scale) grad;  weight = p rounded (when not NULL). */
void opt_sgd_update(float *param, const float *grad, size_t n, float lr, float grad_scale,
                    float weight_decay, void *weight, badam_dtype weight_dtype);
/* opt_sgd_update_split: opt_sgd_update on a split master. */
void opt_sgd_update_split(uint16_t *weight, uint16_t *lo, const float *grad, size_t n, float lr,
                          float grad_scale, float weight_decay);
/* opt_sgd_update_stored: w = round(float(w) (1 - lr wd) - (lr grad_scale) grad) in storage. */
void opt_sgd_update_stored(void *weight, badam_dtype weight_dtype, const float *grad, size_t n,
                           float lr, float grad_scale, float weight_decay);
/* sum_squares_f32: sum_i x[i]^2 in double (OpenMP reduction: each thread's static slice summed
 * in order, the partial sums then added). */
double sum_squares_f32(const float *x, size_t n);
/* scale_f32: x[i] *= a.  axpy_f32: y[i] += a x[i] (product rounded, then the sum). */
void scale_f32(float *x, float a, size_t n);
void axpy_f32(float *y, float a, const float *x, size_t n);

/* ---- zeroth-order and masked element ops (zo_mask.c); z_i = backend_gaussian(key, i) ---- */
/* zo_gaussian_perturb: dst[i] = float(w[i]) + (eps z_i)  (product rounded to fp32, then sum). */
void zo_gaussian_perturb(float *dst, const void *w, badam_dtype dt, size_t n, float eps,
                         uint64_t key);
/* zo_gaussian_update_stored: w = round(float(w) (1 - lr wd) - (lr coef) z_i) in storage. */
void zo_gaussian_update_stored(void *w, badam_dtype dt, size_t n, float lr, float coef,
                               float weight_decay, uint64_t key);
/* mask_gather: dst[k] = (accumulate ? dst[k] : 0) + float(src[idx[k]]). */
void mask_gather(float *dst, const void *src, badam_dtype dt, const int32_t *idx, size_t n,
                 int accumulate);
/* mask_scatter: dst[idx[k]] = round(src[k]) in dst's dtype. */
void mask_scatter(void *dst, badam_dtype dt, const float *src, const int32_t *idx, size_t n);
/* ---- ReLU (relu.c; the bottleneck adapters' nonlinearity): y = max(x, 0) (y may alias x);
 * backward from the output: dx = y > 0 ? dy : 0 (overwritten; dx may alias dy). */
void relu_forward(float *y, const float *x, size_t n);
void relu_backward(float *dx, const float *dy, const float *y, size_t n);

/* ---- The GaLore projector (svd.c; Zhao et al. 2024, galore_projector.py's 'std' type). For a
 * gradient G [rows, cols] (fp32, row-major) and its SVD G = U S Vh (LAPACK dgesvd in double,
 * singular values descending), with k = min(rank, rows, cols):
 *   rows >= cols:  P = Vh[:k, :]   [k, cols]   (the update projects G P^T, back N P)
 *   rows <  cols:  P = U[:, :k]    [rows, k]   (projects P^T G, back P N)
 * each singular vector's sign fixed so its entry of largest magnitude (the first of equals) is
 * positive. scratch: galore_projector_scratch_floats(rows, cols) floats. Returns 0, or LAPACK's
 * info when the SVD did not converge. */
size_t galore_projector_scratch_floats(int rows, int cols);
int galore_projector(float *P, const float *G, int rows, int cols, int rank, float *scratch);

#endif
