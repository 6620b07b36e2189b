/* badam report: one self-contained HTML page comparing training runs.
 *
 * Charting choice: uPlot (https://github.com/leeoniya/uPlot, MIT, 51 KB minified), vendored from
 * npm into third_party/uplot and embedded into this binary at build time (cmake/embed.cmake), so
 * every report carries its charts' code inline and opens with no network access and no tool
 * installed. Why uPlot rather than the alternatives:
 *   - gnuplot producing SVG would add a run-time dependency (the gnuplot package must be installed
 *     wherever `badam report` runs, and its SVG terminal output varies by version), and its
 *     charts are static: no hover values, no zoom into a long run.
 *   - Chart.js is about four times larger per report (~200 KB) and slows down on the tens of
 *     thousands of points a long run's metrics.jsonl holds; uPlot is built for exactly this kind
 *     of dense time series (linear-time drawing on a canvas), has stepped lines (the active block)
 *     and bars (memory by category), aligned multi-run data (uPlot.join), and a live legend.
 *
 * What the page holds: a summary table written here (static HTML, readable without scripts), the
 * run data as one JSON document, then uPlot and the page script (src/report/report_page.js) that
 * draws the charts from that JSON. */
#include "badam/report.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "io/files.h"
#include "io/json_get.h"
#include "report_assets.h"

/* ---- a growable string ---- */

typedef struct strbuf {
    char *data;
    size_t len, cap;
    int failed; /* an allocation failed; the contents are incomplete */
} strbuf;

static void sb_reserve(strbuf *sb, size_t extra) {
    if (sb->failed || sb->len + extra + 1 <= sb->cap) return;
    size_t cap = sb->cap ? sb->cap : 4096;
    while (cap < sb->len + extra + 1) cap *= 2;
    char *p = realloc(sb->data, cap);
    if (!p) {
        sb->failed = 1;
        return;
    }
    sb->data = p;
    sb->cap = cap;
}

static void sb_put(strbuf *sb, const char *s, size_t n) {
    sb_reserve(sb, n);
    if (sb->failed) return;
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

static void sb_puts(strbuf *sb, const char *s) {
    sb_put(sb, s, strlen(s));
}

static void sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sb_reserve(sb, (size_t)n);
    if (sb->failed) return;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

/* Text as HTML character data or attribute value. */
static void sb_html(strbuf *sb, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<':
            sb_puts(sb, "&lt;");
            break;
        case '>':
            sb_puts(sb, "&gt;");
            break;
        case '&':
            sb_puts(sb, "&amp;");
            break;
        case '"':
            sb_puts(sb, "&quot;");
            break;
        case '\'':
            sb_puts(sb, "&#39;");
            break;
        default:
            sb_put(sb, s, 1);
        }
    }
}

/* JSON text inside <script>: every '<' becomes \u003c (it only occurs inside JSON strings), so
 * no run name or block name can close the script element. */
static void sb_script_json(strbuf *sb, const char *json) {
    for (const char *s = json; *s; s++) {
        if (*s == '<')
            sb_puts(sb, "\\u003c");
        else
            sb_put(sb, s, 1);
    }
}

/* ---- one run ---- */

typedef struct report_run {
    cJSON *data; /* the run as the page script reads it (owned) */
    char name[256];
    char method[64];
    long steps, last_step;
    double tokens;     /* trained (target) tokens, summed over steps */
    double final_loss; /* NAN when unknown */
    double final_val;  /* last validation loss, NAN when none */
    double best_val;   /* lowest validation loss, NAN when none */
    double elapsed_s;  /* elapsed_s of the last step, NAN when unknown */
    double mean_tps;   /* mean tokens_per_s over steps, NAN when unknown */
    double peak_rss;   /* memory.json peak_rss, NAN when unknown */
    double predicted;  /* memory.json predicted.total, NAN when unknown */
    double params, trainable;
    int has_memory;
} report_run;

