/* Kernel microbenchmark: linear (bf16 weights: native bf16 GEMM or the portable path with
 * BADAM_GEMM=fp32), the fused LM head + loss (bf16 against fp32 weights, loss and dh as training
 * runs it) and causal attention forward/backward, at the shapes of the compare_torch configs.
 * Build: see bench/ops/run.sh. Prints GFLOP/s per op (best of a few repeats).
 * BENCH_CONVERT_ONLY=1: only the bf16 -> fp32 weight conversion, on every CPU path. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "badam/cpu.h"
#include "model/cpu/ops.h"

/* The bf16 GEMM state of the kernels under test (one CPU backend context's worth). */
static gemm_bf16_ctx *g_gemm;

static float *randf(size_t n) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;
    return x;
}

static void bench_linear(int n, int in, int out) {
    float *x = randf((size_t)n * in), *y = randf((size_t)n * out), *w32 = randf((size_t)out * in);
    uint16_t *w = malloc((size_t)out * in * 2);
    badam_convert(w, BADAM_DTYPE_BF16, w32, BADAM_DTYPE_F32, (size_t)out * in);
    float *scratch = malloc(linear_scratch_floats(in > out ? in : out) * sizeof(float));
    float *dx = randf((size_t)n * in);
    double best_f = 1e9, best_b = 1e9;
    for (int r = 0; r < 5; r++) {
        double t0 = omp_get_wtime();
        linear_forward(y, x, w, BADAM_DTYPE_BF16, NULL, n, in, out, scratch, NULL, g_gemm);
        double t1 = omp_get_wtime();
        linear_backward_input(dx, y, w, BADAM_DTYPE_BF16, n, in, out, scratch, NULL, g_gemm);
        double t2 = omp_get_wtime();
        if (t1 - t0 < best_f) best_f = t1 - t0;
        if (t2 - t1 < best_b) best_b = t2 - t1;
    }
    double fl = 2.0 * n * in * out;
    printf(
        "linear bf16 n=%d in=%d out=%d (%s): forward %.0f GFLOP/s, backward_input %.0f GFLOP/s\n",
        n, in, out, gemm_bf16_available(g_gemm) ? "native bf16" : "portable fp32",
        fl / best_f / 1e9, fl / best_b / 1e9);
    free(x), free(y), free(w32), free(w), free(scratch), free(dx);
}

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* lm_head_loss with dh (no dW), bf16 then fp32 weights, alternately; best wall and CPU seconds
 * (all threads) of `reps` calls each. */
static void bench_lm_head(int n, int C, int V, int chunk, int reps) {
    float *h = randf((size_t)n * C), *w32 = randf((size_t)V * C), *dh = randf((size_t)n * C);
    uint16_t *w = malloc((size_t)V * C * 2);
    badam_convert(w, BADAM_DTYPE_BF16, w32, BADAM_DTYPE_F32, (size_t)V * C);
    int32_t *targets = malloc((size_t)n * sizeof(int32_t));
    for (int i = 0; i < n; i++) targets[i] = rand() % V;
    float *ws = malloc(lm_head_loss_workspace_floats(chunk, C, V) * sizeof(float));
    double wall[2] = {1e9, 1e9}, cpu[2] = {1e9, 1e9};
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            double t0 = omp_get_wtime(), c0 = cpu_seconds();
            lm_head_loss(dh, NULL, h, k ? (const void *)w32 : w,
                         k ? BADAM_DTYPE_F32 : BADAM_DTYPE_BF16, targets, n, C, V, chunk, 1.0f, ws,
                         NULL, NULL, g_gemm);
            double t1 = omp_get_wtime(), c1 = cpu_seconds();
            if (t1 - t0 < wall[k]) wall[k] = t1 - t0;
            if (c1 - c0 < cpu[k]) cpu[k] = c1 - c0;
        }
    }
    printf("lm_head_loss n=%d C=%d V=%d chunk=%d (dh, no dW; %s): bf16 %.1f ms (cpu %.1f ms), "
           "fp32 %.1f ms (cpu %.1f ms)\n",
           n, C, V, chunk, gemm_bf16_available(g_gemm) ? "native bf16" : "portable fp32",
           wall[0] * 1e3, cpu[0] * 1e3, wall[1] * 1e3, cpu[1] * 1e3);
    free(h), free(w32), free(dh), free(w), free(targets), free(ws);
}

