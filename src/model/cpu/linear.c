/* Linear layers on OpenBLAS sgemm (ops.h states the math). fp32 weights go to sgemm directly;
 * bf16/f16 weights are converted LINEAR_WEIGHT_TILE_ROWS rows at a time into scratch and each
 * tile is one sgemm on the matching columns of y (forward) or of dy (backward input).
 * sgemm is never called inside an OpenMP region: OpenBLAS threads itself.
 *
 * bf16 weights take the native bf16 GEMM when gemm_bf16_available(gemm) (gemm_bf16.c): the
 * activations are rounded to bf16 into scratch, at most 2 * LINEAR_WEIGHT_TILE_ROWS * in of them
 * at a time (row blocks of x in forward; row x column blocks of dy in backward), and the weight
 * is read in place, never converted. */
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

static void linear_forward_f32(float *y, const float *x, const void *w, badam_dtype w_dtype,
                               const float *b, int n, int in, int out, float *scratch);

/* Rows of x (forward) / elements of dy (backward) the bf16 path converts at a time. */
static size_t bf16_capacity(int in) {
    return 2 * (size_t)LINEAR_WEIGHT_TILE_ROWS * (size_t)in;
}

/* y = x W^T (+ y when accumulate) through the bf16 GEMM; returns 0, or -1 with y untouched on
 * the first block (then nothing has been written). */
static int linear_forward_bf16(gemm_bf16_ctx *gemm, float *y, const float *x, const uint16_t *w,
                               int n, int in, int out, int accumulate, float *scratch) {
    uint16_t *xb = (uint16_t *)scratch;
    int mr = (int)(bf16_capacity(in) / (size_t)in);
    for (int r0 = 0; r0 < n; r0 += mr) {
        int rows = n - r0 < mr ? n - r0 : mr;
        convert_f32_to_bf16(xb, x + (size_t)r0 * in, (size_t)rows * in);
        if (gemm_bf16(gemm, rows, out, in, xb, in, 0, w, in, 1, y + (size_t)r0 * out, out,
                      accumulate))
            return -1;
    }
    return 0;
}

void linear_forward(float *y, const float *x, const void *w, badam_dtype w_dtype, const float *b,
                    int n, int in, int out, float *scratch, op_counters *counters,
                    gemm_bf16_ctx *gemm) {
    if (n <= 0 || out <= 0) return;
    if (w_dtype == BADAM_DTYPE_BF16 && in > 0 && gemm_bf16_available(gemm)) {
        if (b) {
#pragma omp parallel for
            for (int i = 0; i < n; i++) memcpy(y + (size_t)i * out, b, (size_t)out * sizeof(float));
        }
        if (!linear_forward_bf16(gemm, y, x, (const uint16_t *)w, n, in, out, b != NULL, scratch)) {
            count_gemm(counters, n, in, out);
            return;
        }
    }
    linear_forward_f32(y, x, w, w_dtype, b, n, in, out, scratch);
    if (in > 0) count_gemm(counters, n, in, out);
}

static void linear_forward_f32(float *y, const float *x, const void *w, badam_dtype w_dtype,
                               const float *b, int n, int in, int out, float *scratch) {
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
}

/* dx[n,in] += dy[n, k0:k0+kc] @ W[k0:k0+kc, :] with the weight rows converted tile by tile
 * (the portable path for one block of the bf16 path, or all of a non-bf16 weight). */
static void backward_input_tiles(float *dx, const float *dy, const void *w, badam_dtype w_dtype,
                                 int n, int in, int out, int k0, int kc, float *scratch) {
    for (int r0 = k0; r0 < k0 + kc; r0 += LINEAR_WEIGHT_TILE_ROWS) {
        int rows = k0 + kc - r0 < LINEAR_WEIGHT_TILE_ROWS ? k0 + kc - r0 : LINEAR_WEIGHT_TILE_ROWS;
        convert_weight_tile(scratch, w, w_dtype, r0, rows, in);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, rows, 1.0f, dy + r0, out,
                    scratch, in, 1.0f, dx, in);
    }
}

