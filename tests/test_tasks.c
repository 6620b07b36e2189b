/* SuperGLUE task files (include/badam/tasks.h): task names; every task's hand-made fixture in
 * tests/fixtures/superglue turned into the documented text format; errors naming the file, the
 * line and the field; unlabelled files; longest_first pair truncation; the metrics on hand-computed
 * label sets; and every real file of ../shared/data/superglue (skipped with a message when
 * absent), with its counts, label distribution and majority baseline printed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "badam/tasks.h"
#include "testutil.h"

static char *fixture(const char *name) {
    static char buf[8][4096];
    static int k;
    k = (k + 1) % 8;
    const char *p = test_source_path("tests/fixtures/superglue");
    snprintf(buf[k], sizeof buf[k], "%s/%s", p ? p : ".", name);
    return buf[k];
}

static int has(const char *msg, const char *part) {
    if (strstr(msg, part)) return 1;
    fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", msg, part);
    return 0;
}

static int same(const char *got, const char *want) {
    if (got && want && strcmp(got, want) == 0) return 1;
    if (!got && !want) return 1;
    fprintf(stderr, "  got  \"%s\"\n  want \"%s\"\n", got ? got : "(null)", want ? want : "(null)");
    return 0;
}

static task_set *load(task_kind kind, const char *name) {
    badam_error err = {0};
    task_set *s = NULL;
    if (task_load(kind, fixture(name), &s, &err) != BADAM_OK) {
        fprintf(stderr, "task_load(%s): %s\n", name, err.message);
        test_failures++;
        return NULL;
    }
    return s;
}

/* ---- names ---- */

static void test_names(void) {
    static const char *names[] = {"boolq", "cb", "copa", "multirc", "rte", "wic", "wsc"};
    badam_error err = {0};
    for (int k = 0; k < TASK_KIND_COUNT; k++) {
        task_kind kind = TASK_WSC;
        CHECK(task_kind_parse(names[k], &kind, &err) == BADAM_OK && kind == (task_kind)k);
        CHECK(strcmp(task_kind_name(kind), names[k]) == 0);
        CHECK(task_kind_parse(task_dir_name(kind), &kind, &err) == BADAM_OK &&
              kind == (task_kind)k);
        CHECK(task_num_labels(kind) == (kind == TASK_CB ? 3 : 2));
        CHECK(task_is_multiple_choice(kind) == (kind == TASK_COPA));
    }
    task_kind kind;
    CHECK(task_kind_parse("record", &kind, &err) == BADAM_E_INVALID);
    CHECK(has(err.message, "unknown task 'record'") && has(err.message, "multirc"));
    CHECK(strcmp(task_label_name(TASK_CB, 2), "neutral") == 0);
    CHECK(strcmp(task_label_name(TASK_RTE, 1), "not_entailment") == 0);
    CHECK(task_label_name(TASK_RTE, 2) == NULL && task_label_name(TASK_RTE, -1) == NULL);
}

/* ---- the input format of each task ---- */

static void test_pairs(void) {
    task_set *s = load(TASK_BOOLQ, "boolq.jsonl");
    if (!s) return;
    CHECK(s->n == 3 && s->records == 3 && s->n_groups == 3 && s->labelled == 3);
    CHECK(same(s->examples[1].text_a, "do penguins live at the north pole"));
    CHECK(same(s->examples[1].text_b,
               "Penguin -- Penguins live almost only in the southern hemisphere."));
    CHECK(s->examples[0].label == 1 && s->examples[1].label == 0 && s->examples[2].label == 1);
    CHECK(s->label_counts[0] == 1 && s->label_counts[1] == 2);
    CHECK(s->examples[2].idx == 2 && s->examples[2].line == 3 && s->examples[2].group == 2);
    CHECK(s->examples[0].n_choices == 0 && s->examples[0].passage_idx == -1);
    task_set_free(s);

    s = load(TASK_CB, "cb.jsonl");
    if (!s) return;
    CHECK(s->n == 4);
    CHECK(same(s->examples[1].text_a, "B: I never saw the film. A: Never?"));
    CHECK(same(s->examples[1].text_b, "B saw the film"));
    int want[] = {0, 1, 2, 0};
    for (int i = 0; i < 4; i++) CHECK(s->examples[i].label == want[i]);
    CHECK(s->label_counts[0] == 2 && s->label_counts[1] == 1 && s->label_counts[2] == 1);
    task_set_free(s);

    s = load(TASK_RTE, "rte.jsonl");
    if (!s) return;
    CHECK(s->n == 3 && s->examples[1].label == 1 && s->examples[2].label == 0);
    CHECK(same(s->examples[2].text_b, "The match was delayed."));
    task_set_free(s);

    /* a test set: no labels */
    s = load(TASK_RTE, "rte_test.jsonl");
    if (!s) return;
    CHECK(s->n == 2 && s->labelled == 0 && s->examples[0].label == -1);
    CHECK(task_majority_label(s) == -1);
    task_scores sc;
    badam_error err = {0};
    int pred[2] = {0, 1};
    CHECK(task_score(s, pred, &sc, &err) == BADAM_E_INVALID && has(err.message, "no label"));
    char buf[512];
    task_set_describe(s, buf, sizeof buf);
    CHECK(has(buf, "rte: 2 examples (2 records); 2 unlabelled"));
    task_set_free(s);
}

