/* A table-driven command-line parser: --name VALUE and --flag, with typed targets, --help
 * generated from the table, and errors for unknown flags and bad values. */
#ifndef BADAM_CLI_OPTIONS_H
#define BADAM_CLI_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

typedef enum option_type {
    OPT_STRING, /* const char ** */
    OPT_INT,    /* int * */
    OPT_FLOAT,  /* float * */
    OPT_DOUBLE, /* double * */
    OPT_FLAG,   /* int *: set to 1 */
    OPT_CUSTOM  /* parse(value, target) returns 0 on success */
} option_type;

typedef struct cli_option {
    const char *name; /* without the leading "--" */
    option_type type;
    void *target;
    const char *metavar; /* NULL for flags */
    const char *help;
    int (*parse)(const char *value, void *target, char *why, size_t why_size);
} cli_option;

/* Parses argv[1..argc-1]. Returns 0 on success, 1 when --help was printed, 2 on an error (already
 * reported on stderr with the command name). */
int cli_parse(const char *command, const char *usage_line, const char *description,
              const cli_option *opts, int argc, char **argv);
void cli_print_help(FILE *out, const char *usage_line, const char *description,
                    const cli_option *opts);

#endif
