/* token_seq: a growable sequence of token ids with a trained flag per token. */
#include <stdlib.h>
#include <string.h>

#include "text/data_internal.h"

void token_seq_free(token_seq *s) {
    if (!s) return;
    free(s->ids);
    free(s->trained);
    s->ids = NULL;
    s->trained = NULL;
    s->len = s->cap = 0;
}

badam_status token_seq_reserve(token_seq *s, size_t n, badam_error *err) {
    if (n <= s->cap) return BADAM_OK;
    size_t cap = s->cap ? s->cap : 16;
    while (cap < n) cap *= 2;
    int32_t *ids = realloc(s->ids, cap * sizeof *ids);
    if (!ids) return badam_fail(err, BADAM_E_NOMEM, "token sequence: out of memory (%zu)", cap);
    s->ids = ids;
    uint8_t *tr = realloc(s->trained, cap);
    if (!tr) return badam_fail(err, BADAM_E_NOMEM, "token sequence: out of memory (%zu)", cap);
    s->trained = tr;
    s->cap = cap;
    return BADAM_OK;
}

badam_status token_seq_push(token_seq *s, int32_t id, int trained, badam_error *err) {
    badam_status st = token_seq_reserve(s, s->len + 1, err);
    if (st != BADAM_OK) return st;
    s->ids[s->len] = id;
    s->trained[s->len] = trained ? 1 : 0;
    s->len++;
    return BADAM_OK;
}

badam_status token_seq_append(token_seq *s, const int32_t *ids, size_t n, int trained,
                              badam_error *err) {
    if (n == 0) return BADAM_OK;
    badam_status st = token_seq_reserve(s, s->len + n, err);
    if (st != BADAM_OK) return st;
    memcpy(s->ids + s->len, ids, n * sizeof *ids);
    memset(s->trained + s->len, trained ? 1 : 0, n);
    s->len += n;
    return BADAM_OK;
}

size_t token_seq_trained_count(const token_seq *s) {
    size_t n = 0;
    for (size_t i = 0; i < s->len; i++) n += s->trained[i] != 0;
    return n;
}
