/* Tokenizer components on hand-written inputs (expectations derived by hand from the Rust
 * tokenizers semantics; the two family fixtures were also checked against tokenizers.js):
 * each normalizer, pre-tokenizer behavior and decoder through the internal API; the BPE model
 * (merge order, byte fallback, unknown fusing, prefixes/suffixes, ignore_merges); added tokens
 * (lstrip, rstrip, single_word, normalized); the fixtures tests/tokenizer/fixtures/{bytelevel,
 * sentencepiece}; invalid UTF-8 input; and errors for malformed or unsupported tokenizer.json
 * files, which must name the file and the component. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "badam/tokenizer.h"
#include "testutil.h"
#include "text/tok_internal.h"

static char fixtures[2048];

/* ---- helpers ---- */

/* Joins the strings of a list with '|' into a static buffer. */
static const char *joined(const tok_list *l) {
    static char buf[4096];
    size_t k = 0;
    for (size_t i = 0; i < l->n && k + l->items[i].len + 2 < sizeof buf; i++) {
        if (i) buf[k++] = '|';
        memcpy(buf + k, tok_list_str(l, i), l->items[i].len);
        k += l->items[i].len;
    }
    buf[k] = '\0';
    return buf;
}

static const char *normalize(const char *json, const char *text) {
    static char out[1200];
    json_t *j = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    tok_normalizer *nm = NULL;
    badam_error err;
    tok_ctx ctx = {0};
    tok_buf b = {0};
    out[0] = '\0';
    if (tok_normalizer_parse(j, "test.json", "normalizer", &nm, &err) ||
        tok_normalizer_apply(nm, text, strlen(text), &b, &ctx, &err)) {
        snprintf(out, sizeof out, "ERROR: %.1000s", err.message);
    } else {
        snprintf(out, sizeof out, "%.*s", (int)b.len, b.data ? b.data : "");
    }
    tok_buf_free(&b);
    tok_ctx_free(&ctx);
    tok_normalizer_free(nm);
    json_decref(j);
    return out;
}

static const char *pretokenize_at(const char *json, const char *text, int at_start) {
    static char out[4096];
    json_t *j = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    tok_pretok *p = NULL;
    badam_error err;
    tok_ctx ctx = {0};
    tok_list *in = &ctx.lists[0], *spare = &ctx.lists[1];
    if (tok_pretok_parse(j, "test.json", "pre_tokenizer", &p, &err) ||
        tok_list_push(in, text, strlen(text), at_start, &err) ||
        tok_pretok_apply(p, &in, &spare, &ctx, &err))
        snprintf(out, sizeof out, "ERROR: %s", err.message);
    else
        snprintf(out, sizeof out, "%s", joined(in));
    tok_ctx_free(&ctx);
    tok_pretok_free(p);
    json_decref(j);
    return out;
}

static const char *pretokenize(const char *json, const char *text) {
    return pretokenize_at(json, text, 1);
}

/* Decodes the '|'-separated tokens; the result's pieces are joined with '|'. */
static const char *decode_chain(const char *json, const char *tokens) {
    static char out[4096];
    json_t *j = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    tok_decoder *d = NULL;
    badam_error err;
    tok_ctx ctx = {0};
    tok_list *in = &ctx.lists[0], *spare = &ctx.lists[1];
    int st = tok_decoder_parse(j, "test.json", "decoder", &d, &err);
    for (const char *p = tokens; !st && *p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        st = tok_list_push(in, p, n, 0, &err);
        p += n + (bar ? 1 : 0);
    }
    if (!st) st = tok_decoder_apply(d, &in, &spare, &ctx, &err);
    if (st)
        snprintf(out, sizeof out, "ERROR: %s", err.message);
    else
        snprintf(out, sizeof out, "%s", joined(in));
    tok_ctx_free(&ctx);
    tok_decoder_free(d);
    json_decref(j);
    return out;
}

#define CHECK_STR(got, want)                                                                       \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        CHECKF(!strcmp(g_, w_), "got \"%s\", want \"%s\"", g_, w_);                                \
    } while (0)

static char *write_tmp(const char *name, const char *json) {
    static char path[4096 + 64];
    snprintf(path, sizeof path, "%s/%s", test_workdir(name), "tokenizer.json");
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(json, f);
        fclose(f);
    }
    return path;
}

