/* badam compare: several methods fine-tune one base on the same data and budget, each is
 * evaluated on held-out data, and one report is written (compare.json, compare.md,
 * report.html). `badam demo` is a preset of it. Internal to the CLI. */
#ifndef BADAM_CLI_COMPARE_H
#define BADAM_CLI_COMPARE_H

#include <stddef.h>

#include "badam/evaluate.h"
#include "badam/train.h"

enum { COMPARE_MAX_RUNS = 32, COMPARE_NAME_BYTES = 64, COMPARE_SETTINGS_BYTES = 512 };

/* One run of a comparison: a method under a distinct name ("lora", "lora@3e-3"). */
typedef struct compare_run {
    char name[COMPARE_NAME_BYTES];
    char settings[COMPARE_SETTINGS_BYTES]; /* "lr 0.003, lora-rank 16": what differs per run */
    char out_dir[4096];                    /* OUT/<name> */
    train_config c;                        /* its out_dir points at out_dir above */
    train_report rep;
    eval_result ev;
    int failed; /* training or evaluation failed: error holds why */
    char error[1024];
} compare_run;

/* A comparison: the runs and where and how they are evaluated and reported. */
typedef struct compare_job {
    const char *out_dir;  /* OUT: runs in OUT/<name>, compare.json, compare.md, report.html */
    const char *val_path; /* held-out data, evaluated after training */
    const char *title;    /* report title */
    int exact_match;      /* also score greedy generations by exact match */
    int max_new_tokens;   /* exact match: tokens per answer at most */
    int eval_batch_size;
    int eval_seq_len; /* held-out examples truncated to this (the runs' seq_len) */
    compare_run *runs;
    int n_runs;
    /* Called after each run has trained and been evaluated (failed or not); may be NULL. */
    void (*after_run)(void *ctx, const compare_run *run);
    void *ctx;
} compare_job;

/* Trains and evaluates every run in order (a failed run is recorded and the next one starts),
 * prints the table on stdout and writes OUT/compare.json, OUT/compare.md and OUT/report.html
 * (the runs that trained). Returns the number of failed runs, or -1 when the report could not
 * be written (after a message on stderr). */
int compare_execute(compare_job *job);

/* The model of a finished run in dir (with OUT/adapter applied for bottleneck adapters) scored
 * on the held-out data of job: loss, and exact match when the job asks. */
badam_status compare_evaluate(const compare_job *job, const compare_run *run, eval_result *r,
                              badam_error *err);

/* Writes OUT/compare.json and OUT/compare.md and prints the markdown table on stdout. */
int compare_write_tables(const compare_job *job);

#endif
