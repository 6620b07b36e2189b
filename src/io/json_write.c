#include "io/json_write.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"

typedef struct out_buf {
    char *data;
    size_t len, cap;
    int failed;
} out_buf;

static void put(out_buf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

static void put_str(out_buf *b, const char *s) {
    put(b, s, strlen(s));
}

static void put_newline(out_buf *b, int indent, int depth) {
    put(b, "\n", 1);
    for (int i = 0; i < indent * depth; i++) put(b, " ", 1);
}

static void put_string(out_buf *b, const char *s, size_t n) {
    put(b, "\"", 1);
    size_t run = 0; /* start of the bytes not yet written */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(b, s + run, i - run);
        run = i + 1;
        char esc[8];
        switch (c) {
        case '"':
            put(b, "\\\"", 2);
            break;
        case '\\':
            put(b, "\\\\", 2);
            break;
        case '\b':
            put(b, "\\b", 2);
            break;
        case '\f':
            put(b, "\\f", 2);
            break;
        case '\n':
            put(b, "\\n", 2);
            break;
        case '\r':
            put(b, "\\r", 2);
            break;
        case '\t':
            put(b, "\\t", 2);
            break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(b, esc, 6);
        }
    }
    put(b, s + run, n - run);
    put(b, "\"", 1);
}

/* The shortest of %.15g, %.16g, %.17g that strtod reads back bit for bit (17 always does). */
static void put_real(out_buf *b, double v) {
    char text[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(text, sizeof text, "%.*g", prec, v);
        double back = strtod(text, NULL);
        if (memcmp(&back, &v, sizeof v) == 0) break;
    }
    if (!strpbrk(text, ".eEn")) strcat(text, ".0"); /* "1" would read back as an integer */
    put_str(b, text);
}

static int is_container(const json_t *j) {
    return json_is_object(j) || json_is_array(j);
}

static void put_value(out_buf *b, const json_t *j, int indent, int depth) {
    char num[32];
    switch (json_typeof(j)) {
    case JSON_NULL:
        put_str(b, "null");
        break;
    case JSON_TRUE:
        put_str(b, "true");
        break;
    case JSON_FALSE:
        put_str(b, "false");
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        put_str(b, num);
        break;
    case JSON_REAL:
        put_real(b, json_real_value(j));
        break;
    case JSON_STRING:
        put_string(b, json_string_value(j), json_string_length(j));
        break;
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        int multiline = 0;
        for (size_t i = 0; i < n && indent > 0; i++)
            if (is_container(json_array_get(j, i))) multiline = 1;
        put(b, "[", 1);
        for (size_t i = 0; i < n; i++) {
            if (i) put_str(b, multiline || indent == 0 ? "," : ", ");
            if (multiline) put_newline(b, indent, depth + 1);
            put_value(b, json_array_get(j, i), indent, depth + 1);
        }
        if (multiline) put_newline(b, indent, depth);
        put(b, "]", 1);
        break;
    }
    case JSON_OBJECT: {
        const char *key;
        size_t key_len;
        json_t *value;
        int first = 1;
        put(b, "{", 1);
        json_object_keylen_foreach((json_t *)j, key, key_len, value) {
            if (!first) put(b, ",", 1);
            first = 0;
            if (indent > 0) put_newline(b, indent, depth + 1);
            put_string(b, key, key_len);
            put_str(b, indent > 0 ? ": " : ":");
            put_value(b, value, indent, depth + 1);
        }
        if (!first && indent > 0) put_newline(b, indent, depth);
        put(b, "}", 1);
        break;
    }
    }
}

char *io_json_dump(const json_t *root, int indent, size_t *len_out) {
    out_buf b = {0};
    if (root) put_value(&b, root, indent, 0);
    put(&b, "", 0);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    if (len_out) *len_out = b.len;
    return b.data;
}

badam_status io_json_write_file(const char *path, const json_t *root, int indent,
                                badam_error *err) {
    size_t len;
    char *text = io_json_dump(root, indent, &len);
    if (!text) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", path);
    badam_status st = io_write_file_atomic(path, text, len, err);
    free(text);
    return st;
}

json_t *io_json_real(double v) {
    return isfinite(v) ? json_real(v) : json_null();
}

json_t *io_json_real_float(float v) {
    if (!isfinite(v)) return json_null();
    char text[32];
    for (int prec = 6; prec <= 9; prec++) { /* 9 significant digits always read back */
        snprintf(text, sizeof text, "%.*g", prec, (double)v);
        if (strtof(text, NULL) == v) break;
    }
    return json_real(signbit(v) && v == 0 ? -0.0 : strtod(text, NULL));
}

static json_t *add_new(json_t *obj, const char *key, json_t *value) {
    /* json_object_set_new releases value when it fails */
    return json_object_set_new(obj, key, value) == 0 ? value : NULL;
}

json_t *io_json_add_object(json_t *obj, const char *key) {
    return add_new(obj, key, json_object());
}

json_t *io_json_add_array(json_t *obj, const char *key) {
    return add_new(obj, key, json_array());
}
