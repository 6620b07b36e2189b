/* Every character of a JSON string reaches the tokenizer (issue 14, item 3): U+0000, other
 * control characters and escaped surrogate pairs in every string field of every data format
 * (Alpaca .json and .jsonl, ShareGPT conversations/from/value and messages/role/content, with a
 * system text and history), in tokenizer.json vocabularies, merges and added tokens, and in
 * config.json; a lone escaped surrogate is an error naming the file and the byte.
 *
 * The reference is @huggingface/tokenizers on node (tests/tokenizer/encode.mjs, the same texts
 * decoded by node's JSON.parse): a dataset example must be the ids it gives for the texts the
 * template joins (template.c's documented "default" layout), with nothing after a NUL lost, for a
 * byte-level tokenizer (U+0000 is the byte-level character U+0100) and a SentencePiece one with
 * byte fallback (U+0000 is <0x00>). Also the writer (io_json_dump): reals read back bit for bit
 * in the fewest digits, strings with U+0000 escaped. Skips (77) without node and the npm
 * packages (scripts/setup.sh installs them). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "badam/data.h"
#include "badam/llama.h"
#include "badam/tokenizer.h"
#include "io/files.h"
#include "io/json_write.h"
#include "testutil.h"
#include "text/data_internal.h"

static char src_dir[2048];

/* A field's text as written in the data file (JSON escapes): a NUL with text after it, other
 * control characters, DEL, and a surrogate pair (U+1F600). */
#define HARD(tag)                                                                                  \
    tag " before\\u0000after the NUL \\u0001\\u001f\\t\\n\\u007f x\\ud83d\\ude00 continues"

/* The bytes a JSON string literal stands for (decoded by Jansson), malloc'd, length in *n. */
static char *decoded(const char *json_literal, size_t *n) {
    json_t *s = json_loads(json_literal, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!json_is_string(s)) {
        json_decref(s);
        *n = 0;
        return NULL;
    }
    *n = json_string_length(s);
    char *out = malloc(*n + 1);
    memcpy(out, json_string_value(s), *n + 1);
    json_decref(s);
    return out;
}

/* ---------------------------------------------------------------- reference ids from node */

typedef struct text_list {
    json_t *texts; /* strings sent to encode.mjs */
    json_t *ids;   /* its answer: one id list per text */
} text_list;

/* Adds a text (n bytes) and returns its index. */
static size_t add_text(text_list *l, const char *s, size_t n) {
    json_array_append_new(l->texts, json_stringn(s, n));
    return json_array_size(l->texts) - 1;
}

static size_t add_joined(text_list *l, const char *a, const char *b, size_t bn, const char *c) {
    size_t na = strlen(a), nc = strlen(c);
    char *s = malloc(na + bn + nc);
    memcpy(s, a, na);
    memcpy(s + na, b, bn);
    memcpy(s + na + bn, c, nc);
    size_t k = add_text(l, s, na + bn + nc);
    free(s);
    return k;
}

static int run_node(const char *tokdir, const char *dir, text_list *l) {
    char path[4096], cmd[16384];
    badam_error err = {0};
    snprintf(path, sizeof path, "%s/texts.json", dir);
    if (io_json_write_file(path, l->texts, 0, &err) != BADAM_OK) return -1;
    snprintf(cmd, sizeof cmd, "cd '%s/tests/tokenizer' && node encode.mjs '%s' '%s' '%s/ids.json'",
             src_dir, tokdir, path, dir);
    if (test_system(cmd) != 0) return -1;
    snprintf(path, sizeof path, "%s/ids.json", dir);
    if (io_read_json(path, &l->ids, &err) != BADAM_OK) return -1;
    return json_array_size(l->ids) == json_array_size(l->texts) ? 0 : -1;
}

/* Appends the reference ids of text k to the expected sequence. */
static void expect_text(token_seq *want, const text_list *l, size_t k, int trained) {
    const json_t *a = json_array_get(l->ids, k), *v;
    size_t i;
    json_array_foreach(a, i, v) {
        badam_error err;
        token_seq_push(want, (int32_t)json_integer_value(v), trained, &err);
    }
}

