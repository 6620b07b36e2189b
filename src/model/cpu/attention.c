/* Causal grouped-query attention (ops.h states the math), blocked in the flash-attention-2 way:
 * no [T x T] probabilities are stored.
 *
 * Forward: one task per (b, query head, block of ATTN_FBQ query rows), the blocks with the most
 * keys handed out first. A block walks its keys in tiles of ATTN_FBK with an online softmax
 * (running max m and sum l per row, the partial output rescaled when the max grows) and writes
 * out = O / l and lse = m + log l. Backward: one task per (b, kv head), which owns dk, dv of that
 * head and dq of its query heads (no atomics); for each key tile of ATTN_BBK keys, for each query
 * head of the group and each block of ATTN_BBQ query rows that sees the tile, it recomputes
 * P = exp(S - lse) and adds dv += P^T dout, dq += dS k, dk += dS^T q with
 * dS = P (dout v^T - dout . out) / sqrt(D) (dout . out computed once per row when it fits).
 *
 * Every product is a small matrix product C[r][0:N] += sum_k A[r][k] B[k][0:N] with the rows of
 * B contiguous in a local tile (mm_tile: 4 rows x 32 columns of C in vector registers, so each B
 * row feeds 8 FMAs). For the scores the K tile is transposed first (Kt[d][key]), for dP the V
 * tile (Vt[d][key]); the V, K, q and dout rows that serve as B are copied into a local tile (rows
 * of q, k, v lie at a power-of-two-ish stride Hq*D or Hkv*D and would collide in the L1 cache).
 * The head dimension is walked in chunks of ATTN_DC, so the tiles stay bounded for any D (when
 * D <= ATTN_DC the backward transposes/copies a key tile once for all its query blocks). Masks
 * (causal, and the segment start of packed rows) are applied only on the tiles that need them.
 *
 * FLOP count: a query at position t attends to t+1 keys, so one (b, h) pair does
 * T(T+1)/2 (query, key) pairs, and pairs = B * Hq * T(T+1)/2 in all. Each product over the
 * head dimension is D multiply-adds = 2D flops per pair:
 *   forward:  QK^T and PV                         -> attention_flops += 2 * 2D * pairs
 *   backward: dP = dout v^T (only when dq or dk is requested), dq = dS k, dk = dS^T q,
 *             dv = P^T dout (each only when requested) -> attention_flops += (products) * 2D *
 * pairs so a full backward adds 4 * 2D * pairs. The backward's recomputation of the scores and
 * the softmax are not counted (the counts stay the analytic products of the gradient plan), nor
 * the masked parts of the blocks.
 *
 * No allocation: per-thread tiles live on the stack, about 80 KB per thread in either direction
 * (forward: a 64x64 score tile and two 128x64 tiles; backward: four 32x128 tiles, two 32x32
 * score tiles and 2048 floats of dout . out). */
#include "model/cpu/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Let the AVX-512 clone fuse multiply-adds (ISO C mode leaves contraction off). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif

#define ATTN_FBQ 64        /* forward: query rows per block */
#define ATTN_FBK 64        /* forward: keys per tile */
#define ATTN_BBQ 32        /* backward: query rows per block */
#define ATTN_BBK 32        /* backward: keys per tile */
#define ATTN_DC 128        /* head dimensions per copied or transposed chunk */
#define ATTN_NB 32         /* columns of C per register tile in mm_tile */
#define ATTN_DI_CACHE 2048 /* backward: rows whose dout . out is kept for all key tiles */

#define ATTN_CLONES OPS_CLONES
#define ATTN_INLINE static inline __attribute__((always_inline))
#define exp_neg ops_exp_neg

/* (query, key) pairs attended: sum over rows of (t - seg_start + 1), times Hq. */
static uint64_t causal_pairs(int B, int T, int Hq, const int32_t *seg_start) {
    if (!seg_start) return (uint64_t)B * (uint64_t)Hq * ((uint64_t)T * (uint64_t)(T + 1) / 2);
    uint64_t pairs = 0;
    for (long r = 0; r < (long)B * T; r++) pairs += (uint64_t)(r % T - seg_start[r] + 1);
    return pairs * (uint64_t)Hq;
}

/* Register tile of mm_tile: rows c0..c3 of C, columns [0, 16) and, when two is set, [16, 32).
 * Each 16-wide loop is one AVX-512 vector, so the accumulators live in registers. */
