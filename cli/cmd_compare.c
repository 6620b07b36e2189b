/* badam compare: fine-tunes one base with several methods on the same data and budget, evaluates
 * each on held-out data, and writes one report (compare.h). The options are those of `badam
 * train`, each either for all runs or per run (compare_args.h), plus the comparison's own. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/tokenizer.h"
#include "cli.h"
#include "compare.h"
#include "compare_args.h"
#include "options.h"
#include "train_cli.h"

static const char *USAGE = "badam compare --model DIR --data FILE --val-data FILE --methods LIST "
                           "--out DIR [options]";
static const char *DESCRIPTION =
    "Fine-tunes one base model with each method of --methods (badam, adam, lora, lomo, sgd-bcd,\n"
    "badam-ratio, mezo, mezo-lora, galore, adapter; a method may appear under several names,\n"
    "NAME@LABEL, e.g. lora@3e-3,lora@1e-3) on the same data with the same budget (same steps,\n"
    "batches and seed, hence the same tokens), each into OUT/NAME; evaluates each on --val-data\n"
    "(loss; exact match with --exact-match) and writes OUT/compare.json, OUT/compare.md (method,\n"
    "settings, final train loss, val loss, exact match, tokens, seconds, tokens/s, memory\n"
    "predicted and measured peak) and OUT/report.html (loss against step, tokens and seconds).\n"
    "Every option of badam train (below) is accepted, for all runs (--lr 2e-3) or per run as\n"
    "NAME=VALUE items, NAME a run or its method, an item without NAME for the others:\n"
    "--lr lora=3e-3,adam=3e-4,2e-3. A flag alone applies to every run; followed by a list of\n"
    "runs or methods it applies to those only: --galore-per-layer galore@pl (items NAME, NAME=1\n"
    "or NAME=0; --flag=LIST also works). --tokens N converts a budget of trained tokens to steps\n"
    "with the data's mean trained tokens per example. --wall-seconds S gives every run the same\n"
    "time limit (badam train --max-seconds: a run ends after the step during which S seconds of\n"
    "training elapsed, and the table says so); the step budget still applies, so give a large\n"
    "--max-steps for a pure time budget. A run that fails is reported with its error and the\n"
    "others still run; the exit status is then 1.";

/* The comparison's own options (the rest go to the train option parser). */
typedef struct compare_cli {
    const char *methods, *out, *title;
    int exact_match, max_new, eval_batch;
    double tokens, wall_seconds;
} compare_cli;

/* The command line split into the comparison's own options and those of badam train. */
typedef struct split_args {
    char **own, **train;
    int n_own, n_train;
} split_args;

static const cli_option *own_options(compare_cli *x) {
    static cli_option t[9];
    const cli_option table[] = {
        {"methods", OPT_STRING, &x->methods, "LIST",
         "runs: METHOD or METHOD@LABEL, comma-separated", 0},
        {"out", OPT_STRING, &x->out, "DIR", "output folder: OUT/NAME per run and the report", 0},
        {"exact-match", OPT_FLAG, &x->exact_match, NULL,
         "also score greedy answers on --val-data by exact match", 0},
        {"max-new-tokens", OPT_INT, &x->max_new, "N", "exact match: tokens per answer at most (64)",
         0},
        {"eval-batch-size", OPT_INT, &x->eval_batch, "B", "held-out evaluation batch size (8)", 0},
        {"tokens", OPT_DOUBLE, &x->tokens, "N",
         "budget in trained tokens, as one step count for all runs (replaces --max-steps)", 0},
        {"wall-seconds", OPT_DOUBLE, &x->wall_seconds, "S",
         "the same time limit for every run (--max-seconds S where a run has none of its own)", 0},
        {"title", OPT_STRING, &x->title, "TEXT", "report title", 0},
        {0},
    };
    memcpy(t, table, sizeof table);
    return t;
}

static void print_help(compare_cli *x) {
    cli_print_help(stdout, USAGE, DESCRIPTION, own_options(x));
    printf("\noptions of badam train (each for all runs, or NAME=VALUE,... per run):\n");
    train_print_options(stdout);
}

/* Whether the own option named by arg (--name or --name=value) exists; 1 takes a value. */
static int own_takes_value(const cli_option *own, const char *arg, int *found) {
    size_t len = strcspn(arg + 2, "=");
    for (const cli_option *o = own; o->name; o++)
        if (strlen(o->name) == len && !strncmp(o->name, arg + 2, len)) {
            *found = 1;
            return o->type != OPT_FLAG && !strchr(arg, '=');
        }
    *found = 0;
    return 0;
}

