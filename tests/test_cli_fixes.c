/* What a fresh user found, each checked through the badam command: the memory check, update
 * ratios that select nothing, bottleneck adapter_config fields we do not implement, stdout write
 * errors, the output folder of a failed run, a previous run's files in OUT, one message prefix,
 * tokenize's defaults (train's), a cut last line of metrics.jsonl, MeZO's forward time, the
 * GaLore rank clamp, --max-steps 0, BADAM_GEMM values and --adapter-size bounds. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "badam/train.h"
#include "io/files.h"
#include "testutil.h"

static char g_out[1024];
static char buf[1 << 16];

/* `[prefix] badam ARGS` from the source folder, stdout and stderr into buf; the exit status. */
static int badam_env(const char *prefix, const char *args) {
    return test_run_cli(g_out, prefix, args, buf, sizeof buf);
}

static int badam(const char *args) {
    return badam_env(NULL, args);
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* A short run of the tiny model into g_out/NAME with extra options; its exit status. */
static int train(const char *name, const char *extra) {
    char args[8192];
    snprintf(args, sizeof args,
             "train --model models/tiny-random-llama --data data/demo/reverse_train.json --out "
             "%s/%s --max-steps 1 --batch-size 2 --seq-len 32 --quiet %s",
             g_out, name, extra);
    return badam(args);
}

/* 1: a plan over the memory available is refused before anything is written, naming both
 * numbers and the override; the override goes on (here to the missing data); plan warns. */
static void test_memory_check(void) {
    char args[8192], out[2200];
    snprintf(out, sizeof out, "%s/huge", g_out);
    CHECK(train("huge", "--batch-size 100000") == 2);
    CHECKF(strstr(buf, "memory plan needs") && strstr(buf, "MemAvailable") &&
               strstr(buf, "--ignore-memory-check"),
           "%s", buf);
    CHECKF(!exists(out), "%s created", out);
    snprintf(args, sizeof args,
             "train --model models/tiny-random-llama --data %s/none.json --out %s "
             "--batch-size 100000 --ignore-memory-check",
             g_out, out);
    CHECK(badam(args) == 1);
    CHECKF(strstr(buf, "none.json") && !strstr(buf, "memory plan needs"), "%s", buf);
    CHECK(badam("plan --model models/tiny-random-llama --method badam --batch-size 100000") == 0);
    CHECKF(strstr(buf, "warning: --method badam: the memory plan needs"), "%s", buf);
    CHECK(badam("plan --model models/tiny-random-llama --method badam") == 0);
    CHECKF(!strstr(buf, "warning"), "%s", buf);
}

/* 2: a ratio that selects no entry of the smallest trained tensor names it and the least ratio
 * (1/64 for the 64-entry norm weights); ratios outside (0, 1] are refused. */
static void test_update_ratio(void) {
    CHECK(train("ratio", "--method badam-ratio --update-ratio 1e-7 --no-checkpoint") == 1);
    CHECKF(strstr(buf, "--update-ratio 1e-07 updates no entry of model.") &&
               strstr(buf, "layernorm.weight (64 entries)") && strstr(buf, "0.015625"),
           "%s", buf);
    CHECK(badam("plan --model models/tiny-random-llama --method badam-ratio --update-ratio 0.01") ==
          1);
    CHECKF(strstr(buf, "smallest ratio that updates every trained tensor is 0.015625"), "%s", buf);
    CHECK(badam("plan --model models/tiny-random-llama --method badam-ratio --update-ratio "
                "0.015625") == 0);
    CHECK(train("ratio", "--method badam-ratio --update-ratio 0") == 1);
    CHECKF(strstr(buf, "(0, 1]"), "%s", buf);
    CHECK(train("ratio", "--method badam-ratio --update-ratio 1.5") == 1);
    CHECKF(strstr(buf, "(0, 1]"), "%s", buf);
}

/* Sets field of DIR/adapter_config.json to the JSON text value. */
static int set_adapter_field(const char *dir, const char *field, const char *value) {
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_error_t e;
    json_t *cfg = json_load_file(path, 0, &e), *v = json_loads(value, JSON_DECODE_ANY, &e);
    int rc = !cfg || !v || json_object_set_new(cfg, field, v) || json_dump_file(cfg, path, 0);
    json_decref(cfg);
    return rc ? -1 : 0;
}

/* 3: residual other than true, sites other than [attention, mlp] are refused naming file and
 * field; the written values (and reordered sites) load. */
static void test_bottleneck_config(void) {
    CHECK(train("adapter", "--method adapter --adapter-size 4 --no-checkpoint") == 0);
    char dir[2200], args[8192];
    snprintf(dir, sizeof dir, "%s/adapter/adapter", g_out);
    snprintf(args, sizeof args,
             "generate --model models/tiny-random-llama --adapter %s --prompt hi "
             "--max-new-tokens 1",
             dir);
    CHECKF(badam(args) == 0, "%s", buf);
    static const struct {
        const char *field, *value;
        int ok;
    } cases[] = {
        {"sites", "[\"mlp\", \"attention\"]", 1},
        {"residual", "false", 0},
        {"residual", "true", 1},
        {"sites", "[\"mlp\"]", 0},
        {"sites", "[\"mlp\", \"mlp\"]", 0},
        {"sites", "[\"attention\", \"ffn\"]", 0},
        {"sites", "\"attention\"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(set_adapter_field(dir, cases[i].field, cases[i].value) == 0);
        int rc = badam(args);
        if (cases[i].ok)
            CHECKF(rc == 0, "%s %s: %s", cases[i].field, cases[i].value, buf);
        else
            CHECKF(rc == 1 && strstr(buf, "adapter_config.json: field '") &&
                       strstr(buf, cases[i].field),
                   "%s %s: rc %d: %s", cases[i].field, cases[i].value, rc, buf);
        if (!cases[i].ok) /* back to what we implement for the next case */
            CHECK(set_adapter_field(dir, cases[i].field,
                                    cases[i].field[0] == 'r' ? "true"
                                                             : "[\"attention\", \"mlp\"]") == 0);
    }
}

/* 4: output lost to a full device is an error of every command that prints. */
static void test_stdout_errors(void) {
    static const char *const commands[] = {
        "inspect models/tiny-random-llama",
        "plan --model models/tiny-random-llama",
        "tokenize --model models/tiny-random-llama --text hello",
        "tokenize --data data/demo/reverse_train.json --model models/tiny-random-llama",
        "train --help",
        "--version",
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char cmd[8192], err[2200];
        snprintf(err, sizeof err, "%s/stderr.txt", g_out);
        snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s > /dev/full 2> '%s'",
                 getenv("BADAM_SOURCE_DIR"), getenv("BADAM_CLI"), commands[i], err);
        int rc = test_system(cmd);
        char *text = NULL;
        size_t n = 0;
        badam_error e = {0};
        io_read_file(err, &text, &n, &e);
        CHECKF(rc == 1 && text && strstr(text, "cannot write the standard output"), "%s: rc %d: %s",
               commands[i], rc, text ? text : "");
        free(text);
    }
}

/* 5: a failed run removes the OUT it created while empty, never a folder that was there. */
static void test_failed_run_out(void) {
    char args[8192], out[2200];
    snprintf(out, sizeof out, "%s/failed", g_out);
    snprintf(args, sizeof args,
             "train --model models/tiny-random-llama --data %s/none.json --out %s", g_out, out);
    CHECK(badam(args) == 1);
    CHECKF(!exists(out), "%s left behind", out);
    CHECK(mkdir(out, 0755) == 0);
    CHECK(badam(args) == 1);
    CHECKF(exists(out), "%s (the user's) removed", out);
}

/* 6: a previous run's adapter/ or checkpoint/ that a new run would not write is refused,
 * naming them; --overwrite replaces them when the run succeeds and keeps them when it fails. */
static void test_stale_outputs(void) {
    char adapter[2200], ckpt[2200], args[8192];
    snprintf(adapter, sizeof adapter, "%s/stale/adapter", g_out);
    snprintf(ckpt, sizeof ckpt, "%s/stale/checkpoint", g_out);
    CHECK(train("stale", "--method lora --lora-rank 2") == 0);
    CHECK(exists(adapter) && exists(ckpt));
    CHECK(train("stale", "--method badam") == 2);
    CHECKF(strstr(buf, "holds adapter/ of a previous run") && strstr(buf, "--overwrite"), "%s",
           buf);
    CHECK(train("stale", "--method lora --lora-rank 2 --no-checkpoint") == 2);
    CHECKF(strstr(buf, "holds checkpoint/ of a previous run"), "%s", buf);
    CHECK(exists(adapter) && exists(ckpt));
    CHECK(train("stale", "--method lora --lora-rank 2") == 0); /* rewrites both: no refusal */
    /* --overwrite and a run that fails: the previous files come back */
    snprintf(args, sizeof args,
             "train --model models/tiny-random-llama --data %s/none.json --out %s/stale "
             "--overwrite --no-checkpoint",
             g_out, g_out);
    CHECK(badam(args) == 1);
    CHECK(exists(adapter) && exists(ckpt));
    CHECK(train("stale", "--method badam --no-checkpoint --overwrite") == 0);
    CHECKF(!exists(adapter) && !exists(ckpt), "%s", buf);
    snprintf(args, sizeof args, "ls -a '%s/stale' | grep -q replaced", g_out);
    CHECK(test_system(args) != 0);
    CHECK(train("stale", "--method badam --no-checkpoint") == 0); /* nothing stale now */
}

/* 7: one prefix: the library's messages do not repeat the command's. */
static void test_one_prefix(void) {
    CHECK(train("prefix", "--method mezo --grad-accum 2") == 1);
    CHECKF(strstr(buf, "badam train: --method mezo") && !strstr(buf, "train: train:"), "%s", buf);
    CHECK(badam("plan --model models/tiny-random-llama --galore-rank 0") == 1);
    CHECKF(strstr(buf, "badam plan: --method galore: --galore-rank") && !strstr(buf, "train:"),
           "%s", buf);
}

/* 8: tokenize --data reports with train's defaults (train_config_defaults). */
static void test_tokenize_defaults(void) {
    train_config c;
    train_config_defaults(&c);
    char want[128];
    CHECK(badam("tokenize --data data/demo/reverse_train.json --model models/tiny-random-llama") ==
          0);
    snprintf(want, sizeof want, "seq_len          %d\n", c.seq_len);
    CHECKF(strstr(buf, want), "%s", buf);
    snprintf(want, sizeof want, "batch size %d, shuffled (seed %llu)%s", c.batch_size,
             (unsigned long long)c.seed, c.group_by_length ? ", grouped by length" : "");
    CHECKF(strstr(buf, want), "want '%s': %s", want, buf);
    CHECK(badam("tokenize --data data/demo/reverse_train.json --model models/tiny-random-llama "
                "--no-group-by-length") == 0);
    CHECKF(!strstr(buf, "grouped by length"), "%s", buf);
}

/* 9: a metrics.jsonl cut in its last line (no newline) reads with a warning; a bad line before
 * the end is still an error naming it. */
static void test_report_cut_line(void) {
    char dir[2200], path[2300], args[8192];
    snprintf(dir, sizeof dir, "%s/cut", g_out);
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    const char *cut =
        "{\"step\": 1, \"loss\": 5.5}\n{\"step\": 2, \"loss\": 5.4}\n{\"step\": 3, \"lo";
    CHECK(test_write_raw(path, cut, strlen(cut)) == 0);
    snprintf(args, sizeof args, "report %s", dir);
    CHECK(badam(args) == 0);
    CHECKF(strstr(buf, "badam report: warning: ") &&
               strstr(buf, "metrics.jsonl:3: the last line is cut") && strstr(buf, "wrote"),
           "%s", buf);
    const char *middle = "{\"step\": 1, \"loss\": 5.5}\n{\"step\": 2, \"lo\n{\"step\": 3, "
                         "\"loss\": 5.3}";
    CHECK(test_write_raw(path, middle, strlen(middle)) == 0);
    CHECK(badam(args) == 1);
    CHECKF(strstr(buf, "metrics.jsonl:2: invalid JSON"), "%s", buf);
}

/* 10: MeZO's forward passes are forward time: every step line has forward_s > 0. */
static void test_mezo_forward_time(void) {
    CHECK(train("mezo", "--method mezo --max-steps 3 --clip 0 --no-checkpoint") == 0);
    char path[2200];
    snprintf(path, sizeof path, "%s/mezo/metrics.jsonl", g_out);
    char *text = NULL;
    size_t n = 0;
    badam_error err = {0};
    CHECK(io_read_file(path, &text, &n, &err) == BADAM_OK);
    int steps = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        json_error_t e;
        json_t *j = json_loads(line, 0, &e);
        const json_t *f = json_object_get(j, "forward_s"), *u = json_object_get(j, "update_s");
        if (json_object_get(j, "loss")) {
            steps++;
            CHECKF(json_is_number(f) && json_number_value(f) > 0 && json_is_number(u) &&
                       json_number_value(u) >= 0,
                   "%s", line);
        }
        json_decref(j);
    }
    CHECK(steps == 3);
    free(text);
}

