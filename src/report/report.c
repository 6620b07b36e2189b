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

#include <jansson.h>

#include "io/files.h"
#include "io/json_get.h"
#include "io/json_write.h"
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
    json_t *data; /* the run as the page script reads it (owned) */
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

/* A count kept as a double: an integer while it is whole (as metrics.jsonl writes it). */
static json_t *whole_or_real(double x) {
    return x == floor(x) && fabs(x) <= 9007199254740992.0 ? json_integer((json_int_t)x)
                                                          : io_json_real(x);
}

/* A number from a metrics line: JSON null (a non-finite value when written) or absent -> null. */
static json_t *number_or_null(const json_t *obj, const char *field) {
    const json_t *v = json_object_get(obj, field);
    return json_is_number(v) ? json_copy((json_t *)v) : json_null();
}

static badam_status field_type_error(badam_error *err, const char *where, const char *field,
                                     const char *want) {
    return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' must be %s", where, field, want);
}

/* Checks that `field`, when present, is a number or null (the writer's non-finite value). */
static badam_status check_number(const json_t *obj, const char *field, int required,
                                 const char *where, badam_error *err) {
    const json_t *v = json_object_get(obj, field);
    if (!v) {
        if (required)
            return badam_fail(err, BADAM_E_FORMAT, "%s: missing field '%s'", where, field);
        return BADAM_OK;
    }
    if (!json_is_number(v) && !json_is_null(v))
        return field_type_error(err, where, field, "a number");
    return BADAM_OK;
}

static const char *const STEP_FIELDS[] = {"step",         "loss",      "lr", "grad_norm",
                                          "tokens_per_s", "elapsed_s", "rss"};
enum { N_STEP_FIELDS = sizeof STEP_FIELDS / sizeof STEP_FIELDS[0] };

/* What read_metrics gathers line by line: the page data's arrays and the summary sums. */
typedef struct metrics_acc {
    report_run *run;
    json_t *arrays[N_STEP_FIELDS];                       /* owned by run->data */
    json_t *tokens, *eval_step, *val_loss, *eval_tokens; /* owned by run->data */
    json_t *block, *block_names;                         /* owned here until the end */
    int any_block;
    double tps_sum;
    long tps_n;
} metrics_acc;

/* An evaluation line: step, val_loss, val_tokens. */
static badam_status add_eval_line(metrics_acc *m, const json_t *obj, long long step_v,
                                  const char *where, badam_error *err) {
    badam_status st = check_number(obj, "val_loss", 1, where, err);
    if (st) return st;
    report_run *run = m->run;
    json_array_append_new(m->eval_step, json_integer(step_v));
    json_t *v = number_or_null(obj, "val_loss");
    if (json_is_number(v)) {
        run->final_val = json_number_value(v);
        if (isnan(run->best_val) || json_number_value(v) < run->best_val)
            run->best_val = json_number_value(v);
    }
    json_array_append_new(m->val_loss, v);
    json_array_append_new(m->eval_tokens, whole_or_real(run->tokens));
    return BADAM_OK;
}

/* The block index of a step line, and the block's name the first time it is given. */
static void add_block(metrics_acc *m, const json_t *obj) {
    const json_t *b = json_object_get(obj, "block"), *bn = json_object_get(obj, "block_name");
    json_array_append_new(m->block, number_or_null(obj, "block"));
    long long b_v;
    if (json_is_number(b)) m->any_block = 1;
    if (json_int_in_range(b, -(1LL << 53), 1LL << 53, &b_v)) {
        char key[32];
        snprintf(key, sizeof key, "%lld", b_v);
        if (json_is_string(bn) && !json_object_get(m->block_names, key))
            json_object_set_new(m->block_names, key, json_copy((json_t *)bn));
    }
}

