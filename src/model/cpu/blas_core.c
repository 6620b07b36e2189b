/* OpenBLAS's kernel set against the active CPU path (include/badam/cpu.h).
 *
 * OpenBLAS (Debian's DYNAMIC_ARCH build) picks its kernels once, when it loads, from the CPU's
 * model number. A CPU it does not know gets its oldest x86-64 kernels: on a virtualised Xeon that
 * reports a generic model ("Intel(R) Xeon(R) Processor", AVX-512 and AVX512_BF16 present) it chose
 * "Prescott" (SSE3), and sgemm ran at 22 GFLOP/s on 2 cores against 117 with "SkylakeX" (same
 * machine, same run). OPENBLAS_CORETYPE, read at load time, overrides the choice; the CLI sets it
 * from badam_blas_core_wanted() and starts itself again. */
#include <cblas.h>
#include <string.h>

#include "badam/cpu.h"

const char *badam_blas_core(void) {
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

/* 1 when OpenBLAS's `core` has kernels for `path`'s instruction set. */
static int core_matches(const char *core, badam_cpu_path path) {
    static const char *const avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    static const char *const avx2[] = {"Haswell", "Zen", NULL};
    for (int i = 0; avx512[i]; i++)
        if (!strcasecmp(core, avx512[i])) return path == BADAM_CPU_AVX512;
    for (int i = 0; avx2[i]; i++)
        if (!strcasecmp(core, avx2[i])) return path == BADAM_CPU_AVX2;
    return path == BADAM_CPU_PORTABLE;
}

const char *badam_blas_core_wanted(void) {
    badam_cpu_path path = badam_cpu_active();
    if (core_matches(badam_blas_core(), path)) return NULL;
    switch (path) {
    case BADAM_CPU_AVX512:
        return "SkylakeX";
    case BADAM_CPU_AVX2:
        return "Haswell";
    default:
        return "Prescott";
    }
}
