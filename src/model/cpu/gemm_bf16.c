/* bf16 GEMMs with fp32 accumulation (ops.h states the contract), on oneDNN's matmul when the
 * library was built with it (Debian libdnnl-dev) and the CPU has AVX512_BF16 (and the avx512 path).
 *
 * Dispatch, decided at every call (cheap next to a GEMM): BADAM_GEMM=fp32 in the environment
 * forces the portable fp32 path (OpenBLAS sgemm on converted weights), which the tests also run;
 * otherwise the bf16 path is used when oneDNN is built in, the active CPU path is avx512 and the
 * CPU reports AVX512_BF16 (badam_cpu_bf16_active; BADAM_CPU=avx2 turns it off).
 *
 * Threads: Debian's oneDNN is the OpenMP build and uses the same libgomp pool as our kernels and
 * OpenBLAS, so nothing oversubscribes the cores.
 *
 * No allocation in steady state: creating a matmul primitive and its memory objects allocates
 * (thousands of small blocks per training step, and oneDNN's shared scratchpad is freed and
 * re-allocated whenever no primitive holds it). So primitives live in a small cache keyed by the
 * GEMM's shape, strides and flags (GEMM_CACHE_SIZE entries, least recently used evicted), with
 * their memory objects; a call re-points the objects at its buffers and executes.
 *
 * State: the engine, stream and cache belong to a gemm_bf16_ctx, one per CPU backend context
 * (cpu_backend.c), not to the process. */
#include <stdlib.h>
#include <string.h>

#include "model/cpu/ops.h"

#if defined(BADAM_HAVE_DNNL)
#include <dnnl.h>
#include <pthread.h>

#define GEMM_CACHE_SIZE 64

typedef struct gemm_key {
    int M, N, K, lda, transa, ldb, transb, ldc, accumulate;
} gemm_key;

typedef struct gemm_entry {
    gemm_key key;
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
    uint64_t used; /* clock of the last use; 0: empty slot */
} gemm_entry;
#endif

/* The state of one CPU backend context's bf16 GEMMs. */
struct gemm_bf16_ctx {
#if defined(BADAM_HAVE_DNNL)
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    int engine_state; /* 0: not tried yet, 1: ready, -1: failed */
    gemm_entry cache[GEMM_CACHE_SIZE];
    uint64_t clock;
    pthread_mutex_t lock;
#else
    int unused;
#endif
};

gemm_bf16_ctx *gemm_bf16_ctx_create(void) {
    gemm_bf16_ctx *g = calloc(1, sizeof *g);
#if defined(BADAM_HAVE_DNNL)
    if (g && pthread_mutex_init(&g->lock, NULL)) {
        free(g);
        return NULL;
    }
#endif
    return g;
}

#if defined(BADAM_HAVE_DNNL)
/* Creates the engine and stream on first use (under g->lock); 1 when they are ready. */
static int engine_ready(gemm_bf16_ctx *g) {
    if (g->engine_state == 0) {
        g->engine_state = -1;
        if (dnnl_engine_create(&g->engine, dnnl_cpu, 0) == dnnl_success &&
            dnnl_stream_create(&g->stream, g->engine, dnnl_stream_default_flags) == dnnl_success)
            g->engine_state = 1;
    }
    return g->engine_state == 1;
}
#endif

int gemm_bf16_native_possible(void) {
#if defined(BADAM_HAVE_DNNL)
    const char *env = getenv("BADAM_GEMM");
    if (env && !strcmp(env, "fp32")) return 0;
    return badam_cpu_bf16_active() || (env && !strcmp(env, "bf16"));
#else
    return 0;
#endif
}

int gemm_bf16_available(gemm_bf16_ctx *g) {
#if defined(BADAM_HAVE_DNNL)
    if (!g || !gemm_bf16_native_possible()) return 0;
    pthread_mutex_lock(&g->lock);
    int ok = engine_ready(g);
    pthread_mutex_unlock(&g->lock);
    return ok;
#else
    (void)g;
    return 0;
#endif
}

/* n floats to bf16, round to nearest even; NaN keeps a quiet-NaN payload bit. One vector loop
 * (AVX-512 where the CPU has it). */
CPU_BODY void convert_run_body(uint16_t *restrict dst, const float *restrict src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], 4);
        uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
        dst[i] = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40u) : (uint16_t)r;
    }
}
CPU_VARIANTS_VOID(convert_run, (uint16_t *restrict dst, const float *restrict src, size_t n),
                  (dst, src, n))

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

#if defined(BADAM_HAVE_DNNL)
static void entry_release(gemm_entry *e) {
    if (e->a) dnnl_memory_destroy(e->a);
    if (e->b) dnnl_memory_destroy(e->b);
    if (e->c) dnnl_memory_destroy(e->c);
    if (e->prim) dnnl_primitive_destroy(e->prim);
    memset(e, 0, sizeof *e);
}

