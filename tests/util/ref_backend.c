/* The reference backend (ref_backend.h): plain loops, double accumulation. */
#include "ref_backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void ref_destroy(backend *be) {
    free(be);
}

static size_t ref_linear_scratch(int in) {
    (void)in;
    return 1;
}

static size_t ref_loss_workspace(int chunk, int C, int V) {
    (void)chunk, (void)C, (void)V;
    return 1;
}

static size_t ref_decode_scratch(const backend *be, int max_len) {
    (void)be, (void)max_len;
    return 1;
}

static void *ref_alloc(backend *be, badam_mem_category cat, size_t bytes) {
    (void)be;
    return badam_alloc_in(cat, bytes);
}

static void ref_free(backend *be, void *p) {
    (void)be;
    badam_free(p);
}

static void ref_zero(backend *be, void *p, size_t bytes) {
    (void)be;
    memset(p, 0, bytes);
}

static void ref_copy(backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memmove(dst, src, bytes);
}

static void ref_convert(backend *be, void *dst, badam_dtype dd, const void *src, badam_dtype sd,
                        size_t n) {
    (void)be;
    badam_convert(dst, dd, src, sd, n);
}

static void ref_add(backend *be, float *y, const float *a, const float *b, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) y[i] = (float)((double)a[i] + b[i]);
}

static void ref_dropout(backend *be, float *out, const float *x, size_t n, uint64_t key,
                        size_t first, double p, int accumulate) {
    (void)be;
    for (size_t j = 0; j < n; j++) {
        double v = backend_dropout_unit(key, first + j) < p ? 0.0 : x[j] / (1.0 - p);
        out[j] = (float)(accumulate ? out[j] + v : v);
    }
}

static double sigmoid(double g) {
    return 1.0 / (1.0 + exp(-g));
}

static void ref_relu_forward(backend *be, float *y, const float *x, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
}

static void ref_relu_backward(backend *be, float *dx, const float *dy, const float *y, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : 0;
}

static void ref_swiglu_forward(backend *be, float *h, const float *g, const float *u, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) h[i] = (float)(g[i] * sigmoid(g[i]) * u[i]);
}

static void ref_swiglu_backward(backend *be, float *dg, float *du, const float *dh, const float *g,
                                const float *u, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) {
        double s = sigmoid(g[i]);
        if (dg) dg[i] = (float)(dh[i] * u[i] * s * (1.0 + g[i] * (1.0 - s)));
        if (du) du[i] = (float)(dh[i] * g[i] * s);
    }
}

static void ref_gemm_f32(backend *be, int ta, int tb, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C,
                         int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                     (tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
    be->counters.gemm_flops += 2ull * (uint64_t)M * (uint64_t)N * (uint64_t)K;
}

/* The stored weight as fp32 (malloc'd). */
static float *weight_f32(const void *w, badam_dtype dt, size_t n) {
    float *f = malloc((n ? n : 1) * sizeof(float));
    badam_convert(f, BADAM_DTYPE_F32, w, dt, n);
    return f;
}

static void ref_linear_forward(backend *be, float *y, const float *x, const void *w, badam_dtype wd,
                               const float *b, int n, int in, int out, float *scratch) {
    (void)scratch;
    float *wf = weight_f32(w, wd, (size_t)out * in);
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double s = b ? b[o] : 0.0;
            for (int c = 0; c < in; c++)
                s += (double)x[(size_t)i * in + c] * wf[(size_t)o * in + c];
            y[(size_t)i * out + o] = (float)s;
        }
    free(wf);
    if (in > 0) be->counters.gemm_flops += 2ull * (uint64_t)n * (uint64_t)in * (uint64_t)out;
}

static void ref_linear_backward_input(backend *be, float *dx, const float *dy, const void *w,
                                      badam_dtype wd, int n, int in, int out, float *scratch) {
    (void)scratch;
    float *wf = weight_f32(w, wd, (size_t)out * in);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < in; c++) {
            double s = 0;
            for (int o = 0; o < out; o++)
                s += (double)dy[(size_t)i * out + o] * wf[(size_t)o * in + c];
            dx[(size_t)i * in + c] += (float)s;
        }
    free(wf);
    be->counters.gemm_flops += 2ull * (uint64_t)n * (uint64_t)in * (uint64_t)out;
}