ATTN_INLINE void mm_regtile(float *restrict c0, float *restrict c1, float *restrict c2,
                            float *restrict c3, const float *a0, const float *a1, const float *a2,
                            const float *a3, size_t a_ks, const float *restrict Bm, size_t ldb,
                            int K, int two, int zero) {
    float p0[16], p1[16], p2[16], p3[16], q0[16], q1[16], q2[16], q3[16];
    if (zero) {
#pragma omp simd
        for (int j = 0; j < 16; j++)
            p0[j] = p1[j] = p2[j] = p3[j] = q0[j] = q1[j] = q2[j] = q3[j] = 0;
    } else {
#pragma omp simd
        for (int j = 0; j < 16; j++) p0[j] = c0[j], p1[j] = c1[j], p2[j] = c2[j], p3[j] = c3[j];
        if (two) {
#pragma omp simd
            for (int j = 0; j < 16; j++)
                q0[j] = c0[16 + j], q1[j] = c1[16 + j], q2[j] = c2[16 + j], q3[j] = c3[16 + j];
        }
    }
    for (int k = 0; k < K; k++) {
        const float *b = Bm + (size_t)k * ldb;
        float x0 = a0[(size_t)k * a_ks], x1 = a1[(size_t)k * a_ks];
        float x2 = a2[(size_t)k * a_ks], x3 = a3[(size_t)k * a_ks];
#pragma omp simd
        for (int j = 0; j < 16; j++) {
            p0[j] += x0 * b[j], p1[j] += x1 * b[j];
            p2[j] += x2 * b[j], p3[j] += x3 * b[j];
        }
        if (two) {
#pragma omp simd
            for (int j = 0; j < 16; j++) {
                q0[j] += x0 * b[16 + j], q1[j] += x1 * b[16 + j];
                q2[j] += x2 * b[16 + j], q3[j] += x3 * b[16 + j];
            }
        }
    }
#pragma omp simd
    for (int j = 0; j < 16; j++) c0[j] = p0[j], c1[j] = p1[j], c2[j] = p2[j], c3[j] = p3[j];
    if (two) {
#pragma omp simd
        for (int j = 0; j < 16; j++)
            c0[16 + j] = q0[j], c1[16 + j] = q1[j], c2[16 + j] = q2[j], c3[16 + j] = q3[j];
    }
}

/* C[r][0:N] (= or +=) sum_{k<K} A[r*a_rs + k*a_ks] * Bm[k*ldb + 0:N] for r < M (overwrite when
 * zero is set). Register tiles of 4 rows x ATTN_NB (then 16) columns; the rest row by row. B
 * should be a local tile: rows at a large power-of-two stride would collide in the L1 cache. */
ATTN_INLINE void mm_tile(float *restrict C, size_t ldc, const float *restrict A, size_t a_rs,
                         size_t a_ks, const float *restrict Bm, size_t ldb, int M, int N, int K,
                         int zero) {
    int r = 0;
    for (; r + 4 <= M; r += 4) {
        const float *a0 = A + (size_t)r * a_rs, *a1 = a0 + a_rs, *a2 = a1 + a_rs, *a3 = a2 + a_rs;
        float *c0 = C + (size_t)r * ldc, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
        int n0 = 0;
        for (; n0 + ATTN_NB <= N; n0 += ATTN_NB)
            mm_regtile(c0 + n0, c1 + n0, c2 + n0, c3 + n0, a0, a1, a2, a3, a_ks, Bm + n0, ldb, K, 1,
                       zero);
        for (; n0 + 16 <= N; n0 += 16)
            mm_regtile(c0 + n0, c1 + n0, c2 + n0, c3 + n0, a0, a1, a2, a3, a_ks, Bm + n0, ldb, K, 0,
                       zero);
        if (n0 < N) {
            int nr = N - n0;
            if (zero)
                for (int j = 0; j < nr; j++) c0[n0 + j] = c1[n0 + j] = c2[n0 + j] = c3[n0 + j] = 0;
            for (int k = 0; k < K; k++) {
                const float *b = Bm + (size_t)k * ldb + n0;
                float x0 = a0[(size_t)k * a_ks], x1 = a1[(size_t)k * a_ks];
                float x2 = a2[(size_t)k * a_ks], x3 = a3[(size_t)k * a_ks];
#pragma omp simd
                for (int j = 0; j < nr; j++) {
                    c0[n0 + j] += x0 * b[j];
                    c1[n0 + j] += x1 * b[j];
                    c2[n0 + j] += x2 * b[j];
                    c3[n0 + j] += x3 * b[j];
                }
            }
        }
    }
    for (; r < M; r++) {
        const float *a0 = A + (size_t)r * a_rs;
        float *c0 = C + (size_t)r * ldc;
        if (zero)
            for (int j = 0; j < N; j++) c0[j] = 0.0f;
        for (int k = 0; k < K; k++) {
            const float *b = Bm + (size_t)k * ldb;
            float x0 = a0[(size_t)k * a_ks];
#pragma omp simd
            for (int j = 0; j < N; j++) c0[j] += x0 * b[j];
        }
    }
}