/* Builds the matmul primitive and its (bufferless) memory objects for key k into e. */
static int entry_build(gemm_bf16_ctx *g, gemm_entry *e, const gemm_key *k) {
    dnnl_memory_desc_t a_md, b_md, c_md;
    dnnl_dims_t a_dims = {k->M, k->K}, a_str = {k->transa ? 1 : k->lda, k->transa ? k->lda : 1};
    dnnl_dims_t b_dims = {k->K, k->N}, b_str = {k->transb ? 1 : k->ldb, k->transb ? k->ldb : 1};
    dnnl_dims_t c_dims = {k->M, k->N}, c_str = {k->ldc, 1};
    if (dnnl_memory_desc_init_by_strides(&a_md, 2, a_dims, dnnl_bf16, a_str) ||
        dnnl_memory_desc_init_by_strides(&b_md, 2, b_dims, dnnl_bf16, b_str) ||
        dnnl_memory_desc_init_by_strides(&c_md, 2, c_dims, dnnl_f32, c_str))
        return -1;
    dnnl_matmul_desc_t mm;
    if (dnnl_matmul_desc_init(&mm, &a_md, &b_md, NULL, &c_md)) return -1;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int rc = -1;
    memset(e, 0, sizeof *e);
    if (dnnl_primitive_attr_create(&attr)) goto done;
    if (k->accumulate) {
        if (dnnl_post_ops_create(&po) || dnnl_post_ops_append_sum(po, 1.0f) ||
            dnnl_primitive_attr_set_post_ops(attr, po))
            goto done;
    }
    if (dnnl_primitive_desc_create(&pd, &mm, attr, g->engine, NULL)) goto done;
    if (dnnl_primitive_create(&e->prim, pd)) goto done;
    if (dnnl_memory_create(&e->a, &a_md, g->engine, DNNL_MEMORY_NONE) ||
        dnnl_memory_create(&e->b, &b_md, g->engine, DNNL_MEMORY_NONE) ||
        dnnl_memory_create(&e->c, &c_md, g->engine, DNNL_MEMORY_NONE))
        goto done;
    e->key = *k;
    rc = 0;
done:
    if (rc) entry_release(e);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* The cached entry for k, built (evicting the least recently used) on a miss; NULL on failure. */
static gemm_entry *entry_for(gemm_bf16_ctx *g, const gemm_key *k) {
    gemm_entry *lru = &g->cache[0];
    for (int i = 0; i < GEMM_CACHE_SIZE; i++) {
        gemm_entry *e = &g->cache[i];
        if (e->used && !memcmp(&e->key, k, sizeof *k)) return e;
        if (e->used < lru->used) lru = e;
    }
    entry_release(lru);
    return entry_build(g, lru, k) ? NULL : lru;
}
#endif

void gemm_bf16_ctx_free(gemm_bf16_ctx *g) {
    if (!g) return;
#if defined(BADAM_HAVE_DNNL)
    for (int i = 0; i < GEMM_CACHE_SIZE; i++) entry_release(&g->cache[i]);
    if (g->stream) dnnl_stream_destroy(g->stream);
    if (g->engine) dnnl_engine_destroy(g->engine);
    pthread_mutex_destroy(&g->lock);
#endif
    free(g);
}

int gemm_bf16(gemm_bf16_ctx *g, int M, int N, int K, const uint16_t *A, int lda, int transa,
              const uint16_t *Bm, int ldb, int transb, float *Cm, int ldc, int accumulate) {
#if defined(BADAM_HAVE_DNNL)
    if (M <= 0 || N <= 0 || K <= 0) return 0;
    if (!g) return -1;
    gemm_key k = {M, N, K, lda, transa != 0, ldb, transb != 0, ldc, accumulate != 0};
    int rc = -1;
    pthread_mutex_lock(&g->lock);
    gemm_entry *e = engine_ready(g) ? entry_for(g, &k) : NULL;
    if (e) {
        e->used = ++g->clock;
        dnnl_exec_arg_t args[3] = {
            {DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
        if (!dnnl_memory_set_data_handle(e->a, (void *)A) &&
            !dnnl_memory_set_data_handle(e->b, (void *)Bm) &&
            !dnnl_memory_set_data_handle(e->c, Cm) &&
            !dnnl_primitive_execute(e->prim, g->stream, 3, args) && !dnnl_stream_wait(g->stream))
            rc = 0;
    }
    pthread_mutex_unlock(&g->lock);
    return rc;
#else
    (void)g, (void)M, (void)N, (void)K, (void)A, (void)lda, (void)transa, (void)Bm, (void)ldb,
        (void)transb;
    (void)Cm, (void)ldc, (void)accumulate;
    return -1;
#endif
}
