/* Workspace of the encoder forward / backward: kept activations per layer (allocated when a plan
 * first keeps the layer), the shared layer, gradient temporaries, head buffers and scratch. Sizes
 * come from one table (bert_layout) so that bert_workspace_predict reports what is allocated.
 * Every buffer is backend memory of the workspace's CPU backend. */
#include <stdlib.h>
#include <string.h>

#include "base/memory.h"
#include "model/bert_internal.h"

static size_t max_sz(size_t a, size_t b) {
    return a > b ? a : b;
}

/* Buffer sizes for a B x T batch; with LoRA adapters of rank r (`adapters` per layer), their
 * per-layer inputs u and the shared lora_du [N,r], lora_x [N, max in] and lora_tmp
 * [N, max(in, out)] that llama_lora_backward uses. */
static bert_layout layout_of(const backend_ops *ops, const llama_config *c, badam_dtype dtype,
                             int B, int T, int r, int adapters) {
    bert_layout w;
    memset(&w, 0, sizeof w);
    size_t N = (size_t)B * T, C = c->hidden_size, I = c->intermediate_size;
    size_t K = (size_t)c->num_labels, H = c->n_heads;
    const size_t acts[BERT_ACTS_FIELDS] = {N * C, N * C, N * C, N * C, N * H, N * C, N * C,
                                           N * C, N,     N,     N * I, N * C, N};
    memcpy(w.acts, acts, sizeof acts);
    size_t *s = w.scratch;
    int n = 0;
    for (int i = 0; i < 3; i++) s[n++] = N * C; /* ping[0], ping[1], x_final */
    s[n++] = N * C, s[n++] = N, s[n++] = N;     /* emb_sum, emb_mean, emb_rstd */
    s[n++] = N * C, s[n++] = N * I;             /* tbuf, gbuf */
    for (int i = 0; i < 7; i++) s[n++] = N * C; /* dres, dA, dB, dC, dq, dk, dv */
    s[n++] = N * I;                             /* dg */
    for (int i = 0; i < 6; i++) s[n++] = B * C; /* cls, cls_in, pool, pool_in, dcls, dpool */
    s[n++] = B * K, s[n++] = B * K;             /* logits, dlogits */
    /* the masked-LM head: its decoder is the [V, C] word embedding, its bias [V] */
    size_t mlm = c->encoder_head == LLAMA_HEAD_MLM, V = mlm ? (size_t)c->vocab_size : 0;
    s[n++] = w.lin_scratch = ops->linear_scratch_floats((int)max_sz(max_sz(C, I), V));
    for (int i = 0; i < 4; i++) s[n++] = max_sz(max_sz(max_sz(C, I), K), V); /* vec */
    for (int i = 0; i < 4; i++) s[n++] = N; /* tokens, types, pos, targets (int32) */
    s[n++] = (N + 3) / 4;                   /* mask (bytes) */
    s[n++] = w.layer_f32 = ops->layer_weights_f32(dtype) ? 4 * C * C + 2 * C * I : 0;
    size_t lora = adapters > 0 ? 1 : 0;
    w.lora_rank = lora ? r : 0;
    w.lora_block = lora * (size_t)adapters * N * (size_t)r;
    s[n++] = lora * N * (size_t)r;    /* lora_du */
    s[n++] = lora * N * max_sz(C, I); /* lora_x */
    s[n++] = lora * N * max_sz(C, I); /* lora_tmp */
    size_t R = mlm ? (N < 64 ? N : 64) : 0;
    w.mlm_rows = (int)R;
    for (int i = 0; i < 4; i++) s[n++] = R * C; /* mx, mt, mg, mh */
    s[n++] = R, s[n++] = R;                     /* mmean, mrstd */
    s[n++] = R * V, s[n++] = R * V;             /* mlogits, mdlogits */
    s[n++] = R * C, s[n++] = R * C, s[n++] = R; /* mdh, mdx, mtargets (int32) */
    w.n_scratch = n;                            /* 49 <= the array's 64 (SCRATCH_LIST) */
    return w;
}

static size_t bytes_of(size_t floats) {
    return floats ? badam_alloc_size(floats * 4) : 0;
}

