/* Trainable tensors per method and their pools (trainable.h). */
#include <stdlib.h>
#include <string.h>

#include "base/memory.h"
#include "train/trainable.h"

size_t pool_floats_of(size_t numel) {
    return (numel + 15) / 16 * 16;
}

static int is_layer_or_final_norm(const llama_model *m, int i) {
    return m->params[i].layer >= 0 || i == m->final_norm;
}

/* Whether parameter i is trained by a whole-model method (Adam: all; LOMO: layers + final
 * norm, see train_run). */
static int whole_model_param(const llama_model *m, train_method method, int i) {
    return method == METHOD_ADAM || (method == METHOD_LOMO && is_layer_or_final_norm(m, i));
}

/* Calls fn(in, out) for every adapted linear of the model. */
#define FOR_EACH_ADAPTER(m, targets, body)                                                         \
    for (int l_ = 0; l_ < (m)->cfg.n_layers; l_++)                                                 \
        for (int k_ = 0; k_ < LLAMA_P_KIND_COUNT; k_++) {                                          \
            if (!((targets) & (1u << k_))) continue;                                               \
            const llama_param *p_ = &(m)->params[llama_param_index(m, l_, (llama_param_kind)k_)];  \
            size_t in = (size_t)p_->shape[1], out = (size_t)p_->shape[0];                          \
            body;                                                                                  \
        }

size_t lora_tensor_bytes(const llama_model *m, int r, uint32_t targets) {
    size_t total = 0;
    FOR_EACH_ADAPTER(m, targets,
                     total += badam_alloc_size(r * in * 4) + badam_alloc_size(out * r * 4));
    return total;
}

