/* Sharded frozen weights (ZeRO-3 / FSDP style) for a run of N ranks: the layout the run time
 * keeps (shard_runtime.c) and the per-rank memory plan (memory_plan_predict_ranks, badam/train.h)
 * counts, so the two agree by construction.
 *
 * Units: the parameter table is cut into units that are gathered whole, one at a time: unit 0
 * holds the parameters before the first layer (the embedding), unit 1 + l the parameters of
 * layer l, unit L + 1 those after the last layer (final norm, LM head when untied). A unit's
 * bytes are its parameters as the model stores them (each padded to the allocation alignment),
 * padded to P bytes, a multiple of 4 N (the all-gather moves floats). Rank r keeps bytes
 * [r P / N, (r + 1) P / N) of each layer unit. The embedding unit and the last unit are kept
 * whole on every rank: the model reads them outside the per-layer weight hooks (badam/model.h).
 * A layer unit is all-gathered into one reused gather buffer (P of the largest layer unit)
 * just before forward, backward or recomputation uses it; a second buffer of that size holds
 * the layer the method trains, whole on every rank.
 *
 * The active block's state (block-wise methods only: badam, sgd-bcd) is not sharded: each rank
 * holds the block's master, gradient and moments as a one-process run does, and the gradient
 * is all-reduced as in any data-parallel run (the plan of N ranks without --shard-weights). */
#ifndef BADAM_TRAIN_SHARD_H
#define BADAM_TRAIN_SHARD_H

#include <stddef.h>

#include "badam/comm.h"
#include "badam/model.h"
#include "optim/trainable.h"

#define SHARD_MAX_RANKS 65536

typedef struct shard_layout {
    int world;           /* ranks N */
    int n_units;         /* L + 2 */
    size_t largest_unit; /* bytes P of the largest layer unit */
    size_t shard_bytes;  /* this rank's layer shards: the sum of their P / N allocations */
    size_t whole_bytes;  /* the units kept whole: the sum of their P allocations */
    size_t gather_bytes; /* the gather buffer and the trained layer's buffer: 2 P allocations */
    size_t weight_bytes; /* the sum of the three */
} shard_layout;

/* The unit of parameter i of m (0 .. L + 1, see above). */
int shard_unit_of(const llama_model *m, int i);
/* Is unit u of m a layer unit (sharded)? */
int shard_unit_is_layer(const llama_model *m, int u);
/* P of unit u over `world` ranks (above; 0 for a unit without parameters). */
size_t shard_unit_bytes(const llama_model *m, int u, int world);
/* The layout of m's weights (m->dtype) over world ranks (1 .. SHARD_MAX_RANKS, else
 * BADAM_E_INVALID naming the value). */
badam_status shard_layout_of(const llama_model *m, int world, shard_layout *out, badam_error *err);

/* BADAM_E_UNSUPPORTED naming the method unless it shards (badam, sgd-bcd). */
badam_status shard_check_method(const char *method, badam_error *err);

/* ---------------------------------------------------------------- the run time
 * What a run of N > 1 ranks holds (shard_runtime.c). A unit's bytes are its parameters as the
 * model stores them (each padded to the allocation alignment), padded to P bytes, a multiple of
 * 4 N: the layer units are sharded (rank r keeps bytes [r P / N, (r + 1) P / N)), the embedding
 * unit and the final unit (final norm, head) are kept whole on every rank, because the model
 * reads them outside the weight hooks. One gather buffer holds the layer being used; one more
 * buffer of the same size holds the layer unit the method trains, whole on every rank: the
 * method's master, gradients and moments are the unsharded ones and the gradients are
 * all-reduced as in any data-parallel run. */
typedef struct shard_runtime shard_runtime;

/* Moves m's weights into the layout above and frees m->storage (every rank must hold the same
 * whole model, e.g. after rank 0's broadcast): the model's parameters then point into the
 * runtime's buffers (free the runtime after the model is no longer used). ws gets weight hooks
 * that all-gather a layer in acquire (the hooks it had are called after). ts: the method's
 * trainable set, whose flagged parameters' layer is held whole and whose pointers into the
 * weights follow them (NULL: none). Errors: BADAM_E_NOMEM; BADAM_E_UNSUPPORTED for a trained
 * set spanning two layers; communication errors. */
badam_status shard_runtime_create(llama_model *m, llama_workspace *ws, const badam_comm *comm,
                                  trainable_set *ts, shard_runtime **out, badam_error *err);
/* A block switch: the layer of the old trained set goes back into the shards (the active copy
 * is the same on every rank), the layer of `flags` is gathered whole. Call before the method
 * builds its masters from the weights (or build them again after). */
badam_status shard_runtime_switch(shard_runtime *rt, const uint8_t *flags, badam_error *err);
/* Saving without a whole copy, called by every rank: fn(ctx) runs on rank 0 with m->save_fetch set
 * so that the saver (llama_model_save, in parameter order) reads each layer unit from the gather
 * buffer, gathered one unit at a time as it is reached while the other ranks serve the gathers;
 * then fn runs on the other ranks too. No allocation counted by the plan (an address range is
 * reserved on rank 0 but never accessed). Errors: fn's, which include the communication errors
 * of the gathers. */
badam_status shard_runtime_save(shard_runtime *rt, badam_status (*fn)(void *ctx, badam_error *err),
                                void *ctx, badam_error *err);
void shard_runtime_free(shard_runtime *rt);

#endif
