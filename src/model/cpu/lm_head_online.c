/* The LM head + cross-entropy (ops.h: lm_head_loss) in one pass over vocabulary tiles, for a
 * weight stored in bf16/f16 on the portable fp32 GEMM path when no weight gradient is wanted.
 *
 * Why: the chunked path (cross_entropy.c) needs a row's logits complete before its gradient, so
 * it converts the whole [V,C] weight twice per chunk of rows (logits, then dh): with B*T rows and
 * 256-row chunks, 2 * B*T/256 conversions of V*C values per call. Here each tile of
 * LM_ONLINE_TILE vocabulary rows is converted to fp32 once per block of token rows (vocabulary
 * tiles outer, token rows inner), and a block holds as many rows as the loss workspace fits (at
 * the 130m and Llama-3-8B shapes, every row of a 2 x 256 or 1 x 512 batch: one conversion per
 * call). No memory beyond lm_head_loss_workspace_floats is used.
 *
 * Math: the softmax is accumulated online, as flash attention does. For a token row h with target
 * t, over tiles W_k (rows v0 .. v0+n_k of W), with m = -inf, l = 0, a = 0 at the start:
 *   z = h W_k^T;  m' = max(m, max_j z_j);  f = exp(m - m');  e_j = exp(z_j - m')
 *   l = f l + sum_j e_j;  a = f a + e W_k;  m = m'
 * then loss = m + log(l) - z_t and dh += scale (a / l - W[t])   (= scale * softmax(z) W -
 * scale * W[t], the chunked path's dz @ W with dz = scale * (softmax(z) - onehot(t))).
 * The -scale W[t] term is added to dh when the tile holding t is converted. Sums differ in order
 * from the chunked path (round-off only). */
#include "model/cpu/ops.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Per token row: l (double, 2 floats), m, z_t, target, row index (int32 bits), then h and a
 * ([C] each) and one tile of logits [LM_ONLINE_TILE]. Fixed: one fp32 weight tile. */
#define LM_ONLINE_TILE LINEAR_WEIGHT_TILE_ROWS
#define LM_ONLINE_ROW_FLOATS(C, tile) (6 + 2 * (size_t)(C) + (size_t)(tile))

int lm_head_online_rows(size_t workspace_floats, int C, int V) {
    size_t tile = V < LM_ONLINE_TILE ? (size_t)V : LM_ONLINE_TILE;
    size_t fixed = tile * (size_t)C;
    if (workspace_floats <= fixed) return 0;
    size_t rows = (workspace_floats - fixed) / LM_ONLINE_ROW_FLOATS(C, tile);
    return rows > (size_t)INT32_MAX / 2 ? INT32_MAX / 2 : (int)rows;
}

/* One row of one tile: the running max, sum and (with a) rescaled accumulator are updated, z is
 * overwritten by e_j = exp(z_j - m'), and z_t is captured when t is in [v0, v0 + n). */
CPU_BODY void online_row_body(float *restrict z, int n, int v0, int target, float *restrict m,
                              double *restrict l, float *restrict zt, float *restrict a, int C) {
    float tmax = -INFINITY;
#pragma omp simd reduction(max : tmax)
    for (int j = 0; j < n; j++) tmax = z[j] > tmax ? z[j] : tmax;
    if (target >= v0 && target < v0 + n) *zt = z[target - v0];
    float mn = tmax > *m ? tmax : *m;
    if (mn > *m && *l != 0.0) {
        float f = ops_exp_neg(*m - mn);
        *l *= f;
        if (a) {
#pragma omp simd
            for (int c = 0; c < C; c++) a[c] *= f;
        }
    }
    *m = mn;
    float part = 0.0f;
#pragma omp simd reduction(+ : part)
    for (int j = 0; j < n; j++) {
        float e = ops_exp_neg(z[j] - mn);
        z[j] = e;
        part += e;
    }
    *l += part;
}
CPU_VARIANTS_VOID(online_row,
                  (float *restrict z, int n, int v0, int target, float *restrict m,
                   double *restrict l, float *restrict zt, float *restrict a, int C),
                  (z, n, v0, target, m, l, zt, a, C))

typedef struct online_block {
    double *l;
    float *m, *zt, *h, *a, *z, *wt;
    int32_t *target, *row;
    int rows;
} online_block;

