/* BertNormalizer of tokenizer.json, as the Rust `tokenizers` crate (normalizers/bert.rs):
 *
 *   clean_text            drop U+0000, U+FFFD and "control" characters (general category C*:
 *                         Cc Cf Cs Co Cn, except \t \n \r); every White_Space character -> ' '
 *   handle_chinese_chars  ' ' c ' ' around every CJK ideograph c (the blocks listed below)
 *   strip_accents         NFD, then drop nonspacing marks (Mn); null: the value of lowercase
 *   lowercase             per code point lowercase (as the Lowercase normalizer)
 *
 * applied in that order. tokenizers.js differs in three places, none of which the parity corpus
 * holds: it spaces out only BMP ideographs (it walks UTF-16 units), keeps unassigned code points
 * (Cn), and lowercases before stripping accents with JavaScript's toLowerCase (final sigma).
 * Rust decides Cn with its own Unicode tables; utf8proc's may be newer, so a code point assigned
 * in between is kept here and dropped there. */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "text/tok_internal.h"

badam_status tok_bert_norm_parse(const json_t *j, const char *file, const char *path,
                                 tok_normalizer *nm, badam_error *err) {
    nm->clean_text = nm->handle_chinese_chars = nm->lowercase = 1;
    nm->strip_accents = -1;
    badam_status st;
    if ((st = tok_json_bool(j, "clean_text", &nm->clean_text, file, path, err)) ||
        (st = tok_json_bool(j, "handle_chinese_chars", &nm->handle_chinese_chars, file, path,
                            err)) ||
        (st = tok_json_bool(j, "lowercase", &nm->lowercase, file, path, err)))
        return st;
    const json_t *sa = json_object_get(j, "strip_accents");
    if (sa && !json_is_null(sa)) {
        if (!json_is_boolean(sa))
            return badam_fail(err, BADAM_E_FORMAT,
                              "%s: %s.strip_accents: expected true, false or null", file, path);
        nm->strip_accents = json_is_true(sa);
    }
    return BADAM_OK;
}

/* The CJK Unified Ideographs blocks BERT spaces out (Rust's is_chinese_char). */
static int is_chinese_char(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Rust's char::is_other (general category C*), except tab, newline and carriage return. */
static int is_control(uint32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return 0;
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
        return 1;
    default:
        return 0;
    }
}

/* clean_text and handle_chinese_chars in one pass over s (valid UTF-8), appending to out. */
static badam_status clean_and_space(const tok_normalizer *nm, const char *s, size_t n, tok_buf *out,
                                    badam_error *err) {
    badam_status st = tok_buf_reserve(out, n, err);
    size_t i = 0;
    while (i < n && !st) {
        uint32_t cp;
        int len = tok_utf8_decode(s + i, n - i, &cp);
        const char *c = s + i;
        i += (size_t)len;
        if (nm->clean_text) {
            if (cp == 0 || cp == 0xFFFD || is_control(cp)) continue;
            if (tok_is_whitespace(cp)) {
                st = tok_buf_append(out, " ", 1, err);
                continue;
            }
        }
        if (nm->handle_chinese_chars && is_chinese_char(cp)) {
            if (!(st = tok_buf_append(out, " ", 1, err)) &&
                !(st = tok_buf_append(out, c, (size_t)len, err)))
                st = tok_buf_append(out, " ", 1, err);
            continue;
        }
        st = tok_buf_append(out, c, (size_t)len, err);
    }
    return st;
}

badam_status tok_bert_norm_apply(const tok_normalizer *nm, const char *s, size_t n, tok_buf *out,
                                 badam_error *err) {
    tok_buf a = {0}, b = {0};
    int strip = nm->strip_accents < 0 ? nm->lowercase : nm->strip_accents;
    badam_status st = clean_and_space(nm, s, n, &a, err);
    if (!st && strip) {
        tok_buf nfd = {0};
        st = tok_norm_nfd(a.data, a.len, &nfd, err);
        if (!st) st = tok_buf_reserve(&b, nfd.len, err);
        if (!st) st = tok_norm_strip_accents(nfd.data, nfd.len, &b, err);
        tok_buf_free(&nfd);
        tok_buf t = a;
        a = b;
        b = t;
        b.len = 0;
    }
    if (!st && nm->lowercase) {
        st = tok_norm_lowercase(a.data, a.len, &b, err);
        tok_buf t = a;
        a = b;
        b = t;
    }
    if (!st) st = tok_buf_append(out, a.data, a.len, err);
    tok_buf_free(&a);
    tok_buf_free(&b);
    return st;
}
