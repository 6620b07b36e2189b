/* Pre-tokenizers of tokenizer.json: split normalized text into pieces ("words") that the model
 * encodes independently. Behaviors follow Rust tokenizers' NormalizedString::split:
 *
 *   Removed            drop the matches, keep the text between them
 *   Isolated           matches and the text between them are separate pieces
 *   MergedWithPrevious a match joins the piece before it
 *   MergedWithNext     a match joins the piece after it
 *   Contiguous         runs of matches (and runs of non-matches) become one piece
 * `invert` swaps which spans count as matches. Empty pieces are dropped.
 *
 * tokenizers.js implements only Isolated/Removed and ignores `invert` with Isolated; Metaspace's
 * `split` is ignored there too. We follow Rust, which transformers uses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/tok_internal.h"

#define GPT2_REGEX                                                                                 \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
/* Rust's regex crate \w (Alphabetic, M, Nd, Pc, Join_Control) and \s (White_Space). */
#define RUST_WORD "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}"
#define WHITESPACE_REGEX "[" RUST_WORD "]+|[^" RUST_WORD "\\p{White_Space}]+"

static badam_status parse_behavior(const json_t *j, const char *file, const char *path,
                                   tok_behavior *out, badam_error *err) {
    const char *b = NULL;
    badam_status st = tok_json_str(j, "behavior", 0, &b, NULL, file, path, err);
    if (st || !b) return st;
    if (!strcmp(b, "Removed"))
        *out = TOK_REMOVED;
    else if (!strcmp(b, "Isolated"))
        *out = TOK_ISOLATED;
    else if (!strcmp(b, "MergedWithPrevious"))
        *out = TOK_MERGED_WITH_PREVIOUS;
    else if (!strcmp(b, "MergedWithNext"))
        *out = TOK_MERGED_WITH_NEXT;
    else if (!strcmp(b, "Contiguous"))
        *out = TOK_CONTIGUOUS;
    else
        return badam_fail(err, BADAM_E_UNSUPPORTED, "%s: %s.behavior: unknown behavior '%s'", file,
                          path, b);
    return BADAM_OK;
}

/* Sequence: the child pre-tokenizers, in order. */
static badam_status parse_sequence(const json_t *j, const char *file, const char *path,
                                   tok_pretok *p, badam_error *err) {
    const json_t *arr = json_object_get(j, "pretokenizers");
    if (!json_is_array(arr))
        return badam_fail(err, BADAM_E_FORMAT, "%s: %s.pretokenizers: expected an array", file,
                          path);
    size_t n = (size_t)json_array_size(arr);
    p->children = calloc(n ? n : 1, sizeof *p->children);
    if (!p->children) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    const json_t *c;
    size_t index;
    char sub[512];
    json_array_foreach(arr, index, c) {
        snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", path, p->n_children);
        badam_status st = tok_pretok_parse(c, file, sub, &p->children[p->n_children], err);
        if (st) return st;
        p->n_children++;
    }
    return BADAM_OK;
}

/* Split: a pattern, what becomes of the matches (behavior, required) and invert. */
static badam_status parse_split(const json_t *j, const char *file, const char *path, tok_pretok *p,
                                badam_error *err) {
    p->behavior = TOK_ISOLATED;
    char sub[512];
    snprintf(sub, sizeof sub, "%s.pattern", path);
    badam_status st = tok_pattern_parse(json_object_get(j, "pattern"), file, sub, &p->pattern, err);
    if (st) return st;
    if (!json_object_get(j, "behavior"))
        return badam_fail(err, BADAM_E_FORMAT, "%s: %s: missing field 'behavior'", file, path);
    if ((st = parse_behavior(j, file, path, &p->behavior, err))) return st;
    return tok_json_bool(j, "invert", &p->invert, file, path, err);
}

/* ByteLevel: add_prefix_space, and the GPT-2 split regex unless use_regex is false. */
static badam_status parse_byte_level(const json_t *j, const char *file, const char *path,
                                     tok_pretok *p, badam_error *err) {
    p->use_regex = 1;
    badam_status st;
    if ((st = tok_json_bool(j, "add_prefix_space", &p->add_prefix_space, file, path, err)) ||
        (st = tok_json_bool(j, "use_regex", &p->use_regex, file, path, err)))
        return st;
    if (!p->use_regex) return BADAM_OK;
    p->pattern.is_regex = 1;
    return tok_regex_compile(GPT2_REGEX, "ByteLevel", &p->pattern.code, err);
}

