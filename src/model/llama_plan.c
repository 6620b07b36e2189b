/* The gradient plan: which parameters get gradients and how far down backward goes. */
#include <string.h>

#include "model/llama_internal.h"

int llama_plan_flag(const llama_model *m, const llama_grad_plan *plan, int idx) {
    (void)m;
    return idx >= 0 && plan && plan->need_grad[idx];
}

int llama_adapter_index(const llama_model *m, int l, llama_param_kind kind) {
    if (!m->lora || !(m->lora->targets & (1u << kind))) return -1;
    return l * LLAMA_P_KIND_COUNT + (int)kind;
}

int llama_plan_trains_adapter(const llama_model *m, const llama_grad_plan *plan, int l,
                              llama_param_kind kind) {
    return plan && plan->train_adapters && llama_adapter_index(m, l, kind) >= 0;
}

int llama_plan_kind_active(const llama_model *m, const llama_grad_plan *plan, int l,
                           llama_param_kind kind) {
    return llama_plan_flag(m, plan, llama_param_index(m, l, kind)) ||
           llama_plan_trains_adapter(m, plan, l, kind);
}

int llama_plan_layer_flags(const llama_model *m, const llama_grad_plan *plan, int l,
                           llama_param_kind first, llama_param_kind last) {
    for (int k = first; k <= (int)last; k++)
        if (llama_plan_kind_active(m, plan, l, (llama_param_kind)k)) return 1;
    return 0;
}

int llama_plan_trains_bottleneck(const llama_model *m, const llama_grad_plan *plan) {
    return plan && plan->train_adapters && m->bottleneck;
}

static int layer_flagged(const llama_model *m, const llama_grad_plan *plan, int l) {
    return llama_plan_trains_bottleneck(m, plan) ||
           llama_plan_layer_flags(m, plan, l, LLAMA_P_ATTN_NORM, LLAMA_P_DOWN);
}

void llama_plan_fill(const llama_model *m, const uint8_t *need_grad, int train_adapters,
                     int embed_flagged, llama_layer_flagged_fn flagged, llama_grad_plan *plan) {
    memset(plan, 0, sizeof *plan);
    plan->need_grad = need_grad;
    plan->train_adapters = train_adapters;
    int L = m->cfg.n_layers;
    plan->lowest_input_grad_layer = L;
    if (embed_flagged) {
        plan->lowest_input_grad_layer = 0;
        return;
    }
    for (int l = 0; l < L; l++)
        if (flagged(m, plan, l)) {
            plan->lowest_input_grad_layer = l + 1;
            return;
        }
}

int llama_plan_first_flagged(const llama_model *m, const llama_grad_plan *plan,
                             llama_layer_flagged_fn flagged) {
    int low = plan->lowest_input_grad_layer;
    if (low > 0 && flagged(m, plan, low - 1)) return low - 1;
    return low;
}

badam_status llama_plan_check_range(const llama_model *m, const llama_grad_plan *plan,
                                    badam_error *err) {
    int L = m->cfg.n_layers, low = plan->lowest_input_grad_layer;
    if (low < 0 || low > L)
        return badam_fail(err, BADAM_E_INVALID,
                          "gradient plan: lowest_input_grad_layer %d is outside [0, %d]", low, L);
    return BADAM_OK;
}

badam_status llama_plan_check_buffers(const llama_model *m, const llama_grad_plan *plan,
                                      float **grads, badam_error *err) {
    for (int i = 0; i < m->n_params; i++)
        if (!plan->need_grad[i] != !(grads && grads[i]))
            return badam_fail(err, BADAM_E_INVALID,
                              "gradient plan: '%s' is %sflagged but its gradient buffer is %s",
                              m->params[i].name, plan->need_grad[i] ? "" : "not ",
                              grads && grads[i] ? "given" : "missing");
    return BADAM_OK;
}

void llama_plan_for_flags(const llama_model *m, const uint8_t *need_grad, int train_adapters,
                          llama_grad_plan *plan) {
    llama_plan_fill(m, need_grad, train_adapters, need_grad[m->embed], layer_flagged, plan);
}

int llama_plan_first_layer(const llama_model *m, const llama_grad_plan *plan) {
    return llama_plan_first_flagged(m, plan, layer_flagged);
}

badam_status llama_plan_check(const llama_model *m, const llama_grad_plan *plan, badam_error *err) {
    int low = plan->lowest_input_grad_layer;
    badam_status st = llama_plan_check_range(m, plan, err);
    if (st) return st;
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
    for (int l = 0; l < low - 1; l++)
        if (layer_flagged(m, plan, l))
            return badam_fail(err, BADAM_E_INVALID,
                              "gradient plan: layer %d has adapters to train but "
                              "backward stops at layer %d (lowest_input_grad_layer %d)",
                              l, low - 1, low);
    if (plan->train_adapters && (!m->lora || !m->lora->dA) && !m->bottleneck)
        return badam_fail(err, BADAM_E_INVALID,
                          "gradient plan: train_adapters is set but the model has no adapters");
    return BADAM_OK;
}

layer_grad_parts llama_layer_grad_parts(const llama_model *m, const llama_grad_plan *plan, int l) {
    layer_grad_parts g;
    g.need_dx = l >= plan->lowest_input_grad_layer;
    /* the adapter after the attention takes its gradient at x_mid */
    g.need_dxmid = g.need_dx || llama_plan_trains_bottleneck(m, plan) ||
                   llama_plan_layer_flags(m, plan, l, LLAMA_P_ATTN_NORM, LLAMA_P_O_BIAS);
    g.need_dxn2 = g.need_dxmid || llama_plan_kind_active(m, plan, l, LLAMA_P_MLP_NORM);
    g.mlp_inner = g.need_dxn2 || llama_plan_layer_flags(m, plan, l, LLAMA_P_GATE, LLAMA_P_UP);
    g.attn_inner = g.need_dx || llama_plan_layer_flags(m, plan, l, LLAMA_P_ATTN_NORM, LLAMA_P_V) ||
                   llama_plan_layer_flags(m, plan, l, LLAMA_P_Q_BIAS, LLAMA_P_V_BIAS);
    return g;
}
