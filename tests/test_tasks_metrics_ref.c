/* SuperGLUE metrics against an independent implementation: tests/ref/superglue_metrics_ref.py
 * (plain Python written from the benchmark's definitions) draws random label sets of many shapes
 * and scores them; the C functions and task_score must give the same numbers (within 1e-12: both
 * sides compute ratios of the same integers, in different orders). Skipped when /usr/bin/python3
 * is missing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "badam/tasks.h"
#include "io/files.h"
#include "testutil.h"

#define TOL 1e-12

/* json array of integers -> malloc'd ints; NULL when not an array of integers */
static int *int_array(const json_t *a, size_t *n) {
    if (!json_is_array(a)) return NULL;
    *n = json_array_size(a);
    int *v = malloc((*n ? *n : 1) * sizeof *v);
    for (size_t i = 0; v && i < *n; i++) {
        const json_t *x = json_array_get(a, i);
        if (!json_is_integer(x)) {
            free(v);
            return NULL;
        }
        v[i] = (int)json_integer_value(x);
    }
    return v;
}

static double num(const json_t *c, const char *key) {
    const json_t *x = json_object_get(c, key);
    return json_is_number(x) ? json_number_value(x) : NAN;
}

/* A task_set holding only what task_score reads: labels and question groups. */
static task_set *label_set(task_kind kind, const int *gold, const size_t *group, size_t n) {
    task_set *s = calloc(1, sizeof *s);
    s->kind = kind;
    s->examples = calloc(n, sizeof *s->examples);
    s->n = s->labelled = n;
    for (size_t i = 0; i < n; i++) {
        s->examples[i].label = gold[i];
        s->examples[i].group = group ? group[i] : i;
    }
    return s;
}

/* One case: the pure functions and task_score against the reference's numbers. */
static void check_case(const json_t *c, size_t k, int counts[3]) {
    const char *task = json_string_value(json_object_get(c, "task"));
    size_t n = 0, ng = 0;
    int *pred = int_array(json_object_get(c, "pred"), &n);
    int *gold = int_array(json_object_get(c, "gold"), &ng);
    CHECKF(task && pred && gold && n == ng && n > 0, "case %zu: malformed", k);
    if (!task || !pred || !gold || n != ng || n == 0) {
        free(pred);
        free(gold);
        return;
    }
    task_kind kind = TASK_RTE;
    badam_error err = {0};
    CHECK(task_kind_parse(task, &kind, &err) == BADAM_OK);
    size_t *group = NULL;
    if (kind == TASK_MULTIRC) {
        size_t nq = 0;
        int *q = int_array(json_object_get(c, "group"), &nq);
        CHECKF(q && nq == n, "case %zu: groups", k);
        group = malloc(n * sizeof *group);
        for (size_t i = 0; q && group && i < n; i++) group[i] = (size_t)q[i];
        free(q);
    }
    double acc = num(c, "accuracy");
    CHECK_NEAR(task_accuracy(pred, gold, n), acc, TOL, 0, "case %zu (%s) accuracy", k, task);
    task_scores sc = {0};
    task_set *s = NULL;
    if (kind == TASK_CB) {
        CHECK_NEAR(task_macro_f1(pred, gold, n, 3), num(c, "macro_f1"), TOL, 0, "case %zu macro-F1",
                   k);
        counts[0]++;
    } else if (kind == TASK_MULTIRC && group) {
        CHECK_NEAR(task_f1a(pred, gold, n), num(c, "f1a"), TOL, 0, "case %zu F1a", k);
        CHECK_NEAR(task_exact_match(pred, gold, group, n), num(c, "em"), TOL, 0, "case %zu EM", k);
        /* task_score wants groups numbered 0, 1, ... in order, as task_load gives them */
        size_t q = 0, prev = group[0];
        for (size_t i = 0; i < n; i++) {
            if (group[i] != prev) q++;
            prev = group[i];
            group[i] = q;
        }
        counts[1]++;
    } else {
        counts[2]++;
    }
    s = label_set(kind, gold, group, n);
    if (task_score(s, pred, &sc, &err) != BADAM_OK) {
        fprintf(stderr, "case %zu: task_score: %s\n", k, err.message);
        test_failures++;
    } else {
        CHECK_NEAR(sc.accuracy, acc, TOL, 0, "case %zu task_score accuracy", k);
        if (kind == TASK_CB)
            CHECK_NEAR(sc.macro_f1, num(c, "macro_f1"), TOL, 0, "case %zu task_score F1", k);
        if (kind == TASK_MULTIRC) {
            CHECK_NEAR(sc.f1a, num(c, "f1a"), TOL, 0, "case %zu task_score F1a", k);
            CHECK_NEAR(sc.em, num(c, "em"), TOL, 0, "case %zu task_score EM", k);
        }
    }
    free(s->examples);
    free(s);
    free(group);
    free(pred);
    free(gold);
}

int main(void) {
    if (access("/usr/bin/python3", X_OK) != 0) {
        fprintf(stderr, "skip: /usr/bin/python3 missing (the reference metrics need it)\n");
        return TEST_SKIP_CODE;
    }
    const char *script = test_source_path("tests/ref/superglue_metrics_ref.py");
    const char *dir = test_workdir("tasks_metrics_ref");
    char out[4096], cmd[16384];
    snprintf(out, sizeof out, "%s/cases.json", dir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' --seed 18 --cases 300", script, out);
    if (!script || test_system(cmd) != 0) {
        fprintf(stderr, "FAIL: %s\n", cmd);
        return 1;
    }
    json_t *root = NULL;
    badam_error err = {0};
    if (io_read_json(out, &root, &err) != BADAM_OK) {
        fprintf(stderr, "FAIL: %s\n", err.message);
        return 1;
    }
    const json_t *cases = json_object_get(root, "cases");
    CHECK(json_array_size(cases) == 300);
    int counts[3] = {0};
    for (size_t k = 0; k < json_array_size(cases); k++)
        check_case(json_array_get(cases, k), k, counts);
    fprintf(stderr, "  %zu cases: %d CB, %d MultiRC, %d binary\n", json_array_size(cases),
            counts[0], counts[1], counts[2]);
    CHECK(counts[0] == 100 && counts[1] == 100 && counts[2] == 100);
    json_decref(root);
    return test_result();
}
