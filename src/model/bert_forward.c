/* Encoder forward (BERT / RoBERTa, Hugging Face's modeling_bert / modeling_roberta in eval or
 * training mode):
 *   embeddings: e = drop(LayerNorm(word[tok] + position[pos] + token_type[type]))
 *     pos = t (BERT; or the batch's positions), or RoBERTa's pad_token_id + 1 + (the count of
 *     non-pad tokens up to t) for non-pad tokens and pad_token_id for pad tokens
 *   layer: s1 = x + drop(attention.output.dense(attention(q, k, v))),  h1 = LN1(s1)
 *          s2 = h1 + drop(output.dense(gelu(intermediate.dense(h1)))),  y = LN2(s2)
 *     attention bidirectional over the batch's real keys (pad_mask), probabilities dropped out
 *   head on the first token's hidden state c:
 *     pooler layout:  logits = classifier(drop(tanh(pooler.dense(c))))
 *     RoBERTa head:   logits = out_proj(drop(tanh(dense(drop(c)))))
 *   loss: cross-entropy of each sequence's logits (sequence classification) or of each group's
 *     n_choices scores (multiple choice: one score per row), rows with target -100 left out.
 * LoRA adapters (llama_lora.c) add s B A drop(x) to the output of the layer linear they sit on,
 * before its dropout, as PEFT's wrapped Linear does.
 * With a plan, the head's backward is fused in (as the Llama LM head): head gradients, and the
 * gradient at the last layer's output scattered to the first-token rows of ws->dres. */
#include <stdlib.h>
#include <string.h>

#include "model/bert_internal.h"

/* y = x W^T + b for parameter pair (idx, idx + 1) over n rows. */
static void linear(bert_workspace *w, const llama_model *m, const model_layer_weights *lw, int idx,
                   float *y, const float *x, int n, int in, int out) {
    badam_dtype dt;
    const void *W = bert_matrix(m, lw, idx, &dt);
    const float *b = bert_small(w, m, lw, idx + 1, 0);
    BE(w->base.be, linear_forward, y, x, W, dt, b, n, in, out, w->lin_scratch);
}

/* A layer linear (weight at `slot` of layer l, bias after it) over the batch's rows, plus its
 * LoRA adapter when it has one (its input A drop(x) kept in a->lora_u). */
static void project(bert_workspace *w, const llama_model *m, const model_layer_weights *lw, int l,
                    int slot, bert_acts *a, float *y, const float *x, int in, int out) {
    int idx = bert_layer_param(m, l, slot), N = w->base.B * w->base.T;
    linear(w, m, lw, idx, y, x, N, in, out);
    llama_param_kind kind = m->params[idx].kind;
    if (!a->lora_u[kind]) return;
    layer_run run = {.be = w->base.be, .n = N};
    run.lora_x = w->no_lora_dropout ? NULL : w->base.lora_x;
    run.first_token = (size_t)w->base.first_row * (size_t)w->base.T;
    llama_lora_forward(m, &run, l, kind, y, x, a->lora_u[kind], in, out);
}

void bert_layer_forward(const llama_model *m, bert_workspace *w, const model_layer_weights *lw,
                        int l, bert_acts *a, const float *x, float *y) {
    backend *be = w->base.be;
    int B = w->base.B, T = w->base.T, N = B * T, C = w->C, I = w->I;
    float eps = m->cfg.layer_norm_eps;
    size_t NC = (size_t)N * C;
    BE(be, copy, a->x, x, NC * sizeof(float));
    project(w, m, lw, l, BERT_Q, a, a->q, x, C, C);
    project(w, m, lw, l, BERT_K, a, a->k, x, C, C);
    project(w, m, lw, l, BERT_V, a, a->v, x, C, C);
    BE(be, attention_bidir_forward, a->attn, a->lse, a->q, a->k, a->v, B, T, w->H, w->D,
       w->key_mask, bert_drop_rate(w, m, BERT_DROP_ATTN_PROBS),
       bert_drop_key(w, l, BERT_DROP_ATTN_PROBS));
    project(w, m, lw, l, BERT_O, a, w->tbuf, a->attn, C, C);
    const float *t = bert_dropout(w, m, l, BERT_DROP_ATTN_OUT, w->tbuf, w->tbuf, NC);
    BE(be, add, a->s1, x, t, NC);
    BE(be, layernorm_forward, a->h1, a->mean1, a->rstd1, a->s1,
       bert_small(w, m, lw, bert_layer_param(m, l, BERT_LN1), 0),
       bert_small(w, m, lw, bert_layer_param(m, l, BERT_LN1_B), 1), N, C, eps);
    project(w, m, lw, l, BERT_UP, a, a->u, a->h1, C, I);
    BE(be, gelu_forward, w->gbuf, a->u, (size_t)N * I);
    project(w, m, lw, l, BERT_DOWN, a, w->tbuf, w->gbuf, I, C);
    t = bert_dropout(w, m, l, BERT_DROP_MLP_OUT, w->tbuf, w->tbuf, NC);
    BE(be, add, a->s2, a->h1, t, NC);
    BE(be, layernorm_forward, y, a->mean2, a->rstd2, a->s2,
       bert_small(w, m, lw, bert_layer_param(m, l, BERT_LN2), 0),
       bert_small(w, m, lw, bert_layer_param(m, l, BERT_LN2_B), 1), N, C, eps);
}

