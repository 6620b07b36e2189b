/* The encoder path of the trainer (--task): SuperGLUE task files batched for a bert / roberta
 * classifier, and validation with the task's official metrics. trainer.c calls these where a
 * causal-LM run uses the instruction data set and batcher; everything else (methods, schedule,
 * accumulation, clipping, checkpoints, metrics.jsonl, memory.json) is the shared loop. */
#ifndef BADAM_TRAIN_ENCODER_DATA_H
#define BADAM_TRAIN_ENCODER_DATA_H

#include <stdint.h>

#include "badam/model.h"
#include "badam/tasks.h"
#include "badam/train.h"
#include "train/metrics.h"

typedef struct encoder_data {
    task_kind kind;
    badam_tokenizer *tok;
    task_set *train, *val;
    task_batcher *batches, *val_batches;
    llama_config mc; /* the folder's config.json (with load_head: the model as loaded) */
    /* a masked-LM folder: the head (llama_encoder_head) and labels it is loaded with
     * (bert_model_load_as); 0 when the folder's own head fits the task */
    int load_head, load_labels;
    /* the classification head's parameters by name prefix ("bert.pooler.,classifier."): a
     * block-wise method trains them in every block unless --always-active says otherwise */
    char head_prefixes[64];
    const model_arch *arch;
    task_batch cur; /* the last training batch */
} encoder_data;

/* The name prefixes of an encoder's classification head (mc->encoder_head): "classifier." for
 * RoBERTa's sequence head, "<model_type>.pooler.,classifier." for the pooler heads; buf is
 * returned. Block-wise methods train these in every block unless --always-active is given (the
 * trainer and the memory plan). */
const char *encoder_head_prefixes(const llama_config *mc, char *buf, size_t size);

/* With c->task set: the task, the tokenizer of c->model_dir, the --data and --val-data files and
 * their batchers (rows of at most seq_len tokens, or of the model's positions when fewer;
 * batch_size units, c->seed / c->shuffle, the ranks of
 * c->comm). A masked-LM folder is taken with the task's head (d->load_head, d->load_labels:
 * the trainer loads it with bert_model_load_as). Refused (BADAM_E_INVALID / _UNSUPPORTED, naming
 * the option or file): a model that is no encoder, a head whose classes do not match the task's (a
 * multiple-choice task needs a *ForMultipleChoice head), no tokenizer.json, options for chat data
 * (--template, --system,
 * --pack, --format, --val-size). */
badam_status encoder_data_open(const train_config *c, encoder_data **out, badam_error *err);
/* For evaluation: only d->val (c->data_path, c->task, c->batch_size, c->seq_len, in order). */
badam_status encoder_data_open_eval(const train_config *c, encoder_data **out, badam_error *err);
void encoder_data_free(encoder_data *d);

/* The model of the next training batch (arrays owned by d, valid until the next call);
 * *n_targets: its labelled units. */
void encoder_data_next(encoder_data *d, llama_batch *lb, int *n_targets);

/* Validation over all of d->val (plan NULL, dropout off): *loss the mean loss over labelled
 * units (*n of them, summed over ranks), *scores the task's metrics of the argmax predictions
 * (scores->n = 0 when the set has unlabelled examples). NaN loss without a validation set. */
badam_status encoder_validate(encoder_data *d, const badam_comm *comm, const llama_model *m,
                              llama_workspace *ws, double *loss, long *n, task_scores *scores,
                              badam_error *err);

/* One metrics.jsonl line {"step", "val_loss", "val_examples", "task", <metrics>} and one log
 * line "  validation at step S: loss L, accuracy A ...". */
void encoder_report_eval(const encoder_data *d, metrics_log *log, const badam_logger *lg, int step,
                         double loss, long n, const task_scores *s);

/* The data lines of the run's summary. */
void encoder_data_describe(const encoder_data *d, const badam_logger *lg);

/* BADAM_OK when the run's method is wired for encoders (badam, adam, sgd-bcd, or a caller's
 * own method); else BADAM_E_UNSUPPORTED naming the method. The memory plan asks the same. */
badam_status encoder_method_check(const train_config *c, badam_error *err);

#endif
