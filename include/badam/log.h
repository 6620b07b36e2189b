/* Reporting from the library: the library never writes to stdout or stderr itself; a function
 * that has something to tell the user calls the logger its caller gave it (the CLI installs one
 * that writes to stderr). */
#ifndef BADAM_LOG_H
#define BADAM_LOG_H

typedef enum badam_log_level {
    BADAM_LOG_INFO = 0,     /* a line of a summary (the run's plan, the data it read) */
    BADAM_LOG_PROGRESS,     /* a live progress line: replaces the previous one (no newline) */
    BADAM_LOG_PROGRESS_END, /* the progress display is over (text is empty) */
} badam_log_level;

/* text: one line without its newline. */
typedef void (*badam_log_fn)(void *ctx, badam_log_level level, const char *text);

typedef struct badam_logger {
    badam_log_fn fn; /* NULL: nothing is reported */
    void *ctx;
} badam_logger;

/* Formats and hands one line to lg (a no-op when lg or lg->fn is NULL); lines longer than 1 KiB
 * are cut. */
void badam_logf(const badam_logger *lg, badam_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
