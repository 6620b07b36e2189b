/* Sharded frozen weights at run time (--shard-weights on N > 1 ranks; train/shard.h states the
 * layout and what is held whole). A gathered unit is a byte-for-byte copy of the model's storage
 * of that unit (each parameter padded to the allocation alignment, as llama_model_alloc_weights
 * lays them out); the all-gather moves the bytes as floats (bit patterns, no arithmetic). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/memory.h"
#include "optim/trainable.h"
#include "train/shard.h"

typedef struct shard_unit {
    int first, n; /* params[first .. first + n) */
    size_t total; /* P: the parameters' padded bytes, padded to a multiple of 4 N */
    void *shard;  /* layer units: this rank's P / N bytes */
    void *whole;  /* the embedding and the final units: kept whole */
} shard_unit;

struct shard_runtime {
    llama_model *m;
    const badam_comm *comm;
    int world, rank, n_units;
    shard_unit *u;
    void *gather;   /* one layer unit gathered for forward / backward */
    void *active;   /* the layer unit the method trains, whole on every rank */
    int active_u;   /* its unit, or -1 */
    int gathered;   /* the unit the gather buffer holds, or -1 */
    size_t largest; /* bytes of the largest layer unit, P */
    model_weight_hooks prev;
};

static size_t param_bytes(const llama_model *m, int i) {
    return badam_alloc_size(m->params[i].numel * badam_dtype_size(m->dtype));
}

/* Points unit u's parameters into base (its padded layout). */
static void point_unit(shard_runtime *rt, int u, void *base) {
    size_t off = 0;
    for (int i = rt->u[u].first; i < rt->u[u].first + rt->u[u].n; i++) {
        rt->m->params[i].data = (char *)base + off;
        off += param_bytes(rt->m, i);
    }
}

/* Copies unit u's parameters (wherever they are) into dst, padded layout, zero padding. */
static void pack_unit(const shard_runtime *rt, int u, void *dst) {
    size_t off = 0;
    memset(dst, 0, rt->u[u].total);
    for (int i = rt->u[u].first; i < rt->u[u].first + rt->u[u].n; i++) {
        const llama_param *p = &rt->m->params[i];
        memcpy((char *)dst + off, p->data, p->numel * badam_dtype_size(rt->m->dtype));
        off += param_bytes(rt->m, i);
    }
}

static int is_layer_unit(const shard_runtime *rt, int u) {
    return shard_unit_is_layer(rt->m, u);
}

/* Unit u whole into dst on every rank (all-gather of the shards). */
static badam_status gather_unit(shard_runtime *rt, int u, void *dst, badam_error *err) {
    size_t part = rt->u[u].total / (size_t)rt->world;
    return badam_comm_all_gather_f32(rt->comm, rt->u[u].shard, dst, part / sizeof(float), err);
}

/* The hook: a layer that is not the active one is gathered into the gather buffer (where its
 * parameters point) unless it is there already, then the hooks it replaces take over. */
static badam_status sh_acquire(void *ctx, const llama_model *m, int layer, model_layer_weights *lw,
                               badam_error *err) {
    shard_runtime *rt = ctx;
    int u = 1 + layer;
    if (u != rt->active_u && u != rt->gathered) {
        rt->gathered = -1;
        badam_status st = gather_unit(rt, u, rt->gather, err);
        if (st) return badam_error_prefix(err, "--shard-weights: gathering layer %d", layer);
        rt->gathered = u;
    }
    if (rt->prev.acquire) return rt->prev.acquire(rt->prev.ctx, m, layer, lw, err);
    return model_layer_weights_stored(m, layer, lw, err);
}

static void sh_release(void *ctx, const llama_model *m, int layer, model_layer_weights *lw) {
    shard_runtime *rt = ctx;
    if (rt->prev.release) rt->prev.release(rt->prev.ctx, m, layer, lw);
}

static void sh_invalidate(void *ctx, const llama_model *m) {
    shard_runtime *rt = ctx;
    if (rt->prev.invalidate) rt->prev.invalidate(rt->prev.ctx, m);
}

