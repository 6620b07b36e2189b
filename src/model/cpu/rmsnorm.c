/* RMSNorm (ops.h states the math). Row sums are accumulated in double. */
#include "model/cpu/ops.h"

#include <math.h>

CPU_BODY float rmsnorm_row_body(float *yi, const float *xi, const float *w, int C, float eps) {
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)
    for (int j = 0; j < C; j++) ss += (double)xi[j] * xi[j];
    float r = (float)(1.0 / sqrt(ss / C + eps));
#pragma omp simd
    for (int j = 0; j < C; j++) yi[j] = xi[j] * r * w[j]; /* safe when y aliases x */
    return r;
}
CPU_VARIANTS(float, rmsnorm_row, (float *yi, const float *xi, const float *w, int C, float eps),
             (yi, xi, w, C, eps))

void rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int n, int C,
                     float eps) {
#pragma omp parallel for
    for (int i = 0; i < n; i++) {
        float r = rmsnorm_row(y + (size_t)i * C, x + (size_t)i * C, w, C, eps);
        if (rstd) rstd[i] = r;
    }
}

CPU_BODY void rmsnorm_row_backward_body(float *dxi, const float *dyi, const float *xi,
                                        const float *w, float r, int C) {
    double dot = 0.0; /* sum_j g[j] * xhat[j] */
#pragma omp simd reduction(+ : dot)
    for (int j = 0; j < C; j++) dot += (double)dyi[j] * w[j] * (xi[j] * r);
    float mean = (float)(dot / C);
#pragma omp simd
    for (int j = 0; j < C; j++) dxi[j] += r * (dyi[j] * w[j] - xi[j] * r * mean);
}
CPU_VARIANTS_VOID(rmsnorm_row_backward,
                  (float *dxi, const float *dyi, const float *xi, const float *w, float r, int C),
                  (dxi, dyi, xi, w, r, C))

/* Columns of dw handled by one thread at a time in the weight-gradient pass. */
#define RMSNORM_DW_BLOCK 64

void rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                      const float *rstd, int n, int C) {
    if (dx) {
#pragma omp parallel for
        for (int i = 0; i < n; i++)
            rmsnorm_row_backward(dx + (size_t)i * C, dy + (size_t)i * C, x + (size_t)i * C, w,
                                 rstd[i], C);
    }
    if (dw) {
        /* Each thread owns a block of columns and walks all rows, so no two threads write the
         * same dw[j]. */
#pragma omp parallel for
        for (int j0 = 0; j0 < C; j0 += RMSNORM_DW_BLOCK) {
            int j1 = j0 + RMSNORM_DW_BLOCK < C ? j0 + RMSNORM_DW_BLOCK : C;
            float acc[RMSNORM_DW_BLOCK] = {0};
            for (int i = 0; i < n; i++) {
                const float *xi = x + (size_t)i * C, *dyi = dy + (size_t)i * C;
                float r = rstd[i];
                for (int j = j0; j < j1; j++) acc[j - j0] += dyi[j] * (xi[j] * r);
            }
            for (int j = j0; j < j1; j++) dw[j] += acc[j - j0];
        }
    }
}
