/* BAdam ratio mode: the reference package's BlockOptimizerRatio (github Ledzy/BAdam,
 * src/badam/block_optim.py). Every trained tensor (all parameters but the embedding and the head,
 * unless --include-embedding / --include-head) is updated on a fraction of its entries:
 *
 *   count_t = floor(numel_t * ratio)                   (the reference's int(numel * ratio))
 *   period p = step / K: the mask of tensor t is the window of count_t positions starting at
 *       offset p * count_t (mod numel_t), taken in the tensor's own order (adjacent) or through a
 *       fixed seeded permutation of its entries (scatter): entry j = pi_t((offset + k) mod numel)
 *   at a period's first step: new masks, and fresh state: m = v = 0, step count 0, fp32 masters
 *       of the masked entries from the current weights
 *   each step: g = gradient on the masked entries; clip by their global norm; AdamW on them
 *
 * State lives only on the masked entries (master, gradient, m, v and the int32 index of each):
 * 18 bytes per updated entry. The dense gradient of a tensor exists only inside backward, in one
 * reusable buffer per shape class (as LOMO's), gathered onto the mask the moment it is finished.
 * Where it differs from the reference on purpose: docs/how-badam-works.md, "Ratio mode".
 *
 * Data parallel: the masks depend on (seed, tensor, period) only, so every rank has the same;
 * what is all-reduced is the masked entries' gradient sums (the pool, 4 bytes per updated entry,
 * not the dense gradients), before the global-norm clip (method_reduce_trainable_grads). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optim/methods/methods.h"

typedef struct ratio {
    int32_t *idx;    /* [pool] mask indices (backend memory) */
    size_t *count;   /* [n_params] entries updated per tensor (0: not trained) */
    size_t *at;      /* [n_params] offset into the pools */
    float *dense[4]; /* layer matrices, layer vectors / final norm, embedding, head */
    int32_t *host;   /* index scratch for one tensor (host) */
    int period;      /* the masks' period, -1 before the first */
    int resumed;     /* load_parts brought state, for period `loaded` */
    int loaded;
} ratio;

static int trained(const llama_model *m, const partition_options *o, int i) {
    model_role r = m->params[i].tag.role;
    if (r == MODEL_ROLE_EMBED) return o->include_embedding;
    if (r == MODEL_ROLE_HEAD) return o->include_head;
    return 1;
}

static size_t count_of(size_t numel, float fraction) {
    return (size_t)((double)numel * (double)fraction);
}

/* Which of the four dense buffers holds tensor i's gradient inside backward. */
static int dense_slot(const llama_model *m, int i) {
    model_role r = m->params[i].tag.role;
    if (r == MODEL_ROLE_EMBED) return 2;
    if (r == MODEL_ROLE_HEAD) return 3;
    return m->params[i].ndim == 2 ? 0 : 1;
}

/* Pool floats, dense buffer floats, trained entries. */
static void ratio_extent(const llama_model *m, const method_options *o, size_t *pool,
                         size_t dense[4], size_t *entries) {
    *pool = *entries = 0;
    memset(dense, 0, 4 * sizeof *dense);
    for (int i = 0; i < m->n_params; i++) {
        if (!trained(m, &o->partition, i)) continue;
        size_t c = count_of(m->params[i].numel, o->update_ratio);
        *pool += pool_floats_of(c), *entries += c;
        size_t *d = &dense[dense_slot(m, i)];
        if (m->params[i].numel > *d) *d = m->params[i].numel;
    }
}

static size_t bytes_of(size_t floats) {
    return floats ? badam_alloc_size(floats * 4) : 0;
}

static badam_status ratio_check(const method_options *o, badam_error *err) {
    if (!(o->update_ratio > 0.0f && o->update_ratio <= 1.0f))
        return badam_fail(err, BADAM_E_INVALID, "--update-ratio must be in (0, 1] (got %g)",
                          o->update_ratio);
    return BADAM_OK;
}

