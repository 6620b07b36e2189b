/* The trainer's masked-LM objective (train_mlm.h). */
#include "train/train_mlm.h"

#include <stdlib.h>

struct train_mlm {
    mlm_masker *mk;
    int32_t *inputs, *targets;
    uint8_t *pad_mask;
};

#define MLM_PROB 0.15 /* RoBERTa, BERT */

badam_status train_mlm_open(const train_config *c, const badam_tokenizer *tok, const llama_model *m,
                            int rows, train_mlm **out, badam_error *err) {
    *out = NULL;
    int mlm_head = m->cfg.encoder_head == LLAMA_HEAD_MLM;
    if (c->objective != TRAIN_OBJECTIVE_MLM) {
        if (!mlm_head) return BADAM_OK;
        return badam_fail(err, BADAM_E_INVALID,
                          "%s/config.json: a *ForMaskedLM model: train it with --objective mlm "
                          "(or load it for classification with --task)",
                          c->model_dir);
    }
    if (!mlm_head)
        return badam_fail(err, BADAM_E_INVALID,
                          "--objective mlm: %s/config.json's architectures is not "
                          "RobertaForMaskedLM or BertForMaskedLM",
                          c->model_dir);
    if (!tok)
        return badam_fail(err, BADAM_E_INVALID, "--objective mlm: %s has no tokenizer.json",
                          c->model_dir);
    train_mlm *x = calloc(1, sizeof *x);
    if (!x) return badam_fail(err, BADAM_E_NOMEM, "masked LM: out of memory");
    size_t cells = (size_t)rows * (size_t)c->seq_len;
    x->inputs = malloc(cells * sizeof *x->inputs);
    x->targets = malloc(cells * sizeof *x->targets);
    x->pad_mask = malloc(cells);
    badam_status st = x->inputs && x->targets && x->pad_mask
                          ? mlm_masker_create(tok, MLM_PROB, c->seed, &x->mk, err)
                          : badam_fail(err, BADAM_E_NOMEM, "masked LM: out of memory");
    if (st) {
        train_mlm_free(x);
        return st;
    }
    *out = x;
    return BADAM_OK;
}

void train_mlm_batch(train_mlm *x, data_batch *db, llama_batch *lb) {
    db->n_targets = mlm_mask_batch(x->mk, db, x->inputs, x->targets, x->pad_mask);
    lb->tokens = x->inputs;
    lb->targets = x->targets;
    lb->pad_mask = x->pad_mask;
    lb->positions = NULL; /* the encoder's own (RoBERTa: from the pad id) */
    lb->seg_start = NULL; /* a packed row is one sequence */
    lb->target_kind = MODEL_TARGETS_MASKED;
}

void train_mlm_free(train_mlm *x) {
    if (!x) return;
    mlm_masker_free(x->mk);
    free(x->inputs);
    free(x->targets);
    free(x->pad_mask);
    free(x);
}
