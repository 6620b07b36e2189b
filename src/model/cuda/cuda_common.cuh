// Device helpers shared by the CUDA backend's kernels: dtype loads and stores with the host's
// exact rounding (include/badam/dtype.h: bf16 round-to-nearest-even with quiet NaN, f16 as
// base/dtype.c's badam_f32_to_f16), the split master, the dropout and Gaussian hashes of
// backend.h, and the grid of a flat loop. Compiled with -fmad=false (CMakeLists.txt), so each
// element's arithmetic rounds as the CPU's (no fused multiply-add).
#ifndef BADAM_MODEL_CUDA_COMMON_CUH
#define BADAM_MODEL_CUDA_COMMON_CUH

#include <stddef.h>
#include <stdint.h>

#define CUK_THREADS 256

static inline unsigned cuk_blocks(size_t n) {
    size_t b = (n + CUK_THREADS - 1) / CUK_THREADS;
    if (b > 65535u * 8u) b = 65535u * 8u;
    return (unsigned)(b ? b : 1);
}

#define CUK_FOR(i, n)                                                                             \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                       \
         i += (size_t)gridDim.x * blockDim.x)

__device__ __forceinline__ float cuk_bf16_to_f32(uint16_t h) {
    return __uint_as_float((uint32_t)h << 16);
}

__device__ __forceinline__ uint16_t cuk_f32_to_bf16(float f) {
    uint32_t bits = __float_as_uint(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x0040u);
    uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)((bits + rounding) >> 16);
}

__device__ __forceinline__ float cuk_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0) { // zero or subnormal: mant * 2^-24
        float v = (float)mant * 5.9604644775390625e-8f;
        return __uint_as_float(__float_as_uint(v) | sign);
    }
    if (exp == 31) return __uint_as_float(sign | 0x7f800000u | (mant << 13));
    return __uint_as_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

__device__ __forceinline__ uint16_t cuk_f32_to_f16(float f) {
    uint32_t bits = __float_as_uint(f);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    uint32_t a = bits & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;
    if (a >= 0x477ff000u) return sign | 0x7c00u;
    if (a < 0x38800000u) return sign | (uint16_t)__float2int_rn(__uint_as_float(a) * 16777216.0f);
    uint32_t mant_round = a + 0xfffu + ((a >> 13) & 1u);
    return sign | (uint16_t)((mant_round - 0x38000000u) >> 13);
}

__device__ __forceinline__ float cuk_load(const void *p, int dtype, size_t i) {
    if (dtype == 1) return cuk_bf16_to_f32(((const uint16_t *)p)[i]);
    if (dtype == 2) return cuk_f16_to_f32(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

__device__ __forceinline__ void cuk_store(void *p, int dtype, size_t i, float v) {
    if (dtype == 1)
        ((uint16_t *)p)[i] = cuk_f32_to_bf16(v);
    else if (dtype == 2)
        ((uint16_t *)p)[i] = cuk_f32_to_f16(v);
    else
        ((float *)p)[i] = v;
}

__device__ __forceinline__ float cuk_master_join(uint16_t weight, uint16_t lo) {
    uint32_t u = ((uint32_t)(uint16_t)(weight - (lo >> 15)) << 16) | lo;
    return __uint_as_float(u);
}

__device__ __forceinline__ void cuk_master_split(float p, uint16_t *weight, uint16_t *lo) {
    uint32_t u = __float_as_uint(p);
    *weight = (uint16_t)((u + 0x8000u) >> 16);
    *lo = (uint16_t)(u & 0xffffu);
}

__device__ __forceinline__ uint64_t cuk_mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

__device__ __forceinline__ double cuk_unit(uint64_t h) {
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

__device__ __forceinline__ float cuk_gaussian(uint64_t key, size_t j) {
    double u1 = cuk_unit(cuk_mix64(key ^ (2 * (uint64_t)j)));
    double u2 = cuk_unit(cuk_mix64(key ^ (2 * (uint64_t)j + 1)));
    return (float)(sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2));
}

__device__ __forceinline__ float cuk_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float cuk_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over a block of CUK_THREADS threads (every thread gets the result); sh: 32 floats.
__device__ __forceinline__ float cuk_block_sum(float v, float *sh) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = cuk_warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    float t = lane < (int)(blockDim.x >> 5) ? sh[lane] : 0.0f;
    return cuk_warp_sum(t);
}

__device__ __forceinline__ float cuk_block_max(float v, float *sh) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = cuk_warp_max(v);
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    float t = lane < (int)(blockDim.x >> 5) ? sh[lane] : -INFINITY;
    return cuk_warp_max(t);
}

#endif
