/* Decoders of tokenizer.json: a chain of list-of-strings -> list-of-strings steps (Rust's
 * Decoder::decode_chain); the final strings are concatenated.
 *
 *   ByteLevel     characters -> the bytes they stand for; invalid UTF-8 -> U+FFFD (maximal
 *                 subparts); added tokens pass through verbatim (as in tokenizers.js)
 *   ByteFallback  runs of "<0xXX>" tokens -> their bytes, invalid UTF-8 -> U+FFFD per maximal
 *                 subpart (as tokenizers.js; Rust turns a whole run that is not valid UTF-8 into
 *                 one U+FFFD per byte, losing the valid characters in it: only partial
 *                 sequences, e.g. a decode of a prefix while streaming, see the difference)
 *   Replace       pattern -> content in every token
 *   Fuse          all tokens -> one
 *   Strip         drop up to `start` leading and `stop` trailing `content` characters
 *   Metaspace     replacement -> ' ', and dropped in the first token unless prepend_scheme is
 *                 "never" (Rust drops every replacement of the first token)
 *   BPEDecoder    suffix -> ' ' (-> '' in the last token)
 *   WordPiece     prefix dropped from continuing pieces, ' ' before the others (tok_wordpiece.c) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/tok_internal.h"

/* Sequence: the child decoders, in order. */
static badam_status parse_sequence(const json_t *j, const char *file, const char *path,
                                   tok_decoder *d, badam_error *err) {
    const json_t *arr = json_object_get(j, "decoders");
    if (!json_is_array(arr))
        return badam_fail(err, BADAM_E_FORMAT, "%s: %s.decoders: expected an array", file, path);
    size_t n = (size_t)json_array_size(arr);
    d->children = calloc(n ? n : 1, sizeof *d->children);
    if (!d->children) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    const json_t *c;
    size_t index;
    char sub[512];
    json_array_foreach(arr, index, c) {
        snprintf(sub, sizeof sub, "%s.decoders[%zu]", path, d->n_children);
        badam_status st = tok_decoder_parse(c, file, sub, &d->children[d->n_children], err);
        if (st) return st;
        d->n_children++;
    }
    return BADAM_OK;
}

/* Replace: a pattern and its replacement content. */
static badam_status parse_replace(const json_t *j, const char *file, const char *path,
                                  tok_decoder *d, badam_error *err) {
    const char *s = NULL;
    badam_status st = tok_json_str(j, "content", 1, &s, &d->content_len, file, path, err);
    if (st) return st;
    if (!(d->content = tok_strndup(s, d->content_len)))
        return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    char sub[512];
    snprintf(sub, sizeof sub, "%s.pattern", path);
    return tok_pattern_parse(json_object_get(j, "pattern"), file, sub, &d->pattern, err);
}

/* Metaspace: the replacement character and when a leading space was prepended. */
static badam_status parse_metaspace(const json_t *j, const char *file, const char *path,
                                    tok_decoder *d, badam_error *err) {
    d->replacement_cp = 0x2581;
    d->prepend_scheme = TOK_PREPEND_ALWAYS;
    badam_status st = tok_json_char(j, "replacement", &d->replacement_cp, file, path, err);
    if (st) return st;
    const char *scheme = NULL;
    if ((st = tok_json_str(j, "prepend_scheme", 0, &scheme, NULL, file, path, err))) return st;
    if (scheme) {
        if (!strcmp(scheme, "never"))
            d->prepend_scheme = TOK_PREPEND_NEVER;
        else if (!strcmp(scheme, "first"))
            d->prepend_scheme = TOK_PREPEND_FIRST;
        else if (strcmp(scheme, "always"))
            return badam_fail(err, BADAM_E_UNSUPPORTED,
                              "%s: %s.prepend_scheme: unknown scheme '%s'", file, path, scheme);
    } else {
        int add_prefix_space = 1;
        if ((st = tok_json_bool(j, "add_prefix_space", &add_prefix_space, file, path, err)))
            return st;
        if (!add_prefix_space) d->prepend_scheme = TOK_PREPEND_NEVER;
    }
    return BADAM_OK;
}

/* BPEDecoder: the end-of-word suffix ("</w>" by default). */
static badam_status parse_bpe_decoder(const json_t *j, const char *file, const char *path,
                                      tok_decoder *d, badam_error *err) {
    const char *s = "</w>";
    d->content_len = 4;
    badam_status st = tok_json_str(j, "suffix", 0, &s, &d->content_len, file, path, err);
    if (st) return st;
    if (!(d->content = tok_strndup(s, d->content_len)))
        return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    return BADAM_OK;
}

