#define _GNU_SOURCE /* memmem */
/* Patterns of tokenizer.json ({"String": ...} or {"Regex": ...}) on PCRE2.
 *
 * tokenizer.json regexes are written for Oniguruma (Rust tokenizers compiles them with it). PCRE2
 * reads the same syntax, but a few escapes mean other things there; we rewrite them to
 * Oniguruma's Unicode meaning before compiling (the same rewrite tokenizers.js does for JS):
 *   \s \S   White_Space            (PCRE2 UCP: Z categories + \t\n\v\f\r, missing U+0085)
 *   \d \D   Nd
 *   \w \W   Alphabetic, M, Nd, Pc (and Oniguruma's Latin-1 quirks U+B2 U+B3 U+B9 U+BC-BE)
 *   \b \B   boundaries of that \w
 *   \h \H   hex digit              (PCRE2: horizontal space)
 * ^ and $ are line anchors in Oniguruma (PCRE2_MULTILINE), and only \n ends a line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "text/tok_internal.h"

#define WORD_CHARS "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{B2}\\x{B3}\\x{B9}\\x{BC}-\\x{BE}"
#define WORD_CLASS "[" WORD_CHARS "]"
#define NONWORD_CLASS "[^" WORD_CHARS "]"

static const char *escape_outside(char c) {
    switch (c) {
    case 's':
        return "\\p{White_Space}";
    case 'S':
        return "\\P{White_Space}";
    case 'd':
        return "\\p{Nd}";
    case 'D':
        return "\\P{Nd}";
    case 'w':
        return WORD_CLASS;
    case 'W':
        return NONWORD_CLASS;
    case 'h':
        return "[0-9A-Fa-f]";
    case 'H':
        return "[^0-9A-Fa-f]";
    case 'b':
        return "(?:(?<!" WORD_CLASS ")(?=" WORD_CLASS ")|(?<=" WORD_CLASS ")(?!" WORD_CLASS "))";
    case 'B':
        return "(?:(?<!" WORD_CLASS ")(?!" WORD_CLASS ")|(?<=" WORD_CLASS ")(?=" WORD_CLASS "))";
    default:
        return NULL;
    }
}

static const char *escape_inside(char c) {
    switch (c) {
    case 's':
        return "\\p{White_Space}";
    case 'S':
        return "\\P{White_Space}";
    case 'd':
        return "\\p{Nd}";
    case 'D':
        return "\\P{Nd}";
    case 'w':
        return WORD_CHARS;
    case 'h':
        return "0-9A-Fa-f";
    default:
        return NULL; /* \W and \H inside a class keep PCRE2's meaning (an approximation) */
    }
}

/* Rewrites an Oniguruma pattern for PCRE2 into out (NUL-terminated). */
static badam_status rewrite_onig(const char *re, size_t n, const char *what, tok_buf *out,
                                 badam_error *err) {
    badam_status st;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = re[i];
        if (c == '\\' && i + 1 < n) {
            const char *rep = in_class ? escape_inside(re[i + 1]) : escape_outside(re[i + 1]);
            if (rep) {
                if ((st = tok_buf_append(out, rep, strlen(rep), err))) return st;
            } else if ((st = tok_buf_append(out, re + i, 2, err))) {
                return st;
            }
            i++;
            continue;
        }
        if (in_class) {
            if (c == '[' && i + 1 < n && re[i + 1] == ':') {
                const char *end = memmem(re + i + 2, n - (i + 2), ":]", 2);
                if (end) {
                    size_t len = (size_t)(end + 2 - (re + i));
                    if ((st = tok_buf_append(out, re + i, len, err))) return st;
                    i += len - 1;
                    continue;
                }
            }
            if (c == '[')
                return badam_fail(err, BADAM_E_UNSUPPORTED,
                                  "%s: nested character classes are not supported", what);
            if (c == '&' && i + 1 < n && re[i + 1] == '&')
                return badam_fail(err, BADAM_E_UNSUPPORTED,
                                  "%s: character-class intersection (&&) is not supported", what);
            if (c == ']' && in_class > 1) {
                in_class = 0;
            } else if (c == ']') {
                in_class = 0;
            }
            /* a ']' right after '[' or '[^' is a literal */
        } else if (c == '[') {
            in_class = 1;
            if ((st = tok_buf_append(out, &c, 1, err))) return st;
            if (i + 1 < n && re[i + 1] == '^') {
                if ((st = tok_buf_append(out, "^", 1, err))) return st;
                i++;
            }
            if (i + 1 < n && re[i + 1] == ']') {
                if ((st = tok_buf_append(out, "\\]", 2, err))) return st;
                i++;
            }
            continue;
        }
        if ((st = tok_buf_append(out, &c, 1, err))) return st;
    }
    return tok_buf_append(out, "", 1, err);
}

badam_status tok_regex_compile(const char *onig, const char *what, void **code, badam_error *err) {
    return tok_regex_compile_n(onig, strlen(onig), what, code, err);
}

badam_status tok_regex_compile_n(const char *onig, size_t onig_len, const char *what, void **code,
                                 badam_error *err) {
    tok_buf buf = {0};
    badam_status st = rewrite_onig(onig, onig_len, what, &buf, err);
    if (st) {
        tok_buf_free(&buf);
        return st;
    }
    pcre2_compile_context *cctx = pcre2_compile_context_create(NULL);
    if (!cctx) {
        tok_buf_free(&buf);
        return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    }
    pcre2_set_newline(cctx, PCRE2_NEWLINE_LF);
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)buf.data, buf.len - 1, /* without the NUL */
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE | PCRE2_ALT_CIRCUMFLEX,
                                   &errcode, &erroff, cctx);
    pcre2_compile_context_free(cctx);
    tok_buf_free(&buf);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        return badam_fail(err, BADAM_E_UNSUPPORTED, "%s: regex /%s/ does not compile: %s", what,
                          onig, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if it fails */
    *code = re;
    return BADAM_OK;
}

