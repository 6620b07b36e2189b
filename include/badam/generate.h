/* Text generation (inference layer): token sampling, and the text-level loop over a KV cache
 * (badam/decode.h) that streams decoded text and stops at end tokens or stop strings. */
#ifndef BADAM_GENERATE_H
#define BADAM_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "badam/decode.h"
#include "badam/llama.h"
#include "badam/status.h"
#include "badam/tokenizer.h"

/* ---------------------------------------------------------------- sampling */

/* Greedy when temperature == 0; else softmax(logits / temperature) restricted to the top_k
 * largest (0: all) and then to the smallest most-likely set whose probability reaches top_p
 * (0 or 1: all), the order of Hugging Face's logits warpers. Zeroed options mean greedy. */
typedef struct sampler_options {
    float temperature;
    int top_k;
    float top_p;
    uint64_t seed;
} sampler_options;

typedef struct sampler sampler;

badam_status sampler_create(const sampler_options *o, int vocab_size, sampler **out,
                            badam_error *err);
void sampler_free(sampler *s);
/* The next token for logits [V]. Greedy picks the lowest index among equal maxima (torch.argmax).
 * The random stream depends only on the seed and the number of draws. */
int32_t sampler_pick(sampler *s, const float *logits);

/* ---------------------------------------------------------------- text generation */

typedef enum generate_stop {
    GENERATE_STOP_EOS = 0,    /* a stop token was generated (not part of the output) */
    GENERATE_STOP_STRING,     /* a stop string appeared (the output ends before it) */
    GENERATE_STOP_MAX_TOKENS, /* max_new_tokens reached */
    GENERATE_STOP_CONTEXT,    /* the cache is full */
} generate_stop;

typedef struct generate_options {
    int max_new_tokens;
    sampler_options sampling;
    const int32_t *stop_ids; /* end tokens (EOS, <|eot_id|>, ...) */
    int n_stop_ids;
    const char *const *stop_strings;
    int n_stop_strings;
    /* Streaming: called with each new piece of the output text as soon as it is complete UTF-8
     * and cannot be the start of a stop string. NULL: no calls. */
    void (*on_text)(void *ctx, const char *text, size_t len);
    void *on_text_ctx;
} generate_options;

typedef struct generate_result {
    int32_t *ids; /* generated tokens (without a final stop token), malloc'd */
    size_t n_ids;
    char *text; /* their decoded text (special tokens skipped), cut before a stop string */
    size_t text_len;
    generate_stop stop;
} generate_result;

void generate_result_free(generate_result *r);

/* The stop tokens of a model: config.json's eos_token_id list, the tokenizer's EOS and, when
 * the template names one that the vocabulary has, its end-of-turn token (<|eot_id|>,
 * <|im_end|>). ids receives at most `cap`; returns how many. */
int generate_stop_ids(const llama_model *m, const badam_tokenizer *tok, const char *template_name,
                      int32_t *ids, int cap);

/* Generates from `prompt` (n_prompt >= 1 tokens), reusing whatever prefix of it the cache already
 * holds (a chat continues a conversation without recomputing it). Afterwards the cache holds the
 * prompt and the generated tokens that were fed back (a final stop token is not). */
badam_status generate_text(const llama_model *m, const badam_tokenizer *tok, llama_kv_cache *kv,
                           const int32_t *prompt, size_t n_prompt, const generate_options *o,
                           generate_result *r, badam_error *err);

#endif