/* A number from a metrics line: JSON null (a non-finite value when written) or absent -> null. */
static cJSON *number_or_null(const cJSON *obj, const char *field) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    return cJSON_IsNumber(v) ? cJSON_CreateNumber(v->valuedouble) : cJSON_CreateNull();
}

static badam_status field_type_error(badam_error *err, const char *where, const char *field,
                                     const char *want) {
    return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' must be %s", where, field, want);
}

/* Checks that `field`, when present, is a number or null (the writer's non-finite value). */
static badam_status check_number(const cJSON *obj, const char *field, int required,
                                 const char *where, badam_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!v) {
        if (required)
            return badam_fail(err, BADAM_E_FORMAT, "%s: missing field '%s'", where, field);
        return BADAM_OK;
    }
    if (!cJSON_IsNumber(v) && !cJSON_IsNull(v))
        return field_type_error(err, where, field, "a number");
    return BADAM_OK;
}

/* The step and loss arrays of the page data, and the summary sums, from metrics.jsonl. */
static badam_status read_metrics(const char *dir, report_run *run, badam_error *err) {
    char path[4096], where[4200];
    if (io_path_join(path, sizeof path, dir, "metrics.jsonl"))
        return badam_fail(err, BADAM_E_INVALID, "%s: path too long", dir);
    char *text = NULL;
    size_t size = 0;
    badam_status st = io_read_file(path, &text, &size, err);
    if (st) return st;

    static const char *const step_fields[] = {"step",         "loss",      "lr", "grad_norm",
                                              "tokens_per_s", "elapsed_s", "rss"};
    enum { N_STEP_FIELDS = sizeof step_fields / sizeof step_fields[0] };
    cJSON *arrays[N_STEP_FIELDS];
    for (int f = 0; f < N_STEP_FIELDS; f++)
        arrays[f] = cJSON_AddArrayToObject(run->data, step_fields[f]);
    cJSON *tokens = cJSON_AddArrayToObject(run->data, "tokens");
    cJSON *block = cJSON_CreateArray(), *block_names = cJSON_CreateObject();
    cJSON *eval_step = cJSON_AddArrayToObject(run->data, "eval_step");
    cJSON *val_loss = cJSON_AddArrayToObject(run->data, "val_loss");
    cJSON *eval_tokens = cJSON_AddArrayToObject(run->data, "eval_tokens");
    int any_block = 0;
    double tps_sum = 0;
    long tps_n = 0;

    long line_no = 0;
    for (char *line = text; st == BADAM_OK && line < text + size;) {
        char *end = memchr(line, '\n', (size_t)(text + size - line));
        size_t len = end ? (size_t)(end - line) : (size_t)(text + size - line);
        char *next = end ? end + 1 : text + size;
        line_no++;
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
        if (k == len) { /* blank line */
            line = next;
            continue;
        }
        snprintf(where, sizeof where, "%s:%ld", path, line_no);
        cJSON *obj = NULL;
        st = io_parse_json(line, len, where, &obj, err);
        if (st) break;
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(obj, "step");
        const cJSON *blk = cJSON_GetObjectItemCaseSensitive(obj, "block");
        long long step_no = 0, block_no = 0;
        if (!cJSON_IsObject(obj)) {
            st = badam_fail(err, BADAM_E_FORMAT, "%s: not a JSON object", where);
        } else if (!json_int_in_range(step, 0, (1LL << 53), &step_no)) {
            st = badam_fail(err, BADAM_E_FORMAT, "%s: field 'step' must be a whole number", where);
        } else if (cJSON_IsNumber(blk) && !json_int_in_range(blk, 0, 1 << 30, &block_no)) {
            st = badam_fail(err, BADAM_E_FORMAT, "%s: field 'block' must be a block index", where);
        } else if (cJSON_GetObjectItemCaseSensitive(obj, "val_loss")) {
            /* An evaluation line: step, val_loss, val_tokens. */
            st = check_number(obj, "val_loss", 1, where, err);
            if (!st) {
                cJSON_AddItemToArray(eval_step, cJSON_CreateNumber(step->valuedouble));
                cJSON *v = number_or_null(obj, "val_loss");
                if (cJSON_IsNumber(v)) {
                    run->final_val = v->valuedouble;
                    if (isnan(run->best_val) || v->valuedouble < run->best_val)
                        run->best_val = v->valuedouble;
                }
                cJSON_AddItemToArray(val_loss, v);
                cJSON_AddItemToArray(eval_tokens, cJSON_CreateNumber(run->tokens));
            }
        } else {
            /* A step line. */
            static const char *const checked[] = {
                "loss", "lr", "grad_norm", "tokens", "tokens_per_s", "elapsed_s", "rss", "block"};
            for (size_t c = 0; c < sizeof checked / sizeof checked[0] && !st; c++)
                st = check_number(obj, checked[c], c == 0, where, err);
            const cJSON *bn = cJSON_GetObjectItemCaseSensitive(obj, "block_name");
            if (!st && bn && !cJSON_IsString(bn))
                st = field_type_error(err, where, "block_name", "a string");
            if (!st) {
                for (int f = 0; f < N_STEP_FIELDS; f++)
                    cJSON_AddItemToArray(arrays[f], number_or_null(obj, step_fields[f]));
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "tokens");
                if (cJSON_IsNumber(t)) run->tokens += t->valuedouble;
                cJSON_AddItemToArray(tokens, cJSON_CreateNumber(run->tokens));
                const cJSON *b = cJSON_GetObjectItemCaseSensitive(obj, "block");
                cJSON_AddItemToArray(block, number_or_null(obj, "block"));
                if (cJSON_IsNumber(b)) {
                    any_block = 1;
                    char key[32];
                    snprintf(key, sizeof key, "%lld", block_no);
                    if (cJSON_IsString(bn) && !cJSON_GetObjectItemCaseSensitive(block_names, key))
                        cJSON_AddStringToObject(block_names, key, bn->valuestring);
                }
                const cJSON *loss = cJSON_GetObjectItemCaseSensitive(obj, "loss");
                run->final_loss = cJSON_IsNumber(loss) ? loss->valuedouble : NAN;
                const cJSON *el = cJSON_GetObjectItemCaseSensitive(obj, "elapsed_s");
                if (cJSON_IsNumber(el)) run->elapsed_s = el->valuedouble;
                const cJSON *tps = cJSON_GetObjectItemCaseSensitive(obj, "tokens_per_s");
                if (cJSON_IsNumber(tps)) {
                    tps_sum += tps->valuedouble;
                    tps_n++;
                }
                run->steps++;
                run->last_step = (long)step_no;
            }
        }
        cJSON_Delete(obj);
        line = next;
    }
    free(text);
    if (!st && run->steps == 0)
        st = badam_fail(err, BADAM_E_FORMAT, "%s: no training steps (the file is empty)", path);
    if (any_block) {
        cJSON_AddItemToObject(run->data, "block", block);
        cJSON_AddItemToObject(run->data, "block_names", block_names);
    } else {
        cJSON_Delete(block);
        cJSON_Delete(block_names);
        cJSON_AddNullToObject(run->data, "block");
    }
    run->mean_tps = tps_n ? tps_sum / (double)tps_n : NAN;
    return st;
}

