/* Adam (full fine-tuning): AdamW on every parameter, with an fp32 master (a split master for
 * bf16 weights, optim.h), gradients and both moments for all of them. torch.optim.AdamW with
 * the gradient clipped to the global norm first. */
#include <string.h>

#include "optim/methods/methods.h"

/* Every parameter, in one pool. */
static void adam_pool(const llama_model *m, trainable_sizes *z) {
    memset(z, 0, sizeof *z);
    for (int i = 0; i < m->n_params; i++)
        z->pool += pool_floats_of(m->params[i].numel), z->trainable += m->params[i].numel;
    trainable_sizes_masters(z, m->dtype);
    z->has_grad = 1, z->has_moments = 1;
}

static badam_status adam_sizes(const llama_model *m, const method_options *o, method_sizes *out,
                               badam_error *err) {
    (void)o, (void)err;
    trainable_sizes z;
    adam_pool(m, &z);
    trainable_sizes_bytes(&z, out->bytes);
    out->trainable = z.trainable;
    return BADAM_OK;
}

static badam_status adam_create(method_state *s, badam_error *err) {
    (void)s, (void)err;
    return BADAM_OK;
}

static badam_status adam_allocate(method_state *s, badam_error *err) {
    trainable_sizes z;
    adam_pool(s->m, &z);
    badam_status st = trainable_alloc(&s->ts, s->be, s->m->n_params, &z, err);
    if (st) return st;
    size_t at = 0;
    for (int i = 0; i < s->m->n_params; i++)
        if (trainable_place(&s->ts, s->m, i, &at))
            return badam_fail(err, BADAM_E_NOMEM, "optimizer state: out of memory");
    s->need_grad = s->ts.flags, s->grads = s->ts.grads;
    return BADAM_OK;
}

/* The one place the AdamW element update is called for a trainable set (BAdam and LoRA too): the
 * backend's adamw_update (adamw_update_split for a split master; math in model/cpu/ops.h). */
void adam_update_trainables(trainable_set *ts, badam_dtype weight_dtype, float lr, float scale,
                            float weight_decay, const adamw_hparams *h) {
    ts->adam_step++;
    for (int i = 0; i < ts->n; i++) {
        trainable *x = &ts->t[i];
        const adamw_step_args a = {
            lr, scale, x->decay ? weight_decay : 0.0f, h->beta1, h->beta2, h->eps, ts->adam_step};
        if (x->master_lo)
            BE(ts->be, adamw_update_split, x->weight, x->master_lo, x->m, x->v, x->grad, x->numel,
               &a);
        else
            BE(ts->be, adamw_update, x->master, x->m, x->v, x->grad, x->numel, &a, x->weight,
               weight_dtype);
    }
}

/* g = (all-reduced) gradient sums / tokens, clipped to the global norm; AdamW. */
badam_status adam_method_update(method_state *s, const method_update_ctx *c, double *norm,
                                badam_error *err) {
    double sum_sq;
    float scale;
    badam_status st = method_reduce_trainable_grads(s, c, &sum_sq, err);
    if (!st) st = method_clip_scale(s, c, sum_sq, norm, &scale, err);
    if (!st)
        adam_update_trainables(&s->ts, s->m->dtype, c->lr, scale, s->o.weight_decay, &s->o.adam);
    return st;
}

const train_method_ops method_adam = {
    .name = "adam",
    .uses = METHOD_USES_ADAM,
    .data_parallel = 1,
    .default_clip = 1.0f,
    .sizes = adam_sizes,
    .create = adam_create,
    .allocate = adam_allocate,
    .zero_grads = method_zero_trainable_grads,
    .update = adam_method_update,
    .save_parts = method_save_trainables,
    .load_parts = method_load_trainables,
};
