/* The encoder families bert and roberta (BertForSequenceClassification,
 * RobertaForSequenceClassification, *ForMultipleChoice folders): their entry in the architecture
 * table (badam/model.h) serves configuration, parameters, load / save, forward to the loss and
 * backward; this header adds what an encoder needs beyond the table: class scores for
 * prediction, and dropout while training. A workspace of this family comes from its
 * model_arch.workspace_create and goes only to its functions (and to llama_workspace_counters,
 * _bytes_held, _weight_hooks, _set_weight_hooks, which every workspace serves). */
#ifndef BADAM_BERT_H
#define BADAM_BERT_H

#include <stdint.h>

#include "badam/llama.h"
#include "badam/log.h"
#include "badam/status.h"

/* Class scores of a batch of target kind MODEL_TARGETS_SEQUENCE or _CHOICE (targets unread):
 * logits [B, num_labels] for sequence classification, [B] (one score per row; a group's
 * softmax runs over its n_choices rows) for multiple choice. No dropout, nothing kept. */
badam_status bert_forward_logits(const llama_model *m, llama_workspace *ws,
                                 const llama_batch *batch, float *logits, badam_error *err);

/* Loads encoder folder dir with the head `head` (num_labels >= 2 for sequence classification,
 * 1 with LLAMA_HEAD_POOLER for multiple choice, 0 with LLAMA_HEAD_MLM) whatever head the folder
 * has, as transformers' from_pretrained does (a RobertaForMaskedLM checkpoint loaded as
 * RobertaForSequenceClassification): embeddings and layers from the folder, its other head
 * tensors dropped, the new head's tensors the folder lacks initialised from seed as
 * BertPreTrainedModel._init_weights does (Linear N(0, initializer_range^2), biases 0), with one
 * log line naming them. A folder that already has that head and label count loads as it is.
 * Errors: those of loading, and a head / label count that do not go together. */
badam_status bert_model_load_as(const char *dir, badam_dtype dtype, llama_encoder_head head,
                                int num_labels, uint64_t seed, const badam_logger *log,
                                llama_model **out, badam_error *err);

/* Masked-LM predictions (a *ForMaskedLM folder, batch of target kind MODEL_TARGETS_MASKED): the
 * argmax token of each position whose target is not -100, -1 elsewhere (pred [B*T]). No dropout,
 * nothing kept. */
badam_status bert_mlm_predict(const llama_model *m, llama_workspace *ws, const llama_batch *batch,
                              int32_t *pred, badam_error *err);

/* Dropout of the following passes (off after creation): with training = 1, the config's hidden,
 * attention-probability and classifier dropouts apply, with masks a hash of (seed, step, layer,
 * site, element) (model/backend.h's dropout mask), so backward regenerates them. The trainer sets
 * step for each micro-batch. */
void bert_workspace_set_dropout(llama_workspace *ws, int training, uint64_t seed, uint64_t step);

#endif