/* Every trained tensor gets at least one entry per mask: a ratio with floor(numel * ratio) == 0
 * for some tensor is refused, naming the smallest tensor and the smallest ratio that serves it
 * (1 / numel, rounded up to a float the floor accepts). */
static badam_status ratio_check_counts(const llama_model *m, const method_options *o,
                                       badam_error *err) {
    int smallest = -1;
    for (int i = 0; i < m->n_params; i++)
        if (trained(m, &o->partition, i) &&
            (smallest < 0 || m->params[i].numel < m->params[smallest].numel))
            smallest = i;
    if (smallest < 0 || count_of(m->params[smallest].numel, o->update_ratio) > 0) return BADAM_OK;
    size_t n = m->params[smallest].numel;
    float least = (float)(1.0 / (double)n);
    while (count_of(n, least) == 0) least = nextafterf(least, 2.0f);
    return badam_fail(err, BADAM_E_INVALID,
                      "--update-ratio %g updates no entry of %s (%zu entries): the smallest "
                      "ratio that updates every trained tensor is %.9g",
                      o->update_ratio, m->params[smallest].name, n, least);
}

static int lowest_first_layer(const llama_model *m, const method_options *o) {
    uint8_t *flags = calloc((size_t)m->n_params, 1);
    if (!flags) return 0;
    for (int i = 0; i < m->n_params; i++) flags[i] = (uint8_t)trained(m, &o->partition, i);
    llama_grad_plan plan;
    llama_plan_for_flags(m, flags, 0, &plan);
    int first = llama_plan_first_layer(m, &plan);
    free(flags);
    return first;
}

static badam_status ratio_sizes(const llama_model *m, const method_options *o, method_sizes *out,
                                badam_error *err) {
    badam_status st = ratio_check_counts(m, o, err);
    if (st) return st;
    size_t pool, dense[4];
    ratio_extent(m, o, &pool, dense, &out->trainable);
    trainable_sizes z = {pool, 1, 1, 1, 0, out->trainable};
    trainable_sizes_bytes(&z, out->bytes); /* fp32 masters, gradients, m, v of the entries */
    out->bytes[BADAM_MEM_OPTIMIZER] += pool ? badam_alloc_size(pool * sizeof(int32_t)) : 0;
    for (int k = 0; k < 4; k++) out->bytes[BADAM_MEM_GRADIENTS] += bytes_of(dense[k]);
    out->first_layer = lowest_first_layer(m, o);
    return BADAM_OK;
}

static badam_status ratio_create(method_state *s, badam_error *err) {
    ratio *r = calloc(1, sizeof *r);
    if (!r) return badam_fail(err, BADAM_E_NOMEM, "badam-ratio: out of memory");
    s->priv = r;
    r->period = -1;
    r->count = calloc((size_t)s->m->n_params, sizeof *r->count);
    r->at = calloc((size_t)s->m->n_params, sizeof *r->at);
    if (!r->count || !r->at) return badam_fail(err, BADAM_E_NOMEM, "badam-ratio: out of memory");
    s->K = s->o.switch_every > 0 ? s->o.switch_every : 100; /* the reference's default */
    return BADAM_OK;
}

/* Every trained tensor in the set: its masked entries' master, gradient, m and v in the pools
 * (the checkpoint's tensors by name); the dense buffer its gradient goes to in backward. */
