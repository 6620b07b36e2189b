/* Analytic GEMM FLOP count of forward + backward under a plan; mirrors llama_backward's choices
 * so tests can check that skipped work is really skipped. */
#include "model/llama_internal.h"

static uint64_t gemm(uint64_t n, uint64_t in, uint64_t out) {
    return 2 * n * in * out;
}

typedef struct dims {
    uint64_t N, C, I, QD, KVD, r, s; /* s: bottleneck width, 0 without */
} dims;

static uint64_t adapter_forward(const llama_model *m, int l, llama_param_kind kind, dims d,
                                uint64_t in, uint64_t out) {
    return llama_adapter_index(m, l, kind) >= 0 ? gemm(d.N, in, d.r) + gemm(d.N, d.r, out) : 0;
}

static uint64_t layer_forward_flops(const llama_model *m, int l, dims d) {
    uint64_t f = gemm(d.N, d.C, d.QD) + 2 * gemm(d.N, d.C, d.KVD) + gemm(d.N, d.QD, d.C) +
                 2 * gemm(d.N, d.C, d.I) + gemm(d.N, d.I, d.C);
    f += adapter_forward(m, l, LLAMA_P_Q, d, d.C, d.QD) +
         adapter_forward(m, l, LLAMA_P_K, d, d.C, d.KVD) +
         adapter_forward(m, l, LLAMA_P_V, d, d.C, d.KVD) +
         adapter_forward(m, l, LLAMA_P_O, d, d.QD, d.C) +
         adapter_forward(m, l, LLAMA_P_GATE, d, d.C, d.I) +
         adapter_forward(m, l, LLAMA_P_UP, d, d.C, d.I) +
         adapter_forward(m, l, LLAMA_P_DOWN, d, d.I, d.C);
    return f + 2 * (gemm(d.N, d.C, d.s) + gemm(d.N, d.s, d.C)); /* bottleneck adapters */
}

/* Mirrors linear_back in llama_backward.c. */
static uint64_t linear_back_flops(const llama_model *m, const llama_grad_plan *plan, int l,
                                  llama_param_kind kind, dims d, uint64_t in, uint64_t out,
                                  int dx) {
    uint64_t f = dx ? gemm(d.N, in, out) : 0;
    int train = llama_plan_trains_adapter(m, plan, l, kind);
    if (llama_adapter_index(m, l, kind) >= 0 && (train || dx)) {
        f += gemm(d.N, out, d.r);
        if (train) f += gemm(d.N, d.r, out) + gemm(d.N, d.r, in);
        if (dx) f += gemm(d.N, d.r, in);
    }
    if (llama_plan_flag(m, plan, llama_param_index(m, l, kind))) f += gemm(d.N, in, out);
    return f;
}

static uint64_t layer_backward_flops(const llama_model *m, const llama_grad_plan *plan, int l,
                                     dims d) {
    layer_grad_parts g = llama_layer_grad_parts(m, plan, l);
    /* each bottleneck adapter: dh = dz U and dy = dz + dp D; dU, dD when trained */
    uint64_t bn = 2 * gemm(d.N, d.C, d.s) * (llama_plan_trains_bottleneck(m, plan) ? 2 : 1);
    uint64_t f = 2 * bn + linear_back_flops(m, plan, l, LLAMA_P_DOWN, d, d.I, d.C, g.mlp_inner);
    if (g.mlp_inner)
        f += linear_back_flops(m, plan, l, LLAMA_P_GATE, d, d.C, d.I, g.need_dxn2) +
             linear_back_flops(m, plan, l, LLAMA_P_UP, d, d.C, d.I, g.need_dxn2);
    f += linear_back_flops(m, plan, l, LLAMA_P_O, d, d.QD, d.C, g.attn_inner);
    if (!g.attn_inner) return f;
    int dxn1 = g.need_dx || llama_plan_kind_active(m, plan, l, LLAMA_P_ATTN_NORM);
    f += linear_back_flops(m, plan, l, LLAMA_P_Q, d, d.C, d.QD, dxn1) +
         linear_back_flops(m, plan, l, LLAMA_P_K, d, d.C, d.KVD, dxn1) +
         linear_back_flops(m, plan, l, LLAMA_P_V, d, d.C, d.KVD, dxn1);
    return f;
}

uint64_t llama_plan_gemm_flops(const llama_model *m, const llama_grad_plan *plan, int B, int T,
                               int n_tokens) {
    const llama_config *c = &m->cfg;
    dims d = {(uint64_t)B * T,
              (uint64_t)c->hidden_size,
              (uint64_t)c->intermediate_size,
              (uint64_t)c->n_heads * c->head_dim,
              (uint64_t)c->n_kv_heads * c->head_dim,
              m->lora ? (uint64_t)m->lora->rank : 0,
              m->bottleneck ? (uint64_t)m->bottleneck->size : 0};
    int L = c->n_layers;
    uint64_t head = gemm((uint64_t)n_tokens, c->hidden_size, c->vocab_size), f = head;
    for (int l = 0; l < L; l++) f += layer_forward_flops(m, l, d);
    if (!plan) return f;
    int first = llama_plan_first_layer(m, plan);
    if (first < L || llama_plan_flag(m, plan, m->final_norm)) f += head;
    if (llama_plan_flag(m, plan, m->lm_head)) f += head;
    for (int l = L - 1; l >= first; l--) {
        if (plan->recompute) f += layer_forward_flops(m, l, d);
        f += layer_backward_flops(m, plan, l, d);
    }
    return f;
}
