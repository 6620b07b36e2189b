/* CPU kernels of the encoder families (BERT, RoBERTa), fp32 compute, with the conventions of
 * ops.h (row-major, backward ops ACCUMULATE into dx and weight gradients unless a comment says
 * "overwritten", a NULL output is skipped). The math of each op is stated once here; the CPU
 * backend (cpu_backend.c) and the reference backend (tests/util/ref_backend.c) implement it. */
#ifndef BADAM_MODEL_CPU_OPS_ENCODER_H
#define BADAM_MODEL_CPU_OPS_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "model/backend.h"

/* layernorm_forward: LayerNorm with bias (PyTorch nn.LayerNorm), rows x[i, 0:C]:
 *   mean_i = sum_j x_ij / C,  var_i = sum_j (x_ij - mean_i)^2 / C  (biased),
 *   rstd_i = 1 / sqrt(var_i + eps),  y_ij = (x_ij - mean_i) rstd_i w_j + b_j
 * (sums in double; mean, rstd may be NULL; y may alias x). */
void layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w,
                       const float *b, int n, int C, float eps);

/* layernorm_backward, with xhat_ij = (x_ij - mean_i) rstd_i and g_ij = dy_ij w_j:
 *   dx_ij += rstd_i (g_ij - mean_j(g_ij) - xhat_ij mean_j(g_ij xhat_ij))
 *   dw_j += sum_i dy_ij xhat_ij;  db_j += sum_i dy_ij */
void layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                        const float *mean, const float *rstd, const float *w, int n, int C);

/* gelu_forward: the exact (erf) GELU of Hugging Face's "gelu" (torch.nn.functional.gelu):
 *   y = x Phi(x),  Phi(x) = (1 + erf(x / sqrt 2)) / 2   (y overwritten; may alias x) */
void gelu_forward(float *y, const float *x, size_t n);
/* gelu_backward: dx = dy (Phi(x) + x phi(x)),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
 * (dx overwritten) */
void gelu_backward(float *dx, const float *dy, const float *x, size_t n);

/* tanh_forward: y = tanh(x) (overwritten); tanh_backward: dx = dy (1 - y^2) (overwritten). */
void tanh_forward(float *y, const float *x, size_t n);
void tanh_backward(float *dx, const float *dy, const float *y, size_t n);

/* attention_bidir_forward: bidirectional multi-head attention (BERT's self-attention) of B
 * sequences of T tokens, q, k, v, out [B,T,H,D]. Key t2 of sequence b takes part when
 * key_mask[b*T+t2] != 0 (key_mask NULL: every key); over those keys
 *   S[b,h,t,t2] = q[b,t,h,:] . k[b,t2,h,:] / sqrt(D),   P = softmax_t2(S),
 *   lse[b,h,t] = log sum_t2 exp(S)   (lse [B,H,T], may be NULL)
 *   Z[b,h,t,t2] = 0 when backend_dropout_unit(key, ((b H + h) T + t) T + t2) < p_drop, else
 *                 1 / (1 - p_drop)   (attention-probability dropout; p_drop 0: Z = 1)
 *   out[b,t,h,:] = sum_t2 P Z v[b,t2,h,:]   (overwritten)
 * This equals HF's additive mask (1 - mask) * finfo.min whenever a sequence has a real key; a
 * sequence with none gets out = 0 and lse = 0 (the model refuses such batches).
 * attention_flops += 2 * 2D * pairs, pairs = H * T * (real keys), summed over sequences. */
void attention_bidir_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                             int B, int T, int H, int D, const uint8_t *key_mask, double p_drop,
                             uint64_t key, op_counters *counters);

/* attention_bidir_backward (dq, dk, dv overwritten), P = exp(S - lse) recomputed:
 *   dP = Z (dout . v),  dS = P (dP - sum_t2 P dP), where sum_t2 P dP = dout . out,
 *   dq = dS k / sqrt(D),  dk = dS^T q / sqrt(D),  dv = (P Z)^T dout
 * attention_flops += 4 * 2D * pairs. */
void attention_bidir_backward(float *dq, float *dk, float *dv, const float *dout, const float *out,
                              const float *lse, const float *q, const float *k, const float *v,
                              int B, int T, int H, int D, const uint8_t *key_mask, double p_drop,
                              uint64_t key, op_counters *counters);

/* class_loss: cross-entropy of n rows of K logits z (targets[i] in [0, K) or LOSS_IGNORE_INDEX):
 *   returns sum_{i counted} (logsumexp(z_i) - z_i[targets[i]])   (in double)
 *   dlogits_i = scale (softmax(z_i) - onehot(targets[i])) on counted rows, 0 on the others
 *   (overwritten; may be NULL); *n_counted = the counted rows.
 * Sequence classification takes a row per sequence; multiple choice a row per group of K
 * choices (the K scores of consecutive sequences). */
double class_loss(float *dlogits, const float *logits, const int32_t *targets, int n, int K,
                  float scale, int *n_counted);

#endif
