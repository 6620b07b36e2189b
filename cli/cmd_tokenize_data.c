/* badam tokenize --data FILE: what an instruction dataset becomes under a chat template and a
 * batching: counts (records, examples, tokens, trained tokens, truncated, dropped), the padding of
 * one epoch of batches, and a few rendered examples with the masked (untrained) text marked.
 * cmd_tokenize (the --text mode) hands over to cmd_tokenize_data when --data is given. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "badam/data.h"
#include "badam/tokenizer.h"
#include "badam/train.h"
#include "cli.h"

int cmd_tokenize_data(int argc, char **argv);

/* The defaults are `badam train`'s (train_config_defaults), so the report describes what a
 * run with the same options trains on. */
static void usage(FILE *out) {
    train_config c;
    train_config_defaults(&c);
    fprintf(out,
            "usage: badam tokenize --data FILE [--model DIR] [options]\n"
            "\n"
            "Reads an instruction dataset (Alpaca JSON/JSONL, ShareGPT, or pre-tokenized JSONL),\n"
            "renders it with a chat template, and prints its statistics, the padding of one epoch\n"
            "of batches, and N examples with the masked (untrained) part marked.\n"
            "\n"
            "options:\n"
            "  --model DIR          folder with tokenizer.json (needed unless the data is\n"
            "                       pre-tokenized)\n"
            "  --template NAME      default, alpaca, llama2, llama3, chatml, mistral "
            "(default: %s)\n"
            "  --system TEXT        system prompt (default: the template's; \"\" for none)\n"
            "  --format F           auto, alpaca, sharegpt, tokenized (default: auto)\n"
            "  --seq-len N          truncate examples to N tokens (default: %d, as badam train;\n"
            "                       0: no limit)\n"
            "  --batch-size B       rows per batch for the padding figure (default: %d)\n"
            "  --no-group-by-length do not sort by length within windows of batches (as badam\n"
            "                       train, batches are grouped by default; --group-by-length is\n"
            "                       accepted)\n"
            "  --pack               pack several examples per row of --seq-len tokens\n"
            "  --seed S             shuffle seed (default: %llu)\n"
            "  --show N             print N rendered examples (default: 2)\n",
            c.template_name ? c.template_name : "default", c.seq_len, c.batch_size,
            (unsigned long long)c.seed);
}

