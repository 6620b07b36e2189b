/* badam compare on the tiny random model: three methods and one run that fails on the same data
 * and budget; the json, markdown and HTML are written, every run that trained saw the same
 * tokens, per-run learning rates reach the runs (their metrics' lr), the failed run is reported
 * with its error while the others complete (exit 1); --tokens sets one step count; a flag
 * with a run list reaches only those runs; --wall-seconds stops every run after its first step
 * (a limit of a microsecond: no timing-dependent assert) and the tables say so; option errors
 * exit 2 with a message. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"
#include "testutil.h"

static char g_out[2048];
static char buf[1 << 16];

#define COMMON                                                                                     \
    "compare --model models/tiny-random-llama --data data/demo/reverse_train.json --val-data "     \
    "data/demo/reverse_val.json --seq-len 32 --batch-size 2 --no-checkpoint --quiet "

static int badam(const char *args) {
    return test_run_cli(g_out, NULL, args, buf, sizeof buf);
}

static const json_t *run_named(const json_t *root, const char *name) {
    const json_t *runs = json_object_get(root, "runs"), *r;
    size_t i;
    json_array_foreach(runs, i, r) {
        if (!strcmp(json_string_value(json_object_get(r, "name")), name)) return r;
    }
    return NULL;
}

/* The largest lr of a run's metrics.jsonl (the peak of its schedule). */
static double peak_lr(const char *dir) {
    char *text = NULL;
    size_t n = 0;
    badam_error err = {0};
    if (io_read_file(test_path_in(dir, "metrics.jsonl"), &text, &n, &err)) return NAN;
    double peak = 0;
    for (char *p = text; (p = strstr(p, "\"lr\":")); p += 5) {
        double v = strtod(p + 5, NULL);
        if (v > peak) peak = v;
    }
    free(text);
    return peak;
}

static void test_compare_runs(void) {
    char args[4096], dir[2200];
    snprintf(args, sizeof args,
             COMMON "--methods badam,lora@bad,lora,adam --lr lora=3e-3,adam=3e-4,2e-3 "
                    "--max-steps 3 --init-adapter lora@bad=/nonexistent-adapter --exact-match "
                    "--max-new-tokens 4 --out %s/cmp",
             g_out);
    int rc = badam(args);
    CHECKF(rc == 1, "exit %d (want 1: one run failed):\n%s", rc, buf);
    CHECKF(strstr(buf, "lora@bad failed") != NULL, "%s", buf);
    snprintf(dir, sizeof dir, "%s/cmp", g_out);
    json_t *root = NULL;
    badam_error err = {0};
    CHECK_OK(io_read_json(test_path_in(dir, "compare.json"), &root, &err), &err);
    CHECK(io_is_file(test_path_in(dir, "compare.md")));
    CHECK(io_is_file(test_path_in(dir, "report.html")));
    CHECK(json_array_size(json_object_get(root, "runs")) == 4);
    const char *ok[3] = {"badam", "lora", "adam"};
    const double lr[3] = {2e-3, 3e-3, 3e-4};
    json_int_t tokens = -1;
    for (int i = 0; i < 3; i++) {
        const json_t *r = run_named(root, ok[i]);
        CHECKF(r && !strcmp(json_string_value(json_object_get(r, "status")), "ok"), "%s", ok[i]);
        if (!r) continue;
        json_int_t t = json_integer_value(json_object_get(r, "tokens"));
        CHECKF(t > 0 && (tokens < 0 || t == tokens), "%s: %lld tokens, others %lld", ok[i],
               (long long)t, (long long)tokens);
        tokens = t;
        CHECK(json_integer_value(json_object_get(r, "steps")) == 3);
        CHECK(json_is_number(json_object_get(r, "val_loss")));
        CHECK(json_is_number(json_object_get(r, "exact_match")));
        snprintf(args, sizeof args, "%s/%s", dir, ok[i]);
        double peak = peak_lr(args);
        CHECKF(fabs(peak - lr[i]) <= 1e-6 * lr[i] + 1e-9, "%s: metrics peak lr %g, want %g", ok[i],
               peak, lr[i]);
    }
    const json_t *bad = run_named(root, "lora@bad");
    CHECK(bad && !strcmp(json_string_value(json_object_get(bad, "status")), "failed"));
    CHECK(bad && strstr(json_string_value(json_object_get(bad, "error")), "nonexistent-adapter"));
    json_decref(root);
    char *md = NULL, *html = NULL;
    size_t n = 0;
    CHECK_OK(io_read_file(test_path_in(dir, "compare.md"), &md, &n, &err), &err);
    CHECK(md && strstr(md, "| lora@bad | lr 0.003, init-adapter /nonexistent-adapter | failed:"));
    CHECK(md && strstr(md, "| lora | lr 0.003 |")); /* "lora=" reaches lora@bad too (above) */
    CHECK_OK(io_read_file(test_path_in(dir, "report.html"), &html, &n, &err), &err);
    CHECK(html && strstr(html, "chart-loss-seconds") && strstr(html, "\"adam\""));
    free(md);
    free(html);
}

