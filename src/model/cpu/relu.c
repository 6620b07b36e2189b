/* ReLU and its backward (ops.h: relu_forward, relu_backward): the bottleneck adapters'
 * nonlinearity. Exact (a comparison and a select), so every CPU path gives the same bits. */
#include "model/cpu/ops.h"

void relu_forward(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward(float *dx, const float *dy, const float *y, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
