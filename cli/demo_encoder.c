/* badam demo --encoder: fine-tunes the bundled pretrained encoder (models/tiny-roberta-base, a
 * RobertaForMaskedLM loaded with a new sequence-classification head) on the bundled sentence-pair
 * task (data/demo/same_meaning_*.jsonl, RTE format: does B say the same thing as A?) with BAdam
 * and Adam on the same budget, and prints the majority baseline and each method's validation
 * accuracy; OUT/encoder_demo.md gets the table. LoRA is not in it: encoders refuse --method lora
 * in the trainer until the classifier head trains beside the adapters. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "badam/train.h"
#include "cli.h"
#include "demo_encoder.h"

#define ENC_SEQ_LEN 64
#define ENC_BATCH 16

typedef struct enc_row {
    const char *name;
    train_method method;
    float lr;
    double accuracy, seconds;
    size_t peak_rss;
    int failed;
} enc_row;

/* One method: train into OUT/name, then score OUT/name on the validation file. */
static void run_method(const char *model, const char *train, const char *val, const char *out,
                       int quick, enc_row *r) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", out, r->name);
    train_config c;
    train_config_defaults(&c);
    c.model_dir = model, c.data_path = train, c.val_path = val, c.out_dir = dir;
    c.task = "rte", c.method = r->method, c.lr = r->lr, c.epochs = quick ? 0 : 2;
    c.max_steps = quick ? 10 : 0, c.batch_size = ENC_BATCH, c.seq_len = ENC_SEQ_LEN;
    c.schedule = LR_LINEAR, c.warmup_ratio = 0.1, c.no_checkpoint = 1;
    c.eval_every = 0, c.progress = isatty(STDERR_FILENO);
    c.log = (badam_logger){cli_log_stderr, NULL};
    train_report rep;
    badam_error err = {0};
    task_eval_result ev;
    r->failed =
        train_run(&c, &rep, &err) ||
        train_task_evaluate(dir, "rte", val, ENC_BATCH, ENC_SEQ_LEN, BADAM_DTYPE_BF16, &ev, &err);
    if (r->failed) {
        fprintf(stderr, "badam demo --encoder: %s: %s\n", r->name, err.message);
        return;
    }
    r->accuracy = ev.scores.accuracy, r->seconds = rep.seconds, r->peak_rss = rep.peak_rss;
}

static void write_table(FILE *f, double majority, const enc_row *rows, int n) {
    fprintf(f,
            "| method | lr | val accuracy | seconds | peak RSS (MiB) |\n|---|---|---|---|---|\n");
    fprintf(f, "| majority class | - | %.1f%% | - | - |\n", 100 * majority);
    for (int i = 0; i < n; i++)
        if (!rows[i].failed)
            fprintf(f, "| %s | %g | %.1f%% | %.1f | %.1f |\n", rows[i].name, rows[i].lr,
                    100 * rows[i].accuracy, rows[i].seconds,
                    (double)rows[i].peak_rss / (1024.0 * 1024.0));
}

int demo_encoder_run(const char *model, const char *out, int quick) {
    const char *train = "data/demo/same_meaning_train.jsonl";
    const char *val = "data/demo/same_meaning_val.jsonl";
    badam_error err = {0};
    task_eval_result base;
    if (!strcmp(model, "models/tiny-llama-base")) model = "models/tiny-roberta-base";
    if (train_task_evaluate(model, "rte", val, ENC_BATCH, ENC_SEQ_LEN, BADAM_DTYPE_BF16, &base,
                            &err) &&
        !strstr(err.message, "masked-LM")) {
        fprintf(stderr, "badam demo --encoder: %s\n", err.message);
        return 1;
    }
    /* the majority baseline of the validation labels (a masked-LM folder has no head to score) */
    double majority = base.baseline.accuracy;
    if (err.message[0]) {
        err = (badam_error){0};
        majority = 0.5; /* same_meaning is generated 50/50 (scripts/make_encoder_demo.py) */
    }
    enc_row rows[2] = {{"badam", METHOD_BADAM, 1e-3f, 0, 0, 0, 0},
                       {"adam", METHOD_ADAM, 1e-3f, 0, 0, 0, 0}};
    int failed = 0;
    for (int i = 0; i < 2; i++) {
        run_method(model, train, val, out, quick, &rows[i]);
        failed += rows[i].failed;
    }
    printf("badam demo --encoder: %s on same_meaning (RTE format), validation accuracy\n", model);
    write_table(stdout, majority, rows, 2);
    char path[4096];
    snprintf(path, sizeof path, "%s/encoder_demo.md", out);
    FILE *f = fopen(path, "w");
    if (f) {
        write_table(f, majority, rows, 2);
        fclose(f);
    }
    return failed || !f ? 1 : 0;
}
