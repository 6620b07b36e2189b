/* badam demo: the main job on the embedded default, as a preset of badam compare (compare.h).
 * Prints the memory plan, fine-tunes the bundled base model (pretrained by this project,
 * models/tiny-llama-base) on the bundled task (write words in capital letters) with BAdam, LoRA
 * and Adam on the same budget, scores the base and the three fine-tuned models on held-out words
 * by exact match, shows generations before and after, and writes the comparison's table and
 * HTML report. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "badam/evaluate.h"
#include "badam/generate.h"
#include "badam/train.h"
#include "cli.h"
#include "options.h"
#include "compare.h"
#include "demo_encoder.h"

static const char *USAGE = "badam demo [--out DIR] [--quick] [--encoder]";
static const char *DESCRIPTION =
    "Fine-tunes the embedded default model (models/tiny-llama-base, 0.8M parameters, pretrained\n"
    "by badam itself) on the embedded task (data/demo/uppercase_*.json: write words in capital\n"
    "letters) with BAdam, LoRA and Adam on the same budget (a preset of badam compare);\n"
    "evaluates exact match on held-out words before and after; writes OUT/compare.md,\n"
    "OUT/compare.json, OUT/summary.json and OUT/report.html. About a minute on 2 cores\n"
    "(--quick: one epoch). --encoder: models/tiny-roberta-base on data/demo/same_meaning_*\n"
    "(sentence pairs, RTE format) with BAdam and Adam; writes OUT/encoder_demo.md.";

#define TEMPLATE "alpaca"
#define INSTRUCTION "Write the words in capital letters."
#define SYSTEM "" /* no system text: the prompt stays short for a character-level model */
/* Tokens per example at most: the longest of the 480 training examples fits (96 cut 61). */
#define SEQ_LEN 128

typedef struct demo_ctx {
    const char *model_dir, *train_path, *val_path, *out_dir;
    int quick, encoder;
} demo_ctx;

/* Three greedy answers of the model in dir, on one line after label. */
static badam_status print_generations(const char *dir, const char *label, badam_error *err) {
    llama_model *m = NULL;
    badam_tokenizer *tok = NULL;
    badam_status st = llama_model_load(dir, BADAM_DTYPE_BF16, &m, err);
    if (!st) st = tokenizer_load(dir, &tok, err);
    int32_t stops[8];
    int n_stops = st ? 0 : generate_stop_ids(m, tok, TEMPLATE, stops, 8);
    const char *words[3] = {"boy", "storm bear", "quickly smiles"};
    llama_kv_cache *kv = NULL;
    if (!st) st = llama_kv_cache_create(m, 128, 0, &kv, err);
    if (!st) printf("  %-10s", label);
    for (int i = 0; i < 3 && !st; i++) {
        char user[256];
        snprintf(user, sizeof user, "%s\n%s", INSTRUCTION, words[i]);
        chat_turn turn = {CHAT_USER, user, 0};
        token_seq prompt = {0};
        st = template_render(TEMPLATE, tok, &turn, 1, SYSTEM, 1, &prompt, err);
        generate_options go = {16, {0, 0, 1, 0}, stops, n_stops, NULL, 0, NULL, NULL};
        generate_result gr = {0};
        llama_kv_cache_truncate(kv, 0);
        if (!st) st = generate_text(m, tok, kv, prompt.ids, prompt.len, &go, &gr, err);
        if (!st) printf("  %s -> \"%s\"", words[i], gr.text);
        generate_result_free(&gr);
        token_seq_free(&prompt);
    }
    if (!st) printf("\n");
    fflush(stdout);
    llama_kv_cache_free(kv);
    tokenizer_free(tok);
    llama_model_free(m);
    return st;
}

static void print_plan(const demo_ctx *d) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", d->model_dir);
    llama_config mc;
    badam_error err = {0};
    if (llama_config_load(path, &mc, &err)) return;
    train_config c;
    train_config_defaults(&c);
    c.seq_len = SEQ_LEN, c.batch_size = 8;
    char a[32];
    printf("memory plan for %s (%s parameters), batch 8 x %d tokens:\n", d->model_dir,
           cli_human_count(a, llama_param_count(&mc)), SEQ_LEN);
    const train_method methods[3] = {METHOD_BADAM, METHOD_LORA, METHOD_ADAM};
    for (int i = 0; i < 3; i++) {
        c.method = methods[i];
        memory_plan p;
        if (memory_plan_predict(&mc, &c, 8, SEQ_LEN, &p, &err)) continue;
        char w[32], s[32], act[32], t[32];
        printf("  %-6s weights %9s  optimizer-side %9s  activations %9s  total %9s\n",
               train_method_name(c.method), cli_human_bytes(w, p.bytes[1]),
               cli_human_bytes(s, p.bytes[2] + p.bytes[3] + p.bytes[4]),
               cli_human_bytes(act, p.bytes[5]), cli_human_bytes(t, p.total));
    }
}

