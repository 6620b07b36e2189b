/* Linear layers on OpenBLAS sgemm (ops.h states the math). fp32 weights go to sgemm directly;
 * bf16/f16 weights are converted LINEAR_WEIGHT_TILE_ROWS rows at a time into scratch and each
 * tile is one sgemm on the matching columns of y (forward) or of dy (backward input).
 * sgemm is never called inside an OpenMP region: OpenBLAS threads itself. */
#include "model/cpu/ops.h"

#include <cblas.h>
#include <string.h>

size_t linear_scratch_floats(int in) {
    return (size_t)LINEAR_WEIGHT_TILE_ROWS * (size_t)in;
}

static void count_gemm(op_counters *counters, int n, int in, int out) {
    if (counters) counters->gemm_flops += 2ull * (uint64_t)n * (uint64_t)in * (uint64_t)out;
}

/* Converts rows [r0, r0+rows) of W[*, in] to fp32 in scratch. Serial on purpose: OpenMP workers
 * spin for a while after a parallel region and take the cores from OpenBLAS's own threads during
 * the sgemm that follows (measured: bf16 linear at ~55 GFLOP/s with a parallel conversion, ~145
 * serial, fp32 ~190, 2 cores). */
static void convert_weight_tile(float *scratch, const void *w, badam_dtype w_dtype, int r0,
                                int rows, int in) {
    const char *src = (const char *)w + (size_t)r0 * in * badam_dtype_size(w_dtype);
    badam_convert(scratch, BADAM_DTYPE_F32, src, w_dtype, (size_t)rows * in);
}

void linear_forward(float *y, const float *x, const void *w, badam_dtype w_dtype, const float *b,
                    int n, int in, int out, float *scratch, op_counters *counters) {
    if (n <= 0 || out <= 0) return;
    if (b) {
#pragma omp parallel for
        for (int i = 0; i < n; i++) memcpy(y + (size_t)i * out, b, (size_t)out * sizeof(float));
    } else if (in <= 0) {
        memset(y, 0, (size_t)n * out * sizeof(float));
    }
    if (in <= 0) return;
    float beta = b ? 1.0f : 0.0f;
    if (w_dtype == BADAM_DTYPE_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in,
                    (const float *)w, in, beta, y, out);
    } else {
        for (int r0 = 0; r0 < out; r0 += LINEAR_WEIGHT_TILE_ROWS) {
            int rows = out - r0 < LINEAR_WEIGHT_TILE_ROWS ? out - r0 : LINEAR_WEIGHT_TILE_ROWS;
            convert_weight_tile(scratch, w, w_dtype, r0, rows, in);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, rows, in, 1.0f, x, in, scratch,
                        in, beta, y + r0, out);
        }
    }
    count_gemm(counters, n, in, out);
}

void linear_backward_input(float *dx, const float *dy, const void *w, badam_dtype w_dtype, int n,
                           int in, int out, float *scratch, op_counters *counters) {
    if (!dx || n <= 0 || in <= 0 || out <= 0) return;
    if (w_dtype == BADAM_DTYPE_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dy, out,
                    (const float *)w, in, 1.0f, dx, in);
    } else {
        for (int r0 = 0; r0 < out; r0 += LINEAR_WEIGHT_TILE_ROWS) {
            int rows = out - r0 < LINEAR_WEIGHT_TILE_ROWS ? out - r0 : LINEAR_WEIGHT_TILE_ROWS;
            convert_weight_tile(scratch, w, w_dtype, r0, rows, in);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, rows, 1.0f, dy + r0, out,
                        scratch, in, 1.0f, dx, in);
        }
    }
    count_gemm(counters, n, in, out);
}

void linear_backward_weight(float *dw, float *db, const float *dy, const float *x, int n, int in,
                            int out, op_counters *counters) {
    if (n <= 0 || out <= 0) return;
    if (dw && in > 0) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.0f, dy, out, x, in, 1.0f,
                    dw, in);
        count_gemm(counters, n, in, out);
    }
    if (db) {
#pragma omp parallel for
        for (int j = 0; j < out; j++) {
            float acc = 0.0f;
            for (int i = 0; i < n; i++) acc += dy[(size_t)i * out + j];
            db[j] += acc;
        }
    }
}
