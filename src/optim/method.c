/* The parts of the method interface every method shares (method.h): lifecycle, the global-norm
 * clip, the gradient all-reduce and the optimizer.safetensors parts of a trainable set. */
#include "optim/method.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

badam_status method_create(method_state *s, const train_method_ops *ops, llama_model *m,
                           backend *be, const method_options *o, badam_error *err) {
    memset(s, 0, sizeof *s);
    s->ops = ops;
    s->m = m;
    s->be = be;
    s->o = *o;
    s->block = -1;
    s->ts.block = -1;
    s->clip = o->clip >= 0 ? o->clip : ops->default_clip;
    return ops->create(s, err);
}

void method_free(method_state *s) {
    if (s->ops && s->ops->free) s->ops->free(s);
    trainable_free(&s->ts);
    memset(s, 0, sizeof *s);
}

badam_status method_clip_scale(const method_state *s, const method_update_ctx *c, double sum_sq,
                               double *norm, float *scale, badam_error *err) {
    float k = c->tokens ? 1.0f / (float)c->tokens : 0.0f;
    *norm = sqrt(sum_sq) * k;
    if (!isfinite(*norm))
        return badam_fail(err, BADAM_E_NUMERIC,
                          "step %d: the gradient norm is not finite; lower --lr or check the data",
                          c->step + 1);
    if (s->clip > 0 && *norm > 0) {
        double coef = s->clip / (*norm + 1e-6);
        if (coef < 1) k = (float)(k * coef);
    }
    *scale = k;
    return BADAM_OK;
}

badam_status method_all_reduce_grad(backend *be, const badam_comm *comm, float *g, size_t n,
                                    badam_error *err) {
    if (badam_comm_size(comm) <= 1 || !n) return BADAM_OK;
    float *host = malloc(n * sizeof *host);
    if (!host) return badam_fail(err, BADAM_E_NOMEM, "all-reduce: out of memory (%zu floats)", n);
    BE(be, download, host, g, n * sizeof *host);
    badam_status st = badam_comm_all_reduce_f32(comm, host, n, err);
    if (!st) BE(be, upload, g, host, n * sizeof *host);
    free(host);
    return st;
}

badam_status method_reduce_trainable_grads(method_state *s, const method_update_ctx *c,
                                           double *sum_sq, badam_error *err) {
    const trainable_set *ts = &s->ts;
    badam_status st = BADAM_OK;
    for (int i = 0; i < ts->n && !st && !c->grads_reduced; i++)
        st = method_all_reduce_grad(ts->be, c->comm, ts->t[i].grad, ts->t[i].numel, err);
    double sum = 0;
    for (int i = 0; i < ts->n; i++) sum += BE(ts->be, sum_squares, ts->t[i].grad, ts->t[i].numel);
    *sum_sq = sum;
    return st;
}

void method_zero_trainable_grads(method_state *s) {
    trainable_zero_grads(&s->ts);
}

badam_status method_save_trainables(const method_state *s, const char *dir, const char *base_model,
                                    badam_error *err) {
    (void)base_model;
    return checkpoint_write_optimizer(dir, &s->ts, err);
}

badam_status method_load_trainables(method_state *s, const char *dir, const method_resume *r,
                                    badam_error *err) {
    s->ts.adam_step = r->adam_step;
    return checkpoint_load_optimizer(dir, &s->ts, err);
}
