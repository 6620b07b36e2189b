/* Llama backward under a gradient plan. Starting from the gradient at the last layer's output
 * (left by llama_forward), each visited layer computes weight gradients only for flagged
 * parameters and input gradients only where something below needs them; layers below the plan's
 * first layer are never touched. Within a layer, every linear's input gradient is computed before
 * its weight gradient, so once a weight gradient is done nothing reads that weight again and
 * plan->grad_ready may update it in place (LOMO). */
#include "model/llama_internal.h"

typedef struct layer_ctx {
    const llama_model *m;
    llama_workspace *ws;
    const llama_grad_plan *plan;
    float **grads;
    int l;
    const layer_acts *a;
    const model_layer_weights *lw; /* the layer's weights, acquired through ws->hooks */
    layer_run run;
} layer_ctx;

static float *grad_of(const layer_ctx *c, llama_param_kind kind) {
    int idx = llama_param_index(c->m, c->l, kind);
    return llama_plan_flag(c->m, c->plan, idx) ? c->grads[idx] : NULL;
}

static void ready(const layer_ctx *c, llama_param_kind kind) {
    int idx = llama_param_index(c->m, c->l, kind);
    if (c->plan->grad_ready && llama_plan_flag(c->m, c->plan, idx))
        c->plan->grad_ready(c->plan->grad_ready_ctx, idx);
}

/* One linear y = W x (+ b) (+ adapter): dx += dy W (and the adapter's part) when dx != NULL; the
 * adapter's gradients when trained; then W's and b's gradients when flagged, and grad_ready. */
static void linear_back(const layer_ctx *c, llama_param_kind kind, llama_param_kind bias,
                        const float *dy, const float *x, float *dx, int in, int out) {
    int N = c->ws->B * c->ws->T;
    backend *be = c->ws->be;
    if (dx)
        BE(be, linear_backward_input, dx, dy, llama_lw_data(c->m, c->lw, kind),
           llama_lw_dtype(c->m, c->lw, kind), N, in, out, c->ws->lin_scratch);
    llama_lora_backward(c->m, c->ws, c->l, kind, dy, x, c->a->lora_u[kind], dx,
                        llama_plan_trains_adapter(c->m, c->plan, c->l, kind), in, out);
    float *dw = grad_of(c, kind), *db = bias == LLAMA_P_KIND_COUNT ? NULL : grad_of(c, bias);
    if (dw || db)
        BE(be, linear_backward_weight, dw, db, dy, x, llama_lw_dtype(c->m, c->lw, kind), N, in, out,
           c->ws->lin_scratch, c->ws->layout.lin_scratch);
    ready(c, kind);
    if (bias != LLAMA_P_KIND_COUNT) ready(c, bias);
}

#define NO_BIAS LLAMA_P_KIND_COUNT

/* 1 when linear `kind`'s backward reads its input x: W's gradient or its adapter's training. */
static int reads_input(const layer_ctx *c, llama_param_kind kind) {
    return grad_of(c, kind) || llama_plan_trains_adapter(c->m, c->plan, c->l, kind);
}

/* Rebuilds a norm's output (xn1 or xn2, not kept by saved layers) into out: the forward's
 * computation on the same inputs, so the same bits. */
static const float *norm_weight(const layer_ctx *c, llama_param_kind norm) {
    return llama_lw_small(c->m, c->ws->be, c->run.vec, c->lw, norm, 0);
}

static const float *rebuild_norm(const layer_ctx *c, llama_param_kind norm, const float *x,
                                 float *out) {
    BE(c->ws->be, rmsnorm_forward, out, NULL, x, norm_weight(c, norm), c->ws->B * c->ws->T,
       c->ws->C, c->m->cfg.rms_norm_eps);
    return out;
}

/* The gradient at the sublayer output below bottleneck adapter `site` from dz (dz itself without
 * adapters; else ws->bn_dy), with the adapter's gradients when the plan trains it. */
static const float *bottleneck_back(const layer_ctx *c, int site, const float *dz) {
    if (!c->m->bottleneck) return dz;
    llama_bottleneck_backward(c->m, c->ws, c->l, site, dz, c->a->bottleneck[site], c->ws->bn_dy,
                              llama_plan_trains_bottleneck(c->m, c->plan));
    return c->ws->bn_dy;
}

