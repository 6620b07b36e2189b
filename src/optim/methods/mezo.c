/* MeZO (Malladi et al. 2023, "Fine-Tuning Language Models with Just Forward Passes", Algorithm 1
 * with n samples, Algorithm 2 of its appendix): SPSA with the seed trick. For each sample s of a
 * step, with z_s ~ N(0, I) regenerated from the key (seed, step, s, tensor), never stored:
 *
 *   L+ = L(w + eps z_s),  L- = L(w - eps z_s)          (mean token losses of the step's batch)
 *   g_s = (L+ - L-) / (2 eps)                           (the projected gradient)
 *   w <- w (1 - lr wd [s = 0]) - lr (g_s / n) z_s       (matrices decay; norms do not)
 *
 * Exactness: the stored weights are never perturbed. The perturbation goes through the
 * workspace's weight hooks: acquire(layer) hands the model an fp32 copy of that layer only,
 * float(w) + eps z (the backend's gaussian_perturb), so perturb and restore cannot drift by
 * rounding and a step at lr 0 leaves every weight bit-identical, in bf16 as in fp32. Memory: one
 * layer's fp32 copy (the largest layer) and nothing per parameter: no gradients, no state.
 * Trained: every parameter of the layers (projections and norms); the embedding, final norm and
 * head are read outside the hooks and stay frozen.
 *
 * Adapter mode (--method mezo-lora, the LoRA flags): the weights stay frozen and the LoRA
 * adapters' A and B (fp32, read by the model in place) are what MeZO trains. A step keeps a copy
 * of them (backend memory, the adapters' size), sets each to copy + eps z for a forward, and
 * copies them back: exact as well. The key of A / B of the linear with parameter index p is
 * tensor 2p / 2p + 1.
 *
 * Data parallel: each rank runs the forwards on its rows of the step's batch, and forward_loss
 * returns L+ and L- summed over the ranks (the trainer's all-reduce of two doubles per forward),
 * so every rank computes the same g_s and, z being keyed by (seed, step, sample) and never by
 * rank, applies the same update. Nothing else is reduced; no rank holds a gradient. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "badam/model.h"
#include "io/files.h"
#include "optim/methods/methods.h"

typedef struct mezo {
    float *buf;           /* one layer's perturbed fp32 copy, or the adapters' copy (backend) */
    size_t buf_floats;    /* its size */
    int adapters;         /* adapter mode */
    const llama_model *m; /* for the hook */
    backend *be;
    uint64_t key; /* this sample's key */
    float eps;    /* signed: +eps or -eps */
} mezo;

/* The key of sample `sample` of step `step`, and of parameter `param` under it: chained
 * splitmix64 (tests/ref/zo_ratio_ref.py ports both). */
static uint64_t sample_key(uint64_t seed, int step, int sample) {
    uint64_t k = backend_mix64(seed ^ 0x6d657a6f00000000ull);
    k = backend_mix64(k ^ (uint64_t)step);
    return backend_mix64(k ^ (uint64_t)sample);
}
static uint64_t tensor_key(uint64_t key, int param) {
    return backend_mix64(key ^ (uint64_t)param);
}

/* Floats of the largest layer's parameters (each pool-aligned), and the parameters trained. */
static void mezo_extent(const llama_model *m, size_t *floats, size_t *numel) {
    *floats = *numel = 0;
    size_t layer_floats = 0;
    int layer = -1;
    for (int i = 0; i < m->n_params; i++) {
        const llama_param *p = &m->params[i];
        if (p->layer < 0) continue;
        if (p->layer != layer) layer = p->layer, layer_floats = 0;
        layer_floats += pool_floats_of(p->numel);
        if (layer_floats > *floats) *floats = layer_floats;
        *numel += p->numel;
    }
}

static badam_status mezo_check(const method_options *o, badam_error *err) {
    if (o->grad_accum != 1)
        return badam_fail(err, BADAM_E_INVALID,
                          "--method mezo takes one batch per step (use --grad-accum 1)");
    if (o->clip > 0)
        return badam_fail(err, BADAM_E_INVALID,
                          "--method mezo has no gradient to clip (use --clip 0)");
    if (!(o->mezo_eps > 0) || o->mezo_samples < 1)
        return badam_fail(err, BADAM_E_INVALID,
                          "--mezo-eps must be > 0 and --mezo-samples >= 1 (got %g, %d)",
                          o->mezo_eps, o->mezo_samples);
    return BADAM_OK;
}

