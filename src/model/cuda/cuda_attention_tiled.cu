// Causal grouped-query attention with shared-memory tiles (BADAM_CUDA_ATTN=tiled; the default is
// cuda_attention.cu's warp-per-row kernels, which state the math). NOT YET RUN ON A GPU.
// Each row's arithmetic is the warp kernels' own, in the same order (keys ascending for a query
// row; heads of the group, then queries ascending for a key row), so the results are bit for bit
// theirs; what changes is the memory traffic: a block of TQ warps works on TQ consecutive
// positions of one head and reads each tile of TK key (or query) rows from global memory once
// into shared memory for all of them, instead of once per warp.
//   forward, dq: block = (b, h, TQ query positions); tiles of K and V rows [TK, D]
//   dk, dv:      block = (b, kv head, TQ key positions); per head of the group, tiles of
//                q and dout rows [TK, D] with their lse, delta and segment starts
#include <limits.h>
#include <math.h>

#include "model/cuda/cuda_attention.cuh"
#include "model/cuda/cuda_kernels.h"

#define TQ 8  /* warps per block: positions of the block */
#define TK 16 /* rows per shared tile (2 x TK x CUK_ATTN_MAX_D floats: 32 KiB) */

// The smallest segment start of the block's active query rows (all warps call it).
__device__ int block_min_lo(int lo, int active) {
    __shared__ int lo_s[TQ];
    int w = threadIdx.x >> 5;
    if ((threadIdx.x & 31) == 0) lo_s[w] = active ? lo : INT_MAX;
    __syncthreads();
    int m = INT_MAX;
    for (int i = 0; i < TQ; i++) m = min(m, lo_s[i]);
    __syncthreads();
    return m;
}

// Rows [r0, r0 + n) of one head of x [B, T, H, D] into s [n, D] (the whole block).
__device__ void load_tile(float *s, const float *x, int b, int r0, int n, int T, int H, int head,
                          int D) {
    for (int i = threadIdx.x; i < n * D; i += blockDim.x) {
        int r = i / D, d = i % D;
        s[r * D + d] = x[(((size_t)b * T + r0 + r) * H + head) * D + d];
    }
}

__global__ void __launch_bounds__(32 * TQ)
    k_attn_f_tiled(float *out, float *lse, const float *q, const float *k, const float *v, int B,
                   int T, int Hq, int Hkv, int D, const int32_t *seg, float scale) {
    __shared__ float ks[TK * CUK_ATTN_MAX_D], vs[TK * CUK_ATTN_MAX_D];
    int tiles = (T + TQ - 1) / TQ, tile = (int)(blockIdx.x % tiles);
    int bh = (int)(blockIdx.x / tiles), h = bh % Hq, b = bh / Hq;
    int lane = threadIdx.x & 31, t0 = tile * TQ, t = t0 + (threadIdx.x >> 5);
    int active = t < T, kvh = h / (Hq / Hkv), t_last = min(t0 + TQ, T) - 1;
    int lo = active && seg ? seg[(size_t)b * T + t] : 0;
    int k_first = block_min_lo(lo, active);
    size_t row = ((size_t)b * T + t) * Hq + h;
    float qr[NPL], acc[NPL];
    if (active) load_row(qr, q + row * D, D);
#pragma unroll
    for (int j = 0; j < NPL; j++) acc[j] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (int k0 = k_first; k0 <= t_last; k0 += TK) {
        int n = min(TK, t_last - k0 + 1);
        load_tile(ks, k, b, k0, n, T, Hkv, kvh, D);
        load_tile(vs, v, b, k0, n, T, Hkv, kvh, D);
        __syncthreads();
        int a = max(lo, k0), e = min(t, k0 + n - 1);
        for (int t2 = a; active && t2 <= e; t2++) {
            const float *kr = ks + (t2 - k0) * D, *vr = vs + (t2 - k0) * D;
            float s = dot_row(qr, kr, D) * scale;
            float mn = fmaxf(m, s), corr = expf(m - mn), p = expf(s - mn);
            l = l * corr + p;
#pragma unroll
            for (int j = 0; j < NPL; j++) {
                int d = lane + 32 * j;
                acc[j] = acc[j] * corr + (d < D ? p * vr[d] : 0.0f);
            }
            m = mn;
        }
        __syncthreads();
    }
    if (!active) return;
    store_row(out + row * D, acc, 1.0f / l, D);
    if (lse && lane == 0) lse[((size_t)b * Hq + h) * T + t] = m + logf(l);
}

