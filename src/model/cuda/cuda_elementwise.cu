// Elementwise kernels of the CUDA backend (backend.h states each op's math; model/cpu/ops.h and
// ops_encoder.h the formulas, which these follow operation for operation). One grid-stride loop
// each.
#include <math.h>

#include "model/cuda/cuda_common.cuh"
#include "model/cuda/cuda_kernels.h"

__global__ void k_convert(void *dst, int dd, const void *src, int sd, size_t n) {
    CUK_FOR(i, n) cuk_store(dst, dd, i, cuk_load(src, sd, i));
}
extern "C" void cuk_convert(void *dst, int dd, const void *src, int sd, size_t n) {
    if (n) k_convert<<<cuk_blocks(n), CUK_THREADS>>>(dst, dd, src, sd, n);
}

__global__ void k_add(float *y, const float *a, const float *b, size_t n) {
    CUK_FOR(i, n) y[i] = a[i] + b[i];
}
extern "C" void cuk_add(float *y, const float *a, const float *b, size_t n) {
    if (n) k_add<<<cuk_blocks(n), CUK_THREADS>>>(y, a, b, n);
}

// out[j] = (acc ? out[j] : 0) + (dropped(first + j) ? 0 : x[j] / (1 - p))
__global__ void k_dropout(float *out, const float *x, size_t n, uint64_t key, size_t first,
                          double p, int acc) {
    float inv = (float)(1.0 / (1.0 - p));
    CUK_FOR(j, n) {
        float v = cuk_unit(cuk_mix64(key ^ (first + j))) < p ? 0.0f : x[j] * inv;
        out[j] = acc ? out[j] + v : v;
    }
}
extern "C" void cuk_dropout(float *out, const float *x, size_t n, uint64_t key, size_t first,
                            double p, int acc) {
    if (n) k_dropout<<<cuk_blocks(n), CUK_THREADS>>>(out, x, n, key, first, p, acc);
}

// sigmoid through exp of a non-positive argument (as model/cpu/swiglu.c)
__device__ __forceinline__ float cuk_sigmoid(float g) {
    float e = expf(g < 0.0f ? g : -g);
    float r = 1.0f / (1.0f + e);
    return g >= 0.0f ? r : e * r;
}

// h = silu(g) u
__global__ void k_swiglu_f(float *h, const float *g, const float *u, size_t n) {
    CUK_FOR(i, n) h[i] = g[i] * cuk_sigmoid(g[i]) * u[i];
}
extern "C" void cuk_swiglu_forward(float *h, const float *g, const float *u, size_t n) {
    if (n) k_swiglu_f<<<cuk_blocks(n), CUK_THREADS>>>(h, g, u, n);
}

// dg = dh u s (1 + g (1 - s)), du = dh silu(g)
__global__ void k_swiglu_b(float *dg, float *du, const float *dh, const float *g, const float *u,
                           size_t n) {
    CUK_FOR(i, n) {
        float s = cuk_sigmoid(g[i]);
        float gd = dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s)), ud = dh[i] * g[i] * s;
        if (dg) dg[i] = gd;
        if (du) du[i] = ud;
    }
}
extern "C" void cuk_swiglu_backward(float *dg, float *du, const float *dh, const float *g,
                                    const float *u, size_t n) {
    if (n) k_swiglu_b<<<cuk_blocks(n), CUK_THREADS>>>(dg, du, dh, g, u, n);
}

// y = x Phi(x), in double as the CPU
__global__ void k_gelu_f(float *y, const float *x, size_t n) {
    CUK_FOR(i, n) {
        double v = x[i];
        y[i] = (float)(0.5 * v * (1.0 + erf(v * 0.70710678118654752440)));
    }
}
extern "C" void cuk_gelu_forward(float *y, const float *x, size_t n) {
    if (n) k_gelu_f<<<cuk_blocks(n), CUK_THREADS>>>(y, x, n);
}

// dx = dy (Phi(x) + x phi(x))
__global__ void k_gelu_b(float *dx, const float *dy, const float *x, size_t n) {
    CUK_FOR(i, n) {
        double v = x[i];
        double cdf = 0.5 * (1.0 + erf(v * 0.70710678118654752440));
        double pdf = 0.39894228040143267794 * exp(-0.5 * v * v);
        dx[i] = (float)(dy[i] * (cdf + v * pdf));
    }
}
extern "C" void cuk_gelu_backward(float *dx, const float *dy, const float *x, size_t n) {
    if (n) k_gelu_b<<<cuk_blocks(n), CUK_THREADS>>>(dx, dy, x, n);
}

__global__ void k_tanh_f(float *y, const float *x, size_t n) {
    CUK_FOR(i, n) y[i] = tanhf(x[i]);
}
extern "C" void cuk_tanh_forward(float *y, const float *x, size_t n) {
    if (n) k_tanh_f<<<cuk_blocks(n), CUK_THREADS>>>(y, x, n);
}

// dx = dy (1 - y^2)
__global__ void k_tanh_b(float *dx, const float *dy, const float *y, size_t n) {
    CUK_FOR(i, n) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}
extern "C" void cuk_tanh_backward(float *dx, const float *dy, const float *y, size_t n) {
    if (n) k_tanh_b<<<cuk_blocks(n), CUK_THREADS>>>(dx, dy, y, n);
}

