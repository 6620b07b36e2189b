/* Launchers of the CUDA backend's kernels (the .cu files beside this), callable from C. Every
 * pointer is device memory; every launch goes on the default stream and returns at once (errors
 * surface through cudaGetLastError in cuda_backend.c). The math of each is that of the
 * backend.h op it implements (model/cpu/ops.h and ops_encoder.h state it once); dtype arguments
 * are badam_dtype values (0 f32, 1 bf16, 2 f16). */
#ifndef BADAM_MODEL_CUDA_KERNELS_H
#define BADAM_MODEL_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- elementwise (cuda_elementwise.cu) ---- */
void cuk_convert(void *dst, int dst_dtype, const void *src, int src_dtype, size_t n);
void cuk_add(float *y, const float *a, const float *b, size_t n);
void cuk_dropout(float *out, const float *x, size_t n, uint64_t key, size_t first, double p,
                 int accumulate);
void cuk_swiglu_forward(float *h, const float *g, const float *u, size_t n);
void cuk_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u,
                         size_t n);
void cuk_gelu_forward(float *y, const float *x, size_t n);
void cuk_gelu_backward(float *dx, const float *dy, const float *x, size_t n);
void cuk_tanh_forward(float *y, const float *x, size_t n);
void cuk_tanh_backward(float *dx, const float *dy, const float *y, size_t n);
void cuk_relu_forward(float *y, const float *x, size_t n);
void cuk_relu_backward(float *dx, const float *dy, const float *y, size_t n);
void cuk_scale(float *x, float a, size_t n);
/* C[r, :cols] (row stride ld) = beta C, or 0 when beta is 0 (a GEMM with K = 0) */
void cuk_scale_rows(float *C, float beta, int rows, int cols, int ld);
void cuk_axpy(float *y, float a, const float *x, size_t n);
/* sum of squares: partial[b] for b < CUK_SUMSQ_BLOCKS, each block's slice summed in double */
#define CUK_SUMSQ_BLOCKS 256
void cuk_sum_squares(double *partial, const float *x, size_t n);
/* y[r, :] = b for r < rows (the bias before a GEMM with beta 1) */
void cuk_fill_rows(float *y, const float *b, int rows, int cols);
/* db[j] += sum_i dy[i, j] */
void cuk_col_sum(float *db, const float *dy, int rows, int cols);
void cuk_gaussian_perturb(float *dst, const void *w, int w_dtype, size_t n, float eps,
                          uint64_t key);
void cuk_gaussian_update_stored(void *w, int w_dtype, size_t n, float lr, float coef,
                                float weight_decay, uint64_t key);
void cuk_gather(float *dst, const void *src, int src_dtype, const int32_t *idx, size_t n,
                int accumulate);
void cuk_scatter(void *dst, int dst_dtype, const float *src, const int32_t *idx, size_t n);

/* ---- optimizer (cuda_optim.cu); the per-step constants computed on the host as the CPU does
 * (model/cpu/optim_update.c) ---- */
typedef struct cuk_adamw {
    float b1, b2, eps, decay, step_size, bc2_sqrt, grad_scale;
} cuk_adamw;
void cuk_adamw_update(float *param, float *m, float *v, const float *grad, size_t n, cuk_adamw c,
                      void *weight, int weight_dtype);
void cuk_adamw_update_split(uint16_t *weight, uint16_t *lo, float *m, float *v, const float *grad,
                            size_t n, cuk_adamw c);
void cuk_sgd_update(float *param, const float *grad, size_t n, float decay, float step,
                    void *weight, int weight_dtype);
void cuk_sgd_update_split(uint16_t *weight, uint16_t *lo, const float *grad, size_t n, float decay,
                          float step);
void cuk_sgd_update_stored(void *weight, int weight_dtype, const float *grad, size_t n, float decay,
                           float step);

/* ---- rows (cuda_rows.cu) ---- */
void cuk_embedding_forward(float *out, const int32_t *tokens, int n, const void *table,
                           int table_dtype, int C);
void cuk_embedding_backward(float *dtable, const int32_t *tokens, int n, const float *dout, int C);
void cuk_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int n, int C,
                         float eps);
void cuk_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                          const float *rstd, int n, int C);
void cuk_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w,
                           const float *b, int n, int C, float eps);
/* mean_tmp, rstd_tmp: n floats each, used when mean or rstd is NULL */
void cuk_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                            const float *mean, const float *rstd, const float *w, int n, int C);
void cuk_rope_tables(float *cos_t, float *sin_t, const float *inv_freq, int T, int half);
void cuk_rope(float *x, const int32_t *pos, const float *cos_t, const float *sin_t, int n,
              int heads, int head_dim, int backward);

/* ---- attention (cuda_attention.cu) ---- */
/* head dims up to CUK_ATTN_MAX_D */
#define CUK_ATTN_MAX_D 256
void cuk_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                           int B, int T, int Hq, int Hkv, int D, const int32_t *seg_start);
/* delta: B*Hq*T floats of scratch */
void cuk_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out,
                            const float *lse, const float *q, const float *k, const float *v, int B,
                            int T, int Hq, int Hkv, int D, const int32_t *seg_start, float *delta);
/* The same with key / query tiles in shared memory (cuda_attention_tiled.cu; bit for bit the
 * results of the two above; NOT YET RUN ON A GPU, chosen with BADAM_CUDA_ATTN=tiled) */
void cuk_attention_forward_tiled(float *out, float *lse, const float *q, const float *k,
                                 const float *v, int B, int T, int Hq, int Hkv, int D,
                                 const int32_t *seg_start);
void cuk_attention_backward_tiled(float *dq, float *dk, float *dv, const float *dout,
                                  const float *out, const float *lse, const float *q,
                                  const float *k, const float *v, int B, int T, int Hq, int Hkv,
                                  int D, const int32_t *seg_start, float *delta);
void cuk_attention_decode(float *out, const float *q, const float *K, const float *V, int n, int p0,
                          int Hq, int Hkv, int D, int kv_stride, int window);

/* ---- losses (cuda_loss.cu) ---- */
/* rows[r] < n_rows: dst[r, :] = src[rows[r], :] */
void cuk_gather_rows(float *dst, const float *src, const int32_t *rows, int n_rows, int C);
/* dst[rows[r], :] += src[r, :] (rows without repeats) */
void cuk_scatter_add_rows(float *dst, const float *src, const int32_t *rows, int n_rows, int C);
/* Cross-entropy of each row r < n of z [n, V] against y_r = targets[rows ? rows[r] : r]:
 * loss[r] = logsumexp(z_r) - z_r[y_r] (max, sum of exp and log in double); grad (may be NULL,
 * may alias z) row r = scale (softmax(z_r) - onehot(y_r)). A row whose target is
 * LOSS_IGNORE_INDEX gets loss 0 and a zero grad row. */
void cuk_cross_entropy_rows(float *grad, double *loss, const float *z, const int32_t *targets,
                            const int32_t *rows, int n, int V, float scale);

#ifdef __cplusplus
}
#endif

#endif
