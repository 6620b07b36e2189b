/* Model ops of the CUDA backend: embedding, norms, RoPE, attention and the classification loss
 * (backend.h states each; kernels in cuda_rows.cu, cuda_attention.cu, cuda_loss.cu). The
 * encoder's bidirectional attention and GaLore's SVD run on the host (cuda_host_ops.c). */
#include <stdlib.h>

#include "model/cuda/cuda_internal.h"
#include "model/cuda/cuda_kernels.h"

/* Host table: the tokens come to the host, the rows are converted there and uploaded. */
static void embed_from_host(cuda_backend *c, float *out, const int32_t *tokens, int n,
                            const void *table, badam_dtype td, int C) {
    size_t row = (size_t)C * badam_dtype_size(td);
    int32_t *ht = malloc(sizeof *ht * (size_t)n + 1);
    float *hv = malloc(sizeof *hv * (size_t)n * C + 1);
    if (!ht || !hv) {
        cuda_fail(c, BADAM_E_NOMEM, "cuda embedding_forward: out of memory");
    } else {
        cuda_to_host(c, ht, tokens, sizeof *ht * (size_t)n);
        for (int i = 0; i < n; i++)
            badam_convert(hv + (size_t)i * C, BADAM_DTYPE_F32,
                          (const char *)table + (size_t)ht[i] * row, td, (size_t)C);
        cuda_to_dev(c, out, hv, sizeof *hv * (size_t)n * C);
    }
    free(ht), free(hv);
}

void cu_embedding_forward(backend *be, float *out, const int32_t *tokens, int n, const void *table,
                          badam_dtype td, int C) {
    cuda_backend *c = cuda_of(be);
    if (!cuda_map(c, table))
        embed_from_host(c, out, tokens, n, table, td, C);
    else
        cuk_embedding_forward(out, tokens, n, cuda_map(c, table), (int)td, C);
    cuda_check(c, "embedding_forward");
}

void cu_embedding_backward(backend *be, float *dtable, const int32_t *tokens, int n,
                           const float *dout, int C) {
    cuk_embedding_backward(dtable, tokens, n, dout, C);
    cuda_check(cuda_of(be), "embedding_backward");
}

/* A norm's fp32 weight or bias (C floats): device memory, resident, or staged in `slot`. */
static const float *small_param(cuda_backend *c, int slot, const float *p, int C) {
    return cuda_dev(c, slot, p, sizeof(float) * (size_t)(C > 0 ? C : 0), 1);
}

void cu_rmsnorm_forward(backend *be, float *y, float *rstd, const float *x, const float *w, int n,
                        int C, float eps) {
    cuda_backend *c = cuda_of(be);
    const float *wd = small_param(c, 2, w, C);
    if (w && !wd) return;
    cuk_rmsnorm_forward(y, rstd, x, wd, n, C, eps);
    cuda_check(c, "rmsnorm_forward");
}

void cu_rmsnorm_backward(backend *be, float *dx, float *dw, const float *dy, const float *x,
                         const float *w, const float *rstd, int n, int C) {
    cuda_backend *c = cuda_of(be);
    const float *wd = small_param(c, 2, w, C);
    if (w && !wd) return;
    cuk_rmsnorm_backward(dx, dw, dy, x, wd, rstd, n, C);
    cuda_check(c, "rmsnorm_backward");
}

void cu_layernorm_forward(backend *be, float *y, float *mean, float *rstd, const float *x,
                          const float *w, const float *b, int n, int C, float eps) {
    cuda_backend *c = cuda_of(be);
    const float *wd = small_param(c, 0, w, C), *bd = small_param(c, 2, b, C);
    if ((w && !wd) || (b && !bd)) return;
    cuk_layernorm_forward(y, mean, rstd, x, wd, bd, n, C, eps);
    cuda_check(c, "layernorm_forward");
}

void cu_layernorm_backward(backend *be, float *dx, float *dw, float *db, const float *dy,
                           const float *x, const float *mean, const float *rstd, const float *w,
                           int n, int C) {
    cuda_backend *c = cuda_of(be);
    const float *wd = small_param(c, 2, w, C);
    if (w && !wd) return;
    cuk_layernorm_backward(dx, dw, db, dy, x, mean, rstd, wd, n, C);
    cuda_check(c, "layernorm_backward");
}

void cu_rope_tables(backend *be, float *cos_t, float *sin_t, const float *inv_freq, int T,
                    int half) {
    cuda_backend *c = cuda_of(be);
    const float *f = cuda_dev(c, 0, inv_freq, sizeof(float) * (size_t)half, 1);
    if (!f) return;
    cuk_rope_tables(cos_t, sin_t, f, T, half);
    cuda_check(c, "rope_tables");
}

void cu_rope_forward(backend *be, float *x, const int32_t *pos, const float *cos_t,
                     const float *sin_t, int n, int heads, int head_dim) {
    cuk_rope(x, pos, cos_t, sin_t, n, heads, head_dim, 0);
    cuda_check(cuda_of(be), "rope_forward");
}