static void ref_linear_backward_weight(backend *be, float *dw, float *db, const float *dy,
                                       const float *x, badam_dtype wd, int n, int in, int out,
                                       float *scratch, size_t scratch_floats) {
    (void)wd, (void)scratch, (void)scratch_floats;
    for (int o = 0; o < out; o++) {
        if (dw)
            for (int c = 0; c < in; c++) {
                double s = 0;
                for (int i = 0; i < n; i++)
                    s += (double)dy[(size_t)i * out + o] * x[(size_t)i * in + c];
                dw[(size_t)o * in + c] += (float)s;
            }
        if (db) {
            double s = 0;
            for (int i = 0; i < n; i++) s += dy[(size_t)i * out + o];
            db[o] += (float)s;
        }
    }
    if (dw && in > 0) be->counters.gemm_flops += 2ull * (uint64_t)n * (uint64_t)in * (uint64_t)out;
}

static void ref_embedding_forward(backend *be, float *out, const int32_t *tokens, int n,
                                  const void *table, badam_dtype td, int C) {
    (void)be;
    size_t es = badam_dtype_size(td);
    for (int i = 0; i < n; i++)
        badam_convert(out + (size_t)i * C, BADAM_DTYPE_F32,
                      (const char *)table + (size_t)tokens[i] * C * es, td, (size_t)C);
}

static void ref_embedding_backward(backend *be, float *dtable, const int32_t *tokens, int n,
                                   const float *dout, int C) {
    (void)be;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < C; j++) dtable[(size_t)tokens[i] * C + j] += dout[(size_t)i * C + j];
}

static double row_rstd(const float *x, int C, float eps) {
    double ss = 0;
    for (int j = 0; j < C; j++) ss += (double)x[j] * x[j];
    return 1.0 / sqrt(ss / C + eps);
}

static void ref_rmsnorm_forward(backend *be, float *y, float *rstd, const float *x, const float *w,
                                int n, int C, float eps) {
    (void)be;
    for (int i = 0; i < n; i++) {
        double r = row_rstd(x + (size_t)i * C, C, eps);
        if (rstd) rstd[i] = (float)r;
        for (int j = 0; j < C; j++) y[(size_t)i * C + j] = (float)(x[(size_t)i * C + j] * r * w[j]);
    }
}

static void ref_rmsnorm_backward(backend *be, float *dx, float *dw, const float *dy, const float *x,
                                 const float *w, const float *rstd, int n, int C) {
    (void)be;
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * C, *dyi = dy + (size_t)i * C;
        double r = rstd[i], m = 0;
        for (int j = 0; j < C; j++) m += (double)dyi[j] * w[j] * xi[j] * r;
        m /= C;
        for (int j = 0; j < C; j++) {
            double xhat = xi[j] * r;
            if (dx) dx[(size_t)i * C + j] += (float)(r * ((double)dyi[j] * w[j] - xhat * m));
            if (dw) dw[j] += (float)(dyi[j] * xhat);
        }
    }
}

static void ref_rope_tables(backend *be, float *cos_t, float *sin_t, const float *inv_freq, int T,
                            int half) {
    (void)be;
    for (int p = 0; p < T; p++)
        for (int i = 0; i < half; i++) {
            cos_t[(size_t)p * half + i] = (float)cos((double)p * inv_freq[i]);
            sin_t[(size_t)p * half + i] = (float)sin((double)p * inv_freq[i]);
        }
}

static void rope(float *x, const int32_t *pos, const float *cos_t, const float *sin_t, int n,
                 int heads, int D, int sign) {
    int half = D / 2;
    for (int r = 0; r < n; r++)
        for (int h = 0; h < heads; h++) {
            float *v = x + ((size_t)r * heads + h) * D;
            for (int i = 0; i < half; i++) {
                double c = cos_t[(size_t)pos[r] * half + i],
                       s = sign * sin_t[(size_t)pos[r] * half + i];
                double a = v[i], b = v[i + half];
                v[i] = (float)(a * c - b * s);
                v[i + half] = (float)(b * c + a * s);
            }
        }
}

static void ref_rope_forward(backend *be, float *x, const int32_t *pos, const float *cos_t,
                             const float *sin_t, int n, int heads, int D) {
    (void)be;
    rope(x, pos, cos_t, sin_t, n, heads, D, 1);
}

