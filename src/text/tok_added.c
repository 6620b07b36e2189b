/* Added tokens: found in the text before anything else runs, leftmost-longest, as Rust's
 * AddedVocabulary does with Aho-Corasick:
 *
 *   scan left to right; at the first position where some token starts, take the longest one;
 *   single_word: keep the match only if no word character touches it on either side;
 *   lstrip / rstrip: the match swallows the whitespace before / after it;
 *   continue after the match.
 *
 * The text between matches goes on to the normalizer, pre-tokenizer and model. */
#include <stdlib.h>
#include <string.h>

#include "text/tok_internal.h"

badam_status tok_trie_init(tok_trie *t, badam_error *err) {
    memset(t, 0, sizeof *t);
    for (int i = 0; i < 256; i++) t->root_child[i] = -1;
    (void)err;
    return BADAM_OK;
}

void tok_trie_free(tok_trie *t) {
    free(t->nodes);
    memset(t, 0, sizeof *t);
}

static badam_status trie_new_node(tok_trie *t, uint8_t byte, int32_t *out, badam_error *err) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        struct tok_trie_node *p = realloc(t->nodes, cap * sizeof *p);
        if (!p) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
        t->nodes = p;
        t->cap = cap;
    }
    t->nodes[t->n] = (struct tok_trie_node){-1, -1, -1, byte};
    *out = (int32_t)t->n++;
    return BADAM_OK;
}

badam_status tok_trie_add(tok_trie *t, const char *s, size_t n, int32_t token, badam_error *err) {
    if (n == 0) return BADAM_OK;
    badam_status st;
    uint8_t b0 = (uint8_t)s[0];
    if (t->root_child[b0] < 0) {
        int32_t id = -1;
        if ((st = trie_new_node(t, b0, &id, err))) return st;
        t->root_child[b0] = id;
    }
    int32_t node = t->root_child[b0];
    for (size_t i = 1; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        int32_t c = t->nodes[node].child, prev = -1;
        while (c >= 0 && t->nodes[c].byte != b) {
            prev = c;
            c = t->nodes[c].sibling;
        }
        if (c < 0) {
            if ((st = trie_new_node(t, b, &c, err))) return st;
            if (prev >= 0)
                t->nodes[prev].sibling = c;
            else
                t->nodes[node].child = c;
        }
        node = c;
    }
    if (t->nodes[node].token < 0) t->nodes[node].token = token; /* the first of duplicates wins */
    return BADAM_OK;
}

/* The longest token starting at s[i]: its index and end, or -1. */
static int32_t trie_longest(const tok_trie *t, const char *s, size_t n, size_t i, size_t *end) {
    int32_t node = t->root_child[(uint8_t)s[i]];
    int32_t best = -1;
    size_t j = i + 1;
    while (node >= 0) {
        if (t->nodes[node].token >= 0) {
            best = t->nodes[node].token;
            *end = j;
        }
        if (j >= n) break;
        uint8_t b = (uint8_t)s[j];
        int32_t c = t->nodes[node].child;
        while (c >= 0 && t->nodes[c].byte != b) c = t->nodes[c].sibling;
        node = c;
        j++;
    }
    return best;
}

static int is_word_char(const void *word_re, const char *c, size_t len, tok_ctx *ctx) {
    tok_spans *m = &ctx->spans2;
    m->n = 0;
    badam_error e;
    if (tok_regex_find(word_re, c, len, m, ctx, &e)) return 0;
    return m->n > 0 && m->data[0].start == 0 && m->data[0].end == len;
}

static int ends_with_word(const void *word_re, const char *s, size_t n, tok_ctx *ctx) {
    if (n == 0) return 0;
    size_t k = n - 1;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    return is_word_char(word_re, s + k, n - k, ctx);
}

static int starts_with_word(const void *word_re, const char *s, size_t n, tok_ctx *ctx) {
    if (n == 0) return 0;
    uint32_t cp;
    int len = tok_utf8_decode(s, n, &cp);
    return is_word_char(word_re, s, (size_t)len, ctx);
}

badam_status tok_added_split(const tok_trie *t, const tok_added *tokens, const void *word_re,
                             const char *s, size_t n, tok_spans *out, tok_ctx *ctx,
                             badam_error *err) {
    out->n = 0;
    badam_status st;
    size_t start_offset = 0, pos = 0;
    while (t->n && pos < n) {
        if (t->root_child[(uint8_t)s[pos]] < 0) {
            pos++;
            continue;
        }
        size_t me = 0;
        int32_t tok = trie_longest(t, s, n, pos, &me);
        if (tok < 0) {
            pos++;
            continue;
        }
        size_t start = pos, stop = me;
        pos = me;
        const tok_added *a = &tokens[tok];
        if (start < start_offset) continue; /* inside whitespace an rstrip already took */
        if (a->single_word && word_re) {
            int start_space = start == 0 || !ends_with_word(word_re, s, start, ctx);
            int stop_space = stop == n || !starts_with_word(word_re, s + stop, n - stop, ctx);
            if (!start_space || !stop_space) continue;
        }
        if (a->lstrip) {
            size_t k = start;
            while (k > start_offset) {
                size_t c = k - 1;
                while (c > 0 && ((unsigned char)s[c] & 0xC0) == 0x80) c--;
                uint32_t cp;
                tok_utf8_decode(s + c, k - c, &cp);
                if (!tok_is_whitespace(cp)) break;
                k = c;
            }
            start = k;
        }
        if (a->rstrip) {
            while (stop < n) {
                uint32_t cp;
                int len = tok_utf8_decode(s + stop, n - stop, &cp);
                if (!tok_is_whitespace(cp)) break;
                stop += (size_t)len;
            }
        }
        if (start_offset < start && (st = tok_spans_push(out, start_offset, start, -1, err)))
            return st;
        if ((st = tok_spans_push(out, start, stop, tok, err))) return st;
        start_offset = stop;
    }
    if (start_offset < n || n == 0) return tok_spans_push(out, start_offset, n, -1, err);
    return BADAM_OK;
}
