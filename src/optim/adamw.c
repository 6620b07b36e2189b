/* Fused optimizer updates (math in include/badam/optim.h). One pass over memory per tensor. */
#include <math.h>

#include "badam/optim.h"

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

static adamw_consts adamw_consts_of(float lr, float weight_decay, int step,
                                    const adamw_hparams *h) {
    const double bc1 = 1.0 - pow(h->beta1, step), bc2 = 1.0 - pow(h->beta2, step);
    adamw_consts c = {h->beta1,          h->beta2,        h->eps, 1.0f - lr * weight_decay,
                      (float)(lr / bc1), (float)sqrt(bc2)};
    return c;
}

/* One AdamW element (adamw_update's math); returns the new parameter. */
static inline float adamw_step(float p, float g, float *m, float *v, const adamw_consts *c) {
    float mi = *m * c->b1 + g * (1.0f - c->b1);
    float vi = *v * c->b2 + g * g * (1.0f - c->b2);
    *m = mi, *v = vi;
    return p * c->decay - c->step_size * (mi / (sqrtf(vi) / c->bc2_sqrt + c->eps));
}

void adamw_update(float *param, float *m, float *v, const float *grad, size_t n, float lr,
                  float grad_scale, float weight_decay, int step, const adamw_hparams *h,
                  void *weight, badam_dtype weight_dtype) {
    const adamw_consts c = adamw_consts_of(lr, weight_decay, step, h);
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

void adamw_update_split(uint16_t *weight, uint16_t *lo, float *m, float *v, const float *grad,
                        size_t n, float lr, float grad_scale, float weight_decay, int step,
                        const adamw_hparams *h) {
    const adamw_consts c = adamw_consts_of(lr, weight_decay, step, h);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float p =
            adamw_step(badam_master_join(weight[i], lo[i]), grad[i] * grad_scale, &m[i], &v[i], &c);
        badam_master_split(p, &weight[i], &lo[i]);
    }
}

void sgd_update_split(uint16_t *weight, uint16_t *lo, const float *grad, size_t n, float lr,
                      float grad_scale, float weight_decay) {
    const float decay = 1.0f - lr * weight_decay, step = lr * grad_scale;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float p = badam_master_join(weight[i], lo[i]) * decay - step * grad[i];
        badam_master_split(p, &weight[i], &lo[i]);
    }
}

void sgd_update(float *param, const float *grad, size_t n, float lr, float grad_scale,
                float weight_decay, void *weight, badam_dtype weight_dtype) {
    const float decay = 1.0f - lr * weight_decay, step = lr * grad_scale;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float p = param[i] * decay - step * grad[i];
        param[i] = p;
        if (weight) store(weight, weight_dtype, i, p);
    }
}

void sgd_update_stored(void *weight, badam_dtype weight_dtype, const float *grad, size_t n,
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

double grad_sum_squares(const float *grad, size_t n) {
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (size_t i = 0; i < n; i++) s += (double)grad[i] * grad[i];
    return s;
}