/* Encodes text with a tokenizer given as JSON text; ids into out (max 64), count returned. */
static int encode_json(const char *json, const char *text, int special, int32_t *out) {
    badam_tokenizer *tok = NULL;
    badam_error err;
    if (tokenizer_load(write_tmp("tokenizer_json", json), &tok, &err)) {
        fprintf(stderr, "load failed: %s\n", err.message);
        return -1;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = -1;
    if (!tokenizer_encode(tok, text, strlen(text), special, &ids, &n, &err) && n <= 64) {
        memcpy(out, ids, n * sizeof *ids);
        rc = (int)n;
    } else {
        fprintf(stderr, "encode failed: %s\n", err.message);
    }
    free(ids);
    tokenizer_free(tok);
    return rc;
}

static int ids_are(const int32_t *got, int n, const int32_t *want, int n_want) {
    if (n != n_want) goto bad;
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) goto bad;
    return 1;
bad:
    fprintf(stderr, "  got (%d):", n);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", got[i]);
    fprintf(stderr, "\n  want (%d):", n_want);
    for (int i = 0; i < n_want; i++) fprintf(stderr, " %d", want[i]);
    fputc('\n', stderr);
    return 0;
}
#define CHECK_IDS(got, n, ...)                                                                     \
    do {                                                                                           \
        const int32_t w_[] = {__VA_ARGS__};                                                        \
        CHECK(ids_are(got, n, w_, (int)(sizeof w_ / sizeof w_[0])));                               \
    } while (0)

/* ---- normalizers ---- */

static void test_normalizers(void) {
    CHECK_STR(normalize("{\"type\":\"Prepend\",\"prepend\":\"\u2581\"}", "hi"), "\u2581hi");
    CHECK_STR(normalize("{\"type\":\"Prepend\",\"prepend\":\"\u2581\"}", ""), "");
    CHECK_STR(normalize("{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"_\"}",
                        "a b  c"),
              "a_b__c");
    CHECK_STR(normalize("{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" +\"},\"content\":\" \"}",
                        "a   b    c"),
              "a b c");
    CHECK_STR(normalize("{\"type\":\"NFC\"}", "e\xCC\x81"), "\xC3\xA9");
    CHECK_STR(normalize("{\"type\":\"NFD\"}", "\xC3\xA9"), "e\xCC\x81");
    CHECK_STR(normalize("{\"type\":\"NFKC\"}", "\xEF\xAC\x81 \xE2\x91\xA0 \xEF\xBC\xA1"), "fi 1 A");
    CHECK_STR(normalize("{\"type\":\"NFKD\"}", "\xEF\xAC\x81\xC3\xA9"), "fie\xCC\x81");
    CHECK_STR(normalize("{\"type\":\"NFC\"}", "plain ascii \xC3\xA9"), "plain ascii \xC3\xA9");
    /* per code point; U+0130 lowercases to i + combining dot; no final-sigma rule */
    CHECK_STR(normalize("{\"type\":\"Lowercase\"}", "HeLLo \xC4\xB0 \xCE\xA3\xCE\x91\xCE\xA3"),
              "hello i\xCC\x87 \xCF\x83\xCE\xB1\xCF\x83");
    CHECK_STR(normalize("{\"type\":\"Strip\",\"strip_left\":true,\"strip_right\":true}",
                        " \t\xC2\x85 hi there \n\xE3\x80\x80"),
              "hi there");
    CHECK_STR(normalize("{\"type\":\"Strip\",\"strip_left\":false,\"strip_right\":true}", "  hi  "),
              "  hi");
    CHECK_STR(normalize("{\"type\":\"StripAccents\"}", "e\xCC\x81t\xC3\xA9"), "et\xC3\xA9");
    CHECK_STR(normalize("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFKD\"},"
                        "{\"type\":\"StripAccents\"},{\"type\":\"Lowercase\"}]}",
                        "\xC3\x89T\xC3\x89"),
              "ete");
    CHECK_STR(normalize("{\"type\":\"ByteLevel\"}", "a b\n"), "a\xC4\xA0"
                                                              "b\xC4\x8A");
    CHECK_STR(normalize("{\"type\":\"Sequence\",\"normalizers\":[]}", "same"), "same");
}

/* ---- pre-tokenizers ---- */

#define SPLIT(behavior, pattern, invert)                                                           \
    "{\"type\":\"Split\",\"pattern\":{\"String\":\"" pattern "\"},\"behavior\":\"" behavior        \
    "\",\"invert\":" invert "}"

