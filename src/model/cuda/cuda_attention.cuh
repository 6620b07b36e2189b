// The row helpers of the CUDA attention kernels (cuda_attention.cu, cuda_attention_tiled.cu):
// a warp holds one head row of D <= CUK_ATTN_MAX_D elements, lane l the elements l + 32 j.
#ifndef BADAM_MODEL_CUDA_ATTENTION_CUH
#define BADAM_MODEL_CUDA_ATTENTION_CUH

#include "model/cuda/cuda_common.cuh"
#include "model/cuda/cuda_kernels.h"

#define WARPS 4

#define NPL (CUK_ATTN_MAX_D / 32)

__device__ __forceinline__ void load_row(float r[NPL], const float *p, int D) {
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int j = 0; j < NPL; j++) {
        int d = lane + 32 * j;
        r[j] = d < D ? p[d] : 0.0f;
    }
}

__device__ __forceinline__ float dot_row(const float r[NPL], const float *p, int D) {
    int lane = threadIdx.x & 31;
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < NPL; j++) {
        int d = lane + 32 * j;
        if (d < D) s += r[j] * p[d];
    }
    return cuk_warp_sum(s);
}

__device__ __forceinline__ void store_row(float *p, const float r[NPL], float a, int D) {
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int j = 0; j < NPL; j++) {
        int d = lane + 32 * j;
        if (d < D) p[d] = r[j] * a;
    }
}

#endif
