/* BAdam: block coordinate descent with Adam as the inner solver (Luo, Yu, Li 2024, "BAdam: A
 * Memory Efficient Full Parameter Optimization Method for Large Language Models", Algorithm 1):
 *
 *   partition the parameters into D blocks                            (1. bcd_create)
 *   for each block visit v = 0, 1, ...:
 *       pick the block pi(v) of the block order                        (2. the order)
 *       it is trained for K optimizer steps                            (3. K)
 *       at the visit's first step: switch to it                        (4. bcd_on_step_begin)
 *           and start a fresh Adam state: m = v = 0, step count 0,
 *           fp32 master from the current weights                       (5. the state reset)
 *       each step: g = gradient of the block; clip; Adam update        (6. adam_method_update)
 *
 * Memory: only the active block has a master, gradients and moments (14 bytes per parameter of
 * the largest block with bf16 weights). SGD-BCD (sgd_bcd.c) is the same loop with SGD in 6. */
#include <stdlib.h>
#include <string.h>

#include "optim/methods/methods.h"

typedef struct bcd {
    block_partition part;
} bcd;

/* ---------------------------------------------------------------- 1. partition */

/* The blocks (optim/partition.c: layers, modules, matrices or prefixes), checked against
 * --start-block. */
badam_status bcd_create(method_state *s, badam_error *err) {
    bcd *b = calloc(1, sizeof *b);
    if (!b) return badam_fail(err, BADAM_E_NOMEM, "block partition: out of memory");
    s->priv = b;
    badam_status st = partition_build(s->m, &s->o.partition, &b->part, err);
    if (st) return st;
    s->part = &b->part;
    if (s->o.start_block >= b->part.n_blocks)
        return badam_fail(err, BADAM_E_INVALID,
                          "--start-block %d: the partition has %d blocks (0 to %d)",
                          s->o.start_block, b->part.n_blocks, b->part.n_blocks - 1);
    /* 3. K: steps per block visit, given or from the data (the reference README's advice) */
    s->K = s->o.switch_every > 0
               ? s->o.switch_every
               : block_switch_every_auto(s->o.n_examples, s->o.effective_batch, b->part.n_blocks);
    return BADAM_OK;
}

/* ---------------------------------------------------------------- 2.-5. order, K, switch, reset */

/* Step `step` (from 0) belongs to visit v = step / K (reference_compat: the first visit is one
 * step shorter, optim.h); at a visit's first step the block of the order (random: a fresh seeded
 * permutation each block epoch; ascending; descending; fixed) becomes the trainable set, with
 * its state reset (trainable_activate_block). Returns 1 at a switch: the gradient plan changes. */
int bcd_on_step_begin(method_state *s, int step) {
    int starts = 0;
    int visit = block_visit_of_step(step, s->K, s->o.reference_compat, &starts);
    if (!starts) return 0;
    int block = block_for_visit(s->o.order, s->part->n_blocks, s->o.start_block, s->o.seed,
                                (uint64_t)visit);
    trainable_activate_block(&s->ts, s->m, s->part, block); /* 5. fresh state */
    s->block = block;
    return 1;
}

/* ---------------------------------------------------------------- 6. the Adam update */

/* BAdam's update is full Adam's (adam_method_update) on every tensor of the active block. */

/* ---------------------------------------------------------------- memory, resume, summary */

/* Pool floats: the largest block plus the always-active parameters. */
static void bcd_pool(const llama_model *m, const block_partition *part, int has_moments,
                     trainable_sizes *z) {
    memset(z, 0, sizeof *z);
    size_t always = 0, always_numel = 0;
    for (int i = 0; i < m->n_params; i++)
        if (part->always_active[i])
            always += pool_floats_of(m->params[i].numel), always_numel += m->params[i].numel;
    for (int b = 0; b < part->n_blocks; b++) {
        size_t floats = always, numel = always_numel;
        for (int i = 0; i < m->n_params; i++)
            if (part->block_of[i] == b)
                floats += pool_floats_of(m->params[i].numel), numel += m->params[i].numel;
        if (floats > z->pool) z->pool = floats;
        if (numel > z->trainable) z->trainable = numel;
    }
    trainable_sizes_masters(z, m->dtype);
    z->has_grad = 1, z->has_moments = has_moments;
}

