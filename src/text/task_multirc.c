/* MultiRC records -> one binary example per answer option:
 *   {"idx", "passage": {"text", "questions": [{"question", "idx",
 *                                             "answers": [{"text", "idx", "label": 0|1}]}]}}
 * A = the paragraph, B = question + " " + answer (jiant's layout: paragraph, then question and
 * answer in one segment). The answers of one question are consecutive examples sharing a group
 * (task_exact_match); each carries the passage's, the question's and the answer's idx (their
 * 0-based positions when absent). */
#include <stdio.h>
#include <stdlib.h>

#include "io/json_get.h"
#include "text/task_internal.h"

#define IDX_MAX (1LL << 53)

/* One answer (`a`, shown as `where`) of a question -> an example. */
static badam_status read_answer(task_builder *b, const task_rec *r, const json_t *a,
                                const char *where, const char *passage, const char *question,
                                long long p_idx, long long q_idx, size_t ai, int first) {
    char shown[128];
    task_example ex = {.passage_idx = p_idx, .question_idx = q_idx, .idx = (long long)ai};
    if (!json_is_object(a))
        return task_rec_fail(r, where, "expected an object, got %s", json_type_name(a));
    const char *text;
    size_t len;
    badam_status st;
    snprintf(shown, sizeof shown, "%s.text", where);
    if ((st = task_get_string(r, a, "text", shown, &text, &len))) return st;
    snprintf(shown, sizeof shown, "%s.label", where);
    if ((st = task_get_label(r, a, "label", shown, TASK_MULTIRC, TASK_LABEL_INT, &ex.label)))
        return st;
    snprintf(shown, sizeof shown, "%s.idx", where);
    if ((st = task_get_int(r, a, "idx", shown, 0, -IDX_MAX, IDX_MAX, &ex.idx, NULL))) return st;
    ex.text_a = task_concat3(passage, NULL, NULL);
    ex.text_b = task_concat3(question, " ", text);
    if (!ex.text_a || !ex.text_b) {
        task_example_free(&ex);
        return task_rec_nomem(r);
    }
    return task_builder_add(b, r, &ex, first);
}

/* Question `qi` (the JSON `q`) of the passage -> its answers' examples. */
static badam_status read_question(task_builder *b, const task_rec *r, const json_t *q, size_t qi,
                                  const char *passage, long long p_idx) {
    char where[64], shown[96];
    snprintf(where, sizeof where, "passage.questions[%zu]", qi);
    if (!json_is_object(q))
        return task_rec_fail(r, where, "expected an object, got %s", json_type_name(q));
    const char *question;
    size_t len;
    long long q_idx = (long long)qi;
    const json_t *answers;
    badam_status st;
    snprintf(shown, sizeof shown, "%s.question", where);
    if ((st = task_get_string(r, q, "question", shown, &question, &len))) return st;
    snprintf(shown, sizeof shown, "%s.idx", where);
    if ((st = task_get_int(r, q, "idx", shown, 0, -IDX_MAX, IDX_MAX, &q_idx, NULL))) return st;
    snprintf(shown, sizeof shown, "%s.answers", where);
    if ((st = task_get_array(r, q, "answers", shown, &answers))) return st;
    if (json_array_size(answers) == 0) return task_rec_fail(r, shown, "no answer options");
    for (size_t ai = 0; ai < json_array_size(answers); ai++) {
        snprintf(shown, sizeof shown, "%s.answers[%zu]", where, ai);
        st = read_answer(b, r, json_array_get(answers, ai), shown, passage, question, p_idx, q_idx,
                         ai, ai == 0);
        if (st) return st;
    }
    return BADAM_OK;
}

badam_status task_read_multirc(task_builder *b, const task_rec *r, const json_t *obj) {
    long long p_idx;
    const json_t *passage = json_field(obj, "passage"), *questions;
    const char *text;
    size_t len;
    badam_status st;
    if ((st = task_get_idx(r, obj, &p_idx))) return st;
    if (!passage) return task_rec_fail(r, "passage", "missing");
    if (!json_is_object(passage))
        return task_rec_fail(r, "passage", "expected an object, got %s", json_type_name(passage));
    if ((st = task_get_string(r, passage, "text", "passage.text", &text, &len)) ||
        (st = task_get_array(r, passage, "questions", "passage.questions", &questions)))
        return st;
    if (json_array_size(questions) == 0)
        return task_rec_fail(r, "passage.questions", "no questions");
    for (size_t qi = 0; qi < json_array_size(questions); qi++) {
        st = read_question(b, r, json_array_get(questions, qi), qi, text, p_idx);
        if (st) return st;
    }
    return BADAM_OK;
}