void tok_regex_free(void *code) {
    if (code) pcre2_code_free((pcre2_code *)code);
}

/* One match at or after pos: 1 and [*ms, *me), 0 when none. */
static int regex_match(const pcre2_code *re, const char *s, size_t n, size_t pos, size_t *ms,
                       size_t *me, tok_ctx *ctx, badam_status *st, badam_error *err) {
    if (!ctx->match_data) {
        ctx->match_data = pcre2_match_data_create(1, NULL);
        if (!ctx->match_data) {
            *st = badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
            return 0;
        }
    }
    pcre2_match_data *md = ctx->match_data;
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        *st = badam_fail(err, BADAM_E_INVALID, "tokenizer: regex match failed: %s",
                         (const char *)msg);
        return 0;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    *ms = ov[0];
    *me = ov[1];
    return 1;
}

badam_status tok_regex_find(const void *code, const char *s, size_t n, tok_spans *out, tok_ctx *ctx,
                            badam_error *err) {
    size_t pos = 0, last_end = (size_t)-1, ms, me;
    badam_status st = BADAM_OK;
    while (pos <= n) {
        if (!regex_match(code, s, n, pos, &ms, &me, ctx, &st, err)) return st;
        if (ms == me && last_end == me) {
            /* an empty match right after the previous one: step one character */
            if (pos >= n) break;
            uint32_t cp;
            pos += (size_t)tok_utf8_decode(s + pos, n - pos, &cp);
            continue;
        }
        if ((st = tok_spans_push(out, ms, me, 1, err))) return st;
        pos = me;
        last_end = me;
    }
    return BADAM_OK;
}

static badam_status literal_find(const tok_pattern *p, const char *s, size_t n, tok_spans *out,
                                 badam_error *err) {
    size_t pos = 0, m = p->literal_len;
    if (m == 0) return BADAM_OK;
    while (pos + m <= n) {
        const char *hit = memmem(s + pos, n - pos, p->literal, m);
        if (!hit) break;
        size_t at = (size_t)(hit - s);
        badam_status st = tok_spans_push(out, at, at + m, 1, err);
        if (st) return st;
        pos = at + m;
    }
    return BADAM_OK;
}

badam_status tok_pattern_find(const tok_pattern *p, const char *s, size_t n, tok_spans *out,
                              tok_ctx *ctx, badam_error *err) {
    if (p->is_regex) return tok_regex_find(p->code, s, n, out, ctx, err);
    return literal_find(p, s, n, out, err);
}

badam_status tok_pattern_segments(const tok_pattern *p, const char *s, size_t n, tok_spans *out,
                                  tok_ctx *ctx, badam_error *err) {
    out->n = 0;
    if (n == 0 || (!p->is_regex && p->literal_len == 0)) return tok_spans_push(out, 0, n, 0, err);
    badam_status st = tok_pattern_find(p, s, n, out, ctx, err);
    if (st) return st;
    /* interleave the gaps: rebuild in place from the back would be fiddly; copy instead */
    size_t n_matches = out->n;
    tok_spans all = {0};
    size_t prev = 0;
    for (size_t i = 0; i < n_matches && !st; i++) {
        tok_span m = out->data[i];
        if (prev != m.start) st = tok_spans_push(&all, prev, m.start, 0, err);
        if (!st) st = tok_spans_push(&all, m.start, m.end, 1, err);
        prev = m.end;
    }
    if (!st && prev != n) st = tok_spans_push(&all, prev, n, 0, err);
    if (st) {
        free(all.data);
        return st;
    }
    free(out->data);
    *out = all;
    return BADAM_OK;
}

badam_status tok_pattern_replace(const tok_pattern *p, const char *s, size_t n, const char *content,
                                 size_t content_len, tok_buf *out, tok_ctx *ctx, badam_error *err) {
    tok_spans *m = &ctx->spans2;
    m->n = 0;
    badam_status st = tok_pattern_find(p, s, n, m, ctx, err);
    if (st) return st;
    size_t prev = 0;
    for (size_t i = 0; i < m->n; i++) {
        if ((st = tok_buf_append(out, s + prev, m->data[i].start - prev, err))) return st;
        if ((st = tok_buf_append(out, content, content_len, err))) return st;
        prev = m->data[i].end;
    }
    return tok_buf_append(out, s + prev, n - prev, err);
}

badam_status tok_pattern_parse(const json_t *j, const char *file, const char *path,
                               tok_pattern *out, badam_error *err) {
    memset(out, 0, sizeof *out);
    if (!json_is_object(j))
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: %s: expected an object {\"String\": ...} or {\"Regex\": ...}", file,
                          path);
    const json_t *str = json_object_get(j, "String");
    const json_t *re = json_object_get(j, "Regex");
    if (json_is_string(str)) {
        out->literal_len = json_string_length(str);
        out->literal = tok_strndup(json_string_value(str), out->literal_len);
        if (!out->literal) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
        return BADAM_OK;
    }
    if (json_is_string(re)) {
        char what[512];
        snprintf(what, sizeof what, "%s: %s.Regex", file, path);
        out->is_regex = 1;
        return tok_regex_compile_n(json_string_value(re), json_string_length(re), what, &out->code,
                                   err);
    }
    return badam_fail(err, BADAM_E_FORMAT,
                      "%s: %s: expected {\"String\": \"...\"} or {\"Regex\": \"...\"}", file, path);
}

void tok_pattern_free(tok_pattern *p) {
    free(p->literal);
    tok_regex_free(p->code);
    memset(p, 0, sizeof *p);
}
