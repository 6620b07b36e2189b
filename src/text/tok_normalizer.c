/* Normalizers of tokenizer.json: string -> string, applied to the text between added tokens.
 *
 *   Sequence      each child in turn
 *   Prepend       prefix + s (only when s is not empty)
 *   Replace       every match of pattern -> content
 *   NFC NFD NFKC NFKD   Unicode normalization forms (utf8proc)
 *   Lowercase     per code point full lowercase mapping (Rust char::to_lowercase: no final-sigma
 *                 context, unlike JS toLowerCase)
 *   Strip         remove White_Space at the left and/or right
 *   StripAccents  remove nonspacing marks (Mn)
 *   ByteLevel     every byte -> its GPT-2 byte-level character
 *   BertNormalizer  clean text, space out CJK, strip accents, lowercase (tok_bert_norm.c) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "text/tok_internal.h"

static badam_status unsupported(const char *file, const char *path, const char *type,
                                badam_error *err) {
    return badam_fail(err, BADAM_E_UNSUPPORTED, "%s: %s: unsupported normalizer type '%s'", file,
                      path, type);
}

badam_status tok_normalizer_parse(const json_t *j, const char *file, const char *path,
                                  tok_normalizer **out, badam_error *err) {
    *out = NULL;
    const char *type = NULL;
    badam_status st = tok_json_component_type(j, &type, file, path, err);
    if (st) return st;
    tok_normalizer *nm = calloc(1, sizeof *nm);
    if (!nm) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    char sub[512];
    if (!strcmp(type, "Sequence")) {
        nm->kind = TOK_NORM_SEQUENCE;
        const json_t *arr = json_object_get(j, "normalizers");
        if (!json_is_array(arr)) {
            st = badam_fail(err, BADAM_E_FORMAT, "%s: %s.normalizers: expected an array", file,
                            path);
            goto fail;
        }
        size_t n = (size_t)json_array_size(arr);
        nm->children = calloc(n ? n : 1, sizeof *nm->children);
        if (!nm->children) {
            st = badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
            goto fail;
        }
        const json_t *c;
        size_t index;
        json_array_foreach(arr, index, c) {
            snprintf(sub, sizeof sub, "%s.normalizers[%zu]", path, nm->n_children);
            if ((st = tok_normalizer_parse(c, file, sub, &nm->children[nm->n_children], err)))
                goto fail;
            nm->n_children++;
        }
    } else if (!strcmp(type, "Prepend")) {
        nm->kind = TOK_NORM_PREPEND;
        const char *s = NULL;
        if ((st = tok_json_str(j, "prepend", 1, &s, &nm->content_len, file, path, err))) goto fail;
        nm->content = tok_strndup(s, nm->content_len);
    } else if (!strcmp(type, "Replace")) {
        nm->kind = TOK_NORM_REPLACE;
        const char *s = NULL;
        if ((st = tok_json_str(j, "content", 1, &s, &nm->content_len, file, path, err))) goto fail;
        nm->content = tok_strndup(s, nm->content_len);
        snprintf(sub, sizeof sub, "%s.pattern", path);
        if ((st = tok_pattern_parse(json_object_get(j, "pattern"), file, sub, &nm->pattern, err)))
            goto fail;
    } else if (!strcmp(type, "NFC")) {
        nm->kind = TOK_NORM_NFC;
    } else if (!strcmp(type, "NFD")) {
        nm->kind = TOK_NORM_NFD;
    } else if (!strcmp(type, "NFKC")) {
        nm->kind = TOK_NORM_NFKC;
    } else if (!strcmp(type, "NFKD")) {
        nm->kind = TOK_NORM_NFKD;
    } else if (!strcmp(type, "Lowercase")) {
        nm->kind = TOK_NORM_LOWERCASE;
    } else if (!strcmp(type, "Strip")) {
        nm->kind = TOK_NORM_STRIP;
        nm->strip_left = nm->strip_right = 1;
        if ((st = tok_json_bool(j, "strip_left", &nm->strip_left, file, path, err))) goto fail;
        if ((st = tok_json_bool(j, "strip_right", &nm->strip_right, file, path, err))) goto fail;
    } else if (!strcmp(type, "StripAccents")) {
        nm->kind = TOK_NORM_STRIP_ACCENTS;
    } else if (!strcmp(type, "ByteLevel")) {
        nm->kind = TOK_NORM_BYTE_LEVEL;
    } else if (!strcmp(type, "BertNormalizer")) {
        nm->kind = TOK_NORM_BERT;
        if ((st = tok_bert_norm_parse(j, file, path, nm, err))) goto fail;
    } else {
        st = unsupported(file, path, type, err);
        goto fail;
    }
    if ((nm->kind == TOK_NORM_PREPEND || nm->kind == TOK_NORM_REPLACE) && !nm->content) {
        st = badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
        goto fail;
    }
    *out = nm;
    return BADAM_OK;
fail:
    tok_normalizer_free(nm);
    return st;
}

void tok_normalizer_free(tok_normalizer *nm) {
    if (!nm) return;
    for (size_t i = 0; i < nm->n_children; i++) tok_normalizer_free(nm->children[i]);
    free(nm->children);
    free(nm->content);
    tok_pattern_free(&nm->pattern);
    free(nm);
}

/* 1 when s (valid UTF-8) certainly is unchanged by the form: pure ASCII always is; for NFC, any
 * text without code points >= U+0300 is (nothing below it composes or is excluded). */
