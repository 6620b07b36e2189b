/* The mprotect backend (mprotect_backend.h). */
#include "mprotect_backend.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct region {
    char *p;
    size_t len;
    badam_mem_category cat;
    size_t accounted; /* badam_alloc_size of the size asked */
} region;

typedef struct mp_backend {
    backend base; /* first: a backend * is an mp_backend * */
    backend_ops ops;
    backend *inner;
    region *regions;
    size_t n_regions, cap_regions, page;
    op_counters before; /* the inner backend's counters when the current op began */
    mprotect_stats stats;
} mp_backend;

static mp_backend *mp(backend *be) {
    return (mp_backend *)be;
}

static void protect_all(mp_backend *c, int prot) {
    for (size_t i = 0; i < c->n_regions; i++) {
        if (mprotect(c->regions[i].p, c->regions[i].len, prot))
            c->stats.failures++;
        else if (prot == PROT_NONE)
            c->stats.closed++;
        else
            c->stats.opened++;
    }
}

/* Opens every region for an op and returns the inner backend to run it on. */
static backend *mp_enter(backend *be) {
    mp_backend *c = mp(be);
    c->stats.ops++;
    c->before = c->inner->counters;
    protect_all(c, PROT_READ | PROT_WRITE);
    return c->inner;
}

/* Closes every region again and adds the op's work to this backend's counters. */
static void mp_leave(backend *be) {
    mp_backend *c = mp(be);
    protect_all(c, PROT_NONE);
    be->counters.gemm_flops += c->inner->counters.gemm_flops - c->before.gemm_flops;
    be->counters.attention_flops += c->inner->counters.attention_flops - c->before.attention_flops;
}

/* mp_<op>: the inner backend's op between mp_enter and mp_leave. */
#define MP_VOID(op, params, args)                                                                  \
    static void mp_##op params {                                                                   \
        backend *in = mp_enter(be);                                                                \
        in->ops->op args;                                                                          \
        mp_leave(be);                                                                              \
    }
#define MP_RET(type, op, params, args)                                                             \
    static type mp_##op params {                                                                   \
        backend *in = mp_enter(be);                                                                \
        type r_ = in->ops->op args;                                                                \
        mp_leave(be);                                                                              \
        return r_;                                                                                 \
    }

static void mp_destroy(backend *be) {
    mp_backend *c = mp(be);
    for (size_t i = 0; i < c->n_regions; i++) munmap(c->regions[i].p, c->regions[i].len);
    backend_destroy(c->inner);
    free(c->regions);
    free(c);
}

static size_t mp_decode_scratch(const backend *be, int max_len) {
    const backend *in = ((const mp_backend *)be)->inner;
    return in->ops->attention_decode_scratch_floats(in, max_len);
}

/* A region of its own, zero-filled (fresh anonymous pages), closed at once. */
static void *mp_alloc(backend *be, badam_mem_category cat, size_t bytes) {
    mp_backend *c = mp(be);
    if ((int)cat < 0 || cat >= BADAM_MEM_CATEGORY_COUNT) return NULL;
    size_t len = (bytes + c->page - 1) / c->page * c->page;
    if (!len) len = c->page;
    if (c->n_regions == c->cap_regions) {
        size_t cap = c->cap_regions ? 2 * c->cap_regions : 64;
        region *r = realloc(c->regions, cap * sizeof *r);
        if (!r) return NULL;
        c->regions = r, c->cap_regions = cap;
    }
    void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        c->stats.failures++;
        return NULL;
    }
    size_t accounted = badam_alloc_size(bytes);
    c->regions[c->n_regions++] = (region){p, len, cat, accounted};
    c->stats.closed++;
    c->stats.live = c->n_regions;
    c->stats.allocs[cat]++;
    c->stats.bytes[cat] += accounted;
    if (c->stats.bytes[cat] > c->stats.peak[cat]) c->stats.peak[cat] = c->stats.bytes[cat];
    return p;
}

static void mp_free(backend *be, void *p) {
    mp_backend *c = mp(be);
    if (!p) return;
    for (size_t i = 0; i < c->n_regions; i++)
        if (c->regions[i].p == p) {
            if (munmap(p, c->regions[i].len)) c->stats.failures++;
            c->stats.bytes[c->regions[i].cat] -= c->regions[i].accounted;
            c->regions[i] = c->regions[--c->n_regions];
            c->stats.live = c->n_regions;
            return;
        }
    c->stats.failures++; /* not one of ours */
}

