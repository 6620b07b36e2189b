/* SuperGLUE task files -> task_set (include/badam/tasks.h). The file is streamed record by record
 * with the dataset scanner (dataset_scan.c: JSON lines, or one JSON array); each record is checked
 * to be UTF-8 and a JSON object, then read by its task's reader (task_records.c, task_wic.c,
 * task_wsc.c, task_multirc.c). */
#include <stdlib.h>

#include "io/files.h"
#include "io/json_get.h"
#include "text/data_internal.h"
#include "text/task_internal.h"

void task_set_free(task_set *set) {
    if (!set) return;
    for (size_t i = 0; i < set->n; i++) task_example_free(&set->examples[i]);
    free(set->examples);
    free(set);
}

static badam_status read_record(task_builder *b, const task_rec *r, const json_t *obj) {
    switch (b->set->kind) {
    case TASK_BOOLQ:
        return task_read_boolq(b, r, obj);
    case TASK_CB:
    case TASK_RTE:
        return task_read_pair_nli(b, r, obj, b->set->kind);
    case TASK_COPA:
        return task_read_copa(b, r, obj);
    case TASK_MULTIRC:
        return task_read_multirc(b, r, obj);
    case TASK_WIC:
        return task_read_wic(b, r, obj);
    case TASK_WSC:
        return task_read_wsc(b, r, obj);
    }
    return badam_fail(r->err, BADAM_E_INVALID, "unknown task kind %d", (int)b->set->kind);
}

/* One record's text: UTF-8, JSON, an object, then its examples. */
static badam_status parse_record(task_builder *b, const task_rec *r, const char *text, size_t len,
                                 size_t byte) {
    if (!io_valid_utf8(text, len))
        return task_rec_fail(r, NULL, "invalid UTF-8 at byte %zu of the file",
                             byte + io_utf8_error_offset(text, len));
    io_json_error je;
    json_t *j = io_json_loadb(text, len, 0, &je);
    if (!j)
        return task_rec_fail(r, NULL, "malformed JSON at byte %zu of the file: %s",
                             byte + je.offset, je.text);
    badam_status st;
    if (!json_is_object(j))
        st = task_rec_fail(r, NULL, "expected a JSON object, got %s", json_type_name(j));
    else
        st = read_record(b, r, j);
    json_decref(j);
    return st;
}

badam_status task_load(task_kind kind, const char *path, task_set **out, badam_error *err) {
    *out = NULL;
    if ((unsigned)kind >= TASK_KIND_COUNT)
        return badam_fail(err, BADAM_E_INVALID, "unknown task kind %d", (int)kind);
    task_set *set = calloc(1, sizeof *set);
    if (!set) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", path);
    set->kind = kind;
    data_scanner *sc = NULL;
    badam_status st = data_scanner_open(path, &sc, err);
    task_builder b = {.set = set};
    while (st == BADAM_OK) {
        const char *text;
        size_t len;
        task_rec r = {.path = path, .index = set->records, .err = err};
        if ((st = data_scanner_next(sc, &text, &len, &r.line, err)) != BADAM_OK || !text) break;
        st = parse_record(&b, &r, text, len, data_scanner_record_offset(sc));
        set->records++;
    }
    data_scanner_close(sc);
    if (st == BADAM_OK && set->records == 0)
        st = badam_fail(err, BADAM_E_FORMAT, "%s: no records", path);
    if (st != BADAM_OK) {
        task_set_free(set);
        return st;
    }
    *out = set;
    return BADAM_OK;
}