/* --tokens: one step count for every run, from the data's trained tokens per example. */
static void test_token_budget(void) {
    char args[4096];
    snprintf(args, sizeof args, COMMON "--methods sgd-bcd,lomo --tokens 100 --out %s/tok", g_out);
    CHECKF(badam(args) == 0, "%s", buf);
    CHECKF(strstr(buf, "budget: 100 trained tokens = ") != NULL, "%s", buf);
    json_t *root = NULL;
    badam_error err = {0};
    snprintf(args, sizeof args, "%s/tok", g_out);
    CHECK_OK(io_read_json(test_path_in(args, "compare.json"), &root, &err), &err);
    json_int_t s0 = json_integer_value(json_object_get(run_named(root, "sgd-bcd"), "steps"));
    json_int_t s1 = json_integer_value(json_object_get(run_named(root, "lomo"), "steps"));
    CHECKF(s0 >= 1 && s0 == s1, "steps %lld and %lld", (long long)s0, (long long)s1);
    json_decref(root);
}

/* The text of a file under g_out (NULL when unreadable; free it). */
static char *read_text(const char *dir, const char *name) {
    char *text = NULL;
    size_t n = 0;
    badam_error err = {0};
    if (io_read_file(test_path_in(dir, name), &text, &n, &err)) return NULL;
    return text;
}

/* --galore-per-layer galore@pl: the flag reaches run galore@pl only (its log names the per-layer
 * variant, its settings say so); --wall-seconds 0.000001 ends every run after step 1 of 4. */