/* A step line: its fields checked, then appended to the arrays and summed. */
static badam_status add_step_line(metrics_acc *m, const json_t *obj, long long step_v,
                                  const char *where, badam_error *err) {
    static const char *const checked[] = {"loss",         "lr",        "grad_norm", "tokens",
                                          "tokens_per_s", "elapsed_s", "rss",       "block"};
    badam_status st = BADAM_OK;
    for (size_t c = 0; c < sizeof checked / sizeof checked[0] && !st; c++)
        st = check_number(obj, checked[c], c == 0, where, err);
    const json_t *bn = json_object_get(obj, "block_name");
    if (!st && bn && !json_is_string(bn))
        st = field_type_error(err, where, "block_name", "a string");
    if (st) return st;
    report_run *run = m->run;
    for (int f = 0; f < N_STEP_FIELDS; f++)
        json_array_append_new(m->arrays[f], number_or_null(obj, STEP_FIELDS[f]));
    const json_t *t = json_object_get(obj, "tokens");
    if (json_is_number(t)) run->tokens += json_number_value(t);
    json_array_append_new(m->tokens, whole_or_real(run->tokens));
    add_block(m, obj);
    const json_t *loss = json_object_get(obj, "loss");
    run->final_loss = json_is_number(loss) ? json_number_value(loss) : NAN;
    const json_t *el = json_object_get(obj, "elapsed_s");
    if (json_is_number(el)) run->elapsed_s = json_number_value(el);
    const json_t *tps = json_object_get(obj, "tokens_per_s");
    if (json_is_number(tps)) {
        m->tps_sum += json_number_value(tps);
        m->tps_n++;
    }
    run->steps++;
    run->last_step = (long)step_v;
    return BADAM_OK;
}

/* One non-blank line of metrics.jsonl (where: "path:line"). */
static badam_status add_line(metrics_acc *m, const char *line, size_t len, const char *where,
                             badam_error *err) {
    json_t *obj = NULL;
    badam_status st = io_parse_json(line, len, where, &obj, err);
    if (st) return st;
    const json_t *step = json_object_get(obj, "step");
    const json_t *blk = json_object_get(obj, "block");
    long long step_v = 0, block_v = 0;
    if (!json_is_object(obj))
        st = badam_fail(err, BADAM_E_FORMAT, "%s: not a JSON object", where);
    else if (!json_int_in_range(step, 0, 1LL << 53, &step_v))
        st = badam_fail(err, BADAM_E_FORMAT, "%s: field 'step' must be a whole number", where);
    else if (json_is_number(blk) && !json_int_in_range(blk, 0, 1 << 30, &block_v))
        st = badam_fail(err, BADAM_E_FORMAT, "%s: field 'block' must be a block index", where);
    else if (json_object_get(obj, "val_loss"))
        st = add_eval_line(m, obj, step_v, where, err);
    else
        st = add_step_line(m, obj, step_v, where, err);
    json_decref(obj);
    return st;
}

/* 1 when line (len bytes) is the file's last and has no newline and is not JSON: a line the
 * run was writing when it was killed, which the reader skips (with a warning). A cut line
 * elsewhere is followed by a newline and stays an error. */
static int cut_last_line(const char *line, size_t len, const char *end) {
    if (end) return 0;
    json_error_t jerr;
    json_t *obj = json_loadb(line, len, 0, &jerr);
    json_decref(obj);
    return obj == NULL;
}

/* The step and loss arrays of the page data, and the summary sums, from metrics.jsonl; a cut
 * last line (cut_last_line) is skipped with a warning through log. */
static badam_status read_metrics(const char *dir, report_run *run, const badam_logger *log,
                                 badam_error *err) {
    char path[4096], where[4200];
    if (io_path_join(path, sizeof path, dir, "metrics.jsonl"))
        return badam_fail(err, BADAM_E_INVALID, "%s: path too long", dir);
    char *text = NULL;
    size_t size = 0;
    badam_status st = io_read_file(path, &text, &size, err);
    if (st) return st;

    metrics_acc m = {.run = run};
    for (int f = 0; f < N_STEP_FIELDS; f++)
        m.arrays[f] = io_json_add_array(run->data, STEP_FIELDS[f]);
    m.tokens = io_json_add_array(run->data, "tokens");
    m.block = json_array(), m.block_names = json_object();
    m.eval_step = io_json_add_array(run->data, "eval_step");
    m.val_loss = io_json_add_array(run->data, "val_loss");
    m.eval_tokens = io_json_add_array(run->data, "eval_tokens");

    long line_no = 0;
    for (char *line = text; st == BADAM_OK && line < text + size;) {
        char *end = memchr(line, '\n', (size_t)(text + size - line));
        size_t len = end ? (size_t)(end - line) : (size_t)(text + size - line);
        char *next = end ? end + 1 : text + size;
        line_no++;
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
        if (k < len) { /* not a blank line */
            snprintf(where, sizeof where, "%s:%ld", path, line_no);
            if (cut_last_line(line, len, end))
                badam_logf(log, BADAM_LOG_INFO,
                           "warning: %s: the last line is cut (the run stopped while writing "
                           "it): skipped",
                           where);
            else
                st = add_line(&m, line, len, where, err);
        }
        line = next;
    }
    free(text);
    if (!st && run->steps == 0)
        st = badam_fail(err, BADAM_E_FORMAT, "%s: no training steps (the file is empty)", path);
    if (m.any_block) {
        json_object_set_new(run->data, "block", m.block);
        json_object_set_new(run->data, "block_names", m.block_names);
    } else {
        json_decref(m.block);
        json_decref(m.block_names);
        json_object_set_new(run->data, "block", json_null());
    }
    run->mean_tps = m.tps_n ? m.tps_sum / (double)m.tps_n : NAN;
    return st;
}

