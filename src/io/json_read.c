#define _GNU_SOURCE /* memmem */
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

/* Jansson decodes U+0000 in strings (JSON_ALLOW_NUL) but refuses it in object keys, which a
 * tokenizer.json vocabulary may hold ("\u0000": id). Such keys are decoded with a stand-in,
 * U+10FFFF (a noncharacter, used only when the text holds none), then renamed back. */
#define KEY_NUL_ESCAPE "\\udbff\\udfff"
#define KEY_NUL_UTF8 "\xF4\x8F\xBF\xBF"

/* One change of the rewritten text: `added` bytes more than the original from position `at` (in
 * the original) on. */
typedef struct text_edit {
    size_t at, added;
} text_edit;

typedef struct rewrite {
    char *text;
    size_t len, cap;
    text_edit *edits;
    size_t n_edits, edits_cap;
    int failed;
} rewrite;

static void rw_put(rewrite *w, const char *s, size_t n) {
    if (w->failed) return;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (w->len + n + 1 > cap) cap *= 2;
        char *t = realloc(w->text, cap);
        if (!t) {
            w->failed = 1;
            return;
        }
        w->text = t, w->cap = cap;
    }
    memcpy(w->text + w->len, s, n);
    w->len += n;
    w->text[w->len] = '\0';
}

static void rw_edit(rewrite *w, size_t at, size_t added) {
    if (w->failed) return;
    if (w->n_edits == w->edits_cap) {
        size_t cap = w->edits_cap ? 2 * w->edits_cap : 8;
        text_edit *e = realloc(w->edits, cap * sizeof *e);
        if (!e) {
            w->failed = 1;
            return;
        }
        w->edits = e, w->edits_cap = cap;
    }
    w->edits[w->n_edits++] = (text_edit){at, added};
}

/* The string token starting at text[i] == '"': its end (one past the closing quote). */
static size_t string_end(const char *text, size_t size, size_t i) {
    for (i++; i < size; i++) {
        if (text[i] == '\\')
            i++;
        else if (text[i] == '"')
            return i + 1;
    }
    return size;
}

static int is_key(const char *text, size_t size, size_t end) {
    while (end < size && strchr(" \t\r\n", text[end])) end++;
    return end < size && text[end] == ':';
}

/* Integer literals that do not fit in 64 bits (Python writes 10**30 as
 * 1000000000000000019884624838656 in tokenizer_config.json's model_max_length) get ".0" so
 * Jansson reads them as reals, as Python's json reads them as numbers; with nul_keys, "\u0000" in
 * object keys becomes the stand-in. 0 when nothing changed (or out of memory). */
static int rewrite_text(const char *text, size_t size, int nul_keys, rewrite *w) {
    size_t copied = 0;
    for (size_t i = 0; i < size && !w->failed; i++) {
        char c = text[i];
        if (c == '"') {
            size_t end = string_end(text, size, i);
            if (nul_keys && is_key(text, size, end)) {
                for (size_t k = i + 1; k + 6 <= end; k++) {
                    if (text[k] != '\\') continue;
                    if (!memcmp(text + k, "\\u0000", 6)) {
                        rw_put(w, text + copied, k - copied);
                        rw_put(w, KEY_NUL_ESCAPE, 12);
                        rw_edit(w, k + 6, 6);
                        copied = k + 6;
                    }
                    k++; /* the escaped character */
                }
            }
            i = end - 1;
            continue;
        }
        if (c != '-' && !is_digit(c)) continue;
        size_t j = i + (c == '-'), digits = 0;
        while (j < size && is_digit(text[j])) j++, digits++;
        int integer = j >= size || !strchr(".eE", text[j]);
        while (j < size && (is_digit(text[j]) || strchr(".eE+-", text[j]))) j++;
        if (integer && digits > 18) { /* 19 digits may still fit: then ".0" makes a real */
            rw_put(w, text + copied, j - copied);
            rw_put(w, ".0", 2);
            rw_edit(w, j, 2);
            copied = j;
        }
        i = j - 1;
    }
    if (!w->n_edits || w->failed) return 0;
    rw_put(w, text + copied, size - copied);
    return !w->failed;
}