__global__ void k_relu_f(float *y, const float *x, size_t n) {
    CUK_FOR(i, n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
extern "C" void cuk_relu_forward(float *y, const float *x, size_t n) {
    if (n) k_relu_f<<<cuk_blocks(n), CUK_THREADS>>>(y, x, n);
}

__global__ void k_relu_b(float *dx, const float *dy, const float *y, size_t n) {
    CUK_FOR(i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
extern "C" void cuk_relu_backward(float *dx, const float *dy, const float *y, size_t n) {
    if (n) k_relu_b<<<cuk_blocks(n), CUK_THREADS>>>(dx, dy, y, n);
}

__global__ void k_scale(float *x, float a, size_t n) {
    CUK_FOR(i, n) x[i] *= a;
}
extern "C" void cuk_scale(float *x, float a, size_t n) {
    if (n) k_scale<<<cuk_blocks(n), CUK_THREADS>>>(x, a, n);
}

// y += a x: the product rounded, then the sum (no fused multiply-add under -fmad=false)
__global__ void k_axpy(float *y, float a, const float *x, size_t n) {
    CUK_FOR(i, n) y[i] += a * x[i];
}
extern "C" void cuk_axpy(float *y, float a, const float *x, size_t n) {
    if (n) k_axpy<<<cuk_blocks(n), CUK_THREADS>>>(y, a, x, n);
}

// partial[b] = sum over block b's contiguous slice of x[i]^2 in double (a fixed order for a
// given n: the host adds the partials in order)
__global__ void k_sumsq(double *partial, const float *x, size_t n) {
    __shared__ double sh[CUK_THREADS];
    size_t per = (n + gridDim.x - 1) / gridDim.x, lo = per * blockIdx.x;
    size_t hi = lo + per < n ? lo + per : n;
    double s = 0.0;
    for (size_t i = lo + threadIdx.x; i < hi; i += blockDim.x) s += (double)x[i] * x[i];
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int w = CUK_THREADS / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = sh[0];
}
extern "C" void cuk_sum_squares(double *partial, const float *x, size_t n) {
    k_sumsq<<<CUK_SUMSQ_BLOCKS, CUK_THREADS>>>(partial, x, n);
}

__global__ void k_fill_rows(float *y, const float *b, int rows, int cols) {
    CUK_FOR(i, (size_t)rows * cols) y[i] = b[i % (size_t)cols];
}
extern "C" void cuk_fill_rows(float *y, const float *b, int rows, int cols) {
    size_t n = (size_t)rows * cols;
    if (n) k_fill_rows<<<cuk_blocks(n), CUK_THREADS>>>(y, b, rows, cols);
}

// db[j] += sum_i dy[i, j]: one thread per column, rows in order (deterministic)
__global__ void k_col_sum(float *db, const float *dy, int rows, int cols) {
    CUK_FOR(j, (size_t)cols) {
        float s = 0.0f;
        for (int i = 0; i < rows; i++) s += dy[(size_t)i * cols + j];
        db[j] += s;
    }
}
extern "C" void cuk_col_sum(float *db, const float *dy, int rows, int cols) {
    if (cols > 0) k_col_sum<<<cuk_blocks((size_t)cols), CUK_THREADS>>>(db, dy, rows, cols);
}

// dst = float(w) + eps z (the product rounded, then the sum)
__global__ void k_gauss_perturb(float *dst, const void *w, int wd, size_t n, float eps,
                                uint64_t key) {
    CUK_FOR(i, n) {
        float z = eps * cuk_gaussian(key, i);
        dst[i] = cuk_load(w, wd, i) + z;
    }
}
extern "C" void cuk_gaussian_perturb(float *dst, const void *w, int wd, size_t n, float eps,
                                     uint64_t key) {
    if (n) k_gauss_perturb<<<cuk_blocks(n), CUK_THREADS>>>(dst, w, wd, n, eps, key);
}

// w = round(float(w) (1 - lr wd) - (lr coef) z)
__global__ void k_gauss_update(void *w, int wd, size_t n, float decay, float step, uint64_t key) {
    CUK_FOR(i, n) cuk_store(w, wd, i, cuk_load(w, wd, i) * decay - step * cuk_gaussian(key, i));
}
extern "C" void cuk_gaussian_update_stored(void *w, int wd, size_t n, float lr, float coef,
                                           float weight_decay, uint64_t key) {
    float decay = 1.0f - lr * weight_decay, step = lr * coef;
    if (n) k_gauss_update<<<cuk_blocks(n), CUK_THREADS>>>(w, wd, n, decay, step, key);
}

__global__ void k_gather(float *dst, const void *src, int sd, const int32_t *idx, size_t n,
                         int acc) {
    CUK_FOR(k, n) {
        float v = cuk_load(src, sd, (size_t)idx[k]);
        dst[k] = acc ? dst[k] + v : v;
    }
}
extern "C" void cuk_gather(float *dst, const void *src, int sd, const int32_t *idx, size_t n,
                           int acc) {
    if (n) k_gather<<<cuk_blocks(n), CUK_THREADS>>>(dst, src, sd, idx, n, acc);
}

__global__ void k_scatter(void *dst, int dd, const float *src, const int32_t *idx, size_t n) {
    CUK_FOR(k, n) cuk_store(dst, dd, (size_t)idx[k], src[k]);
}
extern "C" void cuk_scatter(void *dst, int dd, const float *src, const int32_t *idx, size_t n) {
    if (n) k_scatter<<<cuk_blocks(n), CUK_THREADS>>>(dst, dd, src, idx, n);
}

__global__ void k_scale_rows(float *C, float beta, int rows, int cols, int ld) {
    CUK_FOR(e, (size_t)rows * cols) {
        size_t i = e / (size_t)cols, j = e % (size_t)cols;
        float *p = C + i * (size_t)ld + j;
        *p = beta == 0.0f ? 0.0f : beta * *p;
    }
}
extern "C" void cuk_scale_rows(float *C, float beta, int rows, int cols, int ld) {
    size_t n = (size_t)rows * cols;
    if (n) k_scale_rows<<<cuk_blocks(n), CUK_THREADS>>>(C, beta, rows, cols, ld);
}