static online_block block_layout(float *workspace, int R, int C, int tile) {
    online_block b;
    b.l = (double *)(void *)workspace;
    b.m = workspace + 2 * (size_t)R;
    b.zt = b.m + R;
    b.target = (int32_t *)(void *)(b.zt + R);
    b.row = b.target + R;
    b.h = (float *)(void *)(b.row + R);
    b.a = b.h + (size_t)R * C;
    b.z = b.a + (size_t)R * C;
    b.wt = b.z + (size_t)R * tile;
    b.rows = 0;
    return b;
}

/* Runs every vocabulary tile over the block's rows; adds scale * (a / l - W[t]) into dh when dh is
 * not NULL; returns the block's summed loss (rows in order, each rounded to float as
 * cross_entropy_row returns it). */
static double block_run(const online_block *b, float *dh, const void *w, badam_dtype w_dtype, int C,
                        int V, float scale) {
    int R = b->rows;
    size_t es = badam_dtype_size(w_dtype);
    for (int r = 0; r < R; r++) b->m[r] = -INFINITY, b->l[r] = 0.0, b->zt[r] = NAN;
    if (dh) memset(b->a, 0, (size_t)R * C * sizeof(float));
    for (int v0 = 0; v0 < V; v0 += LM_ONLINE_TILE) {
        int n = V - v0 < LM_ONLINE_TILE ? V - v0 : LM_ONLINE_TILE;
        /* serial conversion: see linear.c (OpenMP spin against OpenBLAS's threads) */
        badam_convert(b->wt, BADAM_DTYPE_F32, (const char *)w + (size_t)v0 * C * es, w_dtype,
                      (size_t)n * C);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, n, C, 1.0f, b->h, C, b->wt, C, 0.0f,
                    b->z, n);
#pragma omp parallel for if ((size_t)R * n >= 32768)
        for (int r = 0; r < R; r++)
            online_row(b->z + (size_t)r * n, n, v0, b->target[r], &b->m[r], &b->l[r], &b->zt[r],
                       dh ? b->a + (size_t)r * C : NULL, C);
        if (!dh) continue;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, C, n, 1.0f, b->z, n, b->wt, C,
                    1.0f, b->a, C);
        for (int r = 0; r < R; r++) {
            if (b->target[r] < v0 || b->target[r] >= v0 + n) continue;
            float *dst = dh + (size_t)b->row[r] * C;
            const float *wr = b->wt + (size_t)(b->target[r] - v0) * C;
            for (int c = 0; c < C; c++) dst[c] -= scale * wr[c];
        }
    }
    double sum = 0.0;
    for (int r = 0; r < R; r++) sum += (float)((double)b->m[r] + log(b->l[r]) - (double)b->zt[r]);
    if (dh) {
#pragma omp parallel for if ((size_t)R * C >= 65536)
        for (int r = 0; r < R; r++) {
            float k = (float)(scale / b->l[r]);
            float *dst = dh + (size_t)b->row[r] * C;
            const float *ar = b->a + (size_t)r * C;
            for (int c = 0; c < C; c++) dst[c] += k * ar[c];
        }
    }
    return sum;
}

double lm_head_loss_online(float *dh, const float *h, const void *w, badam_dtype w_dtype,
                           const int32_t *targets, int n, int C, int V, float scale,
                           float *workspace, size_t workspace_floats, int *n_counted,
                           op_counters *counters) {
    int R = lm_head_online_rows(workspace_floats, C, V);
    online_block b = block_layout(workspace, R, C, V < LM_ONLINE_TILE ? V : LM_ONLINE_TILE);
    double loss_sum = 0.0;
    int counted = 0, next = 0;
    while (next < n) {
        b.rows = 0;
        while (next < n && b.rows < R) {
            int32_t t = targets[next];
            if (t != LOSS_IGNORE_INDEX && t >= 0 && t < V) {
                memcpy(b.h + (size_t)b.rows * C, h + (size_t)next * C, (size_t)C * sizeof(float));
                b.target[b.rows] = t;
                b.row[b.rows++] = next;
            }
            next++;
        }
        if (b.rows == 0) break;
        loss_sum += block_run(&b, dh, w, w_dtype, C, V, scale);
        counted += b.rows;
        if (counters)
            counters->gemm_flops += (dh ? 4ull : 2ull) * (uint64_t)b.rows * (uint64_t)C * V;
    }
    if (n_counted) *n_counted = counted;
    return loss_sum;
}
