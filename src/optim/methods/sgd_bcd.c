/* SGD-BCD: BAdam's block coordinate descent (badam.c: partition, order, K, switch, reset) with
 * plain SGD instead of Adam as the inner solver, the paper's ablation. No moments: a master and
 * gradients for the active block only. */
#include "optim/methods/methods.h"

/* The one place SGD's element update is called here (the backend's sgd_update / sgd_update_split):
 * w *= 1 - lr wd; w -= lr * scale * grad. */
static void sgd_update_trainables(trainable_set *ts, badam_dtype weight_dtype, float lr,
                                  float scale, float weight_decay) {
    ts->adam_step++; /* steps of the current state, as trainer_state.json records them */
    for (int i = 0; i < ts->n; i++) {
        trainable *x = &ts->t[i];
        float wd = x->decay ? weight_decay : 0.0f;
        if (x->master_lo)
            BE(ts->be, sgd_update_split, x->weight, x->master_lo, x->grad, x->numel, lr, scale, wd);
        else
            BE(ts->be, sgd_update, x->master, x->grad, x->numel, lr, scale, wd, x->weight,
               weight_dtype);
    }
}

static badam_status sgd_bcd_update(method_state *s, const method_update_ctx *c, double *norm,
                                   badam_error *err) {
    double sum_sq;
    float scale;
    badam_status st = method_reduce_trainable_grads(s, c, &sum_sq, err);
    if (!st) st = method_clip_scale(s, c, sum_sq, norm, &scale, err);
    if (!st) sgd_update_trainables(&s->ts, s->m->dtype, c->lr, scale, s->o.weight_decay);
    return st;
}

static badam_status sgd_bcd_sizes(const llama_model *m, const method_options *o, method_sizes *out,
                                  badam_error *err) {
    return bcd_sizes(m, o, 0, out, err);
}
static badam_status sgd_bcd_allocate(method_state *s, badam_error *err) {
    return bcd_allocate(s, 0, err);
}

const train_method_ops method_sgd_bcd = {
    .name = "sgd-bcd",
    .uses = METHOD_USES_BLOCKS,
    .data_parallel = 1,
    .default_clip = 1.0f,
    .sizes = sgd_bcd_sizes,
    .create = bcd_create,
    .allocate = sgd_bcd_allocate,
    .on_step_begin = bcd_on_step_begin,
    .zero_grads = method_zero_trainable_grads,
    .update = sgd_bcd_update,
    .save_parts = method_save_trainables,
    .load_parts = bcd_load_parts,
    .describe = bcd_describe,
    .free = bcd_free,
};