static void ref_rope_backward(backend *be, float *dx, const int32_t *pos, const float *cos_t,
                              const float *sin_t, int n, int heads, int D) {
    (void)be;
    rope(dx, pos, cos_t, sin_t, n, heads, D, -1);
}

static uint64_t pairs_of(int B, int T, int Hq, const int32_t *seg) {
    uint64_t p = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) p += (uint64_t)(t + 1 - (seg ? seg[(size_t)b * T + t] : 0));
    return p * (uint64_t)Hq;
}

static void ref_attention_forward(backend *be, float *out, float *lse, const float *q,
                                  const float *k, const float *v, int B, int T, int Hq, int Hkv,
                                  int D, const int32_t *seg) {
    ref_attention_forward_loops(out, lse, q, k, v, B, T, Hq, Hkv, D, seg);
    be->counters.attention_flops += 4ull * (uint64_t)D * pairs_of(B, T, Hq, seg);
}

static void ref_attention_backward(backend *be, float *dq, float *dk, float *dv, const float *dout,
                                   const float *out, const float *lse, const float *q,
                                   const float *k, const float *v, int B, int T, int Hq, int Hkv,
                                   int D, const int32_t *seg) {
    (void)out, (void)lse;
    size_t nq = (size_t)B * T * Hq * D, nkv = (size_t)B * T * Hkv * D;
    float *gq = malloc(nq * sizeof(float)), *gk = malloc(nkv * sizeof(float));
    float *gv = malloc(nkv * sizeof(float));
    ref_attention_backward_loops(gq, gk, gv, dout, q, k, v, B, T, Hq, Hkv, D, seg);
    if (dq) memcpy(dq, gq, nq * sizeof(float));
    if (dk) memcpy(dk, gk, nkv * sizeof(float));
    if (dv) memcpy(dv, gv, nkv * sizeof(float));
    free(gq), free(gk), free(gv);
    if (dq && dk && dv)
        be->counters.attention_flops += 8ull * (uint64_t)D * pairs_of(B, T, Hq, seg);
}

static void ref_attention_decode(backend *be, float *out, const float *q, const float *K,
                                 const float *V, int n, int p0, int Hq, int Hkv, int D,
                                 int kv_stride, int window, int max_len, float *scratch) {
    (void)be, (void)scratch;
    double *p = malloc((size_t)max_len * sizeof(double));
    for (int i = 0; i < n; i++)
        for (int h = 0; h < Hq; h++) {
            int t = p0 + i, kvh = h / (Hq / Hkv);
            int lo = window > 0 && t - window + 1 > 0 ? t - window + 1 : 0;
            const float *qi = q + ((size_t)i * Hq + h) * D;
            double mx = -INFINITY, sum = 0;
            for (int t2 = lo; t2 <= t; t2++) {
                double s = 0;
                for (int d = 0; d < D; d++)
                    s += (double)qi[d] * K[(size_t)t2 * kv_stride + (size_t)kvh * D + d];
                p[t2] = s / sqrt((double)D);
                if (p[t2] > mx) mx = p[t2];
            }
            for (int t2 = lo; t2 <= t; t2++) sum += exp(p[t2] - mx);
            for (int d = 0; d < D; d++) {
                double acc = 0;
                for (int t2 = lo; t2 <= t; t2++)
                    acc += exp(p[t2] - mx) / sum * V[(size_t)t2 * kv_stride + (size_t)kvh * D + d];
                out[((size_t)i * Hq + h) * D + d] = (float)acc;
            }
        }
    free(p);
}

