/* Decode attention over a KV cache (backend.h: attention_decode), for n query rows at positions
 * p0 .. p0+n-1; row i, query head h reads kv head h / (Hq/Hkv) at positions [lo, p0+i]:
 *   P[t2] = softmax_t2(q . K[t2] / sqrt(D)),  out = sum_t2 P[t2] V[t2]
 * with lo = p0+i-window+1 (not below 0) for a sliding window, else 0. One (row, head) pair per
 * OpenMP iteration; each thread keeps its scores in its own max_len floats of scratch. */
#include <math.h>
#include <omp.h>

#include "model/cpu/ops.h"

/* q . k with eight partial sums (the compiler vectorizes it; a single running sum it cannot). */
static float dot(const float *q, const float *k, int D) {
    float acc[8] = {0};
    int d = 0;
    for (; d + 8 <= D; d += 8)
        for (int j = 0; j < 8; j++) acc[j] += q[d + j] * k[d + j];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; d < D; d++) s += q[d] * k[d];
    return s;
}

void attention_decode(float *out, const float *q_all, const float *K, const float *Vc, int n,
                      int p0, int Hq, int Hkv, int D, int kv_stride, int window, int max_len,
                      float *scratch, int n_threads) {
    int group = Hq / Hkv;
    float scale = 1.0f / sqrtf((float)D);
    long rows = (long)n * Hq;
#pragma omp parallel for schedule(dynamic, 4) num_threads(n_threads)
    for (long rh = 0; rh < rows; rh++) {
        int i = (int)(rh / Hq), h = (int)(rh % Hq), kvh = h / group, t = p0 + i;
        int lo = window > 0 && t - window + 1 > 0 ? t - window + 1 : 0;
        float *p = scratch + (size_t)omp_get_thread_num() * max_len;
        const float *q = q_all + ((size_t)i * Hq + h) * D;
        float mx = -INFINITY;
        for (int t2 = lo; t2 <= t; t2++) {
            const float *k = K + (size_t)t2 * kv_stride + (size_t)kvh * D;
            p[t2] = dot(q, k, D) * scale;
            if (p[t2] > mx) mx = p[t2];
        }
        float sum = 0.0f;
        for (int t2 = lo; t2 <= t; t2++) sum += (p[t2] = expf(p[t2] - mx));
        float inv = 1.0f / sum, *o = out + ((size_t)i * Hq + h) * D;
        for (int d = 0; d < D; d++) o[d] = 0.0f;
        for (int t2 = lo; t2 <= t; t2++) {
            const float *v = Vc + (size_t)t2 * kv_stride + (size_t)kvh * D;
            float w = p[t2] * inv;
            for (int d = 0; d < D; d++) o[d] += w * v[d];
        }
    }
}
