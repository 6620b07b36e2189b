/* metrics.jsonl and the progress line (metrics.h). */
#include "train/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "io/files.h"

/* JSON has no NaN: non-finite numbers are written as null. */
static void put_num(FILE *f, const char *key, double v, int last) {
    if (isfinite(v))
        fprintf(f, "\"%s\": %.9g%s", key, v, last ? "" : ", ");
    else
        fprintf(f, "\"%s\": null%s", key, last ? "" : ", ");
}

badam_status metrics_open(metrics_log *log, const char *out_dir, int keep_until_step,
                          badam_error *err) {
    memset(log, 0, sizeof *log);
    if (io_path_join(log->path, sizeof log->path, out_dir, "metrics.jsonl"))
        return badam_fail(err, BADAM_E_INVALID, "%s: path too long", out_dir);
    if (keep_until_step >= 0 && io_is_file(log->path)) {
        char *text = NULL;
        size_t size = 0;
        badam_status st = io_read_file(log->path, &text, &size, err);
        if (st) return st;
        /* keep lines whose "step" is <= keep_until_step */
        char *kept = malloc(size + 1);
        size_t used = 0;
        for (char *line = text; kept && line && *line;) {
            char *nl = strchr(line, '\n');
            size_t len = nl ? (size_t)(nl - line + 1) : strlen(line);
            const char *k = strstr(line, "\"step\": ");
            long step = k && (!nl || k < nl) ? strtol(k + 8, NULL, 10) : 0;
            if (step <= keep_until_step) memcpy(kept + used, line, len), used += len;
            line = nl ? nl + 1 : NULL;
        }
        st = kept ? io_write_file_atomic(log->path, kept, used, err)
                  : badam_fail(err, BADAM_E_NOMEM, "metrics: out of memory");
        free(kept);
        free(text);
        if (st) return st;
    }
    log->file = fopen(log->path, keep_until_step >= 0 ? "a" : "w");
    if (!log->file) return badam_fail(err, BADAM_E_IO, "%s: cannot open for writing", log->path);
    return BADAM_OK;
}

void metrics_close(metrics_log *log) {
    if (log->file) fclose(log->file);
    log->file = NULL;
}

void metrics_write_step(metrics_log *log, const step_metrics *s) {
    FILE *f = log->file;
    if (!f) return;
    fprintf(f, "{\"step\": %d, ", s->step);
    put_num(f, "loss", s->loss, 0);
    put_num(f, "lr", s->lr, 0);
    put_num(f, "grad_norm", s->grad_norm, 0);
    if (s->block >= 0) fprintf(f, "\"block\": %d, ", s->block);
    if (s->block >= 0 && s->block_name) { /* a JSON string: user prefixes may hold any byte */
        json_t *name = json_string(s->block_name);
        char *text = name ? json_dumps(name, JSON_ENCODE_ANY) : NULL;
        if (text) fprintf(f, "\"block_name\": %s, ", text);
        free(text);
        json_decref(name);
    }
    fprintf(f, "\"tokens\": %ld, \"batch_tokens\": %ld, ", s->tokens, s->batch_tokens);
    put_num(f, "tokens_per_s", s->tokens_per_s, 0);
    put_num(f, "forward_s", s->forward_s, 0);
    put_num(f, "backward_s", s->backward_s, 0);
    put_num(f, "update_s", s->update_s, 0);
    put_num(f, "switch_s", s->switch_s, 0);
    put_num(f, "step_s", s->step_s, 0);
    put_num(f, "elapsed_s", s->elapsed_s, 0);
    fprintf(f, "\"allocs\": %llu, \"rss\": %zu", (unsigned long long)s->allocs, s->rss);
    if (s->stop) fprintf(f, ", \"stop\": \"%s\"", s->stop);
    fprintf(f, "}\n");
    fflush(f);
}

void metrics_write_eval(metrics_log *log, int step, double val_loss, long val_tokens) {
    if (!log->file) return;
    fprintf(log->file, "{\"step\": %d, ", step);
    put_num(log->file, "val_loss", val_loss, 0);
    fprintf(log->file, "\"val_tokens\": %ld}\n", val_tokens);
    fflush(log->file);
}

void metrics_progress(char *buf, size_t size, const step_metrics *s) {
    double left = s->step > 0 ? s->elapsed_s / s->step * (s->max_steps - s->step) : 0;
    int width = 24, filled = s->max_steps ? width * s->step / s->max_steps : 0;
    char bar[32], block[32] = "";
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    if (s->block >= 0) snprintf(block, sizeof block, "  block %d", s->block);
    snprintf(buf, size,
             "[%s] step %d/%d  loss %.4f  lr %.2e%s  %.0f tok/s  mem %.2f GiB  ETA %d:%02d", bar,
             s->step, s->max_steps, s->loss, s->lr, block, s->tokens_per_s,
             s->rss / (double)(1u << 30), (int)left / 60, (int)left % 60);
}