static double ref_lm_head_loss(backend *be, float *dh, float *dw, const float *h, const void *w,
                               badam_dtype wd, const int32_t *targets, int n, int C, int V,
                               int chunk, float scale, float *workspace, int *n_counted) {
    (void)chunk, (void)workspace;
    float *wf = weight_f32(w, wd, (size_t)V * C);
    double *z = malloc((size_t)V * sizeof(double)), loss = 0;
    int counted = 0;
    for (int i = 0; i < n; i++) {
        int y = targets[i];
        if (y == LOSS_IGNORE_INDEX || y < 0 || y >= V) continue;
        const float *hi = h + (size_t)i * C;
        double mx = -INFINITY, sum = 0;
        for (int v = 0; v < V; v++) {
            double s = 0;
            for (int c = 0; c < C; c++) s += (double)hi[c] * wf[(size_t)v * C + c];
            z[v] = s;
            if (s > mx) mx = s;
        }
        for (int v = 0; v < V; v++) sum += exp(z[v] - mx);
        loss += mx + log(sum) - z[y];
        counted++;
        be->counters.gemm_flops += 2ull * (uint64_t)C * (uint64_t)V * (1 + !!dh + !!dw);
        for (int v = 0; v < V; v++) {
            double g = scale * (exp(z[v] - mx) / sum - (v == y));
            for (int c = 0; c < C; c++) {
                if (dh) dh[(size_t)i * C + c] += (float)(g * wf[(size_t)v * C + c]);
                if (dw) dw[(size_t)v * C + c] += (float)(g * hi[c]);
            }
        }
    }
    free(wf), free(z);
    if (n_counted) *n_counted = counted;
    return loss;
}

/* The reference reads weights as stored (its linear ops convert element by element). */
static int ref_layer_weights_f32(badam_dtype w_dtype) {
    (void)w_dtype;
    return 0;
}

/* ---- encoder ops: plain loops in double from model/cpu/ops_encoder.h's math ---- */

static void ref_layernorm_forward(backend *be, float *y, float *mean, float *rstd, const float *x,
                                  const float *w, const float *b, int n, int C, float eps) {
    (void)be;
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * C;
        double mu = 0, var = 0;
        for (int j = 0; j < C; j++) mu += xi[j];
        mu /= C;
        for (int j = 0; j < C; j++) var += (xi[j] - mu) * (xi[j] - mu);
        double r = 1.0 / sqrt(var / C + eps);
        if (mean) mean[i] = (float)mu;
        if (rstd) rstd[i] = (float)r;
        for (int j = 0; j < C; j++) y[(size_t)i * C + j] = (float)((xi[j] - mu) * r * w[j] + b[j]);
    }
}

static void ref_layernorm_backward(backend *be, float *dx, float *dw, float *db, const float *dy,
                                   const float *x, const float *mean, const float *rstd,
                                   const float *w, int n, int C) {
    (void)be;
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * C, *dyi = dy + (size_t)i * C;
        double mg = 0, mgx = 0;
        for (int j = 0; j < C; j++) {
            double xh = (xi[j] - (double)mean[i]) * rstd[i];
            mg += (double)dyi[j] * w[j] / C;
            mgx += (double)dyi[j] * w[j] * xh / C;
            if (dw) dw[j] += (float)(dyi[j] * xh);
            if (db) db[j] += dyi[j];
        }
        for (int j = 0; dx && j < C; j++) {
            double xh = (xi[j] - (double)mean[i]) * rstd[i];
            dx[(size_t)i * C + j] += (float)(rstd[i] * ((double)dyi[j] * w[j] - mg - xh * mgx));
        }
    }
}

static void ref_gelu_forward(backend *be, float *y, const float *x, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) y[i] = (float)(x[i] * 0.5 * (1.0 + erf(x[i] / sqrt(2.0))));
}

static void ref_gelu_backward(backend *be, float *dx, const float *dy, const float *x, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) {
        double cdf = 0.5 * (1.0 + erf(x[i] / sqrt(2.0)));
        double pdf = exp(-0.5 * (double)x[i] * x[i]) / sqrt(2.0 * M_PI);
        dx[i] = (float)(dy[i] * (cdf + x[i] * pdf));
    }
}

static void ref_tanh_forward(backend *be, float *y, const float *x, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) y[i] = (float)tanh((double)x[i]);
}

static void ref_tanh_backward(backend *be, float *dx, const float *dy, const float *y, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) dx[i] = (float)(dy[i] * (1.0 - (double)y[i] * y[i]));
}

/* Probabilities P[t2] and dropout factors Z[t2] of query row (b, h, t), in double; returns lse
 * (0 and all P = 0 when the sequence has no real key). */
