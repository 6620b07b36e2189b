// Cross-entropy rows and the row gathers of the CUDA backend's fused LM head (backend.h:
// lm_head_loss, class_loss; model/cpu/ops.h: cross_entropy_row states the math):
//   loss_r = logsumexp(z_r) - z_r[y_r],  grad_r = scale (softmax(z_r) - onehot(y_r))
// one block per row, the max and the sum of exp in double.
#include <math.h>

#include "model/cuda/cuda_common.cuh"
#include "model/cuda/cuda_kernels.h"

#define IGNORE_INDEX (-100)

__global__ void k_gather_rows(float *dst, const float *src, const int32_t *rows, int n_rows,
                              int C) {
    CUK_FOR(e, (size_t)n_rows * C) {
        size_t r = e / (size_t)C, j = e % (size_t)C;
        dst[e] = src[(size_t)rows[r] * C + j];
    }
}
extern "C" void cuk_gather_rows(float *dst, const float *src, const int32_t *rows, int n_rows,
                                int C) {
    size_t m = (size_t)n_rows * C;
    if (m) k_gather_rows<<<cuk_blocks(m), CUK_THREADS>>>(dst, src, rows, n_rows, C);
}

__global__ void k_scatter_add_rows(float *dst, const float *src, const int32_t *rows, int n_rows,
                                   int C) {
    CUK_FOR(e, (size_t)n_rows * C) {
        size_t r = e / (size_t)C, j = e % (size_t)C;
        dst[(size_t)rows[r] * C + j] += src[e];
    }
}
extern "C" void cuk_scatter_add_rows(float *dst, const float *src, const int32_t *rows, int n_rows,
                                     int C) {
    size_t m = (size_t)n_rows * C;
    if (m) k_scatter_add_rows<<<cuk_blocks(m), CUK_THREADS>>>(dst, src, rows, n_rows, C);
}

__device__ double block_reduce_d(double v, double *sh, int is_max) {
    __syncthreads();
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int w = CUK_THREADS / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) {
            double o = sh[threadIdx.x + w];
            sh[threadIdx.x] = is_max ? fmax(sh[threadIdx.x], o) : sh[threadIdx.x] + o;
        }
        __syncthreads();
    }
    return sh[0];
}

__global__ void k_ce_rows(float *grad, double *loss, const float *z, const int32_t *targets,
                          const int32_t *rows, int V, float scale) {
    __shared__ double sh[CUK_THREADS];
    int r = blockIdx.x, y = targets[rows ? rows[r] : r];
    const float *zr = z + (size_t)r * V;
    float *gr = grad ? grad + (size_t)r * V : NULL;
    if (y == IGNORE_INDEX) {
        for (int c = threadIdx.x; gr && c < V; c += blockDim.x) gr[c] = 0.0f;
        if (threadIdx.x == 0) loss[r] = 0.0;
        return;
    }
    double mx = -INFINITY;
    for (int c = threadIdx.x; c < V; c += blockDim.x) mx = fmax(mx, (double)zr[c]);
    mx = block_reduce_d(mx, sh, 1);
    double sum = 0.0;
    for (int c = threadIdx.x; c < V; c += blockDim.x) sum += exp((double)zr[c] - mx);
    sum = block_reduce_d(sum, sh, 0);
    double lse = mx + log(sum), zy = zr[y];
    __syncthreads(); // every thread has read zr[y] before grad (which may alias z) is written
    if (threadIdx.x == 0) loss[r] = lse - zy;
    for (int c = threadIdx.x; gr && c < V; c += blockDim.x)
        gr[c] = (float)(scale * (exp((double)zr[c] - lse) - (c == y ? 1.0 : 0.0)));
}

extern "C" void cuk_cross_entropy_rows(float *grad, double *loss, const float *z,
                                       const int32_t *targets, const int32_t *rows, int n, int V,
                                       float scale) {
    if (n > 0) k_ce_rows<<<n, CUK_THREADS>>>(grad, loss, z, targets, rows, V, scale);
}
