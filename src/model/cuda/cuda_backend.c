/* The CUDA backend: creation, the one device pool, error recording, staging of host operands,
 * the memory ops and the op table (cuda_backend.h says what it does and does not do yet). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/cuda/cuda_internal.h"

/* What creation leaves free on the device beside the pool (the CUDA context, cuBLASLt). */
#define POOL_MARGIN ((size_t)512 << 20)
#define LT_WORKSPACE ((size_t)32 << 20)

void cuda_fail(cuda_backend *c, badam_status st, const char *fmt, ...) {
    if (c->status) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err.message, sizeof c->err.message, fmt, ap);
    va_end(ap);
    c->err.status = st;
    c->status = st;
}

void cuda_check(cuda_backend *c, const char *op) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) cuda_fail(c, BADAM_E_IO, "cuda %s: %s", op, cudaGetErrorString(e));
}

void cuda_unsupported(cuda_backend *c, const char *op) {
    cuda_fail(c, BADAM_E_UNSUPPORTED, "%s: not supported on cuda", op);
}

int cuda_is_dev(const cuda_backend *c, const void *p) {
    const char *q = p;
    return q >= c->pool && q < c->pool + c->pool_bytes;
}

void *cuda_map(const cuda_backend *c, const void *p) {
    const char *q = p;
    if (!q) return NULL;
    if (cuda_is_dev(c, q)) return (void *)q;
    if (c->wt_host && q >= c->wt_host && q < c->wt_host + c->wt_bytes)
        return c->wt_dev + (q - c->wt_host);
    return NULL;
}

void *cuda_own(const cuda_backend *c, const void *p) {
    void *d = cuda_map(c, p);
    return d ? d : (void *)p;
}

/* A pool block of at least `bytes` in *slot (grown by freeing and reallocating). */
static void *grow(cuda_backend *c, void **slot, size_t *have, size_t bytes, const char *what) {
    if (*have >= bytes && *slot) return *slot;
    cuda_pool_free(c, *slot);
    *have = 0;
    size_t want = bytes + bytes / 4;
    *slot = cuda_pool_alloc(c, BADAM_MEM_WORKSPACE, want);
    if (!*slot) {
        cuda_fail(c, BADAM_E_NOMEM, "cuda %s: %zu bytes do not fit in the pool (%zu of %zu used)",
                  what, want, c->used, c->pool_bytes);
        return NULL;
    }
    *have = want;
    return *slot;
}

void *cuda_dev(cuda_backend *c, int slot, const void *p, size_t bytes, int copy_in) {
    if (!p) return NULL;
    void *m = cuda_map(c, p);
    if (m) return m;
    void *d = grow(c, &c->stage[slot], &c->stage_bytes[slot], bytes, "staging of a host operand");
    if (d && copy_in && bytes) cuda_to_dev(c, d, p, bytes);
    return d;
}

void cuda_back(cuda_backend *c, void *p, const void *dev, size_t bytes) {
    if (p && dev && !cuda_map(c, p) && bytes) cuda_to_host(c, p, dev, bytes);
}

void *cuda_tmp(cuda_backend *c, size_t bytes) {
    return grow(c, &c->tmp, &c->tmp_bytes, bytes ? bytes : 1, "scratch");
}

void cuda_to_host(cuda_backend *c, void *host, const void *dev, size_t bytes) {
    if (bytes && cudaMemcpy(host, dev, bytes, cudaMemcpyDefault) != cudaSuccess)
        cuda_check(c, "download");
}

void cuda_to_dev(cuda_backend *c, void *dev, const void *host, size_t bytes) {
    if (bytes && cudaMemcpy(dev, host, bytes, cudaMemcpyDefault) != cudaSuccess)
        cuda_check(c, "upload");
}

static void cu_destroy(backend *be) {
    cuda_backend *c = cuda_of(be);
    if (c->lt) cublasLtDestroy(c->lt);
    if (c->pool) cudaFree(c->pool);
    free(c->segs);
    free(c);
}

static void *cu_alloc(backend *be, badam_mem_category cat, size_t bytes) {
    cuda_backend *c = cuda_of(be);
    void *p = cuda_pool_alloc(c, (int)cat, bytes);
    if (!p) return NULL; /* the caller reports it, as for host memory */
    if (cudaMemsetAsync(p, 0, bytes, 0) != cudaSuccess) cuda_check(c, "alloc");
    return p;
}

