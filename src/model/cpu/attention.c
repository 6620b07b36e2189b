/* Causal grouped-query attention (ops.h states the math), blocked in the flash-attention-2 way:
 * no [T x T] probabilities are stored.
 *
 * Forward: one task per (b, query head, block of ATTN_FBQ query rows), the blocks with the most
 * keys handed out first. A block transposes its queries once (Qt[d][query]) and walks its keys in
 * tiles of ATTN_FBK with an online softmax (running max m and sum l per query, the output rows
 * rescaled when the max grows), then writes out = O / l and lse = m + log l. The scores are
 * computed transposed, St = K Q^T (keys x queries, K read in place as the broadcast operand), so
 * the softmax max and sum run down the keys with one query per vector lane (no horizontal
 * reductions), and O += P V takes its broadcasts from St and its rows from a copy of the V tile.
 * On the tiles that cross the diagonal, each column block of 32 queries only computes the keys
 * that some of its queries see. Backward: one task per (b, kv head), which owns dk, dv of that
 * head and dq of its query heads (no atomics); for each key tile of ATTN_BBK keys, for each query
 * head of the group and each block of ATTN_BBQ query rows that sees the tile, it recomputes
 * P = exp(S - lse) and adds dv += P^T dout, dq += dS k, dk += dS^T q with
 * dS = P (dout v^T - dout . out) / sqrt(D) (dout . out computed once per row when it fits).
 *
 * Every product is a small matrix product C[r][0:N] += sum_k A[r][k] B[k][0:N] with the rows of
 * B contiguous in a local tile (mm_tile: 4 rows x 32 columns of C in vector registers, so each B
 * row feeds 8 FMAs). In the backward the K and V tiles are transposed (Kt[d][key], Vt[d][key];
 * 16 x 16 register transposes where the CPU has AVX-512, as for the forward's Qt) and the K, q
 * and dout rows that serve as B are copied into a local tile (rows of q, k, v lie at a
 * power-of-two-ish stride Hq*D or Hkv*D and would collide in the L1 cache). The backward walks
 * the head dimension in chunks of ATTN_DC (when D <= ATTN_DC it transposes/copies a key tile once
 * for all its query blocks); the forward takes fewer query rows and keys per tile as D grows
 * (Qt and O stay within ATTN_FQT floats, the V copy within ATTN_FVC), and past ATTN_FD_HUGE one
 * query row and key at a time with q, out and v read in place, so the tiles stay bounded for any
 * D. Masks (causal, and the segment start of packed rows) are applied only on the tiles that
 * need them.
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
 * No allocation: per-thread tiles live on the stack, about 96 KB per thread in the forward (a
 * 64x64 score tile, Qt and O of 8192 floats each, a 4096-float V tile) and 80 KB in the backward
 * (four 32x128 tiles, two 32x32 score tiles and 2048 floats of dout . out). */
#include "model/cpu/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Let the AVX-512 clone fuse multiply-adds (ISO C mode leaves contraction off). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
/* and keep the short row copies inline (GCC turns them into memcpy calls otherwise) */
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif

#define ATTN_FBQ 64        /* forward: query rows per block */
#define ATTN_FBK 64        /* forward: keys per tile */
#define ATTN_FQT 8192      /* forward: floats of the Q^T and output tiles (D x query rows) */
#define ATTN_FVC 4096      /* forward: floats of the V tile (keys x D) */
#define ATTN_FD_HUGE 4096  /* forward: past this head dimension, one query row and key at a time */
#define ATTN_BBQ 32        /* backward: query rows per block */
#define ATTN_BBK 32        /* backward: keys per tile */
#define ATTN_DC 128        /* head dimensions per copied or transposed chunk */
#define ATTN_NB 32         /* columns of C per register tile in mm_tile */
#define ATTN_DI_CACHE 2048 /* backward: rows whose dout . out is kept for all key tiles */

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

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define ATTN_X86 1

/* transpose_tile for n a multiple of 16 and dc of 16, in 16 x 16 register blocks (AVX-512F: the
 * caller checks that the avx512 path is active). */
