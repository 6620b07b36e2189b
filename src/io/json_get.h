/* Typed field access on parsed JSON with errors that name the file and the field. */
#ifndef BADAM_IO_JSON_GET_H
#define BADAM_IO_JSON_GET_H

#include <cjson/cJSON.h>

#include "badam/status.h"

/* Each getter: if the field is absent (or JSON null) and `required` is 0, leaves *out unchanged
 * and returns OK; absent and required, or present with the wrong type / a non-integral or
 * out-of-range value, returns BADAM_E_FORMAT with "<file>: field '<name>': ...". */
badam_status json_get_int(const cJSON *obj, const char *field, int required, int *out,
                          const char *file, badam_error *err);
badam_status json_get_double(const cJSON *obj, const char *field, int required, double *out,
                             const char *file, badam_error *err);
badam_status json_get_bool(const cJSON *obj, const char *field, int required, int *out,
                           const char *file, badam_error *err);
/* Copies a string field into out (size bytes); too long is an error. */
badam_status json_get_string(const cJSON *obj, const char *field, int required, char *out,
                             size_t size, const char *file, badam_error *err);

/* 1 when the number is an integer representable in int. */
int json_number_is_int(const cJSON *item);

/* 1 when item is a JSON number holding an integer in [lo, hi] (stored in *out); 0 otherwise.
 * The range is checked on the double before any conversion (a double outside the target type's
 * range converts with undefined behaviour), so every integer read from a file goes through it or
 * json_get_int. lo and hi must be within +-2^53 (exact as doubles). */
int json_int_in_range(const cJSON *item, long long lo, long long hi, long long *out);

#endif
