/* badam: full-parameter fine-tuning of LLMs with block coordinate descent (BAdam). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "cli.h"

#define BADAM_VERSION "0.1.0"

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: badam <command> [options]\n"
        "\n"
        "commands:\n"
        "  train               fine-tune a model (BAdam, Adam, LoRA, LOMO, SGD-BCD)\n"
        "  plan                predicted memory by category, from config.json alone\n"
        "  inspect MODEL_DIR   architecture, parameters by tensor, dtypes, BAdam block sizes\n"
        "  tokenize            token ids of a string (--text) or a dataset report (--data)\n"
        "  report RUN_DIR...   one HTML page comparing training runs (charts, memory, summary)\n"
        "  generate            text from a model (--prompt or --chat; KV cache, streaming)\n"
        "  eval                loss, perplexity and exact match of a model on a dataset\n"
        "\n"
        "options:\n"
        "  -h, --help          this help (also: badam <command> --help)\n"
        "  --version           print the version\n");
}

const char *cli_human_count(char *buf, unsigned long long n) {
    if (n >= 1000000000ull)
        sprintf(buf, "%.2fB", n / 1e9);
    else if (n >= 1000000ull)
        sprintf(buf, "%.2fM", n / 1e6);
    else if (n >= 1000ull)
        sprintf(buf, "%.1fK", n / 1e3);
    else
        sprintf(buf, "%llu", n);
    return buf;
}

const char *cli_human_bytes(char *buf, unsigned long long n) {
    if (n >= (1ull << 30))
        sprintf(buf, "%.2f GiB", n / (double)(1ull << 30));
    else if (n >= (1ull << 20))
        sprintf(buf, "%.1f MiB", n / (double)(1ull << 20));
    else if (n >= (1ull << 10))
        sprintf(buf, "%.1f KiB", n / (double)(1ull << 10));
    else
        sprintf(buf, "%llu B", n);
    return buf;
}

/* Thread policy: OpenMP threads that spin while waiting steal the cores from everything else on
 * the machine (measured here: 14x slower training next to one other busy process). libgomp reads
 * OMP_WAIT_POLICY when it loads, before main, so when the user has not chosen one we set
 * "passive" and start ourselves again. */
static void ensure_wait_policy(char **argv) {
    const char *set = getenv("OMP_WAIT_POLICY");
    if (set && *set) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
    execv("/proc/self/exe", argv); /* returns only on failure: carry on with the default */
}

int main(int argc, char **argv) {
    ensure_wait_policy(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("badam %s\n", BADAM_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "inspect")) return cmd_inspect(argc - 1, argv + 1);
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "demo")) return cmd_demo(argc - 1, argv + 1);
    if (!strcmp(cmd, "plan")) return cmd_plan(argc - 1, argv + 1);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "report")) return cmd_report(argc - 1, argv + 1);
    if (!strcmp(cmd, "generate")) return cmd_generate(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 1, argv + 1);
    fprintf(stderr, "badam: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
