/* Workspace of the Llama forward/backward: activations, gradient temporaries, scratch. Sizes come
 * from one table (ws_layout) so that llama_workspace_predict reports exactly what is allocated.
 * Every buffer is backend memory (ws->be's alloc, by category); the workspace owns its backend
 * (a CPU backend made by llama_workspace_create) unless one was given (llama_workspace_create_on).
 * Predictions, made before any backend exists, take the CPU backend's scratch sizes. */
#include <stdlib.h>
#include <string.h>

#include "base/memory.h"
#include "model/llama_internal.h"

static size_t max_sz(size_t a, size_t b) {
    return a > b ? a : b;
}

/* Elements of one layer's seven projection matrices (the fp32 layer copy of the default weight
 * hook, llama_workspace_default_hooks). */
static size_t layer_matrix_numel(const llama_config *c) {
    size_t C = (size_t)c->hidden_size, I = (size_t)c->intermediate_size;
    size_t QD = (size_t)c->n_heads * c->head_dim, KVD = (size_t)c->n_kv_heads * c->head_dim;
    return 2 * QD * C + 2 * KVD * C + 3 * I * C;
}

static ws_layout layout_of(const backend_ops *ops, const llama_config *c, badam_dtype dtype, int B,
                           int T, int lora_rank, int adapters, int bottleneck) {
    ws_layout w;
    memset(&w, 0, sizeof w);
    w.N = (size_t)B * T, w.C = c->hidden_size, w.I = c->intermediate_size, w.V = c->vocab_size;
    w.QD = (size_t)c->n_heads * c->head_dim, w.KVD = (size_t)c->n_kv_heads * c->head_dim;
    w.Hq = c->n_heads, w.T = T, w.half = c->head_dim / 2;
    w.r = lora_rank, w.adapters = adapters, w.bn = bottleneck > 0 ? (size_t)bottleneck : 0;
    size_t N = w.N;
    const size_t acts[15] = {N,
                             N * w.C,
                             N * w.QD,
                             N * w.KVD,
                             N * w.KVD,
                             N * w.Hq,
                             N * w.QD,
                             N * w.C,
                             N,
                             N * w.C,
                             N * w.I,
                             N * w.I,
                             N * w.I,
                             N * w.r * w.adapters,
                             w.bn ? 2 * N * (w.C + w.bn) : 0};
    memcpy(w.acts, acts, sizeof acts);
    w.input = N * w.C;
    size_t wide = max_sz(max_sz(w.I, w.QD), w.C), max_in = max_sz(max_sz(w.C, w.I), w.QD);
    size_t vec = max_sz(w.C, w.QD), max_out = max_sz(max_in, w.KVD);
    size_t *s = w.scratch;
    int n = 0;
    s[n++] = N * w.C;                               /* ping[0] */
    s[n++] = N * w.C;                               /* ping[1] */
    s[n++] = N * w.C;                               /* x_final */
    s[n++] = N;                                     /* rstd_final */
    s[n++] = N * w.C;                               /* xn_final */
    s[n++] = N * w.C;                               /* dresid */
    s[n++] = N * w.C;                               /* dxn */
    for (int i = 0; i < 3; i++) s[n++] = N * wide;  /* dbig (also rebuilt xn1, xn2, h) */
    for (int i = 0; i < 2; i++) s[n++] = N * w.KVD; /* dkv */
    s[n++] = w.lin_scratch = ops->linear_scratch_floats((int)max_in);
    s[n++] = ops->lm_head_loss_workspace_floats(llama_loss_chunk(w.V), (int)w.C, (int)w.V);
    for (int i = 0; i < 4; i++) s[n++] = vec; /* vec */
    s[n++] = (size_t)T * w.half;              /* cos_t */
    s[n++] = (size_t)T * w.half;              /* sin_t */
    s[n++] = N;                               /* pos (int32) */
    s[n++] = adapters ? N * w.r : 0;          /* lora_du */
    s[n++] = adapters ? N * max_in : 0;       /* lora_x */
    s[n++] = adapters ? N * max_out : 0;      /* lora_tmp */
    s[n++] = N;                               /* tokens (int32) */
    s[n++] = N;                               /* targets (int32) */
    s[n++] = N;                               /* seg (int32) */
    s[n++] = w.layer_f32 = ops->layer_weights_f32(dtype) ? layer_matrix_numel(c) : 0;
    s[n++] = N * w.bn;           /* bn_dh */
    s[n++] = w.bn ? N * w.C : 0; /* bn_dy */
    w.n_scratch = n;
    return w;
}

