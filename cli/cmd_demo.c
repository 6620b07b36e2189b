/* badam demo: the main job on the embedded default. Prints the memory plan, fine-tunes the
 * bundled base model (pretrained by this project, models/tiny-llama-base) on the bundled task
 * (write words in capital letters) with BAdam, then more briefly with LoRA and Adam, scores the
 * base and the three fine-tuned models on held-out words by exact match, shows generations before
 * and after, and writes an HTML report. */
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
#include "badam/report.h"

static const char *USAGE = "badam demo [--out DIR] [--quick]";
static const char *DESCRIPTION =
    "Fine-tunes the embedded default model (models/tiny-llama-base, 0.8M parameters, pretrained\n"
    "by badam itself) on the embedded task (data/demo/uppercase_*.json: write words in capital\n"
    "letters) with BAdam, LoRA and Adam; evaluates exact match on held-out words before and "
    "after;\n"
    "writes OUT/report.html. About 1 to 2 minutes on 2 cores (--quick: under a minute).";

#define TEMPLATE "alpaca"
#define INSTRUCTION "Write the words in capital letters."
#define SYSTEM "" /* no system text: the prompt stays short for a character-level model */

typedef struct demo_run {
    const char *name;
    train_method method;
    int epochs;
    float lr;
} demo_run;

typedef struct demo_ctx {
    const char *model_dir, *train_path, *val_path, *out_dir;
    int quick;
} demo_ctx;

/* Exact match and loss of the model in `dir` on the held-out set; prints a few generations. */
static badam_status score(const demo_ctx *d, const char *dir, const char *label, eval_result *r,
                          badam_error *err) {
    llama_model *m = NULL;
    badam_tokenizer *tok = NULL;
    data_set *val = NULL;
    badam_status st = llama_model_load(dir, BADAM_DTYPE_BF16, &m, err);
    if (!st) st = tokenizer_load(dir, &tok, err);
    data_options o = {DATA_FORMAT_ALPACA, TEMPLATE, SYSTEM, 96};
    if (!st) st = data_load(d->val_path, tok, &o, &val, err);
    int32_t stops[8];
    int n_stops = st ? 0 : generate_stop_ids(m, tok, TEMPLATE, stops, 8);
    eval_options eo = {8, 1, 16, stops, n_stops, NULL, NULL};
    if (!st) st = evaluate(m, tok, val, &eo, r, err);
    /* three sample generations */
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
    llama_kv_cache_free(kv);
    data_free(val);
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
    c.seq_len = 96, c.batch_size = 8;
    char a[32];
    printf("memory plan for %s (%s parameters), batch 8 x 96 tokens:\n", d->model_dir,
           cli_human_count(a, llama_param_count(&mc)));
    const train_method methods[3] = {METHOD_BADAM, METHOD_LORA, METHOD_ADAM};
    for (int i = 0; i < 3; i++) {
        c.method = methods[i];
        memory_plan p;
        if (memory_plan_predict(&mc, &c, 8, 96, &p, &err)) continue;
        char w[32], s[32], act[32], t[32];
        printf("  %-6s weights %9s  optimizer-side %9s  activations %9s  total %9s\n",
               train_method_name(c.method), cli_human_bytes(w, p.bytes[1]),
               cli_human_bytes(s, p.bytes[2] + p.bytes[3] + p.bytes[4]),
               cli_human_bytes(act, p.bytes[5]), cli_human_bytes(t, p.total));
    }
}

/* Fine-tunes the base model with one method into dir and scores the result. */
static badam_status train_and_score(const demo_ctx *d, const demo_run *run, const char *dir,
                                    train_report *rep, eval_result *res, badam_error *err) {
    train_config c;
    train_config_defaults(&c);
    c.model_dir = d->model_dir, c.data_path = d->train_path, c.val_path = d->val_path;
    c.out_dir = dir, c.method = run->method, c.epochs = run->epochs;
    c.lr = run->lr, c.template_name = TEMPLATE, c.system_prompt = SYSTEM;
    c.seq_len = 96, c.batch_size = 8;
    c.switch_every = 20, c.eval_every = 10, c.no_checkpoint = 1, c.warmup = 5;
    c.lora_rank = 16, c.lora_alpha = 32;
    c.progress = isatty(STDERR_FILENO);
    c.log = (badam_logger){cli_log_stderr, NULL};
    printf("\nfine-tuning with %s (%d epochs)...\n", run->name, c.epochs);
    fflush(stdout);
    badam_status st = train_run(&c, rep, err);
    return st ? st : score(d, dir, run->name, res, err);
}