__global__ void __launch_bounds__(32 * TQ)
    k_attn_dq_tiled(float *dq, const float *dout, const float *lse, const float *delta,
                    const float *q, const float *k, const float *v, int B, int T, int Hq, int Hkv,
                    int D, const int32_t *seg, float scale) {
    __shared__ float ks[TK * CUK_ATTN_MAX_D], vs[TK * CUK_ATTN_MAX_D];
    int tiles = (T + TQ - 1) / TQ, tile = (int)(blockIdx.x % tiles);
    int bh = (int)(blockIdx.x / tiles), h = bh % Hq, b = bh / Hq;
    int lane = threadIdx.x & 31, t0 = tile * TQ, t = t0 + (threadIdx.x >> 5);
    int active = t < T, kvh = h / (Hq / Hkv), t_last = min(t0 + TQ, T) - 1;
    int lo = active && seg ? seg[(size_t)b * T + t] : 0;
    int k_first = block_min_lo(lo, active);
    size_t row = ((size_t)b * T + t) * Hq + h, si = ((size_t)b * Hq + h) * T + t;
    float ls = active ? lse[si] : 0.0f, dl = active ? delta[si] : 0.0f;
    float qr[NPL], dr[NPL], acc[NPL];
    if (active) load_row(qr, q + row * D, D), load_row(dr, dout + row * D, D);
#pragma unroll
    for (int j = 0; j < NPL; j++) acc[j] = 0.0f;
    for (int k0 = k_first; k0 <= t_last; k0 += TK) {
        int n = min(TK, t_last - k0 + 1);
        load_tile(ks, k, b, k0, n, T, Hkv, kvh, D);
        load_tile(vs, v, b, k0, n, T, Hkv, kvh, D);
        __syncthreads();
        int a = max(lo, k0), e = min(t, k0 + n - 1);
        for (int t2 = a; active && t2 <= e; t2++) {
            const float *kr = ks + (t2 - k0) * D, *vr = vs + (t2 - k0) * D;
            float p = expf(dot_row(qr, kr, D) * scale - ls);
            float ds = p * (dot_row(dr, vr, D) - dl);
#pragma unroll
            for (int j = 0; j < NPL; j++) {
                int d = lane + 32 * j;
                if (d < D) acc[j] += ds * kr[d];
            }
        }
        __syncthreads();
    }
    if (active) store_row(dq + row * D, acc, scale, D);
}

