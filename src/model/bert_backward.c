/* Encoder backward under a gradient plan, from the gradient at the last layer's output that
 * bert_forward left in ws->dres. A visited layer computes weight gradients of flagged tensors
 * only, and goes down inside the layer only as far as something needs (a flagged tensor lower in
 * the layer, or the layer's input gradient when a layer or the embeddings below need it); layers
 * below the plan's first layer are not touched. Every linear's input gradient is computed before
 * its weight gradient, so plan->grad_ready may update a weight in place once its gradient is
 * done. The layer's math (bert_forward.c), backwards:
 *   ds2 = LN2'(dy);  do = drop'(ds2);  dg = do Wd;  du = gelu'(u) dg;  dh1 = ds2 + du Wi
 *   ds1 = LN1'(dh1); dt = drop'(ds1);  dattn = dt Wo;  dq, dk, dv = attention'(dattn)
 *   dx = ds1 + dq Wq + dk Wk + dv Wv */
#include "model/bert_internal.h"

typedef struct layer_ctx {
    const llama_model *m;
    bert_workspace *w;
    const llama_grad_plan *plan;
    float **grads;
    const model_layer_weights *lw;
    const bert_acts *a;
    int l;
} layer_ctx;

static float *grad_of(const layer_ctx *c, int slot) {
    int idx = bert_layer_param(c->m, c->l, slot);
    return c->plan->need_grad[idx] ? c->grads[idx] : NULL;
}

static void ready(const layer_ctx *c, int slot) {
    int idx = bert_layer_param(c->m, c->l, slot);
    if (c->plan->grad_ready && c->plan->need_grad[idx])
        c->plan->grad_ready(c->plan->grad_ready_ctx, idx);
}

/* 1 when any tensor of the layer in slots [lo, hi] is flagged or has a trained adapter. */
static int flagged(const layer_ctx *c, int lo, int hi) {
    for (int s = lo; s <= hi; s++)
        if (c->plan->need_grad[bert_layer_param(c->m, c->l, s)] ||
            bert_plan_trains_slot(c->m, c->plan, c->l, s))
            return 1;
    return 0;
}

/* Linear (weight at `slot`, bias at slot + 1) given dy: dx += dy W (dx may be NULL) and its
 * adapter's part (llama_lora_backward, which also accumulates the adapter's gradients when the
 * plan trains it), then the weight and bias gradients when flagged (x may be NULL when none of
 * them is). */
static void linear_back(const layer_ctx *c, int slot, const float *dy, const float *x, float *dx,
                        int in, int out) {
    bert_workspace *w = c->w;
    int N = w->base.B * w->base.T;
    badam_dtype dt;
    const void *W = bert_matrix(c->m, c->lw, bert_layer_param(c->m, c->l, slot), &dt);
    if (dx) BE(w->base.be, linear_backward_input, dx, dy, W, dt, N, in, out, w->lin_scratch);
    llama_param_kind kind = c->m->params[bert_layer_param(c->m, c->l, slot)].kind;
    llama_lora_backward(c->m, &w->base, c->l, kind, dy, x, c->a->lora_u[kind], dx,
                        bert_plan_trains_slot(c->m, c->plan, c->l, slot), in, out);
    float *dw = grad_of(c, slot), *db = grad_of(c, slot + 1);
    if (dw || db)
        BE(w->base.be, linear_backward_weight, dw, db, dy, x, dt, N, in, out, w->lin_scratch,
           w->layout.lin_scratch);
    ready(c, slot), ready(c, slot + 1);
}

/* LayerNorm at `slot` given dy: dx += LN'(dy) (dx may be NULL), weight and bias gradients. */
static void norm_back(const layer_ctx *c, int slot, const float *dy, const float *x,
                      const float *mean, const float *rstd, float *dx) {
    bert_workspace *w = c->w;
    const float *g = bert_small(w, c->m, c->lw, bert_layer_param(c->m, c->l, slot), 0);
    BE(w->base.be, layernorm_backward, dx, grad_of(c, slot), grad_of(c, slot + 1), dy, x, mean,
       rstd, g, w->base.B * w->base.T, w->C);
    ready(c, slot), ready(c, slot + 1);
}

