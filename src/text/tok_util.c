/* Tokenizer utilities: growable buffers and lists, UTF-8 decoding (strict and lossy), the few
 * Unicode predicates the components need (via utf8proc), hash maps, JSON field helpers. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "io/json_get.h"
#include "text/tok_internal.h"

/* ---------------------------------------------------------------- buffers */

badam_status tok_buf_reserve(tok_buf *b, size_t extra, badam_error *err) {
    if (b->data && b->len + extra <= b->cap) return BADAM_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory (%zu bytes)", cap);
    b->data = p;
    b->cap = cap;
    return BADAM_OK;
}

badam_status tok_buf_append(tok_buf *b, const void *p, size_t n, badam_error *err) {
    badam_status st = tok_buf_reserve(b, n, err);
    if (st) return st;
    if (n) memcpy(b->data + b->len, p, n); /* p may be NULL when n is 0 */
    b->len += n;
    return BADAM_OK;
}

void tok_buf_free(tok_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

static badam_status list_grow(tok_list *l, badam_error *err) {
    if (l->n < l->cap) return BADAM_OK;
    size_t cap = l->cap ? l->cap * 2 : 16;
    tok_item *p = realloc(l->items, cap * sizeof *p);
    if (!p) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    l->items = p;
    l->cap = cap;
    return BADAM_OK;
}

badam_status tok_list_push(tok_list *l, const char *s, size_t n, int flag, badam_error *err) {
    badam_status st = list_grow(l, err);
    if (st) return st;
    size_t off = l->text.len;
    if ((st = tok_buf_append(&l->text, s, n, err))) return st;
    l->items[l->n++] = (tok_item){off, n, flag};
    return BADAM_OK;
}

badam_status tok_list_begin(tok_list *l, int flag, badam_error *err) {
    badam_status st = list_grow(l, err);
    if (!st) st = tok_buf_reserve(&l->text, 0, err); /* an item always has an arena */
    if (st) return st;
    l->items[l->n++] = (tok_item){l->text.len, 0, flag};
    return BADAM_OK;
}

void tok_list_end(tok_list *l) {
    tok_item *it = &l->items[l->n - 1];
    it->len = l->text.len - it->off;
}

void tok_list_clear(tok_list *l) {
    l->n = 0;
    l->text.len = 0;
}

void tok_list_free(tok_list *l) {
    tok_buf_free(&l->text);
    free(l->items);
    memset(l, 0, sizeof *l);
}

badam_status tok_ids_push(tok_ids *v, int32_t id, badam_error *err) {
    if (!v->data || v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->data, cap * sizeof *p);
        if (!p) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
        v->data = p;
        v->cap = cap;
    }
    v->data[v->n++] = id;
    return BADAM_OK;
}

badam_status tok_ids_append(tok_ids *v, const int32_t *ids, size_t n, badam_error *err) {
    if (!v->data || v->n + n > v->cap) {
        size_t cap = v->cap ? v->cap : 64;
        while (cap < v->n + n) cap *= 2;
        int32_t *p = realloc(v->data, cap * sizeof *p);
        if (!p) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
        v->data = p;
        v->cap = cap;
    }
    if (n) memcpy(v->data + v->n, ids, n * sizeof *ids);
    v->n += n;
    return BADAM_OK;
}

badam_status tok_spans_push(tok_spans *v, size_t start, size_t end, int match, badam_error *err) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        tok_span *p = realloc(v->data, cap * sizeof *p);
        if (!p) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
        v->data = p;
        v->cap = cap;
    }
    v->data[v->n++] = (tok_span){start, end, match};
    return BADAM_OK;
}

void tok_ctx_free(tok_ctx *ctx) {
    if (ctx->match_data) pcre2_match_data_free((pcre2_match_data *)ctx->match_data);
    free(ctx->spans.data);
    free(ctx->spans2.data);
    tok_buf_free(&ctx->buf1);
    tok_buf_free(&ctx->buf2);
    tok_buf_free(&ctx->buf3);
    tok_list_free(&ctx->lists[0]);
    tok_list_free(&ctx->lists[1]);
    free(ctx->symbols);
    free(ctx->heap);
    free(ctx->word_ids.data);
    memset(ctx, 0, sizeof *ctx);
}

