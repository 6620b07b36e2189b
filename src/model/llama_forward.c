/* Llama forward: embedding, L transformer layers, final norm, fused LM head + cross-entropy.
 *   layer:  x_mid = x + o_proj(attention(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1)))
 *           y     = x_mid + down_proj(silu(gate_proj(n2)) * up_proj(n2))
 *   with n1 = rmsnorm(x) * input_layernorm, n2 = rmsnorm(x_mid) * post_attention_layernorm.
 * Every op runs on the workspace's backend (ws->be); the batch's index arrays are uploaded to it
 * once per batch (begin_batch). */
#include <string.h>

#include "model/llama_internal.h"

static const float *small(const llama_model *m, llama_workspace *ws, int l, llama_param_kind kind,
                          int slot) {
    return llama_param_f32(m, ws, llama_param_index(m, l, kind), slot);
}

void llama_layer_forward(const llama_model *m, llama_workspace *ws, int l, layer_acts *a,
                         const float *x, float *y) {
    int N = ws->B * ws->T, C = ws->C, QD = ws->QD, KVD = ws->KVD, I = ws->I;
    float eps = m->cfg.rms_norm_eps, *scratch = ws->lin_scratch;
    backend *be = ws->be;
    layer_weights lw;
    llama_layer_weights(m, ws, l, &lw);
    badam_dtype dt = lw.dtype;

    BE(be, rmsnorm_forward, a->xn1, a->rstd1, x, small(m, ws, l, LLAMA_P_ATTN_NORM, 0), N, C, eps);
    BE(be, linear_forward, a->q, a->xn1, lw.w[LLAMA_P_Q], dt, small(m, ws, l, LLAMA_P_Q_BIAS, 1), N,
       C, QD, scratch);
    llama_lora_forward(m, ws, l, LLAMA_P_Q, a->q, a->xn1, a->lora_u[LLAMA_P_Q], C, QD);
    BE(be, linear_forward, a->k, a->xn1, lw.w[LLAMA_P_K], dt, small(m, ws, l, LLAMA_P_K_BIAS, 1), N,
       C, KVD, scratch);
    llama_lora_forward(m, ws, l, LLAMA_P_K, a->k, a->xn1, a->lora_u[LLAMA_P_K], C, KVD);
    BE(be, linear_forward, a->v, a->xn1, lw.w[LLAMA_P_V], dt, small(m, ws, l, LLAMA_P_V_BIAS, 1), N,
       C, KVD, scratch);
    llama_lora_forward(m, ws, l, LLAMA_P_V, a->v, a->xn1, a->lora_u[LLAMA_P_V], C, KVD);
    BE(be, rope_forward, a->q, ws->pos, ws->cos_t, ws->sin_t, N, ws->Hq, ws->D);
    BE(be, rope_forward, a->k, ws->pos, ws->cos_t, ws->sin_t, N, ws->Hkv, ws->D);
    BE(be, attention_forward, a->attn, a->lse, a->q, a->k, a->v, ws->B, ws->T, ws->Hq, ws->Hkv,
       ws->D, ws->seg_start);
    BE(be, linear_forward, y, a->attn, lw.w[LLAMA_P_O], dt, small(m, ws, l, LLAMA_P_O_BIAS, 1), N,
       QD, C, scratch);
    llama_lora_forward(m, ws, l, LLAMA_P_O, y, a->attn, a->lora_u[LLAMA_P_O], QD, C);
    size_t NC = (size_t)N * C;
    BE(be, add, a->x_mid, x, y, NC);

    BE(be, rmsnorm_forward, a->xn2, a->rstd2, a->x_mid, small(m, ws, l, LLAMA_P_MLP_NORM, 0), N, C,
       eps);
    BE(be, linear_forward, a->gate, a->xn2, lw.w[LLAMA_P_GATE], dt, NULL, N, C, I, scratch);
    llama_lora_forward(m, ws, l, LLAMA_P_GATE, a->gate, a->xn2, a->lora_u[LLAMA_P_GATE], C, I);
    BE(be, linear_forward, a->up, a->xn2, lw.w[LLAMA_P_UP], dt, NULL, N, C, I, scratch);
    llama_lora_forward(m, ws, l, LLAMA_P_UP, a->up, a->xn2, a->lora_u[LLAMA_P_UP], C, I);
    BE(be, swiglu_forward, a->h, a->gate, a->up, (size_t)N * I);
    BE(be, linear_forward, y, a->h, lw.w[LLAMA_P_DOWN], dt, NULL, N, I, C, scratch);
    llama_lora_forward(m, ws, l, LLAMA_P_DOWN, y, a->h, a->lora_u[LLAMA_P_DOWN], I, C);
    BE(be, add, y, y, a->x_mid, NC);
}