static void cu_free(backend *be, void *p) {
    cuda_pool_free(cuda_of(be), p);
}

static void cu_zero(backend *be, void *p, size_t bytes) {
    cuda_backend *c = cuda_of(be);
    if (!bytes) return;
    void *d = cuda_map(c, p);
    if (!d) {
        memset(p, 0, bytes);
        return;
    }
    if (cudaMemsetAsync(d, 0, bytes, 0) != cudaSuccess) cuda_check(c, "zero");
}

static void cu_copy(backend *be, void *dst, const void *src, size_t bytes) {
    cuda_backend *c = cuda_of(be);
    if (bytes &&
        cudaMemcpy(cuda_own(c, dst), cuda_own(c, src), bytes, cudaMemcpyDefault) != cudaSuccess)
        cuda_check(c, "copy");
}

static void cu_upload(backend *be, void *dst, const void *host, size_t bytes) {
    cuda_backend *c = cuda_of(be);
    cuda_to_dev(c, cuda_own(c, dst), host, bytes);
}

static void cu_download(backend *be, void *host, const void *src, size_t bytes) {
    cuda_backend *c = cuda_of(be);
    cuda_to_host(c, host, cuda_own(c, src), bytes);
}

/* The caller's linear scratch is not used: the backend rounds activations into its own. */
static size_t cu_linear_scratch_floats(int in) {
    (void)in;
    return 1;
}

/* lm_head_loss's workspace: logits [chunk, V], gathered h and dh [chunk, C] each, and the row
 * indices and losses (cuda_ops_linear.c: head_ws_of). */
static size_t cu_lm_head_loss_workspace_floats(int chunk, int C, int V) {
    return (size_t)chunk * V + 2 * (size_t)chunk * C + 3 * (size_t)chunk + 8;
}

static size_t cu_decode_scratch(const backend *be, int max_len) {
    (void)be, (void)max_len;
    return 1;
}

/* Weights are used as stored (bf16 GEMMs), never copied to fp32 per layer. */
static int cu_layer_weights_f32(badam_dtype w_dtype) {
    (void)w_dtype;
    return 0;
}

/* GaLore's SVD is not on the device: galore_projector refuses (see cu_galore_projector). */
static size_t cu_galore_scratch_floats(int rows, int cols) {
    (void)rows, (void)cols;
    return 1;
}

/* The table (backend.h's order). */
static const backend_ops CUDA_OPS = {
    .name = "cuda",
    .destroy = cu_destroy,
    .linear_scratch_floats = cu_linear_scratch_floats,
    .lm_head_loss_workspace_floats = cu_lm_head_loss_workspace_floats,
    .attention_decode_scratch_floats = cu_decode_scratch,
    .layer_weights_f32 = cu_layer_weights_f32,
    .alloc = cu_alloc,
    .free = cu_free,
    .zero = cu_zero,
    .copy = cu_copy,
    .upload = cu_upload,
    .download = cu_download,
    .convert = cu_convert,
    .add = cu_add,
    .dropout = cu_dropout,
    .swiglu_forward = cu_swiglu_forward,
    .swiglu_backward = cu_swiglu_backward,
    .gemm_f32 = cu_gemm_f32,
    .linear_forward = cu_linear_forward,
    .linear_backward_input = cu_linear_backward_input,
    .linear_backward_weight = cu_linear_backward_weight,
    .embedding_forward = cu_embedding_forward,
    .embedding_backward = cu_embedding_backward,
    .rmsnorm_forward = cu_rmsnorm_forward,
    .rmsnorm_backward = cu_rmsnorm_backward,
    .rope_tables = cu_rope_tables,
    .rope_forward = cu_rope_forward,
    .rope_backward = cu_rope_backward,
    .attention_forward = cu_attention_forward,
    .attention_backward = cu_attention_backward,
    .attention_decode = cu_attention_decode,
    .lm_head_loss = cu_lm_head_loss,
    .adamw_update = cu_adamw_update,
    .adamw_update_split = cu_adamw_update_split,
    .sgd_update = cu_sgd_update,
    .sgd_update_split = cu_sgd_update_split,
    .sgd_update_stored = cu_sgd_update_stored,
    .sum_squares = cu_sum_squares,
    .scale = cu_scale,
    .axpy = cu_axpy,
    .gaussian_perturb = cu_gaussian_perturb,
    .gaussian_update_stored = cu_gaussian_update_stored,
    .gather = cu_gather,
    .scatter = cu_scatter,
    .layernorm_forward = cu_layernorm_forward,
    .layernorm_backward = cu_layernorm_backward,
    .gelu_forward = cu_gelu_forward,
    .gelu_backward = cu_gelu_backward,
    .tanh_forward = cu_tanh_forward,
    .tanh_backward = cu_tanh_backward,
    .attention_bidir_forward = cu_attention_bidir_forward,
    .attention_bidir_backward = cu_attention_bidir_backward,
    .class_loss = cu_class_loss,
    .galore_projector_scratch_floats = cu_galore_scratch_floats,
    .galore_projector = cu_galore_projector,
    .relu_forward = cu_relu_forward,
    .relu_backward = cu_relu_backward,
};