static void expect_id(token_seq *want, int32_t id, int trained) {
    badam_error err;
    if (id >= 0) token_seq_push(want, id, trained, &err);
}

static int same_seq(const token_seq *a, const token_seq *b) {
    return a->len == b->len && !memcmp(a->ids, b->ids, a->len * sizeof *a->ids) &&
           !memcmp(a->trained, b->trained, a->len);
}

static void print_seq(const char *what, const token_seq *s) {
    fprintf(stderr, "    %s (%zu):", what, s->len);
    for (size_t i = 0; i < s->len && i < 80; i++)
        fprintf(stderr, " %d%s", s->ids[i], s->trained[i] ? "*" : "");
    fputc('\n', stderr);
}

/* ---------------------------------------------------------------- datasets */

/* The fields of one conversation: system, then (query, response) pairs. */
enum { F_SYSTEM, F_Q0, F_A0, F_Q1, F_INPUT, F_A1, N_FIELDS };
static const char *const FIELD_JSON[N_FIELDS] = {"\"" HARD("system") "\"", "\"" HARD("q0") "\"",
                                                 "\"" HARD("a0") "\"",     "\"" HARD("q1") "\"",
                                                 "\"" HARD("input") "\"",  "\"" HARD("a1") "\""};

typedef struct conversation {
    char *text[N_FIELDS];
    size_t len[N_FIELDS];
    char *query1; /* q1 "\n" input: the Alpaca user message */
    size_t query1_len;
} conversation;

static void conversation_init(conversation *c) {
    for (int f = 0; f < N_FIELDS; f++) c->text[f] = decoded(FIELD_JSON[f], &c->len[f]);
    c->query1_len = c->len[F_Q1] + 1 + c->len[F_INPUT];
    c->query1 = malloc(c->query1_len);
    memcpy(c->query1, c->text[F_Q1], c->len[F_Q1]);
    c->query1[c->len[F_Q1]] = '\n';
    memcpy(c->query1 + c->len[F_Q1] + 1, c->text[F_INPUT], c->len[F_INPUT]);
}

static void conversation_free(conversation *c) {
    for (int f = 0; f < N_FIELDS; f++) free(c->text[f]);
    free(c->query1);
}

/* Indices of the texts the "default" template tokenizes, in order (template.c):
 *   BOS system "\n" | "Human: " q0 "\nAssistant: " | a0* EOS* |
 *   "\n" BOS | "Human: " q1 "\nAssistant: " | a1* EOS*   (* trained) */
typedef struct layout {
    size_t system, newline, user0, a0, user1, a1;
} layout;

static layout add_layout(text_list *l, const conversation *c, int alpaca) {
    layout y;
    y.system = add_text(l, c->text[F_SYSTEM], c->len[F_SYSTEM]);
    y.newline = add_text(l, "\n", 1);
    y.user0 = add_joined(l, "Human: ", c->text[F_Q0], c->len[F_Q0], "\nAssistant: ");
    y.a0 = add_text(l, c->text[F_A0], c->len[F_A0]);
    y.user1 = alpaca ? add_joined(l, "Human: ", c->query1, c->query1_len, "\nAssistant: ")
                     : add_joined(l, "Human: ", c->text[F_Q1], c->len[F_Q1], "\nAssistant: ");
    y.a1 = add_text(l, c->text[F_A1], c->len[F_A1]);
    return y;
}

static void expected_example(const badam_tokenizer *tok, const text_list *l, const layout *y,
                             token_seq *want) {
    int32_t bos = tokenizer_bos_id(tok), eos = tokenizer_eos_id(tok);
    want->len = 0;
    expect_id(want, bos, 0);
    expect_text(want, l, y->system, 0);
    expect_text(want, l, y->newline, 0);
    expect_text(want, l, y->user0, 0);
    expect_text(want, l, y->a0, 1);
    expect_id(want, eos, 1);
    expect_text(want, l, y->newline, 0);
    expect_id(want, bos, 0);
    expect_text(want, l, y->user1, 0);
    expect_text(want, l, y->a1, 1);
    expect_id(want, eos, 1);
    if (want->len) want->trained[0] = 0;
}

