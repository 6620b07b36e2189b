/* Hugging Face tokenizer.json: encode and decode exactly as the `tokenizers` library does for
 * BPE models (byte-level BPE with regex pre-tokenizers; SentencePiece-style BPE with byte
 * fallback and metaspace) and WordPiece models (BERT: BertNormalizer, BertPreTokenizer), with
 * added/special tokens, the post-processor's special tokens, and text pairs with type ids. */
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

/* One encoded text or text pair (tokenizer_encode_pair). All arrays hold n entries. */
typedef struct tokenizer_encoding {
    int32_t *ids;
    int32_t *type_ids;       /* segment of each token (BERT: 0 for [CLS] A [SEP], 1 for B [SEP];
                                RoBERTa: all 0), as the post-processor assigns them */
    uint8_t *attention_mask; /* 1 for a token, 0 for padding (tokenizer_encoding_pad) */
    size_t n;
    size_t n_first, n_second; /* tokens of text and text_pair kept, special tokens not counted */
} tokenizer_encoding;

/* Encodes text and, when text_pair is not NULL, the pair (text, text_pair) as the Rust
 * `tokenizers` library does: each text on its own (text_pair's tokens get type id 1), then the
 * post-processor ([CLS] A [SEP] B [SEP] for BERT's template, <s> A </s></s> B </s> for
 * RobertaProcessing) with add_special. max_length > 0 truncates so that the result, special
 * tokens included, has at most max_length tokens, with the strategy "longest_first" of
 * tokenizers' truncate_encodings: with n1 <= n2 the two lengths and m = max_length minus the
 * special tokens, the shorter keeps n1 and the longer max(n1, m - n1) tokens, and when these
 * still exceed m they keep m / 2 and m / 2 + m % 2 (the longer the larger); tokens go from the
 * right end. A max_length below the number of special tokens is BADAM_E_INVALID. *out is
 * filled (free it with tokenizer_encoding_free); attention_mask is all 1. Thread-safe as
 * tokenizer_encode. */
badam_status tokenizer_encode_pair(const badam_tokenizer *tok, const char *text, size_t len,
                                   const char *text_pair, size_t pair_len, int add_special,
                                   size_t max_length, tokenizer_encoding *out, badam_error *err);
void tokenizer_encoding_free(tokenizer_encoding *e);
/* Pads e on the right to length tokens: pad_id, type id 0, attention mask 0 (transformers'
 * padding="max_length"). e->n > length is BADAM_E_INVALID. */
badam_status tokenizer_encoding_pad(tokenizer_encoding *e, size_t length, int32_t pad_id,
                                    badam_error *err);
/* The number of special tokens the post-processor adds to one text (pair = 0) or to a pair. */
size_t tokenizer_num_special_tokens(const badam_tokenizer *tok, int pair);

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