static badam_status ratio_allocate(method_state *s, badam_error *err) {
    ratio *r = s->priv;
    const llama_model *m = s->m;
    size_t pool, dense[4], entries, largest = 0;
    ratio_extent(m, &s->o, &pool, dense, &entries);
    trainable_sizes z = {pool, 1, 1, 1, 0, entries};
    badam_status st = trainable_alloc(&s->ts, s->be, m->n_params, &z, err);
    if (st) return st;
    if (pool) r->idx = BE(s->be, alloc, BADAM_MEM_OPTIMIZER, pool * sizeof(int32_t));
    int ok = !pool || r->idx;
    for (int k = 0; k < 4; k++) {
        if (dense[k]) r->dense[k] = BE(s->be, alloc, BADAM_MEM_GRADIENTS, dense[k] * 4);
        ok = ok && (!dense[k] || r->dense[k]);
    }
    size_t at = 0;
    for (int i = 0; ok && i < m->n_params; i++) {
        if (!trained(m, &s->o.partition, i)) continue;
        const llama_param *p = &m->params[i];
        size_t c = count_of(p->numel, s->o.update_ratio);
        r->count[i] = c, r->at[i] = at;
        if (c > largest) largest = c;
        trainable t = {p->name,
                       i,
                       c,
                       s->ts.pool_master + at,
                       p->data,
                       s->ts.pool_grad + at,
                       s->ts.pool_m + at,
                       s->ts.pool_v + at,
                       p->ndim == 2,
                       NULL,
                       NULL};
        if (c) ok = !trainable_push(&s->ts, &t);
        s->ts.flags[i] = 1;
        s->ts.grads[i] = r->dense[dense_slot(m, i)];
        at += pool_floats_of(c);
    }
    r->host = malloc((largest ? largest : 1) * sizeof(int32_t));
    if (!ok || !r->host)
        return badam_fail(err, BADAM_E_NOMEM,
                          "optimizer state: cannot allocate %zu parameters' worth of state",
                          entries);
    s->need_grad = s->ts.flags, s->grads = s->ts.grads;
    return BADAM_OK;
}

/* Scatter mode's permutation of [0, n): a 4-round Feistel network on 2h bits (4^h >= n) keyed by
 * the tensor, cycle-walked into [0, n) (a bijection; tests/ref/zo_ratio_ref.py ports it). */
static uint64_t permute(uint64_t x, uint64_t n, uint64_t key) {
    int h = 1;
    while ((1ull << (2 * h)) < n) h++;
    const uint64_t mask = (1ull << h) - 1;
    do {
        for (uint64_t round = 0; round < 4; round++) {
            uint64_t L = x >> h, R = x & mask;
            uint64_t F = backend_mix64(key ^ (round << 32) ^ R) & mask;
            x = (R << h) | (L ^ F);
        }
    } while (x >= n);
    return x;
}

/* The key of tensor `param`'s permutation. */
static uint64_t mask_key(uint64_t seed, int param) {
    return backend_mix64(backend_mix64(seed ^ 0x7261746900000000ull) ^ (uint64_t)param);
}

/* The masks of period p (uploaded into r->idx); fresh state unless keep_state. */
static void ratio_renew(method_state *s, int period, int keep_state) {
    ratio *r = s->priv;
    for (int t = 0; t < s->ts.n; t++) {
        trainable *x = &s->ts.t[t];
        const llama_param *p = &s->m->params[x->param];
        uint64_t n = p->numel, c = x->numel, offset = (uint64_t)period * c % n;
        uint64_t key = mask_key(s->o.seed, x->param);
        for (uint64_t k = 0; k < c; k++) {
            uint64_t j = (offset + k) % n;
            r->host[k] = (int32_t)(s->o.mask_scatter ? permute(j, n, key) : j);
        }
        int32_t *idx = r->idx + r->at[x->param];
        BE(s->be, upload, idx, r->host, c * sizeof(int32_t));
        if (keep_state) continue;
        BE(s->be, gather, x->master, p->data, s->m->dtype, idx, c, 0);
        BE(s->be, zero, x->m, c * sizeof(float));
        BE(s->be, zero, x->v, c * sizeof(float));
    }
    if (!keep_state) s->ts.adam_step = 0;
    r->period = period;
    s->block = period;
}