/* An offset in the rewritten text -> the offset in the original. */
static size_t unwiden(size_t at, const text_edit *edits, size_t n_edits) {
    size_t shift = 0;
    for (size_t k = 0; k < n_edits && edits[k].at + shift + edits[k].added <= at; k++)
        shift += edits[k].added;
    return at >= shift ? at - shift : 0;
}

/* *e for an error of Jansson's at je in `parsed` (the text it read: the original or a rewrite of
 * it with these edits), as an offset, line and column of the original text. */
static void fill_error(const char *text, size_t size, const char *parsed, size_t parsed_size,
                       const json_error_t *je, const text_edit *edits, size_t n_edits,
                       io_json_error *e) {
    size_t at = unwiden(token_start(parsed, parsed_size, je), edits, n_edits);
    if (at > size) at = size;
    e->offset = at;
    e->line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < at; i++)
        if (text[i] == '\n') e->line++, line_start = i + 1;
    e->column = (int)(at - line_start) + 1;
    snprintf(e->text, sizeof e->text, "%s", je->text);
}

/* Renames keys holding the stand-in back to U+0000, keeping every object's key order. */
static int restore_nul_keys(json_t *j) {
    size_t i;
    const char *key;
    size_t key_len;
    json_t *v;
    if (json_is_array(j)) {
        json_array_foreach(j, i, v) if (restore_nul_keys(v)) return -1;
        return 0;
    }
    if (!json_is_object(j)) return 0;
    int any = 0;
    json_object_keylen_foreach(j, key, key_len, v) {
        if (restore_nul_keys(v)) return -1;
        any |= memmem(key, key_len, KEY_NUL_UTF8, 4) != NULL;
    }
    if (!any) return 0;
    json_t *copy = json_object();
    if (!copy) return -1;
    json_object_keylen_foreach(j, key, key_len, v) {
        char *k = malloc(key_len + 1);
        size_t n = 0;
        if (!k) {
            json_decref(copy);
            return -1;
        }
        for (size_t r = 0; r < key_len;) {
            if (r + 4 <= key_len && !memcmp(key + r, KEY_NUL_UTF8, 4))
                k[n++] = '\0', r += 4;
            else
                k[n++] = key[r++];
        }
        int bad = json_object_setn_new(copy, k, n, json_incref(v));
        free(k);
        if (bad) {
            json_decref(copy);
            return -1;
        }
    }
    json_object_clear(j);
    int bad = 0; /* json_object_update would cut keys at U+0000 */
    json_object_keylen_foreach(copy, key, key_len, v) bad |= json_object_setn(j, key, key_len, v);
    json_decref(copy);
    return bad;
}

json_t *io_json_loadb(const char *text, size_t size, size_t flags, io_json_error *e) {
    json_error_t je;
    json_t *root = json_loadb(text, size, IO_JSON_DECODE_FLAGS | flags, &je);
    if (root) return root;
    enum json_error_code code = json_error_code(&je);
    int nul_keys = code == json_error_null_byte_in_key && !memmem(text, size, KEY_NUL_UTF8, 4) &&
                   !memmem(text, size, KEY_NUL_ESCAPE, 12);
    rewrite w = {0};
    if ((code == json_error_numeric_overflow || nul_keys) &&
        rewrite_text(text, size, nul_keys, &w)) {
        json_error_t je2;
        root = json_loadb(w.text, w.len, IO_JSON_DECODE_FLAGS | flags, &je2);
        if (root && nul_keys && restore_nul_keys(root)) {
            json_decref(root);
            root = NULL;
            snprintf(je2.text, sizeof je2.text, "out of memory");
            je2.position = 0;
        }
        if (!root && e) fill_error(text, size, w.text, w.len, &je2, w.edits, w.n_edits, e);
        free(w.text);
        free(w.edits);
        return root;
    }
    free(w.text);
    free(w.edits);
    if (e) fill_error(text, size, text, size, &je, NULL, 0, e);
    return NULL;
}