/* A data file of each format holding the conversation (twice in the .json forms). */
static void write_data_files(const char *dir) {
    const char *const *F = FIELD_JSON;
    char rec[8192], path[4096];
    /* Alpaca: history [[q0, a0]], instruction q1, input, output a1, system */
    snprintf(rec, sizeof rec,
             "{\"instruction\": %s, \"input\": %s, \"output\": %s, \"system\": %s, "
             "\"history\": [[%s, %s]]}",
             F[F_Q1], F[F_INPUT], F[F_A1], F[F_SYSTEM], F[F_Q0], F[F_A0]);
    char text[20000];
    snprintf(text, sizeof text, "[%s,\n%s]\n", rec, rec);
    snprintf(path, sizeof path, "%s/alpaca.json", dir);
    test_write_raw(path, text, strlen(text));
    snprintf(text, sizeof text, "%s\n", rec);
    snprintf(path, sizeof path, "%s/alpaca.jsonl", dir);
    test_write_raw(path, text, strlen(text));
    /* ShareGPT: conversations with from/value, system field */
    snprintf(rec, sizeof rec,
             "{\"system\": %s, \"conversations\": [{\"from\": \"human\", \"value\": %s}, "
             "{\"from\": \"gpt\", \"value\": %s}, {\"from\": \"human\", \"value\": %s}, "
             "{\"from\": \"gpt\", \"value\": %s}]}",
             F[F_SYSTEM], F[F_Q0], F[F_A0], F[F_Q1], F[F_A1]);
    snprintf(text, sizeof text, "[%s,\n%s]\n", rec, rec);
    snprintf(path, sizeof path, "%s/sharegpt.json", dir);
    test_write_raw(path, text, strlen(text));
    /* ShareGPT: messages with role/content, a system message first */
    snprintf(rec, sizeof rec,
             "{\"messages\": [{\"role\": \"system\", \"content\": %s}, {\"role\": \"user\", "
             "\"content\": %s}, {\"role\": \"assistant\", \"content\": %s}, {\"role\": "
             "\"user\", \"content\": %s}, {\"role\": \"assistant\", \"content\": %s}]}",
             F[F_SYSTEM], F[F_Q0], F[F_A0], F[F_Q1], F[F_A1]);
    snprintf(text, sizeof text, "%s\n", rec);
    snprintf(path, sizeof path, "%s/messages.jsonl", dir);
    test_write_raw(path, text, strlen(text));
}

static void check_dataset(const char *dir, const char *name, const badam_tokenizer *tok,
                          const token_seq *want, const char *model) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    data_options o = {.template_name = "default"};
    data_set *ds = NULL;
    badam_error err = {0};
    if (data_load(path, tok, &o, &ds, &err) != BADAM_OK) {
        CHECKF(0, "%s/%s: %s", model, name, err.message);
        return;
    }
    for (size_t i = 0; i < ds->n; i++) {
        int same = same_seq(&ds->examples[i], want);
        CHECKF(same, "%s/%s: example %zu is not @huggingface/tokenizers' ids", model, name, i);
        if (!same) {
            print_seq("ours", &ds->examples[i]);
            print_seq("want", want);
        }
    }
    data_free(ds);
}

static size_t count_nul(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == '\0';
    return k;
}

/* Our encode of every text equals the reference, and decodes back to every byte of it (exact:
 * where no added token is decoded, whose surrounding spaces SentencePiece decoding changes; else
 * every U+0000 and the text's end survive). */
