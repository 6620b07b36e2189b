/* GaLore (Zhao et al. 2024, "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank
 * Projection"; the authors' galore_torch/galore_projector.py, 'std' projection): every 2-D
 * weight of the decoder layers is trained by Adam in a rank-r projection of its gradient; the
 * other parameters (embedding, head, norms) by plain AdamW (adam.c's update).
 *
 * For a layer matrix W [rows, cols] with gradient sum G, at its step t (from 1), k = min(r, rows,
 * cols), s = 1 / tokens times the clip coefficient:
 *   every T steps (t - 1 = 0, T, 2T, ...): P = galore_projector(G)  (model/cpu/ops.h: Vh[:k, :]
 *                                           when rows >= cols, else U[:, :k]; signs fixed)
 *   R = G P^T (rows >= cols) or P^T G                      the projected gradient
 *   Z = -(m_hat / (sqrt(v_hat) + eps)) by torch.optim.AdamW's moments on g = s R (adamw_update on
 *       a zeroed Z with lr 1, no decay); the moments are kept across projector refreshes, as the
 *       authors' code does
 *   D = alpha (Z P or P Z)                                  mapped back, scaled by alpha
 *   W = W (1 - lr wd) + lr D                               (sgd_update with grad_scale -1)
 * Where it differs from the authors' AdamW (transformers-style): eps is added to sqrt(v_hat), not
 * sqrt(v), and decoupled decay comes before the update, as in torch.optim.AdamW and the rest of
 * badam.
 *
 * --galore-per-layer: each weight is updated the moment its gradient is complete (grad_ready),
 * so the layer matrices share one gradient buffer (no full gradient is stored); like LOMO it
 * cannot accumulate gradients or clip by the global norm.
 *
 * Data parallel: G is the gradient sum all-reduced over the ranks, whole, before the projection.
 * Reducing R instead would be exact only in exact arithmetic (the projection is linear), and not
 * at all where the whole reduced G is needed: the SVD of a refresh step and the global norm the
 * clip and the metrics take. At each refresh rank 0's P is broadcast (galore_refresh).
 * --galore-per-layer all-reduces each gradient inside backward before its update, as LOMO. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/memory.h"
#include "optim/methods/galore_internal.h"

static int projected(const llama_model *m, int i) {
    return m->params[i].layer >= 0 && m->params[i].ndim == 2;
}

static int min_i(int a, int b) {
    return a < b ? a : b;
}

/* The shape facts of parameter i: rank k, numel of R and of P. */
static void proj_shape(const llama_param *p, int rank, int *k, size_t *low, size_t *pn) {
    int rows = (int)p->shape[0], cols = (int)p->shape[1];
    *k = min_i(rank, min_i(rows, cols));
    *low = (size_t)*k * (size_t)(rows >= cols ? rows : cols);
    *pn = (size_t)*k * (size_t)(rows >= cols ? cols : rows);
}

/* What the method allocates, for the plan and the allocator alike. */
typedef struct galore_sizes {
    trainable_sizes plain; /* plain AdamW: masters, gradients, moments */
    size_t proj_pool;      /* projected masters / gradients (pool floats) */
    size_t low_pool, p_pool, max_low, max_svd, max_numel;
} galore_sizes;

static void galore_layout(const llama_model *m, const method_options *o, const backend_ops *ops,
                          galore_sizes *z) {
    memset(z, 0, sizeof *z);
    for (int i = 0; i < m->n_params; i++) {
        const llama_param *p = &m->params[i];
        z->plain.trainable += p->numel;
        if (!projected(m, i)) {
            z->plain.pool += pool_floats_of(p->numel);
            continue;
        }
        int k;
        size_t low, pn;
        proj_shape(p, o->galore_rank, &k, &low, &pn);
        z->proj_pool += pool_floats_of(p->numel);
        z->low_pool += pool_floats_of(low), z->p_pool += pool_floats_of(pn);
        if (low > z->max_low) z->max_low = low;
        if (p->numel > z->max_numel) z->max_numel = p->numel;
        size_t svd = ops->galore_projector_scratch_floats((int)p->shape[0], (int)p->shape[1]);
        if (svd > z->max_svd) z->max_svd = svd;
    }
    trainable_sizes_masters(&z->plain, m->dtype);
    z->plain.has_grad = 1, z->plain.has_moments = 1;
}

