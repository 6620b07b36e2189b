/* Data parallel: the model of a rank. Rank 0 (and a single process) loads the folder (config.json
 * and the weights); every other rank builds the same model from rank 0's parsed config.json and
 * allocates its weights without reading any weight file, since rank 0 broadcasts its weights
 * before training (trainer.c, broadcast_weights). Ranks other than 0 thus need no
 * model.safetensors (nor config.json: a readable one is only the value the broadcast of rank 0's
 * replaces); their tokenizer and data still come from their own files (rank_check.h compares
 * their hashes with rank 0's). */
#ifndef BADAM_TRAIN_RANK_MODEL_H
#define BADAM_TRAIN_RANK_MODEL_H

#include "badam/comm.h"
#include "badam/llama.h"

/* Collective when comm has more than one rank (every rank calls it). dir: the model folder (read
 * on rank 0 only); dtype: the weights' storage type. *out: the model (rank 0: loaded; others:
 * rank 0's shapes, weights zero until the broadcast). Errors: rank 0's loading errors (naming the
 * file and field; the other ranks then fail in the next collective or are ended by MPI_Abort),
 * the broadcast's, and out of memory. */
badam_status rank_model_load(const badam_comm *comm, const char *dir, badam_dtype dtype,
                             llama_model **out, badam_error *err);

#endif
