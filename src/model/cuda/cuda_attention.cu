// Causal grouped-query attention of the CUDA backend (model/cpu/ops.h: attention_forward,
// attention_backward; backend.h: attention_decode): flash-style, the scores of a row never
// stored. One warp per (sequence, position, query head) row; each lane holds D/32 of the head's
// elements (D <= CUK_ATTN_MAX_D). Forward: an online softmax over keys [lo, t] (running max m,
// sum l, output rescaled by exp(m_old - m_new)); out = acc / l, lse = m + log l. Backward: with
// delta = dout . out per row and P = exp(S - lse) recomputed,
//   dq[t]  = scale sum_t2 P (dout_t . v_t2 - delta_t) k_t2          (one warp per query row)
//   dk[t2] = scale sum_{h in group, t >= t2, lo_t <= t2} P (dP - delta) q_t,
//   dv[t2] = sum_... P dout_t                                        (one warp per key row)
// so no atomics and no T x T memory. Keys stream through L1/L2 (cuda_attention_tiled.cu: the same
// math with key and query tiles in shared memory, BADAM_CUDA_ATTN=tiled).
#include <math.h>

#include "model/cuda/cuda_common.cuh"
#include "model/cuda/cuda_attention.cuh"
#include "model/cuda/cuda_kernels.h"

__device__ __forceinline__ long warp_id(void) {
    return (long)blockIdx.x * WARPS + (threadIdx.x >> 5);
}

__global__ void k_attn_f(float *out, float *lse, const float *q, const float *k, const float *v,
                         int B, int T, int Hq, int Hkv, int D, const int32_t *seg, float scale) {
    long row = warp_id();
    if (row >= (long)B * T * Hq) return;
    int h = (int)(row % Hq), bt = (int)(row / Hq), b = bt / T, t = bt % T;
    int kvh = h / (Hq / Hkv), lo = seg ? seg[bt] : 0;
    int lane = threadIdx.x & 31;
    float qr[NPL], acc[NPL];
    load_row(qr, q + (size_t)row * D, D);
#pragma unroll
    for (int j = 0; j < NPL; j++) acc[j] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (int t2 = lo; t2 <= t; t2++) {
        size_t ko = ((size_t)b * T + t2) * Hkv * D + (size_t)kvh * D;
        float s = dot_row(qr, k + ko, D) * scale;
        float mn = fmaxf(m, s), corr = expf(m - mn), p = expf(s - mn);
        l = l * corr + p;
#pragma unroll
        for (int j = 0; j < NPL; j++) {
            int d = lane + 32 * j;
            acc[j] = acc[j] * corr + (d < D ? p * v[ko + d] : 0.0f);
        }
        m = mn;
    }
    store_row(out + (size_t)row * D, acc, 1.0f / l, D);
    if (lse && lane == 0) lse[((size_t)b * Hq + h) * T + t] = m + logf(l);
}

static unsigned warp_blocks(long rows) {
    return (unsigned)((rows + WARPS - 1) / WARPS);
}

extern "C" void cuk_attention_forward(float *out, float *lse, const float *q, const float *k,
                                      const float *v, int B, int T, int Hq, int Hkv, int D,
                                      const int32_t *seg) {
    long rows = (long)B * T * Hq;
    float scale = 1.0f / sqrtf((float)D);
    if (rows > 0)
        k_attn_f<<<warp_blocks(rows), 32 * WARPS>>>(out, lse, q, k, v, B, T, Hq, Hkv, D, seg,
                                                     scale);
}

// delta[b, h, t] = dout . out of the row
__global__ void k_attn_delta(float *delta, const float *dout, const float *out, int B, int T,
                             int Hq, int D) {
    long row = warp_id();
    if (row >= (long)B * T * Hq) return;
    int h = (int)(row % Hq), bt = (int)(row / Hq), b = bt / T, t = bt % T;
    float r[NPL];
    load_row(r, dout + (size_t)row * D, D);
    float s = dot_row(r, out + (size_t)row * D, D);
    if ((threadIdx.x & 31) == 0) delta[((size_t)b * Hq + h) * T + t] = s;
}

__global__ void k_attn_dq(float *dq, const float *dout, const float *lse, const float *delta,
                          const float *q, const float *k, const float *v, int B, int T, int Hq,
                          int Hkv, int D, const int32_t *seg, float scale) {
    long row = warp_id();
    if (row >= (long)B * T * Hq) return;
    int h = (int)(row % Hq), bt = (int)(row / Hq), b = bt / T, t = bt % T;
    int kvh = h / (Hq / Hkv), lo = seg ? seg[bt] : 0, lane = threadIdx.x & 31;
    size_t si = ((size_t)b * Hq + h) * T + t;
    float ls = lse[si], dl = delta[si];
    float qr[NPL], dr[NPL], acc[NPL];
    load_row(qr, q + (size_t)row * D, D);
    load_row(dr, dout + (size_t)row * D, D);
#pragma unroll
    for (int j = 0; j < NPL; j++) acc[j] = 0.0f;
    for (int t2 = lo; t2 <= t; t2++) {
        size_t ko = ((size_t)b * T + t2) * Hkv * D + (size_t)kvh * D;
        float p = expf(dot_row(qr, k + ko, D) * scale - ls);
        float ds = p * (dot_row(dr, v + ko, D) - dl);
#pragma unroll
        for (int j = 0; j < NPL; j++) {
            int d = lane + 32 * j;
            if (d < D) acc[j] += ds * k[ko + d];
        }
    }
    store_row(dq + (size_t)row * D, acc, scale, D);
}

