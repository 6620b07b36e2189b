/* Evaluation of a model on a dataset: mean loss and perplexity over the trained tokens, and
 * exact-match accuracy of greedy generations against the reference responses. */
#ifndef BADAM_EVALUATE_H
#define BADAM_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "badam/data.h"
#include "badam/llama.h"
#include "badam/status.h"
#include "badam/tokenizer.h"

typedef struct eval_options {
    int batch_size; /* loss: sequences per forward (file order, no shuffle) */
    int exact_match;
    int max_new_tokens;      /* exact match: tokens generated at most per example */
    const int32_t *stop_ids; /* exact match: end tokens (generate_stop_ids) */
    int n_stop_ids;
    /* Called after each exact-match example (may be NULL). The texts are UTF-8 of the given
     * byte lengths and may hold U+0000. */
    void (*on_example)(void *ctx, size_t index, const char *reference, size_t reference_len,
                       const char *generated, size_t generated_len, int correct);
    void *on_example_ctx;
} eval_options;

typedef struct eval_result {
    size_t n_examples;
    size_t n_tokens;   /* trained tokens (loss targets) */
    double loss;       /* mean cross-entropy over them */
    double perplexity; /* exp(loss) */
    size_t em_count;   /* examples scored by exact match */
    size_t em_correct;
    double em_accuracy; /* em_correct / em_count (0 when none) */
} eval_result;

/* Loss over every example, through the batcher (no shuffle, no packing) and llama_forward with
 * no gradient plan. With exact_match: for each example, the tokens before its last run of trained
 * tokens are the prompt (the conversation up to the final assistant header, i.e. the template
 * rendered with add_generation_prompt) and that run, decoded without special tokens, is the
 * reference; the greedy continuation of the prompt (up to a stop id or max_new_tokens) matches
 * when both texts are equal after trimming ASCII whitespace at both ends. */
badam_status evaluate(const llama_model *m, const badam_tokenizer *tok, const data_set *ds,
                      const eval_options *o, eval_result *r, badam_error *err);

#endif
