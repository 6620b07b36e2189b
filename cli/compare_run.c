/* badam compare: training and evaluating the runs one after the other (compare.h). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "badam/generate.h"
#include "badam/report.h"
#include "cli.h"
#include "compare.h"

#define MAX_STOP_IDS 16

badam_status compare_evaluate(const compare_job *job, const compare_run *run, eval_result *r,
                              badam_error *err) {
    llama_model *m = NULL;
    badam_tokenizer *tok = NULL;
    data_set *val = NULL;
    const train_config *c = &run->c;
    badam_status st = llama_model_load(run->out_dir, c->dtype, &m, err);
    if (!st && c->method == METHOD_ADAPTER && !c->no_save) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/adapter", run->out_dir);
        st = llama_bottleneck_open(m, dir, err);
    }
    if (!st) st = tokenizer_load(run->out_dir, &tok, err);
    data_options o = {c->format, c->template_name, c->system_prompt, job->eval_seq_len};
    if (!st) st = data_load(job->val_path, tok, &o, &val, err);
    int32_t stops[MAX_STOP_IDS];
    int n_stops = st ? 0 : generate_stop_ids(m, tok, c->template_name, stops, MAX_STOP_IDS);
    eval_options eo = {
        job->eval_batch_size, job->exact_match, job->max_new_tokens, stops, n_stops, NULL, NULL};
    if (!st) st = evaluate(m, tok, val, &eo, r, err);
    data_free(val);
    tokenizer_free(tok);
    llama_model_free(m);
    return st;
}

/* Trains one run and scores it; a failure is recorded in the run, not returned. */
static void run_one(const compare_job *job, compare_run *run, int index) {
    badam_error err = {0};
    printf("\n[%d/%d] %s: fine-tuning with --method %s%s%s...\n", index + 1, job->n_runs, run->name,
           train_method_name(run->c.method), run->settings[0] ? ", " : "", run->settings);
    fflush(stdout);
    memset(&run->rep, 0, sizeof run->rep);
    memset(&run->ev, 0, sizeof run->ev);
    badam_status st = train_run(&run->c, &run->rep, &err);
    if (!st) st = compare_evaluate(job, run, &run->ev, &err);
    if (st) {
        run->failed = 1;
        snprintf(run->error, sizeof run->error, "%s", err.message);
        fprintf(stderr, "badam compare: %s failed: %s\n", run->name, err.message);
    } else {
        printf("  %s: %d steps, %.1f s, final train loss %.4f, held-out loss %.4f", run->name,
               run->rep.steps, run->rep.seconds, run->rep.final_loss, run->ev.loss);
        if (job->exact_match) printf(", exact match %.1f%%", 100.0 * run->ev.em_accuracy);
        printf("\n");
    }
    fflush(stdout);
    if (job->after_run) job->after_run(job->ctx, run);
}

/* OUT/report.html over the runs that trained (and wrote metrics). */
static int write_report(const compare_job *job) {
    const char *dirs[COMPARE_MAX_RUNS];
    int n = 0;
    for (int i = 0; i < job->n_runs; i++)
        if (!job->runs[i].failed) dirs[n++] = job->runs[i].out_dir;
    if (!n) return 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/report.html", job->out_dir);
    report_options ro = {dirs, n, path, job->title, {cli_log_command, "badam compare"}};
    badam_error err = {0};
    if (report_write(&ro, NULL, 0, &err)) {
        fprintf(stderr, "badam compare: %s\n", err.message);
        return -1;
    }
    printf("report: %s\n", path);
    return 0;
}

/* Creates dir and the folders above it that are missing: 0, or -1. */
static int make_dirs(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = '\0';
        struct stat sb;
        if (mkdir(path, 0777) && !(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))) return -1;
        if (!c) return 0;
        *p = c;
    }
}

int compare_execute(compare_job *job) {
    if (make_dirs(job->out_dir)) {
        fprintf(stderr, "badam compare: cannot create %s\n", job->out_dir);
        return -1;
    }
    int failed = 0;
    for (int i = 0; i < job->n_runs; i++) {
        run_one(job, &job->runs[i], i);
        failed += job->runs[i].failed;
    }
    if (compare_write_tables(job) || write_report(job)) return -1;
    return failed;
}