/* Loss rows of the batch: sequences, or groups of n_choices. */
static badam_status check_targets(const llama_model *m, const llama_batch *b, int *rows, int *len,
                                  badam_error *err) {
    int K = m->cfg.num_labels, mlm = m->cfg.encoder_head == LLAMA_HEAD_MLM;
    if (!mlm && b->target_kind == MODEL_TARGETS_TOKEN)
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "batch: target_kind per token is not supported by the %s encoder "
                          "(sequence classification and multiple choice are)",
                          m->cfg.model_type);
    if (mlm != (b->target_kind == MODEL_TARGETS_MASKED))
        return badam_fail(err, BADAM_E_INVALID,
                          mlm ? "batch: the %s encoder's masked-LM head takes masked-LM targets"
                              : "batch: masked-LM targets, but the %s encoder has a "
                                "classification head",
                          m->cfg.model_type);
    if (mlm) {
        *rows = b->B * b->T, *len = m->cfg.vocab_size;
    } else if (b->target_kind == MODEL_TARGETS_SEQUENCE) {
        if (K == 1)
            return badam_fail(err, BADAM_E_INVALID,
                              "batch: target_kind per sequence, but the model has a "
                              "multiple-choice head (one score per choice)");
        *rows = b->B, *len = K;
    } else if (b->target_kind == MODEL_TARGETS_CHOICE) {
        if (K != 1)
            return badam_fail(err, BADAM_E_INVALID,
                              "batch: target_kind per group of choices, but the model's head has "
                              "%d labels (a *ForMultipleChoice folder has one score)",
                              K);
        if (b->n_choices < 2 || b->B % b->n_choices)
            return badam_fail(err, BADAM_E_SHAPE,
                              "batch: n_choices %d must be >= 2 and divide the %d rows",
                              b->n_choices, b->B);
        *rows = b->B / b->n_choices, *len = b->n_choices;
    } else {
        return badam_fail(err, BADAM_E_UNSUPPORTED, "batch: unknown target_kind %d",
                          (int)b->target_kind);
    }
    for (int i = 0; b->targets && i < *rows; i++)
        if (b->targets[i] != LOSS_IGNORE_INDEX && (b->targets[i] < 0 || b->targets[i] >= *len))
            return badam_fail(err, BADAM_E_SHAPE,
                              "batch: target %d of row %d is outside [0, %d) and is not -100",
                              b->targets[i], i, *len);
    return BADAM_OK;
}

/* The position of token i of sequence b (RoBERTa counts non-pad tokens from the pad index). */
static int32_t position_of(const llama_model *m, const llama_batch *b, int i, int *count) {
    const llama_config *c = &m->cfg;
    if (b->positions) return b->positions[i];
    if (!c->position_offset) return i % b->T;
    if (i % b->T == 0) *count = 0;
    if (b->tokens[i] == c->pad_token_id) return c->pad_token_id;
    return c->position_offset + (*count)++;
}

