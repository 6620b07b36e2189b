/* badam eval: loss, perplexity and (optionally) exact-match accuracy of a model on a dataset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/json.h"

#include "badam/evaluate.h"
#include "badam/generate.h"
#include "badam/model.h"
#include "badam/train.h"
#include "cli.h"
#include "options.h"
#include "train_options.h"

static const char *USAGE = "badam eval --model DIR --data FILE [--template T] [options]";
static const char *DESCRIPTION =
    "Evaluates a Llama-family model on a dataset (Alpaca, ShareGPT or pre-tokenized JSONL): the\n"
    "mean cross-entropy over the trained tokens (responses and their end token, as in training)\n"
    "and its perplexity. With --exact-match, also the share of examples whose greedy\n"
    "continuation of the prompt (everything before the last response, ending with the assistant\n"
    "header) equals the reference response after trimming whitespace: meaningful where answers\n"
    "are short. Use the template the model was trained with.\n"
    "With --task NAME (boolq, cb, copa, multirc, rte, wic, wsc), an encoder folder (bert,\n"
    "roberta) on a SuperGLUE task's jsonl: the mean classification loss, the task's official\n"
    "metrics and the majority-class baseline of the file.";

#define MAX_STOP_IDS 16

typedef struct show_ctx {
    int left;
} show_ctx;

/* Writes text[0..len) with each U+0000 shown as \\u0000 (it would end the line early). */
static void print_text(FILE *out, const char *text, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (text[i])
            fputc(text[i], out);
        else
            fputs("\\u0000", out);
    }
}

static void show_example(void *ctx, size_t index, const char *reference, size_t reference_len,
                         const char *generated, size_t generated_len, int correct) {
    show_ctx *s = ctx;
    if (s->left <= 0) return;
    s->left--;
    fprintf(stderr, "example %zu: %s\n  reference: ", index, correct ? "match" : "no match");
    print_text(stderr, reference, reference_len);
    fputs("\n  generated: ", stderr);
    print_text(stderr, generated, generated_len);
    fputc('\n', stderr);
}

static int print_json(const char *model, const char *data, const data_stats *ds,
                      const eval_result *r, int em) {
    json_t *o = json_object();
    if (!o) return 1;
    json_object_set_new(o, "model", json_string(model));
    json_object_set_new(o, "data", json_string(data));
    json_object_set_new(o, "records", json_integer((json_int_t)ds->records));
    json_object_set_new(o, "examples", json_integer((json_int_t)r->n_examples));
    json_object_set_new(o, "dropped", json_integer((json_int_t)ds->dropped_empty));
    json_object_set_new(o, "truncated", json_integer((json_int_t)ds->truncated));
    json_object_set_new(o, "tokens", json_integer((json_int_t)r->n_tokens));
    json_object_set_new(o, "loss", io_json_real(r->loss));
    json_object_set_new(o, "perplexity", io_json_real(r->perplexity));
    if (em) {
        json_t *e = json_object();
        json_object_set_new(e, "count", json_integer((json_int_t)r->em_count));
        json_object_set_new(e, "correct", json_integer((json_int_t)r->em_correct));
        json_object_set_new(e, "accuracy", io_json_real(r->em_accuracy));
        json_object_set_new(o, "exact_match", e);
    } else {
        json_object_set_new(o, "exact_match", json_null());
    }
    char *s = io_json_dump(o, 0, NULL);
    json_decref(o);
    if (!s) return 1;
    puts(s);
    free(s);
    return 0;
}

/* The command line of `badam eval`. */
typedef struct eval_args {
    const char *model, *data, *template_name, *system, *adapter, *task;
    int seq_len, batch_size, json, exact, max_new, show;
    badam_dtype dtype;
    data_format format;
} eval_args;