static int normal_form_is_identity(tok_norm_kind kind, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        if (u[i] < 0x80) continue;
        if (kind != TOK_NORM_NFC) return 0;
        if (u[i] >= 0xCC) return 0; /* lead bytes of U+0300 and above */
    }
    return 1;
}

static badam_status apply_unicode_form(tok_norm_kind kind, const char *s, size_t n, tok_buf *out,
                                       badam_error *err) {
    if (normal_form_is_identity(kind, s, n)) return tok_buf_append(out, s, n, err);
    int opts = UTF8PROC_STABLE;
    switch (kind) {
    case TOK_NORM_NFC:
        opts |= UTF8PROC_COMPOSE;
        break;
    case TOK_NORM_NFD:
        opts |= UTF8PROC_DECOMPOSE;
        break;
    case TOK_NORM_NFKC:
        opts |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
        break;
    default:
        opts |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
        break;
    }
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t len = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst,
                                        (utf8proc_option_t)opts);
    if (len < 0) {
        free(dst);
        return badam_fail(err, BADAM_E_INVALID, "tokenizer: Unicode normalization failed: %s",
                          utf8proc_errmsg(len));
    }
    badam_status st = tok_buf_append(out, dst, (size_t)len, err);
    free(dst);
    return st;
}

badam_status tok_norm_nfd(const char *s, size_t n, tok_buf *out, badam_error *err) {
    return apply_unicode_form(TOK_NORM_NFD, s, n, out, err);
}

badam_status tok_norm_lowercase(const char *s, size_t n, tok_buf *out, badam_error *err) {
    badam_status st = tok_buf_reserve(out, n + 8, err);
    if (st) return st;
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            char l = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : (char)c;
            if ((st = tok_buf_append(out, &l, 1, err))) return st;
            i++;
            continue;
        }
        uint32_t cp;
        i += (size_t)tok_utf8_decode(s + i, n - i, &cp);
        char enc[8];
        int len;
        if (cp == 0x130) { /* the one unconditional multi-character lowercase mapping */
            memcpy(enc, "i\xCC\x87", 3);
            len = 3;
        } else {
            len = tok_utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), enc);
        }
        if ((st = tok_buf_append(out, enc, (size_t)len, err))) return st;
    }
    return BADAM_OK;
}