/* stdout of `badam ARGS` alone into buf (stderr dropped); the exit status. */
static int badam_stdout(const char *args) {
    char cmd[8192], path[2200];
    snprintf(path, sizeof path, "%s/stdout.txt", g_out);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s > '%s' 2>/dev/null", getenv("BADAM_SOURCE_DIR"),
             getenv("BADAM_CLI"), args, path);
    int rc = test_system(cmd);
    char *text = NULL;
    size_t n = 0;
    badam_error err = {0};
    buf[0] = '\0';
    if (!io_read_file(path, &text, &n, &err)) snprintf(buf, sizeof buf, "%s", text);
    free(text);
    return rc;
}

/* 11: a GaLore rank above a weight's smaller dimension is clamped to it (as the authors'
 * SVD slices): rank 100000 plans as rank 64 (the tiny model's largest smaller dimension). */
static void test_galore_clamp(void) {
    static char a[sizeof buf], b[sizeof buf], c[sizeof buf];
    const char *plan = "plan --model models/tiny-random-llama --method galore --json --galore-rank";
    char args[256];
    snprintf(args, sizeof args, "%s 100000", plan);
    CHECK(badam_stdout(args) == 0);
    snprintf(a, sizeof a, "%s", buf);
    snprintf(args, sizeof args, "%s 64", plan);
    CHECK(badam_stdout(args) == 0);
    snprintf(b, sizeof b, "%s", buf);
    snprintf(args, sizeof args, "%s 63", plan);
    CHECK(badam_stdout(args) == 0);
    snprintf(c, sizeof c, "%s", buf);
    CHECKF(strstr(a, "\"galore\"") && !strcmp(a, b) && strcmp(b, c), "%s\n%s\n%s", a, b, c);
    CHECK(train("galore", "--method galore --galore-rank 100000 --no-checkpoint") == 0);
}