__attribute__((target("avx512f"))) static void transpose_tile_avx512(float *restrict dst, int ldd,
                                                                     const float *restrict src,
                                                                     size_t stride, int n, int dc) {
    for (int c = 0; c < n; c += 16)
        for (int d = 0; d < dc; d += 16) {
            __m512 r[16], t[16];
            for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + (size_t)(c + i) * stride + d);
            for (int i = 0; i < 16; i += 2) {
                t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
            }
            for (int i = 0; i < 16; i += 4) { /* lane L of r[i + j]: column 4L + j of 4 rows */
                r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
                r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
                r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
                r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
            }
            for (int h = 0; h < 16; h += 8)
                for (int j = 0; j < 4; j++) {
                    t[h + j] = _mm512_shuffle_f32x4(r[h + j], r[h + 4 + j], 0x88);
                    t[h + 4 + j] = _mm512_shuffle_f32x4(r[h + j], r[h + 4 + j], 0xdd);
                }
            for (int j = 0; j < 8; j++) {
                r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
                r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
            }
            for (int i = 0; i < 16; i++) _mm512_storeu_ps(dst + (size_t)(d + i) * ldd + c, r[i]);
        }
}
#endif

/* transpose_tile, by 16 x 16 register blocks on the avx512 path (the rest plainly). */
ATTN_INLINE void transpose_tile_fast(float *restrict dst, int ldd, const float *restrict src,
                                     size_t stride, int n, int dc) {
#ifdef ATTN_X86
    if (n >= 16 && dc >= 16 && badam_cpu_active() == BADAM_CPU_AVX512) {
        int n16 = n / 16 * 16, d16 = dc / 16 * 16;
        transpose_tile_avx512(dst, ldd, src, stride, n16, d16);
        if (d16 < dc)
            transpose_tile(dst + (size_t)d16 * ldd, ldd, src + d16, stride, n16, dc - d16);
        if (n16 < n)
            transpose_tile(dst + n16, ldd, src + (size_t)n16 * stride, stride, n - n16, dc);
        return;
    }
#endif
    transpose_tile(dst, ldd, src, stride, n, dc);
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
        if (!ready) transpose_tile_fast(Xt, lds, X + d0, x_stride, n, dc);
        mm_tile(S, (size_t)lds, A + d0, lda, 1, Xt, (size_t)lds, M, n, dc, d0 == 0);
    }
}

/* Softmax step of one key tile for the query columns j0..j0+15 of the transposed score tile
 * St[c][j] (c < kl keys, row stride ATTN_FBQ; only the first w columns are real, the others are
 * computed alongside so the reductions stay in registers and then dropped): scores scaled, masked
 * ones (when masked is set: key c0+c after the query t[j] or before its segment start s0[j]) out,
 * the running max m and sum l updated, St overwritten with P = exp(S - m) and the output rows O[j]
 * rescaled when the max grew. Every reduction runs down the keys, one query per vector lane. */
ATTN_INLINE void softmax_cols(float *restrict St, float *restrict O, size_t ldo, float *m, float *l,
                              const int *t, const int *s0, int j0, int w, int kl, int c0,
                              int masked, int D, float scale) {
    float mx[16], alpha[16], sum[16];
#pragma omp simd
    for (int j = 0; j < 16; j++) mx[j] = -INFINITY, sum[j] = 0.0f;
    if (masked)
        for (int c = 0; c < kl; c++) {
            float *sr = St + (size_t)c * ATTN_FBQ + j0;
            int kc = c0 + c;
#pragma omp simd
            for (int j = 0; j < 16; j++) {
                float sc = kc <= t[j0 + j] && kc >= s0[j0 + j] ? sr[j] * scale : -INFINITY;
                sr[j] = sc;
                mx[j] = sc > mx[j] ? sc : mx[j];
            }
        }
    else
        for (int c = 0; c < kl; c++) {
            float *sr = St + (size_t)c * ATTN_FBQ + j0;
#pragma omp simd
            for (int j = 0; j < 16; j++) {
                float sc = sr[j] * scale;
                sr[j] = sc;
                mx[j] = sc > mx[j] ? sc : mx[j];
            }
        }
    int rescale = 0;
#pragma omp simd reduction(| : rescale)
    for (int j = 0; j < 16; j++) {
        float mo = m[j0 + j], mn = mx[j] > mo ? mx[j] : mo;
        alpha[j] = mo == -INFINITY ? 0.0f : exp_neg(mo - mn);
        mx[j] = mn, m[j0 + j] = mn;
        rescale |= j < w && alpha[j] != 1.0f;
    }
    if (masked)
        for (int c = 0; c < kl; c++) {
            float *sr = St + (size_t)c * ATTN_FBQ + j0;
#pragma omp simd
            for (int j = 0; j < 16; j++) {
                float p = sr[j] == -INFINITY ? 0.0f : exp_neg(sr[j] - mx[j]);
                sr[j] = p;
                sum[j] += p;
            }
        }
    else
        for (int c = 0; c < kl; c++) {
            float *sr = St + (size_t)c * ATTN_FBQ + j0;
#pragma omp simd
            for (int j = 0; j < 16; j++) {
                float p = exp_neg(sr[j] - mx[j]);
                sr[j] = p;
                sum[j] += p;
            }
        }
#pragma omp simd
    for (int j = 0; j < 16; j++) l[j0 + j] = l[j0 + j] * alpha[j] + sum[j];
    if (rescale)
        for (int j = 0; j < w; j++) {
            float *o = O + (size_t)(j0 + j) * ldo, a = alpha[j];
            if (a == 1.0f) continue;
#pragma omp simd
            for (int d = 0; d < D; d++) o[d] *= a;
        }
}

