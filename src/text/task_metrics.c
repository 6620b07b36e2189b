/* SuperGLUE metrics (include/badam/tasks.h), as the SuperGLUE paper defines them (Wang et al.,
 * 2019, table 1): accuracy; CB's macro-F1 over its three classes; MultiRC's F1a (F1 of the
 * "correct" class over all answer options) and EM (questions with every option right).
 * Pure functions of label arrays; task_score checks a task_set's labels and predictions first.
 * Placed in the text layer, beside the examples they score, so train and infer can both use it. */
#include <math.h>
#include <stdio.h>

#include "badam/tasks.h"

/* accuracy = #{i : pred_i = gold_i} / n */
double task_accuracy(const int *pred, const int *gold, size_t n) {
    size_t right = 0;
    for (size_t i = 0; i < n; i++) right += pred[i] == gold[i];
    return n ? (double)right / (double)n : NAN;
}

/* F1_c = 2 tp / (2 tp + fp + fn) over the items predicted or labelled c; 0 when there are none */
double task_class_f1(const int *pred, const int *gold, size_t n, int c) {
    size_t tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < n; i++) {
        tp += pred[i] == c && gold[i] == c;
        fp += pred[i] == c && gold[i] != c;
        fn += pred[i] != c && gold[i] == c;
    }
    size_t den = 2 * tp + fp + fn;
    return den ? (double)(2 * tp) / (double)den : 0.0;
}

/* macro-F1 = (1 / C) sum_c F1_c over c = 0 .. C-1 */
double task_macro_f1(const int *pred, const int *gold, size_t n, int n_classes) {
    double sum = 0.0;
    for (int c = 0; c < n_classes; c++) sum += task_class_f1(pred, gold, n, c);
    return n_classes > 0 ? sum / n_classes : NAN;
}

double task_f1a(const int *pred, const int *gold, size_t n) {
    return task_class_f1(pred, gold, n, 1);
}

/* EM = #{questions q : pred_i = gold_i for every option i of q} / #questions, a question being a
 * run of equal group ids */
double task_exact_match(const int *pred, const int *gold, const size_t *group, size_t n) {
    size_t questions = 0, exact = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        int all = 1;
        for (; j < n && group[j] == group[i]; j++) all &= pred[j] == gold[j];
        questions++;
        exact += (size_t)all;
        i = j;
    }
    return questions ? (double)exact / (double)questions : NAN;
}

void task_scores_describe(task_kind kind, const task_scores *s, char *buf, size_t size) {
    if (kind == TASK_MULTIRC)
        snprintf(buf, size, "F1a %.4f, EM %.4f, accuracy %.4f", s->f1a, s->em, s->accuracy);
    else if (kind == TASK_CB)
        snprintf(buf, size, "accuracy %.4f, macro-F1 %.4f", s->accuracy, s->macro_f1);
    else
        snprintf(buf, size, "accuracy %.4f", s->accuracy);
}
