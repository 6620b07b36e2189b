/* Llama backward under a gradient plan. Starting from the gradient at the last layer's output
 * (left by llama_forward), each visited layer computes weight gradients only for flagged
 * parameters and input gradients only where something below needs them; layers below the plan's
 * first layer are never touched. */
#include <string.h>

#include "model/llama_internal.h"

static float *grad_of(const llama_model *m, const llama_grad_plan *plan, float **grads, int l,
                      llama_param_kind kind) {
    int idx = llama_param_index(m, l, kind);
    return llama_plan_flag(m, plan, idx) ? grads[idx] : NULL;
}

static const void *weight(const llama_model *m, int l, llama_param_kind kind) {
    return m->params[llama_param_index(m, l, kind)].data;
}

/* Backward of one layer. On entry ws->dresid holds dL/dy; on return, when need_dx, dL/dx. */
static void layer_backward(const llama_model *m, llama_workspace *ws, const llama_grad_plan *plan,
                           float **grads, int l, const layer_acts *a, const float *x) {
    int N = ws->B * ws->T, C = ws->C, QD = ws->QD, KVD = ws->KVD, I = ws->I;
    badam_dtype dt = m->dtype;
    float *scratch = ws->lin_scratch, *dres = ws->dresid;
    op_counters *oc = &ws->counters;
#define G(kind) grad_of(m, plan, grads, l, kind)

    layer_grad_parts parts = llama_layer_grad_parts(m, plan, l);

    /* MLP: y = x_mid + down(h), h = silu(gate) * up, gate/up = W xn2. dres is dL/dy = the
     * residual part of dL/dx_mid. */
    float *dh = ws->dbig[0], *dgate = ws->dbig[1], *dup = ws->dbig[2];
    if (G(LLAMA_P_DOWN)) linear_backward_weight(G(LLAMA_P_DOWN), NULL, dres, a->h, N, I, C, oc);
    if (parts.mlp_inner) {
        memset(dh, 0, sizeof(float) * (size_t)N * I);
        linear_backward_input(dh, dres, weight(m, l, LLAMA_P_DOWN), dt, N, I, C, scratch, oc);
        swiglu_backward(dgate, dup, dh, a->gate, a->up, (size_t)N * I);
        if (G(LLAMA_P_GATE))
            linear_backward_weight(G(LLAMA_P_GATE), NULL, dgate, a->xn2, N, C, I, oc);
        if (G(LLAMA_P_UP)) linear_backward_weight(G(LLAMA_P_UP), NULL, dup, a->xn2, N, C, I, oc);
    }
    if (parts.need_dxn2) {
        memset(ws->dxn, 0, sizeof(float) * (size_t)N * C);
        linear_backward_input(ws->dxn, dgate, weight(m, l, LLAMA_P_GATE), dt, N, C, I, scratch, oc);
        linear_backward_input(ws->dxn, dup, weight(m, l, LLAMA_P_UP), dt, N, C, I, scratch, oc);
        const float *w2 = llama_param_f32(m, ws, llama_param_index(m, l, LLAMA_P_MLP_NORM), 0);
        rmsnorm_backward(parts.need_dxmid ? dres : NULL, G(LLAMA_P_MLP_NORM), ws->dxn, a->x_mid, w2,
                         a->rstd2, N, C);
    }
    /* dres is now dL/dx_mid (when needed). Attention: x_mid = x + o(attn). */
    if (G(LLAMA_P_O) || G(LLAMA_P_O_BIAS))
        linear_backward_weight(G(LLAMA_P_O), G(LLAMA_P_O_BIAS), dres, a->attn, N, QD, C, oc);
    if (!parts.attn_inner) return;
    float *dattn = ws->dbig[0], *dq = ws->dbig[1], *dk = ws->dkv[0], *dv = ws->dkv[1];
    memset(dattn, 0, sizeof(float) * (size_t)N * QD);
    linear_backward_input(dattn, dres, weight(m, l, LLAMA_P_O), dt, N, QD, C, scratch, oc);
    attention_backward(dq, dk, dv, dattn, a->probs, a->q, a->k, a->v, ws->B, ws->T, ws->Hq, ws->Hkv,
                       ws->D, oc);
    rope_backward(dq, ws->pos, ws->cos_t, ws->sin_t, N, ws->Hq, ws->D);
    rope_backward(dk, ws->pos, ws->cos_t, ws->sin_t, N, ws->Hkv, ws->D);
    if (G(LLAMA_P_Q) || G(LLAMA_P_Q_BIAS))
        linear_backward_weight(G(LLAMA_P_Q), G(LLAMA_P_Q_BIAS), dq, a->xn1, N, C, QD, oc);
    if (G(LLAMA_P_K) || G(LLAMA_P_K_BIAS))
        linear_backward_weight(G(LLAMA_P_K), G(LLAMA_P_K_BIAS), dk, a->xn1, N, C, KVD, oc);
    if (G(LLAMA_P_V) || G(LLAMA_P_V_BIAS))
        linear_backward_weight(G(LLAMA_P_V), G(LLAMA_P_V_BIAS), dv, a->xn1, N, C, KVD, oc);
    if (!parts.need_dx && !G(LLAMA_P_ATTN_NORM)) return;
    memset(ws->dxn, 0, sizeof(float) * (size_t)N * C);
    linear_backward_input(ws->dxn, dq, weight(m, l, LLAMA_P_Q), dt, N, C, QD, scratch, oc);
    linear_backward_input(ws->dxn, dk, weight(m, l, LLAMA_P_K), dt, N, C, KVD, scratch, oc);
    linear_backward_input(ws->dxn, dv, weight(m, l, LLAMA_P_V), dt, N, C, KVD, scratch, oc);
    const float *w1 = llama_param_f32(m, ws, llama_param_index(m, l, LLAMA_P_ATTN_NORM), 0);
    rmsnorm_backward(parts.need_dx ? dres : NULL, G(LLAMA_P_ATTN_NORM), ws->dxn, x, w1, a->rstd1, N,
                     C);
#undef G
}

badam_status llama_backward(const llama_model *m, llama_workspace *ws, const llama_batch *batch,
                            const llama_grad_plan *plan, float **grads, badam_error *err) {
    int L = ws->L, first = llama_plan_first_layer(m, plan);
    if (ws->forward_plan_first_layer < 0 || ws->forward_plan_first_layer != first ||
        ws->forward_recompute != plan->recompute || batch->B != ws->B || batch->T != ws->T)
        return badam_fail(err, BADAM_E_INVALID,
                          "llama_backward: no matching llama_forward with this plan and batch");
    for (int l = L - 1; l >= first; l--) {
        const float *x = ws->saved_input[l];
        const layer_acts *acts = ws->saved[l];
        if (plan->recompute) {
            float *y = x == ws->ping[0] ? ws->ping[1] : ws->ping[0];
            llama_layer_forward(m, ws, l, &ws->tmp, x, y);
            acts = &ws->tmp;
        }
        layer_backward(m, ws, plan, grads, l, acts, x);
    }
    if (llama_plan_flag(m, plan, m->embed))
        embedding_backward(grads[m->embed], batch->tokens, ws->B * ws->T, ws->dresid, ws->C);
    ws->forward_plan_first_layer = -1; /* activations are consumed */
    return BADAM_OK;
}