badam_status tok_decoder_parse(const json_t *j, const char *file, const char *path,
                               tok_decoder **out, badam_error *err) {
    *out = NULL;
    const char *type = NULL;
    badam_status st = tok_json_component_type(j, &type, file, path, err);
    if (st) return st;
    tok_decoder *d = calloc(1, sizeof *d);
    if (!d) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    if (!strcmp(type, "Sequence")) {
        d->kind = TOK_DEC_SEQUENCE;
        st = parse_sequence(j, file, path, d, err);
    } else if (!strcmp(type, "ByteLevel")) {
        d->kind = TOK_DEC_BYTE_LEVEL;
    } else if (!strcmp(type, "ByteFallback")) {
        d->kind = TOK_DEC_BYTE_FALLBACK;
    } else if (!strcmp(type, "Fuse")) {
        d->kind = TOK_DEC_FUSE;
    } else if (!strcmp(type, "Replace")) {
        d->kind = TOK_DEC_REPLACE;
        st = parse_replace(j, file, path, d, err);
    } else if (!strcmp(type, "Strip")) {
        d->kind = TOK_DEC_STRIP;
        d->strip_cp = ' ';
        if (!(st = tok_json_char(j, "content", &d->strip_cp, file, path, err)) &&
            !(st = tok_json_int(j, "start", &d->strip_start, file, path, err)))
            st = tok_json_int(j, "stop", &d->strip_stop, file, path, err);
    } else if (!strcmp(type, "Metaspace")) {
        d->kind = TOK_DEC_METASPACE;
        st = parse_metaspace(j, file, path, d, err);
    } else if (!strcmp(type, "BPEDecoder")) {
        d->kind = TOK_DEC_BPE;
        st = parse_bpe_decoder(j, file, path, d, err);
    } else if (!strcmp(type, "WordPiece")) {
        d->kind = TOK_DEC_WORDPIECE;
        st = tok_wordpiece_decoder_parse(j, file, path, d, err);
    } else {
        st = badam_fail(err, BADAM_E_UNSUPPORTED, "%s: %s: unsupported decoder type '%s'", file,
                        path, type);
    }
    if (st) {
        tok_decoder_free(d);
        return st;
    }
    *out = d;
    return BADAM_OK;
}

void tok_decoder_free(tok_decoder *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n_children; i++) tok_decoder_free(d->children[i]);
    free(d->children);
    free(d->content);
    tok_pattern_free(&d->pattern);
    free(d);
}

/* ---------------------------------------------------------------- steps */

static badam_status byte_level(const tok_list *in, tok_list *out, badam_error *err) {
    tok_buf bytes = {0};
    badam_status st = tok_list_begin(out, 0, err);
    for (size_t i = 0; i < in->n && !st; i++) {
        const char *t = tok_list_str(in, i);
        size_t n = in->items[i].len;
        if (in->items[i].flag) { /* an added token: flush, then verbatim */
            st = tok_utf8_append_lossy(&out->text, bytes.data, bytes.len, err);
            bytes.len = 0;
            if (!st) st = tok_buf_append(&out->text, t, n, err);
            continue;
        }
        size_t mark = bytes.len;
        for (size_t k = 0; k < n && !st;) {
            uint32_t cp;
            k += (size_t)tok_utf8_decode(t + k, n - k, &cp);
            int b = tok_bytelevel_byte(cp);
            if (b < 0) { /* not a byte-level token: its own bytes (as Rust) */
                bytes.len = mark;
                st = tok_buf_append(&bytes, t, n, err);
                break;
            }
            uint8_t c = (uint8_t)b;
            st = tok_buf_append(&bytes, &c, 1, err);
        }
    }
    if (!st) st = tok_utf8_append_lossy(&out->text, bytes.data, bytes.len, err);
    if (!st) tok_list_end(out);
    tok_buf_free(&bytes);
    return st;
}

static int byte_token(const char *t, size_t n, uint8_t *b) {
    if (n != 6 || memcmp(t, "<0x", 3) || t[5] != '>') return 0;
    int v = 0;
    for (int k = 3; k < 5; k++) {
        char c = t[k];
        int d = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (d < 0) return 0;
        v = v * 16 + d;
    }
    *b = (uint8_t)v;
    return 1;
}

static badam_status flush_bytes(tok_buf *bytes, tok_list *out, badam_error *err) {
    if (!bytes->len) return BADAM_OK;
    badam_status st = tok_list_begin(out, 0, err);
    if (!st) st = tok_utf8_append_lossy(&out->text, bytes->data, bytes->len, err);
    if (!st) tok_list_end(out);
    bytes->len = 0;
    return st;
}

static badam_status byte_fallback(const tok_list *in, tok_list *out, badam_error *err) {
    tok_buf bytes = {0};
    badam_status st = BADAM_OK;
    for (size_t i = 0; i < in->n && !st; i++) {
        const char *t = tok_list_str(in, i);
        uint8_t b;
        if (byte_token(t, in->items[i].len, &b)) {
            st = tok_buf_append(&bytes, &b, 1, err);
            continue;
        }
        st = flush_bytes(&bytes, out, err);
        if (!st) st = tok_list_push(out, t, in->items[i].len, in->items[i].flag, err);
    }
    if (!st) st = flush_bytes(&bytes, out, err);
    tok_buf_free(&bytes);
    return st;
}