static void test_copa(void) {
    task_set *s = load(TASK_COPA, "copa.jsonl");
    if (!s) return;
    CHECK(s->n == 3);
    task_example *e = &s->examples[1];
    CHECK(same(e->text_a, "The lamp went dark. What was the cause of this?"));
    CHECK(e->text_b == NULL && e->n_choices == 2);
    CHECK(same(e->choices[0], "The bulb burned out.") &&
          same(e->choices[1], "The curtains were open."));
    CHECK(same(s->examples[2].text_a, "I left my umbrella at home. What happened as a result?"));
    CHECK(s->examples[0].label == 0 && s->examples[2].label == 1);
    CHECK(task_majority_label(s) == 0);
    task_set_free(s);
}

static void test_wic(void) {
    task_set *s = load(TASK_WIC, "wic.jsonl");
    if (!s) return;
    CHECK(s->n == 3);
    CHECK(same(s->examples[0].text_a, "run: I *run* every morning."));
    CHECK(same(s->examples[0].text_b, "She *runs* a small shop."));
    /* code-point offsets: "é" is 2 bytes, start1 14 is byte 15 */
    CHECK(same(s->examples[1].text_a, "open: The caf\xc3\xa9 will *open* at noon."));
    CHECK(same(s->examples[1].text_b, "*Open* the window, please."));
    CHECK(same(s->examples[2].text_b, "The boat drifted to the *bank*."));
    CHECK(s->examples[0].label == 0 && s->examples[2].label == 1);
    task_set_free(s);
}

static void test_wsc(void) {
    task_set *s = load(TASK_WSC, "wsc.jsonl");
    if (!s) return;
    CHECK(s->n == 3 && s->examples[0].text_b == NULL);
    CHECK(same(s->examples[0].text_a, "*The dog* chased the cat because #it# was bored."));
    /* case ignored; punctuation after the pronoun stays outside the mark */
    CHECK(same(s->examples[1].text_a, "*Tom* thanked Sam for helping #him#, and smiled."));
    /* span2_index 8 is "because": "it" is found one word later */
    CHECK(same(s->examples[2].text_a,
               "*The trophy* did not fit in the case because #it# was too small ."));
    CHECK(s->spans_shifted == 1);
    CHECK(s->examples[2].label == 0);
    char buf[512];
    task_set_describe(s, buf, sizeof buf);
    CHECK(has(buf, "wsc: 3 examples (3 records); 1 spans found off their index; labels: false 1, "
                   "true 2; majority 'true': accuracy 0.6667"));
    task_set_free(s);
}