static size_t bytes_of(size_t floats) {
    return floats ? badam_alloc_size(floats * 4) : 0;
}

llama_workspace_bytes llama_workspace_predict(const llama_config *cfg, badam_dtype dtype, int B,
                                              int T, int lora_rank, int lora_adapters_per_layer) {
    return llama_workspace_predict_adapters(cfg, dtype, B, T, lora_rank, lora_adapters_per_layer,
                                            0);
}

llama_workspace_bytes llama_workspace_predict_adapters(const llama_config *cfg, badam_dtype dtype,
                                                       int B, int T, int lora_rank,
                                                       int lora_adapters_per_layer,
                                                       int bottleneck_size) {
    ws_layout w = layout_of(backend_cpu_ops(), cfg, dtype, B, T, lora_rank, lora_adapters_per_layer,
                            bottleneck_size);
    llama_workspace_bytes b = {0, bytes_of(w.input), 0};
    for (int i = 0; i < 15; i++) {
        b.workspace += bytes_of(w.acts[i]); /* the shared layer (ws->tmp) */
        if (!LAYER_ACTS_SHARED(i)) b.activations_per_layer += bytes_of(w.acts[i]);
    }
    for (int i = 0; i < w.n_scratch; i++) b.workspace += bytes_of(w.scratch[i]);
    return b;
}

/* Allocates n floats in `cat` (NULL for n == 0), adding to ws->bytes; clears *ok on failure. */
static float *ws_floats(llama_workspace *ws, badam_mem_category cat, size_t n, int *ok) {
    if (n == 0) return NULL;
    float *p = n > SIZE_MAX / sizeof(float) ? NULL : BE(ws->be, alloc, cat, n * sizeof(float));
    if (!p)
        *ok = 0;
    else
        ws->bytes += bytes_of(n);
    return p;
}

static int adapted(const llama_model *m, int kind) {
    return m->lora && (m->lora->targets & (1u << kind));
}

#define LAYER_ACTS_FIELDS(a)                                                                       \
    {                                                                                              \
        &(a)->rstd1, &(a)->xn1, &(a)->q, &(a)->k, &(a)->v, &(a)->lse, &(a)->attn, &(a)->x_mid,     \
            &(a)->rstd2, &(a)->xn2, &(a)->gate, &(a)->up, &(a)->h, &(a)->lora_block,               \
            &(a)->bottleneck_block                                                                 \
    }

/* Allocates a layer's activations; with `shared` (a saved layer), the LAYER_ACTS_SHARED fields
 * point at shared's instead. */
static int layer_acts_alloc(llama_workspace *ws, const ws_layout *w, layer_acts *a,
                            badam_mem_category cat, layer_acts *shared) {
    int ok = 1;
    float **fields[15] = LAYER_ACTS_FIELDS(a);
    float **common[15] = LAYER_ACTS_FIELDS(shared ? shared : a);
    for (int i = 0; i < 15; i++)
        *fields[i] =
            shared && LAYER_ACTS_SHARED(i) ? *common[i] : ws_floats(ws, cat, w->acts[i], &ok);
    return ok;
}

static void layer_acts_point_lora(const llama_model *m, const ws_layout *w, layer_acts *a) {
    size_t used = 0;
    for (int site = 0; site < 2; site++)
        a->bottleneck[site] =
            a->bottleneck_block ? a->bottleneck_block + site * w->N * (w->C + w->bn) : NULL;
    for (int k = 0; k < LLAMA_P_KIND_COUNT; k++) {
        a->lora_u[k] = NULL;
        if (adapted(m, k) && a->lora_block) {
            a->lora_u[k] = a->lora_block + used;
            used += w->N * w->r;
        }
    }
}

/* Frees a layer's activations (with `saved`, not the fields it shares with ws->tmp). */
static void layer_acts_release(llama_workspace *ws, layer_acts *a, int saved) {
    float **fields[15] = LAYER_ACTS_FIELDS(a);
    for (int i = 0; i < 15; i++) {
        if (!(saved && LAYER_ACTS_SHARED(i))) BE(ws->be, free, *fields[i]);
        *fields[i] = NULL;
    }
}

static int count_adapters(const llama_model *m) {
    int n = 0;
    for (int k = 0; k < LLAMA_P_KIND_COUNT; k++) n += adapted(m, k);
    return n;
}

