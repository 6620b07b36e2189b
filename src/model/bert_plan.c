/* Gradient plans of an encoder: the embeddings (all five tensors) need the layers' input
 * gradients down to layer 0; otherwise backward stops at the lowest layer with a flagged tensor.
 * Head tensors are handled in forward. */
#include "model/bert_internal.h"

int bert_plan_layer_flagged(const llama_model *m, const llama_grad_plan *plan, int l) {
    for (int s = 0; s < BERT_LAYER_PARAMS; s++)
        if (plan->need_grad[bert_layer_param(m, l, s)]) return 1;
    return 0;
}

static int embed_flagged(const uint8_t *need_grad) {
    for (int e = 0; e < BERT_N_EMBED; e++)
        if (need_grad[e]) return 1;
    return 0;
}

void bert_plan_for_flags(const llama_model *m, const uint8_t *need_grad, int train_adapters,
                         llama_grad_plan *plan) {
    llama_plan_fill(m, need_grad, train_adapters, embed_flagged(need_grad), bert_plan_layer_flagged,
                    plan);
}

int bert_plan_first_layer(const llama_model *m, const llama_grad_plan *plan) {
    return llama_plan_first_flagged(m, plan, bert_plan_layer_flagged);
}

badam_status bert_plan_check(const llama_model *m, const llama_grad_plan *plan, badam_error *err) {
    int low = plan->lowest_input_grad_layer;
    badam_status st = llama_plan_check_range(m, plan, err);
    if (st) return st;
    if (plan->train_adapters)
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "gradient plan: LoRA adapters on the %s encoder are not implemented",
                          m->cfg.model_type);
    for (int i = 0; i < m->n_params; i++) {
        int l = m->params[i].layer;
        if (!plan->need_grad[i]) continue;
        if ((i < BERT_N_EMBED && low != 0) || (l >= 0 && l < low - 1))
            return badam_fail(err, BADAM_E_INVALID,
                              "gradient plan: '%s' needs a gradient but backward stops above it "
                              "(lowest_input_grad_layer %d)",
                              m->params[i].name, low);
    }
    return BADAM_OK;
}

/* GEMM FLOPs: forward 2 N (4 C^2 + 2 C I) per layer and 2 B C (C + K) in the head; backward the
 * input-gradient GEMMs of the visited layers' parts plan needs, and 2 flops per multiply-add of
 * each weight gradient computed (as bert_backward.c runs them). */
uint64_t bert_plan_gemm_flops(const llama_model *m, const llama_grad_plan *plan, int B, int T,
                              int n_rows) {
    (void)n_rows;
    const llama_config *c = &m->cfg;
    uint64_t N = (uint64_t)B * T, C = c->hidden_size, I = c->intermediate_size;
    uint64_t K = c->num_labels, L = c->n_layers;
    uint64_t f = L * 2 * N * (4 * C * C + 2 * C * I) + 2 * (uint64_t)B * C * (C + K);
    if (!plan) return f;
    int first = bert_plan_first_layer(m, plan);
    const uint8_t *g = plan->need_grad;
    int dense = bert_head_param(m, BERT_H_DENSE), cls = bert_head_param(m, BERT_H_CLS);
    int need_dense = g[dense] || g[dense + 1], need_dh = first < (int)L;
    if (need_dense || need_dh) f += 2 * (uint64_t)B * C * K;
    if (g[cls] || g[cls + 1]) f += 2 * (uint64_t)B * C * K;
    if (need_dense) f += 2 * (uint64_t)B * C * C;
    if (need_dh) f += 2 * (uint64_t)B * C * C;
    for (int l = first; l < (int)L; l++) {
        int need_dx = l >= plan->lowest_input_grad_layer;
#define FL(s0, s1) (g[bert_layer_param(m, l, s0)] || g[bert_layer_param(m, l, s1)])
        int need_ds1 = need_dx || FL(BERT_Q, BERT_Q_B) || FL(BERT_K, BERT_K_B) ||
                       FL(BERT_V, BERT_V_B) || FL(BERT_O, BERT_O_B) || FL(BERT_LN1, BERT_LN1_B);
        int need_inner = need_ds1 || FL(BERT_UP, BERT_UP_B);
        int need_attn =
            need_dx || FL(BERT_Q, BERT_Q_B) || FL(BERT_K, BERT_K_B) || FL(BERT_V, BERT_V_B);
        if (need_inner) f += 2 * N * C * I; /* dg = do Wd */
        if (FL(BERT_DOWN, BERT_DOWN_B)) f += 2 * N * C * I;
        if (need_ds1) f += 2 * N * C * I; /* du Wi */
        if (FL(BERT_UP, BERT_UP_B)) f += 2 * N * C * I;
        if (need_attn) f += 2 * N * C * C; /* dattn = dt Wo */
        if (FL(BERT_O, BERT_O_B)) f += 2 * N * C * C;
        if (need_dx) f += 3 * 2 * N * C * C; /* dx from q, k, v */
        for (int s = BERT_Q; s <= BERT_V; s += 2)
            if (FL(s, s + 1)) f += 2 * N * C * C;
#undef FL
    }
    return f;
}
