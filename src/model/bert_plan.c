/* Gradient plans of an encoder: the embeddings (all five tensors) need the layers' input
 * gradients down to layer 0; otherwise backward stops at the lowest layer with a flagged tensor
 * or a trained LoRA adapter. Head tensors are handled in forward. */
#include "model/bert_internal.h"

int bert_plan_trains_slot(const llama_model *m, const llama_grad_plan *plan, int l, int slot) {
    const llama_param *p = &m->params[bert_layer_param(m, l, slot)];
    return p->ndim == 2 && llama_plan_trains_adapter(m, plan, l, p->kind);
}

int bert_plan_layer_flagged(const llama_model *m, const llama_grad_plan *plan, int l) {
    for (int s = 0; s < BERT_LAYER_PARAMS; s++)
        if (plan->need_grad[bert_layer_param(m, l, s)] || bert_plan_trains_slot(m, plan, l, s))
            return 1;
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
    if (plan->train_adapters && !m->lora)
        return badam_fail(err, BADAM_E_INVALID,
                          "gradient plan: trains LoRA adapters, but none are attached");
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

static uint64_t gemm(uint64_t n, uint64_t in, uint64_t out) {
    return 2 * n * in * out;
}

/* The in and out widths of the linear at a weight slot. */
static void slot_dims(const llama_model *m, int slot, uint64_t *in, uint64_t *out) {
    uint64_t C = m->cfg.hidden_size, I = m->cfg.intermediate_size;
    *in = slot == BERT_DOWN ? I : C;
    *out = slot == BERT_UP ? I : C;
}

/* FLOPs of the adapter on (layer l, weight slot): forward, or (backward) as llama_lora_backward
 * runs it given whether dx is wanted. */
static uint64_t adapter_flops(const llama_model *m, const llama_grad_plan *plan, int l, int slot,
                              uint64_t N, int backward, int dx) {
    llama_param_kind kind = m->params[bert_layer_param(m, l, slot)].kind;
    if (llama_adapter_index(m, l, kind) < 0) return 0;
    uint64_t in, out, r = (uint64_t)m->lora->rank;
    slot_dims(m, slot, &in, &out);
    if (!backward) return gemm(N, in, r) + gemm(N, r, out);
    int train = bert_plan_trains_slot(m, plan, l, slot);
    if (!train && !dx) return 0;
    uint64_t f = gemm(N, out, r);
    if (train) f += gemm(N, r, out) + gemm(N, r, in);
    if (dx) f += gemm(N, r, in);
    return f;
}

/* The classification head's GEMM FLOPs (B rows): forward, and under a plan its backward. */
static uint64_t class_head_flops(const llama_model *m, const llama_grad_plan *plan, uint64_t B,
                                 int need_dh) {
    uint64_t C = m->cfg.hidden_size, K = m->cfg.num_labels, f = 2 * B * C * (C + K);
    if (!plan) return f;
    const uint8_t *g = plan->need_grad;
    int dense = bert_head_param(m, BERT_H_DENSE), cls = bert_head_param(m, BERT_H_CLS);
    int need_dense = g[dense] || g[dense + 1];
    if (need_dense || need_dh) f += 2 * B * C * K;
    if (g[cls] || g[cls + 1]) f += 2 * B * C * K;
    if (need_dense) f += 2 * B * C * C;
    if (need_dh) f += 2 * B * C * C;
    return f;
}

/* The masked-LM head's (bert_mlm.c, M masked rows): forward 2 M C (C + V); backward dh = dl E
 * when anything below needs it, E's gradient, dx = dt Wd, and Wd's gradient. */
static uint64_t mlm_head_flops(const llama_model *m, const llama_grad_plan *plan, uint64_t M,
                               int need_dh) {
    uint64_t C = m->cfg.hidden_size, V = m->cfg.vocab_size, f = 2 * M * C * (C + V);
    if (!plan) return f;
    const uint8_t *g = plan->need_grad;
    int d = bert_head_param(m, BERT_M_DENSE), ln = bert_head_param(m, BERT_M_LN);
    int need_d = g[d] || g[d + 1];
    if (need_d || g[ln] || g[ln + 1] || need_dh) f += 2 * M * C * V;
    if (g[BERT_E_WORD]) f += 2 * M * C * V;
    if (need_dh) f += 2 * M * C * C;
    if (need_d && g[d]) f += 2 * M * C * C;
    return f;
}

/* GEMM FLOPs: forward 2 N (4 C^2 + 2 C I) per layer and 2 B C (C + K) in the head; backward the
 * input-gradient GEMMs of the visited layers' parts plan needs, and 2 flops per multiply-add of
 * each weight gradient computed (as bert_backward.c runs them); LoRA adapters as
 * llama_lora_forward / _backward run them. */
uint64_t bert_plan_gemm_flops(const llama_model *m, const llama_grad_plan *plan, int B, int T,
                              int n_rows) {
    const llama_config *c = &m->cfg;
    uint64_t N = (uint64_t)B * T, C = c->hidden_size, I = c->intermediate_size, L = c->n_layers;
    uint64_t f = L * 2 * N * (4 * C * C + 2 * C * I);
    for (int l = 0; l < (int)L; l++)
        for (int s = BERT_Q; s <= BERT_DOWN; s += 2) f += adapter_flops(m, plan, l, s, N, 0, 0);
    int first = plan ? bert_plan_first_layer(m, plan) : (int)L, need_dh = first < (int)L;
    f += c->encoder_head == LLAMA_HEAD_MLM ? mlm_head_flops(m, plan, (uint64_t)n_rows, need_dh)
                                           : class_head_flops(m, plan, (uint64_t)B, need_dh);
    if (!plan) return f;
    const uint8_t *g = plan->need_grad;
    for (int l = first; l < (int)L; l++) {
        int need_dx = l >= plan->lowest_input_grad_layer;
#define FL(s0, s1)                                                                                 \
    (g[bert_layer_param(m, l, s0)] || g[bert_layer_param(m, l, s1)] ||                             \
     bert_plan_trains_slot(m, plan, l, s0))
        int need_ds1 = need_dx || FL(BERT_Q, BERT_Q_B) || FL(BERT_K, BERT_K_B) ||
                       FL(BERT_V, BERT_V_B) || FL(BERT_O, BERT_O_B) || FL(BERT_LN1, BERT_LN1_B);
        int need_inner = need_ds1 || FL(BERT_UP, BERT_UP_B);
        int need_attn =
            need_dx || FL(BERT_Q, BERT_Q_B) || FL(BERT_K, BERT_K_B) || FL(BERT_V, BERT_V_B);
        if (need_inner) f += 2 * N * C * I; /* dg = do Wd */
#define WG(s0) (g[bert_layer_param(m, l, s0)] || g[bert_layer_param(m, l, s0 + 1)])
        if (WG(BERT_DOWN)) f += 2 * N * C * I;
        if (need_ds1) f += 2 * N * C * I; /* du Wi */
        if (WG(BERT_UP)) f += 2 * N * C * I;
        if (need_attn) f += 2 * N * C * C; /* dattn = dt Wo */
        if (WG(BERT_O)) f += 2 * N * C * C;
        if (need_dx) f += 3 * 2 * N * C * C; /* dx from q, k, v */
        for (int s = BERT_Q; s <= BERT_V; s += 2)
            if (WG(s)) f += 2 * N * C * C;
        f += adapter_flops(m, plan, l, BERT_DOWN, N, 1, need_inner) +
             adapter_flops(m, plan, l, BERT_UP, N, 1, need_ds1) +
             adapter_flops(m, plan, l, BERT_O, N, 1, need_attn);
        for (int s = BERT_Q; s <= BERT_V; s += 2) f += adapter_flops(m, plan, l, s, N, 1, need_dx);
#undef FL
#undef WG
    }
    return f;
}
