/* Encoder tokenizers: WordPiece (BERT), RobertaProcessing, text pairs, type ids, truncation.
 *
 * Parity with tokenizers.js (@huggingface/tokenizers) through tests/tokenizer/reference_pairs.mjs
 * on ../shared/data/tokenizers/bert-base-uncased.tokenizer.json (older layout: the model has no
 * "type"), ../shared/data/tiny-random-bert/tokenizer.json and the RobertaProcessing fixture
 * tests/fixtures/roberta-tiny (byte-level BPE): singles and pairs, ids with and without special
 * tokens, type ids against the template's type_id fields (RoBERTa: all 0, as Rust), decode and
 * decode skipping special tokens. Each part skips with a message when node or ../shared is
 * absent. The hand-derived checks (truncation as Rust's truncate_encodings tests, an empty second
 * text, CJK outside the BMP, padding, the older model layout, errors) always run, on
 * tests/fixtures/wordpiece-tiny. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "badam/tokenizer.h"
#include "io/files.h"
#include "testutil.h"
#include "tok_ref.h"
#include "text/tok_internal.h"

/* 1 when decode(ids, skip) equals the base64 text want. */
static int decode_same(const badam_tokenizer *tok, const int32_t *ids, size_t n, int skip,
                       const json_t *want, const char *name) {
    char *text = NULL;
    size_t len = 0;
    badam_error err;
    if (tokenizer_decode(tok, ids, n, skip, &text, &len, &err)) {
        fprintf(stderr, "  %s: decode failed: %s\n", name, err.message);
        return 0;
    }
    const char *w64 = json_string_value(want);
    unsigned char *w = malloc((w64 ? strlen(w64) : 0) + 1);
    size_t wn = w64 ? tok_ref_b64_decode(w64, w) : 0;
    int ok = w64 && wn == len && !memcmp(w, text, len);
    if (!ok)
        fprintf(stderr, "  %s: decode (skip=%d) differs:\n    want \"%.*s\"\n    got  \"%s\"\n",
                name, skip, (int)wn, (const char *)w, text);
    free(w);
    free(text);
    return ok;
}

typedef struct counts {
    int cases, pairs, ids, ids_special, types, node_types, decode, decode_skip;
} counts;

/* Encodes one case both ways and compares ids, type ids and decodes; adds to c. */
static void check_case(const badam_tokenizer *tok, const json_t *j, counts *c) {
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *a64 = json_string_value(json_object_get(j, "a"));
    const char *b64 = json_string_value(json_object_get(j, "b"));
    unsigned char *a = malloc(strlen(a64) + 1), *b = malloc((b64 ? strlen(b64) : 0) + 1);
    size_t an = tok_ref_b64_decode(a64, a), bn = b64 ? tok_ref_b64_decode(b64, b) : 0;
    c->cases++;
    c->pairs += b64 != NULL;
    badam_error err;
    for (int special = 0; special < 2; special++) {
        tokenizer_encoding e;
        if (tokenizer_encode_pair(tok, (const char *)a, an, b64 ? (const char *)b : NULL, bn,
                                  special, 0, &e, &err)) {
            CHECKF(0, "%s: encode failed: %s", name, err.message);
            continue;
        }
        const json_t *want = json_object_get(j, special ? "ids_special" : "ids");
        if (tok_ref_ids_equal(want, e.ids, e.n)) {
            *(special ? &c->ids_special : &c->ids) += 1;
        } else {
            fprintf(stderr, "  %s: ids differ (special=%d)\n", name, special);
            tok_ref_print_ids("got ", e.ids, e.n, 32);
        }
        if (special) {
            int t_ok = tok_ref_ids_equal(json_object_get(j, "type_ids"), e.type_ids, e.n);
            c->types += t_ok;
            c->node_types +=
                tok_ref_ids_equal(json_object_get(j, "node_type_ids"), e.type_ids, e.n);
            if (!t_ok) {
                fprintf(stderr, "  %s: type ids differ\n", name);
                tok_ref_print_ids("got ", e.type_ids, e.n, 32);
            }
            c->decode += decode_same(tok, e.ids, e.n, 0, json_object_get(j, "decode"), name);
            c->decode_skip +=
                decode_same(tok, e.ids, e.n, 1, json_object_get(j, "decode_skip"), name);
        }
        tokenizer_encoding_free(&e);
    }
    free(a);
    free(b);
}