static badam_status strip(const tok_decoder *d, const tok_list *in, tok_list *out,
                          badam_error *err) {
    badam_status st = BADAM_OK;
    char c[4];
    size_t cl = (size_t)tok_utf8_encode(d->strip_cp, c);
    for (size_t i = 0; i < in->n && !st; i++) {
        const char *t = tok_list_str(in, i);
        size_t a = 0, b = in->items[i].len;
        for (int k = 0; k < d->strip_start && b - a >= cl && !memcmp(t + a, c, cl); k++) a += cl;
        for (int k = 0; k < d->strip_stop && b - a >= cl && !memcmp(t + b - cl, c, cl); k++)
            b -= cl;
        st = tok_list_push(out, t + a, b - a, in->items[i].flag, err);
    }
    return st;
}

static badam_status metaspace(const tok_decoder *d, const tok_list *in, tok_list *out,
                              badam_error *err) {
    badam_status st = BADAM_OK;
    char rep[4];
    size_t rl = (size_t)tok_utf8_encode(d->replacement_cp, rep);
    for (size_t i = 0; i < in->n && !st; i++) {
        const char *t = tok_list_str(in, i);
        size_t n = in->items[i].len;
        int drop = i == 0 && d->prepend_scheme != TOK_PREPEND_NEVER;
        if ((st = tok_list_begin(out, in->items[i].flag, err))) break;
        for (size_t k = 0; k < n && !st;) {
            if (n - k >= rl && !memcmp(t + k, rep, rl)) {
                if (!drop) st = tok_buf_append(&out->text, " ", 1, err);
                k += rl;
            } else {
                st = tok_buf_append(&out->text, t + k, 1, err);
                k++;
            }
        }
        tok_list_end(out);
    }
    return st;
}

static badam_status bpe_suffix(const tok_decoder *d, const tok_list *in, tok_list *out,
                               badam_error *err) {
    badam_status st = BADAM_OK;
    for (size_t i = 0; i < in->n && !st; i++) {
        const char *t = tok_list_str(in, i);
        size_t n = in->items[i].len;
        const char *rep = i + 1 == in->n ? "" : " ";
        if ((st = tok_list_begin(out, in->items[i].flag, err))) break;
        for (size_t k = 0; k < n && !st;) {
            if (d->content_len && n - k >= d->content_len &&
                !memcmp(t + k, d->content, d->content_len)) {
                st = tok_buf_append(&out->text, rep, strlen(rep), err);
                k += d->content_len;
            } else {
                st = tok_buf_append(&out->text, t + k, 1, err);
                k++;
            }
        }
        tok_list_end(out);
    }
    return st;
}

static badam_status decode_step(const tok_decoder *d, const tok_list *in, tok_list *out,
                                tok_ctx *ctx, badam_error *err) {
    badam_status st = BADAM_OK;
    switch (d->kind) {
    case TOK_DEC_BYTE_LEVEL:
        return byte_level(in, out, err);
    case TOK_DEC_BYTE_FALLBACK:
        return byte_fallback(in, out, err);
    case TOK_DEC_FUSE:
        if ((st = tok_list_begin(out, 0, err))) return st;
        for (size_t i = 0; i < in->n && !st; i++)
            st = tok_buf_append(&out->text, tok_list_str(in, i), in->items[i].len, err);
        tok_list_end(out);
        return st;
    case TOK_DEC_REPLACE:
        for (size_t i = 0; i < in->n && !st; i++) {
            if ((st = tok_list_begin(out, in->items[i].flag, err))) break;
            st = tok_pattern_replace(&d->pattern, tok_list_str(in, i), in->items[i].len, d->content,
                                     d->content_len, &out->text, ctx, err);
            tok_list_end(out);
        }
        return st;
    case TOK_DEC_STRIP:
        return strip(d, in, out, err);
    case TOK_DEC_METASPACE:
        return metaspace(d, in, out, err);
    case TOK_DEC_BPE:
        return bpe_suffix(d, in, out, err);
    case TOK_DEC_WORDPIECE:
        return tok_wordpiece_decode(d, in, out, err);
    case TOK_DEC_SEQUENCE:
        break;
    }
    return badam_fail(err, BADAM_E_INVALID, "tokenizer: bad decoder");
}

badam_status tok_decoder_apply(const tok_decoder *d, tok_list **in, tok_list **spare, tok_ctx *ctx,
                               badam_error *err) {
    badam_status st;
    if (d->kind == TOK_DEC_SEQUENCE) {
        for (size_t i = 0; i < d->n_children; i++)
            if ((st = tok_decoder_apply(d->children[i], in, spare, ctx, err))) return st;
        return BADAM_OK;
    }
    tok_list_clear(*spare);
    if ((st = decode_step(d, *in, *spare, ctx, err))) return st;
    tok_list *t = *in;
    *in = *spare;
    *spare = t;
    return BADAM_OK;
}