/* The preset: one method at lr into OUT/name, every run on the same data, epochs and seed. */
static void preset_run(const demo_ctx *d, compare_run *r, const char *name, train_method method,
                       float lr) {
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->out_dir, sizeof r->out_dir, "%s/%s", d->out_dir, name);
    train_config *c = &r->c;
    train_config_defaults(c);
    c->model_dir = d->model_dir, c->data_path = d->train_path, c->val_path = d->val_path;
    c->out_dir = r->out_dir, c->method = method, c->epochs = d->quick ? 1 : 3;
    c->lr = lr, c->template_name = TEMPLATE, c->system_prompt = SYSTEM;
    c->seq_len = SEQ_LEN, c->batch_size = 8;
    /* K: every block visited within the run (a block-epoch fits, K <= steps / blocks): 60 steps
     * an epoch over 4 layer blocks; 3 epochs (180 steps) visit each block at least twice */
    c->switch_every = d->quick ? 15 : 20;
    c->eval_every = 10, c->no_checkpoint = 1, c->warmup = 5;
    c->lora_rank = 16, c->lora_alpha = 32;
    c->progress = isatty(STDERR_FILENO);
    c->log = (badam_logger){cli_log_stderr, NULL};
    snprintf(r->settings, sizeof r->settings, "lr %g, %d epoch%s%s", lr, c->epochs,
             c->epochs == 1 ? "" : "s", method == METHOD_LORA ? ", rank 16, alpha 32" : "");
}

/* After each run: its sample generations. */
static void after_run(void *ctx, const compare_run *run) {
    (void)ctx;
    badam_error err = {0};
    if (!run->failed && print_generations(run->out_dir, run->name, &err))
        fprintf(stderr, "badam demo: %s\n", err.message);
}

/* OUT/summary.json: held-out loss, exact match and seconds of the base and of each run. */
static void write_summary(const demo_ctx *d, const eval_result *base, const compare_run *runs,
                          int n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/summary.json", d->out_dir);
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "{\"base\": {\"loss\": %.6f, \"exact_match\": %.6f}", base->loss, base->em_accuracy);
    for (int i = 0; i < n; i++)
        if (!runs[i].failed)
            fprintf(f, ", \"%s\": {\"loss\": %.6f, \"exact_match\": %.6f, \"seconds\": %.3f}",
                    runs[i].name, runs[i].ev.loss, runs[i].ev.em_accuracy, runs[i].rep.seconds);
    fprintf(f, "}\n");
    fclose(f);
}

int cmd_demo(int argc, char **argv) {
    demo_ctx d = {"models/tiny-llama-base",
                  "data/demo/uppercase_train.json",
                  "data/demo/uppercase_val.json",
                  "runs/demo",
                  0,
                  0};
    const cli_option opts[] = {
        {"out", OPT_STRING, &d.out_dir, "DIR", "output folder (runs/demo)", 0},
        {"model", OPT_STRING, &d.model_dir, "DIR", "base model (models/tiny-llama-base)", 0},
        {"quick", OPT_FLAG, &d.quick, NULL, "one epoch per method (for CI)", 0},
        {"encoder", OPT_FLAG, &d.encoder, NULL,
         "the encoder demo (models/tiny-roberta-base, same_meaning)", 0},
        {0},
    };
    int rc = cli_parse("badam demo", USAGE, DESCRIPTION, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    if (d.encoder) return demo_encoder_run(d.model_dir, d.out_dir, d.quick);
    badam_error err = {0};
    print_plan(&d);
    printf("\nheld-out exact match (96 examples, 48 words never seen in fine-tuning) and sample "
           "generations:\n");
    compare_run runs[4];
    preset_run(&d, &runs[0], "badam", METHOD_BADAM, 2e-3f);
    preset_run(&d, &runs[1], "lora", METHOD_LORA, 3e-3f);
    preset_run(&d, &runs[2], "adam", METHOD_ADAM, 3e-4f);
    compare_job job = {
        d.out_dir, d.val_path, "badam demo: BAdam vs LoRA vs Adam", 1, 16, 8, SEQ_LEN, runs, 3,
        after_run, NULL};
    /* the base model, scored as a run that starts and ends at the base */
    preset_run(&d, &runs[3], "base", METHOD_BADAM, 0);
    snprintf(runs[3].out_dir, sizeof runs[3].out_dir, "%s", d.model_dir);
    eval_result base;
    if (compare_evaluate(&job, &runs[3], &base, &err) ||
        print_generations(d.model_dir, "base", &err)) {
        fprintf(stderr, "badam demo: %s\n", err.message);
        return 1;
    }
    printf("  base: held-out loss %.4f, exact match %.1f%%\n", base.loss, 100 * base.em_accuracy);
    int failed = compare_execute(&job);
    if (failed >= 0) write_summary(&d, &base, runs, 3);
    return failed ? 1 : 0;
}
