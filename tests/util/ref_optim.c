/* The reference backend's optimizer ops (ref_backend.h): each element in double from the fp32
 * inputs, rounded to fp32 once when stored; a stored copy is the stored fp32 value rounded by
 * badam_convert's rules. Math: model/cpu/ops.h, "Optimizer element updates". */
#include <math.h>

#include "ref_backend.h"

static void ref_store(void *weight, badam_dtype dt, size_t i, float p) {
    badam_convert((char *)weight + i * badam_dtype_size(dt), dt, &p, BADAM_DTYPE_F32, 1);
}

/* One AdamW element in double; m and v are updated, the new parameter returned. */
static double ref_adamw_elem(double p, float g32, float *m, float *v, const adamw_step_args *a) {
    double b1 = a->beta1, b2 = a->beta2, g = (double)g32 * a->grad_scale;
    double bc1 = 1.0 - pow(b1, a->step), bc2 = 1.0 - pow(b2, a->step);
    double mi = b1 * *m + (1.0 - b1) * g, vi = b2 * *v + (1.0 - b2) * g * g;
    *m = (float)mi, *v = (float)vi;
    double decay = 1.0 - (double)a->lr * a->weight_decay;
    return p * decay - (double)a->lr / bc1 * mi / (sqrt(vi) / sqrt(bc2) + a->eps);
}

void ref_adamw_update(backend *be, float *param, float *m, float *v, const float *grad, size_t n,
                      const adamw_step_args *a, void *weight, badam_dtype wd) {
    (void)be;
    for (size_t i = 0; i < n; i++) {
        param[i] = (float)ref_adamw_elem(param[i], grad[i], &m[i], &v[i], a);
        if (weight) ref_store(weight, wd, i, param[i]);
    }
}

void ref_adamw_update_split(backend *be, uint16_t *weight, uint16_t *lo, float *m, float *v,
                            const float *grad, size_t n, const adamw_step_args *a) {
    (void)be;
    for (size_t i = 0; i < n; i++) {
        double p = ref_adamw_elem(badam_master_join(weight[i], lo[i]), grad[i], &m[i], &v[i], a);
        badam_master_split((float)p, &weight[i], &lo[i]);
    }
}

static double ref_sgd_elem(double p, float g, float lr, float grad_scale, float wd) {
    return p * (1.0 - (double)lr * wd) - (double)lr * grad_scale * g;
}

void ref_sgd_update(backend *be, float *param, const float *grad, size_t n, float lr,
                    float grad_scale, float weight_decay, void *weight, badam_dtype wd) {
    (void)be;
    for (size_t i = 0; i < n; i++) {
        param[i] = (float)ref_sgd_elem(param[i], grad[i], lr, grad_scale, weight_decay);
        if (weight) ref_store(weight, wd, i, param[i]);
    }
}

void ref_sgd_update_split(backend *be, uint16_t *weight, uint16_t *lo, const float *grad, size_t n,
                          float lr, float grad_scale, float weight_decay) {
    (void)be;
    for (size_t i = 0; i < n; i++) {
        double p = ref_sgd_elem(badam_master_join(weight[i], lo[i]), grad[i], lr, grad_scale,
                                weight_decay);
        badam_master_split((float)p, &weight[i], &lo[i]);
    }
}

void ref_sgd_update_stored(backend *be, void *weight, badam_dtype wd, const float *grad, size_t n,
                           float lr, float grad_scale, float weight_decay) {
    (void)be;
    size_t es = badam_dtype_size(wd);
    for (size_t i = 0; i < n; i++) {
        float p;
        badam_convert(&p, BADAM_DTYPE_F32, (char *)weight + i * es, wd, 1);
        ref_store(weight, wd, i, (float)ref_sgd_elem(p, grad[i], lr, grad_scale, weight_decay));
    }
}

double ref_sum_squares(backend *be, const float *x, size_t n) {
    (void)be;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

void ref_scale(backend *be, float *x, float a, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) x[i] = (float)((double)x[i] * a);
}

void ref_axpy(backend *be, float *y, float a, const float *x, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) y[i] = (float)(y[i] + (double)a * x[i]);
}