static void check_encode(const badam_tokenizer *tok, const text_list *l, const char *model,
                         int exact) {
    for (size_t k = 0; k < json_array_size(l->texts); k++) {
        const json_t *t = json_array_get(l->texts, k), *ref = json_array_get(l->ids, k);
        int32_t *ids = NULL;
        size_t n = 0;
        badam_error err = {0};
        if (tokenizer_encode(tok, json_string_value(t), json_string_length(t), 0, &ids, &n, &err) !=
            BADAM_OK) {
            CHECKF(0, "%s: text %zu: %s", model, k, err.message);
            continue;
        }
        int same = n == json_array_size(ref);
        for (size_t i = 0; same && i < n; i++)
            same = json_integer_value(json_array_get(ref, i)) == ids[i];
        CHECKF(same, "%s: text %zu: tokenizer_encode differs from @huggingface/tokenizers", model,
               k);
        char *back = NULL;
        size_t back_len = 0;
        if (tokenizer_decode(tok, ids, n, 0, &back, &back_len, &err) == BADAM_OK) {
            const char *s = json_string_value(t);
            size_t sn = json_string_length(t);
            /* SentencePiece decoding drops the "▁" its normalizer put first: a leading space */
            int ok = exact ? back_len == sn && !memcmp(back, s, sn)
                           : count_nul(back, back_len) == count_nul(s, sn) && back_len && sn &&
                                 back[back_len - 1] == s[sn - 1];
            CHECKF(ok, "%s: text %zu does not decode back to all its %zu bytes (%zu)", model, k, sn,
                   back_len);
        }
        free(back);
        free(ids);
    }
}

/* One tokenizer folder: the reference ids, then every data format. */
static void check_tokenizer_data(const char *tokdir, const char *model) {
    char dir[2048];
    snprintf(dir, sizeof dir, "%s", test_workdir(model));
    badam_error err = {0};
    badam_tokenizer *tok = NULL;
    CHECK_OK(tokenizer_load(tokdir, &tok, &err), &err);
    conversation c;
    conversation_init(&c);
    text_list l = {json_array(), NULL};
    layout alpaca = add_layout(&l, &c, 1), sharegpt = add_layout(&l, &c, 0);
    if (run_node(tokdir, dir, &l) != 0) {
        CHECKF(0, "%s: encode.mjs failed", model);
    } else {
        check_encode(tok, &l, model, 1);
        /* the reference itself keeps what follows the NUL: "continues" is encoded after it */
        token_seq want = {0};
        write_data_files(dir);
        expected_example(tok, &l, &alpaca, &want);
        check_dataset(dir, "alpaca.json", tok, &want, model);
        check_dataset(dir, "alpaca.jsonl", tok, &want, model);
        expected_example(tok, &l, &sharegpt, &want);
        check_dataset(dir, "sharegpt.json", tok, &want, model);
        check_dataset(dir, "messages.jsonl", tok, &want, model);
        token_seq_free(&want);
    }
    json_decref(l.texts);
    json_decref(l.ids);
    conversation_free(&c);
    tokenizer_free(tok);
}

/* The SentencePiece fixture with a tokenizer_config.json naming BOS and EOS (the template needs
 * an EOS); node reads the same folder. */
static const char *sentencepiece_dir(void) {
    static char dir[2048];
    char src[4096], *text = NULL;
    size_t n = 0;
    badam_error err;
    snprintf(dir, sizeof dir, "%s", test_workdir("json_strings_sp"));
    snprintf(src, sizeof src, "%s/tests/tokenizer/fixtures/sentencepiece/tokenizer.json", src_dir);
    if (io_read_file(src, &text, &n, &err) != BADAM_OK) return NULL;
    test_write_raw(test_path_in(dir, "tokenizer.json"), text, n);
    free(text);
    const char *cfg = "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";
    test_write_raw(test_path_in(dir, "tokenizer_config.json"), cfg, strlen(cfg));
    return dir;
}

static void test_data_formats(void) {
    char bytelevel[2560];
    snprintf(bytelevel, sizeof bytelevel, "%s/tests/tokenizer/fixtures/bytelevel", src_dir);
    check_tokenizer_data(bytelevel, "json_strings_bytelevel");
    const char *sp = sentencepiece_dir();
    CHECK(sp != NULL);
    if (sp) check_tokenizer_data(sp, "json_strings_sentencepiece");
}

