/* `badam train --objective mlm` end to end on a tiny random RobertaForMaskedLM folder (made by
 * tests/ref/bert_ref.py, with the repository's RoBERTa BPE fixture tokenizer) and tokenized,
 * packed rows of predictable sequences: about 15% of the non-special tokens are targets, the loss
 * falls, the output folder is a RobertaForMaskedLM that loads, and a masked-LM folder without
 * --objective mlm (or --objective mlm on a classification folder) is refused with a message.
 * Skips when /usr/bin/python3 has no torch (the folder's maker). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/model.h"
#include "ref_compare.h"
#include "testutil.h"

/* 200 rows: <s>, an arithmetic run of ids in [5, 255), </s> (neighbours predict a token). */
static void write_data(const char *path) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    test_rng rng;
    test_rng_seed(&rng, 1);
    for (int i = 0; i < 200; i++) {
        int n = 8 + (int)(test_rng_u32(&rng) % 23), a = (int)(test_rng_u32(&rng) % 200);
        int step = 1 + (int)(test_rng_u32(&rng) % 3);
        fprintf(f, "{\"input_ids\": [0");
        for (int k = 0; k < n; k++) fprintf(f, ", %d", 5 + (a + k * step) % 250);
        fprintf(f, ", 2]}\n");
    }
    fclose(f);
}

/* Losses and targets of metrics.jsonl's steps. */
static int read_metrics(const char *path, double *loss, long *tokens, long *batch, int max) {
    FILE *f = fopen(path, "r");
    char line[2048];
    int n = 0;
    while (f && n < max && fgets(line, sizeof line, f)) {
        const char *l = strstr(line, "\"loss\": "), *t = strstr(line, "\"tokens\": ");
        const char *b = strstr(line, "\"batch_tokens\": ");
        if (!l || !t || !b) continue;
        loss[n] = atof(l + 8), tokens[n] = atol(t + 10), batch[n] = atol(b + 16);
        n++;
    }
    if (f) fclose(f);
    return n;
}

/* The trainer's final validation (loss over the masked positions, their count) against
 * tests/ref/mlm_eval_ref.py on the saved model: the PyTorch forward with the Python port of the
 * masking (same seed, units, epoch), so the masks, the batching and the forward agree end to
 * end. */
static void check_reference_eval(const char *dir, const char *ref, const char *data) {
    char cmd[8192], path[1200], line[2048] = {0}, last[2048] = {0};
    snprintf(path, sizeof path, "%s/out/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "\"val_loss\"")) snprintf(last, sizeof last, "%s", line);
    if (f) fclose(f);
    const char *vl = strstr(last, "\"val_loss\": "), *vt = strstr(last, "\"val_tokens\": ");
    CHECKF(vl && vt, "no validation in %s", path);
    if (!vl || !vt) return;
    snprintf(
        cmd, sizeof cmd,
        "/usr/bin/python3 %s/mlm_eval_ref.py --model %s/out --data %s --seed 42 > %s/eval.json",
        ref, dir, data, dir);
    CHECK(test_system(cmd) == 0);
    snprintf(path, sizeof path, "%s/eval.json", dir);
    char got[1024] = {0};
    f = fopen(path, "r");
    if (f) {
        CHECK(fread(got, 1, sizeof got - 1, f) > 0);
        fclose(f);
    }
    const char *rl = strstr(got, "\"loss\": "), *rm = strstr(got, "\"masked\": ");
    CHECKF(rl && rm, "reference evaluation: %s", got);
    if (!rl || !rm) return;
    double ours = atof(vl + 12), theirs = atof(rl + 8);
    CHECKF(atol(vt + 14) == atol(rm + 10) && fabs(ours - theirs) <= 1e-4 * fabs(theirs),
           "validation: %ld masked tokens, loss %.7f; reference %ld, %.7f", atol(vt + 14), ours,
           atol(rm + 10), theirs);
}

static void test_train_mlm(void) {
    char dir[1024], cmd[16384], args[8192], out[1 << 14];
    snprintf(dir, sizeof dir, "%s", test_workdir("mlm-train"));
    char ref[1100], fix[1100]; /* test_source_path's buffer is reused by the next call */
    snprintf(ref, sizeof ref, "%s", test_source_path("tests/ref"));
    snprintf(fix, sizeof fix, "%s", test_source_path("tests/fixtures/roberta-tiny"));
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/bert_ref.py make --out %s/model --preset roberta_mlm --vocab 272 "
             "--max-pos 80 && cp %s/tokenizer.json %s/model/ && /usr/bin/python3 "
             "%s/bert_ref.py make --out %s/cls --preset roberta_pad --vocab 272 --max-pos 80 && "
             "cp %s/tokenizer.json %s/cls/",
             ref, dir, fix, dir, ref, dir, fix, dir);
    if (ref_run(cmd)) {
        CHECKF(0, "%s failed", cmd);
        return;
    }
    char data[1100];
    snprintf(data, sizeof data, "%s/data.jsonl", dir);
    write_data(data);
    const char *common = "--format tokenized --pack --method adam --lr 3e-3 --max-steps 40 "
                         "--batch-size 8 --seq-len 64 --dtype fp32 --quiet";
    snprintf(args, sizeof args,
             "train --model %s/model --data %s --val-data %s --objective mlm %s --out %s/out", dir,
             data, data, common, dir);
    int rc = test_run_cli(dir, NULL, args, out, sizeof out);
    CHECKF(rc == 0, "%s", out);
    double loss[64];
    long tok[64], batch[64];
    char path[1200];
    snprintf(path, sizeof path, "%s/out/metrics.jsonl", dir);
    int n = read_metrics(path, loss, tok, batch, 64);
    CHECKF(n == 40, "%d steps in metrics.jsonl", n);
    long tsum = 0, bsum = 0;
    double first = 0, last = 0;
    for (int i = 0; i < n; i++) tsum += tok[i], bsum += batch[i];
    for (int i = 0; i < 5 && n == 40; i++) first += loss[i] / 5, last += loss[35 + i] / 5;
    /* packed rows of 64: about 2 specials per 21 tokens, some padding: 10-15% of the cells */
    CHECKF(bsum && tsum > 0.09 * bsum && tsum < 0.16 * bsum, "%ld targets of %ld cells", tsum,
           bsum);
    CHECKF(last < first - 0.3, "MLM loss %.4f over the first 5 steps, %.4f over the last 5", first,
           last);
    check_reference_eval(dir, ref, data);
    badam_error err = {0};
    const model_arch *a = NULL;
    llama_model *m = NULL;
    snprintf(path, sizeof path, "%s/out", dir);
    CHECK_OK(model_arch_for_folder(path, &a, &err), &err);
    if (a) CHECK_OK(a->load(path, BADAM_DTYPE_F32, &m, &err), &err);
    CHECK(m && m->cfg.encoder_head == LLAMA_HEAD_MLM);
    if (a && m) a->free(m);

    snprintf(args, sizeof args, "train --model %s/model --data %s %s --out %s/o2", dir, data,
             common, dir);
    CHECK(test_run_cli(dir, NULL, args, out, sizeof out) != 0);
    CHECKF(strstr(out, "--objective mlm"), "%s", out);
    snprintf(args, sizeof args, "train --model %s/cls --data %s --objective mlm %s --out %s/o3",
             dir, data, common, dir);
    CHECK(test_run_cli(dir, NULL, args, out, sizeof out) != 0);
    CHECKF(strstr(out, "RobertaForMaskedLM"), "%s", out);
}

int main(void) {
    if (!ref_can_run()) return TEST_SKIP_CODE;
    RUN_TEST(test_train_mlm);
    return test_result();
}
