/* Analytic GEMM FLOP count of forward + backward under a plan; mirrors llama_backward's choices
 * so tests can check that skipped work is really skipped. */
#include "model/llama_internal.h"

static uint64_t gemm(uint64_t n, uint64_t in, uint64_t out) {
    return 2 * n * in * out;
}

static uint64_t layer_forward_flops(const llama_config *c, uint64_t N) {
    uint64_t C = c->hidden_size, I = c->intermediate_size;
    uint64_t QD = (uint64_t)c->n_heads * c->head_dim, KVD = (uint64_t)c->n_kv_heads * c->head_dim;
    return gemm(N, C, QD) + 2 * gemm(N, C, KVD) + gemm(N, QD, C) + 2 * gemm(N, C, I) +
           gemm(N, I, C);
}

static uint64_t layer_backward_flops(const llama_model *m, const llama_grad_plan *plan, int l,
                                     uint64_t N) {
    const llama_config *c = &m->cfg;
    uint64_t C = c->hidden_size, I = c->intermediate_size;
    uint64_t QD = (uint64_t)c->n_heads * c->head_dim, KVD = (uint64_t)c->n_kv_heads * c->head_dim;
    layer_grad_parts g = llama_layer_grad_parts(m, plan, l);
#define F(kind) (uint64_t) llama_plan_flag(m, plan, llama_param_index(m, l, kind))
    uint64_t f = F(LLAMA_P_DOWN) * gemm(N, I, C);
    if (g.mlp_inner) f += gemm(N, I, C) + (F(LLAMA_P_GATE) + F(LLAMA_P_UP)) * gemm(N, C, I);
    if (g.need_dxn2) f += 2 * gemm(N, C, I);
    f += F(LLAMA_P_O) * gemm(N, QD, C);
    if (!g.attn_inner) return f;
    f += gemm(N, QD, C);
    f += F(LLAMA_P_Q) * gemm(N, C, QD) + (F(LLAMA_P_K) + F(LLAMA_P_V)) * gemm(N, C, KVD);
    if (g.need_dx || F(LLAMA_P_ATTN_NORM)) f += gemm(N, C, QD) + 2 * gemm(N, C, KVD);
    return f;
#undef F
}

uint64_t llama_plan_gemm_flops(const llama_model *m, const llama_grad_plan *plan, int B, int T,
                               int n_tokens) {
    const llama_config *c = &m->cfg;
    uint64_t N = (uint64_t)B * T, L = c->n_layers;
    uint64_t head = gemm((uint64_t)n_tokens, c->hidden_size, c->vocab_size);
    uint64_t f = L * layer_forward_flops(c, N) + head;
    if (!plan) return f;
    int first = llama_plan_first_layer(m, plan);
    if (first < (int)L || llama_plan_flag(m, plan, m->final_norm)) f += head;
    if (llama_plan_flag(m, plan, m->lm_head)) f += head;
    for (int l = (int)L - 1; l >= first; l--) {
        if (plan->recompute) f += layer_forward_flops(c, N);
        f += layer_backward_flops(m, plan, l, N);
    }
    return f;
}