static void test_split_behaviors(void) {
    const char *t = "the-final--countdown";
    CHECK_STR(pretokenize(SPLIT("Removed", "-", "false"), t), "the|final|countdown");
    CHECK_STR(pretokenize(SPLIT("Isolated", "-", "false"), t), "the|-|final|-|-|countdown");
    CHECK_STR(pretokenize(SPLIT("MergedWithPrevious", "-", "false"), t), "the-|final-|-|countdown");
    CHECK_STR(pretokenize(SPLIT("MergedWithNext", "-", "false"), t), "the|-final|-|-countdown");
    CHECK_STR(pretokenize(SPLIT("Contiguous", "-", "false"), t), "the|-|final|--|countdown");
    /* invert: the pattern matches the content; Removed then drops what it does not match */
    CHECK_STR(pretokenize(SPLIT("Removed", "-", "true"), t), "-|-|-");
    CHECK_STR(pretokenize(SPLIT("MergedWithPrevious", "-", "true"), t), "the|-final|-|-countdown");
    CHECK_STR(pretokenize(SPLIT("Isolated", "-", "false"), "-a-"), "-|a|-");
    CHECK_STR(pretokenize(SPLIT("Isolated", "-", "false"), ""), "");
    /* regex patterns use Oniguruma meanings: \s includes U+0085, \d is Nd, \h is a hex digit */
    CHECK_STR(pretokenize("{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+\"},"
                          "\"behavior\":\"Removed\",\"invert\":false}",
                          "a\xC2\x85"
                          "b \t c"),
              "a|b|c");
    CHECK_STR(pretokenize("{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\d+\"},"
                          "\"behavior\":\"Isolated\",\"invert\":false}",
                          "x\xD9\xA3"
                          "4y"),
              "x|\xD9\xA3"
              "4|y");
    CHECK_STR(pretokenize("{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\h+\"},"
                          "\"behavior\":\"Isolated\",\"invert\":false}",
                          "zz0fAzz"),
              "zz|0fA|zz");
    CHECK_STR(pretokenize("{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(?i:'s|'t)\"},"
                          "\"behavior\":\"Isolated\",\"invert\":false}",
                          "it'S what't"),
              "it|'S| what|'t");
}

static void test_pretokenizers(void) {
    const char *bl = "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":true}";
    CHECK_STR(pretokenize(bl, "Hello my friend, how is your day going?"),
              "\xC4\xA0Hello|\xC4\xA0my|\xC4\xA0"
              "friend|,|\xC4\xA0how|\xC4\xA0is|\xC4\xA0your|"
              "\xC4\xA0"
              "day|\xC4\xA0going|?");
    CHECK_STR(pretokenize("{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}",
                          "a b\xC3\xA9"),
              "a\xC4\xA0"
              "b\xC3\x83\xC2\xA9");
    CHECK_STR(pretokenize(bl, "I'm  ok\n\n"), "\xC4\xA0I|'m|\xC4\xA0|\xC4\xA0ok|\xC4\x8A\xC4\x8A");

    const char *ms = "{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":"
                     "\"always\",\"split\":true}";
    CHECK_STR(pretokenize(ms, "Hey friend!"), "\u2581Hey|\u2581friend!");
    CHECK_STR(pretokenize(ms, "Hey   friend!"), "\u2581Hey|\u2581|\u2581|\u2581friend!");
    CHECK_STR(pretokenize("{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":"
                          "\"always\",\"split\":false}",
                          "Hey friend!"),
              "\u2581Hey\u2581friend!");
    CHECK_STR(pretokenize("{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":"
                          "\"never\",\"split\":true}",
                          "Hey friend!"),
              "Hey|\u2581friend!");
    const char *first = "{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":"
                        "\"first\",\"split\":false}";
    CHECK_STR(pretokenize_at(first, "Hey", 1), "\u2581Hey");
    CHECK_STR(pretokenize_at(first, "Hey", 0), "Hey");
    /* legacy add_prefix_space without prepend_scheme */
    CHECK_STR(pretokenize("{\"type\":\"Metaspace\",\"replacement\":\"\u2581\","
                          "\"add_prefix_space\":false}",
                          "a b"),
              "a|\u2581b");

    CHECK_STR(pretokenize("{\"type\":\"Digits\",\"individual_digits\":true}", "Call 123 please"),
              "Call |1|2|3| please");
    CHECK_STR(pretokenize("{\"type\":\"Digits\",\"individual_digits\":false}", "Call 123 please"),
              "Call |123| please");
    CHECK_STR(pretokenize("{\"type\":\"Digits\",\"individual_digits\":false}", "x\xE2\x85\xA0"
                                                                               "2"),
              "x|\xE2\x85\xA0"
              "2"); /* Roman numeral one is numeric (Nl) */
    CHECK_STR(pretokenize("{\"type\":\"Whitespace\"}", "Hey man!"), "Hey|man|!");
    CHECK_STR(pretokenize("{\"type\":\"Whitespace\"}", "How are you doing?"),
              "How|are|you|doing|?");
    CHECK_STR(pretokenize("{\"type\":\"Whitespace\"}", "\n"), "");
    CHECK_STR(pretokenize("{\"type\":\"Whitespace\"}", "caf\xC3\xA9!!"), "caf\xC3\xA9|!!");
    CHECK_STR(pretokenize("{\"type\":\"WhitespaceSplit\"}", "Hey man!  \t x"), "Hey|man!|x");
    CHECK_STR(pretokenize("{\"type\":\"Punctuation\",\"behavior\":\"Isolated\"}",
                          "Hey friend!     How are you?!?"),
              "Hey friend|!|     How are you|?|!|?");
    CHECK_STR(pretokenize("{\"type\":\"BertPreTokenizer\"}", "Hey friend!     How are you?!?"),
              "Hey|friend|!|How|are|you|?|!|?");
    CHECK_STR(pretokenize("{\"type\":\"CharDelimiterSplit\",\"delimiter\":\"-\"}", "a-b--c"),
              "a|b|c");
    CHECK_STR(
        pretokenize("{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"WhitespaceSplit\"},"
                    "{\"type\":\"Digits\",\"individual_digits\":true}]}",
                    "abc 12"),
        "abc|1|2");
}

