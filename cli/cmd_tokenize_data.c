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
#include "cli.h"

int cmd_tokenize_data(int argc, char **argv);

static void usage(FILE *out) {
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
            "(default: default)\n"
            "  --system TEXT        system prompt (default: the template's; \"\" for none)\n"
            "  --format F           auto, alpaca, sharegpt, tokenized (default: auto)\n"
            "  --seq-len N          truncate examples to N tokens (default: 2048; 0: no limit)\n"
            "  --batch-size B       rows per batch for the padding figure (default: 8)\n"
            "  --group-by-length    sort by length within windows of batches\n"
            "  --pack               pack several examples per row of --seq-len tokens\n"
            "  --seed S             shuffle seed (default: 42)\n"
            "  --show N             print N rendered examples (default: 2)\n");
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

int cmd_tokenize_data(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *system = NULL;
    data_options dopt = {.format = DATA_FORMAT_AUTO, .template_name = "default", .seq_len = 2048};
    batcher_options bopt = {.batch_size = 8, .shuffle = 1, .seed = 42};
    long show = 2, v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--model") && next) {
            model = argv[++i];
        } else if (!strcmp(a, "--data") && next) {
            data = argv[++i];
        } else if (!strcmp(a, "--template") && next) {
            dopt.template_name = argv[++i];
        } else if (!strcmp(a, "--system") && next) {
            system = argv[++i];
        } else if (!strcmp(a, "--format") && next) {
            const char *f = argv[++i];
            if (!strcmp(f, "auto"))
                dopt.format = DATA_FORMAT_AUTO;
            else if (!strcmp(f, "alpaca"))
                dopt.format = DATA_FORMAT_ALPACA;
            else if (!strcmp(f, "sharegpt"))
                dopt.format = DATA_FORMAT_SHAREGPT;
            else if (!strcmp(f, "tokenized"))
                dopt.format = DATA_FORMAT_TOKENIZED;
            else {
                fprintf(stderr, "badam tokenize: unknown --format '%s'\n", f);
                return 2;
            }
        } else if (!strcmp(a, "--seq-len")) {
            if (parse_long(a, next, 0, &v)) return 2;
            dopt.seq_len = (int)(v > 1 << 30 ? 1 << 30 : v);
            i++;
        } else if (!strcmp(a, "--batch-size")) {
            if (parse_long(a, next, 1, &v)) return 2;
            bopt.batch_size = (int)(v > 1 << 20 ? 1 << 20 : v);
            i++;
        } else if (!strcmp(a, "--seed")) {
            if (parse_long(a, next, 0, &v)) return 2;
            bopt.seed = (uint64_t)v;
            i++;
        } else if (!strcmp(a, "--show")) {
            if (parse_long(a, next, 0, &show)) return 2;
            i++;
        } else if (!strcmp(a, "--pack")) {
            bopt.pack = 1;
        } else if (!strcmp(a, "--group-by-length")) {
            bopt.group_by_length = 1;
        } else {
            fprintf(stderr, "badam tokenize: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!data) {
        fprintf(stderr, "badam tokenize: --data FILE is required here\n");
        usage(stderr);
        return 2;
    }
    bopt.seq_len = dopt.seq_len;
    if (bopt.pack && bopt.seq_len < 1) {
        fprintf(stderr, "badam tokenize: --pack needs --seq-len > 0\n");
        return 2;
    }
    if (!template_known(dopt.template_name)) {
        fprintf(stderr,
                "badam tokenize: unknown template '%s' (default, alpaca, llama2, llama3, chatml, "
                "mistral)\n",
                dopt.template_name);
        return 2;
    }
    dopt.system_prompt = system;

    badam_error err = {0};
    badam_tokenizer *tok = NULL;
    if (model && tokenizer_load(model, &tok, &err) != BADAM_OK) {
        fprintf(stderr, "badam tokenize: %s\n", err.message);
        return 1;
    }
    data_set *ds = NULL;
    if (data_load(data, tok, &dopt, &ds, &err) != BADAM_OK) {
        fprintf(stderr, "badam tokenize: %s\n", err.message);
        if (!tok && !model) fprintf(stderr, "(chat data needs --model DIR for its tokenizer)\n");
        tokenizer_free(tok);
        return 1;
    }
    const data_stats *s = &ds->stats;
    size_t longest = 0;
    for (size_t i = 0; i < ds->n; i++)
        if (ds->examples[i].len > longest) longest = ds->examples[i].len;
    char a[32], b[32];
    printf("data: %s\n", data);
    printf("  template         %s%s\n", dopt.template_name,
           system ? (system[0] ? "   (custom system prompt)" : "   (no system prompt)") : "");
    if (dopt.seq_len > 0)
        printf("  seq_len          %d\n", dopt.seq_len);
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

    batcher *bt = NULL;
    if (batcher_create(ds, &bopt, &bt, &err) != BADAM_OK) {
        fprintf(stderr, "badam tokenize: %s\n", err.message);
    } else {
        size_t nb = batcher_batches_per_epoch(bt), cells = 0;
        for (size_t k = 0; k < nb; k++) {
            data_batch x;
            batcher_next(bt, &x);
            cells += (size_t)x.B * (size_t)x.T;
        }
        size_t real = 0;
        for (size_t i = 0; i < ds->n; i++) {
            size_t L = ds->examples[i].len;
            real += bopt.seq_len > 0 && L > (size_t)bopt.seq_len ? (size_t)bopt.seq_len : L;
        }
        printf("batching: batch size %d, shuffled (seed %llu)%s%s\n", bopt.batch_size,
               (unsigned long long)bopt.seed,
               bopt.group_by_length && !bopt.pack ? ", grouped by length" : "",
               bopt.pack ? ", packed" : "");
        printf("  batches/epoch    %zu\n", nb);
        printf("  padding          %.1f%%   (%s of %s token slots)\n",
               cells ? 100.0 * (double)(cells - real) / (double)cells : 0.0,
               cli_human_count(a, cells - real), cli_human_count(b, cells));
        batcher_free(bt);
    }

    if (show > 0 && ds->n > 0) {
        int tty = isatty(fileno(stdout));
        printf("\n%s\n", tty ? "(masked text, not trained, is \033[2mdim\033[0m)"
                             : "(masked text, not trained, is shown [[like this]])");
        for (size_t i = 0; i < ds->n && i < (size_t)show; i++)
            show_example(tok, &ds->examples[i], i, tty);
    }
    data_free(ds);
    tokenizer_free(tok);
    return 0;
}