/* Checks the batch against the model and workspace and sets the current shape and positions. */
static badam_status begin_batch(const llama_model *m, llama_workspace *ws, const llama_batch *batch,
                                badam_error *err) {
    ws->layer_f32_of = -1; /* weights may have changed since the last pass: convert again */
    int B = batch->B, T = batch->T, V = m->cfg.vocab_size;
    if (B <= 0 || T <= 0 || B > ws->max_B || T > ws->max_T)
        return badam_fail(err, BADAM_E_SHAPE, "batch %d x %d does not fit the workspace (%d x %d)",
                          B, T, ws->max_B, ws->max_T);
    if (m->cfg.sliding_window > 0 && T > m->cfg.sliding_window)
        return badam_fail(
            err, BADAM_E_UNSUPPORTED,
            "sequence length %d exceeds the model's sliding_window %d (sliding-window "
            "attention is not implemented)",
            T, m->cfg.sliding_window);
    for (int i = 0; i < B * T; i++) {
        int32_t tok = batch->tokens[i],
                tgt = batch->targets ? batch->targets[i] : LOSS_IGNORE_INDEX;
        if (tok < 0 || tok >= V)
            return badam_fail(err, BADAM_E_SHAPE,
                              "batch: token id %d at sequence %d position %d is outside the "
                              "vocabulary [0, %d)",
                              tok, i / T, i % T, V);
        if (tgt != LOSS_IGNORE_INDEX && (tgt < 0 || tgt >= V))
            return badam_fail(err, BADAM_E_SHAPE,
                              "batch: target %d at sequence %d position %d is outside the "
                              "vocabulary [0, %d) and is not -100",
                              tgt, i / T, i % T, V);
        int32_t pos = batch->positions ? batch->positions[i] : i % T;
        int32_t seg = batch->seg_start ? batch->seg_start[i] : 0;
        if (pos < 0 || pos >= ws->max_pos || seg < 0 || seg > i % T)
            return badam_fail(err, BADAM_E_SHAPE,
                              "batch: position %d / segment start %d at sequence %d position %d "
                              "is out of range",
                              pos, seg, i / T, i % T);
    }
    ws->B = B, ws->T = T;
    size_t idx_bytes = sizeof(int32_t) * (size_t)B * T;
    for (int i = 0; i < B * T; i++)
        ws->host_pos[i] = batch->positions ? batch->positions[i] : i % T;
    BE(ws->be, upload, ws->pos, ws->host_pos, idx_bytes);
    BE(ws->be, upload, ws->tokens, batch->tokens, idx_bytes);
    if (batch->targets) BE(ws->be, upload, ws->targets, batch->targets, idx_bytes);
    ws->seg_start = NULL;
    if (batch->seg_start) {
        BE(ws->be, upload, ws->seg, batch->seg_start, idx_bytes);
        ws->seg_start = ws->seg;
    }
    return BADAM_OK;
}

/* Runs embedding and every layer, leaving the last layer's output in ws->x_final. Layers from
 * `first` up keep their input (and, unless recompute, their activations) for backward. */
static badam_status forward_layers(const llama_model *m, llama_workspace *ws,
                                   const llama_batch *batch, int first, int recompute,
                                   badam_error *err) {
    int L = ws->L, N = ws->B * ws->T;
    layer_acts *acts = &ws->tmp, *next_acts = &ws->tmp;
    float *x = ws->ping[0], *slot = NULL;
    badam_status st;
    if (first == 0) {
        if ((st = llama_workspace_layer(ws, 0, !recompute, &acts, &slot, err))) return st;
        x = slot;
    }
    const llama_param *embed = &m->params[m->embed];
    BE(ws->be, embedding_forward, x, ws->tokens, N, embed->data, m->dtype, ws->C);
    for (int l = 0; l < L; l++) {
        float *y = ws->x_final;
        next_acts = &ws->tmp;
        if (l + 1 < L) {
            y = x == ws->ping[0] ? ws->ping[1] : ws->ping[0];
            if (l + 1 >= first) {
                st = llama_workspace_layer(ws, l + 1, !recompute, &next_acts, &slot, err);
                if (st) return st;
                y = slot;
            }
        }
        llama_layer_forward(m, ws, l, acts, x, y);
        x = y;
        acts = next_acts;
    }
    return BADAM_OK;
}