/* 12-14: --max-steps 0, BADAM_GEMM, --adapter-size above hidden_size. */
static void test_small_refusals(void) {
    CHECK(train("steps0", "--max-steps 0") == 2);
    CHECKF(strstr(buf, "--max-steps 0 trains nothing"), "%s", buf);
    CHECK(badam_env("BADAM_GEMM=fp16", "--version") == 2);
    CHECKF(strstr(buf, "BADAM_GEMM='fp16'") && strstr(buf, "fp32, bf16 or auto"), "%s", buf);
    CHECK(badam_env("BADAM_GEMM=fp32", "--version") == 0);
    CHECK(badam_env("BADAM_GEMM=auto", "--version") == 0);
    CHECK(badam("plan --model models/tiny-random-llama --method adapter --adapter-size 100000") ==
          1);
    CHECKF(strstr(buf, "--adapter-size 100000 is outside [1, hidden_size 64]"), "%s", buf);
    CHECK(badam("plan --model models/tiny-random-llama --method adapter --adapter-size 64") == 0);
}

int main(void) {
    if (!getenv("BADAM_CLI") || !getenv("BADAM_SOURCE_DIR")) {
        fprintf(stderr, "skip: BADAM_CLI or BADAM_SOURCE_DIR unset (run through ctest)\n");
        return TEST_SKIP_CODE;
    }
    snprintf(g_out, sizeof g_out, "%s", test_workdir("cli_fixes"));
    RUN_TEST(test_memory_check);
    RUN_TEST(test_update_ratio);
    RUN_TEST(test_bottleneck_config);
    RUN_TEST(test_stdout_errors);
    RUN_TEST(test_failed_run_out);
    RUN_TEST(test_stale_outputs);
    RUN_TEST(test_one_prefix);
    RUN_TEST(test_tokenize_defaults);
    RUN_TEST(test_report_cut_line);
    RUN_TEST(test_mezo_forward_time);
    RUN_TEST(test_galore_clamp);
    RUN_TEST(test_small_refusals);
    return test_result();
}