/* Splits argv into s (the arrays hold argc + 1 entries): 0, 1 after --help, 2 after an error. */
static int split(int argc, char **argv, compare_cli *x, split_args *s) {
    const cli_option *own = own_options(x);
    s->own[s->n_own++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            print_help(x);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "badam compare: unexpected argument '%s' (see --help)\n", a);
            return 2;
        }
        int found, value = own_takes_value(own, a, &found);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(a + 2, "="), a + 2);
        if (!found) {
            int t = train_option_takes_value(name);
            if (t < 0 || !strcmp(name, "method")) {
                fprintf(stderr, "badam compare: %s option '--%s' (see --help)\n",
                        t < 0 ? "unknown" : "give the runs with --methods, not the", name);
                return 2;
            }
            value = t == 1 && !strchr(a, '=');
            /* a flag followed by a run list (--galore-per-layer galore) takes it */
            if (t == 0 && !strchr(a, '=') && i + 1 < argc && strncmp(argv[i + 1], "--", 2))
                value = 1;
        }
        char **dst = found ? s->own : s->train;
        int *n = found ? &s->n_own : &s->n_train;
        dst[(*n)++] = argv[i];
        if (value && i + 1 < argc) dst[(*n)++] = argv[++i];
    }
    return 0;
}

/* Strings made for the runs' argument lists; train_config points into them until the end. */
typedef struct string_pool {
    char **s;
    int n, cap;
} string_pool;

static char *pool_add(string_pool *p, const char *fmt, const char *a, const char *b) {
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        char **s = realloc(p->s, (size_t)cap * sizeof *s);
        if (!s) return NULL;
        p->s = s, p->cap = cap;
    }
    size_t n = strlen(fmt) + strlen(a) + strlen(b) + 1;
    char *t = malloc(n);
    if (t) snprintf(t, n, fmt, a, b);
    return t ? (p->s[p->n++] = t) : NULL;
}

static void pool_free(string_pool *p) {
    for (int i = 0; i < p->n; i++) free(p->s[i]);
    free(p->s);
}

/* Appends " name value" to the run's settings (what differs per run). */
static void add_setting(compare_run *run, const char *name, const char *value) {
    size_t n = strlen(run->settings);
    snprintf(run->settings + n, sizeof run->settings - n, "%s%s %s", n ? ", " : "", name, value);
}

/* The train arguments of run i: "--method M --out OUT/NAME" and every train option resolved for
 * the run, into argv (s->n_train + 6 entries): the count, or -1 after a message. */
static int run_argv(const split_args *s, const compare_names *names, int i, compare_run *run,
                    string_pool *pool, char **argv) {
    int n = 0;
    argv[n++] = "badam compare";
    argv[n++] = "--method";
    argv[n++] = (char *)names->method[i];
    argv[n++] = "--out";
    argv[n++] = run->out_dir;
    for (int k = 0; k < s->n_train; k++) {
        const char *a = s->train[k], *eq = strchr(a, '=');
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(a + 2, "="), a + 2);
        const char *value = eq ? eq + 1 : NULL;
        int flag = train_option_takes_value(name) == 0;
        if (!eq && (!flag || (k + 1 < s->n_train && strncmp(s->train[k + 1], "--", 2))))
            value = k + 1 < s->n_train ? s->train[++k] : "";
        if (!value) { /* a flag: every run */
            argv[n++] = (char *)a;
            continue;
        }
        if (flag) { /* a flag with a run list: the runs it names */
            int on = compare_flag_for(names, i, name, value);
            if (on < 0) return -1;
            if (on) add_setting(run, name, "on");
            if (on && !(argv[n++] = pool_add(pool, "--%s%s", name, ""))) return -1;
            continue;
        }
        char v[1024];
        int per_run, got = compare_resolve(names, i, name, value, v, sizeof v, &per_run);
        if (got < 0) return -1;
        if (!got) continue;
        if (per_run && strcmp(name, "lr")) add_setting(run, name, v);
        if (!(argv[n++] = pool_add(pool, "--%s=%s", name, v))) return -1;
    }
    return n;
}

/* The runs' folders and train configurations (preset: the starting values): 0, or 2 after a
 * message. */
static int build_runs(const compare_cli *x, const split_args *s, const compare_names *names,
                      const train_config *preset, compare_run *runs, string_pool *pool) {
    char **argv = calloc((size_t)s->n_train + 8, sizeof *argv);
    if (!argv) return 2;
    int rc = 0;
    for (int i = 0; i < names->n && !rc; i++) {
        compare_run *run = &runs[i];
        memset(run, 0, sizeof *run);
        snprintf(run->name, sizeof run->name, "%s", names->run[i]);
        snprintf(run->out_dir, sizeof run->out_dir, "%s/%s", x->out, run->name);
        run->c = *preset;
        int n = run_argv(s, names, i, run, pool, argv);
        if (n < 0) rc = 2;
        if (!rc && (rc = train_parse_config(n, argv, &run->c)))
            fprintf(stderr, "badam compare: (in the options of run '%s')\n", run->name);
        char lr[32];
        snprintf(lr, sizeof lr, "lr %g", run->c.lr);
        size_t len = strlen(lr) + 2 + strlen(run->settings) + 1;
        char *full = malloc(len);
        if (full) {
            snprintf(full, len, "%s%s%s", lr, run->settings[0] ? ", " : "", run->settings);
            snprintf(run->settings, sizeof run->settings, "%s", full);
            free(full);
        }
    }
    free(argv);
    return rc;
}

