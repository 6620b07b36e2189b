/* Instruction data: chat templates, datasets (Alpaca, ShareGPT, pre-tokenized JSONL), and the
 * batcher that turns examples into right-padded (or packed) token batches with shifted targets.
 * This layer knows tokenizers, not models. */
#ifndef BADAM_DATA_H
#define BADAM_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "badam/status.h"
#include "badam/tokenizer.h"

/* ---------------------------------------------------------------- templates */

typedef enum chat_role { CHAT_SYSTEM = 0, CHAT_USER, CHAT_ASSISTANT } chat_role;

/* content is len bytes of UTF-8 and may hold U+0000 (a JSON string's "\u0000"); len 0 means
 * content is a C string (its length is strlen(content)): {CHAT_USER, "Hi", 0}. */
typedef struct chat_turn {
    chat_role role;
    const char *content;
    size_t len;
} chat_turn;

/* A token sequence with a per-token flag: trained[i] = 1 when token i is a training target
 * (assistant tokens and the EOS after each response), 0 otherwise (system, user, template). */
typedef struct token_seq {
    int32_t *ids;
    uint8_t *trained;
    size_t len, cap;
} token_seq;

void token_seq_free(token_seq *s);

/* Template names: "default", "alpaca", "llama2", "llama3", "chatml", "mistral". */
int template_known(const char *name);
/* Renders a conversation (turns alternate user/assistant, optionally starting with a system turn;
 * `system`, when not NULL, is used if no system turn is given) into tokens with trained flags.
 * With add_generation_prompt, the final user turn is followed by the assistant prefix and no
 * response (for generation). */
badam_status template_render(const char *name, const badam_tokenizer *tok, const chat_turn *turns,
                             size_t n_turns, const char *system, int add_generation_prompt,
                             token_seq *out, badam_error *err);

/* The special token a template ends each response with ("<|eot_id|>", "<|im_end|>"), or NULL
 * when responses end with the tokenizer's EOS. */
const char *template_end_of_turn(const char *name);
/* The template's format as a Jinja chat_template (Hugging Face apply_chat_template: messages,
 * add_generation_prompt, raise_exception) for this tokenizer: rendered and tokenized as one string
 * it gives the ids template_render trains on. `system` (NULL: the template's default) is used when
 * the conversation has no system message. *out is malloc'd. */
badam_status template_chat_jinja(const char *name, const badam_tokenizer *tok, const char *system,
                                 char **out, badam_error *err);

/* ---------------------------------------------------------------- datasets */

typedef enum data_format {
    DATA_FORMAT_AUTO = 0, /* decided from the first record */
    DATA_FORMAT_ALPACA,   /* instruction, input, output, optional system, history */
    DATA_FORMAT_SHAREGPT, /* conversations: [{from, value}], roles human/gpt/system */
    DATA_FORMAT_TOKENIZED /* {"input_ids": [...], "labels": [...]} (labels HF-aligned, -100 masked)
                           */
} data_format;

typedef struct data_options {
    data_format format;
    const char *template_name; /* NULL: "default" */
    const char *system_prompt; /* NULL: the template's default */
    int seq_len;               /* truncate examples to this many tokens */
} data_options;

typedef struct data_stats {
    size_t records;        /* records read from the file */
    size_t examples;       /* kept */
    size_t truncated;      /* kept but shortened to seq_len */
    size_t dropped_empty;  /* dropped: no trainable token (after truncation) */
    size_t tokens;         /* over kept examples */
    size_t trained_tokens; /* over kept examples */
} data_stats;

/* "K of R records kept, D dropped (no trained token within the sequence length), T truncated". */
void data_stats_describe(const data_stats *s, char *buf, size_t size);

typedef struct data_set {
    token_seq *examples;
    size_t n;
    data_stats stats;
    data_format format; /* the records' format (as detected when loaded with AUTO) */
} data_set;

/* Reads a JSON array or JSONL file (streamed: the whole file is never one JSON tree). tok may be
 * NULL for DATA_FORMAT_TOKENIZED. Errors name the file, the record index and the field. An empty
 * dataset (nothing kept) is an error. */
badam_status data_load(const char *path, const badam_tokenizer *tok, const data_options *opts,
                       data_set **out, badam_error *err);
/* Splits off a validation set: val_size >= 1 is a count, 0 < val_size < 1 a fraction. The split is
 * a seeded shuffle; both outputs own their examples and `all` is emptied. */
badam_status data_split(data_set *all, double val_size, uint64_t seed, data_set **train,
                        data_set **val, badam_error *err);
void data_free(data_set *ds);

/* ---------------------------------------------------------------- batching */

typedef struct batcher_options {
    int batch_size;
    int seq_len;
    int shuffle;         /* a fresh seeded permutation every epoch */
    int group_by_length; /* sort within windows of batches by length to minimise padding */
    int pack;            /* concatenate examples into full seq_len rows */
    uint64_t seed;
    /* Data parallel: batch_size counts the sequences of the global batch of all n_ranks ranks;
     * this rank gets rows [B * rank / n_ranks, B * (rank + 1) / n_ranks) of each global batch of
     * B rows (T stays the global batch's longest row, so every row is padded as in one
     * process). The order of global batches does not depend on n_ranks. 0 or 1: one process. */
    int rank, n_ranks;
} batcher_options;

/* A batch for the model: B rows of T tokens, right-padded (pad id 0, target -100).
 * targets[b*T+t] = ids[t+1] when token t+1 is trained, else -100 (the shift is done here).
 * positions[b*T+t] is the position within its example (restarts in packed rows);
 * seg_start[b*T+t] is the row position where that example starts (0 without packing): attention
 * from t may only see [seg_start, t]. */
typedef struct data_batch {
    int B, T;
    int32_t *tokens, *targets, *positions, *seg_start;
    int n_targets;
    int first_row; /* this rank's rows are rows first_row .. first_row + B of the global batch */
    /* Which sequences these are (for per-sequence randomness such as masked-LM masking, so it
     * does not depend on the order, the batch size or the ranks): */
    int32_t *lengths; /* [B] real tokens of each row (the rest is padding) */
    int64_t *units;   /* [B] the row's unit: its example's index, or its packed row's */
    uint64_t epoch;   /* the epoch the batch belongs to */
} data_batch;

typedef struct batcher batcher;

badam_status batcher_create(const data_set *ds, const batcher_options *opts, batcher **out,
                            badam_error *err);
void batcher_free(batcher *b);
size_t batcher_batches_per_epoch(const batcher *b);
/* The sequences (rows) of the smallest global batch of an epoch (the last one may be short). */
size_t batcher_smallest_batch(const batcher *b);
/* Fills the next batch (arrays owned by the batcher, valid until the next call); moves to the
 * next epoch (new permutation) when one ends. */
void batcher_next(batcher *b, data_batch *out);
/* Position for exact resume: epoch and batch index within it. */
typedef struct batcher_state {
    uint64_t epoch;
    uint64_t index;
} batcher_state;
batcher_state batcher_get_state(const batcher *b);
badam_status batcher_set_state(batcher *b, batcher_state state, badam_error *err);

#endif