static void test_multirc(void) {
    task_set *s = load(TASK_MULTIRC, "multirc.jsonl");
    if (!s) return;
    CHECK(s->records == 2 && s->n == 7 && s->n_groups == 3 && s->labelled == 7);
    size_t groups[] = {0, 0, 0, 1, 1, 2, 2};
    int labels[] = {1, 0, 1, 1, 0, 0, 1};
    long long q_idx[] = {0, 0, 0, 1, 1, 2, 2};
    for (int i = 0; i < 7; i++) {
        CHECK(s->examples[i].group == groups[i] && s->examples[i].label == labels[i]);
        CHECK(s->examples[i].question_idx == q_idx[i] && s->examples[i].idx == i);
        CHECK(s->examples[i].passage_idx == (i < 5 ? 0 : 1));
        CHECK(s->examples[i].line == (size_t)(i < 5 ? 1 : 2));
    }
    CHECK(same(s->examples[3].text_a,
               "Mia planted beans in May. By July the beans had climbed the fence."));
    CHECK(same(s->examples[3].text_b, "What did the beans climb? The fence"));
    CHECK(same(s->examples[6].text_b, "What froze? The river"));
    char buf[512];
    task_set_describe(s, buf, sizeof buf);
    /* majority (true, 4 of 7): F1a = 8/11, EM = 0 (every question has a false option) */
    CHECK(has(buf, "multirc: 7 examples (2 records, 3 questions); labels: false 3, true 4; "
                   "majority 'true': F1a 0.7273, EM 0.0000, accuracy 0.5714"));
    task_set_free(s);
}

/* ---- errors ---- */

typedef struct bad_case {
    task_kind kind;
    const char *text;
    const char *parts[3]; /* what the message must say (besides the file name) */
} bad_case;

static void test_errors(void) {
    static const bad_case cases[] = {
        {TASK_RTE,
         "{\"premise\": \"a\", \"hypothesis\": \"b\", \"label\": \"entailment\"}\n{\"premise\": "
         "\"a\", \"hypothesis\": 3}\n",
         {"line 2 (record 1)", "field 'hypothesis'", "expected a string, got a number"}},
        {TASK_RTE,
         "{\"premise\": \"a\", \"hypothesis\": \"b\", \"label\": \"maybe\"}\n",
         {"line 1", "field 'label'",
          "unknown label 'maybe' for rte (known: entailment, not_entailment)"}},
        {TASK_CB,
         "{\"premise\": \"a\", \"label\": \"neutral\"}\n",
         {"line 1", "field 'hypothesis'", "missing"}},
        {TASK_BOOLQ,
         "\n\n{\"question\": \"q\", \"passage\": \"p\", \"label\": \"true\"}\n",
         {"line 3", "field 'label'", "expected true or false, got a string"}},
        {TASK_BOOLQ,
         "{\"question\": \"q\", \"passage\": \"p\", \"label\": tru}\n",
         {"line 1", "malformed JSON", ""}},
        {TASK_BOOLQ, "[1, 2]\n", {"line 1", "expected a JSON object, got a number", ""}},
        {TASK_COPA,
         "{\"premise\": \"p\", \"choice1\": \"a\", \"choice2\": \"b\", \"question\": \"why\", "
         "\"label\": 0}\n",
         {"field 'question'", "unknown question 'why' (known: cause, effect)", ""}},
        {TASK_COPA,
         "{\"premise\": \"p\", \"choice1\": \"a\", \"choice2\": \"b\", \"question\": \"cause\", "
         "\"label\": 2}\n",
         {"field 'label'", "expected an integer in [0, 1]", ""}},
        {TASK_WIC,
         "{\"word\": \"w\", \"sentence1\": \"a w\", \"sentence2\": \"w\", \"start1\": 2, \"end1\": "
         "4, \"start2\": 0, \"end2\": 1}\n",
         {"field 'end1'", "4 is past the end of sentence1", ""}},
        {TASK_WIC,
         "{\"word\": \"w\", \"sentence1\": \"a w\", \"sentence2\": \"w\", \"start1\": 2, \"end1\": "
         "3, \"start2\": 1, \"end2\": 1}\n",
         {"field 'end2'", "1 is not after start2 1", ""}},
        {TASK_WSC,
         "{\"text\": \"A saw B and he left.\", \"target\": {\"span1_index\": 0, \"span1_text\": "
         "\"A\", \"span2_index\": 0, \"span2_text\": \"she\"}}\n",
         {"field 'target.span2_index'", "'she' is not at word 0 ('A') nor within 2 words of it",
          ""}},
        {TASK_WSC,
         "{\"text\": \"A saw B.\", \"target\": [1]}\n",
         {"field 'target'", "expected an object, got an array", ""}},
        {TASK_MULTIRC,
         "{\"idx\": 0, \"passage\": {\"text\": \"t\", \"questions\": [{\"question\": \"q\", "
         "\"answers\": [{\"text\": \"a\", \"label\": 1}, {\"text\": \"b\", \"label\": "
         "\"yes\"}]}]}}\n",
         {"field 'passage.questions[0].answers[1].label'", "expected an integer, got a string",
          ""}},
        {TASK_MULTIRC,
         "{\"idx\": 0, \"passage\": {\"text\": \"t\", \"questions\": []}}\n",
         {"field 'passage.questions'", "no questions", ""}},
        {TASK_RTE,
         "{\"premise\": \"a\\u0000b\", \"hypothesis\": \"b\"}\n",
         {"field 'premise'", "holds U+0000", ""}},
        {TASK_RTE,
         "{\"premise\": \"\xff\", \"hypothesis\": \"b\"}\n",
         {"line 1", "invalid UTF-8 at byte 13", ""}},
        {TASK_RTE, "\n", {"empty file", "", ""}},
    };
    const char *dir = test_workdir("tasks_errors");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/case%zu.jsonl", dir, i);
        CHECK(test_write_raw(path, cases[i].text, strlen(cases[i].text)) == 0);
        badam_error err = {0};
        task_set *s = NULL;
        badam_status st = task_load(cases[i].kind, path, &s, &err);
        CHECKF(st == BADAM_E_FORMAT && s == NULL, "case %zu: status %d", i, (int)st);
        CHECKF(has(err.message, path), "case %zu", i);
        for (int k = 0; k < 3; k++) CHECKF(has(err.message, cases[i].parts[k]), "case %zu", i);
        task_set_free(s);
    }
    badam_error err = {0};
    task_set *s = NULL;
    CHECK(task_load(TASK_RTE, test_path_in(dir, "absent.jsonl"), &s, &err) == BADAM_E_IO);
    CHECK(has(err.message, "absent.jsonl"));
}

