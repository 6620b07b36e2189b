/* Run-time dispatch of kernels compiled once per CPU path (include/badam/cpu.h).
 *
 * A kernel is written once, as an always-inline body:
 *
 *     CPU_BODY float dot_body(const float *x, const float *y, int n) { ... }
 *     CPU_VARIANTS(float, dot, (const float *x, const float *y, int n), (x, y, n))
 *
 * CPU_VARIANTS defines dot_portable, dot_avx2 and dot_avx512, each with the body inlined and
 * compiled for that instruction set (GCC target attributes: x86-64, x86-64-v3, x86-64-v4 with
 * 512-bit vectors), and `static float dot(...)` which calls the variant of the active path.
 * CPU_VARIANTS_VOID does the same for a body returning void. The build has no -march flag: the
 * baseline code runs on any x86-64, and a variant runs only when the CPU has its features.
 * Dispatch costs one relaxed atomic load and a switch per call, so dispatch per row or per tile,
 * not per element. */
#ifndef BADAM_BASE_CPU_DISPATCH_H
#define BADAM_BASE_CPU_DISPATCH_H

#include "badam/cpu.h"

/* The active path, counted when tracing (base/cpu.c). */
badam_cpu_path cpu_dispatch_path(void);

#define CPU_BODY static inline __attribute__((always_inline))

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CPU_TARGET_AVX2 __attribute__((target("arch=x86-64-v3")))
#define CPU_TARGET_AVX512 __attribute__((target("arch=x86-64-v4,prefer-vector-width=512")))
#define CPU_VARIANTS_DEFINE_(ret, name, params, args)                                              \
    CPU_TARGET_AVX512 static ret name##_avx512 params {                                            \
        return name##_body args;                                                                   \
    }                                                                                              \
    CPU_TARGET_AVX2 static ret name##_avx2 params {                                                \
        return name##_body args;                                                                   \
    }                                                                                              \
    static ret name##_portable params {                                                            \
        return name##_body args;                                                                   \
    }
#define CPU_VARIANTS_DEFINE_VOID_(name, params, args)                                              \
    CPU_TARGET_AVX512 static void name##_avx512 params {                                           \
        name##_body args;                                                                          \
    }                                                                                              \
    CPU_TARGET_AVX2 static void name##_avx2 params {                                               \
        name##_body args;                                                                          \
    }                                                                                              \
    static void name##_portable params {                                                           \
        name##_body args;                                                                          \
    }
#define CPU_VARIANT_PICK_(name, args, RET)                                                         \
    switch (cpu_dispatch_path()) {                                                                 \
    case BADAM_CPU_AVX512:                                                                         \
        RET name##_avx512 args;                                                                    \
        break;                                                                                     \
    case BADAM_CPU_AVX2:                                                                           \
        RET name##_avx2 args;                                                                      \
        break;                                                                                     \
    default:                                                                                       \
        RET name##_portable args;                                                                  \
        break;                                                                                     \
    }
#else
/* Other compilers and architectures: one portable variant. */
#define CPU_VARIANTS_DEFINE_(ret, name, params, args)                                              \
    static ret name##_portable params {                                                            \
        return name##_body args;                                                                   \
    }
#define CPU_VARIANTS_DEFINE_VOID_(name, params, args)                                              \
    static void name##_portable params {                                                           \
        name##_body args;                                                                          \
    }
#define CPU_VARIANT_PICK_(name, args, RET)                                                         \
    (void)cpu_dispatch_path();                                                                     \
    RET name##_portable args;
#endif

#define CPU_VARIANTS(ret, name, params, args)                                                      \
    CPU_VARIANTS_DEFINE_(ret, name, params, args)                                                  \
    static ret name params {                                                                       \
        CPU_VARIANT_PICK_(name, args, return )                                                     \
        return name##_portable args;                                                               \
    }

#define CPU_VARIANTS_VOID(name, params, args)                                                      \
    CPU_VARIANTS_DEFINE_VOID_(name, params, args)                                                  \
    static void name params {                                                                      \
        CPU_VARIANT_PICK_(name, args, )                                                            \
    }

#endif
