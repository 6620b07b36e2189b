/* Zeroth-order perturbations and masked (gather / scatter) element ops: MeZO's z regenerated
 * from a key (backend.h: backend_gaussian) and BAdam ratio mode's masked entries (math in
 * ops.h). No fused multiply-add; the draw is the same scalar libm code on every thread. */
#include "model/cpu/ops.h"

/* float(w[i]) for a weight stored in dt */
static inline float load(const void *w, badam_dtype dt, size_t i) {
    if (dt == BADAM_DTYPE_BF16) return badam_bf16_to_f32(((const uint16_t *)w)[i]);
    if (dt == BADAM_DTYPE_F16) return badam_f16_to_f32(((const uint16_t *)w)[i]);
    return ((const float *)w)[i];
}

static inline void put(void *w, badam_dtype dt, size_t i, float p) {
    if (dt == BADAM_DTYPE_BF16)
        ((uint16_t *)w)[i] = badam_f32_to_bf16(p);
    else if (dt == BADAM_DTYPE_F16)
        ((uint16_t *)w)[i] = badam_f32_to_f16(p);
    else
        ((float *)w)[i] = p;
}

void zo_gaussian_perturb(float *dst, const void *w, badam_dtype dt, size_t n, float eps,
                         uint64_t key) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float d = eps * backend_gaussian(key, i);
        dst[i] = load(w, dt, i) + d;
    }
}

void zo_gaussian_update_stored(void *w, badam_dtype dt, size_t n, float lr, float coef,
                               float weight_decay, uint64_t key) {
    const float decay = 1.0f - lr * weight_decay, step = lr * coef;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float a = load(w, dt, i) * decay, b = step * backend_gaussian(key, i);
        put(w, dt, i, a - b);
    }
}

void mask_gather(float *dst, const void *src, badam_dtype dt, const int32_t *idx, size_t n,
                 int accumulate) {
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < n; k++) {
        float x = load(src, dt, (size_t)idx[k]);
        dst[k] = accumulate ? dst[k] + x : x;
    }
}

void mask_scatter(void *dst, badam_dtype dt, const float *src, const int32_t *idx, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < n; k++) put(dst, dt, (size_t)idx[k], src[k]);
}
