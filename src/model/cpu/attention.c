/* Causal grouped-query attention (ops.h states the math), plain loops per (b, h, t).
 *
 * FLOP count: a query at position t attends to t+1 keys, so one (b, h) pair does
 * T(T+1)/2 (query, key) pairs, and pairs = B * Hq * T(T+1)/2 in all. Each product over the
 * head dimension is D multiply-adds = 2D flops per pair:
 *   forward:  QK^T and PV                         -> attention_flops += 2 * 2D * pairs
 *   backward: dP = dout v^T (only when dq or dk is requested), dq = dS k, dk = dS^T q,
 *             dv = P^T dout (each only when requested) -> attention_flops += (products) * 2D *
 * pairs so a full backward adds 4 * 2D * pairs. Softmax and its backward are not counted.
 *
 * Row buffers (the scores when probs is NULL in forward, dP in backward) are T floats per thread,
 * allocated once per call. Should that allocation fail the outputs are filled with NaN, so the
 * failure shows up in the loss rather than as a crash. */
#include "model/cpu/ops.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* (query, key) pairs attended: sum over rows of (t - seg_start + 1), times Hq. */
static uint64_t causal_pairs(int B, int T, int Hq, const int32_t *seg_start) {
    if (!seg_start) return (uint64_t)B * (uint64_t)Hq * ((uint64_t)T * (uint64_t)(T + 1) / 2);
    uint64_t pairs = 0;
    for (long r = 0; r < (long)B * T; r++) pairs += (uint64_t)(r % T - seg_start[r] + 1);
    return pairs * (uint64_t)Hq;
}

static void fill_nan(float *x, size_t n) {
    if (!x) return;
    for (size_t i = 0; i < n; i++) x[i] = NAN;
}

/* One query row: p[s0..t] = softmax of the scaled scores against keys s0..t, o = sum p v.
 * kb, vb point at key/value position 0 of the kv head; kv_stride is the distance between
 * consecutive positions. */
static void attention_row_forward(float *o, float *p, const float *qi, const float *kb,
                                  const float *vb, int s0, int t, size_t kv_stride, int D,
                                  float scale) {
    float max = -INFINITY;
    for (int t2 = s0; t2 <= t; t2++) {
        const float *kt = kb + (size_t)t2 * kv_stride;
        float s = 0.0f;
        for (int d = 0; d < D; d++) s += qi[d] * kt[d];
        s *= scale;
        p[t2] = s;
        if (s > max) max = s;
    }
    double sum = 0.0;
    for (int t2 = s0; t2 <= t; t2++) {
        p[t2] = expf(p[t2] - max);
        sum += p[t2];
    }
    float inv = (float)(1.0 / sum);
    for (int d = 0; d < D; d++) o[d] = 0.0f;
    for (int t2 = s0; t2 <= t; t2++) {
        p[t2] *= inv;
        const float *vt = vb + (size_t)t2 * kv_stride;
        for (int d = 0; d < D; d++) o[d] += p[t2] * vt[d];
    }
}

void attention_forward(float *out, float *probs, const float *q, const float *k, const float *v,
                       int B, int T, int Hq, int Hkv, int D, const int32_t *seg_start,
                       op_counters *counters) {
    if (B <= 0 || T <= 0 || Hq <= 0) return;
    int group = Hq / Hkv;
    float scale = 1.0f / sqrtf((float)D);
    size_t kv_stride = (size_t)Hkv * D;
    float *rows = NULL;
    if (!probs) {
        rows = malloc((size_t)omp_get_max_threads() * T * sizeof(float));
        if (!rows) {
            fill_nan(out, (size_t)B * T * Hq * D);
            return;
        }
    }
    long n_rows = (long)B * Hq * T;
#pragma omp parallel for schedule(dynamic, 16)
    for (long r = 0; r < n_rows; r++) {
        int t = (int)(r % T), h = (int)(r / T % Hq), b = (int)(r / T / Hq);
        int kvh = h / group;
        float *p = probs ? probs + (size_t)r * T : rows + (size_t)omp_get_thread_num() * T;
        const float *qi = q + (((size_t)b * T + t) * Hq + h) * D;
        const float *kb = k + (size_t)b * T * kv_stride + (size_t)kvh * D;
        const float *vb = v + (size_t)b * T * kv_stride + (size_t)kvh * D;
        int s0 = seg_start ? seg_start[(size_t)b * T + t] : 0;
        attention_row_forward(out + (((size_t)b * T + t) * Hq + h) * D, p, qi, kb, vb, s0, t,
                              kv_stride, D, scale);
        if (probs) {
            for (int t2 = 0; t2 < s0; t2++) p[t2] = 0.0f;
            for (int t2 = t + 1; t2 < T; t2++) p[t2] = 0.0f;
        }
    }
    free(rows);
    if (counters)
        counters->attention_flops += 2ull * 2ull * (uint64_t)D * causal_pairs(B, T, Hq, seg_start);
}