__global__ void __launch_bounds__(32 * TQ)
    k_attn_dkv_tiled(float *dk, float *dv, const float *dout, const float *lse,
                     const float *delta, const float *q, const float *k, const float *v, int B,
                     int T, int Hq, int Hkv, int D, const int32_t *seg, float scale) {
    __shared__ float qs[TK * CUK_ATTN_MAX_D], ds_[TK * CUK_ATTN_MAX_D];
    __shared__ float ls_s[TK], dl_s[TK];
    __shared__ int lo_s[TK];
    int tiles = (T + TQ - 1) / TQ, tile = (int)(blockIdx.x % tiles);
    int bh = (int)(blockIdx.x / tiles), kvh = bh % Hkv, b = bh / Hkv;
    int lane = threadIdx.x & 31, t0 = tile * TQ, t2 = t0 + (threadIdx.x >> 5);
    int active = t2 < T, group = Hq / Hkv;
    size_t row = ((size_t)b * T + t2) * Hkv + kvh;
    float kr[NPL], vr[NPL], ak[NPL], av[NPL];
    if (active) load_row(kr, k + row * D, D), load_row(vr, v + row * D, D);
#pragma unroll
    for (int j = 0; j < NPL; j++) ak[j] = av[j] = 0.0f;
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        for (int q0 = t0; q0 < T; q0 += TK) {
            int n = min(TK, T - q0);
            load_tile(qs, q, b, q0, n, T, Hq, h, D);
            load_tile(ds_, dout, b, q0, n, T, Hq, h, D);
            for (int r = threadIdx.x; r < n; r += blockDim.x) {
                size_t si = ((size_t)b * Hq + h) * T + q0 + r;
                ls_s[r] = lse[si], dl_s[r] = delta[si];
                lo_s[r] = seg ? seg[(size_t)b * T + q0 + r] : 0;
            }
            __syncthreads();
            for (int t = max(t2, q0); active && t < q0 + n; t++) {
                int r = t - q0;
                if (lo_s[r] > t2) continue;
                const float *qr = qs + r * D, *dr = ds_ + r * D;
                float p = expf(dot_row(kr, qr, D) * scale - ls_s[r]);
                float ds = p * (dot_row(vr, dr, D) - dl_s[r]);
#pragma unroll
                for (int j = 0; j < NPL; j++) {
                    int d = lane + 32 * j;
                    if (d < D) {
                        ak[j] += ds * qr[d];
                        av[j] += p * dr[d];
                    }
                }
            }
            __syncthreads();
        }
    }
    if (!active) return;
    if (dk) store_row(dk + row * D, ak, scale, D);
    if (dv) store_row(dv + row * D, av, 1.0f, D);
}

// delta[b, h, t] = dout . out of the row (as cuda_attention.cu's)
__global__ void k_attn_delta_tiled(float *delta, const float *dout, const float *out, int B,
                                   int T, int Hq, int D) {
    long row = (long)blockIdx.x * WARPS + (threadIdx.x >> 5);
    if (row >= (long)B * T * Hq) return;
    int h = (int)(row % Hq), bt = (int)(row / Hq), b = bt / T, t = bt % T;
    float r[NPL];
    load_row(r, dout + (size_t)row * D, D);
    float s = dot_row(r, out + (size_t)row * D, D);
    if ((threadIdx.x & 31) == 0) delta[((size_t)b * Hq + h) * T + t] = s;
}

extern "C" void cuk_attention_forward_tiled(float *out, float *lse, const float *q, const float *k,
                                            const float *v, int B, int T, int Hq, int Hkv, int D,
                                            const int32_t *seg) {
    long blocks = (long)B * Hq * ((T + TQ - 1) / TQ);
    if (blocks > 0)
        k_attn_f_tiled<<<(unsigned)blocks, 32 * TQ>>>(out, lse, q, k, v, B, T, Hq, Hkv, D, seg,
                                                      1.0f / sqrtf((float)D));
}

extern "C" void cuk_attention_backward_tiled(float *dq, float *dk, float *dv, const float *dout,
                                             const float *out, const float *lse, const float *q,
                                             const float *k, const float *v, int B, int T, int Hq,
                                             int Hkv, int D, const int32_t *seg, float *delta) {
    long rows = (long)B * T * Hq, tiles = (T + TQ - 1) / TQ;
    float scale = 1.0f / sqrtf((float)D);
    if (rows <= 0) return;
    k_attn_delta_tiled<<<(unsigned)((rows + WARPS - 1) / WARPS), 32 * WARPS>>>(delta, dout, out, B,
                                                                               T, Hq, D);
    if (dq)
        k_attn_dq_tiled<<<(unsigned)(B * Hq * tiles), 32 * TQ>>>(dq, dout, lse, delta, q, k, v, B,
                                                                 T, Hq, Hkv, D, seg, scale);
    if (dk || dv)
        k_attn_dkv_tiled<<<(unsigned)(B * Hkv * tiles), 32 * TQ>>>(dk, dv, dout, lse, delta, q, k,
                                                                   v, B, T, Hq, Hkv, D, seg, scale);
}