/* The units' parameter ranges and padded sizes, and the largest layer unit. */
static badam_status measure_units(shard_runtime *rt, badam_error *err) {
    llama_model *m = rt->m;
    rt->n_units = m->cfg.n_layers + 2;
    rt->u = calloc((size_t)rt->n_units, sizeof *rt->u);
    if (!rt->u) return badam_fail(err, BADAM_E_NOMEM, "--shard-weights: out of memory");
    for (int u = 0; u < rt->n_units; u++) rt->u[u].first = -1;
    for (int i = 0; i < m->n_params; i++) {
        shard_unit *x = &rt->u[shard_unit_of(m, i)];
        if (x->first >= 0 && x->first + x->n != i)
            return badam_fail(err, BADAM_E_UNSUPPORTED,
                              "--shard-weights: parameter %s is not stored next to its unit",
                              m->params[i].name);
        if (x->first < 0) x->first = i;
        x->n++;
    }
    for (int u = 0; u < rt->n_units; u++) {
        rt->u[u].total = shard_unit_bytes(m, u, rt->world);
        if (is_layer_unit(rt, u) && rt->u[u].total > rt->largest) rt->largest = rt->u[u].total;
    }
    return BADAM_OK;
}

/* Each unit into its place: layer units as this rank's shard, the others whole. The gather
 * buffer stages the packed unit. */
static badam_status place_units(shard_runtime *rt, badam_error *err) {
    for (int u = 0; u < rt->n_units; u++) {
        shard_unit *x = &rt->u[u];
        if (!x->n) continue;
        if (!is_layer_unit(rt, u)) {
            if (!(x->whole = badam_alloc_in(BADAM_MEM_WEIGHTS, x->total)))
                return badam_fail(err, BADAM_E_NOMEM, "--shard-weights: out of memory");
            pack_unit(rt, u, x->whole);
            continue;
        }
        size_t part = x->total / (size_t)rt->world;
        if (!(x->shard = badam_alloc_in(BADAM_MEM_WEIGHTS, part)))
            return badam_fail(err, BADAM_E_NOMEM, "--shard-weights: out of memory");
        pack_unit(rt, u, rt->gather);
        memcpy(x->shard, (char *)rt->gather + part * (size_t)rt->rank, part);
    }
    return BADAM_OK;
}

/* The layer unit holding the parameters flagged in flags (NULL or none: -1); a set spanning two
 * layer units is refused. */
static badam_status active_unit_of(const shard_runtime *rt, const uint8_t *flags, int *out,
                                   badam_error *err) {
    *out = -1;
    for (int i = 0; flags && i < rt->m->n_params; i++) {
        int u = shard_unit_of(rt->m, i);
        if (!flags[i] || !is_layer_unit(rt, u) || u == *out) continue;
        if (*out >= 0)
            return badam_fail(err, BADAM_E_UNSUPPORTED,
                              "--shard-weights: the trained block spans layers %d and %d; "
                              "sharding needs blocks within one layer (--partition layer, "
                              "module or matrix)",
                              *out - 1, u - 1);
        *out = u;
    }
    return BADAM_OK;
}

/* Model parameter pointers moved from old[i] to params[i].data: the trainables that point at
 * a weight follow it. */
static void follow_pointers(trainable_set *ts, const llama_model *m, void *const *old) {
    for (int k = 0; ts && k < ts->n; k++) {
        trainable *t = &ts->t[k];
        if (t->param < 0) continue;
        if (t->weight == old[t->param]) t->weight = m->params[t->param].data;
        if (t->master == old[t->param]) t->master = m->params[t->param].data;
    }
}

