/* Elementwise, optimizer, reduction and zeroth-order ops of the CUDA backend (backend.h states
 * each; the kernels are in cuda_elementwise.cu and cuda_optim.cu). Operands that backend.h lets
 * be host memory (weights) are staged through the pool (cuda_dev / cuda_back). */
#include <math.h>
#include <stdlib.h>

#include "model/cuda/cuda_internal.h"
#include "model/cuda/cuda_kernels.h"

void cu_convert(backend *be, void *dst, badam_dtype dd, const void *src, badam_dtype sd, size_t n) {
    cuda_backend *c = cuda_of(be);
    const void *s = cuda_dev(c, 0, src, n * badam_dtype_size(sd), 1);
    void *d = cuda_dev(c, 1, dst, n * badam_dtype_size(dd), 0);
    if (!s || !d) return;
    cuk_convert(d, (int)dd, s, (int)sd, n);
    cuda_check(c, "convert");
    cuda_back(c, dst, d, n * badam_dtype_size(dd));
}

void cu_add(backend *be, float *y, const float *a, const float *b, size_t n) {
    cuk_add(y, a, b, n);
    cuda_check(cuda_of(be), "add");
}

void cu_dropout(backend *be, float *out, const float *x, size_t n, uint64_t key, size_t first,
                double p, int accumulate) {
    cuk_dropout(out, x, n, key, first, p, accumulate);
    cuda_check(cuda_of(be), "dropout");
}

void cu_swiglu_forward(backend *be, float *h, const float *g, const float *u, size_t n) {
    cuk_swiglu_forward(h, g, u, n);
    cuda_check(cuda_of(be), "swiglu_forward");
}

void cu_swiglu_backward(backend *be, float *dg, float *du, const float *dh, const float *g,
                        const float *u, size_t n) {
    cuk_swiglu_backward(dg, du, dh, g, u, n);
    cuda_check(cuda_of(be), "swiglu_backward");
}

void cu_gelu_forward(backend *be, float *y, const float *x, size_t n) {
    cuk_gelu_forward(y, x, n);
    cuda_check(cuda_of(be), "gelu_forward");
}

void cu_gelu_backward(backend *be, float *dx, const float *dy, const float *x, size_t n) {
    cuk_gelu_backward(dx, dy, x, n);
    cuda_check(cuda_of(be), "gelu_backward");
}

void cu_tanh_forward(backend *be, float *y, const float *x, size_t n) {
    cuk_tanh_forward(y, x, n);
    cuda_check(cuda_of(be), "tanh_forward");
}

void cu_tanh_backward(backend *be, float *dx, const float *dy, const float *y, size_t n) {
    cuk_tanh_backward(dx, dy, y, n);
    cuda_check(cuda_of(be), "tanh_backward");
}

void cu_relu_forward(backend *be, float *y, const float *x, size_t n) {
    cuk_relu_forward(y, x, n);
    cuda_check(cuda_of(be), "relu_forward");
}

void cu_relu_backward(backend *be, float *dx, const float *dy, const float *y, size_t n) {
    cuk_relu_backward(dx, dy, y, n);
    cuda_check(cuda_of(be), "relu_backward");
}

/* The per-step AdamW constants, computed as model/cpu/optim_update.c does. */
static cuk_adamw adamw_consts(const adamw_step_args *a) {
    const double bc1 = 1.0 - pow(a->beta1, a->step), bc2 = 1.0 - pow(a->beta2, a->step);
    cuk_adamw k = {a->beta1,
                   a->beta2,
                   a->eps,
                   1.0f - a->lr * a->weight_decay,
                   (float)(a->lr / bc1),
                   (float)sqrt(bc2),
                   a->grad_scale};
    return k;
}

void cu_adamw_update(backend *be, float *param, float *m, float *v, const float *grad, size_t n,
                     const adamw_step_args *a, void *weight, badam_dtype wd) {
    cuda_backend *c = cuda_of(be);
    size_t wbytes = n * badam_dtype_size(wd);
    void *w = weight ? cuda_dev(c, 0, weight, wbytes, 0) : NULL;
    if (weight && !w) return;
    float *pd = cuda_dev(c, 1, param, n * sizeof(float), 1); /* fp32 storage: the weight */
    if (!pd) return;
    cuk_adamw_update(pd, m, v, grad, n, adamw_consts(a), w, (int)wd);
    cuda_check(c, "adamw_update");
    cuda_back(c, param, pd, n * sizeof(float));
    if (weight) cuda_back(c, weight, w, wbytes);
}

void cu_adamw_update_split(backend *be, uint16_t *weight, uint16_t *lo, float *m, float *v,
                           const float *grad, size_t n, const adamw_step_args *a) {
    cuda_backend *c = cuda_of(be);
    uint16_t *w = cuda_dev(c, 0, weight, n * 2, 1);
    if (!w) return;
    cuk_adamw_update_split(w, lo, m, v, grad, n, adamw_consts(a));
    cuda_check(c, "adamw_update_split");
    cuda_back(c, weight, w, n * 2);
}

void cu_sgd_update(backend *be, float *param, const float *grad, size_t n, float lr,
                   float grad_scale, float weight_decay, void *weight, badam_dtype wd) {
    cuda_backend *c = cuda_of(be);
    size_t wbytes = n * badam_dtype_size(wd);
    void *w = weight ? cuda_dev(c, 0, weight, wbytes, 0) : NULL;
    if (weight && !w) return;
    float *pd = cuda_dev(c, 1, param, n * sizeof(float), 1); /* fp32 storage: the weight */
    if (!pd) return;
    cuk_sgd_update(pd, grad, n, 1.0f - lr * weight_decay, lr * grad_scale, w, (int)wd);
    cuda_check(c, "sgd_update");
    cuda_back(c, param, pd, n * sizeof(float));
    if (weight) cuda_back(c, weight, w, wbytes);
}

