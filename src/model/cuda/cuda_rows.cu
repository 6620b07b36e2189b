// Row kernels of the CUDA backend: embedding, RMSNorm, LayerNorm and RoPE (model/cpu/ops.h and
// ops_encoder.h state the math). Norms run one block per row with the row statistics summed in
// double as on the CPU (in a different order: results agree to rounding, not bit for bit);
// weight gradients run one thread per column over the rows in order (no atomics, deterministic).
#include <math.h>

#include "model/cuda/cuda_common.cuh"
#include "model/cuda/cuda_kernels.h"

// Sum of a double over the block (every thread gets it); sh: CUK_THREADS doubles.
__device__ double block_sum_d(double v, double *sh) {
    __syncthreads();
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int w = CUK_THREADS / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
        __syncthreads();
    }
    return sh[0];
}

// out[i, :] = table[tokens[i], :]
__global__ void k_embed_f(float *out, const int32_t *tokens, int n, const void *table, int td,
                          int C) {
    CUK_FOR(e, (size_t)n * C) {
        size_t i = e / (size_t)C, j = e % (size_t)C;
        out[e] = cuk_load(table, td, (size_t)tokens[i] * C + j);
    }
}
extern "C" void cuk_embedding_forward(float *out, const int32_t *tokens, int n, const void *table,
                                      int td, int C) {
    size_t m = (size_t)n * C;
    if (m) k_embed_f<<<cuk_blocks(m), CUK_THREADS>>>(out, tokens, n, table, td, C);
}

// dtable[tokens[i], j] += dout[i, j], one thread per column j, rows in order (the CPU's order)
__global__ void k_embed_b(float *dtable, const int32_t *tokens, int n, const float *dout, int C) {
    CUK_FOR(j, (size_t)C) {
        for (int i = 0; i < n; i++) dtable[(size_t)tokens[i] * C + j] += dout[(size_t)i * C + j];
    }
}
extern "C" void cuk_embedding_backward(float *dtable, const int32_t *tokens, int n,
                                       const float *dout, int C) {
    if (C > 0 && n > 0) k_embed_b<<<cuk_blocks((size_t)C), CUK_THREADS>>>(dtable, tokens, n, dout, C);
}

// rstd = 1/sqrt(mean x^2 + eps); y = x rstd w
__global__ void k_rms_f(float *y, float *rstd, const float *x, const float *w, int C, float eps) {
    __shared__ double sh[CUK_THREADS];
    const float *xi = x + (size_t)blockIdx.x * C;
    float *yi = y + (size_t)blockIdx.x * C;
    double ss = 0.0;
    for (int j = threadIdx.x; j < C; j += blockDim.x) ss += (double)xi[j] * xi[j];
    ss = block_sum_d(ss, sh);
    float r = (float)(1.0 / sqrt(ss / C + eps));
    for (int j = threadIdx.x; j < C; j += blockDim.x) yi[j] = xi[j] * r * w[j];
    if (rstd && threadIdx.x == 0) rstd[blockIdx.x] = r;
}
extern "C" void cuk_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int n,
                                    int C, float eps) {
    if (n > 0) k_rms_f<<<n, CUK_THREADS>>>(y, rstd, x, w, C, eps);
}

// dx += rstd (g - xhat mean(g xhat)), g = dy w, xhat = x rstd
__global__ void k_rms_bx(float *dx, const float *dy, const float *x, const float *w,
                         const float *rstd, int C) {
    __shared__ double sh[CUK_THREADS];
    size_t o = (size_t)blockIdx.x * C;
    float r = rstd[blockIdx.x];
    double dot = 0.0;
    for (int j = threadIdx.x; j < C; j += blockDim.x) dot += (double)dy[o + j] * w[j] * (x[o + j] * r);
    dot = block_sum_d(dot, sh);
    float mean = (float)(dot / C);
    for (int j = threadIdx.x; j < C; j += blockDim.x)
        dx[o + j] += r * (dy[o + j] * w[j] - x[o + j] * r * mean);
}

// dw[j] += sum_i dy[i, j] x[i, j] rstd[i]
__global__ void k_rms_bw(float *dw, const float *dy, const float *x, const float *rstd, int n,
                         int C) {
    CUK_FOR(j, (size_t)C) {
        float acc = 0.0f;
        for (int i = 0; i < n; i++) acc += dy[(size_t)i * C + j] * (x[(size_t)i * C + j] * rstd[i]);
        dw[j] += acc;
    }
}
extern "C" void cuk_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x,
                                     const float *w, const float *rstd, int n, int C) {
    if (n <= 0) return;
    if (dx) k_rms_bx<<<n, CUK_THREADS>>>(dx, dy, x, w, rstd, C);
    if (dw) k_rms_bw<<<cuk_blocks((size_t)C), CUK_THREADS>>>(dw, dy, x, rstd, n, C);
}