/* Forward of query rows i0..i0+M-1 of one (b, h), in the transposed orientation: the scores of
 * a key tile are St = K Q^T (keys x queries, so the softmax reductions run across vector lanes)
 * and the output accumulates as Ot += V^T P^T (head dimensions x queries); Q^T and the output
 * are transposed once per block, the V tile copied (rows at a large power-of-two-ish stride would
 * collide in the L1 cache), K read in place. Causal tiles skip the column blocks of 32 queries
 * that precede a key group. qb, ob: row i0 of q and out for that head (row stride q_stride); kb,
 * vb: position 0 of the kv head (stride kv_stride); sb: seg_start of row i0 (NULL: 0); lse_out:
 * lse of row i0 (NULL: not stored). Rows of the block are taken rows at a time and keys nk at a
 * time (fewer for a large D, so the tiles stay bounded); past ATTN_FD_HUGE, one by one with Q^T,
 * Ot and V read in place. */
CPU_BODY void forward_block_body(float *ob, float *lse_out, const float *qb, const float *kb,
                                 const float *vb, const int32_t *sb, int i0, int M, size_t q_stride,
                                 size_t kv_stride, int D, float scale) {
    float St[ATTN_FBQ * ATTN_FBK], Qt[ATTN_FQT], Ol[ATTN_FQT], Vc[ATTN_FVC];
    float m[ATTN_FBQ], l[ATTN_FBQ];
    int s0[ATTN_FBQ], tq[ATTN_FBQ];
    int huge = D > ATTN_FD_HUGE;
    int rows = huge ? 1 : ATTN_FQT / D < ATTN_FBQ ? ATTN_FQT / D : ATTN_FBQ;
    int nk = huge ? 1 : ATTN_FVC / D < ATTN_FBK ? ATTN_FVC / D : ATTN_FBK;
    for (int r0 = 0; r0 < M; r0 += rows) {
        int R = M - r0 < rows ? M - r0 : rows, q0 = i0 + r0;
        const float *qr = qb + (size_t)r0 * q_stride;
        float *orow = ob + (size_t)r0 * q_stride;
        const float *qt = Qt;
        float *ot = Ol;
        size_t ldq = (size_t)R, ldo = (size_t)D;
        if (huge) {
            qt = qr, ot = orow, ldq = 1; /* one row: Q^T and O are the rows themselves */
        } else {
            transpose_tile_fast(Qt, R, qr, q_stride, R, D);
        }
        for (int r = 0; r < R; r++) {
            float *o = ot + (size_t)r * ldo;
#pragma omp simd
            for (int d = 0; d < D; d++) o[d] = 0.0f;
        }
        int smin = q0, smax = 0;
        for (int r = R; r < ATTN_FBQ; r++) s0[r] = tq[r] = 0, m[r] = -INFINITY, l[r] = 0.0f;
        if (R % 16) /* the padding columns of the last 16 */
            for (int i = 0; i < ATTN_FBQ * ATTN_FBK; i++) St[i] = 0.0f;
        for (int r = 0; r < R; r++) {
            s0[r] = sb ? sb[r0 + r] : 0;
            tq[r] = q0 + r;
            smin = s0[r] < smin ? s0[r] : smin;
            smax = s0[r] > smax ? s0[r] : smax;
            m[r] = -INFINITY, l[r] = 0.0f;
        }
        int kend = q0 + R; /* keys < kend */
        for (int c0 = smin; c0 < kend; c0 += nk) {
            int n = kend - c0 < nk ? kend - c0 : nk;
            const float *kt = kb + (size_t)c0 * kv_stride, *vt = vb + (size_t)c0 * kv_stride;
            const float *va = Vc;
            size_t ldv = (size_t)D;
            if (huge)
                va = vt, ldv = kv_stride;
            else /* a plain loop: memcpy of 256 bytes goes to a libc call */
                for (int c = 0; c < n; c++) {
                    float *o = Vc + (size_t)c * D;
                    const float *s = vt + (size_t)c * kv_stride;
#pragma omp simd
                    for (int d = 0; d < D; d++) o[d] = s[d];
                }
            int causal = c0 + n - 1 > q0, masked = causal || c0 < smax;
            /* column blocks of queries: 32, then 16, then the rest */
            for (int j0 = 0; j0 < R;) {
                int w = R - j0 >= 32 ? 32 : R - j0 >= 16 ? 16 : R - j0;
                /* keys c < kl may be seen by a query of the block */
                int kl = n;
                if (causal) kl = q0 + j0 + w - c0 < n ? q0 + j0 + w - c0 : n;
                if (kl > 0) {
                    mm_tile(St + j0, ATTN_FBQ, kt, kv_stride, 1, qt + j0, ldq, kl, w, D, 1);
                    softmax_cols(St, ot, ldo, m, l, tq, s0, j0, w < 16 ? w : 16, kl, c0, masked, D,
                                 scale);
                    if (w == 32)
                        softmax_cols(St, ot, ldo, m, l, tq, s0, j0 + 16, 16, kl, c0, masked, D,
                                     scale);
                    /* O[j] += sum_c P[c][j] v[c] */
                    mm_tile(ot + (size_t)j0 * ldo, ldo, St + j0, 1, ATTN_FBQ, va, ldv, w, D, kl, 0);
                }
                j0 += w;
            }
        }
        for (int r = 0; r < R; r++) {
            float *o = orow + (size_t)r * q_stride, inv = 1.0f / l[r];
            const float *oi = ot + (size_t)r * ldo;
#pragma omp simd
            for (int d = 0; d < D; d++) o[d] = oi[d] * inv;
            if (lse_out) lse_out[r0 + r] = m[r] + logf(l[r]);
        }
    }
}
CPU_VARIANTS_VOID(forward_block,
                  (float *ob, float *lse_out, const float *qb, const float *kb, const float *vb,
                   const int32_t *sb, int i0, int M, size_t q_stride, size_t kv_stride, int D,
                   float scale),
                  (ob, lse_out, qb, kb, vb, sb, i0, M, q_stride, kv_stride, D, scale))

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
CPU_BODY void backward_kv_head_body(float *dq, float *dkb, float *dvb, const float *dout,
                                    const float *out, const float *lse, const float *q,
                                    const float *kb, const float *vb, const int32_t *sb, int b,
                                    int kvh, int group, int T, int Hq, int D, size_t q_stride,
                                    size_t kv_stride, float scale) {
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
            transpose_tile_fast(Kt, ATTN_BBK, kt, kv_stride, n, D);
            if (need_dp) transpose_tile_fast(Vt, ATTN_BBK, vt, kv_stride, n, D);
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
CPU_VARIANTS_VOID(backward_kv_head,
                  (float *dq, float *dkb, float *dvb, const float *dout, const float *out,
                   const float *lse, const float *q, const float *kb, const float *vb,
                   const int32_t *sb, int b, int kvh, int group, int T, int Hq, int D,
                   size_t q_stride, size_t kv_stride, float scale),
                  (dq, dkb, dvb, dout, out, lse, q, kb, vb, sb, b, kvh, group, T, Hq, D, q_stride,
                   kv_stride, scale))

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