/* Pre-tokenized records: ids are numbers (written as integers or whole reals), other string
 * fields may hold anything; the ids are the reference's encode of a text with a NUL. */
static void test_tokenized_format(void) {
    const char *sp = sentencepiece_dir();
    if (!sp) return;
    badam_error err = {0};
    badam_tokenizer *tok = NULL;
    CHECK_OK(tokenizer_load(sp, &tok, &err), &err);
    size_t n = 0;
    char *a1 = decoded("\"" HARD("a1") "\"", &n);
    text_list l = {json_array(), NULL};
    add_text(&l, a1, n);
    char dir[2048];
    snprintf(dir, sizeof dir, "%s", test_workdir("json_strings_tokenized"));
    if (run_node(sp, dir, &l) != 0) {
        CHECKF(0, "tokenized: encode.mjs failed");
    } else {
        json_t *rec = json_object();
        json_object_set(rec, "input_ids", json_array_get(l.ids, 0));
        json_object_set_new(rec, "text", json_stringn(a1, n));
        char *line = io_json_dump(rec, 0, NULL);
        json_decref(rec);
        char *path = test_path_in(dir, "tokenized.jsonl");
        test_write_raw(path, line, strlen(line));
        free(line);
        data_options o = {.format = DATA_FORMAT_TOKENIZED};
        data_set *ds = NULL;
        if (data_load(path, tok, &o, &ds, &err) != BADAM_OK) {
            CHECKF(0, "tokenized: %s", err.message);
        } else {
            const json_t *ids = json_array_get(l.ids, 0);
            int same = ds->n == 1 && ds->examples[0].len == json_array_size(ids);
            for (size_t i = 0; same && i < ds->examples[0].len; i++)
                same = ds->examples[0].ids[i] == json_integer_value(json_array_get(ids, i)) &&
                       ds->examples[0].trained[i] == (i > 0);
            CHECKF(same, "tokenized: the record's ids are not what was written");
            data_free(ds);
        }
    }
    free(a1);
    json_decref(l.texts);
    json_decref(l.ids);
    tokenizer_free(tok);
}

/* A role holding U+0000 is not that role; a lone escaped surrogate is no text: both errors name
 * the file and where. */