// mean, rstd = 1/sqrt(biased var + eps); y = (x - mean) rstd w + b
__global__ void k_ln_f(float *y, float *mean, float *rstd, const float *x, const float *w,
                       const float *b, int C, float eps) {
    __shared__ double sh[CUK_THREADS];
    size_t o = (size_t)blockIdx.x * C;
    double s = 0.0;
    for (int j = threadIdx.x; j < C; j += blockDim.x) s += x[o + j];
    double mu = block_sum_d(s, sh) / C, ss = 0.0;
    for (int j = threadIdx.x; j < C; j += blockDim.x)
        ss += ((double)x[o + j] - mu) * ((double)x[o + j] - mu);
    ss = block_sum_d(ss, sh);
    float r = (float)(1.0 / sqrt(ss / C + eps)), m = (float)mu;
    for (int j = threadIdx.x; j < C; j += blockDim.x) y[o + j] = (x[o + j] - m) * r * w[j] + b[j];
    if (threadIdx.x == 0) {
        if (mean) mean[blockIdx.x] = m;
        if (rstd) rstd[blockIdx.x] = r;
    }
}
extern "C" void cuk_layernorm_forward(float *y, float *mean, float *rstd, const float *x,
                                      const float *w, const float *b, int n, int C, float eps) {
    if (n > 0) k_ln_f<<<n, CUK_THREADS>>>(y, mean, rstd, x, w, b, C, eps);
}

// dx += rstd (g - mean(g) - xhat mean(g xhat)), g = dy w
__global__ void k_ln_bx(float *dx, const float *dy, const float *x, const float *mean,
                        const float *rstd, const float *w, int C) {
    __shared__ double sh[CUK_THREADS];
    size_t o = (size_t)blockIdx.x * C;
    float m = mean[blockIdx.x], r = rstd[blockIdx.x];
    double sg = 0.0, sgx = 0.0;
    for (int j = threadIdx.x; j < C; j += blockDim.x) {
        double g = (double)dy[o + j] * w[j];
        sg += g;
        sgx += g * ((x[o + j] - m) * r);
    }
    sg = block_sum_d(sg, sh);
    sgx = block_sum_d(sgx, sh);
    float mg = (float)(sg / C), mgx = (float)(sgx / C);
    for (int j = threadIdx.x; j < C; j += blockDim.x)
        dx[o + j] += r * (dy[o + j] * w[j] - mg - (x[o + j] - m) * r * mgx);
}

// dw[j] += sum_i dy xhat, db[j] += sum_i dy (double accumulators, rows in order)
__global__ void k_ln_bw(float *dw, float *db, const float *dy, const float *x, const float *mean,
                        const float *rstd, int n, int C) {
    CUK_FOR(j, (size_t)C) {
        double aw = 0.0, ab = 0.0;
        for (int i = 0; i < n; i++) {
            float d = dy[(size_t)i * C + j];
            aw += (double)d * ((x[(size_t)i * C + j] - mean[i]) * rstd[i]);
            ab += d;
        }
        if (dw) dw[j] += (float)aw;
        if (db) db[j] += (float)ab;
    }
}
extern "C" void cuk_layernorm_backward(float *dx, float *dw, float *db, const float *dy,
                                       const float *x, const float *mean, const float *rstd,
                                       const float *w, int n, int C) {
    if (n <= 0) return;
    if (dx) k_ln_bx<<<n, CUK_THREADS>>>(dx, dy, x, mean, rstd, w, C);
    if (dw || db)
        k_ln_bw<<<cuk_blocks((size_t)C), CUK_THREADS>>>(dw, db, dy, x, mean, rstd, n, C);
}

// cos_t[p half + i] = cos(p inv_freq[i]) in double, rounded (model/cpu/rope.c)
__global__ void k_rope_tables(float *cos_t, float *sin_t, const float *inv_freq, int T, int half) {
    CUK_FOR(e, (size_t)T * half) {
        int p = (int)(e / (size_t)half), i = (int)(e % (size_t)half);
        double angle = (double)p * inv_freq[i];
        cos_t[e] = (float)cos(angle);
        sin_t[e] = (float)sin(angle);
    }
}
extern "C" void cuk_rope_tables(float *cos_t, float *sin_t, const float *inv_freq, int T,
                                int half) {
    size_t m = (size_t)T * half;
    if (m) k_rope_tables<<<cuk_blocks(m), CUK_THREADS>>>(cos_t, sin_t, inv_freq, T, half);
}

// forward: x'[i] = x[i] c - x[i+h] s, x'[i+h] = x[i+h] c + x[i] s; backward: the transpose
__global__ void k_rope(float *x, const int32_t *pos, const float *cos_t, const float *sin_t,
                       int n, int heads, int D, int backward) {
    int half = D / 2;
    CUK_FOR(e, (size_t)n * heads * half) {
        size_t rh = e / (size_t)half;
        int i = (int)(e % (size_t)half), r = (int)(rh / (size_t)heads);
        float *v = x + rh * D;
        float c = cos_t[(size_t)pos[r] * half + i], s = sin_t[(size_t)pos[r] * half + i];
        float a = v[i], b = v[i + half];
        if (backward) {
            v[i] = a * c + b * s;
            v[i + half] = b * c - a * s;
        } else {
            v[i] = a * c - b * s;
            v[i + half] = b * c + a * s;
        }
    }
}
extern "C" void cuk_rope(float *x, const int32_t *pos, const float *cos_t, const float *sin_t,
                         int n, int heads, int D, int backward) {
    size_t m = (size_t)n * heads * (D / 2);
    if (m) k_rope<<<cuk_blocks(m), CUK_THREADS>>>(x, pos, cos_t, sin_t, n, heads, D, backward);
}