static size_t floats_bytes(size_t floats) {
    return floats ? badam_alloc_size(floats * 4) : 0;
}

static badam_status galore_check(const method_options *o, badam_error *err) {
    if (o->galore_rank < 1 || o->galore_update_gap < 1)
        return badam_fail(err, BADAM_E_INVALID,
                          "--galore-rank and --galore-update-gap must be >= 1 (got %d, %d)",
                          o->galore_rank, o->galore_update_gap);
    if (!(o->galore_scale > 0))
        return badam_fail(err, BADAM_E_INVALID, "--galore-scale must be > 0 (got %g)",
                          o->galore_scale);
    if (o->galore_per_layer && o->grad_accum != 1)
        return badam_fail(err, BADAM_E_INVALID,
                          "--galore-per-layer updates inside backward and cannot accumulate "
                          "gradients (use --grad-accum 1)");
    if (o->galore_per_layer && o->clip > 0)
        return badam_fail(err, BADAM_E_INVALID,
                          "--galore-per-layer updates inside backward and cannot clip by "
                          "the global gradient norm (use --clip 0)");
    return BADAM_OK;
}

static badam_status galore_sizes_of(const llama_model *m, const method_options *o,
                                    method_sizes *out, badam_error *err) {
    badam_status st = galore_check(o, err);
    if (st) return st;
    galore_sizes z;
    galore_layout(m, o, backend_cpu_ops(), &z);
    trainable_sizes_bytes(&z.plain, out->bytes);
    trainable_sizes proj = {z.proj_pool, z.plain.has_master,   !o->galore_per_layer,
                            0,           z.plain.master_split, 0};
    trainable_sizes_bytes(&proj, out->bytes);
    if (o->galore_per_layer) out->bytes[BADAM_MEM_GRADIENTS] += floats_bytes(z.max_numel);
    out->bytes[BADAM_MEM_OPTIMIZER] += 2 * floats_bytes(z.low_pool) + floats_bytes(z.p_pool) +
                                       2 * floats_bytes(z.max_low) + floats_bytes(z.max_svd);
    out->trainable = z.plain.trainable;
    return BADAM_OK;
}

static badam_status galore_create(method_state *s, badam_error *err) {
    if (s->o.galore_per_layer) s->clip = 0; /* the default clip cannot apply inside backward */
    s->priv = calloc(1, sizeof(galore));
    return s->priv ? BADAM_OK : badam_fail(err, BADAM_E_NOMEM, "galore: out of memory");
}

static float *falloc(backend *be, badam_mem_category cat, size_t floats, int *ok) {
    if (!floats) return NULL;
    float *p = BE(be, alloc, cat, floats * sizeof(float));
    if (!p) *ok = 0;
    return p;
}

/* Projected parameter i at pool offsets *at (masters, gradients) and *lo, *pp (m v, P). */
static void place_proj(method_state *s, galore *g, int i, size_t *at, size_t *lo, size_t *pp) {
    const llama_param *p = &s->m->params[i];
    gproj *x = &g->p[g->n];
    g->proj_of[i] = g->n++;
    x->param = i, x->rows = (int)p->shape[0], x->cols = (int)p->shape[1];
    size_t pn;
    proj_shape(p, s->o.galore_rank, &x->k, &x->low, &pn);
    x->P = g->pool_P + *pp, x->m = g->pool_m + *lo, x->v = g->pool_v + *lo;
    *pp += pool_floats_of(pn), *lo += pool_floats_of(x->low);
    if (g->pool_lo) {
        x->master_lo = g->pool_lo + *at; /* zero: the master equals the weight */
    } else if (g->pool_master) {
        x->master = g->pool_master + *at;
        BE(s->be, convert, x->master, BADAM_DTYPE_F32, p->data, s->m->dtype, p->numel);
    } else {
        x->master = p->data;
    }
    x->grad = s->o.galore_per_layer ? g->pool_grad : g->pool_grad + *at; /* shared, or its own */
    *at += pool_floats_of(p->numel);
}