static int parse_long(const char *opt, const char *s, long min, long *out) {
    char *end = NULL;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || v < min) {
        fprintf(stderr, "badam tokenize: %s needs an integer >= %ld, got '%s'\n", opt, min,
                s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

/* Prints one run of tokens, untrained runs marked: dim on a terminal, [[...]] otherwise. */
static void print_run(const badam_tokenizer *tok, const int32_t *ids, size_t n, int trained,
                      int tty) {
    if (n == 0) return;
    if (!trained) fputs(tty ? "\033[2m" : "[[", stdout);
    char *text = NULL;
    size_t len = 0;
    badam_error err;
    if (tok && tokenizer_decode(tok, ids, n, 0, &text, &len, &err) == BADAM_OK) {
        fwrite(text, 1, len, stdout);
    } else {
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
    }
    free(text);
    if (!trained) fputs(tty ? "\033[0m" : "]]", stdout);
}

static void show_example(const badam_tokenizer *tok, const token_seq *e, size_t index, int tty) {
    size_t trained = 0;
    for (size_t i = 0; i < e->len; i++) trained += e->trained[i];
    printf("\n--- example %zu: %zu tokens, %zu trained ---\n", index, e->len, trained);
    size_t start = 0;
    for (size_t i = 1; i <= e->len; i++) {
        if (i == e->len || e->trained[i] != e->trained[start]) {
            if (!tok && start > 0) fputc(' ', stdout);
            print_run(tok, e->ids + start, i - start, e->trained[start], tty);
            start = i;
        }
    }
    printf("\n");
}

/* The command line of `badam tokenize --data`. */
typedef struct tokdata_args {
    const char *model, *data, *system;
    data_options dopt;
    batcher_options bopt;
    long show;
    int group_given; /* --group-by-length on the command line */
} tokdata_args;

/* The options that take a value, and the flags: a value may not be one of them. */
static const char *const VALUE_OPTIONS[] = {"--model",  "--data",    "--template",   "--system",
                                            "--format", "--seq-len", "--batch-size", "--seed",
                                            "--show",   NULL};
static const char *const FLAG_OPTIONS[] = {
    "--pack", "--group-by-length", "--no-group-by-length", "-h", "--help", NULL};

static int listed(const char *const *names, const char *a) {
    for (; *names; names++)
        if (!strcmp(*names, a)) return 1;
    return 0;
}

/* The value of option argv[*i] into *out (advancing *i), or an error when it is missing: the
 * end of the line, or another option of the command in its place. */
static int take_value(int argc, char **argv, int *i, const char **out) {
    const char *opt = argv[*i], *next = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!next || listed(VALUE_OPTIONS, next) || listed(FLAG_OPTIONS, next)) {
        fprintf(stderr, "badam tokenize: %s needs a value%s%s%s\n", opt,
                next ? ", but the next argument is the option '" : "", next ? next : "",
                next ? "'" : "");
        return -1;
    }
    *out = argv[++*i];
    return 0;
}

static int parse_format_name(const char *f, data_format *out) {
    const char *names[] = {"auto", "alpaca", "sharegpt", "tokenized"};
    const data_format formats[] = {DATA_FORMAT_AUTO, DATA_FORMAT_ALPACA, DATA_FORMAT_SHAREGPT,
                                   DATA_FORMAT_TOKENIZED};
    for (int k = 0; k < 4; k++)
        if (!strcmp(f, names[k])) {
            *out = formats[k];
            return 0;
        }
    fprintf(stderr, "badam tokenize: unknown --format '%s'\n", f);
    return -1;
}

/* One option with a value: 0, or -1 after an error message. */
static int parse_valued(const char *a, const char *val, tokdata_args *x) {
    long v;
    if (!strcmp(a, "--model")) {
        x->model = val;
    } else if (!strcmp(a, "--data")) {
        x->data = val;
    } else if (!strcmp(a, "--template")) {
        x->dopt.template_name = val;
    } else if (!strcmp(a, "--system")) {
        x->system = val;
    } else if (!strcmp(a, "--format")) {
        return parse_format_name(val, &x->dopt.format);
    } else if (!strcmp(a, "--seq-len")) {
        if (parse_long(a, val, 0, &v)) return -1;
        x->dopt.seq_len = (int)(v > 1 << 30 ? 1 << 30 : v);
    } else if (!strcmp(a, "--batch-size")) {
        if (parse_long(a, val, 1, &v)) return -1;
        x->bopt.batch_size = (int)(v > 1 << 20 ? 1 << 20 : v);
    } else if (!strcmp(a, "--seed")) {
        if (parse_long(a, val, 0, &v)) return -1;
        x->bopt.seed = (uint64_t)v;
    } else if (!strcmp(a, "--show")) {
        if (parse_long(a, val, 0, &x->show)) return -1;
    }
    return 0;
}

/* Reads the command line into x: 0, 1 after --help, 2 after an error message. */
static int parse_args(int argc, char **argv, tokdata_args *x) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        } else if (listed(VALUE_OPTIONS, a)) {
            if (take_value(argc, argv, &i, &val) || parse_valued(a, val, x)) return 2;
        } else if (!strcmp(a, "--pack")) {
            x->bopt.pack = 1;
        } else if (!strcmp(a, "--group-by-length") || !strcmp(a, "--no-group-by-length")) {
            x->bopt.group_by_length = !strcmp(a, "--group-by-length");
            x->group_given = x->bopt.group_by_length;
        } else {
            fprintf(stderr, "badam tokenize: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    return 0;
}

/* Checks the options together: 0, or 2 after an error message. */
static int check_args(tokdata_args *x) {
    if (!x->data) {
        fprintf(stderr, "badam tokenize: --data FILE is required here\n");
        usage(stderr);
        return 2;
    }
    x->bopt.seq_len = x->dopt.seq_len;
    if (x->bopt.pack && x->bopt.seq_len < 1) {
        fprintf(stderr, "badam tokenize: --pack needs --seq-len > 0\n");
        return 2;
    }
    if (x->bopt.pack && x->bopt.group_by_length && x->group_given)
        cli_warn("badam tokenize", "--group-by-length is ignored with --pack (packed rows are "
                                   "not grouped)");
    if (!template_known(x->dopt.template_name)) {
        fprintf(stderr,
                "badam tokenize: unknown template '%s' (default, alpaca, llama2, llama3, chatml, "
                "mistral)\n",
                x->dopt.template_name);
        return 2;
    }
    x->dopt.system_prompt = x->system;
    return 0;
}

/* The data set's counts. */
static void print_stats(const tokdata_args *x, const data_set *ds) {
    const data_stats *s = &ds->stats;
    size_t longest = 0;
    for (size_t i = 0; i < ds->n; i++)
        if (ds->examples[i].len > longest) longest = ds->examples[i].len;
    char a[32], b[32];
    const char *system = x->system;
    printf("data: %s\n", x->data);
    printf("  template         %s%s\n", x->dopt.template_name,
           system ? (system[0] ? "   (custom system prompt)" : "   (no system prompt)") : "");
    if (x->dopt.seq_len > 0)
        printf("  seq_len          %d\n", x->dopt.seq_len);
    else
        printf("  seq_len          no limit\n");
    printf("  records          %zu\n", s->records);
    printf("  examples         %zu\n", s->examples);
    printf("  dropped          %zu   (no trainable token after truncation)\n", s->dropped_empty);
    printf("  truncated        %zu   (%.1f%% of the examples)\n", s->truncated,
           s->examples ? 100.0 * (double)s->truncated / (double)s->examples : 0.0);
    printf("  tokens           %s   (mean %.1f, longest %zu)\n", cli_human_count(a, s->tokens),
           s->examples ? (double)s->tokens / (double)s->examples : 0.0, longest);
    printf("  trained tokens   %s   (%.1f%%)\n", cli_human_count(b, s->trained_tokens),
           s->tokens ? 100.0 * (double)s->trained_tokens / (double)s->tokens : 0.0);
}

/* The padding of one epoch of batches. */
static void print_batching(const batcher_options *bopt, const data_set *ds) {
    badam_error err = {0};
    batcher *bt = NULL;
    if (batcher_create(ds, bopt, &bt, &err) != BADAM_OK) {
        fprintf(stderr, "badam tokenize: %s\n", err.message);
        return;
    }
    size_t nb = batcher_batches_per_epoch(bt), cells = 0;
    for (size_t k = 0; k < nb; k++) {
        data_batch x;
        batcher_next(bt, &x);
        cells += (size_t)x.B * (size_t)x.T;
    }
    size_t real = 0;
    for (size_t i = 0; i < ds->n; i++) {
        size_t L = ds->examples[i].len;
        real += bopt->seq_len > 0 && L > (size_t)bopt->seq_len ? (size_t)bopt->seq_len : L;
    }
    char a[32], b[32];
    printf("batching: batch size %d, shuffled (seed %llu)%s%s\n", bopt->batch_size,
           (unsigned long long)bopt->seed,
           bopt->group_by_length && !bopt->pack ? ", grouped by length" : "",
           bopt->pack ? ", packed" : "");
    printf("  batches/epoch    %zu\n", nb);
    printf("  padding          %.1f%%   (%s of %s token slots)\n",
           cells ? 100.0 * (double)(cells - real) / (double)cells : 0.0,
           cli_human_count(a, cells - real), cli_human_count(b, cells));
    batcher_free(bt);
}

/* The first `show` examples, masked text marked. */
static void show_examples(const badam_tokenizer *tok, const data_set *ds, long show) {
    if (show <= 0 || ds->n == 0) return;
    int tty = isatty(fileno(stdout));
    printf("\n%s\n", tty ? "(masked text, not trained, is \033[2mdim\033[0m)"
                         : "(masked text, not trained, is shown [[like this]])");
    for (size_t i = 0; i < ds->n && i < (size_t)show; i++)
        show_example(tok, &ds->examples[i], i, tty);
}

int cmd_tokenize_data(int argc, char **argv) {
    train_config c; /* the defaults of badam train */
    train_config_defaults(&c);
    tokdata_args x = {
        .system = c.system_prompt,
        .dopt = {.format = DATA_FORMAT_AUTO,
                 .template_name = c.template_name ? c.template_name : "default",
                 .seq_len = c.seq_len},
        .bopt = {.batch_size = c.batch_size,
                 .shuffle = c.shuffle,
                 .group_by_length = c.group_by_length,
                 .seed = c.seed},
        .show = 2,
    };
    int rc = parse_args(argc, argv, &x);
    if (rc) return rc == 1 ? 0 : 2;
    if ((rc = check_args(&x))) return rc;

    badam_error err = {0};
    badam_tokenizer *tok = NULL;
    if (x.model && tokenizer_load(x.model, &tok, &err) != BADAM_OK) {
        fprintf(stderr, "badam tokenize: %s\n", err.message);
        return 1;
    }
    data_set *ds = NULL;
    if (data_load(x.data, tok, &x.dopt, &ds, &err) != BADAM_OK) {
        fprintf(stderr, "badam tokenize: %s\n", err.message);
        if (!tok && !x.model) fprintf(stderr, "(chat data needs --model DIR for its tokenizer)\n");
        tokenizer_free(tok);
        return 1;
    }
    print_stats(&x, ds);
    print_batching(&x.bopt, ds);
    show_examples(tok, ds, x.show);
    data_free(ds);
    tokenizer_free(tok);
    return 0;
}