__global__ void k_attn_dkv(float *dk, float *dv, const float *dout, const float *lse,
                           const float *delta, const float *q, const float *k, const float *v,
                           int B, int T, int Hq, int Hkv, int D, const int32_t *seg, float scale) {
    long row = warp_id();
    if (row >= (long)B * T * Hkv) return;
    int kvh = (int)(row % Hkv), bt = (int)(row / Hkv), b = bt / T, t2 = bt % T;
    int group = Hq / Hkv, lane = threadIdx.x & 31;
    float kr[NPL], vr[NPL], ak[NPL], av[NPL];
    load_row(kr, k + (size_t)row * D, D);
    load_row(vr, v + (size_t)row * D, D);
#pragma unroll
    for (int j = 0; j < NPL; j++) ak[j] = av[j] = 0.0f;
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        for (int t = t2; t < T; t++) {
            if (seg && seg[(size_t)b * T + t] > t2) continue;
            size_t qo = (((size_t)b * T + t) * Hq + h) * D, si = ((size_t)b * Hq + h) * T + t;
            float p = expf(dot_row(kr, q + qo, D) * scale - lse[si]);
            float ds = p * (dot_row(vr, dout + qo, D) - delta[si]);
#pragma unroll
            for (int j = 0; j < NPL; j++) {
                int d = lane + 32 * j;
                if (d < D) {
                    ak[j] += ds * q[qo + d];
                    av[j] += p * dout[qo + d];
                }
            }
        }
    }
    if (dk) store_row(dk + (size_t)row * D, ak, scale, D);
    if (dv) store_row(dv + (size_t)row * D, av, 1.0f, D);
}

extern "C" void cuk_attention_backward(float *dq, float *dk, float *dv, const float *dout,
                                       const float *out, const float *lse, const float *q,
                                       const float *k, const float *v, int B, int T, int Hq,
                                       int Hkv, int D, const int32_t *seg, float *delta) {
    long rows = (long)B * T * Hq, kv_rows = (long)B * T * Hkv;
    float scale = 1.0f / sqrtf((float)D);
    if (rows <= 0) return;
    k_attn_delta<<<warp_blocks(rows), 32 * WARPS>>>(delta, dout, out, B, T, Hq, D);
    if (dq)
        k_attn_dq<<<warp_blocks(rows), 32 * WARPS>>>(dq, dout, lse, delta, q, k, v, B, T, Hq, Hkv,
                                                      D, seg, scale);
    if (dk || dv)
        k_attn_dkv<<<warp_blocks(kv_rows), 32 * WARPS>>>(dk, dv, dout, lse, delta, q, k, v, B, T,
                                                          Hq, Hkv, D, seg, scale);
}

// Decode: row i (position p0 + i), head h over cache positions [lo, p0 + i]
__global__ void k_attn_decode(float *out, const float *q, const float *K, const float *V, int n,
                              int p0, int Hq, int Hkv, int D, int kv_stride, int window,
                              float scale) {
    long row = warp_id();
    if (row >= (long)n * Hq) return;
    int h = (int)(row % Hq), i = (int)(row / Hq), kvh = h / (Hq / Hkv), t = p0 + i;
    int lo = window > 0 && t - window + 1 > 0 ? t - window + 1 : 0, lane = threadIdx.x & 31;
    float qr[NPL], acc[NPL];
    load_row(qr, q + (size_t)row * D, D);
#pragma unroll
    for (int j = 0; j < NPL; j++) acc[j] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (int t2 = lo; t2 <= t; t2++) {
        size_t ko = (size_t)t2 * kv_stride + (size_t)kvh * D;
        float s = dot_row(qr, K + ko, D) * scale;
        float mn = fmaxf(m, s), corr = expf(m - mn), p = expf(s - mn);
        l = l * corr + p;
#pragma unroll
        for (int j = 0; j < NPL; j++) {
            int d = lane + 32 * j;
            acc[j] = acc[j] * corr + (d < D ? p * V[ko + d] : 0.0f);
        }
        m = mn;
    }
    store_row(out + (size_t)row * D, acc, 1.0f / l, D);
}

extern "C" void cuk_attention_decode(float *out, const float *q, const float *K, const float *V,
                                     int n, int p0, int Hq, int Hkv, int D, int kv_stride,
                                     int window) {
    long rows = (long)n * Hq;
    float scale = 1.0f / sqrtf((float)D);
    if (rows > 0)
        k_attn_decode<<<warp_blocks(rows), 32 * WARPS>>>(out, q, K, V, n, p0, Hq, Hkv, D,
                                                          kv_stride, window, scale);
}
