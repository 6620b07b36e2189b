/* badam compare: the results table as OUT/compare.json, OUT/compare.md and on stdout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/json.h"
#include "cli.h"
#include "compare.h"

/* Bytes the run allocated at its peak, summed over the memory categories (the same sum that
 * `badam train` prints as "allocated peak"). */
static size_t measured_bytes(const train_report *r) {
    size_t sum = 0;
    for (int c = 1; c < 8; c++) sum += r->measured[c];
    return sum;
}

static json_t *run_json(const compare_job *job, const compare_run *r) {
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "method", json_string(train_method_name(r->c.method)));
    json_object_set_new(o, "settings", json_string(r->settings));
    char lr[32]; /* the float as given, not its double expansion */
    snprintf(lr, sizeof lr, "%g", r->c.lr);
    json_object_set_new(o, "lr", io_json_real(strtod(lr, NULL)));
    json_object_set_new(o, "dir", json_string(r->out_dir));
    json_object_set_new(o, "status", json_string(r->failed ? "failed" : "ok"));
    if (r->failed) {
        json_object_set_new(o, "error", json_string(r->error));
        return o;
    }
    const train_report *t = &r->rep;
    json_object_set_new(o, "steps", json_integer(t->steps));
    json_object_set_new(o, "stop", json_string(t->time_limited ? "max_seconds" : "max_steps"));
    json_object_set_new(o, "final_train_loss", io_json_real(t->final_loss));
    json_object_set_new(o, "val_loss", io_json_real(r->ev.loss));
    json_object_set_new(o, "val_tokens", json_integer((json_int_t)r->ev.n_tokens));
    json_object_set_new(o, "exact_match",
                        job->exact_match ? io_json_real(r->ev.em_accuracy) : json_null());
    json_object_set_new(o, "tokens", json_integer((json_int_t)t->tokens));
    json_object_set_new(o, "seconds", io_json_real(t->seconds));
    json_object_set_new(o, "tokens_per_s",
                        io_json_real(t->seconds > 0 ? t->tokens / t->seconds : 0));
    json_object_set_new(o, "memory_predicted", json_integer((json_int_t)t->predicted.total));
    json_object_set_new(o, "memory_measured", json_integer((json_int_t)measured_bytes(t)));
    json_object_set_new(o, "peak_rss", json_integer((json_int_t)t->peak_rss));
    return o;
}

static int write_json(const compare_job *job, const char *path) {
    json_t *root = json_object(), *runs = json_array();
    json_object_set_new(root, "val_data", json_string(job->val_path));
    json_object_set_new(root, "exact_match", json_boolean(job->exact_match));
    for (int i = 0; i < job->n_runs; i++) json_array_append_new(runs, run_json(job, &job->runs[i]));
    json_object_set_new(root, "runs", runs);
    char *s = io_json_dump(root, 2, NULL);
    json_decref(root);
    FILE *f = s ? fopen(path, "w") : NULL;
    int ok = f && fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f)) ok = 0;
    free(s);
    if (!ok) fprintf(stderr, "badam compare: cannot write %s\n", path);
    return ok ? 0 : -1;
}

/* One markdown table row for the run (a failed run: its error). */
static void md_row(FILE *f, const compare_job *job, const compare_run *r) {
    fprintf(f, "| %s | %s", r->name, r->settings[0] ? r->settings : "-");
    if (!r->failed && r->rep.time_limited) /* why it has fewer steps than the others */
        fprintf(f, "; stopped by --max-seconds after step %d", r->rep.steps);
    fputs(" |", f);
    if (r->failed) { /* the error on one line, without the table's separator */
        fputs(" failed: ", f);
        for (const char *c = r->error; *c; c++) fputc(*c == '|' || *c == '\n' ? ' ' : *c, f);
        fputs(" | | | | | | | |\n", f);
        return;
    }
    const train_report *t = &r->rep;
    char em[32] = "-";
    if (job->exact_match) snprintf(em, sizeof em, "%.1f%%", 100.0 * r->ev.em_accuracy);
    fprintf(f, " %.4f | %.4f | %s | %zu | %.1f | %.0f | %.2f | %.2f |\n", t->final_loss, r->ev.loss,
            em, t->tokens, t->seconds, t->seconds > 0 ? t->tokens / t->seconds : 0,
            t->predicted.total / 1048576.0, measured_bytes(t) / 1048576.0);
}

static void md_table(FILE *f, const compare_job *job) {
    fprintf(f, "| method | settings | final train loss | val loss | exact match | tokens | "
               "seconds | tokens/s | predicted MiB | measured peak MiB |\n");
    fprintf(f, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int i = 0; i < job->n_runs; i++) md_row(f, job, &job->runs[i]);
}

int compare_write_tables(const compare_job *job) {
    char path[4200];
    snprintf(path, sizeof path, "%s/compare.json", job->out_dir);
    if (write_json(job, path)) return -1;
    snprintf(path, sizeof path, "%s/compare.md", job->out_dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "badam compare: cannot write %s\n", path);
        return -1;
    }
    fprintf(f,
            "# %s\n\nHeld-out data: %s. Tokens: processed in training (padded batches); "
            "measured peak: bytes allocated at the peak, by the memory categories.\n\n",
            job->title, job->val_path);
    md_table(f, job);
    int bad = fclose(f) != 0;
    printf("\n");
    md_table(stdout, job);
    printf("\nwrote %s/compare.json, %s/compare.md\n", job->out_dir, job->out_dir);
    if (bad) fprintf(stderr, "badam compare: cannot write %s\n", path);
    return bad ? -1 : 0;
}
