/* Encoder batches of the reference tests (tests/ref/bert_ref.py's BATCH.json): token ids, the
 * attention mask, optional token types, labels and n_choices. */
#ifndef BADAM_TESTS_ENC_BATCH_H
#define BADAM_TESTS_ENC_BATCH_H

#include <stdint.h>

#include "badam/llama.h"

typedef struct enc_batch {
    int B, T, rows, n_choices;
    int per_token; /* labels [B, T] (a masked-LM batch: rows = B * T) */
    int32_t *tokens, *types, *labels;
    uint8_t *mask;
} enc_batch;

/* Reads BATCH.json at path into b (free with enc_batch_free); -1 when it cannot be read. */
int enc_batch_load(const char *path, enc_batch *b);
void enc_batch_free(enc_batch *b);
/* The model batch over b's arrays: per token (per_token), per sequence, or per group of
 * n_choices when set. */
llama_batch enc_batch_model(const enc_batch *b);

#endif