static badam_status check_tokens(const llama_model *m, bert_workspace *w, const llama_batch *b,
                                 badam_error *err) {
    const llama_config *c = &m->cfg;
    int count = 0;
    for (int i = 0; i < b->B * b->T; i++) {
        int32_t tok = b->tokens[i], type = b->token_types ? b->token_types[i] : 0;
        int32_t pos = position_of(m, b, i, &count);
        const char *bad = tok < 0 || tok >= c->vocab_size                ? "token id"
                          : type < 0 || type >= c->type_vocab_size       ? "token type"
                          : pos < 0 || pos >= c->max_position_embeddings ? "position"
                                                                         : NULL;
        if (bad)
            return badam_fail(err, BADAM_E_SHAPE,
                              "batch: %s at sequence %d position %d is out of range (token %d, "
                              "type %d, position %d; vocabulary %d, types %d, positions %d)",
                              bad, i / b->T, i % b->T, tok, type, pos, c->vocab_size,
                              c->type_vocab_size, c->max_position_embeddings);
        w->host_idx[i] = pos;
    }
    for (int s = 0; b->pad_mask && s < b->B; s++) {
        int real = 0;
        for (int t = 0; t < b->T; t++) real += b->pad_mask[s * b->T + t] != 0;
        if (!real)
            return badam_fail(err, BADAM_E_SHAPE,
                              "batch: pad_mask of sequence %d has no real "
                              "token",
                              s);
    }
    return BADAM_OK;
}

/* Checks the batch and uploads its index arrays. */
static badam_status begin_batch(const llama_model *m, bert_workspace *w, const llama_batch *b,
                                badam_error *err) {
    llama_workspace *ws = &w->base;
    if (ws->hooks.invalidate) ws->hooks.invalidate(ws->hooks.ctx, m);
    if (b->B <= 0 || b->T <= 0 || b->B > ws->max_B || b->T > ws->max_T)
        return badam_fail(err, BADAM_E_SHAPE, "batch %d x %d does not fit the workspace (%d x %d)",
                          b->B, b->T, ws->max_B, ws->max_T);
    if (b->seg_start)
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "batch: seg_start given, but the encoder takes one example per row "
                          "(no packing)");
    badam_status st = check_targets(m, b, &w->n_rows, &w->row_len, err);
    if (!st) st = check_tokens(m, w, b, err);
    if (st) return st;
    ws->B = b->B, ws->T = b->T, ws->first_row = b->first_row; /* dropout masks: global rows */
    size_t N = (size_t)b->B * b->T;
    BE(ws->be, upload, w->pos, w->host_idx, N * sizeof(int32_t));
    BE(ws->be, upload, w->tokens, b->tokens, N * sizeof(int32_t));
    if (b->token_types)
        BE(ws->be, upload, w->types, b->token_types, N * sizeof(int32_t));
    else
        BE(ws->be, zero, w->types, N * sizeof(int32_t));
    if (b->targets) BE(ws->be, upload, w->targets, b->targets, (size_t)w->n_rows * sizeof(int32_t));
    w->key_mask = NULL;
    if (b->pad_mask) {
        BE(ws->be, upload, w->mask, b->pad_mask, N);
        w->key_mask = w->mask;
    }
    return BADAM_OK;
}

/* Embeddings into x (the first layer's input). */
static void embed(const llama_model *m, bert_workspace *w, float *x) {
    backend *be = w->base.be;
    int N = w->base.B * w->base.T, C = w->C;
    size_t NC = (size_t)N * C;
    BE(be, embedding_forward, w->emb_sum, w->tokens, N, m->params[BERT_E_WORD].data, m->dtype, C);
    BE(be, embedding_forward, w->tbuf, w->pos, N, m->params[BERT_E_POS].data, m->dtype, C);
    BE(be, add, w->emb_sum, w->emb_sum, w->tbuf, NC);
    BE(be, embedding_forward, w->tbuf, w->types, N, m->params[BERT_E_TYPE].data, m->dtype, C);
    BE(be, add, w->emb_sum, w->emb_sum, w->tbuf, NC);
    BE(be, layernorm_forward, x, w->emb_mean, w->emb_rstd, w->emb_sum,
       bert_small(w, m, NULL, BERT_E_LN_W, 0), bert_small(w, m, NULL, BERT_E_LN_B, 1), N, C,
       m->cfg.layer_norm_eps);
    if (bert_drop_rate(w, m, BERT_DROP_EMBED) > 0) {
        BE(be, copy, w->tbuf, x, NC * sizeof(float));
        bert_dropout(w, m, -1, BERT_DROP_EMBED, x, w->tbuf, NC);
    }
}

/* Embeddings and every layer; layers from `first` keep their activations, or with `recompute`
 * only their inputs. */