/* Reads and checks the command line into x: 0, 1 after --help, 2 after an error message. */
static int parse_args(int argc, char **argv, eval_args *x) {
    const cli_option opts[] = {
        {"adapter", OPT_STRING, &x->adapter, "DIR",
         "bottleneck adapters to apply (OUT/adapter of badam train --method adapter)", 0},
        {"model", OPT_STRING, &x->model, "DIR", "Hugging Face model folder (with tokenizer.json)",
         0},
        {"data", OPT_STRING, &x->data, "FILE", "evaluation data (Alpaca, ShareGPT, tokenized)", 0},
        {"template", OPT_STRING, &x->template_name, "T",
         "chat template: default (default), alpaca, llama2, llama3, chatml, mistral", 0},
        {"system", OPT_STRING, &x->system, "TEXT", "system prompt", 0},
        {"format", OPT_CUSTOM, &x->format, "F", "data format: auto, alpaca, sharegpt, tokenized",
         parse_format},
        {"seq-len", OPT_INT, &x->seq_len, "T", "truncate examples to T tokens (512)", 0},
        {"batch-size", OPT_INT, &x->batch_size, "B", "sequences per forward pass (4)", 0},
        {"exact-match", OPT_FLAG, &x->exact, NULL, "also score greedy generations by exact match",
         0},
        {"max-new-tokens", OPT_INT, &x->max_new, "N", "exact match: tokens per answer at most (64)",
         0},
        {"show", OPT_INT, &x->show, "N", "exact match: print the first N generations to stderr", 0},
        {"dtype", OPT_CUSTOM, &x->dtype, "T", "weights in memory: bf16 (default) or fp32",
         parse_dtype},
        {"device", OPT_CUSTOM, NULL, "D", "cpu only (cuda is refused: not supported yet)",
         parse_cpu_device},
        {"json", OPT_FLAG, &x->json, NULL, "print one JSON object", 0},
        {"task", OPT_STRING, &x->task, "NAME",
         "encoders: a SuperGLUE task's jsonl (boolq, cb, copa, multirc, rte, wic, wsc)", 0},
        {0},
    };
    unsigned char given[sizeof opts / sizeof opts[0]] = {0};
    int rc = cli_parse_given("badam eval", USAGE, DESCRIPTION, opts, argc, argv, given);
    if (rc) return rc;
    if (!x->model || !x->data) {
        fprintf(stderr, "badam eval: --model and --data are required (see --help)\n");
        return 2;
    }
    if (x->template_name && !template_known(x->template_name)) {
        fprintf(stderr,
                "badam eval: --template: unknown template '%s' (default, alpaca, llama2, llama3, "
                "chatml, mistral)\n",
                x->template_name);
        return 2;
    }
    if (x->seq_len < 2 || x->batch_size < 1 || x->max_new < 1 || x->show < 0) {
        fprintf(stderr, "badam eval: %s\n",
                x->seq_len < 2      ? "--seq-len must be >= 2"
                : x->batch_size < 1 ? "--batch-size must be >= 1"
                : x->max_new < 1    ? "--max-new-tokens must be >= 1"
                                    : "--show must be >= 0");
        return 2;
    }
    const char *lm_only[] = {"template", "system", "format", "exact-match", "adapter"};
    for (int i = 0; i < 5 && x->task; i++)
        if (cli_given(opts, given, lm_only[i])) {
            fprintf(stderr, "badam eval: --%s does not apply to --task (a classification task)\n",
                    lm_only[i]);
            return 2;
        }
    const char *em_only[] = {"max-new-tokens", "show"};
    for (int i = 0; i < 2 && !x->exact; i++)
        if (cli_given(opts, given, em_only[i]))
            cli_warn("badam eval", "--%s is ignored without --exact-match", em_only[i]);
    return 0;
}

/* Loads the model, tokenizer and data of x and evaluates: the status, with *ds owned by the
 * caller (and freed there also on failure). */
static badam_status run_eval(const eval_args *x, data_set **ds, eval_result *r, badam_error *err) {
    llama_model *m = NULL;
    badam_tokenizer *tok = NULL;
    data_options dopt = {x->format, x->template_name, x->system, x->seq_len};
    int32_t stop_ids[MAX_STOP_IDS];
    badam_status st = llama_model_load(x->model, x->dtype, &m, err);
    if (!st && x->adapter) st = llama_bottleneck_open(m, x->adapter, err);
    if (!st) st = tokenizer_load(x->model, &tok, err);
    if (!st) st = data_load(x->data, tok, &dopt, ds, err);
    if (!st && !x->json) {
        char line[256];
        data_stats_describe(&(*ds)->stats, line, sizeof line);
        printf("data: %s (--seq-len %d)\n", line, x->seq_len);
    }
    if (!st) {
        show_ctx sc = {x->show};
        eval_options eo = {0};
        eo.batch_size = x->batch_size;
        eo.exact_match = x->exact;
        eo.max_new_tokens = x->max_new;
        eo.stop_ids = stop_ids;
        eo.n_stop_ids = generate_stop_ids(m, tok, x->template_name, stop_ids, MAX_STOP_IDS);
        eo.on_example = x->show ? show_example : NULL;
        eo.on_example_ctx = &sc;
        st = evaluate(m, tok, *ds, &eo, r, err);
    }
    tokenizer_free(tok);
    llama_model_free(m);
    return st;
}