/* dst[d][c] = src[c*stride + d] for c < n, d < dc (row stride of dst: ldd). Eight source rows at
 * a time, so each destination row gets 8 contiguous floats per pass. */
ATTN_INLINE void transpose_tile(float *restrict dst, int ldd, const float *restrict src,
                                size_t stride, int n, int dc) {
    int c = 0;
    for (; c + 8 <= n; c += 8) {
        const float *s = src + (size_t)c * stride;
        for (int d = 0; d < dc; d++) {
            float *o = dst + (size_t)d * ldd + c;
            for (int i = 0; i < 8; i++) o[i] = s[(size_t)i * stride + d];
        }
    }
    for (; c < n; c++) {
        const float *s = src + (size_t)c * stride;
        for (int d = 0; d < dc; d++) dst[(size_t)d * ldd + c] = s[d];
    }
}

/* dst[c][d] = src[c*stride + d] for c < n, d < dc (row stride of dst: ATTN_DC). */
ATTN_INLINE void copy_tile(float *restrict dst, const float *restrict src, size_t stride, int n,
                           int dc) {
    for (int c = 0; c < n; c++) { /* a plain loop: memcpy of 256 bytes goes to rep movs */
        float *o = dst + (size_t)c * ATTN_DC;
        const float *s = src + (size_t)c * stride;
#pragma omp simd
        for (int d = 0; d < dc; d++) o[d] = s[d];
    }
}

/* dots[r] = x[r] . y[r] for r < M (rows at stride `stride`). */
ATTN_INLINE void row_dots(float *restrict dots, const float *x, const float *y, size_t stride,
                          int M, int D) {
    for (int r = 0; r < M; r++) {
        const float *xr = x + (size_t)r * stride, *yr = y + (size_t)r * stride;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int d = 0; d < D; d++) s += xr[d] * yr[d];
        dots[r] = s;
    }
}

/* S[r][c] = sum_d A[r*lda + d] * X[c*x_stride + d] for r < M, c < n (row stride of S: lds):
 * the scores of M query rows against n key rows (or dP against n value rows). X is transposed
 * into Xt (row stride lds) chunk by chunk of the head dimension, unless ready is set
 * (D <= ATTN_DC and Xt already holds the transposed tile). */
ATTN_INLINE void tile_scores(float *restrict S, int lds, const float *A, size_t lda, int M,
                             const float *X, size_t x_stride, int n, int D, float *restrict Xt,
                             int ready) {
    for (int d0 = 0; d0 < D; d0 += ATTN_DC) {
        int dc = D - d0 < ATTN_DC ? D - d0 : ATTN_DC;
        if (!ready) transpose_tile(Xt, lds, X + d0, x_stride, n, dc);
        mm_tile(S, (size_t)lds, A + d0, lda, 1, Xt, (size_t)lds, M, n, dc, d0 == 0);
    }
}

/* Forward of query rows i0..i0+M-1 of one (b, h). qb, ob: row i0 of q and out for that head (row
 * stride q_stride); kb, vb: position 0 of the kv head (stride kv_stride); sb: seg_start of row i0
 * (NULL: 0); lse_out: lse of row i0 (NULL: not stored). */
