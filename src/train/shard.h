/* Sharded frozen weights (ZeRO-3 / FSDP style) for a run of N ranks: the layout whose sizes the
 * per-rank memory plan (memory_plan_predict_ranks, badam/train.h) counts.
 *
 * Units: the parameter table is cut into units that are gathered whole, one at a time: unit 0
 * holds the parameters before the first layer (the embedding), unit 1 + l the parameters of
 * layer l, unit L + 1 those after the last layer (final norm, LM head when untied). A unit of S
 * elements is one flat vector padded to P = N * ceil(S / N) elements; rank r keeps elements
 * [r P / N, (r + 1) P / N) in the weights' dtype. Nothing is kept whole: the embedding and the
 * head are sharded like the layers. A unit is all-gathered into one reused gather buffer just
 * before forward, backward or recomputation uses it and released after, so a rank holds its
 * shards (sum over units of P / N elements) plus one buffer of the largest unit's P elements.
 *
 * The active block's state (block-wise methods only: badam, sgd-bcd): the method's pool of F
 * floats (master / gradient / moments, optim/trainable.h) is split the same way, each rank
 * holding ceil(F / (16 N)) * 16 floats of master low bits and Adam m and v; the gradient of the
 * block is produced whole by backward on every rank and reduce-scattered in place, so the
 * gradient pool stays F floats. */
#ifndef BADAM_TRAIN_SHARD_H
#define BADAM_TRAIN_SHARD_H

#include <stddef.h>

#include "badam/model.h"

#define SHARD_MAX_RANKS 65536

typedef struct shard_layout {
    int world;           /* ranks N */
    int n_units;         /* L + 2 */
    size_t largest_unit; /* elements of the largest unit, padded (P) */
    size_t shard_elems;  /* elements one rank keeps: sum over units of P / N */
    size_t shard_bytes;  /* their allocation: one aligned allocation per unit, then the sum */
    size_t gather_bytes; /* the gather buffer: one unit of largest_unit elements */
} shard_layout;

/* The unit of parameter i of m (0 .. L + 1, see above). */
int shard_unit_of(const llama_model *m, int i);
/* Elements one rank keeps of a flat vector of n elements over `world` ranks: ceil(n / world). */
size_t shard_elems_of(size_t n, int world);
/* The layout of m's weights (m->dtype) over world ranks (1 .. SHARD_MAX_RANKS, else
 * BADAM_E_INVALID naming the value). */
badam_status shard_layout_of(const llama_model *m, int world, shard_layout *out, badam_error *err);

#endif
