/* badam tokenize --model DIR --text STRING [--pair STRING] [--json]: the ids and tokens of one
 * string, or of a text pair with its type ids, under a model's tokenizer.json (only the
 * tokenizer files are read, no weights). With --data the command is the dataset report of
 * cmd_tokenize_data.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/json.h"

#include "badam/tokenizer.h"
#include "cli.h"

int cmd_tokenize_data(int argc, char **argv);

static void usage(FILE *out) {
    fprintf(out,
            "usage: badam tokenize --model DIR --text STRING [--pair STRING] [--json]\n"
            "                      [--no-special] [--max-length N]\n"
            "       badam tokenize --data FILE [--model DIR] [options]   (see --data --help)\n"
            "\n"
            "Encodes STRING with the tokenizer in DIR (tokenizer.json, and tokenizer_config.json\n"
            "when present; no weights needed) and prints each token id with its vocabulary\n"
            "string, one per line. With --pair, encodes the text pair as the post-processor\n"
            "does (BERT: [CLS] A [SEP] B [SEP]; RoBERTa: <s> A </s></s> B </s>) and prints each\n"
            "token's type id (segment) too.\n"
            "\n"
            "options:\n"
            "  --model DIR     folder holding tokenizer.json (or the tokenizer.json itself)\n"
            "  --text STRING   the text to encode (UTF-8; invalid bytes become U+FFFD)\n"
            "  --pair STRING   a second text: encode the pair (text, pair)\n"
            "  --max-length N  truncate to N tokens, special tokens included (a pair:\n"
            "                  longest_first, the longer text loses tokens first); prints type\n"
            "                  ids as --pair does\n"
            "  --json          print one JSON object {\"ids\": [...], \"tokens\": [...]}; with\n"
            "                  --pair or --max-length also \"type_ids\" and \"attention_mask\"\n"
            "  --no-special    do not add the post-processor's special tokens (BOS/EOS)\n"
            "  -h, --help      this help\n");
}

/* Prints a token with control characters and backslashes escaped. */
static void print_token(const char *t) {
    for (const unsigned char *p = (const unsigned char *)t; *p; p++) {
        if (*p == '\n')
            fputs("\\n", stdout);
        else if (*p == '\t')
            fputs("\\t", stdout);
        else if (*p == '\r')
            fputs("\\r", stdout);
        else if (*p == '\\')
            fputs("\\\\", stdout);
        else if (*p < 0x20 || *p == 0x7F)
            printf("\\x%02X", *p);
        else
            putchar(*p);
    }
}

/* Appends n integers (ids or type ids) or mask bytes to arr. */
static void append_ints(json_t *arr, const int32_t *v, const uint8_t *m, size_t n) {
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, json_integer(v ? v[i] : m[i]));
}

/* {"ids", "tokens"} and, for a pair encoding (e not NULL), "type_ids" and "attention_mask". */
static int print_json(const badam_tokenizer *tok, const int32_t *ids, size_t n,
                      const tokenizer_encoding *e) {
    json_t *root = json_object(), *jids = json_array(), *jtoks = json_array();
    json_t *jtypes = e ? json_array() : NULL, *jmask = e ? json_array() : NULL;
    if (!root || !jids || !jtoks || json_object_set(root, "ids", jids) ||
        json_object_set(root, "tokens", jtoks) ||
        (e && (!jtypes || !jmask || json_object_set(root, "type_ids", jtypes) ||
               json_object_set(root, "attention_mask", jmask)))) {
        json_decref(root), json_decref(jids), json_decref(jtoks);
        json_decref(jtypes), json_decref(jmask);
        fprintf(stderr, "badam tokenize: out of memory\n");
        return 1;
    }
    append_ints(jids, ids, NULL, n);
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *t = tokenizer_id_to_token_n(tok, ids[i], &len);
        /* a token may hold U+0000 or be part of a character (invalid UTF-8 alone): null then */
        json_t *jt = t ? json_stringn(t, len) : NULL;
        json_array_append_new(jtoks, jt ? jt : json_null());
    }
    if (e) {
        append_ints(jtypes, e->type_ids, NULL, n);
        append_ints(jmask, NULL, e->attention_mask, n);
    }
    char *s = io_json_dump(root, 0, NULL);
    json_decref(jids), json_decref(jtoks), json_decref(jtypes), json_decref(jmask);
    json_decref(root);
    if (!s) {
        fprintf(stderr, "badam tokenize: out of memory\n");
        return 1;
    }
    puts(s);
    free(s);
    return 0;
}