/* Prints a task score line: "  accuracy 0.7000, macro-F1 0.5833". */
static void print_scores(const char *what, const char *task, const task_scores *s) {
    char line[256];
    task_kind kind;
    badam_error err;
    if (task_kind_parse(task, &kind, &err)) return;
    task_scores_describe(kind, s, line, sizeof line);
    printf("%s%s\n", what, line);
}

static json_t *scores_json(const task_scores *s) {
    json_t *o = json_object();
    json_object_set_new(o, "accuracy", io_json_real(s->accuracy));
    json_object_set_new(o, "macro_f1", io_json_real(s->macro_f1));
    json_object_set_new(o, "f1a", io_json_real(s->f1a));
    json_object_set_new(o, "em", io_json_real(s->em));
    json_object_set_new(o, "score", io_json_real(s->score));
    return o;
}

/* badam eval --task: loss, the task's metrics and the majority baseline. */
static int eval_task(const eval_args *x) {
    badam_error err = {0};
    task_eval_result r;
    if (train_task_evaluate(x->model, x->task, x->data, x->batch_size, x->seq_len, x->dtype, &r,
                            &err)) {
        fprintf(stderr, "badam eval: %s\n", err.message);
        return 1;
    }
    int scored = r.scores.n > 0;
    if (x->json) {
        json_t *o = json_object();
        json_object_set_new(o, "model", json_string(x->model));
        json_object_set_new(o, "data", json_string(x->data));
        json_object_set_new(o, "task", json_string(x->task));
        json_object_set_new(o, "examples", json_integer((json_int_t)r.n));
        json_object_set_new(o, "labelled", json_integer((json_int_t)r.n_labelled));
        json_object_set_new(o, "truncated", json_integer((json_int_t)r.truncated));
        json_object_set_new(o, "loss", io_json_real(r.loss));
        json_object_set_new(o, "metrics", scored ? scores_json(&r.scores) : json_null());
        json_object_set_new(o, "majority_baseline",
                            scored ? scores_json(&r.baseline) : json_null());
        char *s = io_json_dump(o, 0, NULL);
        json_decref(o);
        if (!s) return 1;
        puts(s);
        free(s);
        return 0;
    }
    printf(
        "%s: %zu examples (%zu labelled), %zu rows cut (--seq-len %d or the model's positions)\n",
        x->task, r.n, r.n_labelled, r.truncated, x->seq_len);
    printf("loss: %.4f\n", r.loss);
    if (!scored) {
        printf("metrics: none (the file has unlabelled examples)\n");
        return 0;
    }
    print_scores("metrics: ", x->task, &r.scores);
    print_scores("majority-class baseline: ", x->task, &r.baseline);
    return 0;
}

int cmd_eval(int argc, char **argv) {
    eval_args x = {.seq_len = 512,
                   .batch_size = 4,
                   .max_new = 64,
                   .dtype = BADAM_DTYPE_BF16,
                   .format = DATA_FORMAT_AUTO};
    int rc = parse_args(argc, argv, &x);
    if (rc) return rc == 1 ? 0 : 2;
    if (x.task) return eval_task(&x);
    const model_arch *arch = NULL;
    badam_error ignored;
    if (!model_arch_for_folder(x.model, &arch, &ignored) &&
        !(arch->target_kinds & (1u << MODEL_TARGETS_TOKEN))) {
        fprintf(stderr,
                "badam eval: %s is an encoder (%s): evaluate it on a task with --task NAME "
                "(boolq, cb, copa, multirc, rte, wic, wsc)\n",
                x.model, arch->family);
        return 2;
    }
    badam_error err = {0};
    data_set *ds = NULL;
    eval_result r;
    if (run_eval(&x, &ds, &r, &err)) {
        fprintf(stderr, "badam eval: %s\n", err.message);
        rc = 1;
    } else if (x.json) {
        rc = print_json(x.model, x.data, &ds->stats, &r, x.exact);
    } else {
        printf("examples: %zu (%zu trained tokens)\n", r.n_examples, r.n_tokens);
        printf("loss: %.4f   perplexity: %.3f\n", r.loss, r.perplexity);
        if (x.exact)
            printf("exact match: %zu / %zu = %.1f%%\n", r.em_correct, r.em_count,
                   100.0 * r.em_accuracy);
    }
    data_free(ds);
    return rc;
}
