#include "io/json_get.h"

#include <limits.h>
#include <math.h>
#include <string.h>

const json_t *json_field(const json_t *obj, const char *field) {
    const json_t *item = json_object_get(obj, field);
    return (item && !json_is_null(item)) ? item : NULL;
}

static badam_status absent(const char *field, int required, const char *file, badam_error *err) {
    if (!required) return BADAM_OK;
    return badam_fail(err, BADAM_E_FORMAT, "%s: required field '%s' is missing", file, field);
}

int json_int_in_range(const json_t *item, long long lo, long long hi, long long *out) {
    if (json_is_integer(item)) {
        json_int_t v = json_integer_value(item);
        if (v < lo || v > hi) return 0;
        *out = (long long)v;
        return 1;
    }
    if (!json_is_real(item)) return 0;
    double v = json_real_value(item);
    /* NaN fails every comparison; the bounds are exact doubles, so the cast below is defined */
    if (!(v >= (double)lo && v <= (double)hi) || v != floor(v)) return 0;
    *out = (long long)v;
    return 1;
}

int json_number_is_int(const json_t *item) {
    long long v;
    return json_int_in_range(item, INT_MIN, INT_MAX, &v);
}

int json_string_is_c(const json_t *item) {
    return json_is_string(item) && strlen(json_string_value(item)) == json_string_length(item);
}

const char *json_type_name(const json_t *item) {
    if (!item) return "nothing";
    switch (json_typeof(item)) {
    case JSON_NULL:
        return "null";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_STRING:
        return "a string";
    case JSON_ARRAY:
        return "an array";
    case JSON_OBJECT:
        return "an object";
    }
    return "an invalid value";
}

badam_status json_get_int(const json_t *obj, const char *field, int required, int *out,
                          const char *file, badam_error *err) {
    const json_t *item = json_field(obj, field);
    if (!item) return absent(field, required, file, err);
    long long v;
    if (!json_is_number(item))
        return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' must be an integer, got %s%s", file,
                          field, json_type_name(item),
                          json_is_string(item) ? " (write the number without quotes)" : "");
    if (!json_int_in_range(item, INT_MIN, INT_MAX, &v))
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: field '%s' must be an integer in [%d, %d], got %.17g", file, field,
                          INT_MIN, INT_MAX, json_number_value(item));
    *out = (int)v;
    return BADAM_OK;
}

badam_status json_get_double(const json_t *obj, const char *field, int required, double *out,
                             const char *file, badam_error *err) {
    const json_t *item = json_field(obj, field);
    if (!item) return absent(field, required, file, err);
    if (!json_is_number(item) || !isfinite(json_number_value(item)))
        return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' must be a finite number, got %s",
                          file, field,
                          json_is_number(item) ? "a non-finite number" : json_type_name(item));
    *out = json_number_value(item);
    return BADAM_OK;
}

badam_status json_get_bool(const json_t *obj, const char *field, int required, int *out,
                           const char *file, badam_error *err) {
    const json_t *item = json_field(obj, field);
    if (!item) return absent(field, required, file, err);
    if (!json_is_boolean(item))
        return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' must be true or false, got %s", file,
                          field, json_type_name(item));
    *out = json_is_true(item);
    return BADAM_OK;
}

badam_status json_get_string(const json_t *obj, const char *field, int required, char *out,
                             size_t size, const char *file, badam_error *err) {
    const json_t *item = json_field(obj, field);
    if (!item) return absent(field, required, file, err);
    if (!json_is_string(item))
        return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' must be a string, got %s", file,
                          field, json_type_name(item));
    if (!json_string_is_c(item))
        return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' must not contain U+0000", file,
                          field);
    size_t n = json_string_length(item);
    if (n >= size)
        return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' is too long", file, field);
    memcpy(out, json_string_value(item), n + 1);
    return BADAM_OK;
}
