/* LOMO (Lv et al. 2023, "Full Parameter Fine-tuning for Large Language Models with Limited
 * Resources"): SGD fused into backward. Each parameter is updated the moment its gradient is
 * complete (grad_ready), and its gradient buffer is cleared for the next one, so only one
 * gradient per shape class (matrix, vector) is alive at a time. Trains the layers and the final
 * norm; no optimizer state, no accumulation and no clipping by the global norm (the norm is
 * known only once every parameter has been updated; it is reported). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/memory.h"
#include "optim/methods/methods.h"

typedef struct lomo {
    float *matrix, *vector; /* the two reusable gradient buffers (backend memory) */
    double sum_sq;          /* sum of squares of this step's scaled gradients */
    badam_status st;        /* an error inside backward, returned by update */
    badam_error err;
} lomo;

static int trained(const llama_model *m, int i) {
    return m->params[i].layer >= 0 || i == m->final_norm;
}

/* The largest matrix and vector it trains: the two buffers. */
static void lomo_buffers(const llama_model *m, size_t *matrix, size_t *vector, size_t *numel) {
    *matrix = *vector = *numel = 0;
    for (int i = 0; i < m->n_params; i++) {
        if (!trained(m, i)) continue;
        size_t *slot = m->params[i].ndim == 2 ? matrix : vector;
        if (m->params[i].numel > *slot) *slot = m->params[i].numel;
        *numel += m->params[i].numel;
    }
}

static size_t floats_bytes(size_t floats) {
    return floats ? badam_alloc_size(floats * 4) : 0;
}

static badam_status lomo_check(const method_options *o, badam_error *err) {
    if (o->grad_accum != 1)
        return badam_fail(err, BADAM_E_INVALID,
                          "--method lomo updates inside backward and cannot accumulate "
                          "gradients (use --grad-accum 1)");
    if (o->clip > 0)
        return badam_fail(err, BADAM_E_INVALID,
                          "--method lomo updates inside backward and cannot clip by the "
                          "global gradient norm (use --clip 0)");
    return BADAM_OK;
}

static badam_status lomo_sizes(const llama_model *m, const method_options *o, method_sizes *out,
                               badam_error *err) {
    (void)o, (void)err;
    size_t matrix, vector;
    lomo_buffers(m, &matrix, &vector, &out->trainable);
    out->bytes[BADAM_MEM_GRADIENTS] += floats_bytes(matrix) + floats_bytes(vector);
    return BADAM_OK;
}

static badam_status lomo_create(method_state *s, badam_error *err) {
    s->priv = calloc(1, sizeof(lomo));
    return s->priv ? BADAM_OK : badam_fail(err, BADAM_E_NOMEM, "lomo: out of memory");
}

static badam_status lomo_allocate(method_state *s, badam_error *err) {
    lomo *l = s->priv;
    const llama_model *m = s->m;
    trainable_sizes none;
    memset(&none, 0, sizeof none);
    badam_status st = trainable_alloc(&s->ts, s->be, m->n_params, &none, err);
    if (st) return st;
    size_t matrix, vector, numel;
    lomo_buffers(m, &matrix, &vector, &numel);
    if (matrix) l->matrix = BE(s->be, alloc, BADAM_MEM_GRADIENTS, matrix * sizeof(float));
    if (vector) l->vector = BE(s->be, alloc, BADAM_MEM_GRADIENTS, vector * sizeof(float));
    if ((matrix && !l->matrix) || (vector && !l->vector))
        return badam_fail(err, BADAM_E_NOMEM,
                          "optimizer state: cannot allocate %zu parameters' worth of state", numel);
    for (int i = 0; i < m->n_params; i++) {
        if (!trained(m, i)) continue;
        s->ts.flags[i] = 1;
        s->ts.grads[i] = m->params[i].ndim == 2 ? l->matrix : l->vector;
    }
    s->need_grad = s->ts.flags, s->grads = s->ts.grads;
    return BADAM_OK;
}

static int lomo_on_step_begin(method_state *s, int step) {
    (void)step;
    lomo *l = s->priv;
    l->sum_sq = 0;
    return 0;
}

/* Parameter idx's gradient g (a sum of token losses) is complete: all-reduce it, then
 *   w *= 1 - lr wd (matrices);  w -= lr * g * grad_scale
 * in fp32 (from the stored value for 16-bit weights, rounded back); clear g for the next one. */
static void lomo_grad_ready(method_state *s, int idx, const method_micro_ctx *c) {
    lomo *l = s->priv;
    const llama_model *m = s->m;
    llama_param *p = &m->params[idx];
    float *g = s->grads[idx];
    if (!l->st) l->st = method_all_reduce_grad(s->be, c->comm, g, p->numel, &l->err);
    l->sum_sq += BE(s->be, sum_squares, g, p->numel) * c->grad_scale * c->grad_scale;
    float wd = p->ndim == 2 ? s->o.weight_decay : 0.0f;
    if (m->dtype == BADAM_DTYPE_F32)
        BE(s->be, sgd_update, p->data, g, p->numel, c->lr, c->grad_scale, wd, NULL, m->dtype);
    else
        BE(s->be, sgd_update_stored, p->data, m->dtype, g, p->numel, c->lr, c->grad_scale, wd);
    BE(s->be, zero, g, sizeof(float) * p->numel);
}

/* Everything was updated inside backward: the norm of this step's gradients, or the error. */
static badam_status lomo_update(method_state *s, const method_update_ctx *c, double *norm,
                                badam_error *err) {
    (void)c;
    lomo *l = s->priv;
    *norm = sqrt(l->sum_sq);
    if (l->st && err) *err = l->err;
    return l->st;
}

static void lomo_free(method_state *s) {
    lomo *l = s->priv;
    if (l && l->matrix) BE(s->be, free, l->matrix);
    if (l && l->vector) BE(s->be, free, l->vector);
    free(l);
    s->priv = NULL;
}

const train_method_ops method_lomo = {
    .name = "lomo",
    .uses = 0,
    .data_parallel = 1,
    .default_clip = 0.0f,
    .check = lomo_check,
    .sizes = lomo_sizes,
    .create = lomo_create,
    .allocate = lomo_allocate,
    .on_step_begin = lomo_on_step_begin,
    .grad_ready = lomo_grad_ready,
    .update = lomo_update,
    .save_parts = method_save_trainables,
    .load_parts = method_load_trainables,
    .free = lomo_free,
};