void cu_rope_backward(backend *be, float *dx, const int32_t *pos, const float *cos_t,
                      const float *sin_t, int n, int heads, int head_dim) {
    cuk_rope(dx, pos, cos_t, sin_t, n, heads, head_dim, 1);
    cuda_check(cuda_of(be), "rope_backward");
}

/* (query, key) pairs of the causal mask (model/cpu/attention.c's count): B Hq T(T+1)/2, or with
 * packed segments sum over rows of (t - seg_start + 1) Hq (seg_start read back to the host). */
static uint64_t causal_pairs(cuda_backend *c, int B, int T, int Hq, const int32_t *seg) {
    if (!seg) return (uint64_t)B * Hq * ((uint64_t)T * (T + 1) / 2);
    size_t n = (size_t)B * T;
    int32_t *h = malloc(sizeof *h * n + 1);
    uint64_t pairs = 0;
    if (!h) return 0;
    cuda_to_host(c, h, seg, sizeof *h * n);
    for (size_t i = 0; i < n; i++) pairs += (uint64_t)((int)(i % (size_t)T) - h[i] + 1);
    free(h);
    return pairs * (uint64_t)Hq;
}

static int attention_shape_ok(cuda_backend *c, const char *op, int D) {
    if (D <= CUK_ATTN_MAX_D) return 1;
    cuda_fail(c, BADAM_E_UNSUPPORTED, "%s: head_dim %d above %d not supported on cuda", op, D,
              CUK_ATTN_MAX_D);
    return 0;
}

void cu_attention_forward(backend *be, float *out, float *lse, const float *q, const float *k,
                          const float *v, int B, int T, int Hq, int Hkv, int D,
                          const int32_t *seg_start) {
    cuda_backend *c = cuda_of(be);
    if (!attention_shape_ok(c, "attention_forward", D)) return;
    if (c->attn_tiled)
        cuk_attention_forward_tiled(out, lse, q, k, v, B, T, Hq, Hkv, D, seg_start);
    else
        cuk_attention_forward(out, lse, q, k, v, B, T, Hq, Hkv, D, seg_start);
    cuda_check(c, "attention_forward");
    be->counters.attention_flops += 4ull * (uint64_t)D * causal_pairs(c, B, T, Hq, seg_start);
}

void cu_attention_backward(backend *be, float *dq, float *dk, float *dv, const float *dout,
                           const float *out, const float *lse, const float *q, const float *k,
                           const float *v, int B, int T, int Hq, int Hkv, int D,
                           const int32_t *seg_start) {
    cuda_backend *c = cuda_of(be);
    if (!attention_shape_ok(c, "attention_backward", D)) return;
    float *delta = cuda_tmp(c, sizeof(float) * (size_t)B * Hq * T);
    if (!delta) return;
    if (c->attn_tiled)
        cuk_attention_backward_tiled(dq, dk, dv, dout, out, lse, q, k, v, B, T, Hq, Hkv, D,
                                     seg_start, delta);
    else
        cuk_attention_backward(dq, dk, dv, dout, out, lse, q, k, v, B, T, Hq, Hkv, D, seg_start,
                               delta);
    cuda_check(c, "attention_backward");
    uint64_t products = (uint64_t)(dq || dk) + (dq != NULL) + (dk != NULL) + (dv != NULL);
    be->counters.attention_flops +=
        products * 2ull * (uint64_t)D * causal_pairs(c, B, T, Hq, seg_start);
}

void cu_attention_decode(backend *be, float *out, const float *q, const float *K, const float *V,
                         int n, int p0, int Hq, int Hkv, int D, int kv_stride, int window,
                         int max_len, float *scratch) {
    cuda_backend *c = cuda_of(be);
    (void)max_len, (void)scratch;
    if (!attention_shape_ok(c, "attention_decode", D)) return;
    cuk_attention_decode(out, q, K, V, n, p0, Hq, Hkv, D, kv_stride, window);
    cuda_check(c, "attention_decode");
}

/* Per-row losses on the device, summed on the host in row order over rows with a target. */
double cu_class_loss(backend *be, float *dlogits, const float *logits, const int32_t *targets,
                     int n, int K, float scale, int *n_counted) {
    cuda_backend *c = cuda_of(be);
    *n_counted = 0;
    if (n <= 0) return 0.0;
    double *dl = cuda_tmp(c, sizeof(double) * (size_t)n), total = 0.0;
    double *hl = malloc(sizeof *hl * (size_t)n);
    int32_t *ht = malloc(sizeof *ht * (size_t)n);
    if (dl && hl && ht) {
        cuk_cross_entropy_rows(dlogits, dl, logits, targets, NULL, n, K, scale);
        cuda_check(c, "class_loss");
        cuda_to_host(c, hl, dl, sizeof *hl * (size_t)n);
        cuda_to_host(c, ht, targets, sizeof *ht * (size_t)n);
        for (int i = 0; i < n; i++)
            if (ht[i] != LOSS_IGNORE_INDEX) total += hl[i], ++*n_counted;
    } else if (dl) {
        cuda_fail(c, BADAM_E_NOMEM, "cuda class_loss: out of memory");
    }
    free(hl), free(ht);
    return total;
}
