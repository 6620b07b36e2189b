/* Decoding JSON text with Jansson (files.h: io_json_loadb): the flags every reader uses, integers
 * beyond 64 bits, and error offsets that point at the offending token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* Where the token an error names starts: Jansson's position is just past it, and its message
 * ends with " near '<token>'" when the token is short; a long number is found by its digits. */
static size_t token_start(const char *text, size_t size, const json_error_t *je) {
    size_t pos = je->position > 0 ? (size_t)je->position : 0;
    if (pos > size) pos = size;
    const char *near = strstr(je->text, " near '");
    size_t n = strlen(je->text);
    if (near && n > 0 && je->text[n - 1] == '\'') {
        size_t len = (size_t)(je->text + n - 1 - (near + 7));
        return len <= pos ? pos - len : pos;
    }
    while (pos > 0 && (is_digit(text[pos - 1]) || strchr(".eE+-", text[pos - 1]))) pos--;
    return pos;
}

static void fill_error(const char *text, size_t size, const json_error_t *je, io_json_error *e,
                       size_t (*map)(size_t, const size_t *, size_t), const size_t *ins,
                       size_t n_ins) {
    size_t at = token_start(text, size, je);
    if (map) at = map(at, ins, n_ins);
    e->offset = at;
    e->line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < at; i++)
        if (text[i] == '\n') e->line++, line_start = i + 1;
    e->column = (int)(at - line_start) + 1;
    snprintf(e->text, sizeof e->text, "%s", je->text);
}

/* Integer literals that do not fit in 64 bits (Python writes 10**30 as
 * 1000000000000000019884624838656 in tokenizer_config.json's model_max_length) get ".0" so
 * Jansson reads them as reals, as Python's json reads them as numbers. *ins lists where (in the
 * original text) ".0" went. NULL when there is none (or out of memory: the strict error stands). */
static char *widen_big_integers(const char *text, size_t size, size_t *out_size, size_t **ins,
                                size_t *n_ins) {
    size_t n = 0, cap = 0;
    size_t *at = NULL;
    int in_string = 0;
    for (size_t i = 0; i < size; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
            continue;
        }
        if (c == '"') {
            in_string = 1;
            continue;
        }
        if (c != '-' && !is_digit(c)) continue;
        size_t j = i + (c == '-'), digits = 0;
        while (j < size && is_digit(text[j])) j++, digits++;
        int integer = j >= size || !strchr(".eE", text[j]);
        while (j < size && (is_digit(text[j]) || strchr(".eE+-", text[j]))) j++;
        if (integer && digits > 18) { /* 19 digits may still fit; Jansson decides below */
            if (n == cap) {
                size_t *a = realloc(at, (cap = cap ? 2 * cap : 8) * sizeof *a);
                if (!a) {
                    free(at);
                    return NULL;
                }
                at = a;
            }
            at[n++] = j;
        }
        i = j - 1;
    }
    if (!n) return NULL;
    char *out = malloc(size + 2 * n + 1);
    if (!out) {
        free(at);
        return NULL;
    }
    size_t w = 0, r = 0;
    for (size_t k = 0; k < n; k++) {
        memcpy(out + w, text + r, at[k] - r);
        w += at[k] - r;
        r = at[k];
        memcpy(out + w, ".0", 2);
        w += 2;
    }
    memcpy(out + w, text + r, size - r);
    w += size - r;
    out[w] = '\0';
    *out_size = w;
    *ins = at;
    *n_ins = n;
    return out;
}

/* An offset in the widened text -> the offset in the original. */
static size_t unwiden(size_t at, const size_t *ins, size_t n_ins) {
    size_t shift = 0;
    for (size_t k = 0; k < n_ins && ins[k] + shift < at; k++) shift += 2;
    return at >= shift ? at - shift : 0;
}

json_t *io_json_loadb(const char *text, size_t size, size_t flags, io_json_error *e) {
    json_error_t je;
    json_t *root = json_loadb(text, size, IO_JSON_DECODE_FLAGS | flags, &je);
    if (root) return root;
    if (json_error_code(&je) == json_error_numeric_overflow) {
        size_t wide_size = 0, *ins = NULL, n_ins = 0;
        char *wide = widen_big_integers(text, size, &wide_size, &ins, &n_ins);
        if (wide) {
            json_error_t je2;
            root = json_loadb(wide, wide_size, IO_JSON_DECODE_FLAGS | flags, &je2);
            if (!root && e) fill_error(wide, wide_size, &je2, e, unwiden, ins, n_ins);
            free(wide);
            free(ins);
            if (root || !e) return root;
            return NULL;
        }
    }
    if (e) fill_error(text, size, &je, e, NULL, NULL, 0);
    return NULL;
}
