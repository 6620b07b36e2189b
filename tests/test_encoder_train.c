/* Encoders through the trainer (--task): BAdam, Adam and SGD-BCD trajectories on tiny random
 * BERT and RoBERTa folders (sentence pairs with padding and truncation, and multiple choice)
 * against the PyTorch reference trainer tests/ref/encoder_train_ref.py, which builds the rows,
 * batches and updates itself from the examples' segments: final parameters within 1e-5 relative
 * in fp32 after 3 block switches, and moved >= 10x that from the start. Multiple-choice cases use
 * Adam eps 1e-6: the two rows of a question share their premise, so some gradients are
 * differences of nearly equal terms, at the size of eps 1e-8, where Adam's step turns rounding
 * into an update of about lr. Skips without torch. (Exact resume: test_encoder_cli.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "badam/tasks.h"
#include "badam/train.h"
#include "ref_compare.h"
#include "testutil.h"

#define RTOL 1e-5

typedef struct enc_case {
    const char *name, *type, *head, *tok, *task, *data;
    int labels;
    const char *method;
    int steps, K, accum;
    float lr, clip, wd, warmup_ratio, eps;
    const char *schedule;
} enc_case;

static const char *src(const char *rel) {
    static char buf[8][2048];
    static int at;
    at = (at + 1) % 8;
    snprintf(buf[at], sizeof buf[at], "%s", test_source_path(rel));
    return buf[at];
}

/* The argument list of the reference's `make` for case c into dir. */
static json_t *make_job(const enc_case *c, const char *dir) {
    char tok[2048], labels[16];
    snprintf(tok, sizeof tok, "%s/tokenizer.json", src(c->tok));
    snprintf(labels, sizeof labels, "%d", c->labels);
    return json_pack("[sssssssssss]", "make", "--out", dir, "--tokenizer", tok, "--type", c->type,
                     "--head", c->head, "--labels", labels);
}

/* Runs the reference's jobs (argument lists) in one process. */
static int run_jobs(json_t *jobs, const char *dir) {
    const char *path = test_path_in(dir, "jobs.json");
    int rc = json_dump_file(jobs, path, 0);
    json_decref(jobs);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s many %s", src("tests/ref/encoder_train_ref.py"),
             path);
    return rc ? rc : ref_run(cmd);
}

static json_t *ids_json(const badam_tokenizer *tok, const char *text, badam_error *err) {
    int32_t *ids = NULL;
    size_t n = 0;
    if (tokenizer_encode(tok, text, strlen(text), 0, &ids, &n, err)) return NULL;
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_integer(ids[i]));
    free(ids);
    return a;
}

/* Each example's segments tokenized without special tokens: the reference's input. */
static int write_segments(const enc_case *c, const char *model, const char *out) {
    badam_error err = {0};
    task_kind kind;
    task_set *set = NULL;
    badam_tokenizer *tok = NULL;
    if (task_kind_parse(c->task, &kind, &err) || task_load(kind, src(c->data), &set, &err) ||
        tokenizer_load(model, &tok, &err)) {
        fprintf(stderr, "%s: %s\n", c->name, err.message);
        task_set_free(set);
        return -1;
    }
    json_t *exs = json_array();
    for (size_t i = 0; i < set->n; i++) {
        const task_example *x = &set->examples[i];
        json_t *e = json_object();
        json_object_set_new(e, "a", ids_json(tok, x->text_a, &err));
        json_object_set_new(e, "b", x->text_b ? ids_json(tok, x->text_b, &err) : json_null());
        json_t *ch = x->n_choices ? json_array() : json_null();
        for (int k = 0; k < x->n_choices; k++)
            json_array_append_new(ch, ids_json(tok, x->choices[k], &err));
        json_object_set_new(e, "choices", ch);
        json_object_set_new(e, "label", json_integer(x->label));
        json_array_append_new(exs, e);
    }
    json_t *root = json_object();
    json_object_set_new(root, "examples", exs);
    int rc = json_dump_file(root, out, 0);
    json_decref(root);
    tokenizer_free(tok);
    task_set_free(set);
    return rc;
}

static void config_of(const enc_case *c, const char *model, const char *out, train_config *tc) {
    badam_error err;
    train_config_defaults(tc);
    tc->model_dir = model;
    tc->data_path = src(c->data);
    tc->out_dir = out;
    tc->task = c->task;
    train_method_parse(c->method, &tc->method, &err);
    tc->dtype = BADAM_DTYPE_F32;
    tc->switch_every = c->K;
    block_order_parse("ascending", &tc->order, &err);
    tc->lr = c->lr, tc->clip = c->clip, tc->weight_decay = c->wd, tc->eps = c->eps;
    lr_schedule_parse(c->schedule, &tc->schedule, &err);
    tc->warmup_ratio = c->warmup_ratio;
    tc->batch_size = 2, tc->grad_accum = c->accum, tc->seq_len = 24;
    tc->max_steps = c->steps;
    tc->shuffle = 0;
    tc->no_checkpoint = 1;
}

static int write_ref_config(const enc_case *c, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f,
            "{\"method\": \"%s\", \"lr\": %.9g, \"beta1\": 0.9, \"beta2\": 0.999, \"eps\": %.9g, "
            "\"weight_decay\": %.9g, \"schedule\": \"%s\", \"warmup_steps\": %d, \"clip\": %.9g, "
            "\"batch_size\": 2, \"grad_accum\": %d, \"max_steps\": %d, \"switch_every\": %d, "
            "\"seq_len\": 24}\n",
            c->method, c->lr, c->eps, c->wd, c->schedule,
            (int)ceil((double)c->warmup_ratio * c->steps), c->clip, c->accum, c->steps, c->K);
    return fclose(f);
}