static badam_status mezo_sizes(const llama_model *m, const method_options *o, method_sizes *out,
                               badam_error *err) {
    (void)o, (void)err;
    size_t floats;
    mezo_extent(m, &floats, &out->trainable);
    if (floats) out->bytes[BADAM_MEM_MASTER] += badam_alloc_size(floats * sizeof(float));
    out->first_layer = m->cfg.n_layers; /* no backward */
    return BADAM_OK;
}

/* Adapter mode: A and B and their (unused) gradients as LoRA has them, and one copy of A and B. */
static badam_status mezo_lora_sizes(const llama_model *m, const method_options *o,
                                    method_sizes *out, badam_error *err) {
    (void)err;
    trainable_sizes z;
    lora_pool(m, o->lora_rank, o->lora_targets, &z);
    size_t adapters = lora_tensor_bytes(m, o->lora_rank, o->lora_targets);
    out->bytes[BADAM_MEM_MASTER] += adapters + (z.pool ? badam_alloc_size(z.pool * 4) : 0);
    out->bytes[BADAM_MEM_GRADIENTS] += adapters;
    out->trainable = z.trainable;
    out->first_layer = m->cfg.n_layers; /* no backward */
    out->adapter_rank = o->lora_rank;
    out->adapter_targets = __builtin_popcount(o->lora_targets);
    return BADAM_OK;
}

static badam_status mezo_lora_check(const method_options *o, badam_error *err) {
    badam_status st = mezo_check(o, err);
    if (!st && o->lora_dropout > 0)
        return badam_fail(err, BADAM_E_INVALID,
                          "--method mezo-lora compares two forwards of the same function: "
                          "use --lora-dropout 0");
    return st;
}

static badam_status mezo_create(method_state *s, badam_error *err) {
    mezo *z = calloc(1, sizeof *z);
    if (!z) return badam_fail(err, BADAM_E_NOMEM, "mezo: out of memory");
    z->m = s->m, z->be = s->be;
    s->priv = z;
    return BADAM_OK;
}

static badam_status mezo_allocate(method_state *s, badam_error *err) {
    mezo *z = s->priv;
    trainable_sizes none;
    memset(&none, 0, sizeof none);
    badam_status st = trainable_alloc(&s->ts, s->be, s->m->n_params, &none, err);
    if (st) return st;
    size_t numel;
    mezo_extent(s->m, &z->buf_floats, &numel);
    z->adapters = s->m->lora != NULL;
    if (z->adapters) {
        trainable_sizes pool;
        lora_pool(s->m, s->m->lora->rank, s->m->lora->targets, &pool);
        z->buf_floats = pool.pool;
    }
    if (z->buf_floats) {
        z->buf = BE(s->be, alloc, BADAM_MEM_MASTER, z->buf_floats * sizeof(float));
        if (!z->buf)
            return badam_fail(err, BADAM_E_NOMEM,
                              "mezo: cannot allocate one layer's copy (%zu "
                              "floats)",
                              z->buf_floats);
    }
    s->need_grad = NULL, s->grads = NULL;
    return BADAM_OK;
}

/* acquire: layer `layer` as float(w) + eps z in the buffer (every parameter of the layer). */
static badam_status mezo_acquire(void *ctx, const llama_model *m, int layer,
                                 model_layer_weights *lw, badam_error *err) {
    mezo *z = ctx;
    badam_status st = model_layer_weights_stored(m, layer, lw, err);
    if (st) return st;
    size_t at = 0;
    for (int i = 0; i < lw->n; i++) {
        int p = lw->first + i;
        size_t n = m->params[p].numel;
        BE(z->be, gaussian_perturb, z->buf + at, lw->data[i], lw->dtype[i], n, z->eps,
           tensor_key(z->key, p));
        lw->data[i] = z->buf + at;
        lw->dtype[i] = BADAM_DTYPE_F32;
        at += pool_floats_of(n);
    }
    return BADAM_OK;
}

static void mezo_release(void *ctx, const llama_model *m, int layer, model_layer_weights *lw) {
    (void)ctx, (void)m, (void)layer, (void)lw;
}
static void mezo_invalidate(void *ctx, const llama_model *m) {
    (void)ctx, (void)m;
}