static badam_status galore_alloc_pools(method_state *s, galore *g, const galore_sizes *z,
                                       badam_error *err) {
    backend *be = s->be;
    int ok = 1, per_layer = s->o.galore_per_layer;
    if (z->plain.has_master && z->plain.master_split) {
        if (z->proj_pool) {
            g->pool_lo = BE(be, alloc, BADAM_MEM_MASTER, z->proj_pool * sizeof(uint16_t));
            ok = g->pool_lo != NULL;
        }
    } else if (z->plain.has_master) {
        g->pool_master = falloc(be, BADAM_MEM_MASTER, z->proj_pool, &ok);
    }
    g->pool_grad = falloc(be, BADAM_MEM_GRADIENTS, per_layer ? z->max_numel : z->proj_pool, &ok);
    g->pool_m = falloc(be, BADAM_MEM_OPTIMIZER, z->low_pool, &ok);
    g->pool_v = falloc(be, BADAM_MEM_OPTIMIZER, z->low_pool, &ok);
    g->pool_P = falloc(be, BADAM_MEM_OPTIMIZER, z->p_pool, &ok);
    g->R = falloc(be, BADAM_MEM_OPTIMIZER, z->max_low, &ok);
    g->Z = falloc(be, BADAM_MEM_OPTIMIZER, z->max_low, &ok);
    g->svd = falloc(be, BADAM_MEM_OPTIMIZER, z->max_svd, &ok);
    g->p = calloc((size_t)s->m->n_params, sizeof *g->p);
    g->plain_of = malloc(sizeof(int) * (size_t)s->m->n_params);
    g->proj_of = malloc(sizeof(int) * (size_t)s->m->n_params);
    if (ok && g->p && g->plain_of && g->proj_of) return BADAM_OK;
    return badam_fail(err, BADAM_E_NOMEM,
                      "optimizer state: cannot allocate GaLore's state for %zu parameters",
                      z->plain.trainable);
}

static badam_status galore_allocate(method_state *s, badam_error *err) {
    galore *g = s->priv;
    const llama_model *m = s->m;
    galore_sizes z;
    galore_layout(m, &s->o, s->be->ops, &z);
    badam_status st = trainable_alloc(&s->ts, s->be, m->n_params, &z.plain, err);
    if (!st) st = galore_alloc_pools(s, g, &z, err);
    if (st) return st;
    size_t at = 0, pat = 0, lo = 0, pp = 0;
    for (int i = 0; i < m->n_params; i++) {
        g->plain_of[i] = g->proj_of[i] = -1;
        if (projected(m, i)) {
            place_proj(s, g, i, &pat, &lo, &pp);
            s->ts.flags[i] = 1, s->ts.grads[i] = g->p[g->proj_of[i]].grad;
            continue;
        }
        g->plain_of[i] = s->ts.n;
        if (trainable_place(&s->ts, m, i, &at))
            return badam_fail(err, BADAM_E_NOMEM, "optimizer state: out of memory");
    }
    s->need_grad = s->ts.flags, s->grads = s->ts.grads;
    return BADAM_OK;
}

static void galore_zero_grads(method_state *s) {
    galore *g = s->priv;
    method_zero_trainable_grads(s);
    if (!s->o.galore_per_layer)
        for (int j = 0; j < g->n; j++)
            BE(s->be, zero, g->p[j].grad, sizeof(float) * s->m->params[g->p[j].param].numel);
}

/* A projector refresh: P from the SVD of the (all-reduced, so on every rank the same) gradient
 * sum G. Data parallel: rank 0's P is broadcast, so every rank projects with the same bits even
 * where LAPACK's result could depend on the rank's thread count (k min(rows, cols) floats per
 * matrix every T steps, beside the rows cols floats of its gradient all-reduce every step). */
