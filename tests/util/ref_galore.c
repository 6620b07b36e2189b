/* The reference backend's GaLore projector (ref_backend.h): the truncated SVD by one-sided
 * (Hestenes) Jacobi rotations in double, written from the op's contract in model/cpu/ops.h
 * (galore_projector) and nothing else: no LAPACK. */
#include <math.h>
#include <stdlib.h>

#include "ref_backend.h"

size_t ref_galore_scratch(int rows, int cols) {
    (void)rows, (void)cols;
    return 0; /* the oracle allocates its own host memory */
}

/* One-sided Jacobi on B [m, n] (column j at B + j*m): rotates column pairs until all are
 * orthogonal, accumulating the rotations in V [n, n] (column j at V + j*n). Then B = U S and
 * the columns of V are the right singular vectors, |B[:, j]| the singular values. */
static void jacobi(double *B, double *V, size_t m, size_t n) {
    for (size_t i = 0; i < n * n; i++) V[i] = 0;
    for (size_t j = 0; j < n; j++) V[j * n + j] = 1;
    for (int sweep = 0; sweep < 100; sweep++) {
        int rotated = 0;
        for (size_t p = 0; p + 1 < n; p++)
            for (size_t q = p + 1; q < n; q++) {
                double *bp = B + p * m, *bq = B + q * m, al = 0, be = 0, ga = 0;
                for (size_t i = 0; i < m; i++)
                    al += bp[i] * bp[i], be += bq[i] * bq[i], ga += bp[i] * bq[i];
                if (fabs(ga) <= 1e-15 * sqrt(al * be) || ga == 0) continue;
                rotated = 1;
                double z = (be - al) / (2 * ga);
                double t = (z >= 0 ? 1.0 : -1.0) / (fabs(z) + sqrt(1 + z * z));
                double c = 1 / sqrt(1 + t * t), s = c * t;
                for (size_t i = 0; i < m; i++) {
                    double x = bp[i], y = bq[i];
                    bp[i] = c * x - s * y, bq[i] = s * x + c * y;
                }
                double *vp = V + p * n, *vq = V + q * n;
                for (size_t i = 0; i < n; i++) {
                    double x = vp[i], y = vq[i];
                    vp[i] = c * x - s * y, vq[i] = s * x + c * y;
                }
            }
        if (!rotated) break;
    }
}

/* The singular vectors of the smaller side: right ones of G (rows >= cols) or of G^T (the left
 * ones of G), largest singular value first, each sign-fixed, written as the op lays P out. */
int ref_galore_projector(backend *be, float *P, const float *G, int rows, int cols, int rank,
                         float *scratch) {
    (void)be, (void)scratch;
    const int wide = rows < cols;
    const size_t m = (size_t)(wide ? cols : rows), n = (size_t)(wide ? rows : cols);
    const size_t k = (size_t)rank < n ? (size_t)rank : n;
    double *B = malloc(sizeof(double) * m * n), *V = malloc(sizeof(double) * n * n);
    double *sv = malloc(sizeof(double) * n);
    int *taken = calloc(n, sizeof(int));
    if (!B || !V || !sv || !taken) return free(B), free(V), free(sv), free(taken), -1;
    for (size_t i = 0; i < (size_t)rows; i++) /* B: columns = columns of G, or of G^T */
        for (size_t j = 0; j < (size_t)cols; j++)
            B[wide ? i * m + j : j * m + i] = G[i * (size_t)cols + j];
    jacobi(B, V, m, n);
    for (size_t j = 0; j < n; j++) {
        double s = 0;
        for (size_t i = 0; i < m; i++) s += B[j * m + i] * B[j * m + i];
        sv[j] = s;
    }
    for (size_t out = 0; out < k; out++) {
        size_t best = n;
        for (size_t j = 0; j < n; j++)
            if (!taken[j] && (best == n || sv[j] > sv[best])) best = j;
        taken[best] = 1;
        double *v = V + best * n;
        size_t big = 0;
        for (size_t i = 1; i < n; i++)
            if (fabs(v[i]) > fabs(v[big])) big = i;
        double sign = v[big] < 0 ? -1 : 1;
        for (size_t i = 0; i < n; i++) {
            float x = (float)(sign * v[i]);
            if (wide)
                P[i * k + out] = x; /* U[:, :k], [rows, k] */
            else
                P[out * n + i] = x; /* Vh[:k, :], [k, cols] */
        }
    }
    free(B), free(V), free(sv), free(taken);
    return 0;
}