/* mean2 is the one bert_acts field not in the layout's list: it has rstd2's count. */
#define ACTS_LIST(a)                                                                               \
    {                                                                                              \
        &(a)->x, &(a)->q, &(a)->k, &(a)->v, &(a)->lse, &(a)->attn, &(a)->s1, &(a)->h1,             \
            &(a)->mean1, &(a)->rstd1, &(a)->u, &(a)->s2, &(a)->rstd2                               \
    }

llama_workspace_bytes bert_workspace_predict(const llama_config *cfg, badam_dtype dtype, int B,
                                             int T, int lora_rank, int lora_adapters_per_layer,
                                             int bottleneck_size) {
    (void)bottleneck_size; /* bottleneck adapters: not on encoders */
    bert_layout w =
        layout_of(backend_cpu_ops(), cfg, dtype, B, T, lora_rank, lora_adapters_per_layer);
    llama_workspace_bytes b = {0, bytes_of(w.acts[0]), 0};
    for (int i = 1; i < BERT_ACTS_FIELDS; i++) b.activations_per_layer += bytes_of(w.acts[i]);
    b.activations_per_layer += bytes_of(w.acts[BERT_ACTS_FIELDS - 1]); /* mean2 */
    b.activations_per_layer += bytes_of(w.lora_block);
    b.workspace = b.input_per_layer + b.activations_per_layer; /* the shared layer */
    for (int i = 0; i < w.n_scratch; i++) b.workspace += bytes_of(w.scratch[i]);
    return b;
}

static float *ws_floats(bert_workspace *w, badam_mem_category cat, size_t n, int *ok) {
    if (n == 0) return NULL;
    float *p = BE(w->base.be, alloc, cat, n * sizeof(float));
    if (!p)
        *ok = 0;
    else
        w->base.bytes += bytes_of(n);
    return p;
}

static int acts_alloc(bert_workspace *w, bert_acts *a, badam_mem_category cat) {
    int ok = 1;
    float **f[BERT_ACTS_FIELDS] = ACTS_LIST(a);
    for (int i = 0; i < BERT_ACTS_FIELDS; i++) *f[i] = ws_floats(w, cat, w->layout.acts[i], &ok);
    a->mean2 = ws_floats(w, cat, w->layout.acts[BERT_ACTS_FIELDS - 1], &ok);
    a->lora_block = ws_floats(w, cat, w->layout.lora_block, &ok);
    /* one [N,r] slice per adapted kind, in kind order */
    const llama_lora *lo = w->base.model->lora;
    size_t used = 0, each = (size_t)w->base.max_B * w->base.max_T * w->layout.lora_rank;
    for (int k = 0; k < LLAMA_P_KIND_COUNT; k++) {
        a->lora_u[k] = NULL;
        if (a->lora_block && lo && (lo->targets & (1u << k))) {
            a->lora_u[k] = a->lora_block + used;
            used += each;
        }
    }
    return ok;
}

static void acts_release(bert_workspace *w, bert_acts *a) {
    float **f[BERT_ACTS_FIELDS] = ACTS_LIST(a);
    for (int i = 0; i < BERT_ACTS_FIELDS; i++) BE(w->base.be, free, *f[i]), *f[i] = NULL;
    BE(w->base.be, free, a->mean2), a->mean2 = NULL;
    BE(w->base.be, free, a->lora_block), a->lora_block = NULL;
}

#define SCRATCH_LIST(w)                                                                            \
    {                                                                                              \
        &(w)->ping[0], &(w)->ping[1], &(w)->x_final, &(w)->emb_sum, &(w)->emb_mean,                \
            &(w)->emb_rstd, &(w)->tbuf, &(w)->gbuf, &(w)->dres, &(w)->dA, &(w)->dB, &(w)->dC,      \
            &(w)->dq, &(w)->dk, &(w)->dv, &(w)->dg, &(w)->cls, &(w)->cls_in, &(w)->pool,           \
            &(w)->pool_in, &(w)->dcls, &(w)->dpool, &(w)->logits, &(w)->dlogits,                   \
            &(w)->lin_scratch, &(w)->vec[0], &(w)->vec[1], &(w)->vec[2], &(w)->vec[3],             \
            (float **)&(w)->tokens, (float **)&(w)->types, (float **)&(w)->pos,                    \
            (float **)&(w)->targets, (float **)&(w)->mask, &(w)->base.layer_f32,                   \
            &(w)->base.lora_du, &(w)->base.lora_x, &(w)->base.lora_tmp, &(w)->mx, &(w)->mt,        \
            &(w)->mg, &(w)->mh, &(w)->mmean, &(w)->mrstd, &(w)->mlogits, &(w)->mdlogits,           \
            &(w)->mdh, &(w)->mdx, (float **)&(w)->mtargets                                         \
    }

