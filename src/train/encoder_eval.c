/* `badam eval --task` (badam/train.h, train_task_evaluate): the trainer's validation pass
 * (encoder_data.c) run once over a task file, with the majority-class baseline beside it. */
#include <math.h>
#include <string.h>

#include "badam/train.h"
#include "train/encoder_data.h"

badam_status train_task_evaluate(const char *model_dir, const char *task, const char *data_path,
                                 int batch_size, int seq_len, badam_dtype dtype,
                                 task_eval_result *r, badam_error *err) {
    memset(r, 0, sizeof *r);
    r->loss = NAN;
    r->majority = -1;
    if (batch_size < 1 || seq_len < 2)
        return badam_fail(err, BADAM_E_INVALID, "eval: need batch size >= 1 and seq len >= 2");
    train_config c;
    train_config_defaults(&c);
    c.model_dir = model_dir, c.task = task, c.data_path = data_path;
    c.batch_size = batch_size, c.seq_len = seq_len, c.shuffle = 0;
    encoder_data *d = NULL;
    llama_model *m = NULL;
    llama_workspace *ws = NULL;
    badam_status st = encoder_data_open_eval(&c, &d, err);
    if (!st) st = d->arch->load(model_dir, dtype, &m, err);
    if (!st)
        st = d->arch->workspace_create(m, task_batcher_max_rows(d->val_batches), seq_len, &ws, err);
    long n = 0;
    if (!st) st = encoder_validate(d, NULL, m, ws, &r->loss, &n, &r->scores, err);
    if (!st) {
        r->n = d->val->n, r->n_labelled = d->val->labelled;
        r->truncated = task_batcher_truncated(d->val_batches);
        r->majority = task_majority_label(d->val);
        if (r->majority >= 0 && r->n_labelled == r->n)
            st = task_score_constant(d->val, r->majority, &r->baseline, err);
    }
    if (ws) d->arch->workspace_free(ws);
    llama_model_free(m);
    encoder_data_free(d);
    return st;
}