static double number_field(const cJSON *obj, const char *field) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* memory.json (optional: a run that did not finish has none): copied into the page data. */
static badam_status read_memory(const char *dir, report_run *run, badam_error *err) {
    char path[4096];
    if (io_path_join(path, sizeof path, dir, "memory.json"))
        return badam_fail(err, BADAM_E_INVALID, "%s: path too long", dir);
    if (!io_is_file(path)) {
        cJSON_AddNullToObject(run->data, "memory");
        return BADAM_OK;
    }
    cJSON *mem = NULL;
    badam_status st = io_read_json(path, &mem, err);
    if (st) return st;
    if (!cJSON_IsObject(mem)) {
        cJSON_Delete(mem);
        return badam_fail(err, BADAM_E_FORMAT, "%s: not a JSON object", path);
    }
    static const char *const objects[] = {"predicted", "measured_peak"};
    for (int i = 0; i < 2; i++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(mem, objects[i]);
        if (o && !cJSON_IsObject(o)) {
            cJSON_Delete(mem);
            return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' must be an object", path,
                              objects[i]);
        }
    }
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(mem, "method");
    if (cJSON_IsString(method))
        snprintf(run->method, sizeof run->method, "%s", method->valuestring);
    run->peak_rss = number_field(mem, "peak_rss");
    run->predicted = number_field(cJSON_GetObjectItemCaseSensitive(mem, "predicted"), "total");
    run->params = number_field(mem, "params");
    run->trainable = number_field(mem, "trainable_params");
    run->has_memory = 1;
    cJSON_AddItemToObject(run->data, "memory", mem);
    return BADAM_OK;
}