static badam_status forward_layers(const llama_model *m, bert_workspace *w, int first,
                                   int recompute, badam_error *err) {
    float *x = w->ping[0];
    embed(m, w, x);
    for (int l = 0; l < w->L; l++) {
        bert_acts *a = &w->tmp;
        float *keep = NULL;
        badam_status st = BADAM_OK;
        if (l >= first)
            st = recompute ? bert_workspace_input(w, l, &keep, err)
                           : bert_workspace_layer(w, l, &a, err);
        if (keep)
            BE(w->base.be, copy, keep, x, sizeof(float) * (size_t)w->base.B * w->base.T * w->C);
        float *y = l == w->L - 1 ? w->x_final : x == w->ping[0] ? w->ping[1] : w->ping[0];
        model_layer_weights lw;
        if (!st) st = llama_acquire_layer(&w->base.hooks, m, l, &lw, err);
        if (st) return st;
        bert_layer_forward(m, w, &lw, l, a, x, y);
        llama_release_layer(&w->base.hooks, m, l, &lw);
        x = y;
    }
    return BADAM_OK;
}

/* The head on the first token of each sequence: logits [B, K]. */
static void head_forward(const llama_model *m, bert_workspace *w) {
    backend *be = w->base.be;
    int B = w->base.B, T = w->base.T, C = w->C;
    for (int b = 0; b < B; b++)
        BE(be, copy, w->cls + (size_t)b * C, w->x_final + (size_t)b * T * C, sizeof(float) * C);
    size_t BC = (size_t)B * C;
    const float *in = w->cls;
    if (m->cfg.encoder_head == LLAMA_HEAD_ROBERTA_CLASSIFIER)
        in = bert_dropout(w, m, -1, BERT_DROP_HEAD_IN, w->cls_in, w->cls, BC);
    linear(w, m, NULL, bert_head_param(m, BERT_H_DENSE), w->pool, in, B, C, C);
    BE(be, tanh_forward, w->pool, w->pool, BC);
    const float *p2 = bert_dropout(w, m, -1, BERT_DROP_HEAD_MID, w->pool_in, w->pool, BC);
    linear(w, m, NULL, bert_head_param(m, BERT_H_CLS), w->logits, p2, B, C, w->K);
}

badam_status bert_forward_logits(const llama_model *m, llama_workspace *ws,
                                 const llama_batch *batch, float *logits, badam_error *err) {
    bert_workspace *w = bert_ws(ws);
    if (m->cfg.encoder_head == LLAMA_HEAD_MLM)
        return badam_fail(err, BADAM_E_INVALID,
                          "bert_forward_logits: a masked-LM head has no class scores "
                          "(bert_mlm_predict)");
    int training = w->training;
    w->training = 0, w->no_lora_dropout = 1;
    badam_status st = begin_batch(m, w, batch, err);
    if (!st) st = forward_layers(m, w, w->L, 0, err);
    w->training = training, w->no_lora_dropout = 0;
    if (st) return st;
    w->first = -1;
    head_forward(m, w);
    BE(ws->be, download, logits, w->logits, sizeof(float) * (size_t)batch->B * w->K);
    return BADAM_OK;
}

static badam_status check_grads(const llama_model *m, const llama_grad_plan *plan, float **grads,
                                badam_error *err) {
    badam_status st = bert_plan_check(m, plan, err);
    return st ? st : llama_plan_check_buffers(m, plan, grads, err);
}

static void ready(const llama_grad_plan *plan, int idx) {
    if (plan->grad_ready && plan->need_grad[idx]) plan->grad_ready(plan->grad_ready_ctx, idx);
}

/* The head's backward from dlogits: head gradients of flagged tensors and, when the layers need
 * it, the gradient at the last layer's output in w->dres (non-zero on first-token rows only). */
