/* badam report: the HTML page for a real BAdam run and two synthetic runs (LoRA- and Adam-like,
 * different lengths, learning rates and a null loss) holds every run's data and needs no network;
 * headless Chromium renders it and the screenshot's plot areas show every series
 * (tests/report/check_png.py); errors name the folder, file and line. Exits 77 (skipped) after
 * the other checks when no Chromium is installed (scripts/setup.sh installs Debian's). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "io/files.h"
#include "testutil.h"

static char g_work[2048];
static char out_buf[1 << 16];

/* Runs a shell command with stdout+stderr captured into out_buf; returns the exit status. */
static int sh(const char *cmd) {
    char path[2200];
    snprintf(path, sizeof path, "%s/last.txt", g_work);
    size_t size = strlen(cmd) + strlen(path) + 32;
    char *full = malloc(size);
    if (!full) return -1;
    snprintf(full, size, "( %s ) > %s 2>&1", cmd, path);
    int rc = test_system(full);
    free(full);
    char *text = NULL;
    size_t n = 0;
    badam_error err = {0};
    out_buf[0] = '\0';
    if (!io_read_file(path, &text, &n, &err)) {
        snprintf(out_buf, sizeof out_buf, "%s", text);
        free(text);
    }
    return rc;
}

/* Runs `badam ARGS` from the source folder. */
static int badam(const char *args) {
    char cmd[12288];
    snprintf(cmd, sizeof cmd, "cd %s && %s %s", getenv("BADAM_SOURCE_DIR"), getenv("BADAM_CLI"),
             args);
    return sh(cmd);
}

static void write_text(const char *dir, const char *name, const char *text) {
    char path[4096];
    badam_error err = {0};
    io_make_dir(dir, &err);
    io_path_join(path, sizeof path, dir, name);
    if (io_write_file_atomic(path, text, strlen(text), &err)) {
        fprintf(stderr, "%s\n", err.message);
        test_failures++;
    }
}