static void test_bad_strings(void) {
    badam_error err = {0};
    badam_tokenizer *tok = NULL;
    char bytelevel[2560];
    snprintf(bytelevel, sizeof bytelevel, "%s/tests/tokenizer/fixtures/bytelevel", src_dir);
    CHECK_OK(tokenizer_load(bytelevel, &tok, &err), &err);
    char dir[2048];
    snprintf(dir, sizeof dir, "%s", test_workdir("json_strings_bad"));
    struct {
        const char *name, *text, *mention;
    } cases[] = {
        {"role.jsonl",
         "{\"conversations\": [{\"from\": \"human\\u0000\", \"value\": \"q\"}, {\"from\": "
         "\"gpt\", \"value\": \"a\"}]}\n",
         "not supported"},
        /* the offset of the string that holds it */
        {"surrogate.jsonl", "{\"instruction\": \"q\", \"output\": \"x\\ud800y\"}\n", "byte 31"},
        {"low_surrogate.json", "[{\"instruction\": \"q\", \"output\": \"\\udc00\"}]", "byte 32"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = test_path_in(dir, cases[i].name);
        test_write_raw(path, cases[i].text, strlen(cases[i].text));
        data_set *ds = NULL;
        badam_status st = data_load(path, tok, NULL, &ds, &err);
        CHECKF(st != BADAM_OK, "%s: loaded", cases[i].name);
        CHECKF(
            st == BADAM_OK || (strstr(err.message, path) && strstr(err.message, cases[i].mention)),
            "%s: message lacks the file or '%s': %s", cases[i].name, cases[i].mention, err.message);
        data_free(ds);
    }
    tokenizer_free(tok);
}

/* ---------------------------------------------------------------- tokenizer.json */

/* The SentencePiece fixture plus a vocabulary entry "\u0000", a token "\u0000e" made by the merge
 * "\u0000 e", and an added token "<nul\u0000tok>": loaded, encoded and decoded as node does. */
static void test_tokenizer_nul_tokens(void) {
    const char *sp = sentencepiece_dir();
    if (!sp) return;
    badam_error err = {0};
    json_t *tj = NULL;
    CHECK_OK(io_read_json(test_path_in(sp, "tokenizer.json"), &tj, &err), &err);
    json_t *model = json_object_get(tj, "model"), *vocab = json_object_get(model, "vocab");
    json_t *added = json_object_get(tj, "added_tokens");
    int32_t nul = 0;
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) if (json_integer_value(v) >= nul) nul =
        (int32_t)json_integer_value(v) + 1;
    for (size_t i = 0; i < json_array_size(added); i++) {
        int32_t id = (int32_t)json_integer_value(json_object_get(json_array_get(added, i), "id"));
        if (id >= nul) nul = id + 1;
    }
    json_object_setn_new(vocab, "\0", 1, json_integer(nul));
    json_object_setn_new(vocab, "\0e", 2, json_integer(nul + 1));
    json_array_append_new(json_object_get(model, "merges"), json_stringn("\0 e", 3));
    json_t *tok_nul = json_object();
    json_object_set_new(tok_nul, "id", json_integer(nul + 2));
    json_object_set_new(tok_nul, "content", json_stringn("<nul\0tok>", 9));
    json_object_set_new(tok_nul, "single_word", json_false());
    json_object_set_new(tok_nul, "lstrip", json_false());
    json_object_set_new(tok_nul, "rstrip", json_false());
    json_object_set_new(tok_nul, "normalized", json_false());
    json_object_set_new(tok_nul, "special", json_false());
    json_array_append_new(added, tok_nul);
    char dir[2048], run_dir[2048];
    snprintf(dir, sizeof dir, "%s", test_workdir("json_strings_nul_tokens"));
    snprintf(run_dir, sizeof run_dir, "%s", test_workdir("json_strings_nul_tokens_run"));
    CHECK_OK(io_json_write_file(test_path_in(dir, "tokenizer.json"), tj, 2, &err), &err);
    json_decref(tj);
    const char *cfg = "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";
    test_write_raw(test_path_in(dir, "tokenizer_config.json"), cfg, strlen(cfg));

    badam_tokenizer *tok = NULL;
    CHECK_OK(tokenizer_load(dir, &tok, &err), &err);
    size_t len = 0;
    const char *t = tokenizer_id_to_token_n(tok, nul, &len);
    CHECK(t && len == 1 && t[0] == '\0');
    t = tokenizer_id_to_token_n(tok, nul + 2, &len);
    CHECK(t && len == 9 && !memcmp(t, "<nul\0tok>", 9));
    CHECK(tokenizer_token_to_id_n(tok, "<nul\0tok>", 9) == nul + 2);
    CHECK(tokenizer_token_to_id_n(tok, "\0e", 2) == nul + 1);

    text_list l = {json_array(), NULL};
    add_text(&l, "h\0e l\0", 6);
    add_text(&l, "q <nul\0tok> r", 13);
    add_text(&l, "<nul\0tok>\0", 10);
    if (run_node(dir, run_dir, &l) != 0) {
        CHECKF(0, "nul tokens: encode.mjs failed");
    } else {
        check_encode(tok, &l, "nul tokens", 0);
        /* the reference uses the new tokens: the merge and the added token are exercised */
        int merged = 0, added_hit = 0;
        for (size_t k = 0; k < json_array_size(l.ids); k++) {
            const json_t *a = json_array_get(l.ids, k);
            for (size_t i = 0; i < json_array_size(a); i++) {
                json_int_t id = json_integer_value(json_array_get(a, i));
                merged |= id == nul + 1;
                added_hit |= id == nul + 2;
            }
        }
        CHECKF(merged && added_hit, "the reference did not use the \\u0000 tokens (%d %d)", merged,
               added_hit);
    }
    json_decref(l.texts);
    json_decref(l.ids);
    tokenizer_free(tok);
}

