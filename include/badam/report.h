/* badam report: one self-contained HTML page comparing training runs (the folders `badam train`
 * writes: metrics.jsonl, memory.json). */
#ifndef BADAM_REPORT_H
#define BADAM_REPORT_H

#include <stddef.h>

#include "badam/log.h"
#include "badam/status.h"

typedef struct report_options {
    const char *const *run_dirs; /* the runs, in the order they are drawn */
    int n_runs;
    const char *out_path; /* NULL: run_dirs[0]/report.html */
    const char *title;    /* NULL: "badam report" */
    badam_logger log;     /* warnings (a cut last line of metrics.jsonl); zero: none */
} report_options;

/* Reads every run and writes the HTML file (atomically). The path written is copied into
 * written (size bytes) when written is not NULL. Errors name the run folder, file and line. A
 * metrics.jsonl whose last line is cut (no newline, not JSON: the run was killed while writing
 * it) is read without that line, with a warning through opts->log; a bad line elsewhere is an
 * error. */
badam_status report_write(const report_options *opts, char *written, size_t size, badam_error *err);

#endif
