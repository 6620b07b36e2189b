/* The run record: every option that shapes a training trajectory, in one table (run_record.c,
 * one row per option: the flag, when it applies, how its value is written, how a difference is
 * told). A checkpoint stores the record in trainer_state.json ("run"); --resume builds the
 * record of the new run and refuses any difference, naming each option and both values.
 * Options that do not change the trajectory (--save-every, --eval-every, --quiet, --out,
 * --shard-size, --recompute, --no-checkpoint, file paths) are not in it. */
#ifndef BADAM_TRAIN_RUN_RECORD_H
#define BADAM_TRAIN_RUN_RECORD_H

#include <jansson.h>

#include "badam/train.h"
#include "optim/method.h"

/* What the record is built from: the options, and what the run resolved from them. */
typedef struct run_facts {
    const train_config *cfg;
    const llama_model *m;
    const train_method_ops *method; /* its name and the option groups it uses */
    const block_partition *part;    /* NULL unless block-wise */
    int switch_every;               /* K as resolved (auto included) */
    float clip;                     /* as resolved (the method's default included) */
    /* SHA-256 of the bytes of --data, --val-data and the model's tokenizer.json ("" when absent) */
    char data_sha256[65], val_sha256[65], tokenizer_sha256[65];
} run_facts;

/* Hashes the files the record names (run_facts_hash_files fills the three sha256 fields). */
badam_status run_facts_hash_files(run_facts *f, badam_error *err);

/* The record: an object of flag -> value (a string, an array of tensor names, or null where
 * the option does not apply to this run). NULL when out of memory. */
json_t *run_record_build(const run_facts *f);

/* BADAM_OK when `now` equals `saved`; otherwise BADAM_E_INVALID with
 * "cannot resume DIR: --switch-every was 3, now 5; ..." (every differing option). */
badam_status run_record_check(const json_t *saved, const json_t *now, const char *dir,
                              badam_error *err);

#endif
