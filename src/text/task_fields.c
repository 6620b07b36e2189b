/* Typed field getters with errors naming the file, the line and the field; string helpers; the
 * growing example set (task_internal.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_get.h"
#include "text/task_internal.h"

badam_status task_rec_fail(const task_rec *r, const char *field, const char *fmt, ...) {
    char msg[BADAM_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (field)
        return badam_fail(r->err, BADAM_E_FORMAT, "%s: line %zu (record %zu): field '%s': %s",
                          r->path, r->line, r->index, field, msg);
    return badam_fail(r->err, BADAM_E_FORMAT, "%s: line %zu (record %zu): %s", r->path, r->line,
                      r->index, msg);
}

badam_status task_rec_nomem(const task_rec *r) {
    return badam_fail(r->err, BADAM_E_NOMEM, "%s: out of memory reading record %zu", r->path,
                      r->index);
}

/* The field's value; NULL (with *present = 0) when absent or null. */
static const json_t *field(const json_t *obj, const char *key, int *present) {
    const json_t *v = json_field(obj, key);
    if (present) *present = v != NULL;
    return v;
}

badam_status task_get_string(const task_rec *r, const json_t *obj, const char *key,
                             const char *shown, const char **s, size_t *len) {
    const char *name = shown ? shown : key;
    const json_t *v = field(obj, key, NULL);
    if (!v) return task_rec_fail(r, name, "missing");
    if (!json_is_string(v))
        return task_rec_fail(r, name, "expected a string, got %s", json_type_name(v));
    if (!json_string_is_c(v)) return task_rec_fail(r, name, "holds U+0000");
    *s = json_string_value(v);
    *len = json_string_length(v);
    return BADAM_OK;
}

badam_status task_get_text(const task_rec *r, const json_t *obj, const char *key, const char *shown,
                           char **out) {
    const char *s = NULL; /* set on success; initialised for gcc -O3's maybe-uninitialized */
    size_t len = 0;
    badam_status st = task_get_string(r, obj, key, shown, &s, &len);
    if (st) return st;
    char *c = malloc(len + 1);
    if (!c) return task_rec_nomem(r);
    memcpy(c, s, len + 1);
    *out = c;
    return BADAM_OK;
}

badam_status task_get_int(const task_rec *r, const json_t *obj, const char *key, const char *shown,
                          int required, long long lo, long long hi, long long *out, int *present) {
    const char *name = shown ? shown : key;
    const json_t *v = field(obj, key, present);
    if (!v) return required ? task_rec_fail(r, name, "missing") : BADAM_OK;
    if (!json_is_number(v))
        return task_rec_fail(r, name, "expected an integer, got %s", json_type_name(v));
    if (!json_int_in_range(v, lo, hi, out))
        return task_rec_fail(r, name, "expected an integer in [%lld, %lld]", lo, hi);
    return BADAM_OK;
}

badam_status task_get_bool(const task_rec *r, const json_t *obj, const char *key, const char *shown,
                           int required, int *out, int *present) {
    const char *name = shown ? shown : key;
    const json_t *v = field(obj, key, present);
    if (!v) return required ? task_rec_fail(r, name, "missing") : BADAM_OK;
    if (!json_is_boolean(v))
        return task_rec_fail(r, name, "expected true or false, got %s", json_type_name(v));
    *out = json_is_true(v);
    return BADAM_OK;
}

badam_status task_get_array(const task_rec *r, const json_t *obj, const char *key,
                            const char *shown, const json_t **out) {
    const char *name = shown ? shown : key;
    const json_t *v = field(obj, key, NULL);
    if (!v) return task_rec_fail(r, name, "missing");
    if (!json_is_array(v))
        return task_rec_fail(r, name, "expected an array, got %s", json_type_name(v));
    *out = v;
    return BADAM_OK;
}

/* A label string among the task's names. */
static badam_status label_by_name(const task_rec *r, const json_t *v, const char *name,
                                  task_kind kind, int *label) {
    if (!json_is_string(v))
        return task_rec_fail(r, name, "expected a label string, got %s", json_type_name(v));
    const char *s = json_string_value(v);
    int n = task_num_labels(kind);
    for (int i = 0; i < n; i++) {
        if (strcmp(s, task_label_name(kind, i)) == 0 && strlen(s) == json_string_length(v)) {
            *label = i;
            return BADAM_OK;
        }
    }
    char known[256] = "";
    for (int i = 0; i < n; i++) {
        size_t used = strlen(known);
        snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                 task_label_name(kind, i));
    }
    return task_rec_fail(r, name, "unknown label '%.100s' for %s (known: %s)", s,
                         task_kind_name(kind), known);
}

badam_status task_get_label(const task_rec *r, const json_t *obj, const char *key,
                            const char *shown, task_kind kind, task_label_style style, int *label) {
    const char *name = shown ? shown : key;
    *label = -1;
    const json_t *v = field(obj, key, NULL);
    if (!v) return BADAM_OK;
    if (style == TASK_LABEL_NAME) return label_by_name(r, v, name, kind, label);
    if (style == TASK_LABEL_BOOL) {
        int present = 0;
        return task_get_bool(r, obj, key, name, 0, label, &present);
    }
    long long x = -1;
    badam_status st = task_get_int(r, obj, key, name, 0, 0, task_num_labels(kind) - 1, &x, NULL);
    if (st) return st;
    *label = (int)x;
    return BADAM_OK;
}

badam_status task_get_idx(const task_rec *r, const json_t *obj, long long *idx) {
    *idx = (long long)r->index;
    return task_get_int(r, obj, "idx", NULL, 0, -(1LL << 53), 1LL << 53, idx, NULL);
}

char *task_concat3(const char *a, const char *b, const char *c) {
    size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0, lc = c ? strlen(c) : 0;
    char *out = malloc(la + lb + lc + 1);
    if (!out) return NULL;
    if (la) memcpy(out, a, la);
    if (lb) memcpy(out + la, b, lb);
    if (lc) memcpy(out + la + lb, c, lc);
    out[la + lb + lc] = '\0';
    return out;
}

char *task_mark_span(const char *s, size_t len, size_t b0, size_t b1, char mark) {
    char *out = malloc(len + 3);
    if (!out) return NULL;
    memcpy(out, s, b0);
    out[b0] = mark;
    memcpy(out + b0 + 1, s + b0, b1 - b0);
    out[b1 + 1] = mark;
    memcpy(out + b1 + 2, s + b1, len - b1);
    out[len + 2] = '\0';
    return out;
}

void task_example_free(task_example *ex) {
    free(ex->text_a);
    free(ex->text_b);
    for (int i = 0; i < TASK_MAX_CHOICES; i++) free(ex->choices[i]);
    memset(ex, 0, sizeof *ex);
}

badam_status task_builder_add(task_builder *b, const task_rec *r, task_example *ex, int new_group) {
    task_set *s = b->set;
    if (s->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        task_example *grown = realloc(s->examples, cap * sizeof *grown);
        if (!grown) {
            task_example_free(ex);
            return task_rec_nomem(r);
        }
        s->examples = grown;
        b->cap = cap;
    }
    if (new_group || s->n == 0) {
        ex->group = s->n_groups++;
    } else {
        ex->group = s->examples[s->n - 1].group;
    }
    ex->line = r->line;
    if (ex->label >= 0) {
        s->labelled++;
        s->label_counts[ex->label]++;
    }
    s->examples[s->n++] = *ex;
    memset(ex, 0, sizeof *ex);
    return BADAM_OK;
}
