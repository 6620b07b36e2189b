/* The reference backend: every op of model/backend.h as plain loops, accumulating in double where
 * it helps, written from the math in backend.h and model/cpu/ops.h and nothing else (no tiling,
 * no vector code, no BLAS). It is the oracle test_backend_ops checks every real backend against,
 * and the attention loops are shared with test_ops. Host memory; counters count GEMM FLOPs as
 * 2*m*n*k per product and attention FLOPs as the CPU contract states (full requests). */
#ifndef BADAM_TEST_REF_BACKEND_H
#define BADAM_TEST_REF_BACKEND_H

#include "model/backend.h"

badam_status ref_backend_create(backend **out, badam_error *err);

/* The attention oracles (double): out, lse (may be NULL) and dq, dk, dv overwritten; row t of
 * sequence b sees keys seg[b*T+t]..t (seg NULL: 0..t). */
void ref_attention_forward_loops(float *out, float *lse, const float *q, const float *k,
                                 const float *v, int B, int T, int Hq, int Hkv, int D,
                                 const int32_t *seg);
void ref_attention_backward_loops(float *dq, float *dk, float *dv, const float *dout,
                                  const float *q, const float *k, const float *v, int B, int T,
                                  int Hq, int Hkv, int D, const int32_t *seg);

/* The optimizer ops of the reference backend (ref_optim.c), for its op table. */
void ref_adamw_update(backend *be, float *param, float *m, float *v, const float *grad, size_t n,
                      const adamw_step_args *a, void *weight, badam_dtype wd);
void ref_adamw_update_split(backend *be, uint16_t *weight, uint16_t *lo, float *m, float *v,
                            const float *grad, size_t n, const adamw_step_args *a);
void ref_sgd_update(backend *be, float *param, const float *grad, size_t n, float lr,
                    float grad_scale, float weight_decay, void *weight, badam_dtype wd);
void ref_sgd_update_split(backend *be, uint16_t *weight, uint16_t *lo, const float *grad, size_t n,
                          float lr, float grad_scale, float weight_decay);
void ref_sgd_update_stored(backend *be, void *weight, badam_dtype wd, const float *grad, size_t n,
                           float lr, float grad_scale, float weight_decay);
double ref_sum_squares(backend *be, const float *x, size_t n);
void ref_scale(backend *be, float *x, float a, size_t n);
void ref_axpy(backend *be, float *y, float a, const float *x, size_t n);
/* Its zeroth-order and masked ops (ref_zo_mask.c). */
void ref_gaussian_perturb(backend *be, float *dst, const void *w, badam_dtype wd, size_t n,
                          float eps, uint64_t key);
void ref_gaussian_update_stored(backend *be, void *w, badam_dtype wd, size_t n, float lr,
                                float coef, float weight_decay, uint64_t key);
void ref_gather(backend *be, float *dst, const void *src, badam_dtype sd, const int32_t *idx,
                size_t n, int accumulate);
void ref_scatter(backend *be, void *dst, badam_dtype dd, const float *src, const int32_t *idx,
                 size_t n);
/* The GaLore projector by Jacobi rotations (ref_galore.c). */
size_t ref_galore_scratch(int rows, int cols);
int ref_galore_projector(backend *be, float *P, const float *G, int rows, int cols, int rank,
                         float *scratch);

#endif