/* The run's label: its folder's last component ("runs/badam/" -> "badam"). */
static void run_label(const char *dir, char *out, size_t size) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t start = n;
    while (start > 0 && dir[start - 1] != '/') start--;
    if (n == start) { /* "/" */
        snprintf(out, size, "%s", dir);
        return;
    }
    snprintf(out, size, "%.*s", (int)(n - start), dir + start);
}

static badam_status read_run(const char *dir, report_run *run, badam_error *err) {
    memset(run, 0, sizeof *run);
    run->final_loss = run->final_val = run->best_val = run->elapsed_s = NAN;
    run->mean_tps = run->peak_rss = run->predicted = run->params = run->trainable = NAN;
    snprintf(run->method, sizeof run->method, "?");
    run_label(dir, run->name, sizeof run->name);
    if (!io_is_dir(dir))
        return badam_fail(err, BADAM_E_IO, "%s: no such run folder (give the --out of badam train)",
                          dir);
    run->data = cJSON_CreateObject();
    if (!run->data) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", dir);
    badam_status st = read_metrics(dir, run, err);
    if (!st) st = read_memory(dir, run, err);
    return st;
}

/* ---- the page ---- */

static void cell_number(strbuf *sb, double v, const char *fmt) {
    sb_puts(sb, "<td>");
    if (isnan(v))
        sb_puts(sb, "-");
    else
        sb_printf(sb, fmt, v);
    sb_puts(sb, "</td>");
}

static void cell_mib(strbuf *sb, double bytes) {
    sb_puts(sb, "<td>");
    if (isnan(bytes))
        sb_puts(sb, "-");
    else
        sb_printf(sb, "%.1f MiB", bytes / (1024.0 * 1024.0));
    sb_puts(sb, "</td>");
}

/* Same palette as report_page.js, so the table's swatches name the charts' colors. */
static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                      "#9467bd", "#8c564b", "#e377c2", "#17becf"};