/* Metaspace: the replacement character, split, and when a space is prepended. */
static badam_status parse_metaspace(const json_t *j, const char *file, const char *path,
                                    tok_pretok *p, badam_error *err) {
    p->replacement_cp = 0x2581;
    p->split = 1;
    p->prepend_scheme = TOK_PREPEND_ALWAYS;
    badam_status st = tok_json_char(j, "replacement", &p->replacement_cp, file, path, err);
    if (st) return st;
    p->replacement_len = (size_t)tok_utf8_encode(p->replacement_cp, p->replacement);
    if ((st = tok_json_bool(j, "split", &p->split, file, path, err))) return st;
    const char *scheme = NULL;
    if ((st = tok_json_str(j, "prepend_scheme", 0, &scheme, NULL, file, path, err))) return st;
    if (scheme) {
        if (!strcmp(scheme, "always"))
            p->prepend_scheme = TOK_PREPEND_ALWAYS;
        else if (!strcmp(scheme, "first"))
            p->prepend_scheme = TOK_PREPEND_FIRST;
        else if (!strcmp(scheme, "never"))
            p->prepend_scheme = TOK_PREPEND_NEVER;
        else
            return badam_fail(err, BADAM_E_UNSUPPORTED,
                              "%s: %s.prepend_scheme: unknown scheme '%s'", file, path, scheme);
    } else {
        int add_prefix_space = 1; /* files older than prepend_scheme */
        if ((st = tok_json_bool(j, "add_prefix_space", &add_prefix_space, file, path, err)))
            return st;
        p->prepend_scheme = add_prefix_space ? TOK_PREPEND_ALWAYS : TOK_PREPEND_NEVER;
    }
    return BADAM_OK;
}

/* The options of the simple kinds (Digits, Whitespace, WhitespaceSplit, Punctuation,
 * BertPreTokenizer, CharDelimiterSplit): p->kind set, or an unsupported type. */
static badam_status parse_simple(const json_t *j, const char *type, const char *file,
                                 const char *path, tok_pretok *p, badam_error *err) {
    if (!strcmp(type, "Digits")) {
        p->kind = TOK_PRE_DIGITS;
        return tok_json_bool(j, "individual_digits", &p->individual_digits, file, path, err);
    } else if (!strcmp(type, "Whitespace")) {
        p->kind = TOK_PRE_WHITESPACE;
        p->pattern.is_regex = 1;
        return tok_regex_compile(WHITESPACE_REGEX, "Whitespace", &p->pattern.code, err);
    } else if (!strcmp(type, "WhitespaceSplit")) {
        p->kind = TOK_PRE_WHITESPACE_SPLIT;
    } else if (!strcmp(type, "Punctuation")) {
        p->kind = TOK_PRE_PUNCTUATION;
        p->behavior = TOK_ISOLATED;
        return parse_behavior(j, file, path, &p->behavior, err);
    } else if (!strcmp(type, "BertPreTokenizer")) {
        p->kind = TOK_PRE_BERT;
    } else if (!strcmp(type, "CharDelimiterSplit")) {
        p->kind = TOK_PRE_CHAR_DELIMITER;
        if (!json_object_get(j, "delimiter"))
            return badam_fail(err, BADAM_E_FORMAT, "%s: %s: missing field 'delimiter'", file, path);
        return tok_json_char(j, "delimiter", &p->delimiter, file, path, err);
    } else {
        return badam_fail(err, BADAM_E_UNSUPPORTED, "%s: %s: unsupported pre_tokenizer type '%s'",
                          file, path, type);
    }
    return BADAM_OK;
}

