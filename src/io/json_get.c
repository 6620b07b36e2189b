#include "io/json_get.h"

#include <limits.h>
#include <math.h>
#include <string.h>

static const cJSON *field_item(const cJSON *obj, const char *field) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, field);
    return (item && !cJSON_IsNull(item)) ? item : NULL;
}

static badam_status absent(const char *field, int required, const char *file, badam_error *err) {
    if (!required) return BADAM_OK;
    return badam_fail(err, BADAM_E_FORMAT, "%s: required field '%s' is missing", file, field);
}

int json_int_in_range(const cJSON *item, long long lo, long long hi, long long *out) {
    if (!cJSON_IsNumber(item)) return 0;
    double v = item->valuedouble;
    /* NaN fails every comparison; the bounds are exact doubles, so the cast below is defined */
    if (!(v >= (double)lo && v <= (double)hi) || v != floor(v)) return 0;
    *out = (long long)v;
    return 1;
}

int json_number_is_int(const cJSON *item) {
    long long v;
    return json_int_in_range(item, INT_MIN, INT_MAX, &v);
}

badam_status json_get_int(const cJSON *obj, const char *field, int required, int *out,
                          const char *file, badam_error *err) {
    const cJSON *item = field_item(obj, field);
    if (!item) return absent(field, required, file, err);
    long long v;
    if (!json_int_in_range(item, INT_MIN, INT_MAX, &v))
        return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' must be an integer in [%d, %d]",
                          file, field, INT_MIN, INT_MAX);
    *out = (int)v;
    return BADAM_OK;
}

badam_status json_get_double(const cJSON *obj, const char *field, int required, double *out,
                             const char *file, badam_error *err) {
    const cJSON *item = field_item(obj, field);
    if (!item) return absent(field, required, file, err);
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
        return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' must be a finite number", file,
                          field);
    *out = item->valuedouble;
    return BADAM_OK;
}

badam_status json_get_bool(const cJSON *obj, const char *field, int required, int *out,
                           const char *file, badam_error *err) {
    const cJSON *item = field_item(obj, field);
    if (!item) return absent(field, required, file, err);
    if (!cJSON_IsBool(item))
        return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' must be true or false", file, field);
    *out = cJSON_IsTrue(item);
    return BADAM_OK;
}

badam_status json_get_string(const cJSON *obj, const char *field, int required, char *out,
                             size_t size, const char *file, badam_error *err) {
    const cJSON *item = field_item(obj, field);
    if (!item) return absent(field, required, file, err);
    if (!cJSON_IsString(item))
        return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' must be a string", file, field);
    if (strlen(item->valuestring) >= size)
        return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' is too long", file, field);
    strcpy(out, item->valuestring);
    return BADAM_OK;
}
