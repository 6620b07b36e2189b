/* `badam train --task` and `badam eval --task` on the tiny BERT folder and task files shipped
 * in tests/fixtures/encoder (no ../shared, no torch): validation lines with the task's metrics in
 * the log and metrics.jsonl, the saved folder evaluated again, the majority baseline, the refusals
 * (chat options, a head that does not fit the task, methods not wired for encoders, an encoder
 * without --task, a causal LM with --task); and exact resume of an encoder run (shuffled data,
 * dropout on, random block order): paused at step 3 and resumed, it ends with the bytes of the
 * uninterrupted run. */
#include <stdlib.h>
#include <string.h>

#include "badam/train.h"
#include "io/files.h"
#include "model_fixtures.h"
#include "testutil.h"

#define FIX "tests/fixtures/encoder"
#define MODEL FIX "/bert-tiny"
#define TRAIN FIX "/rte_train.jsonl"
#define VAL FIX "/rte_val.jsonl"

static char g_out[4096];

static int cli(const char *args, char *out, size_t size) {
    return test_run_cli(g_out, NULL, args, out, size);
}

/* Reads a whole small file into buf (NUL-terminated); 0 on success. */
static int read_text(const char *path, char *buf, size_t size) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = 0;
    fclose(f);
    return 0;
}

static void test_train_and_eval(void) {
    char args[8192], out[65536], metrics[65536];
    const char *run = test_path_in(g_out, "run");
    snprintf(args, sizeof args,
             "train --task rte --model " MODEL " --data " TRAIN " --val-data " VAL
             " --out %s --dtype fp32 --max-steps 6 --batch-size 2 --seq-len 24 --lr 1e-3 "
             "--eval-every 3 --warmup-ratio 0.1 --schedule linear --quiet",
             run);
    CHECKF(cli(args, out, sizeof out) == 0, "%s", out);
    CHECKF(strstr(out, "validation at step 3: loss ") && strstr(out, "accuracy"), "%s", out);
    CHECKF(strstr(out, "majority-class baseline ('not_entailment' of the training set)"), "%s",
           out);
    CHECKF(strstr(out, "3 blocks"), "%s", out); /* BAdam: one block per layer */
    CHECK(read_text(test_path_in(run, "metrics.jsonl"), metrics, sizeof metrics) == 0);
    CHECKF(strstr(metrics, "{\"step\": 3, \"val_loss\": ") &&
               strstr(metrics, "\"val_examples\": 3, \"task\": \"rte\", \"accuracy\": "),
           "%s", metrics);
    CHECK(strstr(metrics, "{\"step\": 6, \"val_loss\": ") != NULL);
    CHECK(io_is_file(test_path_in(run, "model.safetensors")));
    CHECK(io_is_file(test_path_in(run, "tokenizer.json")));
    /* the saved folder is an encoder folder again */
    snprintf(args, sizeof args, "eval --task rte --model %s --data " VAL, run);
    CHECKF(cli(args, out, sizeof out) == 0, "%s", out);
    CHECKF(strstr(out, "rte: 3 examples (3 labelled)") && strstr(out, "metrics: accuracy ") &&
               strstr(out, "majority-class baseline: accuracy 0.6667"),
           "%s", out);
    snprintf(args, sizeof args, "eval --task rte --model %s --data " VAL " --json", run);
    CHECKF(cli(args, out, sizeof out) == 0 && strstr(out, "\"metrics\":{\"accuracy\":"), "%s", out);
    /* MultiRC: F1a over answer options and EM per question, and the baseline's */
    CHECK(cli("eval --task multirc --model " MODEL " --data tests/fixtures/superglue/multirc.jsonl",
              out, sizeof out) == 0);
    CHECKF(strstr(out, "multirc: 7 examples (7 labelled)") && strstr(out, "metrics: F1a ") &&
               strstr(out, "majority-class baseline: F1a 0.7273, EM 0.0000, accuracy 0.5714"),
           "%s", out);
    /* a test file (no labels): loss and metrics are not available */
    CHECK(cli("eval --task rte --model " MODEL " --data tests/fixtures/superglue/rte_test.jsonl",
              out, sizeof out) == 0);
    CHECKF(strstr(out, "metrics: none"), "%s", out);
}

/* One refused command: exit status 1 or 2 and the message. */
static void refused(const char *args, const char *message) {
    char full[8192], out[65536];
    snprintf(full, sizeof full, "%s --out %s", args, test_path_in(g_out, "refused"));
    int rc = cli(full, out, sizeof out);
    CHECKF(rc != 0 && strstr(out, message), "%s: rc %d: %s", args, rc, out);
}