static char *read_text(const char *path) {
    char *text = NULL;
    size_t n = 0;
    badam_error err = {0};
    if (io_read_file(path, &text, &n, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return NULL;
    }
    return text;
}

/* A run folder as badam train writes it, with made-up numbers: n steps, a loss falling from
 * loss0, lr = lr0 * min(1, step / warmup), an eval every 5 steps, a null loss at step null_at. */
static void write_synthetic_run(const char *dir, const char *method, int n, double loss0,
                                double lr0, int warmup, int null_at) {
    size_t cap = 4096 + (size_t)n * 512;
    char *text = malloc(cap);
    size_t len = 0;
    double elapsed = 0;
    for (int s = 1; s <= n; s++) {
        double loss = loss0 * exp(-0.05 * s) + 0.3 * sin(0.9 * s) * 0.1;
        double lr = lr0 * (s < warmup ? (double)s / warmup : 1.0);
        elapsed += 0.05;
        char lossbuf[32];
        if (s == null_at)
            snprintf(lossbuf, sizeof lossbuf, "null");
        else
            snprintf(lossbuf, sizeof lossbuf, "%.6f", loss);
        len += (size_t)snprintf(
            text + len, cap - len,
            "{\"step\": %d, \"loss\": %s, \"lr\": %.6g, \"grad_norm\": %.4f, \"tokens\": %d, "
            "\"batch_tokens\": 512, \"tokens_per_s\": %.1f, \"forward_s\": 0.02, \"backward_s\": "
            "0.02, \"update_s\": 0.001, \"switch_s\": 0, \"step_s\": 0.05, \"elapsed_s\": %.3f, "
            "\"rss\": 30000000}\n",
            s, lossbuf, lr, 1.0 + 0.5 * cos(s), 40 + s % 7, 9000.0 + 1500.0 * sin(0.7 * s),
            elapsed);
        if (s % 5 == 0)
            len += (size_t)snprintf(text + len, cap - len,
                                    "{\"step\": %d, \"val_loss\": %.6f, \"val_tokens\": 375}\n", s,
                                    loss + 0.1);
    }
    write_text(dir, "metrics.jsonl", text);
    snprintf(text, cap,
             "{\"predicted\": {\"weights\": 437632, \"master\": 300000, \"gradients\": 300000, "
             "\"optimizer\": 600000, \"activations\": 9000000, \"workspace\": 5000000, "
             "\"total\": 15637632}, \"measured_peak\": {\"weights\": 437632, \"master\": 300000, "
             "\"gradients\": 300000, \"optimizer\": 600000, \"activations\": 9000000, "
             "\"workspace\": 5000000}, \"peak_rss\": 24000000, \"params\": 218816, "
             "\"trainable_params\": 37376, \"method\": \"%s\"}\n",
             method);
    write_text(dir, "memory.json", text);
    free(text);
}

static int count_step_lines(const char *path, double *first_loss) {
    char *text = read_text(path);
    int n = 0;
    *first_loss = NAN;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        json_t *obj = json_loads(line, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (obj && !json_object_get(obj, "val_loss")) {
            if (n == 0) *first_loss = json_number_value(json_object_get(obj, "loss"));
            n++;
        }
        json_decref(obj);
    }
    free(text);
    return n;
}

static void test_errors(void) {
    char args[8192], dir[4096];
    CHECK(badam("report") == 2);
    CHECK(strstr(out_buf, "at least one run folder") != NULL);
    CHECK(badam("report /tmp --nope") == 2);
    CHECK(strstr(out_buf, "unknown option '--nope'") != NULL);
    CHECK(badam("report --help") == 0);
    CHECK(strstr(out_buf, "--out FILE.html") && strstr(out_buf, "--title"));

    CHECK(badam("report /nonexistent/run-folder") == 1);
    CHECKF(strstr(out_buf, "/nonexistent/run-folder: no such run folder") != NULL, "%s", out_buf);

    snprintf(dir, sizeof dir, "%s/nometrics", g_work);
    write_text(dir, "memory.json", "{}");
    snprintf(args, sizeof args, "report %s", dir);
    CHECK(badam(args) == 1);
    CHECKF(strstr(out_buf, "nometrics/metrics.jsonl") != NULL, "%s", out_buf);

    snprintf(dir, sizeof dir, "%s/truncated", g_work);
    write_text(dir, "metrics.jsonl",
               "{\"step\": 1, \"loss\": 5.5, \"lr\": 0.01}\n\n{\"step\": 2, \"loss\": 5.4}\n"
               "{\"step\": 3, \"loss\": 5.\n");
    snprintf(args, sizeof args, "report %s", dir);
    CHECK(badam(args) == 1);
    CHECKF(strstr(out_buf, "truncated/metrics.jsonl:4: invalid JSON") != NULL, "%s", out_buf);
    snprintf(args, sizeof args, "%s/report.html", dir);
    CHECK(!io_is_file(args)); /* nothing written on failure */

    snprintf(dir, sizeof dir, "%s/badfield", g_work);
    write_text(dir, "metrics.jsonl",
               "{\"step\": 1, \"loss\": 5.5}\n{\"step\": 2, \"loss\": \"low\"}\n");
    snprintf(args, sizeof args, "report %s", dir);
    CHECK(badam(args) == 1);
    CHECKF(strstr(out_buf, "badfield/metrics.jsonl:2: field 'loss' must be a number") != NULL, "%s",
           out_buf);

    snprintf(dir, sizeof dir, "%s/empty", g_work);
    write_text(dir, "metrics.jsonl", "");
    snprintf(args, sizeof args, "report %s", dir);
    CHECK(badam(args) == 1);
    CHECKF(strstr(out_buf, "empty/metrics.jsonl: no training steps") != NULL, "%s", out_buf);

    snprintf(dir, sizeof dir, "%s/badmemory", g_work);
    write_text(dir, "metrics.jsonl", "{\"step\": 1, \"loss\": 5.5}\n");
    write_text(dir, "memory.json", "{\"predicted\": 3,}");
    snprintf(args, sizeof args, "report %s", dir);
    CHECK(badam(args) == 1);
    CHECKF(strstr(out_buf, "badmemory/memory.json") != NULL, "%s", out_buf);
}

/* The text of <script id="badam-data" type="application/json"> in the page, parsed. */
static json_t *page_data(const char *html) {
    const char *open = "<script id=\"badam-data\" type=\"application/json\">";
    const char *a = strstr(html, open);
    if (!a) return NULL;
    a += strlen(open);
    const char *b = strstr(a, "</script>");
    return b ? json_loadb(a, (size_t)(b - a), JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
}

static char g_html[4096];
static const char *const g_names[] = {"badam", "lora", "adam"};

/* Trains a short real BAdam run, writes two synthetic ones, reports all three; checks the HTML. */
static void test_report_html(void) {
    char args[12288];
    snprintf(args, sizeof args,
             "train --model models/tiny-random-llama --data data/demo/reverse_train.json "
             "--val-data data/demo/reverse_val.json --out %s/badam --template alpaca "
             "--include-embedding --include-head --lr 1e-2 --max-steps 12 --switch-every 3 "
             "--batch-size 2 --seq-len 48 --eval-every 4 --no-checkpoint --quiet",
             g_work);
    CHECKF(badam(args) == 0, "%s", out_buf);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/lora", g_work);
    write_synthetic_run(dir, "lora", 20, 5.0, 3e-3, 1, 0);
    snprintf(dir, sizeof dir, "%s/adam", g_work);
    write_synthetic_run(dir, "adam", 16, 4.0, 6e-3, 8, 7);

    snprintf(args, sizeof args, "report %s/badam %s/lora/ %s/adam --title 'Runs <a> & \"b\"'",
             g_work, g_work, g_work);
    CHECKF(badam(args) == 0, "%s", out_buf);
    snprintf(g_html, sizeof g_html, "%s/badam/report.html", g_work); /* default: first run */
    CHECK(strstr(out_buf, g_html) != NULL);
    char *html = read_text(g_html);
    if (!html) {
        test_failures++;
        return;
    }
    /* Self-contained: no external script, style sheet, image, font or import. */
    CHECK(strstr(html, "<title>Runs &lt;a&gt; &amp; &quot;b&quot;</title>") != NULL);
    CHECK(strstr(html, " src=") == NULL && strstr(html, " href=") == NULL);
    CHECK(strstr(html, "<link") == NULL && strstr(html, "@import") == NULL);
    CHECK(strstr(html, "url(") == NULL);
    CHECK(strstr(html, "uPlot") != NULL); /* the charting library is inline */
    for (int i = 0; i < 3; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "</span>%s</td><td>%s</td>", g_names[i], g_names[i]);
        CHECKF(strstr(html, needle) != NULL, "summary row for %s", g_names[i]);
    }
    /* The data the charts are drawn from: every step of every run. */
    json_t *data = page_data(html);
    json_t *runs = json_object_get(data, "runs");
    CHECK(json_array_size(runs) == 3);
    for (int i = 0; i < 3 && json_array_size(runs) == 3; i++) {
        json_t *r = json_array_get(runs, i);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/metrics.jsonl", g_work, g_names[i]);
        double first_loss;
        int n = count_step_lines(path, &first_loss);
        CHECK(!strcmp(json_string_value(json_object_get(r, "name")), g_names[i]));
        CHECK(!strcmp(json_string_value(json_object_get(r, "method")), g_names[i]));
        CHECKF(json_array_size(json_object_get(r, "step")) == (size_t)n, "%s: %d steps", g_names[i],
               n);
        CHECK(json_array_size(json_object_get(r, "loss")) == (size_t)n);
        CHECK(json_array_size(json_object_get(r, "tokens")) == (size_t)n);
        CHECK(json_array_size(json_object_get(r, "eval_step")) >= 3);
        double loss0 = json_number_value(json_array_get(json_object_get(r, "loss"), 0));
        CHECK_NEAR(loss0, first_loss, 1e-12, 1e-9, "%s: report loss vs metrics.jsonl", g_names[i]);
        CHECK(json_is_object(json_object_get(r, "memory")));
        CHECK(i == 0 ? json_is_array(json_object_get(r, "block"))
                     : json_is_null(json_object_get(r, "block")));
    }
    json_t *adam = json_array_get(runs, 2);
    CHECK(json_is_null(json_array_get(json_object_get(adam, "loss"), 6))); /* step 7 */
    CHECK(strstr(html, "model.layers.") != NULL); /* block names for the block axis */
    /* The memory numbers: adam's synthetic activations are 9000000 bytes = 8.6 MiB. */
    const char *mem = strstr(html, "<table class=\"summary\" id=\"memory\">");
    CHECK(mem && strstr(mem, "<td>activations</td>") && strstr(mem, "<td>8.6 MiB</td>"));
    json_decref(data);
    free(html);

    /* --out elsewhere (its folder is created), and the same name twice is told apart. */
    snprintf(args, sizeof args, "report %s/lora %s/lora --out %s/sub/two.html", g_work, g_work,
             g_work);
    CHECKF(badam(args) == 0, "%s", out_buf);
    snprintf(args, sizeof args, "%s/sub/two.html", g_work);
    html = read_text(args);
    CHECK(html && strstr(html, "lora #2") != NULL);
    free(html);
}

/* The value of attribute `attr` in the opening tag that carries id="id" in the dumped DOM. */
static int dom_attr(const char *dom, const char *id, const char *attr, char *out, size_t size) {
    char needle[128];
    snprintf(needle, sizeof needle, "id=\"%s\"", id);
    const char *tag = strstr(dom, needle);
    if (!tag) return -1;
    const char *end = strchr(tag, '>');
    snprintf(needle, sizeof needle, " %s=\"", attr);
    const char *a = strstr(tag, needle);
    if (!a || !end || a > end) return -1;
    a += strlen(needle);
    const char *b = strchr(a, '"');
    if (!b || b > end || (size_t)(b - a) >= size) return -1;
    snprintf(out, size, "%.*s", (int)(b - a), a);
    return 0;
}

/* Renders the page in headless Chromium with every host name unresolvable (so the page must not
 * need the network) and checks the screenshot's plot areas. Returns 0, or 77 without Chromium. */
static int test_browser(void) {
    char chromium[1024] = "";
    const char *env = getenv("BADAM_CHROMIUM");
    if (env && *env) {
        snprintf(chromium, sizeof chromium, "%s", env);
    } else if (sh("command -v chromium || command -v chromium-browser") == 0) {
        sscanf(out_buf, "%1023s", chromium);
    }
    if (!chromium[0]) {
        fprintf(stderr, "SKIP browser checks: no chromium (apt install chromium; scripts/setup.sh "
                        "does) and BADAM_CHROMIUM unset\n");
        return TEST_SKIP_CODE;
    }
    char flags[4096], cmd[32768], dom_path[2200], png[2200];
    snprintf(flags, sizeof flags,
             "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
             "--disable-background-networking --disable-component-update --disable-sync "
             "--hide-scrollbars --host-resolver-rules='MAP * ~NOTFOUND' "
             "--virtual-time-budget=5000 --window-size=1400,2000");
    snprintf(dom_path, sizeof dom_path, "%s/dom.html", g_work);
    snprintf(png, sizeof png, "%s/report.png", g_work);
    snprintf(
        cmd, sizeof cmd,
        "timeout 90 %s %s --user-data-dir=%s/profile-dom --dump-dom file://%s > %s 2>/dev/null",
        chromium, flags, g_work, g_html, dom_path);
    CHECKF(sh(cmd) == 0, "%s", out_buf);
    snprintf(cmd, sizeof cmd,
             "timeout 90 %s %s --user-data-dir=%s/profile-png --screenshot=%s file://%s", chromium,
             flags, g_work, png, g_html);
    CHECKF(sh(cmd) == 0 && io_is_file(png), "%s", out_buf);
    char *dom = read_text(dom_path);
    if (!dom) {
        test_failures++;
        return 0;
    }
    char val[256];
    CHECKF(dom_attr(dom, "chart-loss-step", "data-plot-rect", val, sizeof val) == 0,
           "charts not drawn");
    CHECKF(strstr(dom, "data-error=") == NULL, "script error: %s",
           strstr(dom, "data-error=") ? strstr(dom, "data-error=") : "");
    CHECKF(strstr(dom, "<body data-charts=\"10\"") != NULL, "expected 10 charts drawn");

    /* Every plot area is inked and shows each of its series' colors. */
    static const char *const charts[] = {
        "chart-loss-step", "chart-loss-tokens", "chart-loss-seconds", "chart-lr",
        "chart-block",     "chart-throughput",  "chart-grad-norm",    "chart-memory-0",
        "chart-memory-1",  "chart-memory-2"};
    size_t n_charts = sizeof charts / sizeof charts[0];
    int len = snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s",
                       test_source_path("tests/report/check_png.py"), png);
    for (size_t i = 0; i < n_charts; i++) {
        char rect[64], colors[256];
        if (dom_attr(dom, charts[i], "data-plot-rect", rect, sizeof rect) ||
            dom_attr(dom, charts[i], "data-colors", colors, sizeof colors)) {
            CHECKF(0, "%s: no plot area in the rendered page", charts[i]);
            continue;
        }
        if (i < 7 && i != 4) CHECKF(strchr(colors, ',') != NULL, "%s: one color", charts[i]);
        len +=
            snprintf(cmd + len, sizeof cmd - (size_t)len, " '%s:%s:%s'", charts[i], rect, colors);
    }
    free(dom);
    CHECKF(sh(cmd) == 0, "\n%s", out_buf);
    fprintf(stderr, "%s", out_buf);
    /* The checker is not vacuous: the right margin of the page is blank. */
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s 'margin:1370,40,20,300:#1f77b4'",
             test_source_path("tests/report/check_png.py"), png);
    CHECK(sh(cmd) == 1 && strstr(out_buf, "FAIL margin") != NULL);
    fprintf(stderr, "report screenshot: %s\n", png);
    return 0;
}

int main(void) {
    if (!getenv("BADAM_CLI") || !getenv("BADAM_SOURCE_DIR")) {
        fprintf(stderr, "SKIP: BADAM_CLI / BADAM_SOURCE_DIR not set (run through ctest)\n");
        return TEST_SKIP_CODE;
    }
    snprintf(g_work, sizeof g_work, "%s", test_workdir("report"));
    RUN_TEST(test_errors);
    RUN_TEST(test_report_html);
    int browser = test_failures ? 0 : test_browser();
    fprintf(stderr, "%s test_browser\n", browser == TEST_SKIP_CODE ? "skip" : "done");
    if (browser == TEST_SKIP_CODE && !test_failures) return TEST_SKIP_CODE;
    return test_result();
}
