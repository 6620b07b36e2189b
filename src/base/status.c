#include "badam/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

badam_status badam_fail(badam_error *err, badam_status status, const char *fmt, ...) {
    if (err) {
        err->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

badam_status badam_error_prefix(badam_error *err, const char *fmt, ...) {
    if (!err) return BADAM_E_INVALID;
    char prefix[BADAM_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t plen = strlen(prefix), mlen = strlen(err->message), cap = sizeof err->message - 1;
    if (plen + 2 > cap) plen = cap - 2;
    if (plen + 2 + mlen > cap) mlen = cap - plen - 2;
    memmove(err->message + plen + 2, err->message, mlen);
    memcpy(err->message, prefix, plen);
    memcpy(err->message + plen, ": ", 2);
    err->message[plen + 2 + mlen] = '\0';
    return err->status;
}

void badam_error_clear(badam_error *err) {
    if (!err) return;
    err->status = BADAM_OK;
    err->message[0] = '\0';
}

const char *badam_status_name(badam_status status) {
    switch (status) {
    case BADAM_OK:
        return "ok";
    case BADAM_E_IO:
        return "I/O error";
    case BADAM_E_FORMAT:
        return "format error";
    case BADAM_E_INVALID:
        return "invalid argument";
    case BADAM_E_NOMEM:
        return "out of memory";
    case BADAM_E_UNSUPPORTED:
        return "unsupported";
    case BADAM_E_SHAPE:
        return "shape mismatch";
    case BADAM_E_NUMERIC:
        return "numeric error";
    }
    return "unknown error";
}