static double number_field(const json_t *obj, const char *field) {
    const json_t *v = json_object_get(obj, field);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* memory.json (optional: a run that did not finish has none): copied into the page data. */
static badam_status read_memory(const char *dir, report_run *run, badam_error *err) {
    char path[4096];
    if (io_path_join(path, sizeof path, dir, "memory.json"))
        return badam_fail(err, BADAM_E_INVALID, "%s: path too long", dir);
    if (!io_is_file(path)) {
        json_object_set_new(run->data, "memory", json_null());
        return BADAM_OK;
    }
    json_t *mem = NULL;
    badam_status st = io_read_json(path, &mem, err);
    if (st) return st;
    if (!json_is_object(mem)) {
        json_decref(mem);
        return badam_fail(err, BADAM_E_FORMAT, "%s: not a JSON object", path);
    }
    static const char *const objects[] = {"predicted", "measured_peak"};
    for (int i = 0; i < 2; i++) {
        const json_t *o = json_object_get(mem, objects[i]);
        if (o && !json_is_object(o)) {
            json_decref(mem);
            return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' must be an object", path,
                              objects[i]);
        }
    }
    const json_t *method = json_object_get(mem, "method");
    if (json_is_string(method))
        snprintf(run->method, sizeof run->method, "%s", json_string_value(method));
    run->peak_rss = number_field(mem, "peak_rss");
    run->predicted = number_field(json_object_get(mem, "predicted"), "total");
    run->params = number_field(mem, "params");
    run->trainable = number_field(mem, "trainable_params");
    run->has_memory = 1;
    json_object_set_new(run->data, "memory", mem);
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

static badam_status read_run(const char *dir, report_run *run, const badam_logger *log,
                             badam_error *err) {
    memset(run, 0, sizeof *run);
    run->final_loss = run->final_val = run->best_val = run->elapsed_s = NAN;
    run->mean_tps = run->peak_rss = run->predicted = run->params = run->trainable = NAN;
    snprintf(run->method, sizeof run->method, "?");
    run_label(dir, run->name, sizeof run->name);
    if (!io_is_dir(dir))
        return badam_fail(err, BADAM_E_IO, "%s: no such run folder (give the --out of badam train)",
                          dir);
    run->data = json_object();
    if (!run->data) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", dir);
    badam_status st = read_metrics(dir, run, log, err);
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
            const json_t *m = json_object_get(runs[i].data, "memory");
            const json_t *pred = json_object_get(m, "predicted");
            const json_t *meas = json_object_get(m, "measured_peak");
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
    static const char *const charts[] = {
        "chart-loss-step", "chart-loss-tokens", "chart-loss-seconds", "chart-lr",
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
        return badam_fail(err, BADAM_E_INVALID, "no run folder given");
    const char *title = opts->title && *opts->title ? opts->title : "badam report";
    char out[4096];
    if (opts->out_path)
        snprintf(out, sizeof out, "%s", opts->out_path);
    else if (io_path_join(out, sizeof out, opts->run_dirs[0], "report.html"))
        return badam_fail(err, BADAM_E_INVALID, "%s: path too long", opts->run_dirs[0]);

    report_run *runs = calloc((size_t)opts->n_runs, sizeof *runs);
    json_t *root = json_object();
    json_t *list = root ? io_json_add_array(root, "runs") : NULL;
    if (!runs || !list) {
        free(runs);
        json_decref(root);
        return badam_fail(err, BADAM_E_NOMEM, "out of memory");
    }
    badam_status st = BADAM_OK;
    for (int i = 0; i < opts->n_runs && !st; i++) {
        report_run *r = &runs[i];
        st = read_run(opts->run_dirs[i], r, &opts->log, err);
        if (st) {
            json_decref(r->data);
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
        json_object_set_new(r->data, "name", json_string(r->name));
        json_object_set_new(r->data, "dir", json_string(opts->run_dirs[i]));
        json_object_set_new(r->data, "method", json_string(r->method));
        json_array_append_new(list, r->data); /* list owns it now */
    }
    if (!st) {
        char *json = io_json_dump(root, 0, NULL);
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
    json_decref(root);
    free(runs);
    if (!st && written) snprintf(written, size, "%s", out);
    return st;
}
