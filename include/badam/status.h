/* Errors are values: every fallible function returns a badam_status and, on failure, fills a
 * caller-owned badam_error with a message naming the file, field or tensor at fault. */
#ifndef BADAM_STATUS_H
#define BADAM_STATUS_H

typedef enum badam_status {
    BADAM_OK = 0,
    BADAM_E_IO,          /* open/read/write/rename failed */
    BADAM_E_FORMAT,      /* malformed input file (JSON, safetensors header, ...) */
    BADAM_E_INVALID,     /* bad argument or inconsistent request */
    BADAM_E_NOMEM,       /* allocation failed */
    BADAM_E_UNSUPPORTED, /* valid input we do not handle (model type, dtype, option) */
    BADAM_E_SHAPE,       /* tensor shape or count does not match the config */
    BADAM_E_NUMERIC,     /* NaN / Inf where a finite value is required */
} badam_status;

#define BADAM_ERROR_MESSAGE_MAX 1024

typedef struct badam_error {
    badam_status status;
    char message[BADAM_ERROR_MESSAGE_MAX];
} badam_error;

/* Records status and a printf-style message into err (which may be NULL); returns status. */
badam_status badam_fail(badam_error *err, badam_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " (printf-style) to an existing message, keeping its status. */
badam_status badam_error_prefix(badam_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void badam_error_clear(badam_error *err);
const char *badam_status_name(badam_status status);

#endif