static double bidir_row(double *P, double *Z, const float *q, const float *k, int b, int h, int t,
                        int T, int H, int D, const uint8_t *mask, double p, uint64_t key) {
    double mx = -INFINITY, sum = 0;
    for (int t2 = 0; t2 < T; t2++) {
        P[t2] = -INFINITY;
        Z[t2] = p > 0 && backend_dropout_unit(key, (((size_t)b * H + h) * T + t) * T + t2) < p
                    ? 0.0
                    : 1.0 / (1.0 - p);
        if (mask && !mask[(size_t)b * T + t2]) continue;
        double s = 0;
        for (int d = 0; d < D; d++)
            s += (double)q[(((size_t)b * T + t) * H + h) * D + d] *
                 k[(((size_t)b * T + t2) * H + h) * D + d];
        P[t2] = s / sqrt((double)D);
        if (P[t2] > mx) mx = P[t2];
    }
    if (mx == -INFINITY) {
        for (int t2 = 0; t2 < T; t2++) P[t2] = 0;
        return 0;
    }
    for (int t2 = 0; t2 < T; t2++) sum += P[t2] == -INFINITY ? 0 : exp(P[t2] - mx);
    for (int t2 = 0; t2 < T; t2++) P[t2] = P[t2] == -INFINITY ? 0 : exp(P[t2] - mx) / sum;
    return mx + log(sum);
}

static uint64_t bidir_pairs(int B, int T, int H, const uint8_t *mask) {
    uint64_t keys = 0;
    for (size_t i = 0; i < (size_t)B * T; i++) keys += !mask || mask[i];
    return keys * (uint64_t)T * (uint64_t)H;
}

static void ref_attention_bidir_forward(backend *be, float *out, float *lse, const float *q,
                                        const float *k, const float *v, int B, int T, int H, int D,
                                        const uint8_t *mask, double p, uint64_t key) {
    double *P = malloc(sizeof(double) * T), *Z = malloc(sizeof(double) * T);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                double l = bidir_row(P, Z, q, k, b, h, t, T, H, D, mask, p, key);
                if (lse) lse[((size_t)b * H + h) * T + t] = (float)l;
                for (int d = 0; d < D; d++) {
                    double acc = 0;
                    for (int t2 = 0; t2 < T; t2++)
                        acc += P[t2] * Z[t2] * v[(((size_t)b * T + t2) * H + h) * D + d];
                    out[(((size_t)b * T + t) * H + h) * D + d] = (float)acc;
                }
            }
    free(P), free(Z);
    be->counters.attention_flops += 4ull * (uint64_t)D * bidir_pairs(B, T, H, mask);
}

static void ref_attention_bidir_backward(backend *be, float *dq, float *dk, float *dv,
                                         const float *dout, const float *out, const float *lse,
                                         const float *q, const float *k, const float *v, int B,
                                         int T, int H, int D, const uint8_t *mask, double p,
                                         uint64_t key) {
    (void)out, (void)lse; /* the oracle recomputes everything from q, k, v */
    size_t n = (size_t)B * T * H * D;
    double *gq = calloc(n, sizeof(double)), *gk = calloc(n, sizeof(double));
    double *gv = calloc(n, sizeof(double));
    double *P = malloc(sizeof(double) * T), *Z = malloc(sizeof(double) * T);
    double *dP = malloc(sizeof(double) * T), scale = 1.0 / sqrt((double)D);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                bidir_row(P, Z, q, k, b, h, t, T, H, D, mask, p, key);
                size_t qo = (((size_t)b * T + t) * H + h) * D;
                double di = 0;
                for (int t2 = 0; t2 < T; t2++) {
                    size_t ko = (((size_t)b * T + t2) * H + h) * D;
                    double g = 0;
                    for (int d = 0; d < D; d++) g += (double)dout[qo + d] * v[ko + d];
                    dP[t2] = Z[t2] * g;
                    di += P[t2] * dP[t2];
                }
                for (int t2 = 0; t2 < T; t2++) {
                    size_t ko = (((size_t)b * T + t2) * H + h) * D;
                    double ds = P[t2] * (dP[t2] - di) * scale;
                    for (int d = 0; d < D; d++) {
                        gq[qo + d] += ds * k[ko + d];
                        gk[ko + d] += ds * q[qo + d];
                        gv[ko + d] += P[t2] * Z[t2] * dout[qo + d];
                    }
                }
            }
    for (size_t i = 0; i < n; i++) dq[i] = (float)gq[i], dk[i] = (float)gk[i], dv[i] = (float)gv[i];
    free(gq), free(gk), free(gv), free(P), free(Z), free(dP);
    be->counters.attention_flops += 8ull * (uint64_t)D * bidir_pairs(B, T, H, mask);
}

