/* The command line of `badam train` for other commands (badam compare): its option table
 * parsed into a train_config, and what the table holds. Defined in cmd_train.c. */
#ifndef BADAM_CLI_TRAIN_CLI_H
#define BADAM_CLI_TRAIN_CLI_H

#include <stdio.h>

#include "badam/train.h"

/* Parses argv[1..argc) as `badam train` does (ranges, conflicts, warnings; messages start
 * "badam train:") into *c, which holds the starting values (train_config_defaults or a
 * preset's): 0, 1 after --help, 2 after an error message. --nproc is refused. */
int train_parse_config(int argc, char **argv, train_config *c);
/* 1 when the train option called name (without "--") takes a value, 0 for a flag, -1 when
 * there is no such option. */
int train_option_takes_value(const char *name);
/* The option lines of `badam train --help`, without --method, --out, --nproc and
 * --comm-timeout (badam compare has its own --methods and --out, and runs in one process). */
void train_print_options(FILE *out);

#endif
