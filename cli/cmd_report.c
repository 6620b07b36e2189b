/* badam report RUN_DIR...: one self-contained HTML page comparing training runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "badam/report.h"

#define USAGE "badam report RUN_DIR... [--out FILE.html] [--title TEXT]"
#define DESCRIPTION                                                                                \
    "Writes one HTML file comparing the runs (folders written by badam train: metrics.jsonl,\n"    \
    "memory.json): loss against step and against trained tokens (train and validation), "          \
    "learning\n"                                                                                   \
    "rate, the active block (BAdam, SGD-BCD), tokens/s, gradient norm, memory by category\n"       \
    "predicted vs measured, and a summary table. Everything is inline (charts by uPlot, "          \
    "embedded\n"                                                                                   \
    "in badam): the file opens in any browser with no network access.\n"                           \
    "Default output: RUN_DIR/report.html of the first run."

/* The value-taking option named by an argument, for splitting run folders from options. */
static int takes_value(const cli_option *opts, const char *arg) {
    if (strncmp(arg, "--", 2) != 0 || strchr(arg, '=')) return 0;
    for (const cli_option *o = opts; o->name; o++)
        if (!strcmp(o->name, arg + 2)) return o->type != OPT_FLAG;
    return 0;
}

int cmd_report(int argc, char **argv) {
    const char *out = NULL, *title = NULL;
    const cli_option opts[] = {
        {"out", OPT_STRING, &out, "FILE.html", "where to write (default RUN_DIR/report.html)", 0},
        {"title", OPT_STRING, &title, "TEXT", "page title (default \"badam report\")", 0},
        {0},
    };
    /* Options go to the table-driven parser; every other argument is a run folder. */
    char **option_argv = calloc((size_t)argc + 1, sizeof *option_argv);
    const char **runs = calloc((size_t)argc + 1, sizeof *runs);
    if (!option_argv || !runs) {
        free(option_argv);
        free(runs);
        fprintf(stderr, "badam report: out of memory\n");
        return 1;
    }
    int n_opt = 0, n_runs = 0;
    option_argv[n_opt++] = argv[0];
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            option_argv[n_opt++] = argv[i];
            if (takes_value(opts, argv[i]) && i + 1 < argc) option_argv[n_opt++] = argv[++i];
        } else {
            runs[n_runs++] = argv[i];
        }
    }
    int rc = cli_parse("badam report", USAGE, DESCRIPTION, opts, n_opt, option_argv);
    free(option_argv);
    if (rc) {
        free(runs);
        return rc == 1 ? 0 : 2;
    }
    if (n_runs == 0) {
        free(runs);
        fprintf(stderr, "badam report: give at least one run folder (usage: %s)\n", USAGE);
        return 2;
    }
    report_options ro = {.run_dirs = runs,
                         .n_runs = n_runs,
                         .out_path = out,
                         .title = title,
                         .log = {cli_log_command, "badam report"}};
    badam_error err = {0};
    char written[4096];
    badam_status st = report_write(&ro, written, sizeof written, &err);
    free(runs);
    if (st) {
        fprintf(stderr, "badam report: %s\n", err.message);
        return 1;
    }
    printf("badam report: wrote %s (%d run%s)\n", written, n_runs, n_runs == 1 ? "" : "s");
    return 0;
}
