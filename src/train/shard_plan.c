/* The per-rank memory plan of a run of N ranks (memory_plan_predict_ranks, badam/train.h), with
 * the sharded-weights layout it counts (train/shard.h). */
#include <string.h>

#include "badam/model.h"
#include "base/memory.h"
#include "optim/trainable.h"
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

size_t shard_elems_of(size_t n, int world) {
    return (n + (size_t)world - 1) / (size_t)world;
}

badam_status shard_layout_of(const llama_model *m, int world, shard_layout *out, badam_error *err) {
    memset(out, 0, sizeof *out);
    if (world < 1 || world > SHARD_MAX_RANKS)
        return badam_fail(err, BADAM_E_INVALID, "--world-size %d: must be 1 .. %d", world,
                          SHARD_MAX_RANKS);
    int units = m->cfg.n_layers + 2;
    size_t elem = badam_dtype_size(m->dtype);
    out->world = world, out->n_units = units;
    for (int u = 0; u < units; u++) {
        size_t numel = 0;
        for (int i = 0; i < m->n_params; i++)
            if (shard_unit_of(m, i) == u) numel += m->params[i].numel;
        if (!numel) continue;
        size_t per_rank = shard_elems_of(numel, world);
        out->shard_elems += per_rank;
        out->shard_bytes += badam_alloc_size(per_rank * elem);
        if (per_rank * (size_t)world > out->largest_unit)
            out->largest_unit = per_rank * (size_t)world;
    }
    out->gather_bytes = badam_alloc_size(out->largest_unit * elem);
    return BADAM_OK;
}

/* Methods whose trainable state is one block at a time can shard it; the others refuse. */
static int method_shards(const char *name) {
    return !strcmp(name, "badam") || !strcmp(name, "sgd-bcd");
}

/* Weights, master and optimizer state of a sharded run (the rest is the unsharded plan's):
 * the rank's weight shards and the gather buffer; the block pool's floats (the gradient pool:
 * F floats of 4 bytes, F a multiple of 16, so no alignment padding) split over the ranks. */
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
    out->bytes[BADAM_MEM_WEIGHTS] = badam_alloc_size(lay.shard_bytes) + lay.gather_bytes;
    size_t pool = out->bytes[BADAM_MEM_GRADIENTS] / sizeof(float);
    trainable_sizes z;
    memset(&z, 0, sizeof z);
    z.pool = (pool + 16 * (size_t)world - 1) / (16 * (size_t)world) * 16;
    trainable_sizes_masters(&z, cfg->dtype);
    z.has_moments = out->bytes[BADAM_MEM_OPTIMIZER] != 0;
    size_t b[BADAM_MEM_CATEGORY_COUNT] = {0};
    trainable_sizes_bytes(&z, b);
    out->bytes[BADAM_MEM_MASTER] = b[BADAM_MEM_MASTER];
    out->bytes[BADAM_MEM_OPTIMIZER] = b[BADAM_MEM_OPTIMIZER];
    out->total = 0;
    for (int c = 0; c < BADAM_MEM_CATEGORY_COUNT; c++) out->total += out->bytes[c];
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
    if (shard_weights && !method_shards(ops->name))
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "--shard-weights: method %s keeps more than one block's state; only "
                          "badam and sgd-bcd shard their frozen weights and block state",
                          ops->name);
    st = memory_plan_predict(mc, cfg, cfg->batch_size / world_size, cfg->seq_len, out, err);
    if (!st && shard_weights) st = shard_plan(mc, cfg, world_size, out, err);
    return st;
}