static badam_status create_buffers(shard_runtime *rt, const uint8_t *flags, trainable_set *ts,
                                   badam_error *err) {
    llama_model *m = rt->m;
    badam_status st = measure_units(rt, err);
    if (!st && !(rt->gather = badam_alloc_in(BADAM_MEM_WEIGHTS, rt->largest)))
        st = badam_fail(err, BADAM_E_NOMEM, "--shard-weights: out of memory");
    if (!st && !(rt->active = badam_alloc_in(BADAM_MEM_WEIGHTS, rt->largest)))
        st = badam_fail(err, BADAM_E_NOMEM, "--shard-weights: out of memory");
    if (!st) st = active_unit_of(rt, flags, &rt->active_u, err);
    if (!st) st = place_units(rt, err);
    if (st) return st;
    if (rt->active_u >= 0) pack_unit(rt, rt->active_u, rt->active);
    void **old = malloc(sizeof *old * (size_t)m->n_params);
    if (!old) return badam_fail(err, BADAM_E_NOMEM, "--shard-weights: out of memory");
    for (int i = 0; i < m->n_params; i++) old[i] = m->params[i].data;
    for (int u = 0; u < rt->n_units; u++) {
        if (!rt->u[u].n) continue;
        point_unit(rt, u,
                   rt->u[u].whole      ? rt->u[u].whole
                   : u == rt->active_u ? rt->active
                                       : rt->gather);
    }
    follow_pointers(ts, m, old);
    free(old);
    badam_free(m->storage); /* every parameter now lives in the buffers above */
    m->storage = NULL;
    rt->gathered = -1;
    return BADAM_OK;
}

badam_status shard_runtime_create(llama_model *m, llama_workspace *ws, const badam_comm *comm,
                                  trainable_set *ts, shard_runtime **out, badam_error *err) {
    *out = NULL;
    shard_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) return badam_fail(err, BADAM_E_NOMEM, "--shard-weights: out of memory");
    rt->m = m, rt->comm = comm;
    rt->world = badam_comm_size(comm), rt->rank = badam_comm_rank(comm);
    rt->active_u = rt->gathered = -1;
    badam_status st = create_buffers(rt, ts ? ts->flags : NULL, ts, err);
    if (st) {
        shard_runtime_free(rt);
        return st;
    }
    rt->prev = llama_workspace_weight_hooks(ws);
    model_weight_hooks h = {sh_acquire, sh_release, sh_invalidate, rt};
    llama_workspace_set_weight_hooks(ws, &h);
    *out = rt;
    return BADAM_OK;
}

badam_status shard_runtime_switch(shard_runtime *rt, const uint8_t *flags, badam_error *err) {
    int next;
    badam_status st = active_unit_of(rt, flags, &next, err);
    if (st || next == rt->active_u) return st;
    rt->gathered = -1;
    int old = rt->active_u;
    if (old >= 0) { /* the trained unit, the same on every rank, back into the shards */
        size_t part = rt->u[old].total / (size_t)rt->world;
        memcpy(rt->u[old].shard, (char *)rt->active + part * (size_t)rt->rank, part);
        point_unit(rt, old, rt->gather);
    }
    rt->active_u = -1;
    if (next >= 0) {
        if ((st = gather_unit(rt, next, rt->active, err)))
            return badam_error_prefix(err, "--shard-weights: gathering layer %d", next - 1);
        point_unit(rt, next, rt->active);
        rt->active_u = next;
    }
    return BADAM_OK;
}

/* ---- streaming save ----
 * Rank 0 writes while the other ranks serve it, one layer unit at a time through the gather
 * buffer, so no rank ever holds more than the run holds. On rank 0, each layer unit but the
 * active one points into its own place of an address range that is reserved but inaccessible
 * (never read: the saver reads the parameters through m->save_fetch), so a source address names
 * its unit and offset. A fetch from a unit that the gather buffer does not hold broadcasts the
 * unit's number from rank 0 and every rank all-gathers it; -1 ends the serving. The saver reads
 * the parameters in order, so each unit is gathered once. */
typedef struct save_stream {
    shard_runtime *rt;
    char *base;  /* the reserved range: unit u at base + at[u] */
    size_t *at;  /* [n_units] */
    size_t span; /* bytes of the range */
} save_stream;

