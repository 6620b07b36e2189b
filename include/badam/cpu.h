/* CPU paths: which vector instruction set the kernels run with, detected at run time.
 *
 * The library is built for the x86-64 baseline (no -march flag); each hot kernel is compiled
 * three times (portable x86-64, AVX2+FMA = x86-64-v3, AVX-512 = x86-64-v4) and the active path
 * picks one at every call. The active path is the best the CPU supports, or the one named by the
 * environment variable BADAM_CPU=portable|avx2|avx512|auto (read once, at the first kernel call or
 * at badam_cpu_check_env). The native bf16 GEMM additionally needs AVX512_BF16 and the avx512
 * path; BADAM_GEMM=fp32 forces the fp32 GEMM on any path.
 *
 * OpenBLAS (sgemm) chooses its own kernels when it is loaded, from the CPU model, and falls back
 * to SSE3 kernels on models it does not know; OPENBLAS_CORETYPE=Prescott|Haswell|SkylakeX forces
 * them. The badam program sets it to match the active path unless the user did
 * (badam_blas_core_wanted); the test suite sets it beside BADAM_CPU. */
#ifndef BADAM_CPU_H
#define BADAM_CPU_H

#include <stdint.h>

#include "badam/status.h"

typedef enum badam_cpu_path {
    BADAM_CPU_PORTABLE = 0, /* x86-64 baseline (SSE2), or any other architecture */
    BADAM_CPU_AVX2 = 1,     /* x86-64-v3: AVX2, FMA, BMI2, F16C */
    BADAM_CPU_AVX512 = 2,   /* x86-64-v4: AVX-512 F, BW, CD, DQ, VL */
    BADAM_CPU_PATH_COUNT
} badam_cpu_path;

/* What this CPU has (cpuid through the compiler's __builtin_cpu_supports). */
typedef struct badam_cpu_features {
    int avx2_fma;    /* every feature of x86-64-v3 */
    int avx512;      /* every feature of x86-64-v4 */
    int avx512_bf16; /* AVX512_BF16 (vdpbf16ps): native bf16 dot products */
} badam_cpu_features;

badam_cpu_features badam_cpu_detect(void);
/* The best path the CPU can run. */
badam_cpu_path badam_cpu_best(void);
/* 1 when the CPU can run `path`. */
int badam_cpu_supports(badam_cpu_path path);
/* "portable", "avx2", "avx512". */
const char *badam_cpu_path_name(badam_cpu_path path);

/* Checks BADAM_CPU: BADAM_E_INVALID naming the variable and value when it is not one of
 * portable|avx2|avx512|auto, BADAM_E_UNSUPPORTED when this CPU cannot run the path it names;
 * and BADAM_GEMM: BADAM_E_INVALID when it is set to other than fp32|bf16|auto.
 * On success the path is fixed for the process. Programs call it at start-up; kernels called
 * without it fall back to the best path when BADAM_CPU is invalid. */
badam_status badam_cpu_check_env(badam_error *err);
/* The path kernels run with now. */
badam_cpu_path badam_cpu_active(void);
/* Sets the active path (tests and benchmarks); BADAM_E_UNSUPPORTED when the CPU lacks it. */
badam_status badam_cpu_set_path(badam_cpu_path path, badam_error *err);
/* 1 when the active path may use native bf16 instructions (avx512 path, CPU with AVX512_BF16). */
int badam_cpu_bf16_active(void);

/* OpenBLAS's kernel set as chosen when it loaded ("Prescott", "Haswell", "SkylakeX", ...), and
 * the OPENBLAS_CORETYPE matching the active path (avx512: SkylakeX, avx2: Haswell, portable:
 * Prescott), or NULL when OpenBLAS's own choice already matches it. Implemented by the CPU backend
 * (src/model/cpu/blas_core.c). */
const char *badam_blas_core(void);
const char *badam_blas_core_wanted(void);

/* Dispatch counters, for tests that prove which compiled variant ran: while tracing is on, every
 * dispatched kernel call adds one to the count of the path it ran. */
void badam_cpu_trace(int on);
void badam_cpu_trace_counts(uint64_t counts[BADAM_CPU_PATH_COUNT]);

#endif