/* ---- truncation ---- */

/* The same rule by its definition: remove one token at a time from the longer segment; when both
 * are equal, from the one that was shorter at the start (the first when they started equal). */
static void truncate_slowly(size_t a, size_t b, size_t budget, size_t *ka, size_t *kb) {
    int first_shorter = a <= b;
    while (a + b > budget) {
        if (b == 0 || a > b)
            a--;
        else if (b > a)
            b--;
        else if (first_shorter)
            a--;
        else
            b--;
    }
    *ka = a;
    *kb = b;
}

static void test_truncate(void) {
    /* tokenizers' own cases (truncate_encodings_longest_first, max_length 7), lengths 0/2/4/8 */
    static const size_t lens[4] = {0, 2, 4, 8};
    static const size_t want[4][4][2] = {
        {{0, 0}, {0, 2}, {0, 4}, {0, 7}},
        {{2, 0}, {2, 2}, {2, 4}, {2, 5}},
        {{4, 0}, {4, 2}, {3, 4}, {3, 4}},
        {{7, 0}, {5, 2}, {4, 3}, {3, 4}},
    };
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            size_t ka, kb;
            task_truncate_pair(lens[i], lens[j], 7, &ka, &kb);
            CHECKF(ka == want[i][j][0] && kb == want[i][j][1], "(%zu, %zu) -> (%zu, %zu)", lens[i],
                   lens[j], ka, kb);
        }
    size_t ka = 9, kb = 9;
    task_truncate_pair(4, 4, 0, &ka, &kb);
    CHECK(ka == 0 && kb == 0);
    task_truncate_pair(509, 3, 509, &ka, &kb); /* a long passage and a short question */
    CHECK(ka == 506 && kb == 3);
    task_truncate_pair(3, 1000, 509, &ka, &kb);
    CHECK(ka == 3 && kb == 506);
    task_truncate_pair(300, 301, 509, &ka, &kb);
    CHECK(ka == 254 && kb == 255);
    task_truncate_pair(301, 300, 509, &ka, &kb);
    CHECK(ka == 255 && kb == 254);
    /* every small case against the definition; both segments kept when the budget allows */
    int bad = 0;
    for (size_t a = 0; a <= 24; a++)
        for (size_t b = 0; b <= 24; b++)
            for (size_t L = 0; L <= 50; L++) {
                size_t x, y, sx, sy;
                task_truncate_pair(a, b, L, &x, &y);
                truncate_slowly(a, b, L, &sx, &sy);
                int ok = x == sx && y == sy && x <= a && y <= b && x + y == (a + b < L ? a + b : L);
                if (a && b && L >= 2) ok &= x >= 1 && y >= 1;
                if (!ok && bad++ < 5)
                    fprintf(stderr, "  (%zu, %zu, %zu) -> (%zu, %zu), definition (%zu, %zu)\n", a,
                            b, L, x, y, sx, sy);
            }
    CHECK(bad == 0);
}