static void test_flags_per_run_and_wall_time(void) {
    char args[4096], dir[2200];
    snprintf(args, sizeof args,
             COMMON "--methods galore,galore@pl,adam --galore-per-layer galore@pl --galore-rank 4 "
                    "--max-steps 4 --wall-seconds 0.000001 --out %s/flag",
             g_out);
    CHECKF(badam(args) == 0, "%s", buf);
    snprintf(dir, sizeof dir, "%s/flag", g_out);
    json_t *root = NULL;
    badam_error err = {0};
    CHECK_OK(io_read_json(test_path_in(dir, "compare.json"), &root, &err), &err);
    const char *names[3] = {"galore", "galore@pl", "adam"};
    for (int i = 0; i < 3; i++) {
        const json_t *r = run_named(root, names[i]);
        CHECKF(r && json_integer_value(json_object_get(r, "steps")) == 1, "%s: steps", names[i]);
        CHECKF(r && !strcmp(json_string_value(json_object_get(r, "stop")), "max_seconds"), "%s",
               names[i]);
        const char *settings = r ? json_string_value(json_object_get(r, "settings")) : "";
        CHECKF(!strstr(settings, "galore-per-layer on") == (i != 1), "%s: settings '%s'", names[i],
               settings);
    }
    json_decref(root);
    char *md = read_text(dir, "compare.md");
    CHECKF(md && strstr(md, "stopped by --max-seconds after step 1"), "%s", md ? md : "");
    free(md);
    /* the flag's effect, not only its label: the per-layer galore trains without a full
     * gradient, so its planned gradient bytes differ from the plain run's */
    snprintf(args, sizeof args, "%s/flag/galore", g_out);
    char *plain = read_text(args, "memory.json");
    snprintf(args, sizeof args, "%s/flag/galore@pl", g_out);
    char *pl = read_text(args, "memory.json");
    CHECKF(plain && pl && strcmp(plain, pl), "the two galore runs planned the same memory");
    free(plain);
    free(pl);
    /* the last step line of a run says why it stopped */
    snprintf(args, sizeof args, "%s/flag/adam", g_out);
    char *metrics = read_text(args, "metrics.jsonl");
    CHECKF(metrics && strstr(metrics, "\"step\": 1,") &&
               strstr(metrics, "\"stop\": \"max_seconds\"") && !strstr(metrics, "\"step\": 2,"),
           "%s", metrics ? metrics : "");
    free(metrics);
}

static void expect_usage_error(const char *extra, const char *message) {
    char args[4096];
    snprintf(args, sizeof args, COMMON "--max-steps 1 --out %s/err %s", g_out, extra);
    int rc = badam(args);
    CHECKF(rc == 2 && strstr(buf, message), "%s: exit %d, want 2 and '%s':\n%s", extra, rc, message,
           buf);
}

static void test_option_errors(void) {
    expect_usage_error("--methods badam,lora,lora", "'lora' twice");
    expect_usage_error("--methods badam,adam --lr lroa=1e-3,adam=1e-3",
                       "'lroa' names no run of --methods and no method");
    /* an item for a method no run uses is ignored (one option list for several comparisons) */
    char args[4096];
    snprintf(args, sizeof args, COMMON "--max-steps 1 --out %s/ign --methods adam --lr lora=5,1e-3",
             g_out);
    CHECKF(badam(args) == 0, "%s", buf);
    expect_usage_error("--methods badam,adam --lr 1e-3,2e-3,adam=1e-3", "more than one value");
    expect_usage_error("--methods badam,nosuch", "nosuch");
    expect_usage_error("--methods badam --method adam", "give the runs with --methods");
    expect_usage_error("--methods badam --frobnicate 3", "unknown option '--frobnicate'");
    expect_usage_error("", "--methods and --out are required");
    expect_usage_error("--methods badam,adam --lr adam=-1", "--lr -1: must be >= 0");
    expect_usage_error("--methods badam,adam --data adam=data/demo/uppercase_train.json",
                       "must be the same for every run");
    expect_usage_error("--methods 'bad/name'", "letters, digits");
    expect_usage_error("--methods galore,adam --galore-per-layer glaore",
                       "'glaore' names no run of --methods and no method");
    expect_usage_error("--methods galore,adam --galore-per-layer galore=2", "takes 1 (on) or 0");
    expect_usage_error("--methods adam --wall-seconds -1", "--wall-seconds >= 0");
}

int main(void) {
    if (!getenv("BADAM_CLI") || !getenv("BADAM_SOURCE_DIR")) {
        fprintf(stderr, "SKIP: run through ctest (BADAM_CLI, BADAM_SOURCE_DIR)\n");
        return TEST_SKIP_CODE;
    }
    snprintf(g_out, sizeof g_out, "%s", test_workdir("compare"));
    RUN_TEST(test_compare_runs);
    RUN_TEST(test_token_budget);
    RUN_TEST(test_flags_per_run_and_wall_time);
    RUN_TEST(test_option_errors);
    return test_result();
}