/* Backward of one layer. On entry ws->dresid holds dL/dy; on return, when need_dx, dL/dx. */
static void layer_backward(const layer_ctx *c, const float *x) {
    llama_workspace *ws = c->ws;
    const layer_acts *a = c->a;
    int N = ws->B * ws->T, C = ws->C, QD = ws->QD, KVD = ws->KVD, I = ws->I;
    float *dres = ws->dresid;
    backend *be = ws->be;
    layer_grad_parts parts = llama_layer_grad_parts(c->m, c->plan, c->l);

    /* MLP: y = x_mid + down(h), h = silu(gate) * up, gate/up = W xn2. dres is dL/dy = the
     * residual part of dL/dx_mid. */
    float *dh = ws->dbig[0], *dgate = ws->dbig[1], *dup = ws->dbig[2];
    if (parts.mlp_inner) BE(be, zero, dh, sizeof(float) * (size_t)N * I);
    const float *h = NULL; /* rebuilt into dgate's buffer, free until swiglu_backward */
    if (reads_input(c, LLAMA_P_DOWN))
        BE(be, swiglu_forward, dgate, a->gate, a->up, (size_t)N * I), h = dgate;
    linear_back(c, LLAMA_P_DOWN, NO_BIAS, bottleneck_back(c, 1, dres), h,
                parts.mlp_inner ? dh : NULL, I, C);
    if (parts.mlp_inner) {
        BE(be, swiglu_backward, dgate, dup, dh, a->gate, a->up, (size_t)N * I);
        float *dxn2 = parts.need_dxn2 ? ws->dxn : NULL;
        if (dxn2) BE(be, zero, dxn2, sizeof(float) * (size_t)N * C);
        const float *xn2 = NULL; /* rebuilt into dh's buffer, consumed by swiglu_backward */
        if (reads_input(c, LLAMA_P_GATE) || reads_input(c, LLAMA_P_UP))
            xn2 = rebuild_norm(c, LLAMA_P_MLP_NORM, a->x_mid, dh);
        linear_back(c, LLAMA_P_GATE, NO_BIAS, dgate, xn2, dxn2, C, I);
        linear_back(c, LLAMA_P_UP, NO_BIAS, dup, xn2, dxn2, C, I);
    }
    if (parts.need_dxn2) {
        const float *w2 = norm_weight(c, LLAMA_P_MLP_NORM);
        BE(be, rmsnorm_backward, parts.need_dxmid ? dres : NULL, grad_of(c, LLAMA_P_MLP_NORM),
           ws->dxn, a->x_mid, w2, a->rstd2, N, C);
        ready(c, LLAMA_P_MLP_NORM);
    }

    /* dres is now dL/dx_mid (when needed). Attention: x_mid = x + o(attn). */
    float *dattn = ws->dbig[0], *dq = ws->dbig[1], *dk = ws->dkv[0], *dv = ws->dkv[1];
    if (parts.attn_inner) BE(be, zero, dattn, sizeof(float) * (size_t)N * QD);
    linear_back(c, LLAMA_P_O, LLAMA_P_O_BIAS, bottleneck_back(c, 0, dres), a->attn,
                parts.attn_inner ? dattn : NULL, QD, C);
    if (!parts.attn_inner) return;
    BE(be, attention_backward, dq, dk, dv, dattn, a->attn, a->lse, a->q, a->k, a->v, ws->B, ws->T,
       ws->Hq, ws->Hkv, ws->D, ws->seg_start);
    BE(be, rope_backward, dq, ws->pos, ws->cos_t, ws->sin_t, N, ws->Hq, ws->D);
    BE(be, rope_backward, dk, ws->pos, ws->cos_t, ws->sin_t, N, ws->Hkv, ws->D);
    int need_dxn1 = parts.need_dx || llama_plan_kind_active(c->m, c->plan, c->l, LLAMA_P_ATTN_NORM);
    float *dxn1 = need_dxn1 ? ws->dxn : NULL;
    if (dxn1) BE(be, zero, dxn1, sizeof(float) * (size_t)N * C);
    const float *xn1 = NULL; /* rebuilt into dattn's buffer, consumed by attention_backward */
    if (reads_input(c, LLAMA_P_Q) || reads_input(c, LLAMA_P_K) || reads_input(c, LLAMA_P_V))
        xn1 = rebuild_norm(c, LLAMA_P_ATTN_NORM, x, dattn);
    linear_back(c, LLAMA_P_Q, LLAMA_P_Q_BIAS, dq, xn1, dxn1, C, QD);
    linear_back(c, LLAMA_P_K, LLAMA_P_K_BIAS, dk, xn1, dxn1, C, KVD);
    linear_back(c, LLAMA_P_V, LLAMA_P_V_BIAS, dv, xn1, dxn1, C, KVD);
    if (!need_dxn1) return;
    const float *w1 = norm_weight(c, LLAMA_P_ATTN_NORM);
    BE(be, rmsnorm_backward, parts.need_dx ? dres : NULL, grad_of(c, LLAMA_P_ATTN_NORM), ws->dxn, x,
       w1, a->rstd1, N, C);
    ready(c, LLAMA_P_ATTN_NORM);
}

badam_status llama_backward(const llama_model *m, llama_workspace *ws, const llama_batch *batch,
                            const llama_grad_plan *plan, float **grads, badam_error *err) {
    int L = ws->L, first = llama_plan_first_layer(m, plan);
    if (ws->forward_plan_first_layer < 0 || ws->forward_plan_first_layer != first ||
        ws->forward_recompute != plan->recompute || batch->B != ws->B || batch->T != ws->T)
        return badam_fail(err, BADAM_E_INVALID,
                          "llama_backward: no matching llama_forward with this plan and batch");
    layer_run run = llama_ws_run(ws);
    for (int l = L - 1; l >= first; l--) {
        const float *x = ws->saved_input[l];
        const layer_acts *acts = ws->saved[l];
        model_layer_weights lw;
        badam_status st = llama_acquire_layer(&ws->hooks, m, l, &lw, err);
        if (st) return st;
        if (plan->recompute) { /* one acquire covers the recomputed forward and the backward */
            float *y = x == ws->ping[0] ? ws->ping[1] : ws->ping[0];
            llama_layer_forward(m, &run, &lw, l, &ws->tmp, x, y);
            acts = &ws->tmp;
        }
        layer_ctx c = {m, ws, plan, grads, l, acts, &lw, run};
        layer_backward(&c, x);
        llama_release_layer(&ws->hooks, m, l, &lw);
    }
    if (llama_plan_flag(m, plan, m->embed)) {
        BE(ws->be, embedding_backward, grads[m->embed], ws->tokens, ws->B * ws->T, ws->dresid,
           ws->C);
        if (plan->grad_ready) plan->grad_ready(plan->grad_ready_ctx, m->embed);
    }
    ws->forward_plan_first_layer = -1; /* activations are consumed */
    return BADAM_OK;
}