static double ref_class_loss(backend *be, float *dlogits, const float *logits,
                             const int32_t *targets, int n, int K, float scale, int *n_counted) {
    (void)be;
    double total = 0;
    *n_counted = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * K;
        double mx = -INFINITY, sum = 0;
        for (int c = 0; c < K; c++) mx = z[c] > mx ? z[c] : mx;
        for (int c = 0; c < K; c++) sum += exp(z[c] - mx);
        int counted = targets[i] != LOSS_IGNORE_INDEX;
        if (counted) total += mx + log(sum) - z[targets[i]], ++*n_counted;
        for (int c = 0; dlogits && c < K; c++)
            dlogits[(size_t)i * K + c] =
                counted ? (float)(scale * (exp(z[c] - mx) / sum - (c == targets[i]))) : 0.0f;
    }
    return total;
}

static const backend_ops REF_OPS = {
    .name = "reference",
    .destroy = ref_destroy,
    .linear_scratch_floats = ref_linear_scratch,
    .lm_head_loss_workspace_floats = ref_loss_workspace,
    .attention_decode_scratch_floats = ref_decode_scratch,
    .layer_weights_f32 = ref_layer_weights_f32,
    .alloc = ref_alloc,
    .free = ref_free,
    .zero = ref_zero,
    .copy = ref_copy,
    .upload = ref_copy,
    .download = ref_copy,
    .convert = ref_convert,
    .add = ref_add,
    .dropout = ref_dropout,
    .swiglu_forward = ref_swiglu_forward,
    .swiglu_backward = ref_swiglu_backward,
    .gemm_f32 = ref_gemm_f32,
    .linear_forward = ref_linear_forward,
    .linear_backward_input = ref_linear_backward_input,
    .linear_backward_weight = ref_linear_backward_weight,
    .embedding_forward = ref_embedding_forward,
    .embedding_backward = ref_embedding_backward,
    .rmsnorm_forward = ref_rmsnorm_forward,
    .rmsnorm_backward = ref_rmsnorm_backward,
    .rope_tables = ref_rope_tables,
    .rope_forward = ref_rope_forward,
    .rope_backward = ref_rope_backward,
    .attention_forward = ref_attention_forward,
    .attention_backward = ref_attention_backward,
    .attention_decode = ref_attention_decode,
    .lm_head_loss = ref_lm_head_loss,
    .adamw_update = ref_adamw_update,
    .adamw_update_split = ref_adamw_update_split,
    .sgd_update = ref_sgd_update,
    .sgd_update_split = ref_sgd_update_split,
    .sgd_update_stored = ref_sgd_update_stored,
    .sum_squares = ref_sum_squares,
    .scale = ref_scale,
    .axpy = ref_axpy,
    .gaussian_perturb = ref_gaussian_perturb,
    .gaussian_update_stored = ref_gaussian_update_stored,
    .gather = ref_gather,
    .scatter = ref_scatter,
    .layernorm_forward = ref_layernorm_forward,
    .layernorm_backward = ref_layernorm_backward,
    .gelu_forward = ref_gelu_forward,
    .gelu_backward = ref_gelu_backward,
    .tanh_forward = ref_tanh_forward,
    .tanh_backward = ref_tanh_backward,
    .attention_bidir_forward = ref_attention_bidir_forward,
    .attention_bidir_backward = ref_attention_bidir_backward,
    .class_loss = ref_class_loss,
    .galore_projector_scratch_floats = ref_galore_scratch,
    .galore_projector = ref_galore_projector,
    .relu_forward = ref_relu_forward,
    .relu_backward = ref_relu_backward,
};

badam_status ref_backend_create(backend **out, badam_error *err) {
    *out = calloc(1, sizeof **out);
    if (!*out) return badam_fail(err, BADAM_E_NOMEM, "reference backend: out of memory");
    (*out)->ops = &REF_OPS;
    return BADAM_OK;
}

