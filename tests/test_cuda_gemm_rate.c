/* The CUDA backend's bf16 GEMM at a size that fills the GPU: linear_forward with a bf16 weight
 * in device memory, y[n, out] = x[n, in] W^T (x rounded to bf16, fp32 accumulation, cuBLASLt).
 * Checks 64 sampled outputs against dot products in double of the same rounded operands (within
 * 1e-3 of the sum of the products' magnitudes: fp32 accumulation of 8192 terms), then prints
 * the rate in TFLOP/s over 20 timed calls after 3 warm-ups (the bf16 peak that
 * scripts/device_check.sh sets the training rate against). Exits 77 (skipped) without the CUDA
 * build or without a GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model/cuda/cuda_backend.h"
#include "testutil.h"

enum { N = 8192, IN = 8192, OUT = 8192, WARM = 3, REPS = 20 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float bf16_round(float x) {
    return badam_bf16_to_f32(badam_f32_to_bf16(x));
}

/* The largest error of 64 sampled outputs, relative to the sum of |products| of their row. */
static double sampled_error(test_rng *rng, const float *x, const uint16_t *w, const float *y) {
    double worst = 0.0;
    for (int s = 0; s < 64; s++) {
        size_t i = test_rng_u32(rng) % N, o = test_rng_u32(rng) % OUT;
        double ref = 0.0, nrm = 0.0;
        for (size_t k = 0; k < IN; k++) {
            double a = bf16_round(x[i * IN + k]), b = badam_bf16_to_f32(w[o * IN + k]);
            ref += a * b, nrm += fabs(a * b);
        }
        double e = fabs(y[i * OUT + o] - ref) / (nrm > 0 ? nrm : 1.0);
        if (e > worst) worst = e;
    }
    return worst;
}

static void test_rate(void) {
    badam_error err = {0};
    backend *be = NULL;
    CHECK_OK(backend_cuda_create(&be, &err), &err);
    test_rng rng;
    test_rng_seed(&rng, 3);
    size_t nx = (size_t)N * IN, nw = (size_t)OUT * IN, ny = (size_t)N * OUT;
    float *x = malloc(sizeof(float) * nx), *w32 = malloc(sizeof(float) * nw);
    float *y = malloc(sizeof(float) * ny);
    uint16_t *w = malloc(2 * nw);
    test_fill_normal(&rng, x, nx, 1.0f);
    test_fill_normal(&rng, w32, nw, 0.02f);
    badam_convert(w, BADAM_DTYPE_BF16, w32, BADAM_DTYPE_F32, nw);
    float *dx = BE(be, alloc, BADAM_MEM_ACTIVATIONS, sizeof(float) * nx);
    float *dy = BE(be, alloc, BADAM_MEM_ACTIVATIONS, sizeof(float) * ny);
    void *dw = BE(be, alloc, BADAM_MEM_WEIGHTS, 2 * nw);
    BE(be, upload, dx, x, sizeof(float) * nx);
    BE(be, upload, dw, w, 2 * nw);
    double t0 = 0.0;
    for (int r = 0; r < WARM + REPS; r++) {
        if (r == WARM) {
            BE(be, download, y, dy, sizeof(float)); /* synchronises */
            t0 = now_s();
        }
        BE(be, linear_forward, dy, dx, dw, BADAM_DTYPE_BF16, NULL, N, IN, OUT, NULL);
    }
    BE(be, download, y, dy, sizeof(float) * ny);
    double dt = now_s() - t0, tflops = 2.0 * N * IN * OUT * REPS / dt / 1e12;
    CHECK_OK(backend_cuda_status(be, &err), &err);
    double worst = sampled_error(&rng, x, w, y);
    printf("cuBLASLt bf16 GEMM %dx%dx%d: %.1f TFLOP/s (%d calls in %.3f s, rounding of x "
           "included); worst sampled error %.3g\n",
           N, IN, OUT, tflops, REPS, dt, worst);
    CHECKF(worst <= 1e-3, "bf16 GEMM: sampled error %.3g", worst);
    free(x), free(w32), free(w), free(y);
    BE(be, free, dx), BE(be, free, dy), BE(be, free, dw);
    backend_destroy(be);
}

int main(void) {
    badam_error err = {0};
    backend *be = NULL;
    setenv("BADAM_CUDA_POOL_MB", "8192", 0);
    if (backend_cuda_create(&be, &err)) {
        printf("SKIP: %s\n", err.message);
        return 77;
    }
    backend_destroy(be);
    RUN_TEST(test_rate);
    return test_result();
}
