/* badam: full-parameter fine-tuning of LLMs with block coordinate descent (BAdam). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "badam/cpu.h"
#include "cli.h"

#define BADAM_VERSION "0.1.0"

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: badam <command> [options]\n"
        "\n"
        "commands:\n"
        "  demo                the main job: fine-tune the bundled model with BAdam, LoRA and\n"
        "                      Adam, evaluate, and write a report\n"
        "  compare             fine-tune one base with several methods on the same data and\n"
        "                      budget, evaluate each, and write one report\n"
        "  train               fine-tune a model (BAdam and its ratio mode, Adam, LoRA, LOMO,\n"
        "                      SGD-BCD, MeZO, GaLore, bottleneck adapters)\n"
        "  plan                predicted memory by category, from config.json alone\n"
        "  inspect MODEL_DIR   architecture, parameters by tensor, dtypes, BAdam block sizes\n"
        "  tokenize            token ids of a string (--text) or a dataset report (--data)\n"
        "  report RUN_DIR...   one HTML page comparing training runs (charts, memory, summary)\n"
        "  generate            text from a model (--prompt or --chat; KV cache, streaming)\n"
        "  eval                loss, perplexity and exact match of a model on a dataset\n"
        "\n"
        "options:\n"
        "  -h, --help          this help (also: badam <command> --help)\n"
        "  --version           print the version and the CPU path the kernels run with\n"
        "\n"
        "environment:\n"
        "  BADAM_CPU=portable|avx2|avx512|auto   kernel instruction set (default: the best this\n"
        "                      CPU has)\n"
        "  BADAM_GEMM=fp32|bf16|auto   fp32: bf16 weights through the fp32 OpenBLAS GEMM, not\n"
        "                      oneDNN's bf16 (auto, the default: oneDNN's where the CPU has\n"
        "                      AVX512_BF16; other values are refused)\n"
        "  OMP_NUM_THREADS     threads (default: all cores)\n");
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

void cli_log_stderr(void *ctx, badam_log_level level, const char *text) {
    (void)ctx;
    if (level == BADAM_LOG_PROGRESS)
        fprintf(stderr, "\r%s ", text);
    else if (level == BADAM_LOG_PROGRESS_END)
        fputc('\n', stderr);
    else
        fprintf(stderr, "%s\n", text);
    fflush(stderr);
}

void cli_log_command(void *ctx, badam_log_level level, const char *text) {
    if (level != BADAM_LOG_INFO) {
        cli_log_stderr(NULL, level, text);
        return;
    }
    fprintf(stderr, "%s: %s\n", (const char *)ctx, text);
    fflush(stderr);
}

void cli_warn(const char *command, const char *fmt, ...) {
    char text[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    badam_logger log = {cli_log_stderr, NULL};
    badam_logf(&log, BADAM_LOG_INFO, "%s: warning: %s", command, text);
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

/* Process settings that libraries read once, when they load (before main); when one needs
 * changing we set it and start ourselves again:
 * - OMP_WAIT_POLICY: OpenMP threads that spin while waiting steal the cores from everything else
 *   on the machine (measured here: 14x slower training next to one other busy process), so
 *   "passive" unless the user chose;
 * - OPENBLAS_CORETYPE: OpenBLAS's kernels matching the active CPU path (BADAM_CPU), unless the
 *   user chose; OpenBLAS gives CPU models it does not know its SSE3 kernels (5x slower sgemm on
 *   a virtualised AVX-512 Xeon, src/model/cpu/blas_core.c). */
static void ensure_load_time_settings(char **argv) {
    int again = 0;
    const char *set = getenv("OMP_WAIT_POLICY");
    if (!set || !*set) again |= setenv("OMP_WAIT_POLICY", "passive", 1) == 0;
    const char *core = getenv("OPENBLAS_CORETYPE"), *want = badam_blas_core_wanted();
    if ((!core || !*core) && want) again |= setenv("OPENBLAS_CORETYPE", want, 1) == 0;
    if (again) execv("/proc/self/exe", argv); /* returns only on failure: carry on as we are */
}

/* The command's exit status, or 1 after a message when its standard output could not be written
 * (a full disk, a closed pipe, /dev/full): output that was lost is a failure. */
static int checked_stdout(const char *command, int rc) {
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout)) return rc;
    fprintf(stderr, "badam%s%s: cannot write the standard output: %s\n", command ? " " : "",
            command ? command : "", errno ? strerror(errno) : "write error");
    return rc ? rc : 1;
}

static int run_command(int argc, char **argv);

int main(int argc, char **argv) {
    int rc = run_command(argc, argv);
    const char *cmd = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
    return checked_stdout(cmd, rc);
}

static int run_command(int argc, char **argv) {
    badam_error err = {0};
    if (badam_cpu_check_env(&err) != BADAM_OK) {
        fprintf(stderr, "badam: %s\n", err.message);
        return 2;
    }
    ensure_load_time_settings(argv);
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
        badam_cpu_features f = badam_cpu_detect();
        printf("badam %s\n", BADAM_VERSION);
        printf("cpu path: %s (this CPU: best %s, AVX512_BF16 %s); OpenBLAS kernels: %s\n",
               badam_cpu_path_name(badam_cpu_active()), badam_cpu_path_name(badam_cpu_best()),
               f.avx512_bf16 ? "yes" : "no", badam_blas_core());
        return 0;
    }
    if (!strcmp(cmd, "inspect")) return cmd_inspect(argc - 1, argv + 1);
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "demo")) return cmd_demo(argc - 1, argv + 1);
    if (!strcmp(cmd, "compare")) return cmd_compare(argc - 1, argv + 1);
    if (!strcmp(cmd, "plan")) return cmd_plan(argc - 1, argv + 1);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "report")) return cmd_report(argc - 1, argv + 1);
    if (!strcmp(cmd, "generate")) return cmd_generate(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 1, argv + 1);
    fprintf(stderr, "badam: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