badam_status llama_forward_logits(const llama_model *m, llama_workspace *ws,
                                  const llama_batch *batch, float *logits, badam_error *err) {
    badam_status st = begin_batch(m, ws, batch, err);
    if (!st) st = forward_layers(m, ws, batch, ws->L, 0, err);
    if (st) return st;
    int N = ws->B * ws->T;
    ws->forward_plan_first_layer = -1;
    BE(ws->be, rmsnorm_forward, ws->xn_final, NULL, ws->x_final,
       llama_param_f32(m, ws, m->final_norm, 0), N, ws->C, m->cfg.rms_norm_eps);
    BE(ws->be, linear_forward, logits, ws->xn_final, m->params[m->lm_head].data, m->dtype, NULL, N,
       ws->C, ws->V, ws->lin_scratch);
    return BADAM_OK;
}

static badam_status check_grads(const llama_model *m, const llama_grad_plan *plan, float **grads,
                                badam_error *err) {
    badam_status st = llama_plan_check(m, plan, err);
    if (st) return st;
    for (int i = 0; i < m->n_params; i++)
        if (!plan->need_grad[i] != !(grads && grads[i]))
            return badam_fail(err, BADAM_E_INVALID,
                              "gradient plan: '%s' is %sflagged but its gradient buffer is %s",
                              m->params[i].name, plan->need_grad[i] ? "" : "not ",
                              grads && grads[i] ? "given" : "missing");
    return BADAM_OK;
}

badam_status llama_forward(const llama_model *m, llama_workspace *ws, const llama_batch *batch,
                           const llama_grad_plan *plan, float grad_scale, float **grads,
                           double *loss_sum, int *n_tokens, badam_error *err) {
    if (!batch->targets)
        return badam_fail(err, BADAM_E_INVALID, "llama_forward: the batch has no targets");
    badam_status st = plan ? check_grads(m, plan, grads, err) : BADAM_OK;
    if (!st) st = begin_batch(m, ws, batch, err);
    int L = ws->L, first = plan ? llama_plan_first_layer(m, plan) : L;
    int recompute = plan ? plan->recompute : 0;
    ws->forward_plan_first_layer = -1;
    if (!st) st = forward_layers(m, ws, batch, first, recompute, err);
    if (st) return st;

    int N = ws->B * ws->T, C = ws->C;
    const float *norm_w = llama_param_f32(m, ws, m->final_norm, 0);
    backend *be = ws->be;
    BE(be, rmsnorm_forward, ws->xn_final, ws->rstd_final, ws->x_final, norm_w, N, C,
       m->cfg.rms_norm_eps);
    int norm_flag = llama_plan_flag(m, plan, m->final_norm);
    int need_dh = plan && (first < L || norm_flag);
    float *dhead = llama_plan_flag(m, plan, m->lm_head) ? grads[m->lm_head] : NULL;
    if (need_dh) BE(be, zero, ws->dxn, sizeof(float) * (size_t)N * C);
    *loss_sum = BE(be, lm_head_loss, need_dh ? ws->dxn : NULL, dhead, ws->xn_final,
                   m->params[m->lm_head].data, m->dtype, ws->targets, N, C, ws->V,
                   llama_loss_chunk(ws->V), grad_scale, ws->loss_work, n_tokens);
    if (dhead && plan->grad_ready && m->lm_head != m->embed)
        plan->grad_ready(plan->grad_ready_ctx, m->lm_head);
    if (need_dh) {
        BE(be, zero, ws->dresid, sizeof(float) * (size_t)N * C);
        BE(be, rmsnorm_backward, first < L ? ws->dresid : NULL,
           norm_flag ? grads[m->final_norm] : NULL, ws->dxn, ws->x_final, norm_w, ws->rstd_final, N,
           C);
        if (norm_flag && plan->grad_ready) plan->grad_ready(plan->grad_ready_ctx, m->final_norm);
    }
    if (plan) {
        ws->forward_plan_first_layer = first;
        ws->forward_recompute = recompute;
    }
    return BADAM_OK;
}
