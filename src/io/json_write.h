/* Writing JSON: the one serializer for every JSON file and line we write (configs, tokenizer and
 * adapter configs, checkpoint state, memory records, report data, CLI output). */
#ifndef BADAM_IO_JSON_WRITE_H
#define BADAM_IO_JSON_WRITE_H

#include <stddef.h>

#include <jansson.h>

#include "badam/json.h" /* io_json_dump, io_json_real */
#include "badam/status.h"

/* io_json_dump(root, indent) written atomically to path (io_write_file_atomic). */
badam_status io_json_write_file(const char *path, const json_t *root, int indent, badam_error *err);

/* The same for a float, as the shortest decimal that reads back to the same float (1e-5f is
 * written 1e-05, not 9.9999997473787516e-06, which is the same float as a double's digits). */
json_t *io_json_real_float(float v);

/* A new empty object / array set as obj[key]; NULL when out of memory. */
json_t *io_json_add_object(json_t *obj, const char *key);
json_t *io_json_add_array(json_t *obj, const char *key);

#endif
