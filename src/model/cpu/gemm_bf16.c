/* bf16 GEMMs with fp32 accumulation (ops.h states the contract), on oneDNN's matmul when the
 * library was built with it (Debian libdnnl-dev) and the CPU has AVX512_BF16.
 *
 * Dispatch, decided at every call (cheap next to a GEMM): BADAM_GEMM=fp32 in the environment
 * forces the portable fp32 path (OpenBLAS sgemm on converted weights), which the tests also run;
 * otherwise the bf16 path is used when oneDNN is built in and the CPU reports AVX512_BF16.
 *
 * Threads: Debian's oneDNN is the OpenMP build and uses the same libgomp pool as our kernels and
 * OpenBLAS, so nothing oversubscribes the cores. oneDNN keeps its own primitive cache, so
 * re-creating a primitive for a shape already seen is a cache hit. */
#include <stdlib.h>
#include <string.h>

#include "model/cpu/ops.h"

#if defined(BADAM_HAVE_DNNL)
#include <dnnl.h>
#include <pthread.h>

static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static int g_engine_ok;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void engine_init(void) {
    if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success) return;
    if (dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags) != dnnl_success) return;
    g_engine_ok = 1;
}
#endif

static int cpu_has_bf16(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    return __builtin_cpu_supports("avx512bf16") != 0;
#else
    return 0;
#endif
}

int gemm_bf16_available(void) {
#if defined(BADAM_HAVE_DNNL)
    const char *env = getenv("BADAM_GEMM");
    if (env && !strcmp(env, "fp32")) return 0;
    if (!cpu_has_bf16() && !(env && !strcmp(env, "bf16"))) return 0;
    pthread_once(&g_once, engine_init);
    return g_engine_ok;
#else
    return 0;
#endif
}

/* n floats to bf16, round to nearest even; NaN keeps a quiet-NaN payload bit. One vector loop
 * (AVX-512 where the CPU has it). */
OPS_CLONES
static void convert_run(uint16_t *restrict dst, const float *restrict src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], 4);
        uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
        dst[i] = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40u) : (uint16_t)r;
    }
}

#define CONVERT_CHUNK 16384

void convert_f32_to_bf16(uint16_t *dst, const float *src, size_t n) {
    size_t chunks = (n + CONVERT_CHUNK - 1) / CONVERT_CHUNK;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t c = 0; c < chunks; c++) {
        size_t i0 = c * CONVERT_CHUNK, len = n - i0 < CONVERT_CHUNK ? n - i0 : CONVERT_CHUNK;
        convert_run(dst + i0, src + i0, len);
    }
}

void convert_f32_to_bf16_2d(uint16_t *dst, int ldd, const float *src, int lds, int rows, int cols) {
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > 65536)
    for (int r = 0; r < rows; r++)
        convert_run(dst + (size_t)r * ldd, src + (size_t)r * lds, (size_t)cols);
}

int gemm_bf16(int M, int N, int K, const uint16_t *A, int lda, int transa, const uint16_t *Bm,
              int ldb, int transb, float *Cm, int ldc, int accumulate) {
#if defined(BADAM_HAVE_DNNL)
    if (M <= 0 || N <= 0 || K <= 0) return 0;
    pthread_once(&g_once, engine_init);
    if (!g_engine_ok) return -1;
    dnnl_memory_desc_t a_md, b_md, c_md;
    dnnl_dims_t a_dims = {M, K}, a_str = {transa ? 1 : lda, transa ? lda : 1};
    dnnl_dims_t b_dims = {K, N}, b_str = {transb ? 1 : ldb, transb ? ldb : 1};
    dnnl_dims_t c_dims = {M, N}, c_str = {ldc, 1};
    if (dnnl_memory_desc_init_by_strides(&a_md, 2, a_dims, dnnl_bf16, a_str) ||
        dnnl_memory_desc_init_by_strides(&b_md, 2, b_dims, dnnl_bf16, b_str) ||
        dnnl_memory_desc_init_by_strides(&c_md, 2, c_dims, dnnl_f32, c_str))
        return -1;
    dnnl_matmul_desc_t mm;
    if (dnnl_matmul_desc_init(&mm, &a_md, &b_md, NULL, &c_md)) return -1;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL;
    int rc = -1;
    if (dnnl_primitive_attr_create(&attr)) goto done;
    if (accumulate) {
        if (dnnl_post_ops_create(&po) || dnnl_post_ops_append_sum(po, 1.0f) ||
            dnnl_primitive_attr_set_post_ops(attr, po))
            goto done;
    }
    if (dnnl_primitive_desc_create(&pd, &mm, attr, g_engine, NULL)) goto done;
    if (dnnl_primitive_create(&prim, pd)) goto done;
    if (dnnl_memory_create(&ma, &a_md, g_engine, (void *)A) ||
        dnnl_memory_create(&mb, &b_md, g_engine, (void *)Bm) ||
        dnnl_memory_create(&mc, &c_md, g_engine, Cm))
        goto done;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
    if (dnnl_primitive_execute(prim, g_stream, 3, args)) goto done;
    if (dnnl_stream_wait(g_stream)) goto done;
    rc = 0;
done:
    if (ma) dnnl_memory_destroy(ma);
    if (mb) dnnl_memory_destroy(mb);
    if (mc) dnnl_memory_destroy(mc);
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
#else
    (void)M, (void)N, (void)K, (void)A, (void)lda, (void)transa, (void)Bm, (void)ldb, (void)transb;
    (void)Cm;
    (void)ldc, (void)accumulate;
    return -1;
#endif
}