char *tok_strndup(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* ---------------------------------------------------------------- UTF-8 */

int tok_utf8_decode(const char *str, size_t n, uint32_t *cp) {
    const unsigned char *s = (const unsigned char *)str;
    unsigned char b = s[0];
    if (b < 0x80 || n < 2) {
        *cp = b;
        return 1;
    }
    if (b < 0xE0) {
        *cp = ((uint32_t)(b & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (b < 0xF0 || n < 4) {
        if (n < 3) {
            *cp = b;
            return 1;
        }
        *cp = ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
          ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

int tok_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid sequence starting at s[i] (0 when it is invalid); *bad gets the length of
 * its maximal invalid subpart (the bytes one U+FFFD replaces). */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t i, size_t *bad) {
    unsigned char b = s[i];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) {
        need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    size_t j = i + 1;
    for (size_t k = 0; k < need; k++, j++) {
        if (j >= n || s[j] < lo || s[j] > hi) {
            *bad = j - i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return j - i;
}

size_t tok_utf8_valid_prefix(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time */
        while (i + 8 <= n) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (v & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        size_t bad, len = utf8_seq(s, n, i, &bad);
        if (!len) return i;
        i += len;
    }
    return n;
}

badam_status tok_utf8_append_lossy(tok_buf *out, const char *str, size_t n, badam_error *err) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    badam_status st;
    while (i < n) {
        size_t good = tok_utf8_valid_prefix(str + i, n - i);
        if ((st = tok_buf_append(out, str + i, good, err))) return st;
        i += good;
        if (i >= n) break;
        size_t bad = 1;
        utf8_seq(s, n, i, &bad);
        if ((st = tok_buf_append(out, "\xEF\xBF\xBD", 3, err))) return st;
        i += bad;
    }
    return BADAM_OK;
}

/* ---------------------------------------------------------------- Unicode predicates */

int tok_is_whitespace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

int tok_is_numeric(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
    return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL ||
           cat == UTF8PROC_CATEGORY_NO;
}

int tok_is_punctuation(uint32_t c) {
    if (c < 0x80)
        return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
               (c >= 0x7B && c <= 0x7E);
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
    return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

/* ---------------------------------------------------------------- hashing */

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 32;
    x *= 0xD6E8FEB86659FD93ull;
    x ^= x >> 32;
    x *= 0xD6E8FEB86659FD93ull;
    x ^= x >> 32;
    return x;
}

uint64_t tok_hash(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0x9FB21C651E98DF25ull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, s, n);
    h = (h ^ v) * 0x9FB21C651E98DF25ull;
    return mix64(h);
}

/* ---------------------------------------------------------------- string map */

badam_status tok_strmap_init(tok_strmap *m, size_t expected, badam_error *err) {
    memset(m, 0, sizeof *m);
    size_t slots = 64;
    while (slots < expected * 2) slots *= 2;
    m->slots = calloc(slots, sizeof *m->slots);
    m->cap = expected > 16 ? expected : 16;
    m->entries = malloc(m->cap * sizeof *m->entries);
    if (!m->slots || !m->entries) {
        tok_strmap_free(m);
        return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    }
    m->mask = slots - 1;
    return BADAM_OK;
}

static size_t strmap_find(const tok_strmap *m, const char *key, size_t len, uint64_t h) {
    size_t i = (size_t)h & m->mask;
    for (;;) {
        uint32_t e = m->slots[i];
        if (!e) return i;
        const struct tok_strmap_entry *en = &m->entries[e - 1];
        if (en->hash == h && en->len == len && !memcmp(m->keys.data + en->off, key, len)) return i;
        i = (i + 1) & m->mask;
    }
}

static badam_status strmap_rehash(tok_strmap *m, badam_error *err) {
    size_t slots = (m->mask + 1) * 2;
    uint32_t *s = calloc(slots, sizeof *s);
    if (!s) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    free(m->slots);
    m->slots = s;
    m->mask = slots - 1;
    for (size_t e = 0; e < m->n; e++) {
        size_t i = (size_t)m->entries[e].hash & m->mask;
        while (m->slots[i]) i = (i + 1) & m->mask;
        m->slots[i] = (uint32_t)(e + 1);
    }
    return BADAM_OK;
}

badam_status tok_strmap_put(tok_strmap *m, const char *key, size_t len, int32_t value,
                            badam_error *err) {
    badam_status st;
    uint64_t h = tok_hash(key, len);
    size_t i = strmap_find(m, key, len, h);
    if (m->slots[i]) {
        m->entries[m->slots[i] - 1].value = value;
        return BADAM_OK;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap * 2;
        void *p = realloc(m->entries, cap * sizeof *m->entries);
        if (!p) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
        m->entries = p;
        m->cap = cap;
    }
    size_t off = m->keys.len;
    if ((st = tok_buf_append(&m->keys, key, len, err))) return st;
    if ((st = tok_buf_append(&m->keys, "", 1, err))) return st; /* NUL-terminate each key */
    m->entries[m->n] = (struct tok_strmap_entry){h, off, (uint32_t)len, value};
    m->slots[i] = (uint32_t)(++m->n);
    if (m->n * 2 > m->mask + 1) return strmap_rehash(m, err);
    return BADAM_OK;
}

int32_t tok_strmap_get(const tok_strmap *m, const char *key, size_t len) {
    if (!m->slots) return -1;
    size_t i = strmap_find(m, key, len, tok_hash(key, len));
    return m->slots[i] ? m->entries[m->slots[i] - 1].value : -1;
}

void tok_strmap_free(tok_strmap *m) {
    free(m->slots);
    free(m->entries);
    tok_buf_free(&m->keys);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- pair map */

badam_status tok_pairmap_init(tok_pairmap *m, size_t expected, badam_error *err) {
    memset(m, 0, sizeof *m);
    size_t slots = 64;
    while (slots < expected * 2) slots *= 2;
    m->keys = calloc(slots, sizeof *m->keys);
    m->rank = malloc(slots * sizeof *m->rank);
    m->new_id = malloc(slots * sizeof *m->new_id);
    if (!m->keys || !m->rank || !m->new_id) {
        tok_pairmap_free(m);
        return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    }
    m->mask = slots - 1;
    return BADAM_OK;
}

static inline size_t pair_slot(const tok_pairmap *m, uint64_t key) {
    size_t i = (size_t)mix64(key) & m->mask;
    while (m->keys[i] && m->keys[i] != key) i = (i + 1) & m->mask;
    return i;
}

void tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t new_id) {
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t i = pair_slot(m, key);
    if (!m->keys[i]) m->n++;
    m->keys[i] = key;
    m->rank[i] = rank;
    m->new_id[i] = new_id;
}

int tok_pairmap_get(const tok_pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *new_id) {
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t i = pair_slot(m, key);
    if (!m->keys[i]) return 0;
    *rank = m->rank[i];
    *new_id = m->new_id[i];
    return 1;
}

void tok_pairmap_free(tok_pairmap *m) {
    free(m->keys);
    free(m->rank);
    free(m->new_id);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- JSON fields */

badam_status tok_json_str(const json_t *obj, const char *field, int required, const char **out,
                          size_t *len, const char *file, const char *path, badam_error *err) {
    const json_t *it = json_object_get(obj, field);
    if (!it || json_is_null(it)) {
        if (required)
            return badam_fail(err, BADAM_E_FORMAT, "%s: %s: missing field '%s'", file, path, field);
        return BADAM_OK;
    }
    if (!json_is_string(it))
        return badam_fail(err, BADAM_E_FORMAT, "%s: %s.%s: expected a string", file, path, field);
    if (!len && !json_string_is_c(it))
        return badam_fail(err, BADAM_E_FORMAT, "%s: %s.%s: a name, which cannot hold U+0000", file,
                          path, field);
    *out = json_string_value(it);
    if (len) *len = json_string_length(it);
    return BADAM_OK;
}

badam_status tok_json_bool(const json_t *obj, const char *field, int *out, const char *file,
                           const char *path, badam_error *err) {
    const json_t *it = json_object_get(obj, field);
    if (!it || json_is_null(it)) return BADAM_OK;
    if (!json_is_boolean(it))
        return badam_fail(err, BADAM_E_FORMAT, "%s: %s.%s: expected true or false", file, path,
                          field);
    *out = json_is_true(it);
    return BADAM_OK;
}

badam_status tok_json_int(const json_t *obj, const char *field, int *out, const char *file,
                          const char *path, badam_error *err) {
    const json_t *it = json_object_get(obj, field);
    if (!it || json_is_null(it)) return BADAM_OK;
    long long v;
    if (!json_int_in_range(it, 0, INT_MAX, &v))
        return badam_fail(err, BADAM_E_FORMAT, "%s: %s.%s: expected a non-negative integer", file,
                          path, field);
    *out = (int)v;
    return BADAM_OK;
}

badam_status tok_json_char(const json_t *obj, const char *field, uint32_t *cp, const char *file,
                           const char *path, badam_error *err) {
    const char *s = NULL;
    size_t n = 0;
    badam_status st = tok_json_str(obj, field, 0, &s, &n, file, path, err);
    if (st || !s) return st;
    if (n == 0 || (size_t)tok_utf8_decode(s, n, cp) != n)
        return badam_fail(err, BADAM_E_FORMAT, "%s: %s.%s: expected exactly one character", file,
                          path, field);
    return BADAM_OK;
}

badam_status tok_json_component_type(const json_t *j, const char **type, const char *file,
                                     const char *path, badam_error *err) {
    if (!json_is_object(j))
        return badam_fail(err, BADAM_E_FORMAT, "%s: %s: expected an object", file, path);
    *type = NULL;
    return tok_json_str(j, "type", 1, type, NULL, file, path, err);
}
