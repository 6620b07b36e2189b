/* Checkpoints: OUT/checkpoint/ holds the weights as a Hugging Face folder, the method's own parts
 * (its save_parts: optimizer.safetensors, LoRA's adapter/) and trainer_state.json. A checkpoint is
 * written whole into OUT/checkpoint.tmp and then swapped in (io_replace_dir), so the previous
 * good one survives any crash. */
#ifndef BADAM_TRAIN_CHECKPOINT_H
#define BADAM_TRAIN_CHECKPOINT_H

#include <jansson.h>

#include "badam/train.h"
#include "optim/method.h"
#include "optim/trainable.h"

/* trainer_state.json's "format": 2 adds the run record and optimizer tensors by name; a
 * checkpoint of format 1 (or none) is refused. */
#define CHECKPOINT_FORMAT 2

typedef struct checkpoint_state {
    int step;      /* optimizer steps completed */
    int adam_step; /* steps of the current optimizer state */
    int block;     /* active block, -1 when not block-wise */
    batcher_state data;
    json_t *run; /* the run record (run_record.h): borrowed when saving, owned after reading */
} checkpoint_state;

/* meta (may be NULL): what the saved folder declares (llama_model_save_meta). method (may be
 * NULL: no method parts, no optimizer tensors listed) writes its own parts (save_parts). */
badam_status checkpoint_save(const char *out_dir, const char *src_model_dir, const llama_model *m,
                             const method_state *method, const checkpoint_state *state,
                             size_t max_shard_bytes, const llama_folder_meta *meta,
                             badam_error *err);

/* The folder of the newest complete checkpoint in out_dir (checkpoint, else checkpoint.old). */
badam_status checkpoint_find(const char *out_dir, char *dir, size_t size, badam_error *err);
/* Reads trainer_state.json; a checkpoint without the run record (an older format) is refused.
 * Free state->run with json_decref. */
badam_status checkpoint_read_state(const char *dir, checkpoint_state *state, badam_error *err);

/* optimizer.safetensors (checkpoint_write_optimizer, checkpoint_load_optimizer,
 * checkpoint_tensor_key): optim/trainable.h, where the methods that keep optimizer state use it. */

#endif
