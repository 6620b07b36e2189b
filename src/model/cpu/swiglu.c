/* SwiGLU gate (ops.h states the math). */
#include "model/cpu/ops.h"

#include <math.h>

static inline float sigmoidf(float g) {
    return 1.0f / (1.0f + expf(-g));
}

void swiglu_forward(float *h, const float *g, const float *u, size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) h[i] = g[i] * sigmoidf(g[i]) * u[i];
}

void swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u,
                     size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float s = sigmoidf(g[i]);
        if (dg) dg[i] = dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
        if (du) du[i] = dh[i] * g[i] * s;
    }
}