static void write_summary(strbuf *sb, const report_run *runs, int n) {
    sb_puts(sb, "<table class=\"summary\" id=\"summary\">\n<tr><th>run</th><th>method</th>"
                "<th>steps</th><th>trained tokens</th><th>final loss</th><th>val loss</th>"
                "<th>best val loss</th><th>peak RSS</th><th>predicted</th><th>time</th>"
                "<th>mean tokens/s</th><th>trainable / params</th></tr>\n");
    for (int i = 0; i < n; i++) {
        const report_run *r = &runs[i];
        sb_printf(sb, "<tr><td><span class=\"swatch\" style=\"background:%s\"></span>",
                  palette[i % (int)(sizeof palette / sizeof palette[0])]);
        sb_html(sb, r->name);
        sb_puts(sb, "</td><td>");
        sb_html(sb, r->method);
        sb_printf(sb, "</td><td>%ld</td>", r->last_step);
        cell_number(sb, r->tokens, "%.0f");
        cell_number(sb, r->final_loss, "%.4f");
        cell_number(sb, r->final_val, "%.4f");
        cell_number(sb, r->best_val, "%.4f");
        cell_mib(sb, r->peak_rss);
        cell_mib(sb, r->predicted);
        cell_number(sb, r->elapsed_s, "%.1f s");
        cell_number(sb, r->mean_tps, "%.0f");
        if (isnan(r->trainable) || isnan(r->params) || r->params <= 0)
            sb_puts(sb, "<td>-</td>");
        else
            sb_printf(sb, "<td>%.0f / %.0f (%.1f%%)</td>", r->trainable, r->params,
                      100.0 * r->trainable / r->params);
        sb_puts(sb, "</tr>\n");
    }
    sb_puts(sb, "</table>\n");
}

/* Predicted and measured bytes by category for every run, as numbers (the bars show the shape). */
static void write_memory_table(strbuf *sb, const report_run *runs, int n) {
    static const char *const cats[] = {"weights",     "master",    "gradients", "optimizer",
                                       "activations", "workspace", "total"};
    sb_puts(sb, "<table class=\"summary\" id=\"memory\">\n<tr><th>MiB</th>");
    for (int i = 0; i < n; i++) {
        sb_puts(sb, "<th>");
        sb_html(sb, runs[i].name);
        sb_puts(sb, " predicted</th><th>measured</th>");
    }
    sb_puts(sb, "</tr>\n");
    for (size_t c = 0; c < sizeof cats / sizeof cats[0]; c++) {
        int total = !strcmp(cats[c], "total");
        sb_printf(sb, "<tr><td>%s</td>", total ? "total (measured: peak RSS)" : cats[c]);
        for (int i = 0; i < n; i++) {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(runs[i].data, "memory");
            const cJSON *pred = cJSON_GetObjectItemCaseSensitive(m, "predicted");
            const cJSON *meas = cJSON_GetObjectItemCaseSensitive(m, "measured_peak");
            cell_mib(sb, number_field(pred, cats[c]));
            cell_mib(sb, total ? number_field(m, "peak_rss") : number_field(meas, cats[c]));
        }
        sb_puts(sb, "</tr>\n");
    }
    sb_puts(sb, "</table>\n");
}

static void write_page(strbuf *sb, const char *title, const report_run *runs, int n,
                       const char *data_json) {
    sb_puts(sb, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<meta name=\"generator\" content=\"badam report\">\n<title>");
    sb_html(sb, title);
    sb_puts(sb, "</title>\n<style>\n");
    sb_put(sb, (const char *)uplot_css, uplot_css_len);
    sb_puts(sb, "\n");
    sb_put(sb, (const char *)report_page_css, report_page_css_len);
    sb_puts(sb, "</style>\n</head>\n<body>\n<h1>");
    sb_html(sb, title);
    sb_printf(sb, "</h1>\n<p class=\"sub\">%d run%s:", n, n == 1 ? "" : "s");
    for (int i = 0; i < n; i++) {
        sb_puts(sb, i ? ", " : " ");
        sb_html(sb, runs[i].name);
        sb_puts(sb, " (");
        sb_html(sb, runs[i].method);
        sb_puts(sb, ")");
    }
    sb_puts(sb, ". Hover a chart for values; drag to zoom, double-click to reset.</p>\n"
                "<h2>Summary</h2>\n");
    write_summary(sb, runs, n);
    sb_puts(sb, "<h2>Training</h2>\n<div class=\"grid\">\n");
    static const char *const charts[] = {"chart-loss-step", "chart-loss-tokens", "chart-lr",
                                         "chart-block",     "chart-throughput",  "chart-grad-norm"};
    for (size_t i = 0; i < sizeof charts / sizeof charts[0]; i++)
        sb_printf(sb, "<div id=\"%s\"></div>\n", charts[i]);
    sb_puts(sb, "</div>\n<h2>Memory by category: predicted (light) vs measured peak (dark)</h2>\n"
                "<div class=\"grid\">\n");
    for (int i = 0; i < n; i++) sb_printf(sb, "<div id=\"chart-memory-%d\"></div>\n", i);
    sb_puts(sb, "</div>\n");
    write_memory_table(sb, runs, n);
    sb_puts(sb, "<script id=\"badam-data\" type=\"application/json\">");
    sb_script_json(sb, data_json);
    sb_puts(sb, "</script>\n<script>\n");
    sb_put(sb, (const char *)uplot_js, uplot_js_len);
    sb_puts(sb, "\n</script>\n<script>\n");
    sb_put(sb, (const char *)report_page_js, report_page_js_len);
    sb_puts(sb, "</script>\n</body>\n</html>\n");
}