static void test_refusals(void) {
    const char *base = "train --task rte --model " MODEL " --data " TRAIN " --max-steps 1";
    char args[4096];
    snprintf(args, sizeof args, "%s --template alpaca", base);
    refused(args, "--template does not apply to a task");
    snprintf(args, sizeof args, "%s --pack", base);
    refused(args, "--pack does not apply to a task");
    snprintf(args, sizeof args, "%s --method lora", base);
    refused(args, "--method lora is not available for encoders yet");
    refused("train --task cb --model " MODEL " --data tests/fixtures/superglue/cb.jsonl",
            "--task cb has 3 labels but the head has 2");
    refused("train --task copa --model " MODEL " --data tests/fixtures/superglue/copa.jsonl",
            "needs a *ForMultipleChoice head");
    refused("train --model " MODEL " --data tests/fixtures/data/alpaca.jsonl",
            "the model is an encoder (bert): train it on a task with --task");
    refused("train --task rte --model " MODEL " --data " TRAIN " --warmup 2 --warmup-ratio 0.1",
            "--warmup and --warmup-ratio both set the warmup");
    refused("train --task nli --model " MODEL " --data " TRAIN, "nli");
    char out[65536];
    CHECK(cli("eval --task rte --model " MODEL " --data " VAL " --template alpaca", out,
              sizeof out) == 2);
    CHECKF(strstr(out, "--template does not apply to --task"), "%s", out);
    CHECK(cli("eval --model " MODEL " --data tests/fixtures/data/alpaca.jsonl", out, sizeof out) ==
          2);
    CHECKF(strstr(out, "is an encoder (bert): evaluate it on a task with --task"), "%s", out);
    /* a causal LM with --task */
    const char *llama = test_path_in(g_out, "llama");
    llama_config cfg = fixture_config(16, 32, 2, 2, 2, 80, 0, 0, 0);
    CHECK(fixture_write_model(llama, &cfg, BADAM_DTYPE_F32, 3, 0.1f) == 0);
    snprintf(args, sizeof args, "train --task rte --model %s --data " TRAIN, llama);
    refused(args, "needs an encoder (bert, roberta)");
}

static badam_status run_to(const char *out, int stop_at, int resume, float warmup_ratio,
                           badam_error *err) {
    static char model[4096], train[4096], val[4096];
    snprintf(model, sizeof model, "%s", test_source_path(MODEL));
    snprintf(train, sizeof train, "%s", test_source_path(TRAIN));
    snprintf(val, sizeof val, "%s", test_source_path(VAL));
    train_config c;
    train_config_defaults(&c);
    c.model_dir = model;
    c.data_path = train;
    c.val_path = val;
    c.out_dir = out;
    c.task = "rte";
    c.dtype = BADAM_DTYPE_F32;
    c.switch_every = 2;
    c.lr = 1e-3f;
    c.batch_size = 2, c.seq_len = 24, c.max_steps = 8;
    c.schedule = LR_LINEAR;
    c.warmup_ratio = warmup_ratio;
    c.eval_every = 4;
    c.stop_at_step = stop_at;
    c.resume = resume;
    train_report r;
    return train_run(&c, &r, err);
}

static void test_resume_exact(void) {
    char whole[4096], parts[4096];
    snprintf(whole, sizeof whole, "%s", test_path_in(g_out, "whole"));
    snprintf(parts, sizeof parts, "%s", test_path_in(g_out, "parts"));
    badam_error err = {0};
    CHECK_OK(run_to(whole, 0, 0, 0.25f, &err), &err);
    CHECK_OK(run_to(parts, 3, 0, 0.25f, &err), &err);
    CHECK(!io_is_file(test_path_in(parts, "model.safetensors"))); /* paused: no final model */
    /* the run record holds --task and --warmup-ratio: another schedule is refused */
    CHECK(run_to(parts, 0, 1, 0.5f, &err) == BADAM_E_INVALID);
    CHECKF(strstr(err.message, "--warmup-ratio"), "%s", err.message);
    CHECK_OK(run_to(parts, 0, 1, 0.25f, &err), &err);
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "cd %s && cmp %s/model.safetensors %s/model.safetensors",
             getenv("BADAM_SOURCE_DIR"), whole, parts);
    CHECKF(test_system(cmd) == 0, "the resumed encoder run differs from the whole run");
    /* and a different seed gives other bytes (the comparison can fail) */
    char other[4096];
    snprintf(other, sizeof other, "%s", test_path_in(g_out, "other"));
    snprintf(cmd, sizeof cmd,
             "cd %s && %s train --task rte --model " MODEL " --data " TRAIN " --out %s --dtype "
             "fp32 --switch-every 2 --lr 1e-3 --batch-size 2 --seq-len 24 --max-steps 8 --seed 43 "
             "--quiet >/dev/null 2>&1 && ! cmp -s %s/model.safetensors %s/model.safetensors",
             getenv("BADAM_SOURCE_DIR"), getenv("BADAM_CLI"), other, whole, other);
    CHECK(test_system(cmd) == 0);
}

int main(void) {
    if (!test_source_path(MODEL)) {
        fprintf(stderr, "SKIP: BADAM_SOURCE_DIR is not set\n");
        return TEST_SKIP_CODE;
    }
    snprintf(g_out, sizeof g_out, "%s", test_workdir("encoder_cli"));
    RUN_TEST(test_train_and_eval);
    RUN_TEST(test_refusals);
    RUN_TEST(test_resume_exact);
    return test_result();
}