static int ratio_on_step_begin(method_state *s, int step) {
    ratio *r = s->priv;
    int period = step / s->K;
    if (period != r->period) ratio_renew(s, period, r->resumed && period == r->loaded);
    r->resumed = 0;
    return 0;
}

/* Tensor idx's dense gradient is finished: its masked entries added to the step's gradient, the
 * dense buffer cleared for the next tensor. */
static void ratio_grad_ready(method_state *s, int i, const method_micro_ctx *c) {
    (void)c;
    ratio *r = s->priv;
    float *g = s->grads[i];
    size_t n = r->count[i];
    if (n)
        BE(s->be, gather, s->ts.pool_grad + r->at[i], g, BADAM_DTYPE_F32, r->idx + r->at[i], n, 1);
    BE(s->be, zero, g, sizeof(float) * s->m->params[i].numel);
}

/* All-reduce and clip the masked gradients, AdamW on the masked entries' fp32 masters, and the
 * new values written into the weights at the mask. */
static badam_status ratio_update(method_state *s, const method_update_ctx *c, double *norm,
                                 badam_error *err) {
    ratio *r = s->priv;
    double sum_sq;
    float scale;
    badam_status st = method_reduce_trainable_grads(s, c, &sum_sq, err);
    if (!st) st = method_clip_scale(s, c, sum_sq, norm, &scale, err);
    if (st) return st;
    trainable_set *ts = &s->ts;
    ts->adam_step++;
    const adamw_hparams *h = &s->o.adam;
    for (int t = 0; t < ts->n; t++) {
        trainable *x = &ts->t[t];
        const adamw_step_args a = {c->lr,        scale,    x->decay ? s->o.weight_decay : 0.0f,
                                   h->beta1,     h->beta2, h->eps,
                                   ts->adam_step};
        BE(s->be, adamw_update, x->master, x->m, x->v, x->grad, x->numel, &a, NULL,
           BADAM_DTYPE_F32);
        BE(s->be, scatter, x->weight, s->m->dtype, x->master, r->idx + r->at[x->param], x->numel);
    }
    return BADAM_OK;
}

/* A checkpoint: the saved masters and moments loaded by tensor name; the next step regenerates
 * the masks of its period from (seed, period) and keeps the loaded state when that is the saved
 * period (trainer_state.json's block), else renews it as an uninterrupted run would. */
static badam_status ratio_load_parts(method_state *s, const char *dir, const method_resume *rs,
                                     badam_error *err) {
    ratio *r = s->priv;
    badam_status st = method_load_trainables(s, dir, rs, err);
    if (!st) r->resumed = 1, r->loaded = rs->block;
    return st;
}

static void ratio_describe(const method_state *s, const badam_logger *log) {
    badam_logf(log, BADAM_LOG_INFO,
               "  ratio %g of every trained tensor (%s masks), renewed every %d steps",
               s->o.update_ratio, s->o.mask_scatter ? "scatter" : "adjacent", s->K);
}

static void ratio_free(method_state *s) {
    ratio *r = s->priv;
    if (r) {
        if (r->idx) BE(s->be, free, r->idx);
        for (int k = 0; k < 4; k++)
            if (r->dense[k]) BE(s->be, free, r->dense[k]);
        free(r->count), free(r->at), free(r->host);
    }
    free(r);
    s->priv = NULL;
}

const train_method_ops method_badam_ratio = {
    .name = "badam-ratio",
    .uses = METHOD_USES_RATIO | METHOD_USES_ADAM,
    .data_parallel = 1,
    .default_clip = 1.0f,
    .check = ratio_check,
    .sizes = ratio_sizes,
    .create = ratio_create,
    .allocate = ratio_allocate,
    .on_step_begin = ratio_on_step_begin,
    .zero_grads = method_zero_trainable_grads,
    .grad_ready = ratio_grad_ready,
    .update = ratio_update,
    .save_parts = method_save_trainables,
    .load_parts = ratio_load_parts,
    .describe = ratio_describe,
    .free = ratio_free,
};