/* ---- decoders ---- */

static void test_decoders(void) {
    CHECK_STR(decode_chain("{\"type\":\"ByteLevel\"}", "Hello|\xC4\xA0world"), "Hello world");
    /* "ðŁ" stands for the bytes F0 9F: a truncated sequence -> one U+FFFD */
    CHECK_STR(decode_chain("{\"type\":\"ByteLevel\"}", "a|\xC3\xB0\xC5\x81"), "a\xEF\xBF\xBD");
    CHECK_STR(decode_chain("{\"type\":\"ByteFallback\"}", "<0x61>|<0x62>|c"), "ab|c");
    CHECK_STR(decode_chain("{\"type\":\"ByteFallback\"}", "<0xE5>|<0x8F>|<0xAB>|a"),
              "\xE5\x8F\xAB|a");
    CHECK_STR(decode_chain("{\"type\":\"ByteFallback\"}", "<0xE5>|<0x8F>|a"), "\xEF\xBF\xBD|a");
    CHECK_STR(decode_chain("{\"type\":\"ByteFallback\"}", "<0xZZ>|<0x41"), "<0xZZ>|<0x41");
    CHECK_STR(decode_chain("{\"type\":\"Replace\",\"pattern\":{\"String\":\"\u2581\"},"
                           "\"content\":\" \"}",
                           "\u2581Hey|\u2581friend"),
              " Hey| friend");
    CHECK_STR(decode_chain("{\"type\":\"Fuse\"}", "a|b|c"), "abc");
    CHECK_STR(decode_chain("{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}",
                           " Hey|  friend"),
              "Hey| friend");
    CHECK_STR(
        decode_chain("{\"type\":\"Strip\",\"content\":\"x\",\"start\":2,\"stop\":1}", "xxxaxx|x"),
        "xax|");
    CHECK_STR(decode_chain("{\"type\":\"Metaspace\",\"replacement\":\"\u2581\","
                           "\"prepend_scheme\":\"always\",\"split\":true}",
                           "\u2581Hey|\u2581friend"),
              "Hey| friend");
    CHECK_STR(decode_chain("{\"type\":\"Metaspace\",\"replacement\":\"\u2581\","
                           "\"prepend_scheme\":\"never\",\"split\":true}",
                           "\u2581Hey|\u2581friend"),
              " Hey| friend");
    CHECK_STR(
        decode_chain("{\"type\":\"BPEDecoder\",\"suffix\":\"</w>\"}", "hel|lo</w>|wor|ld</w>"),
        "hel|lo |wor|ld");
    CHECK_STR(decode_chain("{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\","
                           "\"pattern\":{\"String\":\"\u2581\"},\"content\":\" \"},"
                           "{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
                           "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}",
                           "\u2581Hello|<0xC3>|<0xA9>|\u2581x"),
              "Hello\xC3\xA9 x");
}

/* ---- BPE model ---- */

#define BPE_JSON(extra, vocab, merges)                                                             \
    "{\"model\":{\"type\":\"BPE\"," extra "\"vocab\":{" vocab "},\"merges\":[" merges "]}}"

