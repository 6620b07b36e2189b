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

#endif
