/* The optimizer updates of include/badam/optim.h: thin calls to the CPU element kernels
 * (model/cpu/optim_update.c; math in model/cpu/ops.h), which the CPU backend's optimizer ops
 * (model/backend.h) run too, so both give the same bits. */
#include "badam/optim.h"
#include "model/cpu/ops.h"

static adamw_step_args adamw_args(float lr, float grad_scale, float weight_decay, int step,
                                  const adamw_hparams *h) {
    adamw_step_args a = {lr, grad_scale, weight_decay, h->beta1, h->beta2, h->eps, step};
    return a;
}

void adamw_update(float *param, float *m, float *v, const float *grad, size_t n, float lr,
                  float grad_scale, float weight_decay, int step, const adamw_hparams *h,
                  void *weight, badam_dtype weight_dtype) {
    const adamw_step_args a = adamw_args(lr, grad_scale, weight_decay, step, h);
    opt_adamw_update(param, m, v, grad, n, &a, weight, weight_dtype);
}

void adamw_update_split(uint16_t *weight, uint16_t *lo, float *m, float *v, const float *grad,
                        size_t n, float lr, float grad_scale, float weight_decay, int step,
                        const adamw_hparams *h) {
    const adamw_step_args a = adamw_args(lr, grad_scale, weight_decay, step, h);
    opt_adamw_update_split(weight, lo, m, v, grad, n, &a);
}

void sgd_update(float *param, const float *grad, size_t n, float lr, float grad_scale,
                float weight_decay, void *weight, badam_dtype weight_dtype) {
    opt_sgd_update(param, grad, n, lr, grad_scale, weight_decay, weight, weight_dtype);
}

void sgd_update_split(uint16_t *weight, uint16_t *lo, const float *grad, size_t n, float lr,
                      float grad_scale, float weight_decay) {
    opt_sgd_update_split(weight, lo, grad, n, lr, grad_scale, weight_decay);
}

void sgd_update_stored(void *weight, badam_dtype weight_dtype, const float *grad, size_t n,
                       float lr, float grad_scale, float weight_decay) {
    opt_sgd_update_stored(weight, weight_dtype, grad, n, lr, grad_scale, weight_decay);
}

double grad_sum_squares(const float *grad, size_t n) {
    return sum_squares_f32(grad, n);
}