static void test_bpe_model(void) {
    int32_t ids[64];
    int n;
    /* lowest rank first; among equal ranks the leftmost: "aaa" -> "aa" "a" */
    n = encode_json(BPE_JSON("", "\"a\":0,\"aa\":1", "\"a a\""), "aaa", 0, ids);
    CHECK_IDS(ids, n, 1, 0);
    n = encode_json(BPE_JSON("", "\"a\":0,\"aa\":1", "\"a a\""), "aaaa", 0, ids);
    CHECK_IDS(ids, n, 1, 1);
    /* rank order beats position: "abc" with b c (rank 0) before a b (rank 1) -> a, bc */
    n = encode_json(
        BPE_JSON("", "\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"bc\":4", "[\"b\",\"c\"],[\"a\",\"b\"]"),
        "abc", 0, ids);
    CHECK_IDS(ids, n, 0, 4);
    /* unknown characters: dropped without unk_token, one fused <unk> with fuse_unk */
    n = encode_json(BPE_JSON("", "\"a\":0", ""), "axya", 0, ids);
    CHECK_IDS(ids, n, 0, 0);
    n = encode_json(
        BPE_JSON("\"unk_token\":\"<unk>\",\"fuse_unk\":true,", "\"<unk>\":0,\"a\":1", ""), "axya",
        0, ids);
    CHECK_IDS(ids, n, 1, 0, 1);
    n = encode_json(
        BPE_JSON("\"unk_token\":\"<unk>\",\"fuse_unk\":false,", "\"<unk>\":0,\"a\":1", ""), "axya",
        0, ids);
    CHECK_IDS(ids, n, 1, 0, 0, 1);
    /* byte fallback: a missing character becomes its UTF-8 bytes */
    n = encode_json(BPE_JSON("\"byte_fallback\":true,\"unk_token\":\"<unk>\",",
                             "\"<unk>\":0,\"a\":1,\"<0xC3>\":2,\"<0xA9>\":3", ""),
                    "a\xC3\xA9z", 0, ids);
    CHECK_IDS(ids, n, 1, 2, 3, 0);
    /* continuing_subword_prefix and end_of_word_suffix */
    n = encode_json(BPE_JSON("\"continuing_subword_prefix\":\"##\",",
                             "\"a\":0,\"##b\":1,\"ab\":2,\"##c\":3,\"abc\":4",
                             "[\"a\",\"##b\"],[\"ab\",\"##c\"]"),
                    "abc", 0, ids);
    CHECK_IDS(ids, n, 4);
    n = encode_json(BPE_JSON("\"continuing_subword_prefix\":\"##\",",
                             "\"a\":0,\"##b\":1,\"ab\":2,\"##c\":3,\"abc\":4",
                             "[\"a\",\"##b\"],[\"ab\",\"##c\"]"),
                    "ac", 0, ids);
    CHECK_IDS(ids, n, 0, 3);
    n = encode_json(BPE_JSON("\"end_of_word_suffix\":\"</w>\",", "\"a\":0,\"b</w>\":1,\"ab</w>\":2",
                             "\"a b</w>\""),
                    "ab", 0, ids);
    CHECK_IDS(ids, n, 2);
    /* ignore_merges: a word in the vocabulary is one token even if merges would not make it */
    n = encode_json(BPE_JSON("\"ignore_merges\":true,", "\"a\":0,\"b\":1,\"c\":2,\"abc\":3", ""),
                    "abc", 0, ids);
    CHECK_IDS(ids, n, 3);
    n = encode_json(BPE_JSON("\"ignore_merges\":false,", "\"a\":0,\"b\":1,\"c\":2,\"abc\":3", ""),
                    "abc", 0, ids);
    CHECK_IDS(ids, n, 0, 1, 2);
    /* a long word: many merges, heap and linked list stay consistent */
    char word[4001];
    memset(word, 'a', 4000);
    word[4000] = '\0';
    badam_tokenizer *tok = NULL;
    badam_error err;
    CHECK_OK(tokenizer_load(write_tmp("bpe_long", BPE_JSON("", "\"a\":0,\"aa\":1,\"aaaa\":2",
                                                           "\"a a\",\"aa aa\"")),
                            &tok, &err),
             &err);
    int32_t *long_ids = NULL;
    size_t long_n = 0;
    CHECK_OK(tokenizer_encode(tok, word, 4000, 0, &long_ids, &long_n, &err), &err);
    CHECK(long_n == 1000);
    int all2 = 1;
    for (size_t i = 0; i < long_n; i++) all2 &= long_ids[i] == 2;
    CHECK(all2);
    free(long_ids);
    tokenizer_free(tok);
}

/* ---- added tokens ---- */

/* A character-level vocabulary (id = byte) with a Lowercase normalizer and added tokens. */
static const char *added_json(const char *added) {
    static char json[16384];
    size_t k = (size_t)snprintf(json, sizeof json,
                                "{\"normalizer\":{\"type\":\"Lowercase\"},\"added_tokens\":[%s],"
                                "\"model\":{\"type\":\"BPE\",\"vocab\":{",
                                added);
    for (int c = 32; c < 127; c++) {
        if (c == '"' || c == '\\') continue;
        k += (size_t)snprintf(json + k, sizeof json - k, "%s\"%c\":%d", c == 32 ? "" : ",", c, c);
    }
    snprintf(json + k, sizeof json - k, "},\"merges\":[]}}");
    return json;
}

#define ADDED(id, content, flags) "{\"id\":" #id ",\"content\":\"" content "\"," flags "}"