/* bf16 -> fp32 conversion (badam_convert) of n values, per CPU path the machine runs: best
 * wall ms of `reps` calls and GB/s of bytes read + written. n = 7077888 is one 130m layer's
 * matrices (4 x 768^2 + 3 x 768 x 2048), 24576000 the 130m LM head, 196608 one 256-row tile of
 * a 768-wide weight (what linear.c and lm_head_online.c convert at a time: cache-resident). */
static void bench_convert(size_t n, int reps) {
    uint16_t *src = malloc(n * 2);
    float *dst = malloc(n * 4);
    for (size_t i = 0; i < n; i++) src[i] = (uint16_t)rand();
    memset(dst, 0, n * 4);
    badam_cpu_path before = badam_cpu_active();
    for (int p = 0; p < BADAM_CPU_PATH_COUNT; p++) {
        badam_error err = {0};
        if (badam_cpu_set_path((badam_cpu_path)p, &err) != BADAM_OK) continue;
        double best = 1e9;
        for (int r = 0; r < reps; r++) {
            double t0 = omp_get_wtime();
            badam_convert(dst, BADAM_DTYPE_F32, src, BADAM_DTYPE_BF16, n);
            double t1 = omp_get_wtime();
            if (t1 - t0 < best) best = t1 - t0;
        }
        printf("convert bf16->f32 n=%zu %s: %.3f ms, %.1f GB/s\n", n,
               badam_cpu_path_name((badam_cpu_path)p), best * 1e3, (double)n * 6 / best / 1e9);
    }
    badam_error err = {0};
    badam_cpu_set_path(before, &err);
    free(src), free(dst);
}

static void bench_attention(int B, int T, int Hq, int Hkv, int D) {
    size_t nq = (size_t)B * T * Hq * D, nk = (size_t)B * T * Hkv * D;
    float *q = randf(nq), *k = randf(nk), *v = randf(nk), *o = randf(nq), *dout = randf(nq);
    float *dq = randf(nq), *dk = randf(nk), *dv = randf(nk);
    float *lse = malloc((size_t)B * Hq * T * sizeof(float));
    double best_f = 1e9, best_b = 1e9;
    for (int r = 0; r < 5; r++) {
        double t0 = omp_get_wtime();
        attention_forward(o, lse, q, k, v, B, T, Hq, Hkv, D, NULL, NULL);
        double t1 = omp_get_wtime();
        attention_backward(dq, dk, dv, dout, o, lse, q, k, v, B, T, Hq, Hkv, D, NULL, NULL);
        double t2 = omp_get_wtime();
        if (t1 - t0 < best_f) best_f = t1 - t0;
        if (t2 - t1 < best_b) best_b = t2 - t1;
    }
    double pairs = (double)B * Hq * T * (T + 1) / 2;
    printf(
        "attention B=%d T=%d Hq=%d Hkv=%d D=%d: forward %.2f ms (%.1f GFLOP/s), backward %.2f ms "
        "(%.1f GFLOP/s)\n",
        B, T, Hq, Hkv, D, best_f * 1e3, 4 * D * pairs / best_f / 1e9, best_b * 1e3,
        8 * D * pairs / best_b / 1e9);
    free(q), free(k), free(v), free(o), free(dout), free(dq), free(dk), free(dv), free(lse);
}

int main(void) {
    g_gemm = gemm_bf16_ctx_create();
    if (getenv("BENCH_CONVERT_ONLY")) {
        bench_convert(196608, 200);
        bench_convert(7077888, 15);
        bench_convert(24576000, 7);
        gemm_bf16_ctx_free(g_gemm);
        return 0;
    }
    if (getenv("BENCH_LM_HEAD_ONLY")) {
        bench_lm_head(512, 768, 32000, 256, 7);
        gemm_bf16_ctx_free(g_gemm);
        return 0;
    }
    bench_lm_head(512, 768, 32000, 256, 5);
    bench_linear(512, 768, 2048);
    bench_linear(256, 2048, 8192);
    bench_linear(256, 8192, 2048);
    bench_attention(2, 256, 12, 12, 64);
    bench_attention(1, 256, 32, 8, 64);
    gemm_bf16_ctx_free(g_gemm);
    return 0;
}