/* Creates the folder the output file goes into, when it is missing. */
static badam_status make_parent_dir(const char *path, badam_error *err) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return BADAM_OK;
    *slash = '\0';
    return io_is_dir(dir) ? BADAM_OK : io_make_dir(dir, err);
}

badam_status report_write(const report_options *opts, char *written, size_t size,
                          badam_error *err) {
    if (!opts || opts->n_runs < 1 || !opts->run_dirs)
        return badam_fail(err, BADAM_E_INVALID, "report: no run folder given");
    const char *title = opts->title && *opts->title ? opts->title : "badam report";
    char out[4096];
    if (opts->out_path)
        snprintf(out, sizeof out, "%s", opts->out_path);
    else if (io_path_join(out, sizeof out, opts->run_dirs[0], "report.html"))
        return badam_fail(err, BADAM_E_INVALID, "%s: path too long", opts->run_dirs[0]);

    report_run *runs = calloc((size_t)opts->n_runs, sizeof *runs);
    cJSON *root = cJSON_CreateObject();
    cJSON *list = root ? cJSON_AddArrayToObject(root, "runs") : NULL;
    if (!runs || !list) {
        free(runs);
        cJSON_Delete(root);
        return badam_fail(err, BADAM_E_NOMEM, "report: out of memory");
    }
    badam_status st = BADAM_OK;
    for (int i = 0; i < opts->n_runs && !st; i++) {
        report_run *r = &runs[i];
        st = read_run(opts->run_dirs[i], r, err);
        if (st) {
            cJSON_Delete(r->data);
            r->data = NULL;
            break;
        }
        /* Two folders with the same last component ("a/run", "b/run") get "run", "run #2". */
        for (int j = 0; j < i; j++) {
            if (!strcmp(runs[j].name, r->name)) {
                size_t len = strlen(r->name);
                if (len > sizeof r->name - 8) len = sizeof r->name - 8;
                snprintf(r->name + len, sizeof r->name - len, " #%d", i + 1);
                break;
            }
        }
        cJSON_AddStringToObject(r->data, "name", r->name);
        cJSON_AddStringToObject(r->data, "dir", opts->run_dirs[i]);
        cJSON_AddStringToObject(r->data, "method", r->method);
        cJSON_AddItemToArray(list, r->data); /* list owns it now */
    }
    if (!st) {
        char *json = cJSON_PrintUnformatted(root);
        strbuf sb = {0};
        if (json) write_page(&sb, title, runs, opts->n_runs, json);
        if (!json || sb.failed)
            st = badam_fail(err, BADAM_E_NOMEM, "%s: out of memory building the report", out);
        else
            st = make_parent_dir(out, err);
        if (!st) st = io_write_file_atomic(out, sb.data, sb.len, err);
        free(json);
        free(sb.data);
    }
    cJSON_Delete(root);
    free(runs);
    if (!st && written) snprintf(written, size, "%s", out);
    return st;
}
