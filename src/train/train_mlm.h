/* The trainer's masked-LM objective (train_config.objective == TRAIN_OBJECTIVE_MLM): each batch
 * the batcher makes is masked (badam/mlm.h) into a MODEL_TARGETS_MASKED batch for a *ForMaskedLM
 * encoder: bidirectional attention over the pad mask, positions from the model (RoBERTa counts
 * non-pad tokens), packed rows attended as one sequence (RoBERTa's FULL-SENTENCES). */
#ifndef BADAM_TRAIN_MLM_H
#define BADAM_TRAIN_MLM_H

#include "badam/llama.h"
#include "badam/mlm.h"
#include "badam/train.h"

typedef struct train_mlm train_mlm;

/* NULL in *out unless c asks for masked LM; then the model must have a masked-LM head and the
 * tokenizer (tok, may be NULL: an error) a mask and a pad token. Rows: the most rows of a batch. */
badam_status train_mlm_open(const train_config *c, const badam_tokenizer *tok, const llama_model *m,
                            int rows, train_mlm **out, badam_error *err);
/* Masks db (its n_targets becomes the masked count) into lb (model_batch_from_data's view of
 * db, rewritten). Arrays owned by x, valid until the next call. */
void train_mlm_batch(train_mlm *x, data_batch *db, llama_batch *lb);
void train_mlm_free(train_mlm *x);

#endif