ATTN_CLONES
static void forward_block(float *ob, float *lse_out, const float *qb, const float *kb,
                          const float *vb, const int32_t *sb, int i0, int M, size_t q_stride,
                          size_t kv_stride, int D, float scale) {
    float S[ATTN_FBQ * ATTN_FBK], Kt[ATTN_DC * ATTN_FBK], Vc[ATTN_FBK * ATTN_DC];
    float m[ATTN_FBQ], l[ATTN_FBQ];
    int s0[ATTN_FBQ];
    int smin = i0, smax = 0;
    for (int r = 0; r < M; r++) {
        s0[r] = sb ? sb[r] : 0;
        smin = s0[r] < smin ? s0[r] : smin;
        smax = s0[r] > smax ? s0[r] : smax;
        m[r] = -INFINITY, l[r] = 0.0f;
        float *o = ob + (size_t)r * q_stride;
        for (int d = 0; d < D; d++) o[d] = 0.0f;
    }
    int kend = i0 + M; /* keys < kend */
    for (int c0 = smin; c0 < kend; c0 += ATTN_FBK) {
        int n = kend - c0 < ATTN_FBK ? kend - c0 : ATTN_FBK;
        const float *kt = kb + (size_t)c0 * kv_stride, *vt = vb + (size_t)c0 * kv_stride;
        tile_scores(S, ATTN_FBK, qb, q_stride, M, kt, kv_stride, n, D, Kt, 0);
        int masked = c0 + n - 1 > i0 || c0 < smax;
        for (int r = 0; r < M; r++) {
            float *sr = S + (size_t)r * ATTN_FBK;
            int lo = 0, hi = n; /* valid keys: c0+lo .. c0+hi-1 */
            if (masked) {
                int t = i0 + r;
                lo = s0[r] - c0 > 0 ? s0[r] - c0 : 0;
                hi = t - c0 + 1 < n ? t - c0 + 1 : n;
                if (lo >= hi) { /* no key of this tile: P = 0, state unchanged */
                    for (int c = 0; c < n; c++) sr[c] = 0.0f;
                    continue;
                }
            }
            float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
            for (int c = lo; c < hi; c++) {
                float sc = sr[c] * scale;
                sr[c] = sc;
                mx = sc > mx ? sc : mx;
            }
            float mnew = mx > m[r] ? mx : m[r];
            float alpha = m[r] == -INFINITY ? 0.0f : exp_neg(m[r] - mnew);
            m[r] = mnew;
            float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
            for (int c = 0; c < n; c++) {
                float p = c >= lo && c < hi ? exp_neg(sr[c] - mnew) : 0.0f;
                sr[c] = p;
                sum += p;
            }
            l[r] = l[r] * alpha + sum;
            if (alpha != 1.0f) {
                float *o = ob + (size_t)r * q_stride;
#pragma omp simd
                for (int d = 0; d < D; d++) o[d] *= alpha;
            }
        }
        /* out += P v, v copied chunk by chunk into a local tile */
        for (int d0 = 0; d0 < D; d0 += ATTN_DC) {
            int dc = D - d0 < ATTN_DC ? D - d0 : ATTN_DC;
            copy_tile(Vc, vt + d0, kv_stride, n, dc);
            mm_tile(ob + d0, q_stride, S, ATTN_FBK, 1, Vc, ATTN_DC, M, dc, n, 0);
        }
    }
    for (int r = 0; r < M; r++) {
        float *o = ob + (size_t)r * q_stride, inv = 1.0f / l[r];
#pragma omp simd
        for (int d = 0; d < D; d++) o[d] *= inv;
        if (lse_out) lse_out[r] = m[r] + logf(l[r]);
    }
}

void attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                       int B, int T, int Hq, int Hkv, int D, const int32_t *seg_start,
                       op_counters *counters) {
    if (B <= 0 || T <= 0 || Hq <= 0) return;
    int group = Hq / Hkv;
    float scale = 1.0f / sqrtf((float)D);
    size_t q_stride = (size_t)Hq * D, kv_stride = (size_t)Hkv * D;
    int nqb = (T + ATTN_FBQ - 1) / ATTN_FBQ;
    long n_tasks = (long)B * Hq * nqb;
    /* The last query blocks see the most keys: hand them out first. */
#pragma omp parallel for schedule(dynamic, 1)
    for (long task = 0; task < n_tasks; task++) {
        int qbi = nqb - 1 - (int)(task / ((long)B * Hq));
        int bh = (int)(task % ((long)B * Hq)), b = bh / Hq, h = bh % Hq;
        int i0 = qbi * ATTN_FBQ, M = T - i0 < ATTN_FBQ ? T - i0 : ATTN_FBQ;
        size_t qoff = ((size_t)b * T + i0) * q_stride + (size_t)h * D;
        size_t kvoff = (size_t)b * T * kv_stride + (size_t)(h / group) * D;
        forward_block(out + qoff, lse ? lse + ((size_t)b * Hq + h) * T + i0 : NULL, q + qoff,
                      k + kvoff, v + kvoff, seg_start ? seg_start + (size_t)b * T + i0 : NULL, i0,
                      M, q_stride, kv_stride, D, scale);
    }
    if (counters)
        counters->attention_flops += 2ull * 2ull * (uint64_t)D * causal_pairs(B, T, Hq, seg_start);
}

/* Backward of the query heads sharing kv head kvh of sequence b (see attention_backward). kb, vb:
 * position 0 of the kv head; dkb, dvb: the same in dk, dv (NULL: not requested), zeroed here;
 * sb: seg_start of sequence b (NULL: 0). Key tiles outer: when D <= ATTN_DC the tile's K^T, V^T
 * and K copies are made once and serve every query head and block. */
