/* Subcommands of the badam command line. Each returns the process exit status. */
#ifndef BADAM_CLI_H
#define BADAM_CLI_H

#include "badam/log.h"

int cmd_inspect(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_eval(int argc, char **argv);

/* Formats a count with a unit suffix (K, M, B) into buf. */
const char *cli_human_count(char *buf, unsigned long long n);
/* Formats bytes as KiB/MiB/GiB into buf. */
const char *cli_human_bytes(char *buf, unsigned long long n);

/* The library's logger for the CLI (badam/log.h): summary lines to stderr, a progress line
 * redrawn in place with a carriage return. */
void cli_log_stderr(void *ctx, badam_log_level level, const char *text);

/* A logger whose ctx is the command ("badam report"): each line to stderr after "COMMAND: ", as
 * the CLI's own messages (one prefix). */
void cli_log_command(void *ctx, badam_log_level level, const char *text);

/* A warning through the CLI's logger: "COMMAND: warning: ..." (an option that is ignored). */
void cli_warn(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
