/* The CPU backend: backend.h's table on the kernels of ops.h (OpenMP, OpenBLAS, oneDNN). Its
 * context holds what used to be process state: the bf16 GEMM's oneDNN engine, stream and
 * primitive cache (gemm_bf16_ctx), the thread count decode attention sizes its scratch by, and
 * the work counters. Memory is host memory from base/memory.h, accounted by category; upload and
 * download are copies. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "model/cpu/ops.h"
#include "model/cpu/ops_encoder.h"

typedef struct cpu_backend {
    backend base;        /* first: a backend * is a cpu_backend * */
    gemm_bf16_ctx *gemm; /* bf16 GEMM state */
    int n_threads;       /* OpenMP threads at creation (OMP_NUM_THREADS) */
} cpu_backend;

static cpu_backend *cpu(backend *be) {
    return (cpu_backend *)be;
}

static void cpu_destroy(backend *be) {
    gemm_bf16_ctx_free(cpu(be)->gemm);
    free(be);
}

static size_t cpu_decode_scratch(const backend *be, int max_len) {
    return (size_t)((const cpu_backend *)be)->n_threads * (size_t)max_len;
}

static void *cpu_alloc(backend *be, badam_mem_category cat, size_t bytes) {
    (void)be;
    return badam_alloc_in(cat, bytes);
}

static void cpu_free(backend *be, void *p) {
    (void)be;
    badam_free(p);
}

static void cpu_zero(backend *be, void *p, size_t bytes) {
    (void)be;
    memset(p, 0, bytes);
}

static void cpu_copy(backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memcpy(dst, src, bytes);
}

/* Elements per OpenMP task of a large conversion (a layer's weights). */
#define CONVERT_CHUNK ((size_t)1 << 16)

static void cpu_convert(backend *be, void *dst, badam_dtype dd, const void *src, badam_dtype sd,
                        size_t n) {
    (void)be;
    if (n < 4 * CONVERT_CHUNK) {
        badam_convert(dst, dd, src, sd, n);
        return;
    }
    size_t chunks = (n + CONVERT_CHUNK - 1) / CONVERT_CHUNK, ds = badam_dtype_size(dd),
           ss = badam_dtype_size(sd);
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < chunks; c++) {
        size_t i0 = c * CONVERT_CHUNK, len = n - i0 < CONVERT_CHUNK ? n - i0 : CONVERT_CHUNK;
        badam_convert((char *)dst + i0 * ds, dd, (const char *)src + i0 * ss, sd, len);
    }
}

static int cpu_layer_weights_f32(badam_dtype w_dtype) {
    if (w_dtype == BADAM_DTYPE_F32) return 0;
    return !(w_dtype == BADAM_DTYPE_BF16 && gemm_bf16_native_possible());
}

