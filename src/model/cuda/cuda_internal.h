/* The CUDA backend's context and the helpers its op files share (private to src/model/cuda).
 * cuda_backend.c: creation, the pool and the memory ops; cuda_pool.c: the pool allocator;
 * cuda_gemm.c: cuBLASLt GEMMs; cuda_ops*.c: the ops of backend.h on the kernels of
 * cuda_kernels.h. */
#ifndef BADAM_MODEL_CUDA_INTERNAL_H
#define BADAM_MODEL_CUDA_INTERNAL_H

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "model/cuda/cuda_backend.h"

/* One block of the pool: [off, off + size), used or free. */
typedef struct cuda_seg {
    size_t off, size;
    int used;
    int category;
} cuda_seg;

/* Staging slots for host operands (see cuda_backend.h): the weight, a second operand, and a
 * small fp32 parameter (a norm's weight, a bias). */
#define CUDA_STAGE_SLOTS 3

typedef struct cuda_backend {
    backend base; /* first: a backend * is a cuda_backend * */
    char *pool;   /* the one device allocation */
    size_t pool_bytes, used, peak;
    size_t used_by_cat[BADAM_MEM_CATEGORY_COUNT], peak_by_cat[BADAM_MEM_CATEGORY_COUNT];
    cuda_seg *segs; /* sorted by offset, covering the pool */
    int n_segs, cap_segs;
    cublasLtHandle_t lt;
    void *lt_ws; /* cuBLASLt workspace (from the pool) */
    size_t lt_ws_bytes;
    void *stage[CUDA_STAGE_SLOTS];
    size_t stage_bytes[CUDA_STAGE_SLOTS];
    void *tmp; /* the backend's own scratch: rounded activations, attention deltas, partials */
    size_t tmp_bytes;
    /* The resident weights (backend_cuda_keep_weights): the host region [wt_host, + wt_bytes)
     * stands for its device copy wt_dev, which ops read and write instead. */
    const char *wt_host;
    char *wt_dev;
    size_t wt_bytes;
    int attn_tiled;      /* BADAM_CUDA_ATTN=tiled: cuda_attention_tiled.cu's kernels */
    int gemm_fp32;       /* BADAM_GEMM=fp32: half weights converted to fp32, fp32 GEMM */
    badam_status status; /* the first error (sticky) */
    badam_error err;
} cuda_backend;

static inline cuda_backend *cuda_of(backend *be) {
    return (cuda_backend *)be;
}

/* ---- cuda_pool.c ---- */
/* Sets up the block list over [0, pool_bytes); 0 or -1 (out of host memory). */
int cuda_pool_init(cuda_backend *c);
/* A 256-byte aligned block of the pool counted in category, or NULL when none is free. */
void *cuda_pool_alloc(cuda_backend *c, int category, size_t bytes);
void cuda_pool_free(cuda_backend *c, void *p);

/* ---- cuda_backend.c ---- */
/* Records the first error (later ones are dropped). */
void cuda_fail(cuda_backend *c, badam_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records a failed CUDA call or kernel launch of `op` (cudaGetLastError). */
void cuda_check(cuda_backend *c, const char *op);
/* Records "OP: not supported on cuda". */
void cuda_unsupported(cuda_backend *c, const char *op);
/* 1 when p lies in the pool (device memory), 0 for host memory. */
int cuda_is_dev(const cuda_backend *c, const void *p);
/* p as a device address: p itself in the pool, its place in the resident weights' device copy
 * when p lies in their host region, else NULL (host memory). */
void *cuda_map(const cuda_backend *c, const void *p);
/* cuda_map(c, p) when that is not NULL, else p (NULL stays NULL). */
void *cuda_own(const cuda_backend *c, const void *p);
/* p as device memory: cuda_map(c, p) when not NULL, else a copy of its `bytes` (copied in when
 * copy_in) in staging slot `slot`. NULL on failure (recorded). */
void *cuda_dev(cuda_backend *c, int slot, const void *p, size_t bytes, int copy_in);
/* Copies a staged result back to host p (nothing when p is in the pool or resident). */
void cuda_back(cuda_backend *c, void *p, const void *dev, size_t bytes);
/* At least `bytes` of the backend's scratch (its contents not kept between calls); NULL on
 * failure (recorded). */
void *cuda_tmp(cuda_backend *c, size_t bytes);
/* Blocking copies (cudaMemcpyDefault). */
void cuda_to_host(cuda_backend *c, void *host, const void *dev, size_t bytes);
void cuda_to_dev(cuda_backend *c, void *dev, const void *host, size_t bytes);

/* ---- cuda_gemm.c ---- */
/* Row-major C[M,N] = alpha op(A) op(B) + beta C with fp32 accumulation (cblas_sgemm's contract;
 * A and B of CUDA type at, bt: fp32 with fp32 (no TF32), or bf16/f16 both), through cuBLASLt.
 * Counts 2 M N K in gemm_flops. */
void cuda_gemm(cuda_backend *c, int ta, int tb, int M, int N, int K, float alpha, const void *A,
               cudaDataType_t at, int lda, const void *B, cudaDataType_t bt, int ldb, float beta,
               float *C, int ldc);
/* The CUDA type of a badam dtype. */
cudaDataType_t cuda_type(badam_dtype dt);

/* The table's entries (cuda_ops.c, cuda_ops_model.c, cuda_ops_linear.c, cuda_ops_attention.c):
 * cu_NAME implements backend_ops.NAME. */
#include "model/cuda/cuda_ops.h"

#endif