static void test_added_tokens(void) {
    int32_t ids[64];
    /* Rust's options_use_cases: "my" strips both sides and matches the normalized text */
    const char *json = added_json(
        "{\"id\":200,\"content\":\"my\",\"lstrip\":true,\"rstrip\":true,\"normalized\":true},"
        "{\"id\":201,\"content\":\"name\",\"normalized\":true},"
        "{\"id\":202,\"content\":\"ony\",\"single_word\":true,\"normalized\":true},"
        "{\"id\":203,\"content\":\"[CLS]\",\"special\":true,\"normalized\":false},"
        "{\"id\":204,\"content\":\"[SEP]\",\"special\":true,\"normalized\":false}");
    int n = encode_json(json, "[CLS] My name is Anthony [SEP]", 0, ids);
    CHECK_IDS(ids, n, 203, 200, 201, ' ', 'i', 's', ' ', 'a', 'n', 't', 'h', 'o', 'n', 'y', ' ',
              204);
    /* single_word: only where no word character touches it */
    json =
        added_json("{\"id\":300,\"content\":\"<mask>\",\"single_word\":true,\"normalized\":false}");
    n = encode_json(json, "<mask> a<mask> <mask>b <mask>", 0, ids);
    CHECK_IDS(ids, n, 300, ' ', 'a', '<', 'm', 'a', 's', 'k', '>', ' ', '<', 'm', 'a', 's', 'k',
              '>', 'b', ' ', 300);
    /* longest match wins; rstrip eats the following whitespace */
    json = added_json(ADDED(400, "<a>", "\"normalized\":false") "," ADDED(
        401, "<a><b>", "\"normalized\":false,\"rstrip\":true"));
    n = encode_json(json, "x<a><b>   y<a>", 0, ids);
    CHECK_IDS(ids, n, 'x', 401, 'y', 400);
    /* special tokens inside text are split out before normalization (no lowercasing) */
    json = added_json(ADDED(500, "<S>", "\"special\":true,\"normalized\":false"));
    n = encode_json(json, "A<S>B<s>", 0, ids);
    CHECK_IDS(ids, n, 'a', 500, 'b', '<', 's', '>');
}

/* ---- the family fixtures ---- */

static badam_tokenizer *load_fixture(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", fixtures, name);
    badam_tokenizer *tok = NULL;
    badam_error err;
    if (tokenizer_load(path, &tok, &err)) {
        fprintf(stderr, "%s: %s\n", path, err.message);
        test_failures++;
    }
    return tok;
}

static int encode_tok(const badam_tokenizer *tok, const char *text, size_t len, int special,
                      int32_t *out) {
    int32_t *ids = NULL;
    size_t n = 0;
    badam_error err;
    if (tokenizer_encode(tok, text, len, special, &ids, &n, &err) || n > 64) {
        free(ids);
        return -1;
    }
    memcpy(out, ids, n * sizeof *ids);
    free(ids);
    return (int)n;
}

static const char *decode_tok(const badam_tokenizer *tok, const int32_t *ids, size_t n, int skip) {
    static char out[1024];
    char *text = NULL;
    size_t len;
    badam_error err;
    if (tokenizer_decode(tok, ids, n, skip, &text, &len, &err)) return "ERROR";
    snprintf(out, sizeof out, "%s", text);
    free(text);
    return out;
}

static void test_fixture_bytelevel(void) {
    badam_tokenizer *tok = load_fixture("bytelevel");
    if (!tok) return;
    int32_t ids[64];
    int n = encode_tok(tok, "hello world", 11, 0, ids);
    CHECK_IDS(ids, n, 259, 264);
    n = encode_tok(tok, "hello world", 11, 1, ids);
    CHECK_IDS(ids, n, 266, 259, 264);
    CHECK_STR(decode_tok(tok, ids, (size_t)n, 0), "<|bos|>hello world");
    CHECK_STR(decode_tok(tok, ids, (size_t)n, 1), "hello world");
    const char *t = "hello<|eot|>  world";
    n = encode_tok(tok, t, strlen(t), 0, ids);
    CHECK_IDS(ids, n, 259, 267, 32, 264);
    n = encode_tok(tok, "\xC3\xA9", 2, 0, ids);
    CHECK_IDS(ids, n, 195, 169);
    CHECK_STR(decode_tok(tok, ids, 1, 0), "\xEF\xBF\xBD");
    n = encode_tok(tok, "<tool>x", 7, 0, ids);
    CHECK_IDS(ids, n, 268, 120);
    CHECK_STR(decode_tok(tok, ids, (size_t)n, 1), "<tool>x"); /* not special: kept */
    /* invalid UTF-8 is encoded as U+FFFD (EF BF BD), one per maximal invalid subpart */
    n = encode_tok(tok,
                   "a\xE4\xBD"
                   "b\xFF",
                   5, 0, ids);
    CHECK_IDS(ids, n, 97, 239, 191, 189, 98, 239, 191, 189);
    /* unknown ids are skipped by decode */
    int32_t odd[] = {-5, 104, 100000, 105};
    CHECK_STR(decode_tok(tok, odd, 4, 0), "hi");
    CHECK(tokenizer_vocab_size(tok) == 269);
    CHECK(tokenizer_token_to_id(tok, "<|eot|>") == 267);
    CHECK(tokenizer_token_to_id(tok, "hello") == 259);
    CHECK(tokenizer_token_to_id(tok, "nope") == -1);
    CHECK_STR(tokenizer_id_to_token(tok, 264), "\xC4\xA0world");
    CHECK(tokenizer_id_to_token(tok, 269) == NULL);
    CHECK(tokenizer_is_special(tok, 266) && !tokenizer_is_special(tok, 268));
    CHECK(tokenizer_bos_id(tok) == 266 && tokenizer_eos_id(tok) == 267 &&
          tokenizer_pad_id(tok) == 267);
    CHECK(tokenizer_chat_template(tok) && strstr(tokenizer_chat_template(tok), "messages"));
    int32_t *empty = NULL;
    size_t n_empty = 99;
    badam_error err;
    CHECK(tokenizer_encode(tok, "", 0, 0, &empty, &n_empty, &err) == BADAM_OK && n_empty == 0);
    free(empty);
    tokenizer_free(tok);
}