/* Backward of one layer: on entry w->dres holds dL/dy; on return, when need_dx, dL/dx. */
static void layer_backward(const layer_ctx *c, int need_dx) {
    const bert_acts *a = c->a;
    bert_workspace *w = c->w;
    const llama_model *m = c->m;
    backend *be = w->base.be;
    int N = w->base.B * w->base.T, C = w->C, I = w->I, l = c->l;
    size_t NC = (size_t)N * C, NI = (size_t)N * I;
    int need_ds1 = need_dx || flagged(c, BERT_Q, BERT_LN1_B);
    int need_inner = need_ds1 || flagged(c, BERT_UP, BERT_UP_B);
    int need_attn = need_dx || flagged(c, BERT_Q, BERT_V_B);

    float *ds2 = w->dA;
    BE(be, zero, ds2, NC * sizeof(float));
    norm_back(c, BERT_LN2, w->dres, a->s2, a->mean2, a->rstd2, ds2);
    const float *dout = bert_dropout(w, m, l, BERT_DROP_MLP_OUT, w->dB, ds2, NC);
    const float *g = NULL;
    if (flagged(c, BERT_DOWN, BERT_DOWN_B)) BE(be, gelu_forward, w->gbuf, a->u, NI), g = w->gbuf;
    if (need_inner) BE(be, zero, w->dg, NI * sizeof(float));
    linear_back(c, BERT_DOWN, dout, g, need_inner ? w->dg : NULL, I, C);
    if (!need_inner) return;
    BE(be, gelu_backward, w->dg, w->dg, a->u, NI);
    /* dh1 = ds2 + du Wi, accumulated into ds2's buffer (dout, read above, is consumed) */
    linear_back(c, BERT_UP, w->dg, a->h1, need_ds1 ? ds2 : NULL, C, I);
    if (!need_ds1) return;
    float *ds1 = w->dC;
    BE(be, zero, ds1, NC * sizeof(float));
    norm_back(c, BERT_LN1, ds2, a->s1, a->mean1, a->rstd1, ds1);
    const float *dt = bert_dropout(w, m, l, BERT_DROP_ATTN_OUT, w->dB, ds1, NC);
    float *dattn = w->dA;
    if (need_attn) BE(be, zero, dattn, NC * sizeof(float));
    linear_back(c, BERT_O, dt, a->attn, need_attn ? dattn : NULL, C, C);
    if (need_dx) BE(be, copy, w->dres, ds1, NC * sizeof(float));
    if (!need_attn) return;
    BE(be, attention_bidir_backward, w->dq, w->dk, w->dv, dattn, a->attn, a->lse, a->q, a->k, a->v,
       w->base.B, w->base.T, w->H, w->D, w->key_mask, bert_drop_rate(w, m, BERT_DROP_ATTN_PROBS),
       bert_drop_key(w, l, BERT_DROP_ATTN_PROBS));
    float *dx = need_dx ? w->dres : NULL;
    linear_back(c, BERT_Q, w->dq, a->x, dx, C, C);
    linear_back(c, BERT_K, w->dk, a->x, dx, C, C);
    linear_back(c, BERT_V, w->dv, a->x, dx, C, C);
}

/* The embeddings' backward from dL/d(first layer input) in w->dres. */
static void embed_backward(const llama_model *m, bert_workspace *w, const llama_grad_plan *plan,
                           float **grads) {
    backend *be = w->base.be;
    int N = w->base.B * w->base.T, C = w->C;
    size_t NC = (size_t)N * C;
    const float *dx = bert_dropout(w, m, -1, BERT_DROP_EMBED, w->dA, w->dres, NC);
    float *dsum = w->dB;
    BE(be, zero, dsum, NC * sizeof(float));
    const float *g = bert_small(w, m, NULL, BERT_E_LN_W, 0);
    BE(be, layernorm_backward, dsum, plan->need_grad[BERT_E_LN_W] ? grads[BERT_E_LN_W] : NULL,
       plan->need_grad[BERT_E_LN_B] ? grads[BERT_E_LN_B] : NULL, dx, w->emb_sum, w->emb_mean,
       w->emb_rstd, g, N, C);
    const int32_t *idx[3] = {w->tokens, w->pos, w->types};
    for (int e = BERT_E_WORD; e <= BERT_E_TYPE; e++)
        if (plan->need_grad[e]) BE(be, embedding_backward, grads[e], idx[e], N, dsum, C);
    for (int e = 0; e < BERT_N_EMBED; e++)
        if (plan->grad_ready && plan->need_grad[e]) plan->grad_ready(plan->grad_ready_ctx, e);
}

badam_status bert_backward(const llama_model *m, llama_workspace *ws, const llama_batch *batch,
                           const llama_grad_plan *plan, float **grads, badam_error *err) {
    bert_workspace *w = bert_ws(ws);
    int first = bert_plan_first_layer(m, plan);
    if (w->first < 0 || w->first != first || w->recompute != plan->recompute || batch->B != ws->B ||
        batch->T != ws->T)
        return badam_fail(err, BADAM_E_INVALID,
                          "bert_backward: no matching bert_forward with this plan and batch");
    for (int l = w->L - 1; l >= first; l--) {
        model_layer_weights lw;
        badam_status st = llama_acquire_layer(&ws->hooks, m, l, &lw, err);
        if (st) return st;
        const bert_acts *a = w->saved[l];
        if (plan->recompute) { /* one acquire covers the recomputed forward and the backward */
            bert_layer_forward(m, w, &lw, l, &w->tmp, w->saved_input[l], w->ping[0]);
            a = &w->tmp;
        }
        layer_ctx c = {m, w, plan, grads, &lw, a, l};
        layer_backward(&c, l >= plan->lowest_input_grad_layer);
        llama_release_layer(&ws->hooks, m, l, &lw);
    }
    if (plan->lowest_input_grad_layer == 0) embed_backward(m, w, plan, grads);
    w->first = -1;
    ws->forward_plan_first_layer = -1;
    return BADAM_OK;
}
