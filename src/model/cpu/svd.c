/* The GaLore projector op (ops.h: galore_projector): a truncated SVD from LAPACK's dgesvd (the
 * LAPACK that OpenBLAS ships), computed in double on a double copy of the gradient. */
#include <math.h>
#include <string.h>

#include "model/cpu/ops.h"

/* LAPACK's Fortran interface (column-major; the trailing arguments are the hidden lengths of
 * the two character arguments, as gfortran passes them). */
void dgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a,
             const int *lda, double *s, double *u, const int *ldu, double *vt, const int *ldvt,
             double *work, const int *lwork, int *info, size_t jobu_len, size_t jobvt_len);

static size_t min_sz(size_t a, size_t b) {
    return a < b ? a : b;
}

/* dgesvd's minimal workspace: max(3 min(m,n) + max(m,n), 5 min(m,n)). */
static size_t svd_lwork(size_t rows, size_t cols) {
    size_t k = min_sz(rows, cols), mx = rows > cols ? rows : cols;
    return 3 * k + mx > 5 * k ? 3 * k + mx : 5 * k;
}

size_t galore_projector_scratch_floats(int rows, int cols) {
    size_t r = (size_t)rows, c = (size_t)cols, k = min_sz(r, c);
    size_t doubles = r * c + k + k * k + svd_lwork(r, c);
    return 2 * doubles + 2; /* in floats, + one double of slack for alignment */
}

/* Flips the sign of the n entries x[0], x[stride], ... so the entry of largest magnitude (the
 * first of equals) is positive. */
static void fix_sign(double *x, size_t n, size_t stride) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (fabs(x[i * stride]) > fabs(x[best * stride])) best = i;
    if (x[best * stride] < 0)
        for (size_t i = 0; i < n; i++) x[i * stride] = -x[i * stride];
}

/* Row-major G [rows, cols] is column-major G^T [cols, rows] (lda cols), whose SVD is
 * G^T = V S U^T: LAPACK's u of it is V (column j of u, contiguous, is row j of Vh) and its vt is
 * U^T (column i of vt, contiguous, is row i of U). */
int galore_projector(float *P, const float *G, int rows, int cols, int rank, float *scratch) {
    const size_t r = (size_t)rows, c = (size_t)cols, k = min_sz(r, c);
    const size_t rk = min_sz((size_t)rank, k);
    double *base = (double *)(((uintptr_t)scratch + 7) & ~(uintptr_t)7);
    double *a = base, *s = a + r * c, *vec = s + k, *work = vec + k * k;
    for (size_t i = 0; i < r * c; i++) a[i] = G[i];
    const int m = cols, n = rows, lda = cols, kk = (int)k, lwork = (int)svd_lwork(r, c), one = 1;
    int info = 0;
    if (rows >= cols) { /* P = Vh[:rank, :]: u of G^T, [k, cols] row-major */
        dgesvd_("S", "N", &m, &n, a, &lda, s, vec, &m, NULL, &one, work, &lwork, &info, 1, 1);
        if (info) return info;
        for (size_t j = 0; j < rk; j++) {
            fix_sign(vec + j * c, c, 1);
            for (size_t i = 0; i < c; i++) P[j * c + i] = (float)vec[j * c + i];
        }
    } else { /* P = U[:, :rank]: vt of G^T is U row-major [rows, k] */
        dgesvd_("N", "S", &m, &n, a, &lda, s, NULL, &one, vec, &kk, work, &lwork, &info, 1, 1);
        if (info) return info;
        for (size_t j = 0; j < rk; j++) fix_sign(vec + j, r, k);
        for (size_t i = 0; i < r; i++)
            for (size_t j = 0; j < rk; j++) P[i * rk + j] = (float)vec[i * k + j];
    }
    return 0;
}
