/* The per-rank memory plan of a run of N ranks (memory_plan_predict_ranks, badam/train.h), with
 * the sharded-weights layout it counts (train/shard.h). */
#include <string.h>

#include "badam/model.h"
#include "base/memory.h"
#include "train/method_select.h"
#include "train/shard.h"

int shard_unit_of(const llama_model *m, int i) {
    const llama_param *p = &m->params[i];
    if (p->layer >= 0) return 1 + p->layer;
    /* a global parameter: before the first layer's parameters (the embedding) or after them */
    for (int j = 0; j < i; j++)
        if (m->params[j].layer >= 0) return m->cfg.n_layers + 1;
    return 0;
}

int shard_unit_is_layer(const llama_model *m, int u) {
    return u > 0 && u <= m->cfg.n_layers;
}

size_t shard_unit_bytes(const llama_model *m, int u, int world) {
    size_t bytes = 0, q = 4 * (size_t)world, elem = badam_dtype_size(m->dtype);
    for (int i = 0; i < m->n_params; i++)
        if (shard_unit_of(m, i) == u) bytes += badam_alloc_size(m->params[i].numel * elem);
    return (bytes + q - 1) / q * q;
}

badam_status shard_layout_of(const llama_model *m, int world, shard_layout *out, badam_error *err) {
    memset(out, 0, sizeof *out);
    if (world < 1 || world > SHARD_MAX_RANKS)
        return badam_fail(err, BADAM_E_INVALID, "--world-size %d: must be 1 .. %d", world,
                          SHARD_MAX_RANKS);
    int units = m->cfg.n_layers + 2;
    out->world = world, out->n_units = units;
    for (int u = 0; u < units; u++) {
        size_t p = shard_unit_bytes(m, u, world);
        if (!p) continue;
        if (!shard_unit_is_layer(m, u)) {
            out->whole_bytes += badam_alloc_size(p);
            continue;
        }
        out->shard_bytes += badam_alloc_size(p / (size_t)world);
        if (p > out->largest_unit) out->largest_unit = p;
    }
    out->gather_bytes = 2 * badam_alloc_size(out->largest_unit);
    out->weight_bytes = out->shard_bytes + out->whole_bytes + out->gather_bytes;
    return BADAM_OK;
}

/* Methods whose trainable state is one block at a time can shard it; the others refuse. */
badam_status shard_check_method(const char *name, badam_error *err) {
    if (!strcmp(name, "badam") || !strcmp(name, "sgd-bcd")) return BADAM_OK;
    return badam_fail(err, BADAM_E_UNSUPPORTED,
                      "--shard-weights: method %s keeps more than one block's state; only "
                      "badam and sgd-bcd shard their frozen weights and block state",
                      name);
}

/* The weights of a sharded run (the rest is the unsharded plan of N ranks). */
static badam_status shard_plan(const llama_config *mc, const train_config *cfg, int world,
                               memory_plan *out, badam_error *err) {
    const model_arch *arch = model_arch_find(mc->model_type);
    llama_model *m = NULL;
    badam_status st = arch->describe(mc, cfg->dtype, &m, err);
    if (st) return st;
    shard_layout lay;
    st = shard_layout_of(m, world, &lay, err);
    arch->free(m);
    if (st) return st;
    out->total -= out->bytes[BADAM_MEM_WEIGHTS];
    out->bytes[BADAM_MEM_WEIGHTS] = lay.weight_bytes;
    out->total += out->bytes[BADAM_MEM_WEIGHTS];
    return BADAM_OK;
}

badam_status memory_plan_predict_ranks(const llama_config *mc, const train_config *cfg,
                                       int world_size, int shard_weights, memory_plan *out,
                                       badam_error *err) {
    memset(out, 0, sizeof *out);
    if (world_size < 1 || world_size > SHARD_MAX_RANKS)
        return badam_fail(err, BADAM_E_INVALID, "--world-size %d: must be 1 .. %d", world_size,
                          SHARD_MAX_RANKS);
    if (cfg->batch_size < 1 || cfg->batch_size % world_size)
        return badam_fail(err, BADAM_E_INVALID,
                          "--batch-size %d is not divisible by --world-size %d (the batch is "
                          "summed over ranks: each rank takes batch-size / N sequences)",
                          cfg->batch_size, world_size);
    const train_method_ops *ops;
    badam_status st = train_method_select(cfg, &ops, err);
    if (st) return st;
    if (shard_weights && (st = shard_check_method(ops->name, err))) return st;
    st = memory_plan_predict(mc, cfg, cfg->batch_size / world_size, cfg->seq_len, out, err);
    if (!st && shard_weights && world_size > 1) st = shard_plan(mc, cfg, world_size, out, err);
    return st;
}
