/* Records of the sentence-pair tasks and COPA -> examples (formats in include/badam/tasks.h). */
#include <stdlib.h>
#include <string.h>

#include "text/task_internal.h"

/* BoolQ {"question", "passage", "label": bool, "idx"}: A = question, B = passage. */
badam_status task_read_boolq(task_builder *b, const task_rec *r, const json_t *obj) {
    task_example ex = {.passage_idx = -1, .question_idx = -1};
    badam_status st;
    if ((st = task_get_text(r, obj, "question", NULL, &ex.text_a)) ||
        (st = task_get_text(r, obj, "passage", NULL, &ex.text_b)) ||
        (st = task_get_label(r, obj, "label", NULL, TASK_BOOLQ, TASK_LABEL_BOOL, &ex.label)) ||
        (st = task_get_idx(r, obj, &ex.idx))) {
        task_example_free(&ex);
        return st;
    }
    return task_builder_add(b, r, &ex, 1);
}

/* CB and RTE {"premise", "hypothesis", "label": name, "idx"}: A = premise, B = hypothesis. */
badam_status task_read_pair_nli(task_builder *b, const task_rec *r, const json_t *obj,
                                task_kind kind) {
    task_example ex = {.passage_idx = -1, .question_idx = -1};
    badam_status st;
    if ((st = task_get_text(r, obj, "premise", NULL, &ex.text_a)) ||
        (st = task_get_text(r, obj, "hypothesis", NULL, &ex.text_b)) ||
        (st = task_get_label(r, obj, "label", NULL, kind, TASK_LABEL_NAME, &ex.label)) ||
        (st = task_get_idx(r, obj, &ex.idx))) {
        task_example_free(&ex);
        return st;
    }
    return task_builder_add(b, r, &ex, 1);
}

/* COPA {"premise", "choice1", "choice2", "question": "cause"|"effect", "label": 0|1, "idx"}:
 * A = premise + the question in jiant's words (jiant/tasks/lib/copa.py), choices as given. */
badam_status task_read_copa(task_builder *b, const task_rec *r, const json_t *obj) {
    task_example ex = {.passage_idx = -1, .question_idx = -1, .n_choices = 2};
    const char *q;
    size_t q_len;
    char *premise = NULL;
    badam_status st;
    if ((st = task_get_text(r, obj, "premise", NULL, &premise)) ||
        (st = task_get_string(r, obj, "question", NULL, &q, &q_len)))
        goto fail;
    const char *ask = NULL;
    if (strcmp(q, "cause") == 0) ask = " What was the cause of this?";
    if (strcmp(q, "effect") == 0) ask = " What happened as a result?";
    if (!ask) {
        st = task_rec_fail(r, "question", "unknown question '%.100s' (known: cause, effect)", q);
        goto fail;
    }
    if (!(ex.text_a = task_concat3(premise, ask, NULL))) {
        st = task_rec_nomem(r);
        goto fail;
    }
    if ((st = task_get_text(r, obj, "choice1", NULL, &ex.choices[0])) ||
        (st = task_get_text(r, obj, "choice2", NULL, &ex.choices[1])) ||
        (st = task_get_label(r, obj, "label", NULL, TASK_COPA, TASK_LABEL_INT, &ex.label)) ||
        (st = task_get_idx(r, obj, &ex.idx)))
        goto fail;
    free(premise);
    return task_builder_add(b, r, &ex, 1);
fail:
    free(premise);
    task_example_free(&ex);
    return st;
}
