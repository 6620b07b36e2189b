/* Run metrics: one JSON object per line in OUT/metrics.jsonl, and a live progress line. */
#ifndef BADAM_TRAIN_METRICS_H
#define BADAM_TRAIN_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "badam/status.h"

typedef struct step_metrics {
    int step, max_steps;
    double loss, lr, grad_norm;
    int block; /* -1 when not block-wise */
    const char *block_name;
    long tokens;         /* target tokens this step */
    long batch_tokens;   /* all tokens processed this step (incl. prompt, padding) */
    double tokens_per_s; /* batch_tokens / step seconds */
    double forward_s, backward_s, update_s, switch_s, step_s, elapsed_s;
    size_t rss;
    uint64_t allocs;  /* badam_alloc_in calls the step made (block switch included) */
    const char *stop; /* why the run ends after this step before max_steps ("max_seconds"); NULL */
} step_metrics;

typedef struct metrics_log {
    FILE *file;
    char path[4096];
} metrics_log;

/* Opens OUT/metrics.jsonl. With keep_until_step >= 0 (resume) lines of later steps are dropped
 * first (rewritten atomically); otherwise the file starts empty. */
badam_status metrics_open(metrics_log *log, const char *out_dir, int keep_until_step,
                          badam_error *err);
void metrics_close(metrics_log *log);
void metrics_write_step(metrics_log *log, const step_metrics *s);
void metrics_write_eval(metrics_log *log, int step, double val_loss, long val_tokens);
/* The progress line into buf (size bytes): "[####....] step 12/100  loss 2.345  lr 1.0e-05
 * block 3  1234 tok/s  mem 1.2 GiB  ETA 0:42". */
void metrics_progress(char *buf, size_t size, const step_metrics *s);

#endif