MP_VOID(zero, (backend * be, void *p, size_t bytes), (in, p, bytes))
MP_VOID(copy, (backend * be, void *dst, const void *src, size_t bytes), (in, dst, src, bytes))
MP_VOID(upload, (backend * be, void *dst, const void *host, size_t bytes), (in, dst, host, bytes))
MP_VOID(download, (backend * be, void *host, const void *src, size_t bytes), (in, host, src, bytes))
MP_VOID(convert,
        (backend * be, void *dst, badam_dtype dd, const void *src, badam_dtype sd, size_t n),
        (in, dst, dd, src, sd, n))
MP_VOID(add, (backend * be, float *y, const float *a, const float *b, size_t n), (in, y, a, b, n))
MP_VOID(dropout,
        (backend * be, float *out, const float *x, size_t n, uint64_t key, size_t first, double p,
         int acc),
        (in, out, x, n, key, first, p, acc))
MP_VOID(swiglu_forward, (backend * be, float *h, const float *g, const float *u, size_t n),
        (in, h, g, u, n))
MP_VOID(swiglu_backward,
        (backend * be, float *dg, float *du, const float *dh, const float *g, const float *u,
         size_t n),
        (in, dg, du, dh, g, u, n))
MP_VOID(gemm_f32,
        (backend * be, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
         const float *B, int ldb, float beta, float *C, int ldc),
        (in, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
MP_VOID(linear_forward,
        (backend * be, float *y, const float *x, const void *w, badam_dtype wd, const float *b,
         int n, int i, int o, float *scratch),
        (in, y, x, w, wd, b, n, i, o, scratch))
MP_VOID(linear_backward_input,
        (backend * be, float *dx, const float *dy, const void *w, badam_dtype wd, int n, int i,
         int o, float *scratch),
        (in, dx, dy, w, wd, n, i, o, scratch))
MP_VOID(linear_backward_weight,
        (backend * be, float *dw, float *db, const float *dy, const float *x, badam_dtype wd, int n,
         int i, int o, float *scratch, size_t sf),
        (in, dw, db, dy, x, wd, n, i, o, scratch, sf))
MP_VOID(embedding_forward,
        (backend * be, float *out, const int32_t *tok, int n, const void *t, badam_dtype td, int C),
        (in, out, tok, n, t, td, C))
MP_VOID(embedding_backward,
        (backend * be, float *dt, const int32_t *tok, int n, const float *dout, int C),
        (in, dt, tok, n, dout, C))
MP_VOID(rmsnorm_forward,
        (backend * be, float *y, float *rstd, const float *x, const float *w, int n, int C,
         float eps),
        (in, y, rstd, x, w, n, C, eps))
MP_VOID(rmsnorm_backward,
        (backend * be, float *dx, float *dw, const float *dy, const float *x, const float *w,
         const float *rstd, int n, int C),
        (in, dx, dw, dy, x, w, rstd, n, C))
MP_VOID(rope_tables,
        (backend * be, float *cos_t, float *sin_t, const float *inv_freq, int T, int half),
        (in, cos_t, sin_t, inv_freq, T, half))
MP_VOID(rope_forward,
        (backend * be, float *x, const int32_t *pos, const float *cos_t, const float *sin_t, int n,
         int heads, int hd),
        (in, x, pos, cos_t, sin_t, n, heads, hd))
MP_VOID(rope_backward,
        (backend * be, float *dx, const int32_t *pos, const float *cos_t, const float *sin_t, int n,
         int heads, int hd),
        (in, dx, pos, cos_t, sin_t, n, heads, hd))
MP_VOID(attention_forward,
        (backend * be, float *out, float *lse, const float *q, const float *k, const float *v,
         int B, int T, int Hq, int Hkv, int D, const int32_t *seg),
        (in, out, lse, q, k, v, B, T, Hq, Hkv, D, seg))
MP_VOID(attention_backward,
        (backend * be, float *dq, float *dk, float *dv, const float *dout, const float *out,
         const float *lse, const float *q, const float *k, const float *v, int B, int T, int Hq,
         int Hkv, int D, const int32_t *seg),
        (in, dq, dk, dv, dout, out, lse, q, k, v, B, T, Hq, Hkv, D, seg))
MP_VOID(attention_decode,
        (backend * be, float *out, const float *q, const float *K, const float *V, int n, int p0,
         int Hq, int Hkv, int D, int kv_stride, int window, int max_len, float *scratch),
        (in, out, q, K, V, n, p0, Hq, Hkv, D, kv_stride, window, max_len, scratch))
MP_RET(double, lm_head_loss,
       (backend * be, float *dh, float *dw, const float *h, const void *w, badam_dtype wd,
        const int32_t *targets, int n, int C, int V, int chunk, float scale, float *work,
        int *n_counted),
       (in, dh, dw, h, w, wd, targets, n, C, V, chunk, scale, work, n_counted))
MP_VOID(adamw_update,
        (backend * be, float *p, float *m, float *v, const float *g, size_t n,
         const adamw_step_args *a, void *w, badam_dtype wd),
        (in, p, m, v, g, n, a, w, wd))
MP_VOID(adamw_update_split,
        (backend * be, uint16_t *w, uint16_t *lo, float *m, float *v, const float *g, size_t n,
         const adamw_step_args *a),
        (in, w, lo, m, v, g, n, a))
MP_VOID(sgd_update,
        (backend * be, float *p, const float *g, size_t n, float lr, float gs, float decay, void *w,
         badam_dtype wd),
        (in, p, g, n, lr, gs, decay, w, wd))
MP_VOID(sgd_update_split,
        (backend * be, uint16_t *w, uint16_t *lo, const float *g, size_t n, float lr, float gs,
         float decay),
        (in, w, lo, g, n, lr, gs, decay))
MP_VOID(sgd_update_stored,
        (backend * be, void *w, badam_dtype wd, const float *g, size_t n, float lr, float gs,
         float decay),
        (in, w, wd, g, n, lr, gs, decay))
MP_RET(double, sum_squares, (backend * be, const float *x, size_t n), (in, x, n))
MP_VOID(scale, (backend * be, float *x, float a, size_t n), (in, x, a, n))
MP_VOID(axpy, (backend * be, float *y, float a, const float *x, size_t n), (in, y, a, x, n))
MP_VOID(gaussian_perturb,
        (backend * be, float *dst, const void *w, badam_dtype wd, size_t n, float eps,
         uint64_t key),
        (in, dst, w, wd, n, eps, key))
MP_VOID(gaussian_update_stored,
        (backend * be, void *w, badam_dtype wd, size_t n, float lr, float coef, float decay,
         uint64_t key),
        (in, w, wd, n, lr, coef, decay, key))
MP_VOID(gather,
        (backend * be, float *dst, const void *src, badam_dtype sd, const int32_t *idx, size_t n,
         int acc),
        (in, dst, src, sd, idx, n, acc))
MP_VOID(scatter,
        (backend * be, void *dst, badam_dtype dd, const float *src, const int32_t *idx, size_t n),
        (in, dst, dd, src, idx, n))
MP_VOID(layernorm_forward,
        (backend * be, float *y, float *mean, float *rstd, const float *x, const float *w,
         const float *b, int n, int C, float eps),
        (in, y, mean, rstd, x, w, b, n, C, eps))
MP_VOID(layernorm_backward,
        (backend * be, float *dx, float *dw, float *db, const float *dy, const float *x,
         const float *mean, const float *rstd, const float *w, int n, int C),
        (in, dx, dw, db, dy, x, mean, rstd, w, n, C))
MP_VOID(gelu_forward, (backend * be, float *y, const float *x, size_t n), (in, y, x, n))
MP_VOID(gelu_backward, (backend * be, float *dx, const float *dy, const float *x, size_t n),
        (in, dx, dy, x, n))
MP_VOID(tanh_forward, (backend * be, float *y, const float *x, size_t n), (in, y, x, n))
MP_VOID(tanh_backward, (backend * be, float *dx, const float *dy, const float *y, size_t n),
        (in, dx, dy, y, n))
MP_VOID(attention_bidir_forward,
        (backend * be, float *out, float *lse, const float *q, const float *k, const float *v,
         int B, int T, int H, int D, const uint8_t *mask, double p, uint64_t key),
        (in, out, lse, q, k, v, B, T, H, D, mask, p, key))
MP_VOID(attention_bidir_backward,
        (backend * be, float *dq, float *dk, float *dv, const float *dout, const float *out,
         const float *lse, const float *q, const float *k, const float *v, int B, int T, int H,
         int D, const uint8_t *mask, double p, uint64_t key),
        (in, dq, dk, dv, dout, out, lse, q, k, v, B, T, H, D, mask, p, key))
MP_RET(double, class_loss,
       (backend * be, float *dz, const float *z, const int32_t *tg, int n, int K, float scale,
        int *counted),
       (in, dz, z, tg, n, K, scale, counted))
MP_VOID(relu_forward, (backend * be, float *y, const float *x, size_t n), (in, y, x, n))
MP_VOID(relu_backward, (backend * be, float *dx, const float *dy, const float *y, size_t n),
        (in, dx, dy, y, n))
MP_RET(int, galore_projector,
       (backend * be, float *P, const float *G, int rows, int cols, int rank, float *scratch),
       (in, P, G, rows, cols, rank, scratch))

/* The table without the context-free size functions, which come from the inner backend's. */
static const backend_ops MP_OPS = {
    .name = "mprotect",
    .destroy = mp_destroy,
    .attention_decode_scratch_floats = mp_decode_scratch,
    .alloc = mp_alloc,
    .free = mp_free,
    .zero = mp_zero,
    .copy = mp_copy,
    .upload = mp_upload,
    .download = mp_download,
    .convert = mp_convert,
    .add = mp_add,
    .dropout = mp_dropout,
    .swiglu_forward = mp_swiglu_forward,
    .swiglu_backward = mp_swiglu_backward,
    .gemm_f32 = mp_gemm_f32,
    .linear_forward = mp_linear_forward,
    .linear_backward_input = mp_linear_backward_input,
    .linear_backward_weight = mp_linear_backward_weight,
    .embedding_forward = mp_embedding_forward,
    .embedding_backward = mp_embedding_backward,
    .rmsnorm_forward = mp_rmsnorm_forward,
    .rmsnorm_backward = mp_rmsnorm_backward,
    .rope_tables = mp_rope_tables,
    .rope_forward = mp_rope_forward,
    .rope_backward = mp_rope_backward,
    .attention_forward = mp_attention_forward,
    .attention_backward = mp_attention_backward,
    .attention_decode = mp_attention_decode,
    .lm_head_loss = mp_lm_head_loss,
    .adamw_update = mp_adamw_update,
    .adamw_update_split = mp_adamw_update_split,
    .sgd_update = mp_sgd_update,
    .sgd_update_split = mp_sgd_update_split,
    .sgd_update_stored = mp_sgd_update_stored,
    .sum_squares = mp_sum_squares,
    .scale = mp_scale,
    .axpy = mp_axpy,
    .gaussian_perturb = mp_gaussian_perturb,
    .gaussian_update_stored = mp_gaussian_update_stored,
    .gather = mp_gather,
    .scatter = mp_scatter,
    .layernorm_forward = mp_layernorm_forward,
    .layernorm_backward = mp_layernorm_backward,
    .gelu_forward = mp_gelu_forward,
    .gelu_backward = mp_gelu_backward,
    .tanh_forward = mp_tanh_forward,
    .tanh_backward = mp_tanh_backward,
    .attention_bidir_forward = mp_attention_bidir_forward,
    .attention_bidir_backward = mp_attention_bidir_backward,
    .class_loss = mp_class_loss,
    .galore_projector = mp_galore_projector,
    .relu_forward = mp_relu_forward,
    .relu_backward = mp_relu_backward,
};

badam_status mprotect_backend_wrap(backend *inner, backend **out, badam_error *err) {
    *out = NULL;
    mp_backend *c = calloc(1, sizeof *c);
    long page = sysconf(_SC_PAGESIZE);
    if (!c || page <= 0) {
        free(c);
        backend_destroy(inner);
        return badam_fail(err, BADAM_E_NOMEM, "mprotect backend: out of memory");
    }
    c->ops = MP_OPS;
    c->ops.linear_scratch_floats = inner->ops->linear_scratch_floats;
    c->ops.lm_head_loss_workspace_floats = inner->ops->lm_head_loss_workspace_floats;
    c->ops.layer_weights_f32 = inner->ops->layer_weights_f32;
    c->ops.galore_projector_scratch_floats = inner->ops->galore_projector_scratch_floats;
    c->base.ops = &c->ops;
    c->inner = inner;
    c->page = (size_t)page;
    *out = &c->base;
    return BADAM_OK;
}

badam_status mprotect_backend_create(backend **out, badam_error *err) {
    backend *inner;
    badam_status st = backend_cpu_create(&inner, err);
    if (st) {
        *out = NULL;
        return st;
    }
    return mprotect_backend_wrap(inner, out, err);
}

int mprotect_backend_is(const backend *be) {
    return be && be->ops->destroy == mp_destroy;
}

mprotect_stats mprotect_backend_stats(const backend *be) {
    return ((const mp_backend *)be)->stats;
}

int mprotect_backend_owns(const backend *be, const void *p) {
    const mp_backend *c = (const mp_backend *)be;
    for (size_t i = 0; i < c->n_regions; i++)
        if ((const char *)p >= c->regions[i].p &&
            (const char *)p < c->regions[i].p + c->regions[i].len)
            return 1;
    return 0;
}