/* The files of a case: its folder under the test's work folder. */
typedef struct case_paths {
    char model[1024], out[1024], seg[1024], conf[1024], ref[1024], ours[1100], init[1100];
} case_paths;

static void paths_of(const enc_case *c, case_paths *p) {
    const char *dir = test_workdir(c->name);
    snprintf(p->model, sizeof p->model, "%s", test_path_in(dir, "model"));
    snprintf(p->out, sizeof p->out, "%s", test_path_in(dir, "out"));
    snprintf(p->seg, sizeof p->seg, "%s", test_path_in(dir, "segments.json"));
    snprintf(p->conf, sizeof p->conf, "%s", test_path_in(dir, "conf.json"));
    snprintf(p->ref, sizeof p->ref, "%s", test_path_in(dir, "ref.safetensors"));
    snprintf(p->ours, sizeof p->ours, "%s/model.safetensors", p->out);
    snprintf(p->init, sizeof p->init, "%s/model.safetensors", p->model);
}

/* Our run of case c, and the reference's job for it (NULL when ours failed). */
static json_t *run_ours(const enc_case *c, const case_paths *p) {
    CHECK(write_segments(c, p->model, p->seg) == 0);
    CHECK(write_ref_config(c, p->conf) == 0);
    train_config tc;
    config_of(c, p->model, p->out, &tc);
    train_report r;
    badam_error err = {0};
    if (train_run(&tc, &r, &err)) {
        CHECKF(0, "%s: %s", c->name, err.message);
        return NULL;
    }
    CHECK(r.steps == c->steps);
    return json_pack("[sssssssss]", "train", "--model", p->model, "--data", p->seg, "--config",
                     p->conf, "--out", p->ref);
}

static void compare(const enc_case *c, const case_paths *p) {
    size_t n = 0;
    double worst = ref_compare_files(p->ours, p->ref, c->name, 0, RTOL, &n);
    fprintf(stderr, "  %s: %zu tensors, worst |ours - ref| / (1e-5 max|ref|) = %.3g\n", c->name, n,
            worst);
    CHECKF(worst <= 1.0 && n > 0, "%s: the trajectory differs from the reference", c->name);
    double moved = ref_compare_files(p->ours, p->init, c->name, 0, RTOL, NULL);
    CHECKF(moved >= 10.0, "%s: the parameters moved only %.3g x the tolerance", c->name, moved);
}

/* The folders, our runs, the reference's runs (two Python processes), the comparisons. */
static void run_cases(const enc_case *cases, int n) {
    case_paths *p = calloc((size_t)n, sizeof *p);
    json_t *makes = json_array(), *trains = json_array();
    for (int i = 0; i < n; i++) {
        paths_of(&cases[i], &p[i]);
        json_array_append_new(makes, make_job(&cases[i], p[i].model));
    }
    int ok = run_jobs(makes, test_workdir("enc_jobs")) == 0;
    CHECK(ok);
    for (int i = 0; i < n && ok; i++) {
        json_t *job = run_ours(&cases[i], &p[i]);
        if (job) json_array_append_new(trains, job);
        ok = job != NULL;
    }
    if (ok)
        ok = run_jobs(trains, test_workdir("enc_jobs")) == 0; /* which releases trains */
    else
        json_decref(trains);
    CHECK(ok);
    for (int i = 0; i < n && ok; i++) compare(&cases[i], &p[i]);
    free(p);
}

static void test_trajectories(void) {
    const char *wp = "tests/fixtures/wordpiece-tiny", *bpe = "tests/fixtures/roberta-tiny";
    const char *rte = "tests/fixtures/encoder/rte_train.jsonl";
    const char *copa = "tests/fixtures/encoder/copa_train.jsonl";
    /* 3 layers, K = 2, 8 steps: blocks 0, 1, 2, 0 (3 switches) */
    const enc_case cases[] = {
        {"enc_bert_pairs_badam", "bert", "seq", wp, "rte", rte, 2, "badam", 8, 2, 1, 1e-3f, 1.0f,
         0.01f, 0.2f, 1e-8f, "linear"},
        {"enc_bert_pairs_adam", "bert", "seq", wp, "rte", rte, 2, "adam", 5, 2, 2, 1e-3f, 1.0f,
         0.01f, 0.2f, 1e-8f, "linear"},
        {"enc_roberta_badam", "roberta", "seq", bpe, "rte", rte, 2, "badam", 8, 2, 1, 2e-3f, 0.5f,
         0.0f, 0.0f, 1e-8f, "cosine"},
        {"enc_roberta_adam", "roberta", "seq", bpe, "rte", rte, 2, "adam", 5, 2, 1, 1e-3f, 0.0f,
         0.0f, 0.1f, 1e-8f, "linear"},
        {"enc_bert_choice_badam", "bert", "choice", wp, "copa", copa, 1, "badam", 8, 2, 1, 1e-3f,
         1.0f, 0.01f, 0.1f, 1e-6f, "linear"},
        {"enc_roberta_sgd_bcd", "roberta", "seq", bpe, "rte", rte, 2, "sgd-bcd", 8, 2, 1, 5e-2f,
         1.0f, 0.01f, 0.1f, 1e-8f, "linear"},
        {"enc_roberta_choice_adam", "roberta", "choice", bpe, "copa", copa, 1, "adam", 4, 2, 1,
         1e-3f, 1.0f, 0.0f, 0.0f, 1e-6f, "constant"},
    };
    run_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

int main(void) {
    if (!ref_can_run()) return TEST_SKIP_CODE;
    RUN_TEST(test_trajectories);
    return test_result();
}