/* Plain oracle: out and lse row by row in double, from the materialised probabilities; row t of
 * sequence b sees keys seg[b*T+t]..t (seg NULL: 0..t). */
void ref_attention_forward_loops(float *out, float *lse, const float *q, const float *k,
                                 const float *v, int B, int T, int Hq, int Hkv, int D,
                                 const int32_t *seg) {
    int group = Hq / Hkv;
    double *p = malloc((size_t)T * sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < Hq; h++)
            for (int t = 0; t < T; t++) {
                const float *qi = q + (((size_t)b * T + t) * Hq + h) * D;
                int s0 = seg ? seg[(size_t)b * T + t] : 0;
                double mx = -INFINITY, sum = 0;
                for (int t2 = s0; t2 <= t; t2++) {
                    const float *kt = k + (((size_t)b * T + t2) * Hkv + h / group) * D;
                    double s = 0;
                    for (int d = 0; d < D; d++) s += (double)qi[d] * kt[d];
                    p[t2] = s / sqrt((double)D);
                    if (p[t2] > mx) mx = p[t2];
                }
                for (int t2 = s0; t2 <= t; t2++) sum += exp(p[t2] - mx);
                if (lse) lse[((size_t)b * Hq + h) * T + t] = (float)(mx + log(sum));
                float *o = out + (((size_t)b * T + t) * Hq + h) * D;
                for (int d = 0; d < D; d++) {
                    double acc = 0;
                    for (int t2 = s0; t2 <= t; t2++)
                        acc += exp(p[t2] - mx) / sum *
                               v[(((size_t)b * T + t2) * Hkv + h / group) * D + d];
                    o[d] = (float)acc;
                }
            }
    free(p);
}

/* Plain backward oracle in double (same visibility as naive_attention): dq, dk, dv overwritten. */
void ref_attention_backward_loops(float *dq, float *dk, float *dv, const float *dout,
                                  const float *q, const float *k, const float *v, int B, int T,
                                  int Hq, int Hkv, int D, const int32_t *seg) {
    int group = Hq / Hkv;
    size_t nq = (size_t)B * T * Hq * D, nkv = (size_t)B * T * Hkv * D;
    double *gq = calloc(nq, sizeof(double)), *gk = calloc(nkv, sizeof(double));
    double *gv = calloc(nkv, sizeof(double));
    double *p = malloc((size_t)T * sizeof(double)), *dp = malloc((size_t)T * sizeof(double));
    double scale = 1.0 / sqrt((double)D);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < Hq; h++)
            for (int t = 0; t < T; t++) {
                size_t qo = (((size_t)b * T + t) * Hq + h) * D;
                int s0 = seg ? seg[(size_t)b * T + t] : 0;
                double mx = -INFINITY, sum = 0, di = 0;
                for (int t2 = s0; t2 <= t; t2++) {
                    size_t ko = (((size_t)b * T + t2) * Hkv + h / group) * D;
                    double s = 0, g = 0;
                    for (int d = 0; d < D; d++) s += (double)q[qo + d] * k[ko + d];
                    for (int d = 0; d < D; d++) g += (double)dout[qo + d] * v[ko + d];
                    p[t2] = s * scale, dp[t2] = g;
                    if (p[t2] > mx) mx = p[t2];
                }
                for (int t2 = s0; t2 <= t; t2++) sum += exp(p[t2] - mx);
                for (int t2 = s0; t2 <= t; t2++) {
                    p[t2] = exp(p[t2] - mx) / sum;
                    di += p[t2] * dp[t2];
                }
                for (int t2 = s0; t2 <= t; t2++) {
                    size_t ko = (((size_t)b * T + t2) * Hkv + h / group) * D;
                    double ds = p[t2] * (dp[t2] - di) * scale;
                    for (int d = 0; d < D; d++) {
                        gq[qo + d] += ds * k[ko + d];
                        gk[ko + d] += ds * q[qo + d];
                        gv[ko + d] += p[t2] * dout[qo + d];
                    }
                }
            }
    for (size_t i = 0; i < nq; i++) dq[i] = (float)gq[i];
    for (size_t i = 0; i < nkv; i++) dk[i] = (float)gk[i], dv[i] = (float)gv[i];
    free(gq), free(gk), free(gv), free(p), free(dp);
}