/* ---- metrics on hand-computed label sets ---- */

static void test_metrics(void) {
    /* CB: per class: 0 tp 1 fp 1 fn 1 -> 1/2; 1 tp 2 fp 1 fn 0 -> 4/5; 2 tp 1 fp 0 fn 1 -> 2/3 */
    int gold[] = {0, 0, 1, 2, 2, 1}, pred[] = {0, 1, 1, 2, 0, 1};
    CHECK_NEAR(task_class_f1(pred, gold, 6, 0), 0.5, 1e-15, 0, "F1 class 0");
    CHECK_NEAR(task_class_f1(pred, gold, 6, 1), 0.8, 1e-15, 0, "F1 class 1");
    CHECK_NEAR(task_class_f1(pred, gold, 6, 2), 2.0 / 3.0, 1e-15, 0, "F1 class 2");
    CHECK_NEAR(task_macro_f1(pred, gold, 6, 3), 59.0 / 90.0, 1e-15, 0, "CB macro-F1");
    CHECK_NEAR(task_accuracy(pred, gold, 6), 4.0 / 6.0, 1e-15, 0, "CB accuracy");
    /* a class nobody predicts nor labels scores 0 and still counts in the mean */
    int g2[] = {0, 0, 1}, p2[] = {0, 0, 1};
    CHECK_NEAR(task_macro_f1(p2, g2, 3, 3), 2.0 / 3.0, 1e-15, 0, "absent class");
    /* majority (entailment) on the CB labels above: F1_0 = 2*2/(4+4+0) = 1/2, others 0 */
    int maj[6] = {0};
    CHECK_NEAR(task_macro_f1(maj, gold, 6, 3), 1.0 / 6.0, 1e-15, 0, "CB majority");

    /* MultiRC: 3 questions of 3, 2 and 4 options; q0 wrong (option 2), q1 right, q2 wrong
     * (option 7); F1a: tp 3 (0, 3, 4), fp 1 (2), fn 1 (7) -> 6/8 */
    size_t group[] = {0, 0, 0, 1, 1, 2, 2, 2, 2};
    int mg[] = {1, 0, 0, 1, 1, 0, 0, 1, 0}, mp[] = {1, 0, 1, 1, 1, 0, 0, 0, 0};
    CHECK_NEAR(task_f1a(mp, mg, 9), 0.75, 1e-15, 0, "F1a");
    CHECK_NEAR(task_exact_match(mp, mg, group, 9), 1.0 / 3.0, 1e-15, 0, "EM");
    CHECK_NEAR(task_accuracy(mp, mg, 9), 7.0 / 9.0, 1e-15, 0, "MultiRC accuracy");
    int none[9] = {0};
    CHECK(task_f1a(none, mg, 9) == 0.0);                                 /* nothing predicted */
    CHECK(task_f1a(none, none, 9) == 0.0);                               /* nothing at all */
    CHECK_NEAR(task_exact_match(mg, mg, group, 9), 1.0, 0, 0, "EM all"); /* perfect */
    /* a question id repeated after another question is a new question for the pure function */
    size_t split[] = {0, 1, 0};
    int sg[] = {1, 1, 1}, sp[] = {1, 1, 0};
    CHECK_NEAR(task_exact_match(sp, sg, split, 3), 2.0 / 3.0, 1e-15, 0, "runs");
}