badam_status tok_pretok_parse(const json_t *j, const char *file, const char *path, tok_pretok **out,
                              badam_error *err) {
    *out = NULL;
    const char *type = NULL;
    badam_status st = tok_json_component_type(j, &type, file, path, err);
    if (st) return st;
    tok_pretok *p = calloc(1, sizeof *p);
    if (!p) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    if (!strcmp(type, "Sequence")) {
        p->kind = TOK_PRE_SEQUENCE;
        st = parse_sequence(j, file, path, p, err);
    } else if (!strcmp(type, "Split")) {
        p->kind = TOK_PRE_SPLIT;
        st = parse_split(j, file, path, p, err);
    } else if (!strcmp(type, "ByteLevel")) {
        p->kind = TOK_PRE_BYTE_LEVEL;
        st = parse_byte_level(j, file, path, p, err);
    } else if (!strcmp(type, "Metaspace")) {
        p->kind = TOK_PRE_METASPACE;
        st = parse_metaspace(j, file, path, p, err);
    } else {
        st = parse_simple(j, type, file, path, p, err);
    }
    if (st) {
        tok_pretok_free(p);
        return st;
    }
    *out = p;
    return BADAM_OK;
}

void tok_pretok_free(tok_pretok *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_children; i++) tok_pretok_free(p->children[i]);
    free(p->children);
    tok_pattern_free(&p->pattern);
    free(p);
}

/* ---------------------------------------------------------------- splitting */

badam_status tok_split_apply(const char *s, const tok_spans *segs, tok_behavior behavior,
                             int at_start, tok_list *out, badam_error *err) {
    badam_status st = BADAM_OK;
    /* The kept spans, computed as Rust does, then pushed (empty ones dropped). For
     * MergedWithNext we walk backwards and so fill `kept` from its end. */
    size_t n = segs->n;
    tok_span stack_kept[64];
    tok_span *kept = n <= 64 ? stack_kept : malloc(n * sizeof *kept);
    if (!kept) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    size_t k = 0, first = 0;
    const tok_span *g = segs->data;
    switch (behavior) {
    case TOK_ISOLATED:
        for (size_t i = 0; i < n; i++) kept[k++] = g[i];
        break;
    case TOK_REMOVED:
        for (size_t i = 0; i < n; i++)
            if (!g[i].match) kept[k++] = g[i];
        break;
    case TOK_MERGED_WITH_PREVIOUS: {
        int prev = 0;
        for (size_t i = 0; i < n; i++) {
            if (g[i].match && !prev && k > 0)
                kept[k - 1].end = g[i].end;
            else
                kept[k++] = g[i];
            prev = g[i].match;
        }
        break;
    }
    case TOK_MERGED_WITH_NEXT: {
        int prev = 0;
        first = n; /* kept[first..n) */
        for (size_t i = n; i-- > 0;) {
            if (g[i].match && !prev && first < n)
                kept[first].start = g[i].start;
            else
                kept[--first] = g[i];
            prev = g[i].match;
        }
        k = n;
        break;
    }
    case TOK_CONTIGUOUS: {
        int prev = -1;
        for (size_t i = 0; i < n; i++) {
            if (g[i].match == prev && k > 0)
                kept[k - 1].end = g[i].end;
            else
                kept[k++] = g[i];
            prev = g[i].match;
        }
        break;
    }
    }
    for (size_t i = first; i < k && !st; i++) {
        if (kept[i].end == kept[i].start) continue;
        st = tok_list_push(out, s + kept[i].start, kept[i].end - kept[i].start,
                           at_start && kept[i].start == 0, err);
    }
    if (kept != stack_kept) free(kept);
    return st;
}

typedef enum char_pred { PRED_WHITESPACE, PRED_NUMERIC, PRED_PUNCT, PRED_EQUAL } char_pred;

/* Rust's `impl Pattern for Fn(char) -> bool`: every matching character is its own match. */
static badam_status char_segments(const char *s, size_t n, char_pred pred, uint32_t target,
                                  tok_spans *out, badam_error *err) {
    out->n = 0;
    if (n == 0) return tok_spans_push(out, 0, 0, 0, err);
    size_t last = 0, i = 0;
    badam_status st;
    while (i < n) {
        uint32_t cp;
        size_t len = (size_t)tok_utf8_decode(s + i, n - i, &cp);
        int hit;
        switch (pred) {
        case PRED_WHITESPACE:
            hit = tok_is_whitespace(cp);
            break;
        case PRED_NUMERIC:
            hit = tok_is_numeric(cp);
            break;
        case PRED_PUNCT:
            hit = tok_is_punctuation(cp);
            break;
        default:
            hit = cp == target;
            break;
        }
        if (hit) {
            if (last < i && (st = tok_spans_push(out, last, i, 0, err))) return st;
            if ((st = tok_spans_push(out, i, i + len, 1, err))) return st;
            last = i + len;
        }
        i += len;
    }
    if (last < n) return tok_spans_push(out, last, n, 0, err);
    return BADAM_OK;
}

