/* The gradient plan: which parameters get gradients and how far down backward goes. */
#include "model/llama_internal.h"

int llama_plan_flag(const llama_model *m, const llama_grad_plan *plan, int idx) {
    (void)m;
    return idx >= 0 && plan && plan->need_grad[idx];
}

int llama_plan_layer_flags(const llama_model *m, const llama_grad_plan *plan, int l,
                           llama_param_kind first, llama_param_kind last) {
    for (int k = first; k <= (int)last; k++)
        if (llama_plan_flag(m, plan, llama_param_index(m, l, (llama_param_kind)k))) return 1;
    return 0;
}

static int layer_flagged(const llama_model *m, const llama_grad_plan *plan, int l) {
    return llama_plan_layer_flags(m, plan, l, LLAMA_P_ATTN_NORM, LLAMA_P_DOWN);
}

void llama_plan_for_flags(const llama_model *m, const uint8_t *need_grad, llama_grad_plan *plan) {
    plan->need_grad = need_grad;
    plan->recompute = 0;
    int L = m->cfg.n_layers;
    plan->lowest_input_grad_layer = L;
    if (need_grad[m->embed]) {
        plan->lowest_input_grad_layer = 0;
        return;
    }
    for (int l = 0; l < L; l++)
        if (layer_flagged(m, plan, l)) {
            plan->lowest_input_grad_layer = l + 1;
            return;
        }
}

int llama_plan_first_layer(const llama_model *m, const llama_grad_plan *plan) {
    int low = plan->lowest_input_grad_layer;
    if (low > 0 && layer_flagged(m, plan, low - 1)) return low - 1;
    return low;
}

badam_status llama_plan_check(const llama_model *m, const llama_grad_plan *plan, badam_error *err) {
    int L = m->cfg.n_layers, low = plan->lowest_input_grad_layer;
    if (low < 0 || low > L)
        return badam_fail(err, BADAM_E_INVALID,
                          "gradient plan: lowest_input_grad_layer %d is "
                          "outside [0, %d]",
                          low, L);
    if (plan->need_grad[m->embed] && low != 0)
        return badam_fail(err, BADAM_E_INVALID,
                          "gradient plan: '%s' needs a gradient, so lowest_input_grad_layer must "
                          "be 0 (it is %d)",
                          m->params[m->embed].name, low);
    for (int i = 0; i < m->n_params; i++) {
        int l = m->params[i].layer;
        if (plan->need_grad[i] && l >= 0 && l < low - 1)
            return badam_fail(err, BADAM_E_INVALID,
                              "gradient plan: '%s' needs a gradient but backward stops at layer "
                              "%d (lowest_input_grad_layer %d)",
                              m->params[i].name, low - 1, low);
    }
    return BADAM_OK;
}

layer_grad_parts llama_layer_grad_parts(const llama_model *m, const llama_grad_plan *plan, int l) {
    layer_grad_parts g;
    int flag_norm2 = llama_plan_flag(m, plan, llama_param_index(m, l, LLAMA_P_MLP_NORM));
    int flag_gate_up = llama_plan_layer_flags(m, plan, l, LLAMA_P_GATE, LLAMA_P_UP);
    g.need_dx = l >= plan->lowest_input_grad_layer;
    g.need_dxmid =
        g.need_dx || llama_plan_layer_flags(m, plan, l, LLAMA_P_ATTN_NORM, LLAMA_P_O_BIAS);
    g.need_dxn2 = g.need_dxmid || flag_norm2;
    g.mlp_inner = g.need_dxn2 || flag_gate_up;
    g.attn_inner = g.need_dx || llama_plan_layer_flags(m, plan, l, LLAMA_P_ATTN_NORM, LLAMA_P_V) ||
                   llama_plan_layer_flags(m, plan, l, LLAMA_P_Q_BIAS, LLAMA_P_V_BIAS);
    return g;
}
