/* Workspace of the Llama forward/backward: activations, gradient temporaries, scratch. */
#include <stdlib.h>
#include <string.h>

#include "base/memory.h"
#include "model/llama_internal.h"

static int max_int(int a, int b) {
    return a > b ? a : b;
}

/* Allocates n floats, adding to ws->bytes; clears *ok on failure. */
static float *ws_floats(llama_workspace *ws, size_t n, int *ok) {
    float *p = badam_alloc_array(n, sizeof(float));
    if (!p)
        *ok = 0;
    else
        ws->bytes += n * sizeof(float);
    return p;
}

static size_t max_rows(const llama_workspace *ws) {
    return (size_t)ws->max_B * ws->max_T;
}

static int layer_acts_alloc(llama_workspace *ws, layer_acts *a) {
    size_t N = max_rows(ws);
    int ok = 1;
    a->rstd1 = ws_floats(ws, N, &ok);
    a->xn1 = ws_floats(ws, N * ws->C, &ok);
    a->q = ws_floats(ws, N * ws->QD, &ok);
    a->k = ws_floats(ws, N * ws->KVD, &ok);
    a->v = ws_floats(ws, N * ws->KVD, &ok);
    a->probs = ws_floats(ws, N * (size_t)ws->Hq * ws->max_T, &ok);
    a->attn = ws_floats(ws, N * ws->QD, &ok);
    a->x_mid = ws_floats(ws, N * ws->C, &ok);
    a->rstd2 = ws_floats(ws, N, &ok);
    a->xn2 = ws_floats(ws, N * ws->C, &ok);
    a->gate = ws_floats(ws, N * ws->I, &ok);
    a->up = ws_floats(ws, N * ws->I, &ok);
    a->h = ws_floats(ws, N * ws->I, &ok);
    return ok;
}

static size_t layer_acts_floats(const llama_workspace *ws) {
    size_t N = max_rows(ws);
    return N * (2 + 3 * (size_t)ws->C + 2 * (size_t)ws->QD + 2 * (size_t)ws->KVD +
                (size_t)ws->Hq * ws->max_T + 3 * (size_t)ws->I);
}

static void layer_acts_release(layer_acts *a) {
    float **fields[] = {&a->rstd1, &a->xn1,   &a->q,   &a->k,    &a->v,  &a->probs, &a->attn,
                        &a->x_mid, &a->rstd2, &a->xn2, &a->gate, &a->up, &a->h};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        badam_free(*fields[i]);
        *fields[i] = NULL;
    }
}

badam_status llama_workspace_create(const llama_model *m, int B, int T, llama_workspace **out,
                                    badam_error *err) {
    *out = NULL;
    const llama_config *c = &m->cfg;
    if (B <= 0 || T <= 0)
        return badam_fail(err, BADAM_E_INVALID, "workspace: batch %d x %d must be positive", B, T);
    llama_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) return badam_fail(err, BADAM_E_NOMEM, "workspace: out of memory");
    ws->max_B = B, ws->max_T = T;
    ws->C = c->hidden_size, ws->I = c->intermediate_size, ws->V = c->vocab_size;
    ws->L = c->n_layers, ws->Hq = c->n_heads, ws->Hkv = c->n_kv_heads, ws->D = c->head_dim;
    ws->QD = c->n_heads * c->head_dim, ws->KVD = c->n_kv_heads * c->head_dim;
    ws->forward_plan_first_layer = -1;
    size_t N = max_rows(ws);
    int ok = 1;
    ws->saved = calloc((size_t)ws->L, sizeof *ws->saved);
    ws->saved_input = calloc((size_t)ws->L, sizeof *ws->saved_input);
    if (!ws->saved || !ws->saved_input) ok = 0;
    ok = ok && layer_acts_alloc(ws, &ws->tmp);
    int wide = max_int(ws->I, ws->QD), max_in = max_int(max_int(ws->C, ws->I), ws->QD);
    int vec = max_int(ws->C, ws->QD);
    for (int i = 0; i < 2; i++) ws->ping[i] = ws_floats(ws, N * ws->C, &ok);
    ws->x_final = ws_floats(ws, N * ws->C, &ok);
    ws->rstd_final = ws_floats(ws, N, &ok);
    ws->xn_final = ws_floats(ws, N * ws->C, &ok);
    ws->dresid = ws_floats(ws, N * ws->C, &ok);
    ws->dxn = ws_floats(ws, N * ws->C, &ok);
    for (int i = 0; i < 3; i++) ws->dbig[i] = ws_floats(ws, N * wide, &ok);
    for (int i = 0; i < 2; i++) ws->dkv[i] = ws_floats(ws, N * ws->KVD, &ok);
    ws->lin_scratch = ws_floats(ws, linear_scratch_floats(max_in), &ok);
    ws->loss_work =
        ws_floats(ws, lm_head_loss_workspace_floats(LLAMA_LOSS_CHUNK, ws->C, ws->V), &ok);
    for (int i = 0; i < 4; i++) ws->vec[i] = ws_floats(ws, (size_t)vec, &ok);
    ws->cos_t = ws_floats(ws, (size_t)T * (ws->D / 2), &ok);
    ws->sin_t = ws_floats(ws, (size_t)T * (ws->D / 2), &ok);
    ws->pos = badam_alloc_array(N, sizeof(int32_t));
    if (!ws->pos) ok = 0;
    ws->bytes += N * sizeof(int32_t);
    if (!ok) {
        size_t want = ws->bytes;
        llama_workspace_free(ws);
        return badam_fail(err, BADAM_E_NOMEM,
                          "workspace: cannot allocate about %zu bytes for "
                          "a %d x %d batch",
                          want, B, T);
    }
    rope_tables(ws->cos_t, ws->sin_t, m->inv_freq, T, ws->D / 2);
    *out = ws;
    return BADAM_OK;
}