/* One line per token: id, (type id,) token string. */
static void print_lines(const badam_tokenizer *tok, const int32_t *ids, size_t n,
                        const tokenizer_encoding *e) {
    if (e)
        printf("%zu tokens (text %zu, pair %zu, special %zu)\n", n, e->n_first, e->n_second,
               n - e->n_first - e->n_second);
    else
        printf("%zu tokens\n", n);
    for (size_t i = 0; i < n; i++) {
        const char *t = tokenizer_id_to_token(tok, ids[i]);
        printf("%8d  ", ids[i]);
        if (e) printf("%d  ", e->type_ids[i]);
        print_token(t ? t : "?");
        putchar('\n');
    }
}

typedef struct tokenize_args {
    const char *model, *text, *pair;
    long max_length; /* 0: none */
    int json, special;
} tokenize_args;

static int takes_value(const char *a) {
    return !strcmp(a, "--model") || !strcmp(a, "--text") || !strcmp(a, "--pair") ||
           !strcmp(a, "--max-length");
}

/* 0 when parsed, 1 after --help, 2 on a usage error. */
static int parse_args(int argc, char **argv, tokenize_args *a) {
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(o, "--json")) {
            a->json = 1;
        } else if (!strcmp(o, "--no-special")) {
            a->special = 0;
        } else if (takes_value(o)) {
            const char *next = i + 1 < argc ? argv[i + 1] : NULL;
            if (!next || !strcmp(next, "-h") || !strcmp(next, "--help") || takes_value(next) ||
                !strcmp(next, "--json") || !strcmp(next, "--no-special")) {
                fprintf(stderr, "badam tokenize: %s needs a value%s%s%s\n", o,
                        next ? ", but the next argument is the option '" : "", next ? next : "",
                        next ? "'" : "");
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(o, "--model")) {
                a->model = v;
            } else if (!strcmp(o, "--text")) {
                a->text = v;
            } else if (!strcmp(o, "--pair")) {
                a->pair = v;
            } else {
                char *end = NULL;
                a->max_length = strtol(v, &end, 10);
                if (!*v || *end || a->max_length <= 0) {
                    fprintf(stderr,
                            "badam tokenize: --max-length: expected a count > 0, got "
                            "'%s'\n",
                            v);
                    return 2;
                }
            }
        } else {
            fprintf(stderr, "badam tokenize: unknown option '%s'\n\n", o);
            usage(stderr);
            return 2;
        }
    }
    if (!a->model || !a->text) {
        fprintf(stderr, "badam tokenize: %s is required\n\n",
                !a->model ? "--model DIR" : "--text STRING");
        usage(stderr);
        return 2;
    }
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--data")) return cmd_tokenize_data(argc, argv);
    tokenize_args a = {.special = 1};
    int prc = parse_args(argc, argv, &a);
    if (prc) return prc == 1 ? 0 : prc;
    badam_tokenizer *tok = NULL;
    badam_error err = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    tokenizer_encoding e = {0};
    int pair = a.pair || a.max_length;
    badam_status st = tokenizer_load(a.model, &tok, &err);
    if (!st && pair) {
        st = tokenizer_encode_pair(tok, a.text, strlen(a.text), a.pair, a.pair ? strlen(a.pair) : 0,
                                   a.special, (size_t)a.max_length, &e, &err);
        ids = e.ids;
        n = e.n;
    } else if (!st) {
        st = tokenizer_encode(tok, a.text, strlen(a.text), a.special, &ids, &n, &err);
    }
    if (st) {
        fprintf(stderr, "badam tokenize: %s\n", err.message);
        tokenizer_free(tok);
        return 1;
    }
    int rc = 0;
    if (a.json)
        rc = print_json(tok, ids, n, pair ? &e : NULL);
    else
        print_lines(tok, ids, n, pair ? &e : NULL);
    if (pair)
        tokenizer_encoding_free(&e);
    else
        free(ids);
    tokenizer_free(tok);
    return rc;
}