ATTN_CLONES
static void backward_kv_head(float *dq, float *dkb, float *dvb, const float *dout, const float *out,
                             const float *lse, const float *q, const float *kb, const float *vb,
                             const int32_t *sb, int b, int kvh, int group, int T, int Hq, int D,
                             size_t q_stride, size_t kv_stride, float scale) {
    float Kt[ATTN_DC * ATTN_BBK], Vt[ATTN_DC * ATTN_BBK], Kc[ATTN_BBK * ATTN_DC];
    float Qc[ATTN_BBQ * ATTN_DC], P[ATTN_BBQ * ATTN_BBK], dS[ATTN_BBQ * ATTN_BBK];
    float dbuf[ATTN_BBQ], dcache[ATTN_DI_CACHE];
    int need_dp = dq || dkb, h0 = kvh * group;
    /* sum_t2 P dP = dout . out of every row, computed once when they fit dcache (else per tile) */
    int cached = need_dp && (size_t)group * T <= ATTN_DI_CACHE;
    if (cached)
        for (int h = h0; h < h0 + group; h++) {
            size_t off = (size_t)b * T * q_stride + (size_t)h * D;
            row_dots(dcache + (size_t)(h - h0) * T, dout + off, out + off, q_stride, T, D);
        }
    int pre = D <= ATTN_DC; /* one chunk: transpose and copy the key tile once */
    for (int t = 0; t < T; t++) {
        if (dkb) memset(dkb + (size_t)t * kv_stride, 0, (size_t)D * sizeof(float));
        if (dvb) memset(dvb + (size_t)t * kv_stride, 0, (size_t)D * sizeof(float));
        if (dq)
            memset(dq + ((size_t)b * T + t) * q_stride + (size_t)kvh * group * D, 0,
                   (size_t)group * D * sizeof(float));
    }
    for (int c0 = 0; c0 < T; c0 += ATTN_BBK) {
        int n = T - c0 < ATTN_BBK ? T - c0 : ATTN_BBK;
        const float *kt = kb + (size_t)c0 * kv_stride, *vt = vb + (size_t)c0 * kv_stride;
        float *dkt = dkb ? dkb + (size_t)c0 * kv_stride : NULL;
        float *dvt = dvb ? dvb + (size_t)c0 * kv_stride : NULL;
        if (pre) {
            transpose_tile(Kt, ATTN_BBK, kt, kv_stride, n, D);
            if (need_dp) transpose_tile(Vt, ATTN_BBK, vt, kv_stride, n, D);
            if (dq) copy_tile(Kc, kt, kv_stride, n, D);
        }
        for (int h = kvh * group; h < (kvh + 1) * group; h++) {
            /* query blocks holding rows t >= c0 (the first one may start before c0) */
            for (int i0 = c0 / ATTN_BBQ * ATTN_BBQ; i0 < T; i0 += ATTN_BBQ) {
                int M = T - i0 < ATTN_BBQ ? T - i0 : ATTN_BBQ;
                int smin = i0 + M, smax = 0;
                if (sb) {
                    for (int r = 0; r < M; r++) {
                        int s = sb[i0 + r];
                        smin = s < smin ? s : smin;
                        smax = s > smax ? s : smax;
                    }
                    if (smin >= c0 + n) continue; /* no row of the block sees this tile */
                }
                size_t qoff = ((size_t)b * T + i0) * q_stride + (size_t)h * D;
                const float *qi = q + qoff, *doi = dout + qoff, *oi = out + qoff;
                const float *lsei = lse + ((size_t)b * Hq + h) * T + i0;
                const float *di = dbuf; /* dout . out */
                if (cached)
                    di = dcache + (size_t)(h - h0) * T + i0;
                else if (need_dp)
                    row_dots(dbuf, doi, oi, q_stride, M, D);
                /* P = exp(S scale - lse), 0 where masked */
                tile_scores(P, ATTN_BBK, qi, q_stride, M, kt, kv_stride, n, D, Kt, pre);
                int masked = c0 + n - 1 > i0 || c0 < smax;
                for (int r = 0; r < M; r++) {
                    float *pr = P + (size_t)r * ATTN_BBK, lse_r = lsei[r];
                    int lo = 0, hi = n;
                    if (masked) {
                        int t = i0 + r, s0 = sb ? sb[t] : 0;
                        lo = s0 - c0 > 0 ? s0 - c0 : 0;
                        hi = t - c0 + 1 < n ? t - c0 + 1 : n;
                    }
#pragma omp simd
                    for (int c = 0; c < n; c++)
                        pr[c] = c >= lo && c < hi ? exp_neg(pr[c] * scale - lse_r) : 0.0f;
                }
                /* dv[c] += sum_r P[r][c] dout[r] */
                if (dvt)
                    for (int d0 = 0; d0 < D; d0 += ATTN_DC) {
                        int dc = D - d0 < ATTN_DC ? D - d0 : ATTN_DC;
                        copy_tile(Qc, doi + d0, q_stride, M, dc);
                        mm_tile(dvt + d0, kv_stride, P, 1, ATTN_BBK, Qc, ATTN_DC, n, dc, M, 0);
                    }
                if (!need_dp) continue;
                /* dS = P (dout v^T - di) scale */
                tile_scores(dS, ATTN_BBK, doi, q_stride, M, vt, kv_stride, n, D, pre ? Vt : Kt,
                            pre);
                for (int r = 0; r < M; r++) {
                    float *sr = dS + (size_t)r * ATTN_BBK;
                    const float *pr = P + (size_t)r * ATTN_BBK;
                    float dr = di[r];
#pragma omp simd
                    for (int c = 0; c < n; c++) sr[c] = pr[c] * (sr[c] - dr) * scale;
                }
                /* dq[r] += sum_c dS[r][c] k[c] */
                if (dq)
                    for (int d0 = 0; d0 < D; d0 += ATTN_DC) {
                        int dc = D - d0 < ATTN_DC ? D - d0 : ATTN_DC;
                        if (!pre) copy_tile(Kc, kt + d0, kv_stride, n, dc);
                        mm_tile(dq + qoff + d0, q_stride, dS, ATTN_BBK, 1, Kc, ATTN_DC, M, dc, n,
                                0);
                    }
                /* dk[c] += sum_r dS[r][c] q[r] */
                if (dkt)
                    for (int d0 = 0; d0 < D; d0 += ATTN_DC) {
                        int dc = D - d0 < ATTN_DC ? D - d0 : ATTN_DC;
                        copy_tile(Qc, qi + d0, q_stride, M, dc);
                        mm_tile(dkt + d0, kv_stride, dS, 1, ATTN_BBK, Qc, ATTN_DC, n, dc, M, 0);
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
        backward_kv_head(dq, dk ? dk + kv_off : NULL, dv ? dv + kv_off : NULL, dout, out, lse, q,
                         k + kv_off, v + kv_off, seg_start ? seg_start + (size_t)b * T : NULL, b,
                         kvh, group, T, Hq, D, q_stride, kv_stride, scale);
    }
    if (counters) {
        uint64_t products = (uint64_t)need_dp + (dq != NULL) + (dk != NULL) + (dv != NULL);
        counters->attention_flops +=
            products * 2ull * (uint64_t)D * causal_pairs(B, T, Hq, seg_start);
    }
}
