/* Masked-language-model masking as RoBERTa pretrains (Liu et al. 2019, "RoBERTa: A Robustly
 * Optimized BERT Pretraining Approach", section 2.5 / 4.1: dynamic masking; the 80/10/10 rule of
 * Devlin et al. 2019, BERT section 3.1; Hugging Face's DataCollatorForLanguageModeling):
 *   each non-special real token is selected with probability prob (0.15); a selected token's
 *   target is its id, and its input becomes the mask token with probability 0.8, a token drawn
 *   uniformly from [0, vocab_size) with probability 0.1, and stays itself otherwise; every other
 *   position has target -100. Padding becomes pad_id with pad_mask 0.
 * The draws of a position are a function of (seed, epoch, unit, position) only: unit is the
 * sequence's identity in the data (data_batch.units), so a sequence gets the same masks whatever
 * the batch size, order or number of ranks, and new ones each epoch (dynamic masking). Draws of
 * (seed, epoch, unit, t), with splitmix64 (data_rng_next):
 *   s = data_rng_seed(seed, epoch) + unit * 0xA0761D6478BD642F + t * 0xE7037ED1A0B428DB  (mod 2^64)
 *   a = next(s), c = next(s), r = next(s);  u(x) = (x >> 11) 2^-53
 *   selected: u(a) < prob;  mask: u(c) < 0.8;  random: 0.8 <= u(c) < 0.9, the token
 *   floor(u(r) vocab_size) (in double precision). */
#ifndef BADAM_MLM_H
#define BADAM_MLM_H

#include <stdint.h>

#include "badam/data.h"
#include "badam/status.h"
#include "badam/tokenizer.h"

typedef struct mlm_masker mlm_masker;

/* A masker for tok's vocabulary: the mask token ("<mask>" or "[MASK]"), the pad token (its pad
 * id, else "<pad>" / "[PAD]"), the special tokens that are never selected (tokenizer_is_special),
 * prob (0 < prob < 1) and seed. Errors when the tokenizer has no mask or pad token. */
badam_status mlm_masker_create(const badam_tokenizer *tok, double prob, uint64_t seed,
                               mlm_masker **out, badam_error *err);
/* The same from explicit ids: special [vocab_size] marks the tokens never selected (may be NULL).
 */
badam_status mlm_masker_create_ids(int vocab_size, int32_t mask_id, int32_t pad_id,
                                   const uint8_t *special, double prob, uint64_t seed,
                                   mlm_masker **out, badam_error *err);
void mlm_masker_free(mlm_masker *mk);
int32_t mlm_masker_pad_id(const mlm_masker *mk);

/* Masks n real tokens ids[0..n) of sequence `unit` in `epoch` into inputs and targets (n each);
 * returns the number of targets. */
int mlm_mask_row(const mlm_masker *mk, uint64_t epoch, uint64_t unit, const int32_t *ids, int n,
                 int32_t *inputs, int32_t *targets);

/* Masks a whole batch (db->lengths, units and epoch say which rows and tokens are real): inputs,
 * targets [B*T]; pad_mask [B*T] 1 on real tokens; padding gets pad_id. Returns the targets. */
int mlm_mask_batch(const mlm_masker *mk, const data_batch *db, int32_t *inputs, int32_t *targets,
                   uint8_t *pad_mask);

#endif
