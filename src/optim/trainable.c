/* Trainable tensors and their pools (trainable.h). */
#include "optim/trainable.h"

#include <stdlib.h>
#include <string.h>

size_t pool_floats_of(size_t numel) {
    return (numel + 15) / 16 * 16;
}

void trainable_sizes_masters(trainable_sizes *z, badam_dtype weight_dtype) {
    z->has_master = weight_dtype != BADAM_DTYPE_F32;
    z->master_split = weight_dtype == BADAM_DTYPE_BF16;
}

static size_t floats_bytes(size_t floats) {
    return floats ? badam_alloc_size(floats * 4) : 0;
}

void trainable_sizes_bytes(const trainable_sizes *z, size_t *bytes) {
    if (z->has_master)
        bytes[BADAM_MEM_MASTER] +=
            z->master_split ? badam_alloc_size(z->pool * sizeof(uint16_t)) : floats_bytes(z->pool);
    if (z->has_grad) bytes[BADAM_MEM_GRADIENTS] += floats_bytes(z->pool);
    if (z->has_moments) bytes[BADAM_MEM_OPTIMIZER] += 2 * floats_bytes(z->pool);
}

static int push(trainable_set *s, trainable t) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        trainable *grown = realloc(s->t, sizeof *grown * (size_t)cap);
        if (!grown) return -1;
        s->t = grown, s->cap = cap;
    }
    s->t[s->n++] = t;
    return 0;
}

int trainable_push(trainable_set *s, const trainable *t) {
    return push(s, *t);
}

static void pool_free(backend *be, void *p) {
    if (p) BE(be, free, p);
}

void trainable_free(trainable_set *s) {
    pool_free(s->be, s->pool_master);
    pool_free(s->be, s->pool_master_lo);
    pool_free(s->be, s->pool_grad);
    pool_free(s->be, s->pool_m);
    pool_free(s->be, s->pool_v);
    free(s->t);
    free(s->grads);
    free(s->flags);
    memset(s, 0, sizeof *s);
}

/* count elements of `size` bytes on the backend, counted in cat (NULL: not wanted, or none) */
static void *pool(backend *be, badam_mem_category cat, size_t count, size_t size, int want,
                  int *ok) {
    if (!want || !count) return NULL;
    void *p = count <= SIZE_MAX / size ? BE(be, alloc, cat, count * size) : NULL;
    if (!p) *ok = 0;
    return p;
}

badam_status trainable_alloc(trainable_set *s, backend *be, int n_params, const trainable_sizes *z,
                             badam_error *err) {
    memset(s, 0, sizeof *s);
    s->be = be;
    s->block = -1;
    s->grads = calloc((size_t)n_params, sizeof *s->grads);
    s->flags = calloc((size_t)n_params, 1);
    s->cap = 64;
    s->t = malloc(sizeof *s->t * (size_t)s->cap);
    int ok = s->grads && s->flags && s->t;
    const size_t f = sizeof(float), z_pool = z->pool;
    s->pool_master = pool(be, BADAM_MEM_MASTER, z_pool, f, z->has_master && !z->master_split, &ok);
    s->pool_master_lo =
        pool(be, BADAM_MEM_MASTER, z_pool, sizeof(uint16_t), z->has_master && z->master_split, &ok);
    s->pool_grad = pool(be, BADAM_MEM_GRADIENTS, z_pool, f, z->has_grad, &ok);
    s->pool_m = pool(be, BADAM_MEM_OPTIMIZER, z_pool, f, z->has_moments, &ok);
    s->pool_v = pool(be, BADAM_MEM_OPTIMIZER, z_pool, f, z->has_moments, &ok);
    if (ok) return BADAM_OK;
    trainable_free(s);
    return badam_fail(err, BADAM_E_NOMEM,
                      "optimizer state: cannot allocate %zu parameters' worth of state",
                      z->trainable);
}

badam_status trainable_place(trainable_set *s, const llama_model *m, int i, size_t *at) {
    const llama_param *p = &m->params[i];
    int decay = p->ndim == 2 || (s->decay_all_but_biases && !strstr(p->name, "bias"));
    trainable t = {p->name, i, p->numel, NULL, NULL, NULL, NULL, NULL, decay, NULL, NULL};
    if (s->pool_master_lo) {
        t.master_lo = s->pool_master_lo + *at; /* low bits 0: the master equals the weight */
        t.weight = p->data;
        BE(s->be, zero, t.master_lo, p->numel * sizeof(uint16_t));
    } else if (s->pool_master) {
        t.master = s->pool_master + *at;
        t.weight = p->data;
        BE(s->be, convert, t.master, BADAM_DTYPE_F32, p->data, m->dtype, p->numel);
    } else {
        t.master = p->data; /* fp32 storage is the master */
    }
    t.grad = s->pool_grad + *at;
    if (s->pool_m) t.m = s->pool_m + *at, t.v = s->pool_v + *at;
    *at += pool_floats_of(p->numel);
    s->grads[i] = t.grad;
    s->flags[i] = 1;
    return push(s, t) ? badam_fail(NULL, BADAM_E_NOMEM, "optimizer state: out of memory")
                      : BADAM_OK;
}

badam_status trainable_push_external(trainable_set *s, const char *name, const char *part,
                                     size_t numel, float *values, float *grad, size_t *at) {
    trainable t = {name, -1,   numel, values, NULL, grad, s->pool_m + *at, s->pool_v + *at,
                   1,    NULL, part};
    *at += pool_floats_of(numel);
    return push(s, t) ? badam_fail(NULL, BADAM_E_NOMEM, "optimizer state: out of memory")
                      : BADAM_OK;
}

void trainable_activate_block(trainable_set *s, const llama_model *m, const block_partition *part,
                              int block) {
    s->n = 0;
    memset(s->flags, 0, (size_t)m->n_params);
    memset(s->grads, 0, sizeof *s->grads * (size_t)m->n_params);
    size_t at = 0;
    for (int i = 0; i < m->n_params; i++)
        if (part->block_of[i] == block || part->always_active[i]) trainable_place(s, m, i, &at);
    if (s->pool_m) {
        BE(s->be, zero, s->pool_m, sizeof(float) * at);
        BE(s->be, zero, s->pool_v, sizeof(float) * at);
    }
    s->adam_step = 0;
    s->block = block;
}

void trainable_zero_grads(trainable_set *s) {
    for (int i = 0; i < s->n; i++) BE(s->be, zero, s->t[i].grad, sizeof(float) * s->t[i].numel);
}