/* ---------------------------------------------------------------- config.json */

/* A config string field cannot hold U+0000 (it would compare equal to its prefix): an error
 * naming the file and field. Strings we do not read (and escaped ones we do) come back exactly in
 * the saved folder's config.json. */
static void test_config_strings(void) {
    char base[2560], text_path[4096];
    snprintf(base, sizeof base, "%s/models/tiny-llama-base", src_dir);
    badam_error err = {0};
    json_t *cfg = NULL;
    snprintf(text_path, sizeof text_path, "%s/config.json", base);
    CHECK_OK(io_read_json(text_path, &cfg, &err), &err);
    char dir[2048], model_dir[2048], out[2048];
    snprintf(dir, sizeof dir, "%s", test_workdir("json_strings_config"));
    snprintf(model_dir, sizeof model_dir, "%s", test_workdir("json_strings_model"));
    snprintf(out, sizeof out, "%s", test_workdir("json_strings_saved"));
    /* model_type "llama\u0000x" */
    json_object_set_new(cfg, "model_type", json_stringn("llama\0x", 7));
    char *bad = test_path_in(dir, "bad_config.json");
    CHECK_OK(io_json_write_file(bad, cfg, 2, &err), &err);
    llama_config c;
    badam_status st = llama_config_load(bad, &c, &err);
    CHECKF(st != BADAM_OK && strstr(err.message, bad) && strstr(err.message, "model_type"),
           "model_type with U+0000: status %d: %s", (int)st, err.message);
    /* escaped model_type, and a NUL and a surrogate pair in a field we carry along */
    json_decref(cfg);
    char *src = malloc(65536), *raw = NULL;
    size_t n = 0;
    CHECK_OK(io_read_file(text_path, &raw, &n, &err), &err);
    const char *mt = strstr(raw, "\"model_type\"");
    CHECK(mt != NULL);
    if (!mt) {
        free(src), free(raw);
        return;
    }
    const char *colon = strchr(mt, ':'), *q1 = strchr(colon, '"'), *q2 = strchr(q1 + 1, '"');
    snprintf(src, 65536,
             "%.*s\"\\u006clama\", \"_name_or_path\": \"a\\u0000b \\ud83d\\ude00\\u001f\"%s",
             (int)(q1 - raw), raw, q2 + 1);
    free(raw);
    test_write_raw(test_path_in(model_dir, "config.json"), src, strlen(src));
    free(src);
    char *st_src = NULL;
    snprintf(text_path, sizeof text_path, "%s/model.safetensors", base);
    CHECK_OK(io_read_file(text_path, &st_src, &n, &err), &err);
    test_write_raw(test_path_in(model_dir, "model.safetensors"), st_src, n);
    free(st_src);
    llama_model *m = NULL;
    CHECK_OK(llama_model_load(model_dir, BADAM_DTYPE_F32, &m, &err), &err);
    CHECK(!strcmp(m->cfg.model_type, "llama"));
    st = llama_model_save(m, model_dir, out, 0, &err);
    CHECKF(st == BADAM_OK, "save: %s", err.message);
    llama_model_free(m);
    json_t *saved = NULL;
    CHECK_OK(io_read_json(test_path_in(out, "config.json"), &saved, &err), &err);
    const json_t *name = json_object_get(saved, "_name_or_path");
    CHECKF(json_is_string(name) && json_string_length(name) == 9 &&
               !memcmp(json_string_value(name), "a\0b \xF0\x9F\x98\x80\x1f", 9),
           "_name_or_path not kept exactly (%zu bytes)", json_string_length(name));
    json_decref(saved);
}

/* ---------------------------------------------------------------- the writer */