static void release_layer_acts(llama_workspace *ws, int l) {
    if (!ws->saved[l]) return;
    ws->bytes -= layer_acts_floats(ws) * sizeof(float);
    layer_acts_release(ws->saved[l]);
    free(ws->saved[l]);
    ws->saved[l] = NULL;
}

static void release_layer(llama_workspace *ws, int l) {
    release_layer_acts(ws, l);
    if (ws->saved_input[l]) {
        ws->bytes -= max_rows(ws) * ws->C * sizeof(float);
        badam_free(ws->saved_input[l]);
        ws->saved_input[l] = NULL;
    }
}

void llama_workspace_free(llama_workspace *ws) {
    if (!ws) return;
    for (int l = 0; ws->saved && ws->saved_input && l < ws->L; l++) release_layer(ws, l);
    free(ws->saved);
    free(ws->saved_input);
    layer_acts_release(&ws->tmp);
    float *bufs[] = {ws->ping[0], ws->ping[1], ws->x_final,     ws->rstd_final, ws->xn_final,
                     ws->dresid,  ws->dxn,     ws->dbig[0],     ws->dbig[1],    ws->dbig[2],
                     ws->dkv[0],  ws->dkv[1],  ws->lin_scratch, ws->loss_work,  ws->vec[0],
                     ws->vec[1],  ws->vec[2],  ws->vec[3],      ws->cos_t,      ws->sin_t};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) badam_free(bufs[i]);
    badam_free(ws->pos);
    free(ws);
}

badam_status llama_workspace_layer(llama_workspace *ws, int l, int keep_acts, layer_acts **acts,
                                   float **input, badam_error *err) {
    if (!ws->saved_input[l]) {
        int ok = 1;
        ws->saved_input[l] = ws_floats(ws, max_rows(ws) * ws->C, &ok);
        if (!ok)
            return badam_fail(err, BADAM_E_NOMEM, "workspace: layer %d input: out of memory", l);
    }
    *input = ws->saved_input[l];
    *acts = &ws->tmp;
    if (!keep_acts) return BADAM_OK;
    if (!ws->saved[l]) {
        layer_acts *a = calloc(1, sizeof *a);
        if (!a || !layer_acts_alloc(ws, a)) {
            if (a) layer_acts_release(a);
            free(a);
            return badam_fail(err, BADAM_E_NOMEM, "workspace: layer %d activations: out of memory",
                              l);
        }
        ws->saved[l] = a;
    }
    *acts = ws->saved[l];
    return BADAM_OK;
}

void llama_workspace_trim(llama_workspace *ws, const llama_model *m, const llama_grad_plan *plan) {
    int first = plan ? llama_plan_first_layer(m, plan) : ws->L;
    for (int l = 0; l < ws->L; l++) {
        if (l < first) {
            release_layer(ws, l);
        } else if (plan->recompute) {
            release_layer_acts(ws, l);
        }
    }
}

size_t llama_workspace_bytes(const llama_workspace *ws) {
    return ws->bytes;
}

llama_counters llama_workspace_counters(const llama_workspace *ws) {
    llama_counters c = {ws->counters.gemm_flops, ws->counters.attention_flops};
    return c;
}

void llama_workspace_reset_counters(llama_workspace *ws) {
    ws->counters.gemm_flops = ws->counters.attention_flops = 0;
}

const float *llama_param_f32(const llama_model *m, llama_workspace *ws, int idx, int slot) {
    if (idx < 0) return NULL;
    const llama_param *p = &m->params[idx];
    if (m->dtype == BADAM_DTYPE_F32) return p->data;
    badam_convert(ws->vec[slot], BADAM_DTYPE_F32, p->data, m->dtype, p->numel);
    return ws->vec[slot];
}
