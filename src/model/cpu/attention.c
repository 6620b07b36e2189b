/* Causal grouped-query attention (ops.h states the math), tiled in the flash-attention way: no
 * [T x T] probabilities are stored. Forward walks the keys of a query row in tiles of
 * ATTN_KEY_TILE with an online softmax (running max and sum, the partial output rescaled when the
 * max grows) and keeps the row's logsumexp; backward recomputes each probability from the scores
 * and the logsumexp, with sum_t2 P dP = dout . out per row. K and V are read per kv head (no
 * repeated copies); the query heads of a group share them.
 *
 * FLOP count: a query at position t attends to t+1 keys, so one (b, h) pair does
 * T(T+1)/2 (query, key) pairs, and pairs = B * Hq * T(T+1)/2 in all. Each product over the
 * head dimension is D multiply-adds = 2D flops per pair:
 *   forward:  QK^T and PV                         -> attention_flops += 2 * 2D * pairs
 *   backward: dP = dout v^T (only when dq or dk is requested), dq = dS k, dk = dS^T q,
 *             dv = P^T dout (each only when requested) -> attention_flops += (products) * 2D *
 * pairs so a full backward adds 4 * 2D * pairs. The backward's recomputation of the scores and
 * the softmax are not counted (the counts stay the analytic products of the gradient plan).
 *
 * No allocation: per-row state lives on the stack (one key tile of scores). */
#include "model/cpu/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ATTN_KEY_TILE 64

#define ATTN_CLONES OPS_CLONES
#define exp_neg ops_exp_neg

/* (query, key) pairs attended: sum over rows of (t - seg_start + 1), times Hq. */
static uint64_t causal_pairs(int B, int T, int Hq, const int32_t *seg_start) {
    if (!seg_start) return (uint64_t)B * (uint64_t)Hq * ((uint64_t)T * (uint64_t)(T + 1) / 2);
    uint64_t pairs = 0;
    for (long r = 0; r < (long)B * T; r++) pairs += (uint64_t)(r % T - seg_start[r] + 1);
    return pairs * (uint64_t)Hq;
}

/* One query row: o = sum_t2 softmax(scores) v over keys s0..t, online over key tiles; returns
 * the logsumexp of the scaled scores. kb, vb point at key/value position 0 of the kv head;
 * kv_stride is the distance between consecutive positions. */
ATTN_CLONES
static float attention_row_forward(float *restrict o, const float *restrict qi, const float *kb,
                                   const float *vb, int s0, int t, size_t kv_stride, int D,
                                   float scale) {
    float m = -INFINITY, l = 0.0f, sc[ATTN_KEY_TILE];
    for (int d = 0; d < D; d++) o[d] = 0.0f;
    for (int c0 = s0; c0 <= t; c0 += ATTN_KEY_TILE) {
        int n = t + 1 - c0 < ATTN_KEY_TILE ? t + 1 - c0 : ATTN_KEY_TILE;
        float cmax = -INFINITY;
        for (int j = 0; j < n; j++) {
            const float *kt = kb + (size_t)(c0 + j) * kv_stride;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (int d = 0; d < D; d++) s += qi[d] * kt[d];
            s *= scale;
            sc[j] = s;
            cmax = s > cmax ? s : cmax;
        }
        if (cmax > m) {
            float alpha = m == -INFINITY ? 0.0f : exp_neg(m - cmax);
            l *= alpha;
#pragma omp simd
            for (int d = 0; d < D; d++) o[d] *= alpha;
            m = cmax;
        }
        float lsum = 0.0f;
#pragma omp simd reduction(+ : lsum)
        for (int j = 0; j < n; j++) {
            sc[j] = exp_neg(sc[j] - m);
            lsum += sc[j];
        }
        l += lsum;
        for (int j = 0; j < n; j++) {
            const float *vt = vb + (size_t)(c0 + j) * kv_stride;
            float pj = sc[j];
#pragma omp simd
            for (int d = 0; d < D; d++) o[d] += pj * vt[d];
        }
    }
    float inv = 1.0f / l;
#pragma omp simd
    for (int d = 0; d < D; d++) o[d] *= inv;
    return m + logf(l);
}

void attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                       int B, int T, int Hq, int Hkv, int D, const int32_t *seg_start,
                       op_counters *counters) {
    if (B <= 0 || T <= 0 || Hq <= 0) return;
    int group = Hq / Hkv;
    float scale = 1.0f / sqrtf((float)D);
    size_t kv_stride = (size_t)Hkv * D;
    long n_rows = (long)B * Hq * T;
#pragma omp parallel for schedule(dynamic, 16)
    for (long r = 0; r < n_rows; r++) {
        int t = (int)(r % T), h = (int)(r / T % Hq), b = (int)(r / T / Hq);
        int kvh = h / group;
        const float *qi = q + (((size_t)b * T + t) * Hq + h) * D;
        const float *kb = k + (size_t)b * T * kv_stride + (size_t)kvh * D;
        const float *vb = v + (size_t)b * T * kv_stride + (size_t)kvh * D;
        int s0 = seg_start ? seg_start[(size_t)b * T + t] : 0;
        float row_lse = attention_row_forward(out + (((size_t)b * T + t) * Hq + h) * D, qi, kb, vb,
                                              s0, t, kv_stride, D, scale);
        if (lse) lse[r] = row_lse;
    }
    if (counters)
        counters->attention_flops += 2ull * 2ull * (uint64_t)D * causal_pairs(B, T, Hq, seg_start);
}

