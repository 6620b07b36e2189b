/* Checkpoints: OUT/checkpoint/ holds the weights as a Hugging Face folder, the LoRA adapter
 * (adapter/), the optimizer state (optimizer.safetensors) and trainer_state.json. A checkpoint is
 * written whole into OUT/checkpoint.tmp and then swapped in (io_replace_dir), so the previous
 * good one survives any crash. */
#ifndef BADAM_TRAIN_CHECKPOINT_H
#define BADAM_TRAIN_CHECKPOINT_H

#include <jansson.h>

#include "badam/train.h"
#include "train/trainable.h"

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

/* meta (may be NULL): what the saved folder declares (llama_model_save_meta). */
badam_status checkpoint_save(const char *out_dir, const char *src_model_dir, const llama_model *m,
                             const trainable_set *ts, const checkpoint_state *state,
                             size_t max_shard_bytes, const llama_folder_meta *meta,
                             badam_error *err);

/* The folder of the newest complete checkpoint in out_dir (checkpoint, else checkpoint.old). */
badam_status checkpoint_find(const char *out_dir, char *dir, size_t size, badam_error *err);
/* Reads trainer_state.json; a checkpoint without the run record (an older format) is refused.
 * Free state->run with json_decref. */
badam_status checkpoint_read_state(const char *dir, checkpoint_state *state, badam_error *err);

/* optimizer.safetensors: the masters and Adam moments of every trainable tensor, under its
 * tensor name (checkpoint_tensor_key). Loading matches by name, dtype and size: each tensor of
 * the set must be in the file and the file must hold nothing else. */
badam_status checkpoint_write_optimizer(const char *dir, const trainable_set *ts, badam_error *err);
badam_status checkpoint_load_optimizer(const char *dir, trainable_set *ts, badam_error *err);
/* "model.layers.0.mlp.up_proj.weight.m": the tensor name, the LoRA part if any, then `what`
 * (master, master_lo, m or v). */
void checkpoint_tensor_key(const trainable *t, const char *what, char *out, size_t size);

#endif