static void test_dump_round_trip(void) {
    const double reals[] = {1e-05, 0.1 + 0.2, 1.0 / 3.0, 1e300,      -0.0,    5e-324,
                            2.0,   1e22,      0.1,       123456.789, -1.5e-7, 9007199254740993.0};
    const char *shortest[] = {"1e-05",
                              "0.30000000000000004",
                              "0.3333333333333333",
                              "1e+300",
                              "-0.0",
                              "4.94065645841247e-324",
                              "2.0",
                              "1e+22",
                              "0.1",
                              "123456.789",
                              "-1.5e-07",
                              "9007199254740992.0"};
    json_t *arr = json_array();
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++)
        json_array_append_new(arr, json_real(reals[i]));
    json_array_append_new(arr, json_integer(-9007199254740993LL));
    json_array_append_new(arr, json_stringn("a\0b\x01\x1f\t\"\\\xF0\x9F\x98\x80", 12));
    json_t *obj = json_object();
    json_object_set_new(obj, "z", json_integer(1));
    json_object_setn_new(obj, "k\0ey", 4, json_real(0.5));
    json_object_set_new(obj, "a", arr);
    json_object_set_new(obj, "empty", json_object());
    for (int indent = 0; indent <= 2; indent += 2) {
        size_t len = 0;
        char *text = io_json_dump(obj, indent, &len);
        CHECK(text && strlen(text) == len); /* U+0000 is escaped: the text holds no NUL */
        if (!text) continue;
        for (size_t i = 0; i < sizeof shortest / sizeof shortest[0]; i++)
            CHECKF(strstr(text, shortest[i]), "indent %d: %s not written as %s:\n%s", indent,
                   shortest[i], shortest[i], text);
        CHECK(strstr(text, "\"a\\u0000b\\u0001\\u001f\\t\\\"\\\\\xF0\x9F\x98\x80\""));
        CHECK(strstr(text, "\"k\\u0000ey\""));
        /* keys in insertion order */
        const char *z = strstr(text, "\"z\""), *a = strstr(text, "\"a\"");
        CHECK(z && a && z < a);
        json_t *back = io_json_loadb(text, len, 0, NULL); /* a key with U+0000 included */
        /* (json_equal looks keys up as C strings: the U+0000 key is compared here) */
        const json_t *ba = json_object_get(back, "a");
        CHECKF(json_equal(ba, arr) && json_integer_value(json_object_get(back, "z")) == 1 &&
                   json_object_size(back) == 4 &&
                   json_real_value(json_object_getn(back, "k\0ey", 4)) == 0.5,
               "indent %d: does not read back equal", indent);
        for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
            double got = json_real_value(json_array_get(ba, i));
            CHECKF(json_is_real(json_array_get(ba, i)) && !memcmp(&got, &reals[i], sizeof got),
                   "indent %d: %.17g read back as %.17g", indent, reals[i], got);
        }
        json_decref(back);
        free(text);
    }
    json_decref(obj);
    /* a float is written as its shortest decimal (1e-5f, not 9.9999997473787516e-06) */
    json_t *f = io_json_real_float(1e-5f);
    char *ft = io_json_dump(f, 0, NULL);
    CHECKF(ft && !strcmp(ft, "1e-05"), "1e-5f written as %s", ft ? ft : "(null)");
    free(ft);
    json_decref(f);
}

int main(void) {
    const char *s = getenv("BADAM_SOURCE_DIR");
    if (!s) {
        fprintf(stderr, "SKIP: BADAM_SOURCE_DIR is not set\n");
        return TEST_SKIP_CODE;
    }
    snprintf(src_dir, sizeof src_dir, "%s", s);
    RUN_TEST(test_dump_round_trip);
    RUN_TEST(test_bad_strings);
    RUN_TEST(test_config_strings);
    char probe[4096];
    snprintf(probe, sizeof probe,
             "%s/tests/tokenizer/node_modules/@huggingface/tokenizers/package.json", src_dir);
    if (!io_is_file(probe) || test_system("node --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIP (the rest): needs node and tests/tokenizer/node_modules "
                        "(bash scripts/setup.sh)\n");
        return test_failures ? test_result() : TEST_SKIP_CODE;
    }
    RUN_TEST(test_data_formats);
    RUN_TEST(test_tokenized_format);
    RUN_TEST(test_tokenizer_nul_tokens);
    return test_result();
}