/* The loss under w + sign eps z_s: the hooks perturb each layer as the forward takes it. */
static badam_status perturbed_loss(mezo *z, const method_step_ctx *c, uint64_t key, float eps,
                                   double *loss_sum, long *tokens, badam_error *err) {
    z->key = key, z->eps = eps;
    return c->forward_loss(c->self, loss_sum, tokens, err);
}

/* Runs body for every adapter tensor: x its values (A or B), n its size, t its tensor number
 * (2p for A, 2p + 1 for B, p the adapted weight's index), at its offset in the copy. */
#define FOR_EACH_ADAPTER_TENSOR(m, body)                                                           \
    do {                                                                                           \
        const llama_lora *lo_ = (m)->lora;                                                         \
        size_t at = 0;                                                                             \
        for (int i_ = 0; i_ < (m)->cfg.n_layers * LLAMA_P_KIND_COUNT; i_++) {                      \
            if (!lo_->A[i_]) continue;                                                             \
            int p_ = llama_param_index(m, i_ / LLAMA_P_KIND_COUNT,                                 \
                                       (llama_param_kind)(i_ % LLAMA_P_KIND_COUNT));               \
            const llama_param *w_ = &(m)->params[p_];                                              \
            for (int b_ = 0; b_ < 2; b_++) {                                                       \
                float *x = b_ ? lo_->B[i_] : lo_->A[i_];                                           \
                size_t n = (size_t)lo_->rank * (size_t)(b_ ? w_->shape[0] : w_->shape[1]);         \
                int t = 2 * p_ + b_;                                                               \
                body;                                                                              \
                at += pool_floats_of(n);                                                           \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* Adapter mode: save (dir 0: the adapters into the copy), set to copy + eps z (dir 1), restore
 * (dir 2). */
static void adapters_op(method_state *s, int dir, uint64_t key, float eps) {
    mezo *z = s->priv;
    FOR_EACH_ADAPTER_TENSOR(s->m, {
        if (dir == 0) BE(s->be, upload, z->buf + at, x, n * sizeof(float));
        if (dir == 1)
            BE(s->be, gaussian_perturb, x, z->buf + at, BADAM_DTYPE_F32, n, eps,
               tensor_key(key, t));
        if (dir == 2) BE(s->be, download, x, z->buf + at, n * sizeof(float));
    });
}

/* The update of every trained tensor for one sample (weight decay on matrices when wd given). */
static void mezo_apply(method_state *s, uint64_t key, float lr, float coef, float wd) {
    const llama_model *m = s->m;
    if (((mezo *)s->priv)->adapters) {
        FOR_EACH_ADAPTER_TENSOR(m, {
            (void)at;
            BE(s->be, gaussian_update_stored, x, BADAM_DTYPE_F32, n, lr, coef, wd,
               tensor_key(key, t));
        });
        return;
    }
    for (int i = 0; i < m->n_params; i++) {
        const llama_param *p = &m->params[i];
        if (p->layer < 0) continue;
        BE(s->be, gaussian_update_stored, p->data, m->dtype, p->numel, lr, coef,
           p->ndim == 2 ? wd : 0.0f, tensor_key(key, i));
    }
}

/* L+ and L- of one sample: the layers perturbed through the hooks, or the adapters in place. */
static badam_status sample_losses(method_state *s, const method_step_ctx *c, uint64_t key,
                                  double *lp, double *lm, long *tokens, badam_error *err) {
    mezo *z = s->priv;
    const float eps = s->o.mezo_eps;
    long tm = 0;
    badam_status st;
    if (z->adapters) {
        adapters_op(s, 1, key, eps);
        st = c->forward_loss(c->self, lp, tokens, err);
        adapters_op(s, 1, key, -eps);
        if (!st) st = c->forward_loss(c->self, lm, &tm, err);
        adapters_op(s, 2, key, 0);
        return st;
    }
    st = perturbed_loss(z, c, key, eps, lp, tokens, err);
    if (!st) st = perturbed_loss(z, c, key, -eps, lm, &tm, err);
    return st;
}

static badam_status mezo_step(method_state *s, const method_step_ctx *c, method_step_result *out,
                              badam_error *err) {
    mezo *z = s->priv;
    const int n = s->o.mezo_samples;
    const float eps = s->o.mezo_eps;
    model_weight_hooks prev = llama_workspace_weight_hooks(c->ws);
    model_weight_hooks h = {mezo_acquire, mezo_release, mezo_invalidate, z};
    if (z->adapters)
        adapters_op(s, 0, 0, 0);
    else
        llama_workspace_set_weight_hooks(c->ws, &h);
    badam_status st = BADAM_OK;
    double sq = 0;
    out->loss_sum = 0, out->tokens = 0;
    double *g = calloc((size_t)n, sizeof *g);
    if (!g) st = badam_fail(err, BADAM_E_NOMEM, "mezo: out of memory");
    for (int k = 0; !st && k < n; k++) {
        double lp = 0, lm = 0;
        long tp = 0;
        st = sample_losses(s, c, sample_key(s->o.seed, c->step, k), &lp, &lm, &tp, err);
        if (st) break;
        double den = tp > 0 ? (double)tp : 1.0;
        g[k] = (lp / den - lm / den) / (2.0 * (double)eps);
        sq += g[k] * g[k];
        if (k == 0) out->loss_sum = 0.5 * (lp + lm), out->tokens = tp;
    }
    if (!z->adapters) llama_workspace_set_weight_hooks(c->ws, &prev);
    if (!st && !isfinite(sq))
        st = badam_fail(err, BADAM_E_NUMERIC,
                        "step %d: the projected gradient is not finite; lower --lr or raise "
                        "--mezo-eps",
                        c->step + 1);
    /* the update, sample by sample, z regenerated; lr 0 writes nothing */
    for (int k = 0; !st && c->lr != 0.0f && k < n; k++)
        mezo_apply(s, sample_key(s->o.seed, c->step, k), c->lr, (float)(g[k] / n),
                   k == 0 ? s->o.weight_decay : 0.0f);
    out->grad_norm = sqrt(sq / (n > 0 ? n : 1));
    free(g);
    return st;
}

static void mezo_describe(const method_state *s, const badam_logger *log) {
    badam_logf(log, BADAM_LOG_INFO, "  MeZO: eps %g, %d sample(s) per step, %s", s->o.mezo_eps,
               s->o.mezo_samples,
               ((const mezo *)s->priv)->adapters ? "LoRA adapters" : "layer parameters");
}

static void mezo_free(method_state *s) {
    mezo *z = s->priv;
    if (z && z->buf) BE(s->be, free, z->buf);
    free(z);
    s->priv = NULL;
}

/* Adapter mode's checkpoint: the adapter folder (as LoRA's, without moments). */
static badam_status mezo_lora_save_parts(const method_state *s, const char *dir,
                                         const char *base_model, badam_error *err) {
    char adapter[4096];
    if (io_path_join(adapter, sizeof adapter, dir, "adapter"))
        return badam_fail(err, BADAM_E_INVALID, "%s: path too long", dir);
    badam_status st = llama_lora_save(s->m, adapter, base_model, err);
    return st ? st : io_sync_dir(adapter, err);
}

static badam_status mezo_lora_load_parts(method_state *s, const char *dir, const method_resume *r,
                                         badam_error *err) {
    (void)r;
    char adapter[4096];
    if (io_path_join(adapter, sizeof adapter, dir, "adapter"))
        return badam_fail(err, BADAM_E_INVALID, "%s: path too long", dir);
    return llama_lora_load(s->m, adapter, err);
}

const train_method_ops method_mezo_lora = {
    .name = "mezo-lora",
    .uses = METHOD_USES_ZO | METHOD_USES_LORA,
    .data_parallel = 1,
    .default_clip = 0.0f,
    .check = mezo_lora_check,
    .prepare_model = lora_prepare_model,
    .sizes = mezo_lora_sizes,
    .create = mezo_create,
    .allocate = mezo_allocate,
    .step = mezo_step,
    .save_parts = mezo_lora_save_parts,
    .load_parts = mezo_lora_load_parts,
    .save_final = lora_save_final,
    .describe = mezo_describe,
    .free = mezo_free,
};

const train_method_ops method_mezo = {
    .name = "mezo",
    .uses = METHOD_USES_ZO,
    .data_parallel = 1,
    .default_clip = 0.0f,
    .check = mezo_check,
    .sizes = mezo_sizes,
    .create = mezo_create,
    .allocate = mezo_allocate,
    .step = mezo_step,
    .describe = mezo_describe,
    .free = mezo_free,
};