static void test_score(void) {
    task_set *s = load(TASK_MULTIRC, "multirc.jsonl");
    if (!s) return;
    /* labels 1 0 1 | 1 0 | 0 1; predictions wrong on option 1 and option 5 */
    int pred[7] = {1, 1, 1, 1, 0, 1, 1};
    task_scores sc;
    badam_error err = {0};
    CHECK_OK(task_score(s, pred, &sc, &err), &err);
    CHECK(sc.n == 7 && sc.n_groups == 3);
    CHECK_NEAR(sc.em, 1.0 / 3.0, 1e-15, 0, "EM");
    CHECK_NEAR(sc.f1a, 8.0 / 10.0, 1e-15, 0, "F1a"); /* tp 4, fp 2, fn 0 */
    CHECK_NEAR(sc.accuracy, 5.0 / 7.0, 1e-15, 0, "accuracy");
    CHECK_NEAR(sc.score, (0.8 + 1.0 / 3.0) / 2, 1e-15, 0, "score");
    CHECK(isnan(sc.macro_f1));
    char buf[256];
    task_scores_describe(TASK_MULTIRC, &sc, buf, sizeof buf);
    CHECK(same(buf, "F1a 0.8000, EM 0.3333, accuracy 0.7143"));
    pred[3] = 2;
    CHECK(task_score(s, pred, &sc, &err) == BADAM_E_INVALID);
    CHECK(has(err.message, "prediction 2 for example 3"));
    pred[3] = 1;
    s->examples[5].group = 0; /* a question's options not consecutive */
    CHECK(task_score(s, pred, &sc, &err) == BADAM_E_INVALID && has(err.message, "consecutive"));
    task_set_free(s);

    s = load(TASK_CB, "cb.jsonl"); /* labels 0 1 2 0 */
    if (!s) return;
    CHECK(task_majority_label(s) == 0);
    CHECK_OK(task_score_constant(s, 0, &sc, &err), &err);
    CHECK_NEAR(sc.accuracy, 0.5, 1e-15, 0, "CB majority accuracy");
    CHECK_NEAR(sc.macro_f1, (2.0 / 3.0) / 3.0, 1e-15, 0, "CB majority F1"); /* F1_0 = 4/6 */
    CHECK(isnan(sc.f1a) && isnan(sc.em));
    task_scores_describe(TASK_CB, &sc, buf, sizeof buf);
    CHECK(same(buf, "accuracy 0.5000, macro-F1 0.2222"));
    task_set_free(s);
}

/* ---- the real files ---- */

typedef struct real_file {
    task_kind kind;
    const char *file;
    size_t records, examples, groups;
} real_file;

static void test_real(void) {
    /* counts from ../shared/data/README.md: FewGLUE 32 records per file; the full validation and
     * training sets; MultiRC's 4,848 answer options of 953 questions in 83 passages */
    static const real_file files[] = {
        {TASK_BOOLQ, "fewglue_train", 32, 32, 32}, {TASK_BOOLQ, "fewglue_dev32", 32, 32, 32},
        {TASK_BOOLQ, "val", 3270, 3270, 3270},     {TASK_CB, "fewglue_train", 32, 32, 32},
        {TASK_CB, "fewglue_dev32", 32, 32, 32},    {TASK_COPA, "fewglue_train", 32, 32, 32},
        {TASK_COPA, "fewglue_dev32", 32, 32, 32},  {TASK_COPA, "val", 100, 100, 100},
        {TASK_MULTIRC, "fewglue_train", 32, 0, 0}, {TASK_MULTIRC, "fewglue_dev32", 32, 0, 0},
        {TASK_MULTIRC, "val", 83, 4848, 953},      {TASK_RTE, "fewglue_train", 32, 32, 32},
        {TASK_RTE, "fewglue_dev32", 32, 32, 32},   {TASK_RTE, "train", 2490, 2490, 2490},
        {TASK_RTE, "val", 277, 277, 277},          {TASK_WIC, "fewglue_train", 32, 32, 32},
        {TASK_WIC, "fewglue_dev32", 32, 32, 32},   {TASK_WSC, "fewglue_train", 32, 32, 32},
        {TASK_WSC, "fewglue_dev32", 32, 32, 32},   {TASK_WSC, "train", 554, 554, 554},
        {TASK_WSC, "val", 104, 104, 104},
    };
    const char *root = test_source_path("../shared/data/superglue");
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/RTE/val.jsonl", root ? root : "");
    FILE *f = root ? fopen(probe, "rb") : NULL;
    if (!f) {
        fprintf(stderr, "skip: ../shared/data/superglue absent (not part of the repository)\n");
        return;
    }
    fclose(f);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const real_file *rf = &files[i];
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/%s.jsonl", root, task_dir_name(rf->kind), rf->file);
        badam_error err = {0};
        task_set *s = NULL;
        if (task_load(rf->kind, path, &s, &err) != BADAM_OK) {
            fprintf(stderr, "  %s: %s\n", path, err.message);
            test_failures++;
            continue;
        }
        CHECKF(s->records == rf->records, "%s: %zu records", path, s->records);
        if (rf->examples) CHECKF(s->n == rf->examples, "%s: %zu examples", path, s->n);
        if (rf->groups) CHECKF(s->n_groups == rf->groups, "%s: %zu groups", path, s->n_groups);
        CHECKF(s->labelled == s->n, "%s: %zu of %zu labelled", path, s->labelled, s->n);
        for (size_t k = 0; k < s->n; k++) {
            const task_example *e = &s->examples[k];
            CHECK(e->text_a && e->text_a[0]);
            if (rf->kind == TASK_WSC) CHECK(strchr(e->text_a, '*') && strchr(e->text_a, '#'));
            if (rf->kind == TASK_WIC) CHECK(strchr(e->text_a, '*') && strchr(e->text_b, '*'));
        }
        char buf[1024];
        task_set_describe(s, buf, sizeof buf);
        fprintf(stderr, "  %s/%s: %s\n", task_dir_name(rf->kind), rf->file, buf);
        task_set_free(s);
    }
}

