/* SwiGLU gate (ops.h states the math). */
#include "model/cpu/ops.h"

#include <math.h>

/* sigmoid(g) through exp of a non-positive argument only (vectorisable, no overflow). */
CPU_BODY float sigmoidf(float g) {
    float e = ops_exp_neg(g < 0.0f ? g : -g);
    float r = 1.0f / (1.0f + e);
    return g >= 0.0f ? r : e * r;
}

CPU_BODY void swiglu_forward_range_body(float *h, const float *g, const float *u, size_t i0,
                                        size_t i1) {
#pragma omp simd
    for (size_t i = i0; i < i1; i++) h[i] = g[i] * sigmoidf(g[i]) * u[i];
}
CPU_VARIANTS_VOID(swiglu_forward_range,
                  (float *h, const float *g, const float *u, size_t i0, size_t i1),
                  (h, g, u, i0, i1))

CPU_BODY void swiglu_backward_range_body(float *dg, float *du, const float *dh, const float *g,
                                         const float *u, size_t i0, size_t i1) {
    if (dg && du) {
#pragma omp simd
        for (size_t i = i0; i < i1; i++) {
            float s = sigmoidf(g[i]);
            dg[i] = dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
            du[i] = dh[i] * g[i] * s;
        }
    } else if (dg) {
#pragma omp simd
        for (size_t i = i0; i < i1; i++) {
            float s = sigmoidf(g[i]);
            dg[i] = dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
        }
    } else if (du) {
#pragma omp simd
        for (size_t i = i0; i < i1; i++) du[i] = dh[i] * g[i] * sigmoidf(g[i]);
    }
}
CPU_VARIANTS_VOID(swiglu_backward_range,
                  (float *dg, float *du, const float *dh, const float *g, const float *u, size_t i0,
                   size_t i1),
                  (dg, du, dh, g, u, i0, i1))

/* Elements per OpenMP task. */
#define SWIGLU_CHUNK 4096

void swiglu_forward(float *h, const float *g, const float *u, size_t n) {
    size_t chunks = (n + SWIGLU_CHUNK - 1) / SWIGLU_CHUNK;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (size_t c = 0; c < chunks; c++) {
        size_t i0 = c * SWIGLU_CHUNK, i1 = i0 + SWIGLU_CHUNK < n ? i0 + SWIGLU_CHUNK : n;
        swiglu_forward_range(h, g, u, i0, i1);
    }
}

void swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u,
                     size_t n) {
    size_t chunks = (n + SWIGLU_CHUNK - 1) / SWIGLU_CHUNK;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (size_t c = 0; c < chunks; c++) {
        size_t i0 = c * SWIGLU_CHUNK, i1 = i0 + SWIGLU_CHUNK < n ? i0 + SWIGLU_CHUNK : n;
        swiglu_backward_range(dg, du, dh, g, u, i0, i1);
    }
}
