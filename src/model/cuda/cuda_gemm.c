/* cuBLASLt GEMMs of the CUDA backend. Row-major C[M,N] = alpha op(A) op(B) + beta C is computed
 * as the column-major C^T[N,M] = op(B)^T op(A)^T (a row-major matrix read column-major is its
 * transpose), so B is cuBLASLt's first operand and A its second. fp32 operands run with
 * CUBLAS_COMPUTE_32F (no TF32: that needs CUBLAS_COMPUTE_32F_FAST_TF32); bf16 and f16 operands
 * with fp32 accumulation and an fp32 C. */
#include <stdint.h>

#include "model/cuda/cuda_internal.h"
#include "model/cuda/cuda_kernels.h"

cudaDataType_t cuda_type(badam_dtype dt) {
    return dt == BADAM_DTYPE_BF16 ? CUDA_R_16BF : dt == BADAM_DTYPE_F16 ? CUDA_R_16F : CUDA_R_32F;
}

typedef struct lt_call {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulPreference_t pref;
} lt_call;

static void lt_release(lt_call *l) {
    if (l->pref) cublasLtMatmulPreferenceDestroy(l->pref);
    if (l->c) cublasLtMatrixLayoutDestroy(l->c);
    if (l->b) cublasLtMatrixLayoutDestroy(l->b);
    if (l->a) cublasLtMatrixLayoutDestroy(l->a);
    if (l->op) cublasLtMatmulDescDestroy(l->op);
}

/* The largest power of two up to 256 that divides p's address: cuBLASLt assumes 256-byte aligned
 * operands unless told (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*), and ours may point inside a
 * buffer. */
static uint32_t align_of(const void *p) {
    uint32_t a = 256;
    while (a > 1 && (uintptr_t)p % a) a >>= 1;
    return a;
}

static cublasStatus_t lt_align(lt_call *l, const void *first, const void *second, const void *c) {
    uint32_t fa = align_of(first), sa = align_of(second), ca = align_of(c);
    cublasStatus_t s = cublasLtMatmulPreferenceSetAttribute(
        l->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &fa, sizeof fa);
    if (!s)
        s = cublasLtMatmulPreferenceSetAttribute(
            l->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &sa, sizeof sa);
    if (!s)
        s = cublasLtMatmulPreferenceSetAttribute(
            l->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ca, sizeof ca);
    if (!s)
        s = cublasLtMatmulPreferenceSetAttribute(
            l->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ca, sizeof ca);
    return s;
}

/* The descriptors of the column-major product: first operand B (as stored: rows x cols, ld),
 * second operand A, result C^T [N, M]. */
static cublasStatus_t lt_describe(cuda_backend *c, lt_call *l, int ta, int tb, int M, int N, int K,
                                  cudaDataType_t at, int lda, cudaDataType_t bt, int ldb, int ldc) {
    cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasStatus_t s = cublasLtMatmulDescCreate(&l->op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (!s)
        s = cublasLtMatmulDescSetAttribute(l->op, CUBLASLT_MATMUL_DESC_TRANSA, &opb, sizeof opb);
    if (!s)
        s = cublasLtMatmulDescSetAttribute(l->op, CUBLASLT_MATMUL_DESC_TRANSB, &opa, sizeof opa);
    if (!s) s = cublasLtMatrixLayoutCreate(&l->a, bt, tb ? K : N, tb ? N : K, ldb);
    if (!s) s = cublasLtMatrixLayoutCreate(&l->b, at, ta ? M : K, ta ? K : M, lda);
    if (!s) s = cublasLtMatrixLayoutCreate(&l->c, CUDA_R_32F, N, M, ldc);
    if (!s) s = cublasLtMatmulPreferenceCreate(&l->pref);
    if (!s)
        s = cublasLtMatmulPreferenceSetAttribute(l->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                 &c->lt_ws_bytes, sizeof c->lt_ws_bytes);
    return s;
}

void cuda_gemm(cuda_backend *c, int ta, int tb, int M, int N, int K, float alpha, const void *A,
               cudaDataType_t at, int lda, const void *B, cudaDataType_t bt, int ldb, float beta,
               float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    c->base.counters.gemm_flops += 2ull * (uint64_t)M * (uint64_t)N * (uint64_t)K;
    if (K <= 0) { /* C = beta C */
        cuk_scale_rows(C, beta, M, N, ldc);
        cuda_check(c, "gemm (K = 0)");
        return;
    }
    lt_call l = {0};
    cublasLtMatmulHeuristicResult_t h;
    int found = 0;
    cublasStatus_t s = lt_describe(c, &l, ta, tb, M, N, K, at, lda, bt, ldb, ldc);
    if (!s) s = lt_align(&l, B, A, C);
    if (!s)
        s = cublasLtMatmulAlgoGetHeuristic(c->lt, l.op, l.a, l.b, l.c, l.c, l.pref, 1, &h, &found);
    if (!s && found == 0) s = CUBLAS_STATUS_NOT_SUPPORTED;
    if (!s)
        s = cublasLtMatmul(c->lt, l.op, &alpha, B, l.a, A, l.b, &beta, C, l.c, C, l.c, &h.algo,
                           c->lt_ws, c->lt_ws_bytes, 0);
    lt_release(&l);
    if (s)
        cuda_fail(c, BADAM_E_UNSUPPORTED,
                  "cuda gemm [%d x %d x %d] (types %d, %d): cuBLASLt status %d", M, N, K, (int)at,
                  (int)bt, (int)s);
}
