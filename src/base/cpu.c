/* CPU feature detection and the active kernel path (include/badam/cpu.h). The active path and the
 * dispatch counters are the process's only CPU state; they live here, in base. */
#include "badam/cpu.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu_dispatch.h"

#if defined(__x86_64__) && defined(__GNUC__)
/* BMI2, F16C and MOVBE from CPUID itself: clang 14's __builtin_cpu_supports does not know them. */
static int cpuid_bmi2_f16c_movbe(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_F16C) || !(c & bit_MOVBE)) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & bit_BMI2) != 0;
}
#endif

badam_cpu_features badam_cpu_detect(void) {
    badam_cpu_features f = {0, 0, 0};
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    f.avx2_fma =
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpuid_bmi2_f16c_movbe();
    f.avx512 = f.avx2_fma && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512cd") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    f.avx512_bf16 = f.avx512 && __builtin_cpu_supports("avx512bf16");
#endif
    return f;
}

badam_cpu_path badam_cpu_best(void) {
    badam_cpu_features f = badam_cpu_detect();
    return f.avx512 ? BADAM_CPU_AVX512 : f.avx2_fma ? BADAM_CPU_AVX2 : BADAM_CPU_PORTABLE;
}

int badam_cpu_supports(badam_cpu_path path) {
    return path >= BADAM_CPU_PORTABLE && path <= badam_cpu_best();
}

const char *badam_cpu_path_name(badam_cpu_path path) {
    switch (path) {
    case BADAM_CPU_PORTABLE:
        return "portable";
    case BADAM_CPU_AVX2:
        return "avx2";
    case BADAM_CPU_AVX512:
        return "avx512";
    default:
        return "?";
    }
}

static _Atomic int g_path = -1; /* the active path; -1 until first read */
static _Atomic int g_trace;
static _Atomic uint64_t g_counts[BADAM_CPU_PATH_COUNT];

/* Parses BADAM_CPU into *path (the best path when unset, empty or "auto"). */
static badam_status path_from_env(badam_cpu_path *path, badam_error *err) {
    const char *env = getenv("BADAM_CPU");
    *path = badam_cpu_best();
    if (!env || !*env || !strcmp(env, "auto")) return BADAM_OK;
    badam_cpu_path want = BADAM_CPU_PATH_COUNT;
    for (int p = 0; p < BADAM_CPU_PATH_COUNT; p++)
        if (!strcmp(env, badam_cpu_path_name((badam_cpu_path)p))) want = (badam_cpu_path)p;
    if (want == BADAM_CPU_PATH_COUNT)
        return badam_fail(err, BADAM_E_INVALID,
                          "environment variable BADAM_CPU='%s': expected portable, avx2, avx512 "
                          "or auto",
                          env);
    if (!badam_cpu_supports(want))
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "environment variable BADAM_CPU=%s: this CPU cannot run that path (best: "
                          "%s)",
                          env, badam_cpu_path_name(*path));
    *path = want;
    return BADAM_OK;
}

static void init_from_env(void) {
    badam_cpu_path path;
    if (path_from_env(&path, NULL) != BADAM_OK) path = badam_cpu_best();
    atomic_store(&g_path, (int)path);
}

/* BADAM_GEMM: unset, empty, auto (the best GEMM of the path), fp32 (the fp32 GEMM on every
 * path) or bf16 (the native bf16 GEMM where built in); any other value is refused, not ignored. */
static badam_status gemm_from_env(badam_error *err) {
    const char *env = getenv("BADAM_GEMM");
    if (!env || !*env || !strcmp(env, "auto") || !strcmp(env, "fp32") || !strcmp(env, "bf16"))
        return BADAM_OK;
    return badam_fail(err, BADAM_E_INVALID,
                      "environment variable BADAM_GEMM='%s': expected fp32, bf16 or auto", env);
}

badam_status badam_cpu_check_env(badam_error *err) {
    badam_cpu_path path;
    badam_status st = gemm_from_env(err);
    if (st) return st;
    st = path_from_env(&path, err);
    if (st == BADAM_OK) atomic_store(&g_path, (int)path);
    return st;
}

badam_cpu_path badam_cpu_active(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    int p = atomic_load_explicit(&g_path, memory_order_relaxed);
    if (p < 0) {
        pthread_once(&once, init_from_env);
        p = atomic_load(&g_path);
    }
    return (badam_cpu_path)p;
}

badam_status badam_cpu_set_path(badam_cpu_path path, badam_error *err) {
    if (!badam_cpu_supports(path))
        return badam_fail(err, BADAM_E_UNSUPPORTED, "CPU path %s: not supported by this CPU",
                          badam_cpu_path_name(path));
    atomic_store(&g_path, (int)path);
    return BADAM_OK;
}

int badam_cpu_bf16_active(void) {
    return badam_cpu_active() == BADAM_CPU_AVX512 && badam_cpu_detect().avx512_bf16;
}

void badam_cpu_trace(int on) {
    if (on)
        for (int p = 0; p < BADAM_CPU_PATH_COUNT; p++) atomic_store(&g_counts[p], 0);
    atomic_store(&g_trace, on != 0);
}

void badam_cpu_trace_counts(uint64_t counts[BADAM_CPU_PATH_COUNT]) {
    for (int p = 0; p < BADAM_CPU_PATH_COUNT; p++) counts[p] = atomic_load(&g_counts[p]);
}

badam_cpu_path cpu_dispatch_path(void) {
    badam_cpu_path p = badam_cpu_active();
    if (atomic_load_explicit(&g_trace, memory_order_relaxed))
        atomic_fetch_add_explicit(&g_counts[p], 1, memory_order_relaxed);
    return p;
}