trainable_sizes trainable_sizes_of(const llama_model *m, train_method method,
                                   const block_partition *part, int lora_rank,
                                   uint32_t lora_targets) {
    trainable_sizes z;
    memset(&z, 0, sizeof z);
    int fp32 = m->dtype == BADAM_DTYPE_F32;
    switch (method) {
    case METHOD_BADAM:
    case METHOD_SGD_BCD: {
        size_t always = 0, always_numel = 0;
        for (int i = 0; i < m->n_params; i++)
            if (part->always_active[i])
                always += pool_floats_of(m->params[i].numel), always_numel += m->params[i].numel;
        for (int b = 0; b < part->n_blocks; b++) {
            size_t floats = always, numel = always_numel;
            for (int i = 0; i < m->n_params; i++)
                if (part->block_of[i] == b)
                    floats += pool_floats_of(m->params[i].numel), numel += m->params[i].numel;
            if (floats > z.pool) z.pool = floats;
            if (numel > z.trainable) z.trainable = numel;
        }
        z.has_master = !fp32, z.has_grad = 1, z.has_moments = method == METHOD_BADAM;
        z.master_split = m->dtype == BADAM_DTYPE_BF16;
        break;
    }
    case METHOD_ADAM:
        for (int i = 0; i < m->n_params; i++)
            z.pool += pool_floats_of(m->params[i].numel), z.trainable += m->params[i].numel;
        z.has_master = !fp32, z.has_grad = 1, z.has_moments = 1;
        z.master_split = m->dtype == BADAM_DTYPE_BF16;
        break;
    case METHOD_LORA: /* A, B and their gradients live with the adapters; moments here */
        FOR_EACH_ADAPTER(m, lora_targets, {
            size_t r = (size_t)lora_rank;
            z.pool += pool_floats_of(r * in) + pool_floats_of(out * r);
            z.trainable += r * (in + out);
        });
        z.has_moments = 1;
        break;
    case METHOD_LOMO:
        for (int i = 0; i < m->n_params; i++) {
            if (!whole_model_param(m, method, i)) continue;
            size_t *slot = m->params[i].ndim == 2 ? &z.lomo_matrix : &z.lomo_vector;
            if (m->params[i].numel > *slot) *slot = m->params[i].numel;
            z.trainable += m->params[i].numel;
        }
        break;
    default:
        break;
    }
    return z;
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

void trainable_free(trainable_set *s) {
    badam_free(s->pool_master);
    badam_free(s->pool_master_lo);
    badam_free(s->pool_grad);
    badam_free(s->pool_m);
    badam_free(s->pool_v);
    badam_free(s->lomo_matrix);
    badam_free(s->lomo_vector);
    free(s->t);
    free(s->grads);
    free(s->flags);
    memset(s, 0, sizeof *s);
}

static float *pool(badam_mem_category cat, size_t floats, int want, int *ok) {
    if (!want || !floats) return NULL;
    float *p = badam_alloc_array_in(cat, floats, sizeof(float));
    if (!p) *ok = 0;
    return p;
}

/* Points tensor t at offset `at` of each pool; builds the master from the stored weights. */
static void place(trainable_set *s, const llama_model *m, int i, size_t *at) {
    const llama_param *p = &m->params[i];
    int decay = p->ndim == 2 || (s->decay_all_but_biases && !strstr(p->name, "bias"));
    trainable t = {p->name, i, p->numel, NULL, NULL, NULL, NULL, NULL, decay, NULL, NULL};
    if (s->pool_master_lo) {
        t.master_lo = s->pool_master_lo + *at; /* low bits 0: the master equals the weight */
        t.weight = p->data;
        memset(t.master_lo, 0, p->numel * sizeof(uint16_t));
    } else if (s->pool_master) {
        t.master = s->pool_master + *at;
        t.weight = p->data;
        badam_convert(t.master, BADAM_DTYPE_F32, p->data, m->dtype, p->numel);
    } else {
        t.master = p->data; /* fp32 storage is the master */
    }
    t.grad = s->pool_grad + *at;
    if (s->pool_m) t.m = s->pool_m + *at, t.v = s->pool_v + *at;
    *at += pool_floats_of(p->numel);
    push(s, t);
    s->grads[i] = t.grad;
    s->flags[i] = 1;
}

badam_status trainable_create(trainable_set *s, const llama_model *m, train_method method,
                              const block_partition *part, badam_error *err) {
    memset(s, 0, sizeof *s);
    s->method = method;
    s->block = -1;
    s->grads = calloc((size_t)m->n_params, sizeof *s->grads);
    s->flags = calloc((size_t)m->n_params, 1);
    s->cap = 64;
    s->t = malloc(sizeof *s->t * (size_t)s->cap);
    trainable_sizes z = trainable_sizes_of(m, method, part, m->lora ? m->lora->rank : 0,
                                           m->lora ? m->lora->targets : 0);
    int ok = s->grads && s->flags && s->t;
    s->pool_master = pool(BADAM_MEM_MASTER, z.pool, z.has_master && !z.master_split, &ok);
    if (z.has_master && z.master_split && z.pool) {
        s->pool_master_lo = badam_alloc_array_in(BADAM_MEM_MASTER, z.pool, sizeof(uint16_t));
        if (!s->pool_master_lo) ok = 0;
    }
    s->pool_grad = pool(BADAM_MEM_GRADIENTS, z.pool, z.has_grad, &ok);
    s->pool_m = pool(BADAM_MEM_OPTIMIZER, z.pool, z.has_moments, &ok);
    s->pool_v = pool(BADAM_MEM_OPTIMIZER, z.pool, z.has_moments, &ok);
    s->lomo_matrix = pool(BADAM_MEM_GRADIENTS, z.lomo_matrix, 1, &ok);
    s->lomo_vector = pool(BADAM_MEM_GRADIENTS, z.lomo_vector, 1, &ok);
    if (!ok) {
        trainable_free(s);
        return badam_fail(err, BADAM_E_NOMEM,
                          "optimizer state: cannot allocate %zu parameters' worth of state",
                          z.trainable);
    }
    size_t at = 0;
    if (method == METHOD_ADAM) {
        for (int i = 0; i < m->n_params; i++) place(s, m, i, &at);
    } else if (method == METHOD_LORA) {
        for (int i = 0; i < m->cfg.n_layers * LLAMA_P_KIND_COUNT; i++) {
            if (!m->lora->A[i]) continue;
            const llama_param *p = &m->params[llama_param_index(
                m, i / LLAMA_P_KIND_COUNT, (llama_param_kind)(i % LLAMA_P_KIND_COUNT))];
            size_t na = (size_t)m->lora->rank * p->shape[1],
                   nb = (size_t)p->shape[0] * m->lora->rank;
            trainable a = {
                p->name,        -1, na,   m->lora->A[i], NULL, m->lora->dA[i], s->pool_m + at,
                s->pool_v + at, 1,  NULL, "lora_A"};
            at += pool_floats_of(na);
            trainable b = {
                p->name,        -1, nb,   m->lora->B[i], NULL, m->lora->dB[i], s->pool_m + at,
                s->pool_v + at, 1,  NULL, "lora_B"};
            at += pool_floats_of(nb);
            if (push(s, a) || push(s, b)) ok = 0;
        }
    } else if (method == METHOD_LOMO) {
        for (int i = 0; i < m->n_params; i++) {
            if (!whole_model_param(m, method, i)) continue;
            s->flags[i] = 1;
            s->grads[i] = m->params[i].ndim == 2 ? s->lomo_matrix : s->lomo_vector;
        }
    }
    if (!ok) {
        trainable_free(s);
        return badam_fail(err, BADAM_E_NOMEM, "optimizer state: out of memory");
    }
    return BADAM_OK;
}

void trainable_activate_block(trainable_set *s, const llama_model *m, const block_partition *part,
                              int block) {
    s->n = 0;
    memset(s->flags, 0, (size_t)m->n_params);
    memset(s->grads, 0, sizeof *s->grads * (size_t)m->n_params);
    size_t at = 0;
    for (int i = 0; i < m->n_params; i++)
        if (part->block_of[i] == block || part->always_active[i]) place(s, m, i, &at);
    if (s->pool_m) {
        memset(s->pool_m, 0, sizeof(float) * at);
        memset(s->pool_v, 0, sizeof(float) * at);
    }
    s->adam_step = 0;
    s->block = block;
}

void trainable_zero_grads(trainable_set *s) {
    for (int i = 0; i < s->n; i++) memset(s->t[i].grad, 0, sizeof(float) * s->t[i].numel);
}
