/* The encoder path of the trainer (encoder_data.h): task files -> task batchers -> model
 * batches, and validation with the task's official metrics (badam/tasks.h: accuracy; CB
 * accuracy and macro-F1; MultiRC F1a and EM). A prediction is the argmax of the head's class
 * logits (the first on a tie), for a choice set the argmax of its rows' scores. */
#include "train/encoder_data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/bert.h"
#include "io/files.h"

#define PATH_BYTES 4096

const char *encoder_head_prefixes(const llama_config *mc, char *buf, size_t size) {
    if (mc->encoder_head == LLAMA_HEAD_MLM) /* the masked-LM head (decoder tied: embeddings) */
        snprintf(buf, size, "%s", strcmp(mc->model_type, "bert") ? "lm_head." : "cls.");
    else if (mc->encoder_head == LLAMA_HEAD_ROBERTA_CLASSIFIER)
        snprintf(buf, size, "classifier.");
    else
        snprintf(buf, size, "%s.pooler.,classifier.", mc->model_type);
    return buf;
}

/* Options that shape chat data only. */
static badam_status check_options(const train_config *c, badam_error *err) {
    const char *bad = c->template_name   ? "--template"
                      : c->system_prompt ? "--system"
                      : c->pack          ? "--pack"
                      : c->format        ? "--format"
                      : c->val_size > 0  ? "--val-size (give the task's validation file with "
                                           "--val-data)"
                                         : NULL;
    if (bad)
        return badam_fail(err, BADAM_E_INVALID, "train --task %s: %s does not apply to a task",
                          c->task, bad);
    return BADAM_OK;
}

/* A masked-LM folder (a pretrained encoder) for training: loaded with the task's head
 * (bert_model_load_as; RoBERTa's classifier, BERT's pooler head, the pooler head with one score
 * per choice for a multiple-choice task), d->mc describing the model as loaded. */
static void head_for_task(encoder_data *d) {
    int choice = task_is_multiple_choice(d->kind);
    int roberta = !strcmp(d->mc.model_type, "roberta");
    d->load_head = choice || !roberta ? LLAMA_HEAD_POOLER : LLAMA_HEAD_ROBERTA_CLASSIFIER;
    d->load_labels = choice ? 1 : task_num_labels(d->kind);
    d->mc.encoder_head = d->load_head, d->mc.num_labels = d->load_labels;
}

/* The folder's family and config: an encoder whose head fits the task (with new_head, a
 * masked-LM folder too: head_for_task). */
static badam_status check_model(encoder_data *d, const char *dir, int new_head, badam_error *err) {
    badam_status st = model_arch_for_folder(dir, &d->arch, err);
    char path[PATH_BYTES];
    if (!st && io_path_join(path, sizeof path, dir, "config.json"))
        st = badam_fail(err, BADAM_E_INVALID, "%s: path too long", dir);
    if (!st) st = d->arch->config_load(path, &d->mc, err);
    if (st) return st;
    if (d->mc.encoder_head == LLAMA_HEAD_MLM && !new_head)
        return badam_fail(err, BADAM_E_INVALID,
                          "%s: a masked-LM folder has no head for --task %s; fine-tune it first "
                          "(badam train --task loads it with a new head)",
                          path, task_kind_name(d->kind));
    if (d->mc.encoder_head == LLAMA_HEAD_MLM) head_for_task(d);
    int choice = task_is_multiple_choice(d->kind);
    unsigned want = 1u << (choice ? MODEL_TARGETS_CHOICE : MODEL_TARGETS_SEQUENCE);
    if (!(d->arch->target_kinds & want))
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "%s: --task %s needs an encoder (bert, roberta); model_type '%s' is a "
                          "causal LM",
                          path, task_kind_name(d->kind), d->mc.model_type);
    if (choice && d->mc.num_labels != 1)
        return badam_fail(err, BADAM_E_INVALID,
                          "%s: --task %s is multiple choice and needs a *ForMultipleChoice head; "
                          "this one has %d labels",
                          path, task_kind_name(d->kind), d->mc.num_labels);
    if (!choice && d->mc.num_labels != task_num_labels(d->kind))
        return badam_fail(err, BADAM_E_INVALID,
                          "%s: --task %s has %d labels but the head has %d (num_labels / "
                          "id2label)",
                          path, task_kind_name(d->kind), task_num_labels(d->kind),
                          d->mc.num_labels);
    encoder_head_prefixes(&d->mc, d->head_prefixes, sizeof d->head_prefixes);
    return BADAM_OK;
}

