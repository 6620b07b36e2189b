/* badam tokenize --model DIR --text STRING [--json]: the ids and tokens of one string under a
 * model's tokenizer.json (only the tokenizer files are read, no weights). With --data the
 * command is the dataset report of cmd_tokenize_data.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/json.h"

#include "badam/tokenizer.h"
#include "cli.h"

int cmd_tokenize_data(int argc, char **argv);

static void usage(FILE *out) {
    fprintf(out,
            "usage: badam tokenize --model DIR --text STRING [--json] [--no-special]\n"
            "       badam tokenize --data FILE [--model DIR] [options]   (see --data --help)\n"
            "\n"
            "Encodes STRING with the tokenizer in DIR (tokenizer.json, and tokenizer_config.json\n"
            "when present; no weights needed) and prints each token id with its vocabulary\n"
            "string, one per line.\n"
            "\n"
            "options:\n"
            "  --model DIR     folder holding tokenizer.json (or the tokenizer.json itself)\n"
            "  --text STRING   the text to encode (UTF-8; invalid bytes become U+FFFD)\n"
            "  --json          print one JSON object {\"ids\": [...], \"tokens\": [...]}\n"
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

static int print_json(const badam_tokenizer *tok, const int32_t *ids, size_t n) {
    json_t *root = json_object(), *jids = json_array(), *jtoks = json_array();
    if (!root || !jids || !jtoks || json_object_set(root, "ids", jids) ||
        json_object_set(root, "tokens", jtoks)) {
        json_decref(root), json_decref(jids), json_decref(jtoks);
        fprintf(stderr, "badam tokenize: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *t = tokenizer_id_to_token_n(tok, ids[i], &len);
        json_array_append_new(jids, json_integer(ids[i]));
        /* a token may hold U+0000 or be part of a character (invalid UTF-8 alone): null then */
        json_t *jt = t ? json_stringn(t, len) : NULL;
        json_array_append_new(jtoks, jt ? jt : json_null());
    }
    char *s = io_json_dump(root, 0, NULL);
    json_decref(jids), json_decref(jtoks), json_decref(root);
    if (!s) {
        fprintf(stderr, "badam tokenize: out of memory\n");
        return 1;
    }
    puts(s);
    free(s);
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--data")) return cmd_tokenize_data(argc, argv);
    const char *model = NULL, *text = NULL;
    int json = 0, special = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--no-special")) {
            special = 0;
        } else if (!strcmp(a, "--model") || !strcmp(a, "--text")) {
            const char *next = i + 1 < argc ? argv[i + 1] : NULL;
            if (!next || !strcmp(next, "-h") || !strcmp(next, "--help") ||
                !strcmp(next, "--model") || !strcmp(next, "--text") || !strcmp(next, "--json") ||
                !strcmp(next, "--no-special")) {
                fprintf(stderr, "badam tokenize: %s needs a value%s%s%s\n", a,
                        next ? ", but the next argument is the option '" : "", next ? next : "",
                        next ? "'" : "");
                return 2;
            }
            if (!strcmp(a, "--model"))
                model = argv[++i];
            else
                text = argv[++i];
        } else {
            fprintf(stderr, "badam tokenize: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model || !text) {
        fprintf(stderr, "badam tokenize: %s is required\n\n",
                !model ? "--model DIR" : "--text STRING");
        usage(stderr);
        return 2;
    }
    badam_tokenizer *tok = NULL;
    badam_error err = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    if (tokenizer_load(model, &tok, &err) ||
        tokenizer_encode(tok, text, strlen(text), special, &ids, &n, &err)) {
        fprintf(stderr, "badam tokenize: %s\n", err.message);
        tokenizer_free(tok);
        return 1;
    }
    int rc = 0;
    if (json) {
        rc = print_json(tok, ids, n);
    } else {
        printf("%zu tokens\n", n);
        for (size_t i = 0; i < n; i++) {
            const char *t = tokenizer_id_to_token(tok, ids[i]);
            printf("%8d  ", ids[i]);
            print_token(t ? t : "?");
            putchar('\n');
        }
    }
    free(ids);
    tokenizer_free(tok);
    return rc;
}
