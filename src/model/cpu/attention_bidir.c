/* Bidirectional attention with a key padding mask and attention-probability dropout
 * (ops_encoder.h states the math). Plain row-at-a-time kernels: the forward runs one task per
 * (sequence, head, query row) with the row's T scores in a per-thread buffer; the backward runs
 * one task per (sequence, head), which owns dq, dk, dv of that head (no atomics), recomputing
 * each query row's probabilities from lse. Dot products accumulate in fp32, the softmax sums in
 * double. */
#include <math.h>
#include <stdlib.h>

#include "model/cpu/ops_encoder.h"

static int key_on(const uint8_t *mask, int b, int T, int t2) {
    return !mask || mask[(size_t)b * T + t2];
}

static uint64_t real_keys(const uint8_t *mask, int B, int T) {
    if (!mask) return (uint64_t)B * T;
    uint64_t n = 0;
    for (size_t i = 0; i < (size_t)B * T; i++) n += mask[i] != 0;
    return n;
}

static float dot(const float *a, const float *b, int D) {
    float s = 0.0f;
    for (int d = 0; d < D; d++) s += a[d] * b[d];
    return s;
}

/* The dropout factor Z of (b, h, t, t2). */
static float keep_factor(uint64_t key, double p, int b, int h, int t, int t2, int H, int T) {
    if (p <= 0.0) return 1.0f;
    size_t j = (((size_t)b * H + h) * T + t) * T + t2;
    return backend_dropout_unit(key, j) < p ? 0.0f : (float)(1.0 / (1.0 - p));
}

void attention_bidir_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                             int B, int T, int H, int D, const uint8_t *key_mask, double p_drop,
                             uint64_t key, op_counters *counters) {
    float scale = (float)(1.0 / sqrt((double)D));
    size_t row = (size_t)H * D;
#pragma omp parallel
    {
        float *s = malloc(sizeof(float) * (size_t)(T > 0 ? T : 1));
#pragma omp for collapse(3) schedule(static)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                for (int t = 0; t < T; t++) {
                    const float *qi = q + ((size_t)b * T + t) * row + (size_t)h * D;
                    float *o = out + ((size_t)b * T + t) * row + (size_t)h * D;
                    float mx = -INFINITY;
                    for (int t2 = 0; t2 < T; t2++) {
                        if (!key_on(key_mask, b, T, t2)) continue;
                        s[t2] = dot(qi, k + ((size_t)b * T + t2) * row + (size_t)h * D, D) * scale;
                        mx = s[t2] > mx ? s[t2] : mx;
                    }
                    for (int d = 0; d < D; d++) o[d] = 0.0f;
                    float *l = lse ? lse + ((size_t)b * H + h) * T + t : NULL;
                    if (mx == -INFINITY) { /* no real key */
                        if (l) *l = 0.0f;
                        continue;
                    }
                    double sum = 0.0;
                    for (int t2 = 0; t2 < T; t2++)
                        if (key_on(key_mask, b, T, t2)) sum += exp((double)s[t2] - mx);
                    double ls = mx + log(sum);
                    for (int t2 = 0; t2 < T; t2++) {
                        if (!key_on(key_mask, b, T, t2)) continue;
                        float pz = (float)exp((double)s[t2] - ls) *
                                   keep_factor(key, p_drop, b, h, t, t2, H, T);
                        if (pz == 0.0f) continue;
                        const float *vt = v + ((size_t)b * T + t2) * row + (size_t)h * D;
                        for (int d = 0; d < D; d++) o[d] += pz * vt[d];
                    }
                    if (l) *l = (float)ls;
                }
        free(s);
    }
    if (counters)
        counters->attention_flops +=
            2ull * 2ull * (uint64_t)D * (uint64_t)H * (uint64_t)T * real_keys(key_mask, B, T);
}

void attention_bidir_backward(float *dq, float *dk, float *dv, const float *dout, const float *out,
                              const float *lse, const float *q, const float *k, const float *v,
                              int B, int T, int H, int D, const uint8_t *key_mask, double p_drop,
                              uint64_t key, op_counters *counters) {
    float scale = (float)(1.0 / sqrt((double)D));
    size_t row = (size_t)H * D;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            for (int t = 0; t < T; t++) {
                size_t o = ((size_t)b * T + t) * row + (size_t)h * D;
                for (int d = 0; d < D; d++) dq[o + d] = dk[o + d] = dv[o + d] = 0.0f;
            }
            for (int t = 0; t < T; t++) {
                size_t qo = ((size_t)b * T + t) * row + (size_t)h * D;
                float ls = lse[((size_t)b * H + h) * T + t];
                float delta = dot(dout + qo, out + qo, D);
                for (int t2 = 0; t2 < T; t2++) {
                    if (!key_on(key_mask, b, T, t2)) continue;
                    size_t ko = ((size_t)b * T + t2) * row + (size_t)h * D;
                    float p = (float)exp((double)(dot(q + qo, k + ko, D) * scale) - ls);
                    float z = keep_factor(key, p_drop, b, h, t, t2, H, T);
                    float dp = z * dot(dout + qo, v + ko, D);
                    float ds = p * (dp - delta) * scale, pz = p * z;
                    for (int d = 0; d < D; d++) {
                        dq[qo + d] += ds * k[ko + d];
                        dk[ko + d] += ds * q[qo + d];
                        dv[ko + d] += pz * dout[qo + d];
                    }
                }
            }
        }
    if (counters)
        counters->attention_flops +=
            4ull * 2ull * (uint64_t)D * (uint64_t)H * (uint64_t)T * real_keys(key_mask, B, T);
}
