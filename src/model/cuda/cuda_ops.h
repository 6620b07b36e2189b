/* The CUDA backend's ops (cu_NAME implements backend_ops.NAME; backend.h states each), defined
 * in cuda_ops.c, cuda_ops_linear.c, cuda_ops_model.c and cuda_host_ops.c and gathered into the
 * table in cuda_backend.c. Private to src/model/cuda. */
#ifndef BADAM_MODEL_CUDA_OPS_H
#define BADAM_MODEL_CUDA_OPS_H

#include "model/backend.h"

/* cuda_ops.c */
void cu_convert(backend *be, void *dst, badam_dtype dd, const void *src, badam_dtype sd, size_t n);
void cu_add(backend *be, float *y, const float *a, const float *b, size_t n);
void cu_dropout(backend *be, float *out, const float *x, size_t n, uint64_t key, size_t first,
                double p, int accumulate);
void cu_swiglu_forward(backend *be, float *h, const float *g, const float *u, size_t n);
void cu_swiglu_backward(backend *be, float *dg, float *du, const float *dh, const float *g,
                        const float *u, size_t n);
void cu_gelu_forward(backend *be, float *y, const float *x, size_t n);
void cu_gelu_backward(backend *be, float *dx, const float *dy, const float *x, size_t n);
void cu_tanh_forward(backend *be, float *y, const float *x, size_t n);
void cu_tanh_backward(backend *be, float *dx, const float *dy, const float *y, size_t n);
void cu_relu_forward(backend *be, float *y, const float *x, size_t n);
void cu_relu_backward(backend *be, float *dx, const float *dy, const float *y, size_t n);
void cu_adamw_update(backend *be, float *param, float *m, float *v, const float *grad, size_t n,
                     const adamw_step_args *a, void *weight, badam_dtype wd);
void cu_adamw_update_split(backend *be, uint16_t *weight, uint16_t *lo, float *m, float *v,
                           const float *grad, size_t n, const adamw_step_args *a);
void cu_sgd_update(backend *be, float *param, const float *grad, size_t n, float lr,
                   float grad_scale, float weight_decay, void *weight, badam_dtype wd);
void cu_sgd_update_split(backend *be, uint16_t *weight, uint16_t *lo, const float *grad, size_t n,
                         float lr, float grad_scale, float weight_decay);
void cu_sgd_update_stored(backend *be, void *weight, badam_dtype wd, const float *grad, size_t n,
                          float lr, float grad_scale, float weight_decay);
double cu_sum_squares(backend *be, const float *x, size_t n);
void cu_scale(backend *be, float *x, float a, size_t n);
void cu_axpy(backend *be, float *y, float a, const float *x, size_t n);
void cu_gaussian_perturb(backend *be, float *dst, const void *w, badam_dtype wd, size_t n,
                         float eps, uint64_t key);
void cu_gaussian_update_stored(backend *be, void *w, badam_dtype wd, size_t n, float lr, float coef,
                               float weight_decay, uint64_t key);
void cu_gather(backend *be, float *dst, const void *src, badam_dtype sd, const int32_t *idx,
               size_t n, int accumulate);
void cu_scatter(backend *be, void *dst, badam_dtype dd, const float *src, const int32_t *idx,
                size_t n);
/* cuda_ops_linear.c */
void cu_gemm_f32(backend *be, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc);
void cu_linear_forward(backend *be, float *y, const float *x, const void *w, badam_dtype wd,
                       const float *b, int n, int in, int out, float *scratch);
void cu_linear_backward_input(backend *be, float *dx, const float *dy, const void *w,
                              badam_dtype wd, int n, int in, int out, float *scratch);
void cu_linear_backward_weight(backend *be, float *dw, float *db, const float *dy, const float *x,
                               badam_dtype wd, int n, int in, int out, float *scratch,
                               size_t scratch_floats);
double cu_lm_head_loss(backend *be, float *dh, float *dw, const float *h, const void *w,
                       badam_dtype wd, const int32_t *targets, int n, int C, int V, int chunk,
                       float scale, float *workspace, int *n_counted);
/* cuda_ops_model.c */
void cu_embedding_forward(backend *be, float *out, const int32_t *tokens, int n, const void *table,
                          badam_dtype td, int C);
void cu_embedding_backward(backend *be, float *dtable, const int32_t *tokens, int n,
                           const float *dout, int C);
void cu_rmsnorm_forward(backend *be, float *y, float *rstd, const float *x, const float *w, int n,
                        int C, float eps);
void cu_rmsnorm_backward(backend *be, float *dx, float *dw, const float *dy, const float *x,
                         const float *w, const float *rstd, int n, int C);
void cu_layernorm_forward(backend *be, float *y, float *mean, float *rstd, const float *x,
                          const float *w, const float *b, int n, int C, float eps);
void cu_layernorm_backward(backend *be, float *dx, float *dw, float *db, const float *dy,
                           const float *x, const float *mean, const float *rstd, const float *w,
                           int n, int C);
void cu_rope_tables(backend *be, float *cos_t, float *sin_t, const float *inv_freq, int T,
                    int half);
void cu_rope_forward(backend *be, float *x, const int32_t *pos, const float *cos_t,
                     const float *sin_t, int n, int heads, int head_dim);
void cu_rope_backward(backend *be, float *dx, const int32_t *pos, const float *cos_t,
                      const float *sin_t, int n, int heads, int head_dim);
void cu_attention_forward(backend *be, float *out, float *lse, const float *q, const float *k,
                          const float *v, int B, int T, int Hq, int Hkv, int D,
                          const int32_t *seg_start);
void cu_attention_backward(backend *be, float *dq, float *dk, float *dv, const float *dout,
                           const float *out, const float *lse, const float *q, const float *k,
                           const float *v, int B, int T, int Hq, int Hkv, int D,
                           const int32_t *seg_start);
void cu_attention_decode(backend *be, float *out, const float *q, const float *K, const float *V,
                         int n, int p0, int Hq, int Hkv, int D, int kv_stride, int window,
                         int max_len, float *scratch);
double cu_class_loss(backend *be, float *dlogits, const float *logits, const int32_t *targets,
                     int n, int K, float scale, int *n_counted);
/* cuda_host_ops.c */
void cu_attention_bidir_forward(backend *be, float *out, float *lse, const float *q, const float *k,
                                const float *v, int B, int T, int H, int D, const uint8_t *key_mask,
                                double p_drop, uint64_t key);
void cu_attention_bidir_backward(backend *be, float *dq, float *dk, float *dv, const float *dout,
                                 const float *out, const float *lse, const float *q, const float *k,
                                 const float *v, int B, int T, int H, int D,
                                 const uint8_t *key_mask, double p_drop, uint64_t key);
int cu_galore_projector(backend *be, float *P, const float *G, int rows, int cols, int rank,
                        float *scratch);

#endif
