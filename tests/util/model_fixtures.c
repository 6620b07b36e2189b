#include "model_fixtures.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

llama_config fixture_config(int C, int I, int L, int Hq, int Hkv, int V, int tied, int qkv_bias,
                            int o_bias) {
    llama_config c;
    memset(&c, 0, sizeof c);
    strcpy(c.model_type, "llama");
    c.hidden_size = C, c.intermediate_size = I, c.n_layers = L;
    c.n_heads = Hq, c.n_kv_heads = Hkv, c.head_dim = C / Hq, c.vocab_size = V;
    c.max_position_embeddings = 256, c.rms_norm_eps = 1e-5f, c.rope_theta = 10000.0;
    c.tie_word_embeddings = tied, c.qkv_bias = qkv_bias, c.o_bias = o_bias;
    c.bos_token_id = 1, c.n_eos = 1, c.eos_token_ids[0] = 2;
    return c;
}

void fixture_randomize(llama_model *m, test_rng *rng, float scale) {
    for (int i = 0; i < m->n_params; i++) {
        llama_param *p = &m->params[i];
        float *tmp = malloc(sizeof(float) * p->numel);
        int is_norm = p->kind == LLAMA_P_ATTN_NORM || p->kind == LLAMA_P_MLP_NORM ||
                      p->kind == LLAMA_P_FINAL_NORM;
        for (size_t j = 0; j < p->numel; j++)
            tmp[j] = is_norm ? 1.0f + 0.1f * test_rng_normal(rng) : scale * test_rng_normal(rng);
        badam_convert(p->data, m->dtype, tmp, BADAM_DTYPE_F32, p->numel);
        free(tmp);
    }
}

void fixture_batch(test_rng *rng, int B, int T, int V, int pad, int32_t *tokens, int32_t *targets) {
    for (int b = 0; b < B; b++) {
        int len = pad ? T - (b * T) / (2 * B) : T;
        for (int t = 0; t < T; t++) {
            int i = b * T + t;
            tokens[i] = t < len ? (int32_t)(test_rng_u32(rng) % (uint32_t)V) : 0;
            targets[i] = t < len && test_rng_uniform(rng) > 0.25f
                             ? (int32_t)(test_rng_u32(rng) % (uint32_t)V)
                             : -100;
        }
    }
}

float **fixture_grads_alloc(const llama_model *m) {
    size_t n = m->n_params > 0 ? (size_t)m->n_params : 0;
    float **g = calloc(n, sizeof *g);
    for (size_t i = 0; i < n; i++) g[i] = calloc(m->params[i].numel, sizeof(float));
    return g;
}

void fixture_grads_zero(const llama_model *m, float **grads) {
    for (int i = 0; i < m->n_params; i++) memset(grads[i], 0, sizeof(float) * m->params[i].numel);
}

void fixture_grads_free(const llama_model *m, float **grads) {
    for (int i = 0; i < m->n_params; i++) free(grads[i]);
    free(grads);
}

void fixture_grads_view(const llama_model *m, float **grads, const uint8_t *need_grad,
                        float **view) {
    for (int i = 0; i < m->n_params; i++) view[i] = need_grad[i] ? grads[i] : NULL;
}

double fixture_train_step(const llama_model *m, llama_workspace *ws, const llama_batch *batch,
                          const llama_grad_plan *plan, float **grads) {
    badam_error err = {0};
    fixture_grads_zero(m, grads);
    float **view = calloc(m->n_params > 0 ? (size_t)m->n_params : 1, sizeof *view);
    fixture_grads_view(m, grads, plan->need_grad, view);
    int n_tok = 0;
    for (int i = 0; i < batch->B * batch->T; i++) n_tok += batch->targets[i] != -100;
    double loss_sum = NAN;
    int counted = 0;
    badam_status st =
        llama_forward(m, ws, batch, plan, 1.0f / (float)n_tok, view, &loss_sum, &counted, &err);
    if (!st) st = llama_backward(m, ws, batch, plan, view, &err);
    free(view);
    if (st) {
        fprintf(stderr, "train step failed: %s\n", err.message);
        test_failures++;
        return NAN;
    }
    CHECK(counted == n_tok);
    return loss_sum / n_tok;
}