void linear_backward_input(float *dx, const float *dy, const void *w, badam_dtype w_dtype, int n,
                           int in, int out, float *scratch, op_counters *counters,
                           gemm_bf16_ctx *gemm) {
    if (!dx || n <= 0 || in <= 0 || out <= 0) return;
    if (w_dtype == BADAM_DTYPE_BF16 && gemm_bf16_available(gemm)) {
        /* Blocks of mr rows x kc columns of dy, converted to bf16, fill the scratch. */
        size_t cap = bf16_capacity(in);
        int mr = n < 256 ? n : 256;
        size_t kcap = cap / (size_t)mr;
        int kc = kcap >= (size_t)out ? out : (int)(kcap / 16 * 16);
        if (kc >= 16) {
            uint16_t *db = (uint16_t *)scratch;
            const uint16_t *wb = (const uint16_t *)w;
            for (int k0 = 0; k0 < out; k0 += kc) {
                int kk = out - k0 < kc ? out - k0 : kc;
                for (int r0 = 0; r0 < n; r0 += mr) {
                    int rows = n - r0 < mr ? n - r0 : mr;
                    convert_f32_to_bf16_2d(db, kk, dy + (size_t)r0 * out + k0, out, rows, kk);
                    if (gemm_bf16(gemm, rows, in, kk, db, kk, 0, wb + (size_t)k0 * in, in, 0,
                                  dx + (size_t)r0 * in, in, 1))
                        backward_input_tiles(dx + (size_t)r0 * in, dy + (size_t)r0 * out, w,
                                             w_dtype, rows, in, out, k0, kk, scratch);
                }
            }
            count_gemm(counters, n, in, out);
            return;
        }
    }
    if (w_dtype == BADAM_DTYPE_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dy, out,
                    (const float *)w, in, 1.0f, dx, in);
    } else {
        backward_input_tiles(dx, dy, w, w_dtype, n, in, out, 0, out, scratch);
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

/* dW += dy^T x through the bf16 GEMM, kc token rows at a time: dy and x rows rounded to bf16 in
 * scratch ([kc,out] then [kc,in]), then dW[out,in] += dyb^T xb (A transposed). Returns -1 with dW
 * untouched when the scratch holds fewer than 16 rows or no bf16 GEMM runs on the first block. */
static int backward_weight_bf16(gemm_bf16_ctx *gemm, float *dw, const float *dy, const float *x,
                                int n, int in, int out, float *scratch, size_t scratch_floats) {
    size_t per_row = (size_t)in + (size_t)out; /* halfwords */
    size_t rows_fit = 2 * scratch_floats / per_row;
    int kc = rows_fit >= (size_t)n ? n : (int)(rows_fit / 16 * 16);
    if (kc < 16 && kc < n) return -1;
    uint16_t *dyb = (uint16_t *)scratch, *xb = dyb + (size_t)kc * out;
    for (int k0 = 0; k0 < n; k0 += kc) {
        int rows = n - k0 < kc ? n - k0 : kc;
        convert_f32_to_bf16(dyb, dy + (size_t)k0 * out, (size_t)rows * out);
        convert_f32_to_bf16(xb, x + (size_t)k0 * in, (size_t)rows * in);
        if (gemm_bf16(gemm, out, in, rows, dyb, out, 1, xb, in, 0, dw, in, 1)) {
            if (k0 == 0) return -1;
            /* the GEMM worked before: finish this block exactly rather than lose it */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, rows, 1.0f,
                        dy + (size_t)k0 * out, out, x + (size_t)k0 * in, in, 1.0f, dw, in);
        }
    }
    return 0;
}

void linear_backward_weight_stored(float *dw, float *db, const float *dy, const float *x,
                                   badam_dtype w_dtype, int n, int in, int out, float *scratch,
                                   size_t scratch_floats, op_counters *counters,
                                   gemm_bf16_ctx *gemm) {
    if (n <= 0 || out <= 0) return;
    if (dw && in > 0 && w_dtype == BADAM_DTYPE_BF16 && gemm_bf16_available(gemm) &&
        !backward_weight_bf16(gemm, dw, dy, x, n, in, out, scratch, scratch_floats)) {
        count_gemm(counters, n, in, out);
        dw = NULL; /* done; the bias (if any) below */
    }
    linear_backward_weight(dw, db, dy, x, n, in, out, counters);
}
