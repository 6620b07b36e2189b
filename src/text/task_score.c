/* Scoring a task_set: checks, the task's official metrics, the majority-class baseline and the
 * set's summary (include/badam/tasks.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/tasks.h"

/* The checks task_score promises, and the gold labels and groups into arrays. */
static badam_status check_set(const task_set *set, const int *pred, int **gold, size_t **group,
                              badam_error *err) {
    const char *name = task_kind_name(set->kind);
    if (set->n == 0) return badam_fail(err, BADAM_E_INVALID, "%s: no examples to score", name);
    int n_labels = task_num_labels(set->kind);
    for (size_t i = 0; i < set->n; i++) {
        const task_example *e = &set->examples[i];
        if (e->label < 0 || e->label >= n_labels)
            return badam_fail(err, BADAM_E_INVALID,
                              "%s: example %zu (line %zu) has no label: it cannot be scored", name,
                              i, e->line);
        if (pred[i] < 0 || pred[i] >= n_labels)
            return badam_fail(err, BADAM_E_INVALID,
                              "%s: prediction %d for example %zu is not a label index in [0, %d)",
                              name, pred[i], i, n_labels);
        if (i && e->group < set->examples[i - 1].group)
            return badam_fail(err, BADAM_E_INVALID,
                              "%s: example %zu's question %zu comes after question %zu: the "
                              "examples of a question must be consecutive",
                              name, i, e->group, set->examples[i - 1].group);
    }
    *gold = malloc(set->n * sizeof **gold);
    *group = malloc(set->n * sizeof **group);
    if (!*gold || !*group) {
        free(*gold);
        free(*group);
        return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory scoring", name);
    }
    for (size_t i = 0; i < set->n; i++) {
        (*gold)[i] = set->examples[i].label;
        (*group)[i] = set->examples[i].group;
    }
    return BADAM_OK;
}

badam_status task_score(const task_set *set, const int *pred, task_scores *out, badam_error *err) {
    int *gold = NULL;
    size_t *group = NULL;
    badam_status st = check_set(set, pred, &gold, &group, err);
    if (st) return st;
    task_scores s = {.macro_f1 = NAN, .f1a = NAN, .em = NAN, .n = set->n};
    s.accuracy = task_accuracy(pred, gold, set->n);
    s.score = s.accuracy;
    s.n_groups = 1;
    for (size_t i = 1; i < set->n; i++) s.n_groups += group[i] != group[i - 1];
    if (set->kind == TASK_CB) {
        s.macro_f1 = task_macro_f1(pred, gold, set->n, task_num_labels(TASK_CB));
        s.score = (s.accuracy + s.macro_f1) / 2;
    }
    if (set->kind == TASK_MULTIRC) {
        s.f1a = task_f1a(pred, gold, set->n);
        s.em = task_exact_match(pred, gold, group, set->n);
        s.score = (s.f1a + s.em) / 2;
    }
    free(gold);
    free(group);
    *out = s;
    return BADAM_OK;
}

int task_majority_label(const task_set *set) {
    int best = -1;
    for (int c = 0; c < task_num_labels(set->kind); c++)
        if (set->label_counts[c] > 0 &&
            (best < 0 || set->label_counts[c] > set->label_counts[best]))
            best = c;
    return best;
}

badam_status task_score_constant(const task_set *set, int label, task_scores *out,
                                 badam_error *err) {
    int *pred = malloc((set->n ? set->n : 1) * sizeof *pred);
    if (!pred) return badam_fail(err, BADAM_E_NOMEM, "out of memory scoring a baseline");
    for (size_t i = 0; i < set->n; i++) pred[i] = label;
    badam_status st = task_score(set, pred, out, err);
    free(pred);
    return st;
}

/* Appends printf-style text at buf + *used (never past size). */
static void append(char *buf, size_t size, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t size, size_t *used, const char *fmt, ...) {
    if (*used >= size) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *used, size - *used, fmt, ap);
    va_end(ap);
    if (k > 0) *used += (size_t)k < size - *used ? (size_t)k : size - *used - 1;
}

void task_set_describe(const task_set *set, char *buf, size_t size) {
    if (!size) return;
    buf[0] = '\0';
    size_t used = 0;
    task_kind k = set->kind;
    append(buf, size, &used, "%s: %zu examples (%zu records", task_kind_name(k), set->n,
           set->records);
    if (k == TASK_MULTIRC) append(buf, size, &used, ", %zu questions", set->n_groups);
    append(buf, size, &used, ")");
    if (set->spans_shifted)
        append(buf, size, &used, "; %zu spans found off their index", set->spans_shifted);
    if (set->labelled < set->n)
        append(buf, size, &used, "; %zu unlabelled", set->n - set->labelled);
    if (set->labelled == 0) return;
    append(buf, size, &used, "; labels:");
    for (int c = 0; c < task_num_labels(k); c++)
        append(buf, size, &used, "%s %s %zu", c ? "," : "", task_label_name(k, c),
               set->label_counts[c]);
    int maj = task_majority_label(set);
    task_scores s;
    if (set->labelled < set->n || task_score_constant(set, maj, &s, NULL) != BADAM_OK) return;
    char scores[256];
    task_scores_describe(k, &s, scores, sizeof scores);
    append(buf, size, &used, "; majority '%s': %s", task_label_name(k, maj), scores);
}
