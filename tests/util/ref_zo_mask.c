/* The reference backend's zeroth-order and masked ops (backend.h: gaussian_perturb,
 * gaussian_update_stored, gather, scatter) as plain loops over badam_convert, one element at a
 * time, from the math in backend.h. */
#include "badam/dtype.h"
#include "ref_backend.h"

static float get(const void *w, badam_dtype dt, size_t i) {
    float x;
    size_t size = dt == BADAM_DTYPE_F32 ? 4 : 2;
    badam_convert(&x, BADAM_DTYPE_F32, (const char *)w + i * size, dt, 1);
    return x;
}

static void set(void *w, badam_dtype dt, size_t i, float x) {
    size_t size = dt == BADAM_DTYPE_F32 ? 4 : 2;
    badam_convert((char *)w + i * size, dt, &x, BADAM_DTYPE_F32, 1);
}

void ref_gaussian_perturb(backend *be, float *dst, const void *w, badam_dtype wd, size_t n,
                          float eps, uint64_t key) {
    (void)be;
    for (size_t i = 0; i < n; i++) {
        float z = backend_gaussian(key, i);
        float d = eps * z;
        dst[i] = get(w, wd, i) + d;
    }
}

void ref_gaussian_update_stored(backend *be, void *w, badam_dtype wd, size_t n, float lr,
                                float coef, float weight_decay, uint64_t key) {
    (void)be;
    float decay = 1.0f - lr * weight_decay, step = lr * coef;
    for (size_t i = 0; i < n; i++) {
        float a = get(w, wd, i) * decay;
        float b = step * backend_gaussian(key, i);
        set(w, wd, i, a - b);
    }
}

void ref_gather(backend *be, float *dst, const void *src, badam_dtype sd, const int32_t *idx,
                size_t n, int accumulate) {
    (void)be;
    for (size_t k = 0; k < n; k++) {
        float x = get(src, sd, (size_t)idx[k]);
        dst[k] = accumulate ? dst[k] + x : x;
    }
}

void ref_scatter(backend *be, void *dst, badam_dtype dd, const float *src, const int32_t *idx,
                 size_t n) {
    (void)be;
    for (size_t k = 0; k < n; k++) set(dst, dd, (size_t)idx[k], src[k]);
}