/* Runs reference_pairs.mjs on json_path (with config_path or "-") and checks every case. */
static void parity(const char *label, const char *json_path, const char *config_path,
                   int min_cases) {
    char ref[4096 + 64], cmd[4 * 4096];
    snprintf(ref, sizeof ref, "%s/%s.jsonl", test_workdir("tokenizer_pairs"), label);
    snprintf(cmd, sizeof cmd, "cd '%s' && node reference_pairs.mjs '%s' '%s' corpus '%s'",
             test_source_path("tests/tokenizer"), json_path, config_path, ref);
    if (test_system(cmd) != 0) {
        CHECKF(0, "reference_pairs.mjs failed for %s", label);
        return;
    }
    badam_tokenizer *tok = NULL;
    badam_error err;
    CHECK_OK(tokenizer_load(json_path, &tok, &err), &err);
    char *data = NULL;
    size_t size = 0;
    CHECK_OK(io_read_file(ref, &data, &size, &err), &err);
    counts c = {0};
    for (char *line = data, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        json_t *j = json_loads(line, 0, NULL);
        if (!j) continue;
        check_case(tok, j, &c);
        json_decref(j);
    }
    fprintf(stderr,
            "parity %s: %d cases (%d pairs): ids %d/%d, ids+special %d/%d, type ids %d/%d "
            "(tokenizers.js' own type ids agree on %d), decode %d/%d, decode skip-special %d/%d\n",
            label, c.cases, c.pairs, c.ids, c.cases, c.ids_special, c.cases, c.types, c.cases,
            c.node_types, c.decode, c.cases, c.decode_skip, c.cases);
    int ok = c.ids + c.ids_special + c.types + c.decode + c.decode_skip;
    CHECKF(c.cases >= min_cases && c.pairs > 100 && ok == 5 * c.cases, "%s: %d of %d checks differ",
           label, 5 * c.cases - ok, 5 * c.cases);
    free(data);
    tokenizer_free(tok);
}

/* ---------------------------------------------------------------- hand-derived checks */

static badam_tokenizer *tiny(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s",
             test_source_path("tests/fixtures/wordpiece-tiny/tokenizer.json"));
    badam_tokenizer *tok = NULL;
    badam_error err;
    if (tokenizer_load(path, &tok, &err)) CHECKF(0, "%s", err.message);
    return tok;
}

/* A text of n one-letter words: n tokens. */
static const char *words(int n) {
    static char buf[4][64];
    static int k;
    char *s = buf[k++ % 4];
    for (int i = 0; i < n; i++) {
        s[2 * i] = (char)('a' + i);
        s[2 * i + 1] = ' ';
    }
    s[n ? 2 * n - 1 : 0] = '\0';
    return s;
}

/* Rust's truncate_encodings test table (max_length 7 for the texts, + 3 special tokens). */
static void test_truncation(void) {
    badam_tokenizer *tok = tiny();
    if (!tok) return;
    static const int table[][4] = {
        {0, 0, 0, 0}, {0, 2, 0, 2}, {0, 4, 0, 4}, {0, 8, 0, 7}, {2, 0, 2, 0}, {2, 2, 2, 2},
        {2, 4, 2, 4}, {2, 8, 2, 5}, {4, 0, 4, 0}, {4, 2, 4, 2}, {4, 4, 3, 4}, {4, 8, 3, 4},
        {8, 0, 7, 0}, {8, 2, 5, 2}, {8, 4, 4, 3}, {8, 8, 3, 4},
    };
    badam_error err;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const char *a = words(table[i][0]), *b = words(table[i][1]);
        tokenizer_encoding e;
        CHECK_OK(tokenizer_encode_pair(tok, a, strlen(a), b, strlen(b), 1, 10, &e, &err), &err);
        CHECKF(e.n_first == (size_t)table[i][2] && e.n_second == (size_t)table[i][3] &&
                   e.n == e.n_first + e.n_second + 3 && e.n <= 10,
               "truncate (%d, %d): kept (%zu, %zu), want (%d, %d)", table[i][0], table[i][1],
               e.n_first, e.n_second, table[i][2], table[i][3]);
        /* the kept tokens are the first ones: [CLS] a b ... [SEP] */
        CHECK(e.n < 2 || e.n_first == 0 || e.ids[1] == 5);
        tokenizer_encoding_free(&e);
    }
    /* one text: keep max_length - 2; without special tokens nothing is reserved */
    tokenizer_encoding e;
    const char *a = words(8);
    CHECK_OK(tokenizer_encode_pair(tok, a, strlen(a), NULL, 0, 1, 5, &e, &err), &err);
    CHECK(e.n == 5 && e.n_first == 3 && e.ids[0] == 2 && e.ids[4] == 3);
    tokenizer_encoding_free(&e);
    CHECK_OK(tokenizer_encode_pair(tok, a, strlen(a), a, strlen(a), 0, 5, &e, &err), &err);
    CHECK(e.n == 5 && e.n_first == 2 && e.n_second == 3);
    tokenizer_encoding_free(&e);
    CHECK(tokenizer_encode_pair(tok, a, strlen(a), a, strlen(a), 1, 2, &e, &err) ==
          BADAM_E_INVALID);
    CHECK(tokenizer_num_special_tokens(tok, 0) == 2 && tokenizer_num_special_tokens(tok, 1) == 3);
    tokenizer_free(tok);
}