static void head_backward(const llama_model *m, bert_workspace *w, const llama_grad_plan *plan,
                          float **grads, int need_dh) {
    backend *be = w->base.be;
    int B = w->base.B, T = w->base.T, C = w->C, K = w->K;
    size_t BC = (size_t)B * C;
    int dense = bert_head_param(m, BERT_H_DENSE), cls = bert_head_param(m, BERT_H_CLS);
    const float *p2 = bert_drop_rate(w, m, BERT_DROP_HEAD_MID) > 0 ? w->pool_in : w->pool;
    float *dw = grads && plan->need_grad[cls] ? grads[cls] : NULL;
    float *db = grads && plan->need_grad[cls + 1] ? grads[cls + 1] : NULL;
    int need_dense = plan->need_grad[dense] || plan->need_grad[dense + 1];
    badam_dtype dt;
    if (need_dense || need_dh) {
        BE(be, zero, w->dpool, BC * sizeof(float));
        const void *W = bert_matrix(m, NULL, cls, &dt);
        BE(be, linear_backward_input, w->dpool, w->dlogits, W, dt, B, C, K, w->lin_scratch);
    }
    if (dw || db)
        BE(be, linear_backward_weight, dw, db, w->dlogits, p2, m->dtype, B, C, K, w->lin_scratch,
           w->layout.lin_scratch);
    ready(plan, cls), ready(plan, cls + 1);
    if (!need_dense && !need_dh) return;
    const float *dp = bert_dropout(w, m, -1, BERT_DROP_HEAD_MID, w->dcls, w->dpool, BC);
    BE(be, tanh_backward, w->dpool, dp, w->pool, BC); /* dpool: d(pre-tanh) */
    int roberta = m->cfg.encoder_head == LLAMA_HEAD_ROBERTA_CLASSIFIER;
    const float *in = roberta && bert_drop_rate(w, m, BERT_DROP_HEAD_IN) > 0 ? w->cls_in : w->cls;
    if (need_dh) {
        BE(be, zero, w->dcls, BC * sizeof(float));
        const void *W = bert_matrix(m, NULL, dense, &dt);
        BE(be, linear_backward_input, w->dcls, w->dpool, W, dt, B, C, C, w->lin_scratch);
    }
    if (need_dense)
        BE(be, linear_backward_weight, plan->need_grad[dense] ? grads[dense] : NULL,
           plan->need_grad[dense + 1] ? grads[dense + 1] : NULL, w->dpool, in, m->dtype, B, C, C,
           w->lin_scratch, w->layout.lin_scratch);
    ready(plan, dense), ready(plan, dense + 1);
    if (!need_dh) return;
    const float *dc = w->dcls;
    if (roberta) dc = bert_dropout(w, m, -1, BERT_DROP_HEAD_IN, w->cls_in, w->dcls, BC);
    BE(be, zero, w->dres, sizeof(float) * (size_t)B * T * C);
    for (int b = 0; b < B; b++)
        BE(be, copy, w->dres + (size_t)b * T * C, dc + (size_t)b * C, sizeof(float) * C);
}

badam_status bert_forward(const llama_model *m, llama_workspace *ws, const llama_batch *batch,
                          const llama_grad_plan *plan, float grad_scale, float **grads,
                          double *loss_sum, int *n_rows, badam_error *err) {
    bert_workspace *w = bert_ws(ws);
    if (!batch->targets)
        return badam_fail(err, BADAM_E_INVALID, "bert_forward: the batch has no targets");
    badam_status st = plan ? check_grads(m, plan, grads, err) : BADAM_OK;
    if (!st) st = begin_batch(m, w, batch, err);
    int first = plan ? bert_plan_first_layer(m, plan) : w->L;
    w->first = -1;
    ws->forward_plan_first_layer = -1;
    int recompute = plan ? plan->recompute : 0;
    if (!st) st = forward_layers(m, w, first, recompute, err);
    if (st) return st;
    if (m->cfg.encoder_head == LLAMA_HEAD_MLM) {
        *loss_sum = bert_mlm_head(m, w, batch, plan, grads, grad_scale, first < w->L, n_rows);
    } else {
        head_forward(m, w);
        *loss_sum = BE(ws->be, class_loss, plan ? w->dlogits : NULL, w->logits, w->targets,
                       w->n_rows, w->row_len, grad_scale, n_rows);
        if (plan) head_backward(m, w, plan, grads, first < w->L);
    }
    if (plan) {
        w->first = first;
        w->recompute = recompute;
        ws->forward_plan_first_layer = first;
    }
    return BADAM_OK;
}

badam_status bert_mlm_predict(const llama_model *m, llama_workspace *ws, const llama_batch *batch,
                              int32_t *pred, badam_error *err) {
    bert_workspace *w = bert_ws(ws);
    if (m->cfg.encoder_head != LLAMA_HEAD_MLM)
        return badam_fail(err, BADAM_E_INVALID,
                          "bert_mlm_predict: the model has no masked-LM head");
    if (!batch->targets)
        return badam_fail(err, BADAM_E_INVALID, "bert_mlm_predict: the batch has no targets");
    float *host = malloc(sizeof(float) * (size_t)w->layout.mlm_rows * m->cfg.vocab_size);
    if (!host) return badam_fail(err, BADAM_E_NOMEM, "bert_mlm_predict: out of memory");
    int training = w->training;
    w->training = 0, w->no_lora_dropout = 1;
    badam_status st = begin_batch(m, w, batch, err);
    if (!st) st = forward_layers(m, w, w->L, 0, err);
    w->training = training, w->no_lora_dropout = 0;
    w->first = -1;
    if (!st) bert_mlm_argmax(m, w, batch, pred, host);
    free(host);
    return st;
}