static badam_status make_batcher(encoder_data *d, const train_config *c, const task_set *set,
                                 int shuffle, task_batcher **out, badam_error *err) {
    int32_t pad = d->mc.pad_token_id >= 0 ? d->mc.pad_token_id : tokenizer_pad_id(d->tok);
    /* rows fit the position table too (RoBERTa's positions start after the pad index) */
    int seq_len = c->seq_len, positions = d->mc.max_position_embeddings - d->mc.position_offset;
    if (positions > 0 && seq_len > positions) seq_len = positions;
    task_batch_options o = {c->batch_size,
                            seq_len,
                            shuffle,
                            c->seed,
                            badam_comm_rank(c->comm),
                            badam_comm_size(c->comm),
                            pad >= 0 ? pad : 0};
    return task_batcher_create(set, d->tok, &o, out, err);
}

static badam_status open_tokenizer(encoder_data *d, const char *dir, badam_error *err) {
    char path[PATH_BYTES];
    if (io_path_join(path, sizeof path, dir, "tokenizer.json") || !io_is_file(path))
        return badam_fail(err, BADAM_E_INVALID,
                          "%s: --task needs the encoder's tokenizer.json in the model folder", dir);
    badam_status st = tokenizer_load(dir, &d->tok, err);
    if (!st && tokenizer_vocab_size(d->tok) > d->mc.vocab_size)
        st = badam_fail(err, BADAM_E_SHAPE,
                        "%s: the tokenizer has %d tokens but config.json's vocab_size is %d", dir,
                        tokenizer_vocab_size(d->tok), d->mc.vocab_size);
    return st;
}

static badam_status open_data(encoder_data *d, const train_config *c, badam_error *err) {
    badam_status st = open_tokenizer(d, c->model_dir, err);
    if (!st) st = task_load(d->kind, c->data_path, &d->train, err);
    if (!st && d->train->labelled < d->train->n)
        st = badam_fail(err, BADAM_E_INVALID, "%s: %zu of %zu examples have no label (a test set?)",
                        c->data_path, d->train->n - d->train->labelled, d->train->n);
    if (!st && c->val_path) st = task_load(d->kind, c->val_path, &d->val, err);
    if (!st) st = make_batcher(d, c, d->train, c->shuffle, &d->batches, err);
    if (!st && d->val) st = make_batcher(d, c, d->val, 0, &d->val_batches, err);
    return st;
}

/* The methods wired for encoders. LoRA and bottleneck adapters attach to the Llama layout
 * (src/model/llama_lora.c, llama_bottleneck.c); the others are not checked against a reference
 * on an encoder yet. */
badam_status encoder_method_check(const train_config *c, badam_error *err) {
    if (c->method_name || c->method == METHOD_BADAM || c->method == METHOD_ADAM ||
        c->method == METHOD_SGD_BCD)
        return BADAM_OK;
    return badam_fail(err, BADAM_E_UNSUPPORTED,
                      "train --task: --method %s is not available for encoders yet (badam, adam "
                      "and sgd-bcd are)",
                      train_method_name(c->method));
}