badam_status backend_cuda_sync_weights(backend *be, badam_error *err) {
    if (!be || be->ops != &CUDA_OPS)
        return badam_fail(err, BADAM_E_INVALID, "cuda weights: not a CUDA backend");
    cuda_backend *c = cuda_of(be);
    if (!c->wt_host || !c->wt_bytes) return BADAM_OK;
    if (cudaMemcpy((void *)c->wt_host, c->wt_dev, c->wt_bytes, cudaMemcpyDeviceToHost) !=
        cudaSuccess)
        return badam_fail(err, BADAM_E_IO, "cuda weights: downloading %zu bytes: %s", c->wt_bytes,
                          cudaGetErrorString(cudaGetLastError()));
    return BADAM_OK;
}

badam_status backend_cuda_keep_weights(backend *be, void *host, size_t bytes, badam_error *err) {
    if (!be || be->ops != &CUDA_OPS)
        return badam_fail(err, BADAM_E_INVALID, "cuda weights: not a CUDA backend");
    badam_status st = host ? backend_cuda_sync_weights(be, err) : BADAM_OK; /* NULL: drop */
    if (st) return st;
    cuda_backend *c = cuda_of(be);
    cuda_pool_free(c, c->wt_dev);
    c->wt_host = NULL, c->wt_dev = NULL, c->wt_bytes = 0;
    if (!host || !bytes) return BADAM_OK;
    char *d = cuda_pool_alloc(c, BADAM_MEM_WEIGHTS, bytes);
    if (!d)
        return badam_fail(err, BADAM_E_NOMEM,
                          "cuda weights: %zu MiB of weights do not fit in the pool (%zu of %zu "
                          "MiB used)",
                          bytes >> 20, c->used >> 20, c->pool_bytes >> 20);
    if (cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice) != cudaSuccess) {
        cuda_pool_free(c, d);
        return badam_fail(err, BADAM_E_IO, "cuda weights: uploading %zu bytes: %s", bytes,
                          cudaGetErrorString(cudaGetLastError()));
    }
    c->wt_host = host, c->wt_dev = d, c->wt_bytes = bytes;
    return BADAM_OK;
}

badam_status backend_cuda_status(backend *be, badam_error *err) {
    cuda_backend *c = cuda_of(be);
    if (!c->status) return BADAM_OK;
    if (err) *err = c->err;
    return c->status;
}

size_t backend_cuda_pool_used(const backend *be) {
    return be && be->ops == &CUDA_OPS ? ((const cuda_backend *)be)->used : 0;
}

size_t backend_cuda_pool_peak(const backend *be) {
    return be && be->ops == &CUDA_OPS ? ((const cuda_backend *)be)->peak : 0;
}

