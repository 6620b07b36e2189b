/* Typed field access on parsed JSON (Jansson) with errors that name the file and the field. */
#ifndef BADAM_IO_JSON_GET_H
#define BADAM_IO_JSON_GET_H

#include <stddef.h>

#include <jansson.h>

#include "badam/status.h"

/* Each getter: if the field is absent (or JSON null) and `required` is 0, leaves *out unchanged
 * and returns OK; absent and required, or present with the wrong type / a non-integral or
 * out-of-range value, returns BADAM_E_FORMAT with "<file>: field '<name>': ...". A number may be
 * written as an integer or a real (1 and 1.0) wherever a number is expected. */
badam_status json_get_int(const json_t *obj, const char *field, int required, int *out,
                          const char *file, badam_error *err);
badam_status json_get_double(const json_t *obj, const char *field, int required, double *out,
                             const char *file, badam_error *err);
badam_status json_get_bool(const json_t *obj, const char *field, int required, int *out,
                           const char *file, badam_error *err);
/* Copies a string field into out (size bytes, NUL-terminated); too long is an error, and so is a
 * string holding U+0000 (a C string cannot hold it: the rest would be lost). */
badam_status json_get_string(const json_t *obj, const char *field, int required, char *out,
                             size_t size, const char *file, badam_error *err);

/* The field's value, or NULL when it is absent or JSON null. */
const json_t *json_field(const json_t *obj, const char *field);

/* 1 when the number is an integer representable in int. */
int json_number_is_int(const json_t *item);

/* 1 when item is a JSON number (integer or real) holding an integer in [lo, hi] (stored in *out);
 * 0 otherwise. A real's range is checked on the double before any conversion (a double outside
 * the target type's range converts with undefined behaviour), so every integer read from a file
 * goes through it or json_get_int. lo and hi must be within +-2^53 (exact as doubles) when reals
 * are to be accepted; integers are compared exactly. */
int json_int_in_range(const json_t *item, long long lo, long long hi, long long *out);

/* 1 when the string holds no U+0000 (so it can be used as a C string without losing bytes). */
int json_string_is_c(const json_t *item);

/* "a string", "a number", ... for error messages ("nothing" for NULL). */
const char *json_type_name(const json_t *item);

#endif