static void test_fixture_sentencepiece(void) {
    badam_tokenizer *tok = load_fixture("sentencepiece/tokenizer.json");
    if (!tok) return;
    int32_t ids[64];
    int n = encode_tok(tok, "hello world", 11, 1, ids);
    CHECK_IDS(ids, n, 1, 271, 276);
    CHECK_STR(decode_tok(tok, ids, (size_t)n, 0), "<s> hello world");
    CHECK_STR(decode_tok(tok, ids, (size_t)n, 1), "hello world");
    n = encode_tok(tok, "hi", 2, 0, ids); /* 'i' is not in the vocabulary: byte fallback */
    CHECK_IDS(ids, n, 267, 3 + 'i');
    CHECK_STR(decode_tok(tok, ids, (size_t)n, 0), "hi");
    n = encode_tok(tok, "\xC3\xA9", 2, 0, ids);
    CHECK_IDS(ids, n, 259, 3 + 0xC3, 3 + 0xA9);
    CHECK_STR(decode_tok(tok, ids, (size_t)n, 0), "\xC3\xA9");
    n = encode_tok(tok, "<s>hello", 8, 0, ids);
    CHECK_IDS(ids, n, 1, 271);
    CHECK(tokenizer_bos_id(tok) == 1);
    CHECK(tokenizer_eos_id(tok) == -1 && tokenizer_chat_template(tok) == NULL);
    tokenizer_free(tok);
}

/* ---- errors ---- */

/* Loads JSON text; checks the status and that the message names the file and `what`. */
static void expect_error(const char *json, badam_status want, const char *what) {
    const char *path = write_tmp("tokenizer_error", json);
    badam_tokenizer *tok = NULL;
    badam_error err = {0};
    badam_status st = tokenizer_load(path, &tok, &err);
    CHECKF(st == want, "status %s, want %s for %s (%s)", badam_status_name(st),
           badam_status_name(want), what, err.message);
    CHECKF(strstr(err.message, "tokenizer.json") && strstr(err.message, what),
           "message \"%s\" should name the file and \"%s\"", err.message, what);
    CHECK(tok == NULL);
    tokenizer_free(tok);
}

#define MODEL                                                                                      \
    "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]}"