/* Rust: an empty second text is still a pair ([CLS] A [SEP] [SEP]); padding; CJK outside the
 * BMP is spaced out (each ideograph its own word, so each its own [UNK]); words longer than
 * max_input_chars_per_word (12) are [UNK]; an unknown piece makes the whole word [UNK]. */
static void test_rules(void) {
    badam_tokenizer *tok = tiny();
    if (!tok) return;
    badam_error err;
    tokenizer_encoding e;
    CHECK_OK(tokenizer_encode_pair(tok, "a", 1, "", 0, 1, 0, &e, &err), &err);
    int32_t want_ids[] = {2, 5, 3, 3}, want_types[] = {0, 0, 0, 1};
    CHECK(e.n == 4 && !memcmp(e.ids, want_ids, sizeof want_ids) &&
          !memcmp(e.type_ids, want_types, sizeof want_types));
    CHECK_OK(tokenizer_encoding_pad(&e, 6, 0, &err), &err);
    CHECK(e.n == 6 && e.ids[5] == 0 && e.type_ids[5] == 0 && e.attention_mask[3] == 1 &&
          e.attention_mask[4] == 0 && e.attention_mask[5] == 0);
    CHECK(tokenizer_encoding_pad(&e, 5, 0, &err) == BADAM_E_INVALID);
    tokenizer_encoding_free(&e);
    const char *text = "\xF0\xA0\x80\x80\xF0\xA0\x80\x81 Hello abcdefghijklm unbelievable x##";
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(tokenizer_encode(tok, text, strlen(text), 0, &ids, &n, &err), &err);
    /* 𠀀 𠀁 hello [UNK](13 chars) un ##believ ##able x # # */
    int32_t want[] = {1, 1, 57, 1, 60, 61, 62, 28, 1, 1};
    CHECK(n == sizeof want / sizeof want[0] && !memcmp(ids, want, sizeof want));
    if (n != sizeof want / sizeof want[0] || memcmp(ids, want, sizeof want))
        tok_ref_print_ids("got", ids, n, 32);
    char *dec = NULL;
    CHECK_OK(tokenizer_decode(tok, ids + 2, 5, 0, &dec, NULL, &err), &err);
    CHECKF(!strcmp(dec, "hello [UNK] unbelievable"), "decode: \"%s\"", dec);
    free(dec);
    free(ids);
    tokenizer_free(tok);
}

/* BertNormalizer by Rust's rules where tokenizers.js differs (the parity corpus leaves these
 * out): per-character lowercase (no final sigma), CJK outside the BMP spaced out; plus control
 * characters dropped, whitespace -> ' ', accents stripped (strip_accents null follows
 * lowercase) and kept when strip_accents is false. */