/* The lowest layer any block's plan keeps activations from. */
static int lowest_first_layer(const llama_model *m, const block_partition *part) {
    int lowest = m->cfg.n_layers;
    uint8_t *flags = calloc((size_t)m->n_params, 1);
    for (int b = 0; flags && b < part->n_blocks; b++) {
        for (int i = 0; i < m->n_params; i++)
            flags[i] = part->block_of[i] == b || part->always_active[i];
        llama_grad_plan plan;
        llama_plan_for_flags(m, flags, 0, &plan);
        int first = llama_plan_first_layer(m, &plan);
        if (first < lowest) lowest = first;
    }
    free(flags);
    return lowest;
}

badam_status bcd_sizes(const llama_model *m, const method_options *o, int has_moments,
                       method_sizes *out, badam_error *err) {
    block_partition part;
    badam_status st = partition_build(m, &o->partition, &part, err);
    if (st) return st;
    trainable_sizes z;
    bcd_pool(m, &part, has_moments, &z);
    trainable_sizes_bytes(&z, out->bytes);
    out->trainable = z.trainable;
    out->n_blocks = part.n_blocks;
    out->largest_block = partition_largest_block(&part);
    out->first_layer = lowest_first_layer(m, &part);
    partition_free(&part);
    return BADAM_OK;
}

badam_status bcd_allocate(method_state *s, int has_moments, badam_error *err) {
    trainable_sizes z;
    bcd_pool(s->m, s->part, has_moments, &z);
    badam_status st = trainable_alloc(&s->ts, s->be, s->m->n_params, &z, err);
    if (st) return st;
    /* the reference BlockOptimizer's groups: RMSNorm weights decay too */
    s->ts.decay_all_but_biases = s->o.reference_compat;
    s->need_grad = s->ts.flags, s->grads = s->ts.grads;
    return BADAM_OK;
}

/* A checkpoint inside a block visit: that block again (its masters from the saved weights),
 * then the saved optimizer state over it. */
badam_status bcd_load_parts(method_state *s, const char *dir, const method_resume *r,
                            badam_error *err) {
    if (r->block >= 0) {
        trainable_activate_block(&s->ts, s->m, s->part, r->block);
        s->block = r->block;
    }
    return method_load_trainables(s, dir, r, err);
}

void bcd_describe(const method_state *s, const badam_logger *log) {
    badam_logf(log, BADAM_LOG_INFO, "  %d blocks (%s order), switch every %d steps",
               s->part->n_blocks, block_order_name(s->o.order), s->K);
    const char *note = partition_tied_head_note(&s->m->cfg, &s->o.partition);
    if (note) badam_logf(log, BADAM_LOG_INFO, "  note: %s", note);
}

void bcd_free(method_state *s) {
    bcd *b = s->priv;
    if (b) partition_free(&b->part);
    free(b);
    s->priv = NULL;
    s->part = NULL;
}

static badam_status badam_sizes(const llama_model *m, const method_options *o, method_sizes *out,
                                badam_error *err) {
    return bcd_sizes(m, o, 1, out, err);
}
static badam_status badam_allocate(method_state *s, badam_error *err) {
    return bcd_allocate(s, 1, err);
}

const train_method_ops method_badam = {
    .name = "badam",
    .uses = METHOD_USES_BLOCKS | METHOD_USES_ADAM,
    .data_parallel = 1,
    .default_clip = 1.0f,
    .sizes = badam_sizes,
    .create = bcd_create,
    .allocate = badam_allocate,
    .on_step_begin = bcd_on_step_begin,
    .zero_grads = method_zero_trainable_grads,
    .update = adam_method_update,
    .save_parts = method_save_trainables,
    .load_parts = bcd_load_parts,
    .describe = bcd_describe,
    .free = bcd_free,
};