badam_status llama_workspace_create(const llama_model *m, int B, int T, llama_workspace **out,
                                    badam_error *err) {
    *out = NULL;
    backend *be = NULL;
    badam_status st = backend_cpu_create(&be, err);
    if (!st) st = llama_workspace_create_on(m, B, T, be, out, err);
    if (st) {
        backend_destroy(be);
        return st;
    }
    (*out)->owns_be = 1;
    return BADAM_OK;
}

badam_status llama_workspace_create_on(const llama_model *m, int B, int T, backend *be,
                                       llama_workspace **out, badam_error *err) {
    *out = NULL;
    const llama_config *c = &m->cfg;
    if (B <= 0 || T <= 0)
        return badam_fail(err, BADAM_E_INVALID, "workspace: batch %d x %d must be positive", B, T);
    llama_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) return badam_fail(err, BADAM_E_NOMEM, "workspace: out of memory");
    ws->be = be;
    ws->max_B = B, ws->max_T = T;
    ws->C = c->hidden_size, ws->I = c->intermediate_size, ws->V = c->vocab_size;
    ws->L = c->n_layers, ws->Hq = c->n_heads, ws->Hkv = c->n_kv_heads, ws->D = c->head_dim;
    ws->QD = c->n_heads * c->head_dim, ws->KVD = c->n_kv_heads * c->head_dim;
    ws->max_pos = T;
    ws->forward_plan_first_layer = -1;
    ws->lora_adapters = count_adapters(m);
    ws->lora_rank = ws->lora_adapters ? m->lora->rank : 0;
    ws->layout = layout_of(be->ops, c, m->dtype, B, T, ws->lora_rank, ws->lora_adapters,
                           m->bottleneck ? m->bottleneck->size : 0);
    ws->layer_f32_of = -1;
    ws->hooks = llama_workspace_default_hooks(ws);
    ws->model = m;
    const ws_layout *w = &ws->layout;
    int ok = 1;
    ws->saved = calloc((size_t)ws->L, sizeof *ws->saved);
    ws->saved_input = calloc((size_t)ws->L, sizeof *ws->saved_input);
    ws->host_pos = calloc((size_t)B * T, sizeof(int32_t));
    if (!ws->saved || !ws->saved_input || !ws->host_pos) ok = 0;
    ok = ok && layer_acts_alloc(ws, w, &ws->tmp, BADAM_MEM_WORKSPACE, NULL);
    layer_acts_point_lora(m, w, &ws->tmp);
    float **bufs[] = {&ws->ping[0],
                      &ws->ping[1],
                      &ws->x_final,
                      &ws->rstd_final,
                      &ws->xn_final,
                      &ws->dresid,
                      &ws->dxn,
                      &ws->dbig[0],
                      &ws->dbig[1],
                      &ws->dbig[2],
                      &ws->dkv[0],
                      &ws->dkv[1],
                      &ws->lin_scratch,
                      &ws->loss_work,
                      &ws->vec[0],
                      &ws->vec[1],
                      &ws->vec[2],
                      &ws->vec[3],
                      &ws->cos_t,
                      &ws->sin_t,
                      (float **)&ws->pos,
                      &ws->lora_du,
                      &ws->lora_x,
                      &ws->lora_tmp,
                      (float **)&ws->tokens,
                      (float **)&ws->targets,
                      (float **)&ws->seg,
                      &ws->layer_f32,
                      &ws->bn_dh,
                      &ws->bn_dy};
    for (int i = 0; i < w->n_scratch; i++)
        *bufs[i] = ws_floats(ws, BADAM_MEM_WORKSPACE, w->scratch[i], &ok);
    if (!ok) {
        size_t want = ws->bytes;
        llama_workspace_free(ws);
        return badam_fail(err, BADAM_E_NOMEM,
                          "workspace: cannot allocate about %zu bytes for a %d x %d batch", want, B,
                          T);
    }
    BE(be, rope_tables, ws->cos_t, ws->sin_t, m->inv_freq, T, ws->D / 2);
    *out = ws;
    return BADAM_OK;
}

static void release_layer_acts(llama_workspace *ws, int l) {
    if (!ws->saved[l]) return;
    for (int i = 0; i < 15; i++)
        if (!LAYER_ACTS_SHARED(i)) ws->bytes -= bytes_of(ws->layout.acts[i]);
    layer_acts_release(ws, ws->saved[l], 1);
    free(ws->saved[l]);
    ws->saved[l] = NULL;
}

