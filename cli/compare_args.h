/* badam compare: the run list (--methods) and per-run option values (compare_args.c). */
#ifndef BADAM_CLI_COMPARE_ARGS_H
#define BADAM_CLI_COMPARE_ARGS_H

#include <stddef.h>

enum { COMPARE_NAMES_MAX = 32 };

/* The runs of --methods: "lora@3e-3" is run "lora@3e-3" of method "lora". */
typedef struct compare_names {
    char run[COMPARE_NAMES_MAX][64];
    char method[COMPARE_NAMES_MAX][64];
    int n;
} compare_names;

/* Splits "badam,lora@3e-3,adam" into names: 0, or -1 after a message (empty, duplicate or
 * unsafe names). Method names are checked later, by the train option parser. */
int compare_parse_methods(const char *list, compare_names *names);

/* The value of --option for run index `run` from the command line's value: 1 with the value in
 * out (per_run set when the value was in the per-run form), 0 when the run does not get the
 * option, -1 after a message (a NAME that names no run and no method, two defaults). */
int compare_resolve(const compare_names *names, int run, const char *option, const char *value,
                    char *out, size_t size, int *per_run);

/* Whether run index `run` gets a flag option (--galore-per-layer) given with a run list: value
 * holds comma-separated items NAME (the flag on), NAME=1 (on) or NAME=0 (off), NAME a run or its
 * method (the run's own name wins): 1 on, 0 off (a run that no item names), -1 after a message
 * (a NAME that names no run and no method, a value other than 0 or 1). */
int compare_flag_for(const compare_names *names, int run, const char *option, const char *value);

#endif