badam_status bert_workspace_create(const llama_model *m, int B, int T, llama_workspace **out,
                                   badam_error *err) {
    *out = NULL;
    const llama_config *c = &m->cfg;
    if (B <= 0 || T <= 0)
        return badam_fail(err, BADAM_E_INVALID, "workspace: batch %d x %d must be positive", B, T);
    bert_workspace *w = calloc(1, sizeof *w);
    if (!w) return badam_fail(err, BADAM_E_NOMEM, "workspace: out of memory");
    badam_status st = backend_cpu_create(&w->base.be, err);
    if (st) {
        free(w);
        return st;
    }
    w->base.owns_be = 1;
    w->base.max_B = B, w->base.max_T = T, w->base.max_pos = T;
    w->base.C = c->hidden_size, w->base.I = c->intermediate_size, w->base.V = c->vocab_size;
    w->base.Hq = w->base.Hkv = c->n_heads, w->base.D = c->head_dim;
    w->base.QD = w->base.KVD = c->hidden_size;
    w->base.layer_f32_of = -1;
    w->base.forward_plan_first_layer = -1;
    w->base.model = m;
    w->base.hooks = llama_workspace_default_hooks(&w->base);
    w->L = c->n_layers, w->C = c->hidden_size, w->I = c->intermediate_size;
    w->H = c->n_heads, w->D = c->head_dim, w->K = c->num_labels;
    w->first = -1;
    for (int k = 0; m->lora && k < LLAMA_P_KIND_COUNT; k++)
        w->base.lora_adapters += (m->lora->targets >> k) & 1u;
    w->base.lora_rank = w->base.lora_adapters ? m->lora->rank : 0;
    w->layout =
        layout_of(w->base.be->ops, c, m->dtype, B, T, w->base.lora_rank, w->base.lora_adapters);
    int ok = 1;
    w->saved = calloc((size_t)w->L, sizeof *w->saved);
    w->saved_input = calloc((size_t)w->L, sizeof *w->saved_input);
    w->host_idx = calloc((size_t)B * T, sizeof(int32_t));
    w->host_mask = calloc((size_t)B * T, 1);
    w->mrows = calloc((size_t)B * T, sizeof(int32_t));
    w->mhost = calloc((size_t)w->layout.mlm_rows + 1, sizeof(int32_t));
    if (!w->saved || !w->saved_input || !w->host_idx || !w->host_mask || !w->mrows || !w->mhost)
        ok = 0;
    ok = ok && acts_alloc(w, &w->tmp, BADAM_MEM_WORKSPACE);
    float **bufs[] = SCRATCH_LIST(w);
    _Static_assert(sizeof bufs / sizeof *bufs <= sizeof w->layout.scratch / sizeof(size_t),
                   "bert_layout.scratch holds every SCRATCH_LIST buffer");
    for (int i = 0; i < w->layout.n_scratch; i++)
        *bufs[i] = ws_floats(w, BADAM_MEM_WORKSPACE, w->layout.scratch[i], &ok);
    if (!ok) {
        size_t want = w->base.bytes;
        bert_workspace_free(&w->base);
        return badam_fail(err, BADAM_E_NOMEM,
                          "workspace: cannot allocate about %zu bytes for a %d x %d batch", want, B,
                          T);
    }
    *out = &w->base;
    return BADAM_OK;
}

void bert_workspace_free(llama_workspace *ws) {
    if (!ws) return;
    bert_workspace *w = bert_ws(ws);
    for (int l = 0; w->saved && l < w->L; l++)
        if (w->saved[l]) acts_release(w, w->saved[l]), free(w->saved[l]);
    for (int l = 0; w->saved_input && l < w->L; l++) BE(ws->be, free, w->saved_input[l]);
    free(w->saved);
    free(w->saved_input);
    acts_release(w, &w->tmp);
    float **bufs[] = SCRATCH_LIST(w);
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) BE(ws->be, free, *bufs[i]);
    free(w->host_idx);
    free(w->host_mask);
    free(w->mrows);
    free(w->mhost);
    if (ws->owns_be) backend_destroy(ws->be);
    free(w);
}