static badam_status split_by_char(const char *s, size_t n, int at_start, char_pred pred,
                                  uint32_t target, tok_behavior behavior, tok_list *out,
                                  tok_ctx *ctx, badam_error *err) {
    badam_status st = char_segments(s, n, pred, target, &ctx->spans, err);
    return st ? st : tok_split_apply(s, &ctx->spans, behavior, at_start, out, err);
}

static badam_status byte_level_piece(const tok_pretok *p, const char *s, size_t n, int at_start,
                                     tok_list *out, tok_ctx *ctx, badam_error *err) {
    badam_status st;
    if (p->add_prefix_space && (n == 0 || s[0] != ' ')) {
        tok_buf *b = &ctx->buf3;
        b->len = 0;
        if ((st = tok_buf_append(b, " ", 1, err)) || (st = tok_buf_append(b, s, n, err))) return st;
        s = b->data;
        n = b->len;
    }
    size_t n_before = out->n;
    if (p->use_regex) {
        tok_spans *segs = &ctx->spans;
        segs->n = 0;
        if ((st = tok_pattern_segments(&p->pattern, s, n, segs, ctx, err))) return st;
        /* Isolated; push pieces already byte-mapped */
        for (size_t i = 0; i < segs->n; i++) {
            size_t a = segs->data[i].start, e = segs->data[i].end;
            if (a == e) continue;
            if ((st = tok_list_begin(out, at_start && a == 0, err))) return st;
            if ((st = tok_buf_reserve(&out->text, 2 * (e - a), err))) return st;
            for (size_t k = a; k < e; k++)
                out->text.len +=
                    (size_t)tok_bytelevel_encode((uint8_t)s[k], out->text.data + out->text.len);
            tok_list_end(out);
        }
    } else if (n > 0) {
        if ((st = tok_list_begin(out, at_start, err))) return st;
        if ((st = tok_buf_reserve(&out->text, 2 * n, err))) return st;
        for (size_t k = 0; k < n; k++)
            out->text.len +=
                (size_t)tok_bytelevel_encode((uint8_t)s[k], out->text.data + out->text.len);
        tok_list_end(out);
    }
    (void)n_before;
    return BADAM_OK;
}

static badam_status metaspace_piece(const tok_pretok *p, const char *s, size_t n, int at_start,
                                    tok_list *out, tok_ctx *ctx, badam_error *err) {
    tok_buf *b = &ctx->buf3;
    b->len = 0;
    badam_status st;
    /* spaces -> replacement */
    int starts_with_rep = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ')
            st = tok_buf_append(b, p->replacement, p->replacement_len, err);
        else
            st = tok_buf_append(b, s + i, 1, err);
        if (st) return st;
    }
    starts_with_rep =
        b->len >= p->replacement_len && !memcmp(b->data, p->replacement, p->replacement_len);
    int prepend = !starts_with_rep && (p->prepend_scheme == TOK_PREPEND_ALWAYS ||
                                       (p->prepend_scheme == TOK_PREPEND_FIRST && at_start));
    if (prepend) {
        if ((st = tok_buf_reserve(b, p->replacement_len, err))) return st;
        memmove(b->data + p->replacement_len, b->data, b->len);
        memcpy(b->data, p->replacement, p->replacement_len);
        b->len += p->replacement_len;
    }
    if (!p->split) return b->len ? tok_list_push(out, b->data, b->len, at_start, err) : BADAM_OK;
    if ((st = char_segments(b->data, b->len, PRED_EQUAL, p->replacement_cp, &ctx->spans, err)))
        return st;
    return tok_split_apply(b->data, &ctx->spans, TOK_MERGED_WITH_NEXT, at_start, out, err);
}

