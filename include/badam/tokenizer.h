/* Hugging Face tokenizer.json: encode and decode exactly as the `tokenizers` library does for
 * BPE models (byte-level BPE with regex pre-tokenizers; SentencePiece-style BPE with byte
 * fallback and metaspace), with added/special tokens and the post-processor's BOS/EOS. */
#ifndef BADAM_TOKENIZER_H
#define BADAM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "badam/status.h"

typedef struct badam_tokenizer badam_tokenizer;

/* Loads `path`: a tokenizer.json file, or a folder holding tokenizer.json (and, optionally,
 * tokenizer_config.json for the chat template and special-token names). Unsupported
 * components are errors naming the component and the file. */
badam_status tokenizer_load(const char *path, badam_tokenizer **out, badam_error *err);
void tokenizer_free(badam_tokenizer *tok);

/* Encodes UTF-8 text (len bytes; need not be NUL-terminated). add_special applies the
 * post-processor (e.g. BOS for Llama). *ids is malloc'd; the caller frees it. Safe to call from
 * several threads at once on one tokenizer. */
badam_status tokenizer_encode(const badam_tokenizer *tok, const char *text, size_t len,
                              int add_special, int32_t **ids, size_t *n_ids, badam_error *err);

/* Decodes ids through the decoder chain; skip_special drops special tokens. *text is malloc'd
 * and NUL-terminated. */
badam_status tokenizer_decode(const badam_tokenizer *tok, const int32_t *ids, size_t n_ids,
                              int skip_special, char **text, size_t *len, badam_error *err);

/* Vocabulary size including added tokens (max id + 1). */
int tokenizer_vocab_size(const badam_tokenizer *tok);
/* The token string of an id (vocabulary form, e.g. "Ġthe" or "▁the"); NULL when unknown. */
const char *tokenizer_id_to_token(const badam_tokenizer *tok, int32_t id);
/* The same with the token's length: *len bytes, which may hold U+0000 (a vocabulary entry or
 * added token "\u0000"); NULL when unknown. */
const char *tokenizer_id_to_token_n(const badam_tokenizer *tok, int32_t id, size_t *len);
/* The id of a token string (vocabulary or added token), or -1. */
int32_t tokenizer_token_to_id(const badam_tokenizer *tok, const char *token);
/* The same for a token of len bytes (which may hold U+0000). */
int32_t tokenizer_token_to_id_n(const badam_tokenizer *tok, const char *token, size_t len);
/* 1 when the id is an added token marked special. */
int tokenizer_is_special(const badam_tokenizer *tok, int32_t id);

/* Special tokens from tokenizer_config.json (bos_token, eos_token, pad_token, unk_token) or the
 * post-processor; -1 when there is none. */
int32_t tokenizer_bos_id(const badam_tokenizer *tok);
int32_t tokenizer_eos_id(const badam_tokenizer *tok);
int32_t tokenizer_pad_id(const badam_tokenizer *tok);
/* tokenizer_config.json's chat_template string, or NULL. */
const char *tokenizer_chat_template(const badam_tokenizer *tok);

#endif