badam_status encoder_data_open(const train_config *c, encoder_data **out, badam_error *err) {
    *out = NULL;
    encoder_data *d = calloc(1, sizeof *d);
    if (!d) return badam_fail(err, BADAM_E_NOMEM, "train: out of memory");
    badam_status st = task_kind_parse(c->task, &d->kind, err);
    if (!st) st = check_options(c, err);
    if (!st) st = encoder_method_check(c, err);
    if (!st) st = check_model(d, c->model_dir, 1, err);
    if (!st) st = open_data(d, c, err);
    if (st) {
        encoder_data_free(d);
        return st;
    }
    *out = d;
    return BADAM_OK;
}

badam_status encoder_data_open_eval(const train_config *c, encoder_data **out, badam_error *err) {
    *out = NULL;
    encoder_data *d = calloc(1, sizeof *d);
    if (!d) return badam_fail(err, BADAM_E_NOMEM, "eval: out of memory");
    badam_status st = task_kind_parse(c->task, &d->kind, err);
    if (!st) st = check_model(d, c->model_dir, 0, err);
    if (!st) st = open_tokenizer(d, c->model_dir, err);
    if (!st) st = task_load(d->kind, c->data_path, &d->val, err);
    if (!st) st = make_batcher(d, c, d->val, 0, &d->val_batches, err);
    if (st) {
        encoder_data_free(d);
        return st;
    }
    *out = d;
    return BADAM_OK;
}

void encoder_data_free(encoder_data *d) {
    if (!d) return;
    task_batcher_free(d->batches);
    task_batcher_free(d->val_batches);
    task_set_free(d->train);
    task_set_free(d->val);
    tokenizer_free(d->tok);
    free(d);
}

static void to_model_batch(const task_batch *tb, llama_batch *lb) {
    *lb = (llama_batch){0};
    lb->B = tb->B, lb->T = tb->T;
    lb->tokens = tb->tokens;
    lb->targets = tb->targets;
    lb->token_types = tb->token_types;
    lb->pad_mask = tb->pad_mask;
    lb->target_kind = tb->n_choices ? MODEL_TARGETS_CHOICE : MODEL_TARGETS_SEQUENCE;
    lb->n_choices = tb->n_choices;
    lb->first_row = tb->first_row;
}

void encoder_data_next(encoder_data *d, llama_batch *lb, int *n_targets) {
    task_batcher_next(d->batches, &d->cur);
    to_model_batch(&d->cur, lb);
    *n_targets = d->cur.n_targets;
}

/* The predicted class (choice) of unit u of a batch from its logits: the argmax, the first on a
 * tie. Classification: logits [B, labels]; choice sets: one score per row, K rows per unit. */
static int predict(const float *logits, const task_batch *tb, int labels, int u) {
    int K = tb->n_choices ? tb->n_choices : labels;
    const float *x = logits + (size_t)u * K;
    int best = 0;
    for (int k = 1; k < K; k++)
        if (x[k] > x[best]) best = k;
    return best;
}

/* Loss sums and predictions over the validation batches of this rank; pred[e] = class + 1 of
 * each example this rank scored (0 elsewhere), so a sum over ranks gives every prediction. */
static badam_status score_batches(encoder_data *d, const llama_model *m, llama_workspace *ws,
                                  double *sum, double *n, double *pred, badam_error *err) {
    int labels = m->cfg.num_labels, rows = task_batcher_max_rows(d->val_batches);
    float *logits = malloc((size_t)rows * (size_t)(labels > 1 ? labels : 1) * sizeof *logits);
    if (!logits) return badam_fail(err, BADAM_E_NOMEM, "validation: out of memory");
    badam_status st = task_batcher_set_state(d->val_batches, 0, 0, err);
    size_t n_batches = task_batcher_batches_per_epoch(d->val_batches);
    for (size_t i = 0; i < n_batches && !st; i++) {
        task_batch tb;
        task_batcher_next(d->val_batches, &tb);
        if (!tb.B) continue; /* data parallel: no unit of this batch is this rank's */
        llama_batch lb;
        to_model_batch(&tb, &lb);
        double s = 0;
        int k = 0;
        if (tb.n_targets) st = d->arch->forward(m, ws, &lb, NULL, 1.0f, NULL, &s, &k, err);
        if (!st) st = bert_forward_logits(m, ws, &lb, logits, err);
        *sum += s, *n += k;
        for (int u = 0; u < tb.n_units && !st; u++)
            pred[tb.example[u]] = 1 + predict(logits, &tb, labels, u);
    }
    free(logits);
    return st;
}