/* st_fetch_fn: bytes at src (a chunk within one parameter) into host; a failed gather ends the
 * save with its error (a checkpoint is then not written, the previous one stays). */
static badam_status stream_fetch(void *ctx, void *host, const void *src, size_t bytes,
                                 badam_error *err) {
    save_stream *s = ctx;
    shard_runtime *rt = s->rt;
    const char *p = src;
    if (p < s->base || p >= s->base + s->span) { /* held in memory: embedding, head, active */
        memcpy(host, src, bytes);
        return BADAM_OK;
    }
    int u = 1;
    while (u + 1 < rt->n_units - 1 && p >= s->base + s->at[u + 1]) u++;
    if (u != rt->gathered) {
        rt->gathered = -1;
        int msg = u;
        badam_status st = badam_comm_broadcast(rt->comm, &msg, sizeof msg, 0, err);
        if (!st) st = gather_unit(rt, u, rt->gather, err);
        if (st)
            return badam_error_prefix(err, "--shard-weights: gathering layer %d to save", u - 1);
        rt->gathered = u;
    }
    memcpy(host, (const char *)rt->gather + (size_t)(p - (s->base + s->at[u])), bytes);
    return BADAM_OK;
}

/* Rank 0: fn with the layer units other than the active one streamed (above). */
static badam_status save_streamed(shard_runtime *rt, badam_status (*fn)(void *, badam_error *),
                                  void *ctx, badam_error *err) {
    save_stream s = {rt, NULL, calloc((size_t)rt->n_units, sizeof(size_t)), 0};
    badam_status st =
        s.at ? BADAM_OK : badam_fail(err, BADAM_E_NOMEM, "--shard-weights: out of memory");
    for (int u = 1; !st && u < rt->n_units - 1; u++) s.at[u] = s.span, s.span += rt->u[u].total;
    if (!st) {
        void *base =
            mmap(NULL, s.span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED)
            st = badam_fail(err, BADAM_E_NOMEM,
                            "--shard-weights: cannot reserve %zu bytes of address space to save",
                            s.span);
        else
            s.base = base;
    }
    if (!st) {
        for (int u = 1; u < rt->n_units - 1; u++)
            if (u != rt->active_u) point_unit(rt, u, s.base + s.at[u]);
        rt->m->save_fetch = stream_fetch, rt->m->save_ctx = &s;
        st = fn(ctx, err);
        rt->m->save_fetch = NULL, rt->m->save_ctx = NULL;
        for (int u = 1; u < rt->n_units - 1; u++)
            if (u != rt->active_u) point_unit(rt, u, rt->gather);
        munmap(s.base, s.span);
    }
    free(s.at);
    return st;
}

badam_status shard_runtime_save(shard_runtime *rt, badam_status (*fn)(void *ctx, badam_error *err),
                                void *ctx, badam_error *err) {
    badam_status st = BADAM_OK;
    int msg = -1;
    if (rt->rank == 0) {
        st = save_streamed(rt, fn, ctx, err);
        badam_error ignored;
        badam_status end = badam_comm_broadcast(rt->comm, &msg, sizeof msg, 0, st ? &ignored : err);
        return st ? st : end;
    }
    for (;;) { /* serve rank 0's gathers until it is done */
        if ((st = badam_comm_broadcast(rt->comm, &msg, sizeof msg, 0, err)) || msg < 0) break;
        rt->gathered = -1;
        if ((st = gather_unit(rt, msg, rt->gather, err)))
            return badam_error_prefix(err, "--shard-weights: gathering layer %d to save", msg - 1);
        rt->gathered = msg;
    }
    return st ? st : fn(ctx, err);
}

void shard_runtime_free(shard_runtime *rt) {
    if (!rt) return;
    for (int u = 0; rt->u && u < rt->n_units; u++) {
        /* the model's parameters point into these: the model must be freed with them */
        badam_free(rt->u[u].shard);
        badam_free(rt->u[u].whole);
    }
    free(rt->u);
    badam_free(rt->gather);
    badam_free(rt->active);
    free(rt);
}