/* Backward of the query heads sharing kv head kvh of sequence b (see attention_backward); dkb,
 * dvb point at position 0 of that kv head's gradient rows (zeroed by the caller). */
ATTN_CLONES
static void backward_kv_head(float *dq, float *dkb, float *dvb, const float *dout, const float *out,
                             const float *lse, const float *q, const float *kb, const float *vb,
                             int b, int kvh, int group, int T, int Hq, int D, size_t q_stride,
                             size_t kv_stride, const int32_t *seg_start, float scale) {
    int need_dp = dq || dkb;
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        for (int t = 0; t < T; t++) {
            size_t qoff = ((size_t)b * T + t) * q_stride + (size_t)h * D;
            const float *restrict qi = q + qoff, *restrict doi = dout + qoff;
            const float *oi = out + qoff;
            float row_lse = lse[((size_t)b * Hq + h) * T + t];
            float *restrict dqi = dq ? dq + qoff : NULL;
            int s0 = seg_start ? seg_start[(size_t)b * T + t] : 0;
            if (dqi) memset(dqi, 0, (size_t)D * sizeof(float));
            float di = 0.0f; /* sum_t2 P dP = dout . out */
            if (need_dp) {
#pragma omp simd reduction(+ : di)
                for (int d = 0; d < D; d++) di += doi[d] * oi[d];
            }
            for (int t2 = s0; t2 <= t; t2++) {
                const float *kt = kb + (size_t)t2 * kv_stride;
                const float *vt = vb + (size_t)t2 * kv_stride;
                float s = 0.0f;
#pragma omp simd reduction(+ : s)
                for (int d = 0; d < D; d++) s += qi[d] * kt[d];
                float p = exp_neg(s * scale - row_lse);
                if (dvb) {
                    float *restrict dvt = dvb + (size_t)t2 * kv_stride;
#pragma omp simd
                    for (int d = 0; d < D; d++) dvt[d] += p * doi[d];
                }
                if (!need_dp) continue;
                float dp = 0.0f;
#pragma omp simd reduction(+ : dp)
                for (int d = 0; d < D; d++) dp += doi[d] * vt[d];
                float ds = p * (dp - di) * scale;
                if (dqi) {
#pragma omp simd
                    for (int d = 0; d < D; d++) dqi[d] += ds * kt[d];
                }
                if (dkb) {
                    float *restrict dkt = dkb + (size_t)t2 * kv_stride;
#pragma omp simd
                    for (int d = 0; d < D; d++) dkt[d] += ds * qi[d];
                }
            }
        }
    }
}

void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out,
                        const float *lse, const float *q, const float *k, const float *v, int B,
                        int T, int Hq, int Hkv, int D, const int32_t *seg_start,
                        op_counters *counters) {
    if (B <= 0 || T <= 0 || Hq <= 0) return;
    if (!dq && !dk && !dv) return;
    int group = Hq / Hkv;
    float scale = 1.0f / sqrtf((float)D);
    size_t q_stride = (size_t)Hq * D, kv_stride = (size_t)Hkv * D;
    int need_dp = dq || dk;
    /* One task per (b, kv head): it owns dk and dv of that head and dq of its query heads. */
#pragma omp parallel for schedule(dynamic, 1)
    for (int bk = 0; bk < B * Hkv; bk++) {
        int b = bk / Hkv, kvh = bk % Hkv;
        size_t kv_off = (size_t)b * T * kv_stride + (size_t)kvh * D;
        float *dkb = dk ? dk + kv_off : NULL, *dvb = dv ? dv + kv_off : NULL;
        for (int t = 0; t < T; t++) {
            if (dkb) memset(dkb + (size_t)t * kv_stride, 0, (size_t)D * sizeof(float));
            if (dvb) memset(dvb + (size_t)t * kv_stride, 0, (size_t)D * sizeof(float));
        }
        backward_kv_head(dq, dkb, dvb, dout, out, lse, q, k + kv_off, v + kv_off, b, kvh, group, T,
                         Hq, D, q_stride, kv_stride, seg_start, scale);
    }
    if (counters) {
        uint64_t products = (uint64_t)need_dp + (dq != NULL) + (dk != NULL) + (dv != NULL);
        counters->attention_flops +=
            products * 2ull * (uint64_t)D * causal_pairs(B, T, Hq, seg_start);
    }
}
