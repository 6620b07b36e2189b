/* Internals of the SuperGLUE task loader shared by task_load.c and the per-task record readers
 * (task_records.c, task_wic.c, task_wsc.c, task_multirc.c): the record being read (for errors
 * naming the file, line and field), typed field getters, and the growing example set. */
#ifndef BADAM_TEXT_TASK_INTERNAL_H
#define BADAM_TEXT_TASK_INTERNAL_H

#include <stddef.h>

#include <jansson.h>

#include "badam/tasks.h"

/* The record being read and where errors go. */
typedef struct task_rec {
    const char *path;
    size_t index; /* 0-based record number */
    size_t line;  /* 1-based line of its first byte */
    badam_error *err;
} task_rec;

/* BADAM_E_FORMAT with "<file>: line <l> (record <r>): field '<field>': <message>" (no field part
 * when field is NULL). */
badam_status task_rec_fail(const task_rec *r, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* BADAM_E_NOMEM naming the file. */
badam_status task_rec_nomem(const task_rec *r);

/* Field getters: `key` is looked up in obj, `shown` (NULL: key) names it in errors
 * ("passage.questions[2].question"). A field that is absent or JSON null is an error when
 * required; when optional it leaves the output as it was and sets *present (may be NULL) to 0. */
/* A string without U+0000: a pointer into obj (valid while obj lives) and its length. */
badam_status task_get_string(const task_rec *r, const json_t *obj, const char *key,
                             const char *shown, const char **s, size_t *len);
/* The same, copied into a malloc'd string. */
badam_status task_get_text(const task_rec *r, const json_t *obj, const char *key, const char *shown,
                           char **out);
/* An integer in [lo, hi] (a real holding one is accepted, as Python's json gives 1.0 == 1). */
badam_status task_get_int(const task_rec *r, const json_t *obj, const char *key, const char *shown,
                          int required, long long lo, long long hi, long long *out, int *present);
/* A JSON true/false. */
badam_status task_get_bool(const task_rec *r, const json_t *obj, const char *key, const char *shown,
                           int required, int *out, int *present);
/* An array (borrowed). */
badam_status task_get_array(const task_rec *r, const json_t *obj, const char *key,
                            const char *shown, const json_t **out);
/* The optional "label" of a record: a string among the task's label names, a boolean (false 0,
 * true 1) or an integer in [0, n_labels), as `style` says; -1 when absent. */
typedef enum task_label_style { TASK_LABEL_NAME, TASK_LABEL_BOOL, TASK_LABEL_INT } task_label_style;
badam_status task_get_label(const task_rec *r, const json_t *obj, const char *key,
                            const char *shown, task_kind kind, task_label_style style, int *label);

/* malloc'd a + b + c (any may be NULL, read as ""); NULL when out of memory. */
char *task_concat3(const char *a, const char *b, const char *c);
/* malloc'd copy of s[0..len) with `mark` inserted before byte b0 and before byte b1
 * (b0 <= b1 <= len); NULL when out of memory. */
char *task_mark_span(const char *s, size_t len, size_t b0, size_t b1, char mark);

/* The set being built. */
typedef struct task_builder {
    task_set *set;
    size_t cap;
} task_builder;

/* Appends *ex (taking ownership of its strings, even on failure) with group = a fresh question
 * when new_group, else the last example's group. */
badam_status task_builder_add(task_builder *b, const task_rec *r, task_example *ex, int new_group);
void task_example_free(task_example *ex);

/* One record of each task -> examples. obj is a JSON object. */
badam_status task_read_boolq(task_builder *b, const task_rec *r, const json_t *obj);
badam_status task_read_pair_nli(task_builder *b, const task_rec *r, const json_t *obj,
                                task_kind kind); /* CB, RTE */
badam_status task_read_copa(task_builder *b, const task_rec *r, const json_t *obj);
badam_status task_read_wic(task_builder *b, const task_rec *r, const json_t *obj);
badam_status task_read_wsc(task_builder *b, const task_rec *r, const json_t *obj);
badam_status task_read_multirc(task_builder *b, const task_rec *r, const json_t *obj);

/* The record's "idx" (any integer; the record number when absent). */
badam_status task_get_idx(const task_rec *r, const json_t *obj, long long *idx);

#endif