static void cpu_add(backend *be, float *y, const float *a, const float *b, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

static void cpu_dropout(backend *be, float *out, const float *x, size_t n, uint64_t key,
                        size_t first, double p, int accumulate) {
    (void)be;
    float keep_scale = (float)(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static)
    for (size_t j = 0; j < n; j++) {
        float v = backend_dropout_unit(key, first + j) < p ? 0.0f : x[j] * keep_scale;
        out[j] = accumulate ? out[j] + v : v;
    }
}

static void cpu_swiglu_forward(backend *be, float *h, const float *g, const float *u, size_t n) {
    (void)be;
    swiglu_forward(h, g, u, n);
}

static void cpu_swiglu_backward(backend *be, float *dg, float *du, const float *dh, const float *g,
                                const float *u, size_t n) {
    (void)be;
    swiglu_backward(dg, du, dh, g, u, n);
}

static void cpu_gemm_f32(backend *be, int transa, int transb, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C,
                         int ldc) {
    cblas_sgemm(CblasRowMajor, transa ? CblasTrans : CblasNoTrans,
                transb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    be->counters.gemm_flops += 2ull * (uint64_t)M * (uint64_t)N * (uint64_t)K;
}

static void cpu_linear_forward(backend *be, float *y, const float *x, const void *w, badam_dtype wd,
                               const float *b, int n, int in, int out, float *scratch) {
    linear_forward(y, x, w, wd, b, n, in, out, scratch, &be->counters, cpu(be)->gemm);
}

static void cpu_linear_backward_input(backend *be, float *dx, const float *dy, const void *w,
                                      badam_dtype wd, int n, int in, int out, float *scratch) {
    linear_backward_input(dx, dy, w, wd, n, in, out, scratch, &be->counters, cpu(be)->gemm);
}

static void cpu_linear_backward_weight(backend *be, float *dw, float *db, const float *dy,
                                       const float *x, badam_dtype wd, int n, int in, int out,
                                       float *scratch, size_t scratch_floats) {
    linear_backward_weight_stored(dw, db, dy, x, wd, n, in, out, scratch, scratch_floats,
                                  &be->counters, cpu(be)->gemm);
}

static void cpu_embedding_forward(backend *be, float *out, const int32_t *tokens, int n,
                                  const void *table, badam_dtype td, int C) {
    (void)be;
    embedding_forward(out, tokens, n, table, td, C);
}

static void cpu_embedding_backward(backend *be, float *dtable, const int32_t *tokens, int n,
                                   const float *dout, int C) {
    (void)be;
    embedding_backward(dtable, tokens, n, dout, C);
}

static void cpu_rmsnorm_forward(backend *be, float *y, float *rstd, const float *x, const float *w,
                                int n, int C, float eps) {
    (void)be;
    rmsnorm_forward(y, rstd, x, w, n, C, eps);
}

static void cpu_rmsnorm_backward(backend *be, float *dx, float *dw, const float *dy, const float *x,
                                 const float *w, const float *rstd, int n, int C) {
    (void)be;
    rmsnorm_backward(dx, dw, dy, x, w, rstd, n, C);
}

static void cpu_rope_tables(backend *be, float *cos_t, float *sin_t, const float *inv_freq, int T,
                            int half) {
    (void)be;
    rope_tables(cos_t, sin_t, inv_freq, T, half);
}

static void cpu_rope_forward(backend *be, float *x, const int32_t *pos, const float *cos_t,
                             const float *sin_t, int n, int heads, int head_dim) {
    (void)be;
    rope_forward(x, pos, cos_t, sin_t, n, heads, head_dim);
}

static void cpu_rope_backward(backend *be, float *dx, const int32_t *pos, const float *cos_t,
                              const float *sin_t, int n, int heads, int head_dim) {
    (void)be;
    rope_backward(dx, pos, cos_t, sin_t, n, heads, head_dim);
}

static void cpu_attention_forward(backend *be, float *out, float *lse, const float *q,
                                  const float *k, const float *v, int B, int T, int Hq, int Hkv,
                                  int D, const int32_t *seg_start) {
    attention_forward(out, lse, q, k, v, B, T, Hq, Hkv, D, seg_start, &be->counters);
}

static void cpu_attention_backward(backend *be, float *dq, float *dk, float *dv, const float *dout,
                                   const float *out, const float *lse, const float *q,
                                   const float *k, const float *v, int B, int T, int Hq, int Hkv,
                                   int D, const int32_t *seg_start) {
    attention_backward(dq, dk, dv, dout, out, lse, q, k, v, B, T, Hq, Hkv, D, seg_start,
                       &be->counters);
}

static void cpu_attention_decode(backend *be, float *out, const float *q, const float *K,
                                 const float *V, int n, int p0, int Hq, int Hkv, int D,
                                 int kv_stride, int window, int max_len, float *scratch) {
    attention_decode(out, q, K, V, n, p0, Hq, Hkv, D, kv_stride, window, max_len, scratch,
                     cpu(be)->n_threads);
}

static double cpu_lm_head_loss(backend *be, float *dh, float *dw, const float *h, const void *w,
                               badam_dtype wd, const int32_t *targets, int n, int C, int V,
                               int chunk, float scale, float *workspace, int *n_counted) {
    return lm_head_loss(dh, dw, h, w, wd, targets, n, C, V, chunk, scale, workspace, n_counted,
                        &be->counters, cpu(be)->gemm);
}

static void cpu_adamw_update(backend *be, float *param, float *m, float *v, const float *grad,
                             size_t n, const adamw_step_args *a, void *weight, badam_dtype wd) {
    (void)be;
    opt_adamw_update(param, m, v, grad, n, a, weight, wd);
}

static void cpu_adamw_update_split(backend *be, uint16_t *weight, uint16_t *lo, float *m, float *v,
                                   const float *grad, size_t n, const adamw_step_args *a) {
    (void)be;
    opt_adamw_update_split(weight, lo, m, v, grad, n, a);
}

static void cpu_sgd_update(backend *be, float *param, const float *grad, size_t n, float lr,
                           float grad_scale, float weight_decay, void *weight, badam_dtype wd) {
    (void)be;
    opt_sgd_update(param, grad, n, lr, grad_scale, weight_decay, weight, wd);
}

static void cpu_sgd_update_split(backend *be, uint16_t *weight, uint16_t *lo, const float *grad,
                                 size_t n, float lr, float grad_scale, float weight_decay) {
    (void)be;
    opt_sgd_update_split(weight, lo, grad, n, lr, grad_scale, weight_decay);
}

static void cpu_sgd_update_stored(backend *be, void *weight, badam_dtype wd, const float *grad,
                                  size_t n, float lr, float grad_scale, float weight_decay) {
    (void)be;
    opt_sgd_update_stored(weight, wd, grad, n, lr, grad_scale, weight_decay);
}

static double cpu_sum_squares(backend *be, const float *x, size_t n) {
    (void)be;
    return sum_squares_f32(x, n);
}

static void cpu_scale(backend *be, float *x, float a, size_t n) {
    (void)be;
    scale_f32(x, a, n);
}

static void cpu_axpy(backend *be, float *y, float a, const float *x, size_t n) {
    (void)be;
    axpy_f32(y, a, x, n);
}

static void cpu_gaussian_perturb(backend *be, float *dst, const void *w, badam_dtype wd, size_t n,
                                 float eps, uint64_t key) {
    (void)be;
    zo_gaussian_perturb(dst, w, wd, n, eps, key);
}

static void cpu_gaussian_update_stored(backend *be, void *w, badam_dtype wd, size_t n, float lr,
                                       float coef, float weight_decay, uint64_t key) {
    (void)be;
    zo_gaussian_update_stored(w, wd, n, lr, coef, weight_decay, key);
}

static void cpu_gather(backend *be, float *dst, const void *src, badam_dtype sd, const int32_t *idx,
                       size_t n, int accumulate) {
    (void)be;
    mask_gather(dst, src, sd, idx, n, accumulate);
}

static void cpu_scatter(backend *be, void *dst, badam_dtype dd, const float *src,
                        const int32_t *idx, size_t n) {
    (void)be;
    mask_scatter(dst, dd, src, idx, n);
}

static void cpu_layernorm_forward(backend *be, float *y, float *mean, float *rstd, const float *x,
                                  const float *w, const float *b, int n, int C, float eps) {
    (void)be;
    layernorm_forward(y, mean, rstd, x, w, b, n, C, eps);
}

static void cpu_layernorm_backward(backend *be, float *dx, float *dw, float *db, const float *dy,
                                   const float *x, const float *mean, const float *rstd,
                                   const float *w, int n, int C) {
    (void)be;
    layernorm_backward(dx, dw, db, dy, x, mean, rstd, w, n, C);
}

static void cpu_gelu_forward(backend *be, float *y, const float *x, size_t n) {
    (void)be;
    gelu_forward(y, x, n);
}

static void cpu_gelu_backward(backend *be, float *dx, const float *dy, const float *x, size_t n) {
    (void)be;
    gelu_backward(dx, dy, x, n);
}

static void cpu_tanh_forward(backend *be, float *y, const float *x, size_t n) {
    (void)be;
    tanh_forward(y, x, n);
}

static void cpu_tanh_backward(backend *be, float *dx, const float *dy, const float *y, size_t n) {
    (void)be;
    tanh_backward(dx, dy, y, n);
}

static void cpu_attention_bidir_forward(backend *be, float *out, float *lse, const float *q,
                                        const float *k, const float *v, int B, int T, int H, int D,
                                        const uint8_t *key_mask, double p_drop, uint64_t key) {
    attention_bidir_forward(out, lse, q, k, v, B, T, H, D, key_mask, p_drop, key, &be->counters);
}

static void cpu_attention_bidir_backward(backend *be, float *dq, float *dk, float *dv,
                                         const float *dout, const float *out, const float *lse,
                                         const float *q, const float *k, const float *v, int B,
                                         int T, int H, int D, const uint8_t *key_mask,
                                         double p_drop, uint64_t key) {
    attention_bidir_backward(dq, dk, dv, dout, out, lse, q, k, v, B, T, H, D, key_mask, p_drop, key,
                             &be->counters);
}

static double cpu_class_loss(backend *be, float *dlogits, const float *logits,
                             const int32_t *targets, int n, int K, float scale, int *n_counted) {
    (void)be;
    return class_loss(dlogits, logits, targets, n, K, scale, n_counted);
}

static int cpu_galore_projector(backend *be, float *P, const float *G, int rows, int cols, int rank,
                                float *scratch) {
    (void)be;
    return galore_projector(P, G, rows, cols, rank, scratch);
}

static void cpu_relu_forward(backend *be, float *y, const float *x, size_t n) {
    (void)be;
    relu_forward(y, x, n);
}

static void cpu_relu_backward(backend *be, float *dx, const float *dy, const float *y, size_t n) {
    (void)be;
    relu_backward(dx, dy, y, n);
}

static const backend_ops CPU_OPS = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .linear_scratch_floats = linear_scratch_floats,
    .lm_head_loss_workspace_floats = lm_head_loss_workspace_floats,
    .attention_decode_scratch_floats = cpu_decode_scratch,
    .layer_weights_f32 = cpu_layer_weights_f32,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .zero = cpu_zero,
    .copy = cpu_copy,
    .upload = cpu_copy,
    .download = cpu_copy,
    .convert = cpu_convert,
    .add = cpu_add,
    .dropout = cpu_dropout,
    .swiglu_forward = cpu_swiglu_forward,
    .swiglu_backward = cpu_swiglu_backward,
    .gemm_f32 = cpu_gemm_f32,
    .linear_forward = cpu_linear_forward,
    .linear_backward_input = cpu_linear_backward_input,
    .linear_backward_weight = cpu_linear_backward_weight,
    .embedding_forward = cpu_embedding_forward,
    .embedding_backward = cpu_embedding_backward,
    .rmsnorm_forward = cpu_rmsnorm_forward,
    .rmsnorm_backward = cpu_rmsnorm_backward,
    .rope_tables = cpu_rope_tables,
    .rope_forward = cpu_rope_forward,
    .rope_backward = cpu_rope_backward,
    .attention_forward = cpu_attention_forward,
    .attention_backward = cpu_attention_backward,
    .attention_decode = cpu_attention_decode,
    .lm_head_loss = cpu_lm_head_loss,
    .adamw_update = cpu_adamw_update,
    .adamw_update_split = cpu_adamw_update_split,
    .sgd_update = cpu_sgd_update,
    .sgd_update_split = cpu_sgd_update_split,
    .sgd_update_stored = cpu_sgd_update_stored,
    .sum_squares = cpu_sum_squares,
    .scale = cpu_scale,
    .axpy = cpu_axpy,
    .gaussian_perturb = cpu_gaussian_perturb,
    .gaussian_update_stored = cpu_gaussian_update_stored,
    .gather = cpu_gather,
    .scatter = cpu_scatter,
    .layernorm_forward = cpu_layernorm_forward,
    .layernorm_backward = cpu_layernorm_backward,
    .gelu_forward = cpu_gelu_forward,
    .gelu_backward = cpu_gelu_backward,
    .tanh_forward = cpu_tanh_forward,
    .tanh_backward = cpu_tanh_backward,
    .attention_bidir_forward = cpu_attention_bidir_forward,
    .attention_bidir_backward = cpu_attention_bidir_backward,
    .class_loss = cpu_class_loss,
    .galore_projector_scratch_floats = galore_projector_scratch_floats,
    .galore_projector = cpu_galore_projector,
    .relu_forward = cpu_relu_forward,
    .relu_backward = cpu_relu_backward,
};

const backend_ops *backend_cpu_ops(void) {
    return &CPU_OPS;
}

badam_status backend_cpu_create(backend **out, badam_error *err) {
    *out = NULL;
    cpu_backend *c = calloc(1, sizeof *c);
    if (c) c->gemm = gemm_bf16_ctx_create();
    if (!c || !c->gemm) {
        free(c);
        return badam_fail(err, BADAM_E_NOMEM, "CPU backend: out of memory");
    }
    c->base.ops = &CPU_OPS;
    c->n_threads = omp_get_max_threads();
    *out = &c->base;
    return BADAM_OK;
}