void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *probs,
                        const float *q, const float *k, const float *v, int B, int T, int Hq,
                        int Hkv, int D, const int32_t *seg_start, op_counters *counters) {
    if (B <= 0 || T <= 0 || Hq <= 0) return;
    if (!dq && !dk && !dv) return;
    int group = Hq / Hkv;
    float scale = 1.0f / sqrtf((float)D);
    size_t q_stride = (size_t)Hq * D, kv_stride = (size_t)Hkv * D;
    int need_dp = dq || dk;
    float *rows = need_dp ? malloc((size_t)omp_get_max_threads() * T * sizeof(float)) : NULL;
    if (need_dp && !rows) {
        fill_nan(dq, (size_t)B * T * q_stride);
        fill_nan(dk, (size_t)B * T * kv_stride);
        fill_nan(dv, (size_t)B * T * kv_stride);
        return;
    }
    /* One task per (b, kv head): it owns dk and dv of that head and dq of its query heads. */
#pragma omp parallel for schedule(dynamic, 1)
    for (int bk = 0; bk < B * Hkv; bk++) {
        int b = bk / Hkv, kvh = bk % Hkv;
        float *dp = need_dp ? rows + (size_t)omp_get_thread_num() * T : NULL;
        size_t kv_off = (size_t)b * T * kv_stride + (size_t)kvh * D;
        const float *kb = k + kv_off, *vb = v + kv_off;
        float *dkb = dk ? dk + kv_off : NULL, *dvb = dv ? dv + kv_off : NULL;
        for (int t = 0; t < T; t++) {
            if (dkb) memset(dkb + (size_t)t * kv_stride, 0, (size_t)D * sizeof(float));
            if (dvb) memset(dvb + (size_t)t * kv_stride, 0, (size_t)D * sizeof(float));
        }
        for (int h = kvh * group; h < (kvh + 1) * group; h++) {
            for (int t = 0; t < T; t++) {
                size_t qoff = ((size_t)b * T + t) * q_stride + (size_t)h * D;
                const float *qi = q + qoff, *doi = dout + qoff;
                const float *p = probs + (((size_t)b * Hq + h) * T + t) * T;
                float *dqi = dq ? dq + qoff : NULL;
                int s0 = seg_start ? seg_start[(size_t)b * T + t] : 0;
                if (dqi) memset(dqi, 0, (size_t)D * sizeof(float));
                if (dvb) {
                    for (int t2 = s0; t2 <= t; t2++) {
                        float *dvt = dvb + (size_t)t2 * kv_stride;
                        for (int d = 0; d < D; d++) dvt[d] += p[t2] * doi[d];
                    }
                }
                if (!need_dp) continue;
                double pdp = 0.0; /* sum_t2 P dP */
                for (int t2 = s0; t2 <= t; t2++) {
                    const float *vt = vb + (size_t)t2 * kv_stride;
                    float s = 0.0f;
                    for (int d = 0; d < D; d++) s += doi[d] * vt[d];
                    dp[t2] = s;
                    pdp += (double)p[t2] * s;
                }
                for (int t2 = s0; t2 <= t; t2++) {
                    float ds = p[t2] * (dp[t2] - (float)pdp) * scale;
                    const float *kt = kb + (size_t)t2 * kv_stride;
                    if (dqi)
                        for (int d = 0; d < D; d++) dqi[d] += ds * kt[d];
                    if (dkb) {
                        float *dkt = dkb + (size_t)t2 * kv_stride;
                        for (int d = 0; d < D; d++) dkt[d] += ds * qi[d];
                    }
                }
            }
        }
    }
    free(rows);
    if (counters) {
        uint64_t products = (uint64_t)need_dp + (dq != NULL) + (dk != NULL) + (dv != NULL);
        counters->attention_flops +=
            products * 2ull * (uint64_t)D * causal_pairs(B, T, Hq, seg_start);
    }
}