badam_status bert_workspace_layer(bert_workspace *w, int l, bert_acts **a, badam_error *err) {
    if (!w->saved[l]) {
        bert_acts *n = calloc(1, sizeof *n);
        if (!n || !acts_alloc(w, n, BADAM_MEM_ACTIVATIONS)) {
            if (n) acts_release(w, n);
            free(n);
            return badam_fail(err, BADAM_E_NOMEM, "workspace: layer %d activations: out of memory",
                              l);
        }
        w->saved[l] = n;
    }
    *a = w->saved[l];
    return BADAM_OK;
}

badam_status bert_workspace_input(bert_workspace *w, int l, float **x, badam_error *err) {
    if (w->saved[l]) { /* a recomputing plan keeps no activations */
        for (int i = 0; i < BERT_ACTS_FIELDS; i++) w->base.bytes -= bytes_of(w->layout.acts[i]);
        w->base.bytes -= bytes_of(w->layout.acts[BERT_ACTS_FIELDS - 1]);
        w->base.bytes -= bytes_of(w->layout.lora_block);
        acts_release(w, w->saved[l]);
        free(w->saved[l]);
        w->saved[l] = NULL;
    }
    if (!w->saved_input[l]) {
        int ok = 1;
        w->saved_input[l] = ws_floats(w, BADAM_MEM_ACTIVATIONS, w->layout.acts[0], &ok);
        if (!ok)
            return badam_fail(err, BADAM_E_NOMEM, "workspace: layer %d input: out of memory", l);
    }
    *x = w->saved_input[l];
    return BADAM_OK;
}

void bert_workspace_set_dropout(llama_workspace *ws, int training, uint64_t seed, uint64_t step) {
    bert_workspace *w = bert_ws(ws);
    w->training = training, w->seed = seed, w->step = step;
}

double bert_drop_rate(const bert_workspace *w, const llama_model *m, int site) {
    if (!w->training) return 0.0;
    const llama_config *c = &m->cfg;
    switch (site) {
    case BERT_DROP_ATTN_PROBS:
        return c->attention_dropout;
    case BERT_DROP_HEAD_IN:
    case BERT_DROP_HEAD_MID:
        /* RobertaForMultipleChoice's dropout is hidden_dropout_prob (no classifier_dropout) */
        return c->num_labels == 1 && !strcmp(c->model_type, "roberta") ? c->hidden_dropout
                                                                       : c->classifier_dropout;
    default:
        return c->hidden_dropout;
    }
}

uint64_t bert_drop_key(const bert_workspace *w, int layer, int site) {
    uint64_t k = backend_mix64(w->seed ^ 0x62657274ull); /* "bert" */
    k = backend_mix64(k ^ w->step);
    return backend_mix64(k ^ ((uint64_t)(layer + 1) << 8 | (uint64_t)site));
}

const float *bert_dropout(bert_workspace *w, const llama_model *m, int layer, int site, float *y,
                          const float *x, size_t n) {
    double p = bert_drop_rate(w, m, site);
    if (p <= 0.0) return x;
    /* masks keyed by the global row (data parallel: this rank's rows start at first_row) */
    size_t first = w->base.B > 0 ? (size_t)w->base.first_row * (n / (size_t)w->base.B) : 0;
    BE(w->base.be, dropout, y, x, n, bert_drop_key(w, layer, site), first, p, 0);
    return y;
}

const void *bert_matrix(const llama_model *m, const model_layer_weights *lw, int idx,
                        badam_dtype *dtype) {
    if (lw && idx >= lw->first && idx < lw->first + lw->n) {
        *dtype = lw->dtype[idx - lw->first];
        return lw->data[idx - lw->first];
    }
    *dtype = m->dtype;
    return m->params[idx].data;
}

const float *bert_small(bert_workspace *w, const llama_model *m, const model_layer_weights *lw,
                        int idx, int slot) {
    badam_dtype dt;
    const void *data = bert_matrix(m, lw, idx, &dt);
    if (dt == BADAM_DTYPE_F32) return data;
    BE(w->base.be, convert, w->vec[slot], BADAM_DTYPE_F32, data, dt, m->params[idx].numel);
    return w->vec[slot];
}