static badam_status galore_refresh(method_state *s, gproj *x, const badam_comm *comm,
                                   badam_error *err) {
    galore *g = s->priv;
    const llama_param *p = &s->m->params[x->param];
    int rc = BE(s->be, galore_projector, x->P, x->grad, x->rows, x->cols, x->k, g->svd);
    if (rc)
        return badam_fail(err, BADAM_E_NUMERIC,
                          "galore: the SVD of %s's gradient did not converge (LAPACK info %d)",
                          p->name, rc);
    if (badam_comm_size(comm) <= 1) return BADAM_OK;
    size_t n = (size_t)x->k * (size_t)(x->rows >= x->cols ? x->cols : x->rows);
    float *host = malloc(n * sizeof *host);
    if (!host) return badam_fail(err, BADAM_E_NOMEM, "galore: out of memory (%zu floats)", n);
    BE(s->be, download, host, x->P, n * sizeof *host);
    badam_status st = badam_comm_broadcast(comm, host, n * sizeof *host, 0, err);
    if (!st) BE(s->be, upload, x->P, host, n * sizeof *host);
    free(host);
    return st ? badam_error_prefix(err, "galore: broadcasting the projector of %s", p->name)
              : BADAM_OK;
}

/* The GaLore update of one matrix from its gradient sum x->grad (all-reduced; overwritten with
 * D), at Adam step t with gradient factor scale (see the file's header). */
static badam_status galore_step(method_state *s, gproj *x, int t, float lr, float scale,
                                const badam_comm *comm, badam_error *err) {
    galore *g = s->priv;
    backend *be = s->be;
    llama_param *p = &s->m->params[x->param];
    const int tall = x->rows >= x->cols, rows = x->rows, cols = x->cols, k = x->k;
    float *G = x->grad;
    if ((t - 1) % s->o.galore_update_gap == 0) {
        badam_status st = galore_refresh(s, x, comm, err);
        if (st) return st;
    }
    if (tall) /* R [rows, k] = G P^T */
        BE(be, gemm_f32, 0, 1, rows, k, cols, 1.0f, G, cols, x->P, cols, 0.0f, g->R, k);
    else /* R [k, cols] = P^T G */
        BE(be, gemm_f32, 1, 0, k, cols, rows, 1.0f, x->P, k, G, cols, 0.0f, g->R, cols);
    BE(be, zero, g->Z, sizeof(float) * x->low);
    const adamw_step_args a = {1.0f,          scale, 0.0f, s->o.adam.beta1, s->o.adam.beta2,
                               s->o.adam.eps, t};
    BE(be, adamw_update, g->Z, x->m, x->v, g->R, x->low, &a, NULL, BADAM_DTYPE_F32);
    const float alpha = s->o.galore_scale;
    if (tall) /* D = alpha Z [rows, k] P [k, cols] */
        BE(be, gemm_f32, 0, 0, rows, cols, k, alpha, g->Z, k, x->P, cols, 0.0f, G, cols);
    else /* D = alpha P [rows, k] Z [k, cols] */
        BE(be, gemm_f32, 0, 0, rows, cols, k, alpha, x->P, k, g->Z, cols, 0.0f, G, cols);
    const float wd = s->o.weight_decay;
    if (x->master_lo)
        BE(be, sgd_update_split, p->data, x->master_lo, G, p->numel, lr, -1.0f, wd);
    else
        BE(be, sgd_update, x->master, G, p->numel, lr, -1.0f, wd,
           x->master == p->data ? NULL : p->data, s->m->dtype);
    return BADAM_OK;
}

/* g = (all-reduced) gradient sums / tokens, clipped to the global norm over every parameter;
 * AdamW on the plain ones, GaLore on the layer matrices. */