/* The majority-class baseline as a run would report it: the training file's majority label
 * predicted for every validation example. */
static void test_real_baseline(void) {
    static const struct {
        task_kind kind;
        const char *train;
    } pairs[] = {{TASK_BOOLQ, "fewglue_train"},   {TASK_COPA, "fewglue_train"},
                 {TASK_MULTIRC, "fewglue_train"}, {TASK_RTE, "train"},
                 {TASK_RTE, "fewglue_train"},     {TASK_WSC, "train"},
                 {TASK_WSC, "fewglue_train"}};
    const char *root = test_source_path("../shared/data/superglue");
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char tp[4096], vp[4096];
        const char *dir = task_dir_name(pairs[i].kind);
        snprintf(tp, sizeof tp, "%s/%s/%s.jsonl", root ? root : "", dir, pairs[i].train);
        snprintf(vp, sizeof vp, "%s/%s/val.jsonl", root ? root : "", dir);
        FILE *f = root ? fopen(vp, "rb") : NULL;
        if (!f) {
            fprintf(stderr, "skip: %s absent (../shared/data is not part of the repository)\n", vp);
            return;
        }
        fclose(f);
        task_set *train = NULL, *val = NULL;
        badam_error err = {0};
        CHECK_OK(task_load(pairs[i].kind, tp, &train, &err), &err);
        if (task_load(pairs[i].kind, vp, &val, &err) != BADAM_OK) {
            fprintf(stderr, "  %s: %s\n", vp, err.message);
            test_failures++;
            task_set_free(train);
            return;
        }
        int maj = task_majority_label(train);
        task_scores sc;
        CHECK(maj >= 0);
        if (maj >= 0 && task_score_constant(val, maj, &sc, &err) == BADAM_OK) {
            char buf[256];
            task_scores_describe(pairs[i].kind, &sc, buf, sizeof buf);
            fprintf(stderr, "  %s: majority of %s ('%s') on val: %s\n", dir, pairs[i].train,
                    task_label_name(pairs[i].kind, maj), buf);
        } else {
            CHECK(0);
        }
        task_set_free(train);
        task_set_free(val);
    }
}

int main(void) {
    RUN_TEST(test_names);
    RUN_TEST(test_pairs);
    RUN_TEST(test_copa);
    RUN_TEST(test_wic);
    RUN_TEST(test_wsc);
    RUN_TEST(test_multirc);
    RUN_TEST(test_errors);
    RUN_TEST(test_truncate);
    RUN_TEST(test_metrics);
    RUN_TEST(test_score);
    RUN_TEST(test_real);
    RUN_TEST(test_real_baseline);
    return test_result();
}
