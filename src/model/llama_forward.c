/* Llama forward: embedding, L transformer layers, final norm, fused LM head + cross-entropy.
 *   layer:  x_mid = x + o_proj(attention(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1)))
 *           y     = x_mid + down_proj(silu(gate_proj(n2)) * up_proj(n2))
 *   with n1 = rmsnorm(x) * input_layernorm, n2 = rmsnorm(x_mid) * post_attention_layernorm; with
 *   bottleneck adapters, o_proj's and down_proj's outputs pass through theirs before the adds.
 * Every op runs on the workspace's backend (ws->be); the batch's index arrays are uploaded to it
 * once per batch (begin_batch). */
#include <string.h>

#include "model/llama_internal.h"

static const float *small(const llama_model *m, const layer_run *r, const model_layer_weights *lw,
                          llama_param_kind kind, int slot) {
    return llama_lw_small(m, r->be, r->vec, lw, kind, slot);
}

/* y = x W^T (+ b) for the projection `kind` of the acquired layer, then its adapter. */
static void project(const llama_model *m, const layer_run *r, const model_layer_weights *lw,
                    llama_param_kind kind, llama_param_kind bias, float *y, const float *x,
                    float *u, int in, int out) {
    const float *b = bias == LLAMA_P_KIND_COUNT ? NULL : small(m, r, lw, bias, 1);
    BE(r->be, linear_forward, y, x, llama_lw_data(m, lw, kind), llama_lw_dtype(m, lw, kind), b,
       r->n, in, out, r->lin_scratch);
    llama_lora_forward(m, r, lw->layer, kind, y, x, u, in, out);
}

/* Attention of the rows' queries over the batch (saving the logsumexp for backward) or over the
 * KV cache (the rows' keys and values are already in it). */
static void attend(const llama_model *m, const layer_run *r, layer_acts *a) {
    const llama_config *c = &m->cfg;
    if (r->k_cache)
        BE(r->be, attention_decode, a->attn, a->q, r->k_cache, r->v_cache, r->n, r->p0, c->n_heads,
           c->n_kv_heads, c->head_dim, c->n_kv_heads * c->head_dim, r->window, r->max_len,
           r->scores);
    else
        BE(r->be, attention_forward, a->attn, a->lse, a->q, a->k, a->v, r->B, r->T, c->n_heads,
           c->n_kv_heads, c->head_dim, r->seg_start);
}

void llama_layer_forward(const llama_model *m, const layer_run *r, const model_layer_weights *lw,
                         int l, layer_acts *a, const float *x, float *y) {
    const llama_config *c = &m->cfg;
    int N = r->n, C = c->hidden_size, I = c->intermediate_size;
    int QD = c->n_heads * c->head_dim, KVD = c->n_kv_heads * c->head_dim;
    float eps = c->rms_norm_eps;
    backend *be = r->be;
    const llama_param_kind none = LLAMA_P_KIND_COUNT;

    BE(be, rmsnorm_forward, a->xn1, a->rstd1, x, small(m, r, lw, LLAMA_P_ATTN_NORM, 0), N, C, eps);
    project(m, r, lw, LLAMA_P_Q, LLAMA_P_Q_BIAS, a->q, a->xn1, a->lora_u[LLAMA_P_Q], C, QD);
    project(m, r, lw, LLAMA_P_K, LLAMA_P_K_BIAS, a->k, a->xn1, a->lora_u[LLAMA_P_K], C, KVD);
    project(m, r, lw, LLAMA_P_V, LLAMA_P_V_BIAS, a->v, a->xn1, a->lora_u[LLAMA_P_V], C, KVD);
    BE(be, rope_forward, a->q, r->pos, r->cos_t, r->sin_t, N, c->n_heads, c->head_dim);
    BE(be, rope_forward, a->k, r->pos, r->cos_t, r->sin_t, N, c->n_kv_heads, c->head_dim);
    attend(m, r, a);
    project(m, r, lw, LLAMA_P_O, LLAMA_P_O_BIAS, y, a->attn, a->lora_u[LLAMA_P_O], QD, C);
    llama_bottleneck_forward(m, r, l, 0, y, a->bottleneck[0]);
    size_t NC = (size_t)N * C;
    BE(be, add, a->x_mid, x, y, NC);

    BE(be, rmsnorm_forward, a->xn2, a->rstd2, a->x_mid, small(m, r, lw, LLAMA_P_MLP_NORM, 0), N, C,
       eps);
    project(m, r, lw, LLAMA_P_GATE, none, a->gate, a->xn2, a->lora_u[LLAMA_P_GATE], C, I);
    project(m, r, lw, LLAMA_P_UP, none, a->up, a->xn2, a->lora_u[LLAMA_P_UP], C, I);
    BE(be, swiglu_forward, a->h, a->gate, a->up, (size_t)N * I);
    project(m, r, lw, LLAMA_P_DOWN, none, y, a->h, a->lora_u[LLAMA_P_DOWN], I, C);
    llama_bottleneck_forward(m, r, l, 1, y, a->bottleneck[1]);
    BE(be, add, y, y, a->x_mid, NC);
}

layer_run llama_ws_run(llama_workspace *ws) {
    layer_run r = {0};
    r.be = ws->be;
    r.n = ws->B * ws->T;
    r.pos = ws->pos, r.cos_t = ws->cos_t, r.sin_t = ws->sin_t;
    r.lin_scratch = ws->lin_scratch;
    r.vec[0] = ws->vec[0], r.vec[1] = ws->vec[1];
    r.lora_x = ws->lora_x;
    r.B = ws->B, r.T = ws->T, r.seg_start = ws->seg_start;
    r.first_token = (size_t)ws->first_row * (size_t)ws->T;
    return r;
}

/* The Llama family predicts next tokens: per-token targets only, no token types, no padding
 * mask (padding is right padding with targets -100 under causal attention). */
static badam_status llama_batch_check_kind(const llama_batch *b, badam_error *err) {
    if (b->target_kind != MODEL_TARGETS_TOKEN)
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "batch: target_kind %s is not supported by the Llama family (a causal "
                          "LM takes per-token targets only)",
                          b->target_kind == MODEL_TARGETS_SEQUENCE ? "per sequence"
                          : b->target_kind == MODEL_TARGETS_CHOICE ? "per group of choices"
                          : b->target_kind == MODEL_TARGETS_MASKED ? "masked-LM"
                                                                   : "(unknown)");
    if (b->token_types)
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "batch: token_types given, but the Llama family has no token-type "
                          "embedding");
    if (b->pad_mask)
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "batch: pad_mask given, but the Llama family takes right-padded rows "
                          "with targets -100 instead");
    return BADAM_OK;
}

/* Checks the batch against the model and workspace and sets the current shape and positions. */
static badam_status begin_batch(const llama_model *m, llama_workspace *ws, const llama_batch *batch,
                                badam_error *err) {
    if (ws->hooks.invalidate) ws->hooks.invalidate(ws->hooks.ctx, m); /* weights may have changed */
    badam_status st = llama_batch_check_kind(batch, err);
    if (st) return st;
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
    ws->B = B, ws->T = T, ws->first_row = batch->first_row;
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
    layer_run run = llama_ws_run(ws);
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
        model_layer_weights lw;
        if ((st = llama_acquire_layer(&ws->hooks, m, l, &lw, err))) return st;
        llama_layer_forward(m, &run, &lw, l, acts, x, y);
        llama_release_layer(&ws->hooks, m, l, &lw);
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
    return st ? st : llama_plan_check_buffers(m, plan, grads, err);
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
