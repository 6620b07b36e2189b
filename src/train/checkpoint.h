/* Checkpoints: OUT/checkpoint/ holds the weights as a Hugging Face folder, the LoRA adapter
 * (adapter/), the optimizer state (optimizer.safetensors) and trainer_state.json. A checkpoint is
 * written whole into OUT/checkpoint.tmp and then swapped in (io_replace_dir), so the previous
 * good one survives any crash. */
#ifndef BADAM_TRAIN_CHECKPOINT_H
#define BADAM_TRAIN_CHECKPOINT_H

#include "badam/train.h"
#include "train/trainable.h"

typedef struct checkpoint_state {
    int step;      /* optimizer steps completed */
    int adam_step; /* steps of the current optimizer state */
    int block;     /* active block, -1 when not block-wise */
    batcher_state data;
    char method[16];
    uint64_t seed;
} checkpoint_state;

/* meta (may be NULL): what the saved folder declares (llama_model_save_meta). */
badam_status checkpoint_save(const char *out_dir, const char *src_model_dir, const llama_model *m,
                             const trainable_set *ts, const checkpoint_state *state,
                             size_t max_shard_bytes, const llama_folder_meta *meta,
                             badam_error *err);

/* The folder of the newest complete checkpoint in out_dir (checkpoint, else checkpoint.old). */
badam_status checkpoint_find(const char *out_dir, char *dir, size_t size, badam_error *err);
badam_status checkpoint_read_state(const char *dir, checkpoint_state *state, badam_error *err);
/* Restores masters and Adam moments into a trainable set laid out as when it was saved. */
badam_status checkpoint_load_optimizer(const char *dir, trainable_set *ts, badam_error *err);

#endif