static void release_layer(llama_workspace *ws, int l) {
    release_layer_acts(ws, l);
    if (ws->saved_input[l]) {
        ws->bytes -= bytes_of(ws->layout.input);
        BE(ws->be, free, ws->saved_input[l]);
        ws->saved_input[l] = NULL;
    }
}

void llama_workspace_free(llama_workspace *ws) {
    if (!ws) return;
    for (int l = 0; ws->saved && ws->saved_input && l < ws->L; l++) release_layer(ws, l);
    free(ws->saved);
    free(ws->saved_input);
    layer_acts_release(ws, &ws->tmp, 0);
    float *bufs[] = {ws->ping[0],
                     ws->ping[1],
                     ws->x_final,
                     ws->rstd_final,
                     ws->xn_final,
                     ws->dresid,
                     ws->dxn,
                     ws->dbig[0],
                     ws->dbig[1],
                     ws->dbig[2],
                     ws->dkv[0],
                     ws->dkv[1],
                     ws->lin_scratch,
                     ws->loss_work,
                     ws->vec[0],
                     ws->vec[1],
                     ws->vec[2],
                     ws->vec[3],
                     ws->cos_t,
                     ws->sin_t,
                     (float *)ws->pos,
                     ws->lora_du,
                     ws->lora_x,
                     ws->lora_tmp,
                     (float *)ws->tokens,
                     (float *)ws->targets,
                     (float *)ws->seg,
                     ws->layer_f32,
                     ws->bn_dh,
                     ws->bn_dy};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) BE(ws->be, free, bufs[i]);
    free(ws->host_pos);
    if (ws->owns_be) backend_destroy(ws->be);
    free(ws);
}

badam_status llama_workspace_layer(llama_workspace *ws, int l, int keep_acts, layer_acts **acts,
                                   float **input, badam_error *err) {
    int ok = 1;
    if (!ws->saved_input[l]) {
        ws->saved_input[l] = ws_floats(ws, BADAM_MEM_ACTIVATIONS, ws->layout.input, &ok);
        if (!ok)
            return badam_fail(err, BADAM_E_NOMEM, "workspace: layer %d input: out of memory", l);
    }
    *input = ws->saved_input[l];
    *acts = &ws->tmp;
    if (!keep_acts) return BADAM_OK;
    if (!ws->saved[l]) {
        layer_acts *a = calloc(1, sizeof *a);
        if (!a || !layer_acts_alloc(ws, &ws->layout, a, BADAM_MEM_ACTIVATIONS, &ws->tmp)) {
            if (a) layer_acts_release(ws, a, 1);
            free(a);
            return badam_fail(err, BADAM_E_NOMEM, "workspace: layer %d activations: out of memory",
                              l);
        }
        layer_acts_point_lora(ws->model, &ws->layout, a);
        ws->saved[l] = a;
    }
    *acts = ws->saved[l];
    return BADAM_OK;
}

void llama_workspace_trim(llama_workspace *ws, const llama_model *m, const llama_grad_plan *plan) {
    int first = plan ? llama_plan_first_layer(m, plan) : ws->L;
    for (int l = 0; l < ws->L; l++) {
        if (l < first)
            release_layer(ws, l);
        else if (plan->recompute)
            release_layer_acts(ws, l);
    }
}

size_t llama_plan_activation_bytes(const llama_model *m, const llama_grad_plan *plan, int B,
                                   int T) {
    int adapters = count_adapters(m);
    llama_workspace_bytes b =
        llama_workspace_predict_adapters(&m->cfg, m->dtype, B, T, adapters ? m->lora->rank : 0,
                                         adapters, m->bottleneck ? m->bottleneck->size : 0);
    size_t kept = (size_t)(m->cfg.n_layers - llama_plan_first_layer(m, plan));
    return kept * (b.input_per_layer + (plan->recompute ? 0 : b.activations_per_layer));
}

size_t llama_workspace_bytes_held(const llama_workspace *ws) {
    return ws->bytes;
}

llama_counters llama_workspace_counters(const llama_workspace *ws) {
    llama_counters c = {ws->be->counters.gemm_flops, ws->be->counters.attention_flops};
    return c;
}

void llama_workspace_reset_counters(llama_workspace *ws) {
    ws->be->counters.gemm_flops = ws->be->counters.attention_flops = 0;
}

