/* Cross-entropy of one logits row, and the fused LM head + cross-entropy over token rows
 * (ops.h states the math). The softmax normaliser is summed in float within blocks of 1024
 * logits and in double across them.
 *
 * Targets are validated by the caller (the model layer). These kernels still never read out of
 * bounds: cross_entropy_row returns NaN for a target outside [0, V) and leaves dz alone, and
 * lm_head_loss skips such a row exactly like an ignored one (no loss, no gradient, not counted). */
#include "model/cpu/ops.h"

#include <math.h>
#include <string.h>

#define CE_BLOCK 1024

CPU_BODY float ce_row_body(float *dz, const float *z, int V, int target, float scale) {
    if (target < 0 || target >= V) return NAN;
    float z_target = z[target]; /* read before dz (which may alias z) is written */
    float max = -INFINITY;
#pragma omp simd reduction(max : max)
    for (int j = 0; j < V; j++) max = z[j] > max ? z[j] : max;
    /* exp(z - max), summed in float over blocks of CE_BLOCK (one vector loop each) and the block
     * sums in double */
    double sum = 0.0;
    for (int j0 = 0; j0 < V; j0 += CE_BLOCK) {
        int j1 = V - j0 < CE_BLOCK ? V : j0 + CE_BLOCK;
        float part = 0.0f;
        if (dz) {
#pragma omp simd reduction(+ : part)
            for (int j = j0; j < j1; j++) {
                float e = ops_exp_neg(z[j] - max);
                dz[j] = e;
                part += e;
            }
        } else {
#pragma omp simd reduction(+ : part)
            for (int j = j0; j < j1; j++) part += ops_exp_neg(z[j] - max);
        }
        sum += part;
    }
    if (dz) {
        float k = (float)(scale / sum);
#pragma omp simd
        for (int j = 0; j < V; j++) dz[j] *= k;
        dz[target] -= scale;
    }
    return (float)((double)max + log(sum) - z_target);
}
CPU_VARIANTS(float, ce_row, (float *dz, const float *z, int V, int target, float scale),
             (dz, z, V, target, scale))

float cross_entropy_row(float *dz, const float *z, int V, int target, float scale) {
    return ce_row(dz, z, V, target, scale);
}

/* Workspace layout, in floats: gathered hidden rows [chunk,C], logits (then dlogits) [chunk,V],
 * per-row targets then losses [chunk], the dh of the gathered rows [chunk,C], linear scratch for W
 * [V,C]. */
size_t lm_head_loss_workspace_floats(int chunk, int C, int V) {
    size_t rows = chunk > 0 ? (size_t)chunk : 0;
    return rows * (2 * (size_t)C + (size_t)V + 1) + linear_scratch_floats(C);
}

static int selected(const int32_t *targets, int i, int V) {
    return targets[i] != LOSS_IGNORE_INDEX && targets[i] >= 0 && targets[i] < V;
}

double lm_head_loss(float *dh, float *dw, const float *h, const void *w, badam_dtype w_dtype,
                    const int32_t *targets, int n, int C, int V, int chunk, float scale,
                    float *workspace, int *n_counted, op_counters *counters, gemm_bf16_ctx *gemm) {
    if (n_counted) *n_counted = 0;
    if (chunk <= 0) return NAN;
    size_t ws_floats = lm_head_loss_workspace_floats(chunk, C, V);
    if (!dw && w_dtype != BADAM_DTYPE_F32 &&
        !(w_dtype == BADAM_DTYPE_BF16 && gemm_bf16_available(gemm)) &&
        lm_head_online_rows(ws_floats, C, V) >= chunk && (uintptr_t)workspace % 8 == 0)
        return lm_head_loss_online(dh, h, w, w_dtype, targets, n, C, V, scale, workspace, ws_floats,
                                   n_counted, counters);
    float *hbuf = workspace;
    float *logits = hbuf + (size_t)chunk * C;
    float *losses = logits + (size_t)chunk * V;
    float *dhbuf = losses + chunk;
    float *scratch = dhbuf + (size_t)chunk * C;
    int want_grad = dh || dw;
    double loss_sum = 0.0;
    int counted = 0;
    int next = 0; /* first row not yet looked at */
    while (next < n) {
        /* Gather up to `chunk` selected rows, starting at row `first`. */
        int first = next, m = 0;
        while (next < n && m < chunk) {
            if (selected(targets, next, V))
                memcpy(hbuf + (size_t)m++ * C, h + (size_t)next * C, (size_t)C * sizeof(float));
            next++;
        }
        if (m == 0) break;
        linear_forward(logits, hbuf, w, w_dtype, NULL, m, C, V, scratch, counters, gemm);
        /* losses[r] first carries the target of chunk row r (its int32 bits), then its loss. */
        int r = 0;
        for (int i = first; i < next; i++)
            if (selected(targets, i, V)) memcpy(&losses[r++], &targets[i], sizeof(int32_t));
#pragma omp parallel for
        for (int rr = 0; rr < m; rr++) {
            int32_t target;
            memcpy(&target, &losses[rr], sizeof target);
            float *zr = logits + (size_t)rr * V;
            losses[rr] = cross_entropy_row(want_grad ? zr : NULL, zr, V, target, scale);
        }
        for (int rr = 0; rr < m; rr++) loss_sum += losses[rr];
        counted += m;
        if (dh) {
            memset(dhbuf, 0, (size_t)m * C * sizeof(float));
            linear_backward_input(dhbuf, logits, w, w_dtype, m, C, V, scratch, counters, gemm);
            r = 0;
            for (int i = first; i < next; i++) {
                if (!selected(targets, i, V)) continue;
                float *dst = dh + (size_t)i * C;
                const float *src = dhbuf + (size_t)r++ * C;
                for (int j = 0; j < C; j++) dst[j] += src[j];
            }
        }
        if (dw) linear_backward_weight(dw, NULL, logits, hbuf, m, C, V, counters);
    }
    if (n_counted) *n_counted = counted;
    return loss_sum;
}
