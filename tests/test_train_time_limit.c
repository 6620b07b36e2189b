/* badam train --max-seconds and the memory plan of a run that visits only some blocks.
 * --max-seconds 0.000001 ends a 4-step run after step 1 (the limit is checked after each step, so
 * the assert does not depend on timing): validation runs, the model and the checkpoint are saved
 * as at a normal end, the last step line of metrics.jsonl says "stop": "max_seconds", and --resume
 * (without the limit) finishes the run with the same final loss as a run never stopped.
 * Block-wise memory: activations are kept from the active block's lowest layer up, so a run that
 * never visits the lowest block allocates fewer activation bytes than the plan (the peak over
 * blocks): sgd-bcd with K = 50 on a 50-step run visited one block in the compare sweep (54.3 vs
 * 75.4 MiB). With K chosen so every block is visited (K = steps / blocks) allocation equals the
 * plan in every category. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"
#include "testutil.h"

static char g_out[2048];
static char buf[1 << 16];

#define COMMON                                                                                     \
    "train --model models/tiny-random-llama --data data/demo/reverse_train.json --seq-len 32 "     \
    "--batch-size 2 --lr 1e-3 --quiet "

static int badam(const char *args) {
    return test_run_cli(g_out, NULL, args, buf, sizeof buf);
}

static char *read_text(const char *dir, const char *name) {
    char *text = NULL;
    size_t n = 0;
    badam_error err = {0};
    if (io_read_file(test_path_in(dir, name), &text, &n, &err)) return NULL;
    return text;
}

/* The loss of the last step line of dir/metrics.jsonl (NaN when none). */
static double last_loss(const char *dir) {
    char *text = read_text(dir, "metrics.jsonl");
    double loss = NAN;
    for (char *p = text; p && (p = strstr(p, "\"loss\":")); p += 7) loss = strtod(p + 7, NULL);
    free(text);
    return loss;
}

static void test_max_seconds(void) {
    char args[4096], dir[2200], full[2200];
    snprintf(dir, sizeof dir, "%s/limited", g_out);
    snprintf(full, sizeof full, "%s/full", g_out);
    snprintf(args, sizeof args, COMMON "--val-size 8 --max-steps 4 --max-seconds 0.000001 --out %s",
             dir);
    CHECKF(badam(args) == 0, "%s", buf);
    char *metrics = read_text(dir, "metrics.jsonl");
    CHECKF(metrics && strstr(metrics, "\"step\": 1,") && !strstr(metrics, "\"step\": 2,"), "%s",
           metrics ? metrics : "(none)");
    CHECKF(metrics && strstr(metrics, "\"stop\": \"max_seconds\"}"), "%s", metrics ? metrics : "");
    CHECKF(metrics && strstr(metrics, "\"val_loss\""), "no validation at the end: %s",
           metrics ? metrics : "");
    free(metrics);
    CHECK(io_is_file(test_path_in(dir, "config.json")));
    CHECK(io_is_dir(test_path_in(dir, "checkpoint")));
    CHECK(io_is_file(test_path_in(dir, "memory.json")));
    /* --resume finishes it exactly */
    snprintf(args, sizeof args, COMMON "--val-size 8 --max-steps 4 --resume --out %s", dir);
    CHECKF(badam(args) == 0, "%s", buf);
    snprintf(args, sizeof args, COMMON "--val-size 8 --max-steps 4 --out %s", full);
    CHECKF(badam(args) == 0, "%s", buf);
    double a = last_loss(dir), b = last_loss(full);
    CHECKF(a == b && !isnan(a), "resumed final loss %.9g, uninterrupted %.9g", a, b);
    /* no limit: every step; a negative limit is refused */
    metrics = read_text(full, "metrics.jsonl");
    CHECK(metrics && strstr(metrics, "\"step\": 4,") && !strstr(metrics, "\"stop\""));
    free(metrics);
    snprintf(args, sizeof args, COMMON "--max-steps 1 --max-seconds -2 --out %s/neg", g_out);
    CHECKF(badam(args) != 0 && strstr(buf, "--max-seconds -2"), "%s", buf);
}

static double mem(const char *dir, const char *obj, const char *cat) {
    json_t *j = NULL;
    badam_error err = {0};
    if (io_read_json(test_path_in(dir, "memory.json"), &j, &err)) return NAN;
    const json_t *v = json_object_get(json_object_get(j, obj), cat);
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    json_decref(j);
    return x;
}

/* method with K and steps (descending order starts at the top block): activations measured
 * against predicted; every other category equal. */
static void check_blocks(const char *method, const char *extra, int all_visited) {
    static const char *CATS[] = {"weights", "master", "gradients", "optimizer", "workspace"};
    char args[4096], dir[2200];
    snprintf(dir, sizeof dir, "%s/%s-%d", g_out, method, all_visited);
    snprintf(args, sizeof args, COMMON "--no-checkpoint --no-save --method %s %s --out %s", method,
             extra, dir);
    CHECKF(badam(args) == 0, "%s", buf);
    for (int c = 0; c < 5; c++)
        CHECKF(mem(dir, "predicted", CATS[c]) == mem(dir, "measured_peak", CATS[c]),
               "%s %s: %s predicted %.0f, measured %.0f", method, extra, CATS[c],
               mem(dir, "predicted", CATS[c]), mem(dir, "measured_peak", CATS[c]));
    double p = mem(dir, "predicted", "activations"), m = mem(dir, "measured_peak", "activations");
    if (all_visited)
        CHECKF(p == m, "%s %s: activations predicted %.0f, measured %.0f", method, extra, p, m);
    else
        CHECKF(m > 0 && m < p, "%s %s: activations predicted %.0f, measured %.0f (want fewer)",
               method, extra, p, m);
}

static void test_partial_block_visits(void) {
    const char *methods[2] = {"sgd-bcd", "badam"};
    for (int i = 0; i < 2; i++) {
        /* 2 steps in the top block only (the sweep's case: K above the run's steps) */
        check_blocks(methods[i], "--switch-mode descending --switch-every 50 --max-steps 2", 0);
        /* K = steps / blocks: 8 steps over 4 blocks, random order */
        check_blocks(methods[i], "--switch-every 2 --max-steps 8", 1);
    }
}

int main(void) {
    if (!getenv("BADAM_CLI") || !getenv("BADAM_SOURCE_DIR")) {
        fprintf(stderr, "SKIP: run through ctest (BADAM_CLI, BADAM_SOURCE_DIR)\n");
        return TEST_SKIP_CODE;
    }
    snprintf(g_out, sizeof g_out, "%s", test_workdir("time_limit"));
    RUN_TEST(test_max_seconds);
    RUN_TEST(test_partial_block_visits);
    return test_result();
}
