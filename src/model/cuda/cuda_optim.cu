// Optimizer element updates of the CUDA backend: model/cpu/ops.h, "Optimizer element updates"
// states the math (PyTorch 1.13 AdamW and SGD). Every element is the same fp32 expression as
// model/cpu/optim_update.c, compiled without fused multiply-add (-fmad=false) and with IEEE
// sqrtf and division, so results match the CPU bit for bit.
#include <math.h>

#include "model/cuda/cuda_common.cuh"
#include "model/cuda/cuda_kernels.h"

// m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
// p = p decay - step_size m / (sqrt(v) / bc2_sqrt + eps)
__device__ __forceinline__ float adamw_step(float p, float g, float *m, float *v,
                                            const cuk_adamw &c) {
    float mi = *m * c.b1 + g * (1.0f - c.b1);
    float vi = *v * c.b2 + g * g * (1.0f - c.b2);
    *m = mi, *v = vi;
    return p * c.decay - c.step_size * (mi / (sqrtf(vi) / c.bc2_sqrt + c.eps));
}

__global__ void k_adamw(float *param, float *m, float *v, const float *grad, size_t n, cuk_adamw c,
                        void *weight, int wd) {
    CUK_FOR(i, n) {
        float p = adamw_step(param[i], grad[i] * c.grad_scale, &m[i], &v[i], c);
        param[i] = p;
        if (weight) cuk_store(weight, wd, i, p);
    }
}
extern "C" void cuk_adamw_update(float *param, float *m, float *v, const float *grad, size_t n,
                                 cuk_adamw c, void *weight, int wd) {
    if (n) k_adamw<<<cuk_blocks(n), CUK_THREADS>>>(param, m, v, grad, n, c, weight, wd);
}

__global__ void k_adamw_split(uint16_t *weight, uint16_t *lo, float *m, float *v,
                              const float *grad, size_t n, cuk_adamw c) {
    CUK_FOR(i, n) {
        float p = adamw_step(cuk_master_join(weight[i], lo[i]), grad[i] * c.grad_scale, &m[i],
                             &v[i], c);
        cuk_master_split(p, &weight[i], &lo[i]);
    }
}
extern "C" void cuk_adamw_update_split(uint16_t *weight, uint16_t *lo, float *m, float *v,
                                       const float *grad, size_t n, cuk_adamw c) {
    if (n) k_adamw_split<<<cuk_blocks(n), CUK_THREADS>>>(weight, lo, m, v, grad, n, c);
}

// p = p decay - step grad
__global__ void k_sgd(float *param, const float *grad, size_t n, float decay, float step,
                      void *weight, int wd) {
    CUK_FOR(i, n) {
        float p = param[i] * decay - step * grad[i];
        param[i] = p;
        if (weight) cuk_store(weight, wd, i, p);
    }
}
extern "C" void cuk_sgd_update(float *param, const float *grad, size_t n, float decay, float step,
                               void *weight, int wd) {
    if (n) k_sgd<<<cuk_blocks(n), CUK_THREADS>>>(param, grad, n, decay, step, weight, wd);
}

__global__ void k_sgd_split(uint16_t *weight, uint16_t *lo, const float *grad, size_t n,
                            float decay, float step) {
    CUK_FOR(i, n) {
        float p = cuk_master_join(weight[i], lo[i]) * decay - step * grad[i];
        cuk_master_split(p, &weight[i], &lo[i]);
    }
}
extern "C" void cuk_sgd_update_split(uint16_t *weight, uint16_t *lo, const float *grad, size_t n,
                                     float decay, float step) {
    if (n) k_sgd_split<<<cuk_blocks(n), CUK_THREADS>>>(weight, lo, grad, n, decay, step);
}

__global__ void k_sgd_stored(void *weight, int wd, const float *grad, size_t n, float decay,
                             float step) {
    CUK_FOR(i, n) cuk_store(weight, wd, i, cuk_load(weight, wd, i) * decay - step * grad[i]);
}
extern "C" void cuk_sgd_update_stored(void *weight, int wd, const float *grad, size_t n,
                                      float decay, float step) {
    if (n) k_sgd_stored<<<cuk_blocks(n), CUK_THREADS>>>(weight, wd, grad, n, decay, step);
}