badam_status encoder_validate(encoder_data *d, const badam_comm *comm, const llama_model *m,
                              llama_workspace *ws, double *loss, long *n, task_scores *scores,
                              badam_error *err) {
    *loss = NAN, *n = 0;
    memset(scores, 0, sizeof *scores);
    if (!d->val) return BADAM_OK;
    size_t N = d->val->n;
    double *sums = calloc(N + 2, sizeof *sums);
    int *pred = malloc(N * sizeof *pred);
    badam_status st =
        !sums || !pred ? badam_fail(err, BADAM_E_NOMEM, "validation: out of memory") : BADAM_OK;
    bert_workspace_set_dropout(ws, 0, 0, 0);
    if (!st) st = score_batches(d, m, ws, &sums[0], &sums[1], sums + 2, err);
    if (!st && badam_comm_size(comm) > 1) st = badam_comm_all_reduce_f64(comm, sums, N + 2, err);
    if (!st) {
        *n = (long)sums[1];
        if (*n) *loss = sums[0] / sums[1];
        for (size_t i = 0; i < N; i++) pred[i] = (int)sums[2 + i] - 1;
        if (d->val->labelled == N) st = task_score(d->val, pred, scores, err);
    }
    free(sums);
    free(pred);
    return st;
}

static void put_num(FILE *f, const char *key, double v) {
    if (isfinite(v))
        fprintf(f, ", \"%s\": %.9g", key, v);
    else
        fprintf(f, ", \"%s\": null", key);
}

void encoder_report_eval(const encoder_data *d, metrics_log *log, const badam_logger *lg, int step,
                         double loss, long n, const task_scores *s) {
    char line[256] = "";
    if (s->n) task_scores_describe(d->kind, s, line, sizeof line);
    badam_logf(lg, BADAM_LOG_INFO, "  validation at step %d: loss %.4f%s%s", step, loss,
               s->n ? ", " : "", line);
    if (!log->file) return;
    fprintf(log->file, "{\"step\": %d", step);
    put_num(log->file, "val_loss", loss);
    fprintf(log->file, ", \"val_examples\": %ld, \"task\": \"%s\"", n, task_kind_name(d->kind));
    if (s->n) {
        put_num(log->file, "accuracy", s->accuracy);
        if (d->kind == TASK_CB) put_num(log->file, "macro_f1", s->macro_f1);
        if (d->kind == TASK_MULTIRC) put_num(log->file, "f1a", s->f1a);
        if (d->kind == TASK_MULTIRC) put_num(log->file, "em", s->em);
        put_num(log->file, "score", s->score);
    }
    fprintf(log->file, "}\n");
    fflush(log->file);
}

void encoder_data_describe(const encoder_data *d, const badam_logger *lg) {
    char line[1024];
    task_set_describe(d->train, line, sizeof line);
    badam_logf(lg, BADAM_LOG_INFO, "  data: %s; %zu rows cut (--seq-len or the model's positions)",
               line, task_batcher_truncated(d->batches));
    if (!d->val) return;
    task_set_describe(d->val, line, sizeof line);
    badam_logf(lg, BADAM_LOG_INFO,
               "  validation data: %s; %zu rows cut (--seq-len or the model's positions)", line,
               task_batcher_truncated(d->val_batches));
    int maj = task_majority_label(d->train);
    task_scores s;
    badam_error e;
    if (d->val->labelled == d->val->n && !task_score_constant(d->val, maj, &s, &e)) {
        task_scores_describe(d->kind, &s, line, sizeof line);
        badam_logf(lg, BADAM_LOG_INFO, "  majority-class baseline ('%s' of the training set): %s",
                   task_label_name(d->kind, maj), line);
    }
}
