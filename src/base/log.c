/* badam_logf (include/badam/log.h). */
#include "badam/log.h"

#include <stdarg.h>
#include <stdio.h>

void badam_logf(const badam_logger *lg, badam_log_level level, const char *fmt, ...) {
    if (!lg || !lg->fn) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    lg->fn(lg->ctx, level, line);
}