static badam_status pretok_piece(const tok_pretok *p, const char *s, size_t n, int at_start,
                                 tok_list *out, tok_ctx *ctx, badam_error *err) {
    badam_status st;
    switch (p->kind) {
    case TOK_PRE_SPLIT: {
        tok_spans *segs = &ctx->spans;
        if ((st = tok_pattern_segments(&p->pattern, s, n, segs, ctx, err))) return st;
        if (p->invert)
            for (size_t i = 0; i < segs->n; i++) segs->data[i].match = !segs->data[i].match;
        return tok_split_apply(s, segs, p->behavior, at_start, out, err);
    }
    case TOK_PRE_BYTE_LEVEL:
        return byte_level_piece(p, s, n, at_start, out, ctx, err);
    case TOK_PRE_METASPACE:
        return metaspace_piece(p, s, n, at_start, out, ctx, err);
    case TOK_PRE_DIGITS:
        return split_by_char(s, n, at_start, PRED_NUMERIC, 0,
                             p->individual_digits ? TOK_ISOLATED : TOK_CONTIGUOUS, out, ctx, err);
    case TOK_PRE_WHITESPACE: {
        tok_spans *segs = &ctx->spans;
        if ((st = tok_pattern_segments(&p->pattern, s, n, segs, ctx, err))) return st;
        for (size_t i = 0; i < segs->n; i++) segs->data[i].match = !segs->data[i].match;
        return tok_split_apply(s, segs, TOK_REMOVED, at_start, out, err);
    }
    case TOK_PRE_WHITESPACE_SPLIT:
        return split_by_char(s, n, at_start, PRED_WHITESPACE, 0, TOK_REMOVED, out, ctx, err);
    case TOK_PRE_PUNCTUATION:
        return split_by_char(s, n, at_start, PRED_PUNCT, 0, p->behavior, out, ctx, err);
    case TOK_PRE_CHAR_DELIMITER:
        return split_by_char(s, n, at_start, PRED_EQUAL, p->delimiter, TOK_REMOVED, out, ctx, err);
    case TOK_PRE_BERT:
    case TOK_PRE_SEQUENCE:
        break;
    }
    return badam_fail(err, BADAM_E_INVALID, "tokenizer: bad pre-tokenizer");
}

static void swap_lists(tok_list **a, tok_list **b) {
    tok_list *t = *a;
    *a = *b;
    *b = t;
}

badam_status tok_pretok_apply(const tok_pretok *p, tok_list **in, tok_list **spare, tok_ctx *ctx,
                              badam_error *err) {
    badam_status st;
    if (p->kind == TOK_PRE_SEQUENCE) {
        for (size_t i = 0; i < p->n_children; i++)
            if ((st = tok_pretok_apply(p->children[i], in, spare, ctx, err))) return st;
        return BADAM_OK;
    }
    if (p->kind == TOK_PRE_BERT) {
        /* whitespace removed, then punctuation isolated */
        tok_list_clear(*spare);
        for (size_t i = 0; i < (*in)->n; i++) {
            const tok_item *it = &(*in)->items[i];
            if ((st = split_by_char(tok_list_str(*in, i), it->len, it->flag, PRED_WHITESPACE, 0,
                                    TOK_REMOVED, *spare, ctx, err)))
                return st;
        }
        swap_lists(in, spare);
        tok_list_clear(*spare);
        for (size_t i = 0; i < (*in)->n; i++) {
            const tok_item *it = &(*in)->items[i];
            if ((st = split_by_char(tok_list_str(*in, i), it->len, it->flag, PRED_PUNCT, 0,
                                    TOK_ISOLATED, *spare, ctx, err)))
                return st;
        }
        swap_lists(in, spare);
        return BADAM_OK;
    }
    tok_list_clear(*spare);
    for (size_t i = 0; i < (*in)->n; i++) {
        const tok_item *it = &(*in)->items[i];
        if ((st = pretok_piece(p, tok_list_str(*in, i), it->len, it->flag, *spare, ctx, err)))
            return st;
    }
    swap_lists(in, spare);
    return BADAM_OK;
}