badam_status backend_cuda_memory(const backend *be, cuda_memory_report *out, badam_error *err) {
    memset(out, 0, sizeof *out);
    if (!be || be->ops != &CUDA_OPS)
        return badam_fail(err, BADAM_E_INVALID, "cuda memory: not a CUDA backend");
    const cuda_backend *c = (const cuda_backend *)be;
    memcpy(out->by_category, c->peak_by_cat, sizeof out->by_category);
    out->pool_peak = c->peak, out->pool_bytes = c->pool_bytes;
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess)
        return badam_fail(err, BADAM_E_IO, "cuda memory: cudaMemGetInfo failed");
    out->device_used = total_b - free_b, out->device_total = total_b;
    return BADAM_OK;
}

int backend_cuda_built(void) {
    return 1;
}

badam_status backend_cuda_mem_info(size_t *free_bytes, size_t *total_bytes, char *name,
                                   size_t name_bytes, badam_error *err) {
    *free_bytes = *total_bytes = 0;
    if (name && name_bytes) name[0] = '\0';
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0)
        return badam_fail(err, BADAM_E_UNSUPPORTED, "--device cuda: no CUDA GPU found (%s)",
                          e != cudaSuccess ? cudaGetErrorString(e) : "no devices");
    struct cudaDeviceProp prop;
    if ((e = cudaSetDevice(0)) != cudaSuccess ||
        (e = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess ||
        (e = cudaMemGetInfo(free_bytes, total_bytes)) != cudaSuccess)
        return badam_fail(err, BADAM_E_UNSUPPORTED, "--device cuda: %s", cudaGetErrorString(e));
    if (name && name_bytes) snprintf(name, name_bytes, "%s", prop.name);
    return BADAM_OK;
}

/* The pool size: pool_bytes, else BADAM_CUDA_POOL_MB, else the free memory less the margin. */
static size_t pool_size(size_t pool_bytes, size_t free_bytes) {
    if (pool_bytes) return pool_bytes;
    const char *mb = getenv("BADAM_CUDA_POOL_MB");
    if (mb && atol(mb) > 0) return (size_t)atol(mb) << 20;
    return free_bytes > 2 * POOL_MARGIN ? free_bytes - POOL_MARGIN : free_bytes / 2;
}

static badam_status setup(cuda_backend *c, size_t free_bytes, size_t pool_bytes, badam_error *err) {
    c->pool_bytes = pool_size(pool_bytes, free_bytes);
    if (cudaMalloc((void **)&c->pool, c->pool_bytes) != cudaSuccess) {
        cudaGetLastError();
        c->pool = NULL;
        return badam_fail(err, BADAM_E_NOMEM, "--device cuda: cannot allocate a %zu MiB pool",
                          c->pool_bytes >> 20);
    }
    if (cuda_pool_init(c)) return badam_fail(err, BADAM_E_NOMEM, "cuda: out of host memory");
    if (cublasLtCreate(&c->lt) != CUBLAS_STATUS_SUCCESS)
        return badam_fail(err, BADAM_E_UNSUPPORTED, "--device cuda: cublasLtCreate failed");
    c->lt_ws_bytes = LT_WORKSPACE;
    c->lt_ws = cuda_pool_alloc(c, BADAM_MEM_WORKSPACE, c->lt_ws_bytes);
    if (!c->lt_ws) return badam_fail(err, BADAM_E_NOMEM, "cuda: pool too small");
    const char *g = getenv("BADAM_GEMM");
    c->gemm_fp32 = g && strcmp(g, "fp32") == 0;
    const char *a = getenv("BADAM_CUDA_ATTN");
    c->attn_tiled = a && strcmp(a, "tiled") == 0;
    return BADAM_OK;
}

badam_status backend_cuda_create_sized(backend **out, size_t pool_bytes, badam_error *err) {
    *out = NULL;
    size_t free_bytes, total_bytes;
    badam_status st = backend_cuda_mem_info(&free_bytes, &total_bytes, NULL, 0, err);
    if (st) return st;
    cuda_backend *c = calloc(1, sizeof *c);
    if (!c) return badam_fail(err, BADAM_E_NOMEM, "cuda backend: out of memory");
    c->base.ops = &CUDA_OPS;
    st = setup(c, free_bytes, pool_bytes, err);
    if (st) {
        cu_destroy(&c->base);
        return st;
    }
    *out = &c->base;
    return BADAM_OK;
}

badam_status backend_cuda_create(backend **out, badam_error *err) {
    return backend_cuda_create_sized(out, 0, err);
}