static badam_status galore_update(method_state *s, const method_update_ctx *c, double *norm,
                                  badam_error *err) {
    galore *g = s->priv;
    if (s->o.galore_per_layer) { /* everything happened inside backward */
        s->ts.adam_step++;
        *norm = sqrt(g->sum_sq);
        g->sum_sq = 0;
        if (g->st && err) *err = g->err;
        badam_status st = g->st;
        g->st = BADAM_OK;
        return st;
    }
    double sum_sq;
    float scale;
    badam_status st = method_reduce_trainable_grads(s, c, &sum_sq, err);
    for (int j = 0; j < g->n && !st; j++) {
        size_t n = s->m->params[g->p[j].param].numel;
        st = method_all_reduce_grad(s->be, c->comm, g->p[j].grad, n, err);
        sum_sq += BE(s->be, sum_squares, g->p[j].grad, n);
    }
    if (!st) st = method_clip_scale(s, c, sum_sq, norm, &scale, err);
    if (st) return st;
    adam_update_trainables(&s->ts, s->m->dtype, c->lr, scale, s->o.weight_decay, &s->o.adam);
    for (int j = 0; j < g->n && !st; j++)
        st = galore_step(s, &g->p[j], s->ts.adam_step, c->lr, scale, c->comm, err);
    return st;
}

/* --galore-per-layer: parameter idx's gradient is complete; update it now (GaLore or AdamW at
 * this step's count) and clear a shared buffer for the next matrix. */
static void galore_grad_ready(method_state *s, int idx, const method_micro_ctx *c) {
    galore *g = s->priv;
    if (!s->o.galore_per_layer || g->st) return;
    const llama_model *m = s->m;
    size_t n = m->params[idx].numel;
    float *grad = s->grads[idx];
    g->st = method_all_reduce_grad(s->be, c->comm, grad, n, &g->err);
    if (g->st) return;
    double ss = BE(s->be, sum_squares, grad, n);
    if (!isfinite(ss)) { /* before an SVD of it */
        g->st = badam_fail(&g->err, BADAM_E_NUMERIC,
                           "galore: the gradient of %s is not finite; lower --lr or check the data",
                           m->params[idx].name);
        return;
    }
    g->sum_sq += ss * c->grad_scale * c->grad_scale;
    const int t = s->ts.adam_step + 1;
    if (g->proj_of[idx] >= 0) {
        g->st = galore_step(s, &g->p[g->proj_of[idx]], t, c->lr, c->grad_scale, c->comm, &g->err);
        BE(s->be, zero, grad, sizeof(float) * n);
        return;
    }
    trainable *x = &s->ts.t[g->plain_of[idx]];
    const adamw_step_args a = {c->lr,
                               c->grad_scale,
                               x->decay ? s->o.weight_decay : 0,
                               s->o.adam.beta1,
                               s->o.adam.beta2,
                               s->o.adam.eps,
                               t};
    if (x->master_lo)
        BE(s->be, adamw_update_split, x->weight, x->master_lo, x->m, x->v, x->grad, x->numel, &a);
    else
        BE(s->be, adamw_update, x->master, x->m, x->v, x->grad, x->numel, &a, x->weight, m->dtype);
}

static void galore_describe(const method_state *s, const badam_logger *log) {
    const galore *g = s->priv;
    badam_logf(log, BADAM_LOG_INFO,
               "  galore: %d layer matrices in rank %d (projector every %d steps, scale %g%s); "
               "%d other tensors by AdamW",
               g->n, s->o.galore_rank, s->o.galore_update_gap, s->o.galore_scale,
               s->o.galore_per_layer ? ", updated inside backward" : "", s->ts.n);
}

static void galore_free(method_state *s) {
    galore *g = s->priv;
    if (!g) return;
    void *pools[] = {g->pool_P, g->pool_m, g->pool_v, g->pool_master, g->pool_grad,
                     g->R,      g->Z,      g->svd,    g->pool_lo};
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++)
        if (pools[i]) BE(s->be, free, pools[i]);
    free(g->p), free(g->plain_of), free(g->proj_of), free(g);
    s->priv = NULL;
}

const train_method_ops method_galore = {
    .name = "galore",
    .uses = METHOD_USES_ADAM | METHOD_USES_GALORE,
    .data_parallel = 1,
    .default_clip = 1.0f,
    .check = galore_check,
    .sizes = galore_sizes_of,
    .create = galore_create,
    .allocate = galore_allocate,
    .zero_grads = galore_zero_grads,
    .grad_ready = galore_grad_ready,
    .update = galore_update,
    .save_parts = galore_save_parts,
    .load_parts = galore_load_parts,
    .describe = galore_describe,
    .free = galore_free,
};
