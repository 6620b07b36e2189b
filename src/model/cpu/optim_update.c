/* Optimizer element updates and reductions (math in ops.h, "Optimizer element updates"). One
 * pass over memory per tensor; the loops vectorise (no -fmath-errno, no fused multiply-add). */
#include <math.h>

#include "model/cpu/ops.h"

/* Writes p back to the storage copy: bf16 round-to-nearest-even, or f16 / f32. */
static inline void store(void *weight, badam_dtype dt, size_t i, float p) {
    if (dt == BADAM_DTYPE_BF16)
        ((uint16_t *)weight)[i] = badam_f32_to_bf16(p);
    else if (dt == BADAM_DTYPE_F16)
        ((uint16_t *)weight)[i] = badam_f32_to_f16(p);
    else
        ((float *)weight)[i] = p;
}

/* The per-step constants of AdamW: decay, the bias-corrected step size and sqrt(1 - beta2^t). */
typedef struct adamw_consts {
    float b1, b2, eps, decay, step_size, bc2_sqrt;
} adamw_consts;

static adamw_consts adamw_consts_of(const adamw_step_args *a) {
    const double bc1 = 1.0 - pow(a->beta1, a->step), bc2 = 1.0 - pow(a->beta2, a->step);
    adamw_consts c = {
        a->beta1,        a->beta2, a->eps, 1.0f - a->lr * a->weight_decay, (float)(a->lr / bc1),
        (float)sqrt(bc2)};
    return c;
}

/* One AdamW element (opt_adamw_update's math); returns the new parameter. */
static inline float adamw_step(float p, float g, float *m, float *v, const adamw_consts *c) {
    float mi = *m * c->b1 + g * (1.0f - c->b1);
    float vi = *v * c->b2 + g * g * (1.0f - c->b2);
    *m = mi, *v = vi;
    return p * c->decay - c->step_size * (mi / (sqrtf(vi) / c->bc2_sqrt + c->eps));
}

void opt_adamw_update(float *param, float *m, float *v, const float *grad, size_t n,
                      const adamw_step_args *a, void *weight, badam_dtype weight_dtype) {
    const adamw_consts c = adamw_consts_of(a);
    const float grad_scale = a->grad_scale;
    if (!weight) { /* branch-free loop, so it vectorises */
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            param[i] = adamw_step(param[i], grad[i] * grad_scale, &m[i], &v[i], &c);
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float p = adamw_step(param[i], grad[i] * grad_scale, &m[i], &v[i], &c);
        param[i] = p;
        store(weight, weight_dtype, i, p);
    }
}

void opt_adamw_update_split(uint16_t *weight, uint16_t *lo, float *m, float *v, const float *grad,
                            size_t n, const adamw_step_args *a) {
    const adamw_consts c = adamw_consts_of(a);
    const float grad_scale = a->grad_scale;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float p =
            adamw_step(badam_master_join(weight[i], lo[i]), grad[i] * grad_scale, &m[i], &v[i], &c);
        badam_master_split(p, &weight[i], &lo[i]);
    }
}

void opt_sgd_update_split(uint16_t *weight, uint16_t *lo, const float *grad, size_t n, float lr,
                          float grad_scale, float weight_decay) {
    const float decay = 1.0f - lr * weight_decay, step = lr * grad_scale;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float p = badam_master_join(weight[i], lo[i]) * decay - step * grad[i];
        badam_master_split(p, &weight[i], &lo[i]);
    }
}

void opt_sgd_update(float *param, const float *grad, size_t n, float lr, float grad_scale,
                    float weight_decay, void *weight, badam_dtype weight_dtype) {
    const float decay = 1.0f - lr * weight_decay, step = lr * grad_scale;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float p = param[i] * decay - step * grad[i];
        param[i] = p;
        if (weight) store(weight, weight_dtype, i, p);
    }
}

void opt_sgd_update_stored(void *weight, badam_dtype weight_dtype, const float *grad, size_t n,
                           float lr, float grad_scale, float weight_decay) {
    const float decay = 1.0f - lr * weight_decay, step = lr * grad_scale;
    const uint16_t *w16 = weight;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float p = weight_dtype == BADAM_DTYPE_BF16  ? badam_bf16_to_f32(w16[i])
                  : weight_dtype == BADAM_DTYPE_F16 ? badam_f16_to_f32(w16[i])
                                                    : ((const float *)weight)[i];
        store(weight, weight_dtype, i, p * decay - step * grad[i]);
    }
}

double sum_squares_f32(const float *x, size_t n) {
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

void scale_f32(float *x, float a, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] *= a;
}

void axpy_f32(float *y, float a, const float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}