static badam_status apply_strip(const tok_normalizer *nm, const char *s, size_t n, tok_buf *out,
                                badam_error *err) {
    size_t a = 0, b = n;
    if (nm->strip_left) {
        while (a < b) {
            uint32_t cp;
            int len = tok_utf8_decode(s + a, b - a, &cp);
            if (!tok_is_whitespace(cp)) break;
            a += (size_t)len;
        }
    }
    if (nm->strip_right) {
        while (b > a) {
            size_t k = b - 1;
            while (k > a && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
            uint32_t cp;
            tok_utf8_decode(s + k, b - k, &cp);
            if (!tok_is_whitespace(cp)) break;
            b = k;
        }
    }
    return tok_buf_append(out, s + a, b - a, err);
}

badam_status tok_norm_strip_accents(const char *s, size_t n, tok_buf *out, badam_error *err) {
    size_t i = 0;
    badam_status st;
    while (i < n) {
        uint32_t cp;
        int len = tok_utf8_decode(s + i, n - i, &cp);
        if (cp < 0x300 || utf8proc_category((utf8proc_int32_t)cp) != UTF8PROC_CATEGORY_MN)
            if ((st = tok_buf_append(out, s + i, (size_t)len, err))) return st;
        i += (size_t)len;
    }
    return BADAM_OK;
}

static badam_status apply_byte_level(const char *s, size_t n, tok_buf *out, badam_error *err) {
    badam_status st = tok_buf_reserve(out, 2 * n, err);
    if (st) return st;
    for (size_t i = 0; i < n; i++)
        out->len += (size_t)tok_bytelevel_encode((uint8_t)s[i], out->data + out->len);
    return BADAM_OK;
}

badam_status tok_normalizer_apply(const tok_normalizer *nm, const char *s, size_t n, tok_buf *out,
                                  tok_ctx *ctx, badam_error *err) {
    out->len = 0;
    switch (nm->kind) {
    case TOK_NORM_SEQUENCE: {
        if (nm->n_children == 0) return tok_buf_append(out, s, n, err);
        tok_buf a = {0}, b = {0};
        badam_status st = BADAM_OK;
        const char *cur = s;
        size_t cur_n = n;
        for (size_t i = 0; i < nm->n_children && !st; i++) {
            tok_buf *dst = (i % 2 == 0) ? &a : &b;
            st = tok_normalizer_apply(nm->children[i], cur, cur_n, dst, ctx, err);
            cur = dst->data;
            cur_n = dst->len;
        }
        if (!st) st = tok_buf_append(out, cur, cur_n, err);
        tok_buf_free(&a);
        tok_buf_free(&b);
        return st;
    }
    case TOK_NORM_PREPEND: {
        if (n == 0) return BADAM_OK;
        badam_status st = tok_buf_append(out, nm->content, nm->content_len, err);
        return st ? st : tok_buf_append(out, s, n, err);
    }
    case TOK_NORM_REPLACE:
        return tok_pattern_replace(&nm->pattern, s, n, nm->content, nm->content_len, out, ctx, err);
    case TOK_NORM_NFC:
    case TOK_NORM_NFD:
    case TOK_NORM_NFKC:
    case TOK_NORM_NFKD:
        return apply_unicode_form(nm->kind, s, n, out, err);
    case TOK_NORM_LOWERCASE:
        return tok_norm_lowercase(s, n, out, err);
    case TOK_NORM_STRIP:
        return apply_strip(nm, s, n, out, err);
    case TOK_NORM_STRIP_ACCENTS:
        return tok_norm_strip_accents(s, n, out, err);
    case TOK_NORM_BYTE_LEVEL:
        return apply_byte_level(s, n, out, err);
    case TOK_NORM_BERT:
        return tok_bert_norm_apply(nm, s, n, out, err);
    }
    return badam_fail(err, BADAM_E_INVALID, "tokenizer: bad normalizer");
}
