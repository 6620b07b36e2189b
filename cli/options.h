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
/* As cli_parse; given (NULL, or one byte per entry of opts before the terminating {0}) gets 1
 * for each option that appears on the command line. An option that expects a value and is
 * followed by another of the command's options (or -h/--help) is an error: its value is missing. */
int cli_parse_given(const char *command, const char *usage_line, const char *description,
                    const cli_option *opts, int argc, char **argv, unsigned char *given);
/* Whether the option called name (without "--") was given, from cli_parse_given's array. */
int cli_given(const cli_option *opts, const unsigned char *given, const char *name);
void cli_print_help(FILE *out, const char *usage_line, const char *description,
                    const cli_option *opts);

#endif
