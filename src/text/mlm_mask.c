/* Masked-LM masking (badam/mlm.h states the rule and the draws). */
#include "badam/mlm.h"

#include <stdlib.h>
#include <string.h>

#include "text/data_internal.h"

struct mlm_masker {
    int vocab_size;
    int32_t mask_id, pad_id;
    uint8_t *special; /* [vocab_size] */
    double prob;
    uint64_t seed;
};

badam_status mlm_masker_create_ids(int vocab_size, int32_t mask_id, int32_t pad_id,
                                   const uint8_t *special, double prob, uint64_t seed,
                                   mlm_masker **out, badam_error *err) {
    *out = NULL;
    if (vocab_size < 1 || mask_id < 0 || mask_id >= vocab_size || pad_id < 0 ||
        pad_id >= vocab_size || !(prob > 0 && prob < 1))
        return badam_fail(err, BADAM_E_INVALID,
                          "masked LM: need a vocabulary, mask and pad ids inside it and a masking "
                          "probability in (0, 1) (vocabulary %d, mask %d, pad %d, probability %g)",
                          vocab_size, mask_id, pad_id, prob);
    mlm_masker *mk = calloc(1, sizeof *mk);
    uint8_t *sp = mk ? calloc((size_t)vocab_size, 1) : NULL;
    if (!sp) {
        free(mk);
        return badam_fail(err, BADAM_E_NOMEM, "masked LM: out of memory");
    }
    if (special) memcpy(sp, special, (size_t)vocab_size);
    sp[mask_id] = sp[pad_id] = 1;
    *mk = (mlm_masker){vocab_size, mask_id, pad_id, sp, prob, seed};
    *out = mk;
    return BADAM_OK;
}

/* The first of `names` the tokenizer knows, or -1. */
static int32_t find_token(const badam_tokenizer *tok, const char *const *names) {
    for (; *names; names++) {
        int32_t id = tokenizer_token_to_id(tok, *names);
        if (id >= 0) return id;
    }
    return -1;
}

badam_status mlm_masker_create(const badam_tokenizer *tok, double prob, uint64_t seed,
                               mlm_masker **out, badam_error *err) {
    static const char *const MASK[] = {"<mask>", "[MASK]", NULL};
    static const char *const PAD[] = {"<pad>", "[PAD]", NULL};
    int V = tokenizer_vocab_size(tok);
    int32_t mask = find_token(tok, MASK), pad = tokenizer_pad_id(tok);
    if (pad < 0) pad = find_token(tok, PAD);
    if (mask < 0 || pad < 0)
        return badam_fail(err, BADAM_E_INVALID,
                          "masked LM: the tokenizer has no %s token (<mask> or [MASK]; <pad> or "
                          "[PAD])",
                          mask < 0 ? "mask" : "pad");
    uint8_t *special = calloc((size_t)(V > 0 ? V : 1), 1);
    if (!special) return badam_fail(err, BADAM_E_NOMEM, "masked LM: out of memory");
    for (int32_t i = 0; i < V; i++) special[i] = tokenizer_is_special(tok, i) != 0;
    badam_status st = mlm_masker_create_ids(V, mask, pad, special, prob, seed, out, err);
    free(special);
    return st;
}

void mlm_masker_free(mlm_masker *mk) {
    if (!mk) return;
    free(mk->special);
    free(mk);
}

int32_t mlm_masker_pad_id(const mlm_masker *mk) {
    return mk->pad_id;
}

static double unit_of(uint64_t x) {
    return (double)(x >> 11) * 0x1.0p-53;
}

int mlm_mask_row(const mlm_masker *mk, uint64_t epoch, uint64_t unit, const int32_t *ids, int n,
                 int32_t *inputs, int32_t *targets) {
    uint64_t base = data_rng_seed(mk->seed, epoch) + unit * 0xA0761D6478BD642Full;
    int count = 0;
    for (int t = 0; t < n; t++) {
        int32_t id = ids[t];
        inputs[t] = id, targets[t] = -100;
        if (id < 0 || id >= mk->vocab_size || mk->special[id]) continue;
        uint64_t s = base + (uint64_t)t * 0xE7037ED1A0B428DBull;
        uint64_t a = data_rng_next(&s), c = data_rng_next(&s), r = data_rng_next(&s);
        if (!(unit_of(a) < mk->prob)) continue;
        targets[t] = id, count++;
        double uc = unit_of(c);
        if (uc < 0.8)
            inputs[t] = mk->mask_id;
        else if (uc < 0.9)
            inputs[t] = (int32_t)(unit_of(r) * (double)mk->vocab_size);
    }
    return count;
}

int mlm_mask_batch(const mlm_masker *mk, const data_batch *db, int32_t *inputs, int32_t *targets,
                   uint8_t *pad_mask) {
    int count = 0, T = db->T;
    for (int b = 0; b < db->B; b++) {
        int n = db->lengths[b];
        size_t o = (size_t)b * T;
        count += mlm_mask_row(mk, db->epoch, (uint64_t)db->units[b], db->tokens + o, n, inputs + o,
                              targets + o);
        for (int t = 0; t < T; t++) pad_mask[o + t] = t < n;
        for (int t = n; t < T; t++) inputs[o + t] = mk->pad_id, targets[o + t] = -100;
    }
    return count;
}