void cu_sgd_update_split(backend *be, uint16_t *weight, uint16_t *lo, const float *grad, size_t n,
                         float lr, float grad_scale, float weight_decay) {
    cuda_backend *c = cuda_of(be);
    uint16_t *w = cuda_dev(c, 0, weight, n * 2, 1);
    if (!w) return;
    cuk_sgd_update_split(w, lo, grad, n, 1.0f - lr * weight_decay, lr * grad_scale);
    cuda_check(c, "sgd_update_split");
    cuda_back(c, weight, w, n * 2);
}

void cu_sgd_update_stored(backend *be, void *weight, badam_dtype wd, const float *grad, size_t n,
                          float lr, float grad_scale, float weight_decay) {
    cuda_backend *c = cuda_of(be);
    size_t wbytes = n * badam_dtype_size(wd);
    void *w = cuda_dev(c, 0, weight, wbytes, 1);
    if (!w) return;
    cuk_sgd_update_stored(w, (int)wd, grad, n, 1.0f - lr * weight_decay, lr * grad_scale);
    cuda_check(c, "sgd_update_stored");
    cuda_back(c, weight, w, wbytes);
}

/* The partial sums of each block, added on the host in block order (a fixed order per n). */
double cu_sum_squares(backend *be, const float *x, size_t n) {
    cuda_backend *c = cuda_of(be);
    double part[CUK_SUMSQ_BLOCKS], s = 0.0;
    double *d = cuda_tmp(c, sizeof part);
    if (!d || n == 0) return 0.0;
    cuk_sum_squares(d, x, n);
    cuda_check(c, "sum_squares");
    cuda_to_host(c, part, d, sizeof part);
    for (int b = 0; b < CUK_SUMSQ_BLOCKS; b++) s += part[b];
    return s;
}

void cu_scale(backend *be, float *x, float a, size_t n) {
    cuk_scale(x, a, n);
    cuda_check(cuda_of(be), "scale");
}

void cu_axpy(backend *be, float *y, float a, const float *x, size_t n) {
    cuk_axpy(y, a, x, n);
    cuda_check(cuda_of(be), "axpy");
}

void cu_gaussian_perturb(backend *be, float *dst, const void *w, badam_dtype wd, size_t n,
                         float eps, uint64_t key) {
    cuda_backend *c = cuda_of(be);
    const void *s = cuda_dev(c, 0, w, n * badam_dtype_size(wd), 1);
    if (!s) return;
    cuk_gaussian_perturb(dst, s, (int)wd, n, eps, key);
    cuda_check(c, "gaussian_perturb");
}

void cu_gaussian_update_stored(backend *be, void *w, badam_dtype wd, size_t n, float lr, float coef,
                               float weight_decay, uint64_t key) {
    cuda_backend *c = cuda_of(be);
    size_t bytes = n * badam_dtype_size(wd);
    void *d = cuda_dev(c, 0, w, bytes, 1);
    if (!d) return;
    cuk_gaussian_update_stored(d, (int)wd, n, lr, coef, weight_decay, key);
    cuda_check(c, "gaussian_update_stored");
    cuda_back(c, w, d, bytes);
}

/* Host src: the indices come to the host and the rows are gathered there (the size of src is
 * not known, so it cannot be staged whole). */
void cu_gather(backend *be, float *dst, const void *src, badam_dtype sd, const int32_t *idx,
               size_t n, int accumulate) {
    cuda_backend *c = cuda_of(be);
    if (cuda_map(c, src)) {
        cuk_gather(dst, cuda_map(c, src), (int)sd, idx, n, accumulate);
        cuda_check(c, "gather");
        return;
    }
    int32_t *hi = malloc(n * sizeof *hi + 1);
    float *hv = malloc(n * sizeof *hv + 1), *d = cuda_tmp(c, n * sizeof *hv);
    if (!hi || !hv || !d) {
        cuda_fail(c, BADAM_E_NOMEM, "cuda gather: out of memory");
    } else {
        cuda_to_host(c, hi, idx, n * sizeof *hi);
        size_t es = badam_dtype_size(sd);
        for (size_t k = 0; k < n; k++)
            badam_convert(&hv[k], BADAM_DTYPE_F32, (const char *)src + (size_t)hi[k] * es, sd, 1);
        cuda_to_dev(c, d, hv, n * sizeof *hv);
        if (accumulate)
            cuk_add(dst, dst, d, n);
        else
            cuda_to_dev(c, dst, hv, n * sizeof *hv);
        cuda_check(c, "gather");
    }
    free(hi), free(hv);
}

/* Host dst: indices and values come to the host and are scattered there. */
void cu_scatter(backend *be, void *dst, badam_dtype dd, const float *src, const int32_t *idx,
                size_t n) {
    cuda_backend *c = cuda_of(be);
    if (cuda_map(c, dst)) {
        cuk_scatter(cuda_map(c, dst), (int)dd, src, idx, n);
        cuda_check(c, "scatter");
        return;
    }
    int32_t *hi = malloc(n * sizeof *hi + 1);
    float *hv = malloc(n * sizeof *hv + 1);
    if (!hi || !hv) {
        cuda_fail(c, BADAM_E_NOMEM, "cuda scatter: out of memory");
    } else {
        cuda_to_host(c, hi, idx, n * sizeof *hi);
        cuda_to_host(c, hv, src, n * sizeof *hv);
        size_t es = badam_dtype_size(dd);
        for (size_t k = 0; k < n; k++)
            badam_convert((char *)dst + (size_t)hi[k] * es, dd, &hv[k], BADAM_DTYPE_F32, 1);
    }
    free(hi), free(hv);
}