static int same(const char *a, const char *b) {
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Every run on the same model, training data and held-out data, and the held-out data given:
 * 0, or 2 after a message. */
static int check_same_data(const compare_run *runs, int n) {
    const train_config *c0 = &runs[0].c;
    if (!c0->model_dir || !c0->data_path || !c0->val_path) {
        fprintf(stderr, "badam compare: --model, --data and --val-data are required\n");
        return 2;
    }
    for (int i = 1; i < n; i++) {
        const train_config *c = &runs[i].c;
        if (!same(c->model_dir, c0->model_dir) || !same(c->data_path, c0->data_path) ||
            !same(c->val_path, c0->val_path)) {
            fprintf(stderr,
                    "badam compare: --model, --data and --val-data must be the same for "
                    "every run (run '%s' differs)\n",
                    runs[i].name);
            return 2;
        }
    }
    return 0;
}

/* --tokens: one step count for all runs, from the mean trained tokens per example of the
 * training data (as the first run renders it) and each run's batch: 0, or 1 after a message. */
static int token_budget(compare_run *runs, int n, double tokens) {
    const train_config *c = &runs[0].c;
    badam_tokenizer *tok = NULL;
    data_set *ds = NULL;
    badam_error err = {0};
    data_options o = {c->format, c->template_name, c->system_prompt, c->seq_len};
    badam_status st = tokenizer_load(c->model_dir, &tok, &err);
    if (!st) st = data_load(c->data_path, tok, &o, &ds, &err);
    double per_example =
        st || !ds->stats.examples ? 0 : ds->stats.trained_tokens / (double)ds->stats.examples;
    data_free(ds);
    tokenizer_free(tok);
    if (st || !(per_example > 0)) {
        fprintf(stderr, "badam compare: --tokens: %s\n",
                st ? err.message : "the training data has no trained token");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        train_config *r = &runs[i].c;
        double per_step = per_example * r->batch_size * r->grad_accum;
        r->max_steps = (int)fmin(ceil(tokens / per_step), 1e9);
    }
    printf("budget: %.0f trained tokens = %d steps of %d x %d examples (%.1f trained tokens per "
           "example)\n",
           tokens, runs[0].c.max_steps, c->batch_size, c->grad_accum, per_example);
    return 0;
}

/* The comparison's own options, the run list and the runs' configurations: 0, 1 after --help,
 * 2 after an error message. */
static int parse_all(int argc, char **argv, compare_cli *x, compare_names *names,
                     compare_run **runs, string_pool *pool) {
    split_args s = {calloc((size_t)argc + 1, sizeof(char *)),
                    calloc((size_t)argc + 1, sizeof(char *)), 0, 0};
    int rc = s.own && s.train ? split(argc, argv, x, &s) : 2;
    if (!rc) rc = cli_parse("badam compare", USAGE, DESCRIPTION, own_options(x), s.n_own, s.own);
    if (!rc && (!x->methods || !x->out)) {
        fprintf(stderr, "badam compare: --methods and --out are required (see --help)\n");
        rc = 2;
    }
    if (!rc && (x->max_new < 1 || x->eval_batch < 1 || x->tokens < 0 ||
                !(x->wall_seconds >= 0 && x->wall_seconds < 1e12))) {
        fprintf(stderr, "badam compare: --max-new-tokens and --eval-batch-size must be >= 1, "
                        "--tokens and --wall-seconds >= 0\n");
        rc = 2;
    }
    if (!rc && compare_parse_methods(x->methods, names)) rc = 2;
    if (!rc && !(*runs = calloc((size_t)names->n, sizeof **runs))) rc = 2;
    train_config preset;
    train_config_defaults(&preset);
    if (!rc) rc = build_runs(x, &s, names, &preset, *runs, pool);
    if (!rc) rc = check_same_data(*runs, names->n);
    for (int i = 0; !rc && i < names->n; i++) /* a run's own --max-seconds wins */
        if (x->wall_seconds > 0 && !((*runs)[i].c.max_seconds > 0))
            (*runs)[i].c.max_seconds = x->wall_seconds;
    free(s.own);
    free(s.train);
    return rc;
}

int cmd_compare(int argc, char **argv) {
    compare_cli x = {.max_new = 64, .eval_batch = 8, .title = "badam compare"};
    compare_names names;
    compare_run *runs = NULL;
    string_pool pool = {0};
    int rc = parse_all(argc, argv, &x, &names, &runs, &pool);
    if (rc) {
        rc = rc == 1 ? 0 : 2;
    } else if (x.tokens > 0 && token_budget(runs, names.n, x.tokens)) {
        rc = 1;
    } else {
        compare_job job = {x.out,        runs[0].c.val_path, x.title, x.exact_match, x.max_new,
                           x.eval_batch, runs[0].c.seq_len,  runs,    names.n,       NULL,
                           NULL};
        int failed = compare_execute(&job);
        if (failed > 0)
            fprintf(stderr, "badam compare: %d of %d runs failed (see compare.md)\n", failed,
                    names.n);
        rc = failed ? 1 : 0;
    }
    free(runs);
    pool_free(&pool);
    return rc;
}
