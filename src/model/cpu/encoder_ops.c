/* Encoder kernels (ops_encoder.h states the math): LayerNorm with bias, exact GELU, tanh and the
 * classification loss. Row statistics are accumulated in double. */
#include <math.h>

#include "model/cpu/ops_encoder.h"

void layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w,
                       const float *b, int n, int C, float eps) {
#pragma omp parallel for
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * C;
        float *yi = y + (size_t)i * C;
        double s = 0.0, ss = 0.0;
        for (int j = 0; j < C; j++) s += xi[j];
        double mu = s / C;
        for (int j = 0; j < C; j++) ss += ((double)xi[j] - mu) * ((double)xi[j] - mu);
        float r = (float)(1.0 / sqrt(ss / C + eps)), m = (float)mu;
        for (int j = 0; j < C; j++) yi[j] = (xi[j] - m) * r * w[j] + b[j]; /* safe if y == x */
        if (mean) mean[i] = m;
        if (rstd) rstd[i] = r;
    }
}

/* Columns of dw, db handled by one thread at a time. */
#define LN_DW_BLOCK 64

void layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                        const float *mean, const float *rstd, const float *w, int n, int C) {
    if (dx) {
#pragma omp parallel for
        for (int i = 0; i < n; i++) {
            const float *xi = x + (size_t)i * C, *dyi = dy + (size_t)i * C;
            float *dxi = dx + (size_t)i * C, m = mean[i], r = rstd[i];
            double sg = 0.0, sgx = 0.0;
            for (int j = 0; j < C; j++) {
                double g = (double)dyi[j] * w[j];
                sg += g;
                sgx += g * ((xi[j] - m) * r);
            }
            float mg = (float)(sg / C), mgx = (float)(sgx / C);
            for (int j = 0; j < C; j++) dxi[j] += r * (dyi[j] * w[j] - mg - (xi[j] - m) * r * mgx);
        }
    }
    if (!dw && !db) return;
#pragma omp parallel for
    for (int j0 = 0; j0 < C; j0 += LN_DW_BLOCK) {
        int j1 = j0 + LN_DW_BLOCK < C ? j0 + LN_DW_BLOCK : C;
        double aw[LN_DW_BLOCK] = {0}, ab[LN_DW_BLOCK] = {0};
        for (int i = 0; i < n; i++) {
            const float *xi = x + (size_t)i * C, *dyi = dy + (size_t)i * C;
            float m = mean[i], r = rstd[i];
            for (int j = j0; j < j1; j++) {
                aw[j - j0] += (double)dyi[j] * ((xi[j] - m) * r);
                ab[j - j0] += dyi[j];
            }
        }
        for (int j = j0; j < j1; j++) {
            if (dw) dw[j] += (float)aw[j - j0];
            if (db) db[j] += (float)ab[j - j0];
        }
    }
}

void gelu_forward(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        y[i] = (float)(0.5 * v * (1.0 + erf(v * M_SQRT1_2)));
    }
}

void gelu_backward(float *dx, const float *dy, const float *x, size_t n) {
    const double inv_sqrt_2pi = 0.39894228040143267794;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        double cdf = 0.5 * (1.0 + erf(v * M_SQRT1_2)), pdf = inv_sqrt_2pi * exp(-0.5 * v * v);
        dx[i] = (float)(dy[i] * (cdf + v * pdf));
    }
}

void tanh_forward(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

void tanh_backward(float *dx, const float *dy, const float *y, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

double class_loss(float *dlogits, const float *logits, const int32_t *targets, int n, int K,
                  float scale, int *n_counted) {
    double total = 0.0;
    int counted = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * K;
        float *dz = dlogits ? dlogits + (size_t)i * K : NULL;
        int y = targets[i];
        if (y == LOSS_IGNORE_INDEX) {
            for (int c = 0; dz && c < K; c++) dz[c] = 0.0f;
            continue;
        }
        double mx = z[0], sum = 0.0;
        for (int c = 1; c < K; c++) mx = z[c] > mx ? z[c] : mx;
        for (int c = 0; c < K; c++) sum += exp((double)z[c] - mx);
        double lse = mx + log(sum);
        total += lse - z[y];
        counted++;
        for (int c = 0; dz && c < K; c++)
            dz[c] = (float)(scale * (exp((double)z[c] - lse) - (c == y ? 1.0 : 0.0)));
    }
    *n_counted = counted;
    return total;
}