badam_status model_layer_weights_stored(const llama_model *m, int layer, model_layer_weights *lw,
                                        badam_error *err) {
    lw->layer = layer, lw->first = -1, lw->n = 0;
    for (int i = 0; i < m->n_params; i++) {
        if (m->params[i].layer != layer) continue;
        if (lw->first < 0) lw->first = i;
        if (i - lw->first >= MODEL_LAYER_MAX_PARAMS || i - lw->first != lw->n)
            return badam_fail(err, BADAM_E_INVALID,
                              "weights of layer %d: more than %d parameters, or not contiguous in "
                              "the parameter table ('%s')",
                              layer, MODEL_LAYER_MAX_PARAMS, m->params[i].name);
        lw->data[lw->n] = m->params[i].data;
        lw->dtype[lw->n] = m->dtype;
        lw->n++;
    }
    if (lw->first < 0) return badam_fail(err, BADAM_E_INVALID, "model has no layer %d", layer);
    return BADAM_OK;
}

badam_status llama_acquire_layer(const model_weight_hooks *hooks, const llama_model *m, int l,
                                 model_layer_weights *lw, badam_error *err) {
    badam_status st = hooks->acquire(hooks->ctx, m, l, lw, err);
    if (st) return st;
    if (lw->layer != l || lw->n <= 0 || lw->n > MODEL_LAYER_MAX_PARAMS || lw->first < 0 ||
        lw->first + lw->n > m->n_params || m->params[lw->first].layer != l)
        return badam_fail(err, BADAM_E_INVALID,
                          "weight hook: acquire(layer %d) filled no valid table of that layer", l);
    return BADAM_OK;
}

/* The default hook's acquire: the stored weights, with the 2-D parameters (the projection
 * matrices) as one fp32 copy in ws->layer_f32 when the backend asks for it (converted once per
 * layer until invalidated). */
static badam_status ws_acquire(void *ctx, const llama_model *m, int layer, model_layer_weights *lw,
                               badam_error *err) {
    llama_workspace *ws = ctx;
    badam_status st = model_layer_weights_stored(m, layer, lw, err);
    if (st || !ws->layer_f32) return st;
    size_t at = 0;
    for (int i = 0; i < lw->n; i++) {
        const llama_param *p = &m->params[lw->first + i];
        if (p->ndim != 2) continue;
        if (ws->layer_f32_of != layer)
            BE(ws->be, convert, ws->layer_f32 + at, BADAM_DTYPE_F32, p->data, m->dtype, p->numel);
        lw->data[i] = ws->layer_f32 + at;
        lw->dtype[i] = BADAM_DTYPE_F32;
        at += p->numel;
    }
    ws->layer_f32_of = layer;
    return BADAM_OK;
}

static void ws_invalidate(void *ctx, const llama_model *m) {
    (void)m;
    ((llama_workspace *)ctx)->layer_f32_of = -1;
}

model_weight_hooks llama_workspace_default_hooks(llama_workspace *ws) {
    model_weight_hooks h = {ws_acquire, NULL, ws_invalidate, ws};
    return h;
}

model_weight_hooks llama_workspace_weight_hooks(const llama_workspace *ws) {
    return ws->hooks;
}

void llama_workspace_set_weight_hooks(llama_workspace *ws, const model_weight_hooks *hooks) {
    ws->hooks = hooks ? *hooks : llama_workspace_default_hooks(ws);
}

const float *llama_lw_small(const llama_model *m, backend *be, float *const vec[2],
                            const model_layer_weights *lw, llama_param_kind kind, int slot) {
    int idx = llama_param_index(m, lw->layer, kind);
    if (idx < 0) return NULL;
    const void *data = lw->data[idx - lw->first];
    badam_dtype dt = lw->dtype[idx - lw->first];
    if (dt == BADAM_DTYPE_F32) return data;
    BE(be, convert, vec[slot], BADAM_DTYPE_F32, data, dt, m->params[idx].numel);
    return vec[slot];
}

const float *llama_param_f32(const llama_model *m, llama_workspace *ws, int idx, int slot) {
    if (idx < 0) return NULL;
    const llama_param *p = &m->params[idx];
    if (m->dtype == BADAM_DTYPE_F32) return p->data;
    BE(ws->be, convert, ws->vec[slot], BADAM_DTYPE_F32, p->data, m->dtype, p->numel);
    return ws->vec[slot];
}
