/* Text pairs (include/badam/tokenizer.h: tokenizer_encode_pair): each text encoded on its own,
 * truncated together, then the post-processor adds the special tokens and the type ids.
 *
 * Truncation is Rust tokenizers' truncate_encodings with strategy LongestFirst, direction right,
 * stride 0, on m = max_length - (special tokens the post-processor adds):
 *
 *   n1 + n2 <= m: nothing;  one text: keep m tokens
 *   pair, with s <= l the shorter and longer lengths:
 *       s > m: l' = s, else l' = max(s, m - s);  s' = s
 *       s' + l' > m: s' = m / 2, l' = s' + m % 2
 *   m = 0: both empty */
#include <stdlib.h>
#include <string.h>

#include "badam/tokenizer.h"
#include "text/tok_internal.h"

/* The lengths the two texts keep (*b_n unused without a pair). */
static void truncate_lengths(size_t m, size_t *a_n, size_t *b_n, int pair) {
    if (m == 0) {
        *a_n = 0;
        if (pair) *b_n = 0;
        return;
    }
    if (!pair) {
        if (*a_n > m) *a_n = m;
        return;
    }
    if (*a_n + *b_n <= m) return;
    int swap = *a_n > *b_n;
    size_t n1 = swap ? *b_n : *a_n, n2;
    if (n1 > m)
        n2 = n1;
    else
        n2 = n1 > m - n1 ? n1 : m - n1;
    if (n1 + n2 > m) {
        n1 = m / 2;
        n2 = n1 + m % 2;
    }
    size_t keep_a = swap ? n2 : n1, keep_b = swap ? n1 : n2;
    if (keep_a < *a_n) *a_n = keep_a;
    if (keep_b < *b_n) *b_n = keep_b;
}

void tokenizer_encoding_free(tokenizer_encoding *e) {
    if (!e) return;
    free(e->ids);
    free(e->type_ids);
    free(e->attention_mask);
    memset(e, 0, sizeof *e);
}

badam_status tokenizer_encode_pair(const badam_tokenizer *tok, const char *text, size_t len,
                                   const char *text_pair, size_t pair_len, int add_special,
                                   size_t max_length, tokenizer_encoding *out, badam_error *err) {
    memset(out, 0, sizeof *out);
    if (!tok || (!text && len) || (!text_pair && pair_len))
        return badam_fail(err, BADAM_E_INVALID, "tokenizer_encode_pair: NULL argument");
    int pair = text_pair != NULL;
    const tok_post *post = tok_tokenizer_post(tok);
    tok_ids a = {0}, b = {0}, ids = {0}, types = {0};
    badam_status st = tok_encode_text(tok, text, len, &a, err);
    if (!st && pair) st = tok_encode_text(tok, text_pair, pair_len, &b, err);
    if (!st && max_length > 0) {
        size_t added = add_special ? tok_post_added(post, pair) : 0;
        if (added > max_length)
            st = badam_fail(err, BADAM_E_INVALID,
                            "tokenizer_encode_pair: max_length %zu is below the %zu special tokens "
                            "the post-processor adds",
                            max_length, added);
        else
            truncate_lengths(max_length - added, &a.n, &b.n, pair);
    }
    if (!st) st = tok_post_encode(post, &a, pair ? &b : NULL, add_special, &ids, &types, err);
    out->n_first = a.n;
    out->n_second = b.n;
    free(a.data);
    free(b.data);
    /* never hand back NULL arrays on success, even for 0 tokens */
    if (!st) st = tok_ids_append(&ids, NULL, 0, err);
    if (!st) st = tok_ids_append(&types, NULL, 0, err);
    if (!st && !(out->attention_mask = malloc(ids.n ? ids.n : 1)))
        st = badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    if (st) {
        free(ids.data);
        free(types.data);
        free(out->attention_mask);
        memset(out, 0, sizeof *out);
        return st;
    }
    memset(out->attention_mask, 1, ids.n);
    out->ids = ids.data;
    out->type_ids = types.data;
    out->n = ids.n;
    return BADAM_OK;
}

badam_status tokenizer_encoding_pad(tokenizer_encoding *e, size_t length, int32_t pad_id,
                                    badam_error *err) {
    if (e->n > length)
        return badam_fail(err, BADAM_E_INVALID,
                          "tokenizer_encoding_pad: %zu tokens do not fit in length %zu", e->n,
                          length);
    if (e->n == length) return BADAM_OK;
    int32_t *ids = realloc(e->ids, length * sizeof *ids);
    if (ids) e->ids = ids;
    int32_t *types = ids ? realloc(e->type_ids, length * sizeof *types) : NULL;
    if (types) e->type_ids = types;
    uint8_t *mask = types ? realloc(e->attention_mask, length) : NULL;
    if (!mask) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    e->attention_mask = mask;
    for (size_t i = e->n; i < length; i++) {
        e->ids[i] = pad_id;
        e->type_ids[i] = 0;
        e->attention_mask[i] = 0;
    }
    e->n = length;
    return BADAM_OK;
}

size_t tokenizer_num_special_tokens(const badam_tokenizer *tok, int pair) {
    return tok_post_added(tok_tokenizer_post(tok), pair);
}