static void test_errors(void) {
    expect_error("{\"model\": {", BADAM_E_FORMAT, "tokenizer.json");
    expect_error("[1, 2]", BADAM_E_FORMAT, "JSON object");
    expect_error("{\"normalizer\": null}", BADAM_E_FORMAT, "model");
    expect_error("{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",0.0]]}}", BADAM_E_UNSUPPORTED,
                 "Unigram");
    expect_error("{\"model\":{\"type\":\"WordLevel\",\"vocab\":{},\"unk_token\":\"x\"}}",
                 BADAM_E_UNSUPPORTED, "WordLevel");
    expect_error("{\"normalizer\":{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"\"}," MODEL
                 "}",
                 BADAM_E_UNSUPPORTED, "Precompiled");
    expect_error("{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},"
                 "{\"type\":\"Precompiled\"}]}," MODEL "}",
                 BADAM_E_UNSUPPORTED, "normalizer.normalizers[1]");
    expect_error("{\"pre_tokenizer\":{\"type\":\"UnicodeScripts\"}," MODEL "}", BADAM_E_UNSUPPORTED,
                 "UnicodeScripts");
    expect_error("{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},"
                 "\"behavior\":\"Isolated\",\"invert\":false}," MODEL "}",
                 BADAM_E_UNSUPPORTED, "pre_tokenizer.pattern");
    expect_error("{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},"
                 "\"behavior\":\"Sideways\",\"invert\":false}," MODEL "}",
                 BADAM_E_UNSUPPORTED, "Sideways");
    expect_error("{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Glob\":\"*\"},"
                 "\"behavior\":\"Isolated\"}," MODEL "}",
                 BADAM_E_FORMAT, "pre_tokenizer.pattern");
    expect_error("{\"decoder\":{\"type\":\"CTC\"}," MODEL "}", BADAM_E_UNSUPPORTED, "CTC");
    expect_error("{\"decoder\":{\"type\":\"Strip\",\"content\":\"ab\"}," MODEL "}", BADAM_E_FORMAT,
                 "decoder.content");
    expect_error("{\"post_processor\":{\"type\":\"Frobnicate\"}," MODEL "}", BADAM_E_UNSUPPORTED,
                 "Frobnicate");
    expect_error(
        "{\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":"
        "{\"id\":\"<s>\",\"type_id\":0}}],\"special_tokens\":{}}," MODEL "}",
        BADAM_E_FORMAT, "<s>");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a b\"]}}",
                 BADAM_E_FORMAT, "model.merges[0]");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}",
                 BADAM_E_FORMAT, "merged token");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a b c\"]}}",
                 BADAM_E_FORMAT, "model.merges[0]");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}}",
                 BADAM_E_FORMAT, "model.vocab");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}}",
                 BADAM_E_FORMAT, "id 0");
    expect_error("{\"model\":{\"type\":\"BPE\",\"dropout\":0.1,\"vocab\":{},\"merges\":[]}}",
                 BADAM_E_UNSUPPORTED, "dropout");
    expect_error("{\"added_tokens\":[{\"content\":\"x\"}]," MODEL "}", BADAM_E_FORMAT,
                 "added_tokens[0]");
    /* a folder without tokenizer.json */
    badam_tokenizer *tok = NULL;
    badam_error err;
    CHECK(tokenizer_load(test_workdir("tokenizer_empty_dir"), &tok, &err) == BADAM_E_IO);
    CHECK(strstr(err.message, "tokenizer.json") != NULL);
}

/* ---- badam tokenize --text ---- */

static void test_cli(void) {
    const char *cli = getenv("BADAM_CLI");
    if (!cli) {
        fprintf(stderr, "  (BADAM_CLI not set: CLI checks skipped)\n");
        return;
    }
    char cmd[8192], out[1024] = {0};
    snprintf(cmd, sizeof cmd, "'%s' tokenize --model '%s/bytelevel' --text 'hello world' --json",
             cli, fixtures);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    if (!p) return;
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    CHECK(pclose(p) == 0);
    CHECK_STR(out,
              "{\"ids\":[266,259,264],\"tokens\":[\"<|bos|>\",\"hello\",\"\xC4\xA0world\"]}\n");
    snprintf(cmd, sizeof cmd,
             "'%s' tokenize --model '%s/bytelevel' --text 'a\nb' --no-special | grep -c . | "
             "grep -qx 4",
             cli, fixtures);
    CHECK(test_system(cmd) == 0); /* header line + 3 tokens */
    snprintf(cmd, sizeof cmd, "'%s' tokenize --model '%s/bytelevel' --text x --bogus 2>/dev/null",
             cli, fixtures);
    CHECK(test_system(cmd) == 2);
    snprintf(cmd, sizeof cmd, "'%s' tokenize --text x 2>/dev/null", cli);
    CHECK(test_system(cmd) == 2);
    snprintf(cmd, sizeof cmd, "'%s' tokenize --model /nonexistent --text x 2>/dev/null", cli);
    CHECK(test_system(cmd) == 1);
    snprintf(cmd, sizeof cmd, "'%s' tokenize --help | grep -q -- --json", cli);
    CHECK(test_system(cmd) == 0);
}

int main(void) {
    const char *fx = test_source_path("tests/tokenizer/fixtures");
    if (!fx) {
        fprintf(stderr, "SKIP: BADAM_SOURCE_DIR is not set\n");
        return TEST_SKIP_CODE;
    }
    snprintf(fixtures, sizeof fixtures, "%s", fx);
    RUN_TEST(test_normalizers);
    RUN_TEST(test_split_behaviors);
    RUN_TEST(test_pretokenizers);
    RUN_TEST(test_decoders);
    RUN_TEST(test_bpe_model);
    RUN_TEST(test_added_tokens);
    RUN_TEST(test_fixture_bytelevel);
    RUN_TEST(test_fixture_sentencepiece);
    RUN_TEST(test_errors);
    RUN_TEST(test_cli);
    return test_result();
}