static void test_bert_normalizer(void) {
    const char *cfg[2] = {"{\"type\":\"BertNormalizer\",\"strip_accents\":null}",
                          "{\"type\":\"BertNormalizer\",\"strip_accents\":false}"};
    const char *want[2] = {"\xCF\x83\xCE\xB1\xCF\x83 a  \xF0\xA0\x80\x80 xy z",
                           "\xCF\x83\xCE\xB1\xCF\x83 \xC3\xA4  \xF0\xA0\x80\x80 xy z"};
    /* "ΣΑΣ Ä 𠀀x<BEL>y<TAB>z" */
    const char *in = "\xCE\xA3\xCE\x91\xCE\xA3 \xC3\x84 \xF0\xA0\x80\x80x\x07y\tz";
    for (int k = 0; k < 2; k++) {
        json_t *j = json_loads(cfg[k], 0, NULL);
        tok_normalizer *nm = NULL;
        tok_ctx ctx = {0};
        tok_buf out = {0};
        badam_error err;
        CHECK_OK(tok_normalizer_parse(j, "test", "normalizer", &nm, &err), &err);
        CHECK_OK(tok_normalizer_apply(nm, in, strlen(in), &out, &ctx, &err), &err);
        CHECKF(out.len == strlen(want[k]) && !memcmp(out.data, want[k], out.len),
               "BertNormalizer (%d): \"%.*s\"", k, (int)out.len, out.data);
        tok_buf_free(&out);
        tok_ctx_free(&ctx);
        tok_normalizer_free(nm);
        json_decref(j);
    }
}

/* badam tokenize --pair prints ids with type ids; --json adds type_ids and attention_mask. */
static void test_cli_pair(void) {
    if (!getenv("BADAM_CLI")) {
        fprintf(stderr, "skip: BADAM_CLI is not set\n");
        return;
    }
    const char *dir = test_workdir("tokenizer_pairs_cli");
    char out[4096];
    int rc = test_run_cli(dir, NULL,
                          "tokenize --model tests/fixtures/wordpiece-tiny/tokenizer.json "
                          "--text 'Hello world' --pair 'un!' --json",
                          out, sizeof out);
    CHECKF(rc == 0 && strstr(out, "\"ids\":[2,57,58,3,60,65,3]") &&
               strstr(out, "\"type_ids\":[0,0,0,0,1,1,1]") &&
               strstr(out, "\"attention_mask\":[1,1,1,1,1,1,1]"),
           "rc %d: %s", rc, out);
    rc = test_run_cli(dir, NULL,
                      "tokenize --model tests/fixtures/wordpiece-tiny/tokenizer.json "
                      "--text 'a b c d e' --pair 'x y' --max-length 6",
                      out, sizeof out);
    CHECKF(rc == 0 && strstr(out, "6 tokens (text 2, pair 1, special 3)") &&
               strstr(out, "      28  1  x"),
           "rc %d: %s", rc, out);
}

int main(void) {
    RUN_TEST(test_cli_pair);
    RUN_TEST(test_bert_normalizer);
    RUN_TEST(test_truncation);
    RUN_TEST(test_rules);
    if (!getenv("BADAM_SOURCE_DIR") || !test_have_hf_tokenizers()) {
        fprintf(stderr, "skip: parity with tokenizers.js needs node and tests/tokenizer/"
                        "node_modules (run scripts/setup.sh)\n");
        return test_result();
    }
    char roberta[4096];
    snprintf(roberta, sizeof roberta, "%s",
             test_source_path("tests/fixtures/roberta-tiny/tokenizer.json"));
    parity("roberta-tiny", roberta, "-", 500);
    char bert[4096], tiny_json[4096], tiny_cfg[4096];
    snprintf(bert, sizeof bert, "%s",
             test_source_path("../shared/data/tokenizers/bert-base-uncased.tokenizer.json"));
    snprintf(tiny_json, sizeof tiny_json, "%s",
             test_source_path("../shared/data/tiny-random-bert/tokenizer.json"));
    snprintf(tiny_cfg, sizeof tiny_cfg, "%s",
             test_source_path("../shared/data/tiny-random-bert/tokenizer_config.json"));
    if (!io_is_file(bert) || !io_is_file(tiny_json)) {
        fprintf(stderr, "skip: ../shared/data/tokenizers and tiny-random-bert absent "
                        "(../shared is not part of the repository)\n");
        return test_result();
    }
    parity("bert-base-uncased", bert, "-", 500);
    parity("tiny-random-bert", tiny_json, tiny_cfg, 500);
    return test_result();
}