/* The comparison table on stdout and OUT/summary.json. */
static void print_results(const demo_ctx *d, const eval_result *base, const demo_run *runs,
                          const train_report *rep, const eval_result *res) {
    printf("\n%-6s %9s %10s %12s %14s %15s\n", "method", "time s", "val loss", "exact match",
           "planned MiB", "allocated MiB");
    printf("%-6s %9s %10.3f %11.0f%% %14s %13s\n", "base", "-", base->loss, 100 * base->em_accuracy,
           "-", "-");
    for (int i = 0; i < 3; i++) {
        size_t allocated = 0;
        for (int c = 1; c < 7; c++) allocated += rep[i].measured[c];
        printf("%-6s %9.1f %10.3f %11.0f%% %14.1f %15.1f\n", runs[i].name, rep[i].seconds,
               res[i].loss, 100 * res[i].em_accuracy, rep[i].predicted.total / 1048576.0,
               allocated / 1048576.0);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/summary.json", d->out_dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "{\"base\": {\"loss\": %.6f, \"exact_match\": %.6f}", base->loss,
                base->em_accuracy);
        for (int i = 0; i < 3; i++)
            fprintf(f, ", \"%s\": {\"loss\": %.6f, \"exact_match\": %.6f, \"seconds\": %.3f}",
                    runs[i].name, res[i].loss, res[i].em_accuracy, rep[i].seconds);
        fprintf(f, "}\n");
        fclose(f);
    }
}

int cmd_demo(int argc, char **argv) {
    demo_ctx d = {"models/tiny-llama-base", "data/demo/uppercase_train.json",
                  "data/demo/uppercase_val.json", "runs/demo", 0};
    const cli_option opts[] = {
        {"out", OPT_STRING, &d.out_dir, "DIR", "output folder (runs/demo)", 0},
        {"model", OPT_STRING, &d.model_dir, "DIR", "base model (models/tiny-llama-base)", 0},
        {"quick", OPT_FLAG, &d.quick, NULL, "fewer steps (for CI)", 0},
        {0},
    };
    int rc = cli_parse("badam demo", USAGE, DESCRIPTION, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    badam_error err = {0};
    print_plan(&d);
    printf("\nheld-out exact match (96 examples, 48 words never seen in fine-tuning) and sample "
           "generations:\n");
    eval_result base;
    if (score(&d, d.model_dir, "base", &base, &err)) {
        fprintf(stderr, "badam demo: %s\n", err.message);
        return 1;
    }
    demo_run runs[3] = {
        {"badam", METHOD_BADAM, d.quick ? 1 : 4, 2e-3f},
        {"lora", METHOD_LORA, d.quick ? 1 : 3, 3e-3f},
        {"adam", METHOD_ADAM, d.quick ? 1 : 3, 3e-4f},
    };
    char dirs[3][4096];
    const char *dir_ptrs[3];
    eval_result res[3];
    train_report rep[3];
    for (int i = 0; i < 3; i++) {
        snprintf(dirs[i], sizeof dirs[i], "%s/%s", d.out_dir, runs[i].name);
        dir_ptrs[i] = dirs[i];
        if (train_and_score(&d, &runs[i], dirs[i], &rep[i], &res[i], &err)) {
            fprintf(stderr, "badam demo: %s\n", err.message);
            return 1;
        }
    }
    print_results(&d, &base, runs, rep, res);
    char report[4096];
    snprintf(report, sizeof report, "%s/report.html", d.out_dir);
    report_options ro = {
        dir_ptrs, 3, report, "badam demo: BAdam vs LoRA vs Adam", {cli_log_command, "badam demo"}};
    if (report_write(&ro, NULL, 0, &err)) {
        fprintf(stderr, "badam demo: %s\n", err.message);
        return 1;
    }
    printf("\nreport: %s\n", report);
    return 0;
}
