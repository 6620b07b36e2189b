/* Generation: KV-cache logits equal a full-sequence forward (fp32 and bf16 weights, GQA, biases,
 * LoRA); greedy decoding equals the PyTorch reference's (tests/ref/generate_ref.py; skipped
 * without torch); EOS and stop strings; streaming pieces add up to the output; seeded sampling is
 * reproducible; a continued prompt reuses the cache; `badam generate` on the command line. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "badam/generate.h"
#include "io/files.h"
#include "model_fixtures.h"
#include "testutil.h"

/* ---------------------------------------------------------------- KV cache vs full forward */

static void check_kv_against_forward(badam_dtype dtype, int with_lora, int tied, int bias) {
    enum { T = 13, PREFILL = 6 };
    badam_error err = {0};
    llama_config cfg = fixture_config(32, 48, 2, 4, 2, 53, tied, bias, bias);
    llama_model *m = NULL;
    llama_workspace *ws = NULL;
    llama_kv_cache *kv = NULL;
    test_rng rng;
    test_rng_seed(&rng, 11 + (uint64_t)dtype * 7 + (uint64_t)with_lora);
    CHECK_OK(llama_model_create(&cfg, dtype, &m, &err), &err);
    fixture_randomize(m, &rng, 0.2f);
    if (with_lora) {
        if (llama_lora_attach(m, 4, 8.0f, 0.0f,
                              (1u << LLAMA_P_Q) | (1u << LLAMA_P_K) | (1u << LLAMA_P_V) |
                                  (1u << LLAMA_P_O) | (1u << LLAMA_P_GATE) | (1u << LLAMA_P_UP) |
                                  (1u << LLAMA_P_DOWN),
                              5, &err)) {
            fprintf(stderr, "lora attach: %s\n", err.message);
            test_failures++;
            llama_model_free(m);
            return;
        }
        for (int l = 0; l < cfg.n_layers; l++)
            for (int k = 0; k < LLAMA_P_KIND_COUNT; k++) {
                int a = l * LLAMA_P_KIND_COUNT + k;
                if (!m->lora->B[a]) continue;
                const llama_param *p = &m->params[llama_param_index(m, l, (llama_param_kind)k)];
                test_fill_normal(&rng, m->lora->B[a], (size_t)p->shape[0] * 4,
                                 0.1f); /* B [out, r] */
            }
    }
    int32_t tokens[T];
    for (int t = 0; t < T; t++) tokens[t] = (int32_t)(test_rng_u32(&rng) % 53u);
    float *full = malloc(sizeof(float) * T * 53), *got = malloc(sizeof(float) * T * 53);
    llama_batch batch = {.B = 1, .T = T, .tokens = tokens};
    if (llama_workspace_create(m, 1, T, &ws, &err) ||
        llama_forward_logits(m, ws, &batch, full, &err) ||
        llama_kv_cache_create(m, 16, 4, &kv, &err)) {
        fprintf(stderr, "setup: %s\n", err.message);
        test_failures++;
    } else {
        /* A prompt of 6 (two chunks of 4 and 2), then one token at a time. */
        CHECK(!llama_decode(m, kv, tokens, PREFILL, got, 1, &err));
        for (int t = PREFILL; t < T; t++)
            CHECK(!llama_decode(m, kv, tokens + t, 1, got + (size_t)t * 53, 0, &err));
        CHECK(llama_kv_cache_length(kv) == T);
        CHECK_CLOSE(got, full, (size_t)T * 53, 1e-6, 1e-4,
                    "dtype %d lora %d tied %d bias %d: KV-cache logits vs full forward", (int)dtype,
                    with_lora, tied, bias);
        /* Truncating and re-running gives the same logits again. */
        llama_kv_cache_truncate(kv, 9);
        CHECK(!llama_decode(m, kv, tokens + 9, T - 9, got, 1, &err));
        CHECK_CLOSE(got, full + 9 * 53, (size_t)(T - 9) * 53, 1e-6, 1e-4,
                    "after truncate: KV-cache logits vs full forward");
        /* Overflow and bad ids are errors, not crashes. */
        int32_t bad = 53;
        llama_kv_cache_truncate(kv, 0);
        CHECK(llama_decode(m, kv, &bad, 1, got, 0, &err) == BADAM_E_SHAPE);
        CHECK(llama_decode(m, kv, tokens, T, NULL, 0, &err) == BADAM_OK);
        CHECK(llama_decode(m, kv, tokens, 4, NULL, 0, &err) == BADAM_E_INVALID);
        CHECK(strstr(err.message, "KV cache") != NULL);
    }
    free(full);
    free(got);
    llama_kv_cache_free(kv);
    llama_workspace_free(ws);
    llama_model_free(m);
}

static void test_kv_cache_matches_forward(void) {
    check_kv_against_forward(BADAM_DTYPE_F32, 0, 0, 1);
    check_kv_against_forward(BADAM_DTYPE_BF16, 0, 1, 0);
    check_kv_against_forward(BADAM_DTYPE_F32, 1, 0, 0);
}

/* ---------------------------------------------------------------- greedy vs PyTorch */

typedef struct ref_case {
    const char *preset, *dtype;
    int32_t prompt[6];
    int max_new;
} ref_case;

static const ref_case REF_CASES[] = {
    {"gqa_tied_bias", "F32", {1, 17, 42, 8, 11, 63}, 14},
    {"untied_pad_llama3", "BF16", {1, 5, 60, 33, 9, 70}, 14},
    {"mistral_swa", "F32", {1, 40, 3, 22, 15, 7}, 12}, /* sliding window 3 < length */
};
#define N_REF_CASES (int)(sizeof REF_CASES / sizeof REF_CASES[0])

static json_t *read_json(const char *path) {
    char *text = NULL;
    size_t n = 0;
    badam_error err = {0};
    if (io_read_file(path, &text, &n, &err)) return NULL;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    free(text);
    return j;
}

/* Greedy ids with the KV cache, stopping at the config's EOS ids (not included). */
static int greedy_c(const llama_model *m, const int32_t *prompt, int n, int max_new, int32_t *out) {
    badam_error err = {0};
    llama_kv_cache *kv = NULL;
    sampler *s = NULL;
    sampler_options so = {0.0f, 0, 1.0f, 0};
    float *logits = malloc(sizeof(float) * (size_t)m->cfg.vocab_size);
    int got = -1;
    if (!llama_kv_cache_create(m, n + max_new, 0, &kv, &err) &&
        !sampler_create(&so, m->cfg.vocab_size, &s, &err) &&
        !llama_decode(m, kv, prompt, n, logits, 0, &err)) {
        got = 0;
        while (got < max_new) {
            int32_t id = sampler_pick(s, logits), eos = 0;
            for (int e = 0; e < m->cfg.n_eos; e++) eos |= id == m->cfg.eos_token_ids[e];
            if (eos) break;
            out[got++] = id;
            if (llama_decode(m, kv, &id, 1, logits, 0, &err)) {
                got = -1;
                break;
            }
        }
    }
    if (got < 0) fprintf(stderr, "greedy_c: %s\n", err.message);
    free(logits);
    sampler_free(s);
    llama_kv_cache_free(kv);
    return got;
}

static void test_greedy_matches_pytorch(void) {
    if (!test_have_torch()) {
        fprintf(stderr, "SKIP test_greedy_matches_pytorch: /usr/bin/python3 cannot import torch\n");
        return;
    }
    char dir[4096], jobs_path[4200], cmd[9000];
    snprintf(dir, sizeof dir, "%s", test_workdir("generate_ref"));
    snprintf(jobs_path, sizeof jobs_path, "%s/jobs.json", dir);
    FILE *f = fopen(jobs_path, "w");
    if (!f) {
        CHECK(f != NULL);
        return;
    }
    fputs("[", f);
    for (int c = 0; c < N_REF_CASES; c++) {
        const ref_case *rc = &REF_CASES[c];
        fprintf(f,
                "%s{\"preset\": \"%s\", \"dtype\": \"%s\", \"model\": \"%s/%s\", \"out\": "
                "\"%s/%s.json\", \"max_new_tokens\": %d, \"eos\": [2], \"prompt_ids\": [",
                c ? ", " : "", rc->preset, rc->dtype, dir, rc->preset, dir, rc->preset,
                rc->max_new);
        for (int i = 0; i < 6; i++) fprintf(f, "%s%d", i ? ", " : "", rc->prompt[i]);
        fputs("]}", f);
    }
    fputs("]\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s --jobs %s",
             test_source_path("tests/ref/generate_ref.py"), jobs_path);
    if (test_system(cmd) != 0) {
        CHECKF(0, "generate_ref.py failed: %s", cmd);
        return;
    }
    for (int c = 0; c < N_REF_CASES; c++) {
        const ref_case *rc = &REF_CASES[c];
        char path[4300];
        snprintf(path, sizeof path, "%s/%s", dir, rc->preset);
        badam_error err = {0};
        llama_model *m = NULL;
        badam_dtype dt = !strcmp(rc->dtype, "BF16") ? BADAM_DTYPE_BF16 : BADAM_DTYPE_F32;
        if (llama_model_load(path, dt, &m, &err)) {
            CHECKF(0, "%s: %s", rc->preset, err.message);
            continue;
        }
        int32_t ids[64];
        int n = greedy_c(m, rc->prompt, 6, rc->max_new, ids);
        snprintf(path, sizeof path, "%s/%s.json", dir, rc->preset);
        json_t *j = read_json(path);
        const json_t *rids = json_object_get(j, "ids"), *marg = json_object_get(j, "margins");
        CHECKF(j && json_is_array(rids) && json_is_array(marg), "%s: bad reference output", path);
        int nr = (int)json_array_size(rids), same = 0;
        while (same < n && same < nr &&
               ids[same] == (int)json_number_value(json_array_get(rids, same)))
            same++;
        if (same < n || same < nr) {
            /* A divergence is only acceptable at an fp32-vs-fp64 near-tie of the top two. */
            double margin = same < (int)json_array_size(marg)
                                ? json_number_value(json_array_get(marg, same))
                                : 1.0;
            CHECKF(margin < 1e-4,
                   "%s: greedy ids differ from PyTorch at step %d (C %d ids, ref "
                   "%d ids, top-2 margin %g)",
                   rc->preset, same, n, nr, margin);
        }
        CHECKF(n > 0, "%s: no tokens generated", rc->preset);
        json_decref(j);
        llama_model_free(m);
    }
}

/* ---------------------------------------------------------------- text-level generation */

typedef struct stream {
    char buf[8192];
    size_t len;
    int calls;
} stream;

static void on_text(void *ctx, const char *text, size_t len) {
    stream *s = ctx;
    if (s->len + len < sizeof s->buf) memcpy(s->buf + s->len, text, len), s->len += len;
    s->calls++;
}

typedef struct tiny {
    llama_model *m;
    badam_tokenizer *tok;
    llama_kv_cache *kv;
    int32_t *prompt;
    size_t n_prompt;
} tiny;

static int tiny_open(tiny *t) {
    memset(t, 0, sizeof *t);
    badam_error err = {0};
    const char *dir = test_source_path("models/tiny-random-llama");
    if (llama_model_load(dir, BADAM_DTYPE_F32, &t->m, &err) || tokenizer_load(dir, &t->tok, &err) ||
        llama_kv_cache_create(t->m, 128, 0, &t->kv, &err) ||
        tokenizer_encode(t->tok, "hello world", 11, 1, &t->prompt, &t->n_prompt, &err)) {
        fprintf(stderr, "tiny model: %s\n", err.message);
        test_failures++;
        return -1;
    }
    return 0;
}

static void tiny_close(tiny *t) {
    free(t->prompt);
    llama_kv_cache_free(t->kv);
    tokenizer_free(t->tok);
    llama_model_free(t->m);
}

static badam_status run_gen(tiny *t, const generate_options *o, generate_result *r, stream *s) {
    badam_error err = {0};
    generate_options oo = *o;
    if (s) memset(s, 0, sizeof *s), oo.on_text = on_text, oo.on_text_ctx = s;
    badam_status st = generate_text(t->m, t->tok, t->kv, t->prompt, t->n_prompt, &oo, r, &err);
    if (st) fprintf(stderr, "generate_text: %s\n", err.message);
    return st;
}

static void test_stops_and_streaming(void) {
    tiny t;
    if (tiny_open(&t)) return;
    generate_options o = {0};
    o.max_new_tokens = 24;
    o.sampling.top_p = 1.0f;
    generate_result r0, r;
    stream s;
    if (run_gen(&t, &o, &r0, &s)) {
        test_failures++;
        tiny_close(&t);
        return;
    }
    CHECK(r0.stop == GENERATE_STOP_MAX_TOKENS && r0.n_ids == 24);
    CHECKF(s.len == r0.text_len && !memcmp(s.buf, r0.text, s.len),
           "streamed %zu bytes in %d calls, result %zu bytes", s.len, s.calls, r0.text_len);
    /* EOS: a stop id ends generation before it (the id is not part of the output). */
    int32_t stop_id = r0.ids[5];
    size_t first = 0;
    while (r0.ids[first] != stop_id) first++;
    o.stop_ids = &stop_id, o.n_stop_ids = 1;
    CHECK(!run_gen(&t, &o, &r, &s));
    CHECK(r.stop == GENERATE_STOP_EOS && r.n_ids == first);
    CHECK(!memcmp(r.ids, r0.ids, first * sizeof *r.ids));
    CHECK(s.len == r.text_len && !memcmp(s.buf, r.text, s.len));
    generate_result_free(&r);
    o.n_stop_ids = 0;
    /* A stop string: a printable ASCII byte from the later part of the output (the random
     * model's output is mostly incomplete UTF-8), plus a longer one that starts the same way and
     * never completes, so streaming has to hold text back and release it at the end. */
    char stop[2] = "", held[8] = "";
    for (size_t i = r0.text_len / 3; i < r0.text_len && !stop[0]; i++) {
        unsigned char a = (unsigned char)r0.text[i];
        if (a > 0x20 && a < 0x7f) stop[0] = (char)a;
    }
    if (stop[0]) {
        snprintf(held, sizeof held, "%s\x01\x02", stop);
        const char *only_held[] = {held};
        o.stop_strings = only_held, o.n_stop_strings = 1;
        CHECK(!run_gen(&t, &o, &r, &s));
        CHECK(r.stop == GENERATE_STOP_MAX_TOKENS && r.text_len == r0.text_len);
        CHECK(s.len == r.text_len && !memcmp(s.buf, r.text, s.len));
        generate_result_free(&r);
        const char *stops[] = {"never-appears-xyz", held, stop};
        o.stop_strings = stops, o.n_stop_strings = 3;
        CHECK(!run_gen(&t, &o, &r, &s));
        const char *at = strstr(r0.text, stop);
        size_t cut = at ? (size_t)(at - r0.text) : 0;
        CHECKF(r.stop == GENERATE_STOP_STRING && r.text_len == cut && !memcmp(r.text, r0.text, cut),
               "stop '%s': stop %d, %zu bytes (expected %zu)", stop, (int)r.stop, r.text_len, cut);
        CHECK(s.len == r.text_len && !memcmp(s.buf, r.text, s.len));
        CHECK(r.text_len == strlen(r.text));
        generate_result_free(&r);
        o.n_stop_strings = 0;
    } else {
        fprintf(stderr, "note: no ASCII byte in the tiny model's output; stop string not tested\n");
    }
    /* Continuing a conversation reuses the cache and matches a fresh cache. */
    size_t n2 = t.n_prompt + r0.n_ids + 3;
    int32_t *p2 = malloc(n2 * sizeof *p2);
    memcpy(p2, t.prompt, t.n_prompt * sizeof *p2);
    memcpy(p2 + t.n_prompt, r0.ids, r0.n_ids * sizeof *p2);
    p2[n2 - 3] = 10, p2[n2 - 2] = 'h', p2[n2 - 1] = 'i';
    o.max_new_tokens = 8;
    generate_result a, b;
    badam_error err = {0};
    CHECK(!generate_text(t.m, t.tok, t.kv, p2, n2, &o, &a, &err));
    llama_kv_cache_truncate(t.kv, 0);
    CHECK(!generate_text(t.m, t.tok, t.kv, p2, n2, &o, &b, &err));
    CHECK(a.n_ids == b.n_ids && !memcmp(a.ids, b.ids, a.n_ids * sizeof *a.ids));
    generate_result_free(&a);
    generate_result_free(&b);
    free(p2);
    generate_result_free(&r0);
    tiny_close(&t);
}

static void test_sampling_seeded(void) {
    tiny t;
    if (tiny_open(&t)) return;
    generate_options o = {0};
    o.max_new_tokens = 16;
    o.sampling = (sampler_options){0.9f, 40, 0.95f, 7};
    generate_result a, b, c, g, k1;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b), memset(&c, 0, sizeof c);
    memset(&g, 0, sizeof g), memset(&k1, 0, sizeof k1);
    CHECK(!run_gen(&t, &o, &a, NULL));
    CHECK(!run_gen(&t, &o, &b, NULL));
    o.sampling.seed = 8;
    CHECK(!run_gen(&t, &o, &c, NULL));
    CHECK(a.n_ids == b.n_ids && !memcmp(a.ids, b.ids, a.n_ids * sizeof *a.ids));
    CHECK(a.n_ids != c.n_ids || memcmp(a.ids, c.ids, a.n_ids * sizeof *a.ids) != 0);
    /* top_k = 1 is greedy whatever the temperature and seed. */
    o.sampling = (sampler_options){1.5f, 1, 1.0f, 99};
    CHECK(!run_gen(&t, &o, &k1, NULL));
    o.sampling = (sampler_options){0.0f, 0, 1.0f, 0};
    CHECK(!run_gen(&t, &o, &g, NULL));
    CHECK(g.n_ids == k1.n_ids && !memcmp(g.ids, k1.ids, g.n_ids * sizeof *g.ids));
    generate_result_free(&a), generate_result_free(&b), generate_result_free(&c);
    generate_result_free(&g), generate_result_free(&k1);
    tiny_close(&t);

    /* Sampler statistics on a known distribution: p = softmax(log(0.5, 0.3, 0.15, 0.05)). */
    float logits[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    sampler *s = NULL;
    badam_error err = {0};
    sampler_options so = {1.0f, 0, 0.75f, 3}; /* top_p 0.75 keeps tokens 0 and 1 */
    CHECK_OK(sampler_create(&so, 4, &s, &err), &err);
    int counts[4] = {0};
    for (int i = 0; i < 4000; i++) counts[sampler_pick(s, logits)]++;
    sampler_free(s);
    CHECKF(counts[2] == 0 && counts[3] == 0 && counts[0] > 2200 && counts[0] < 2800,
           "counts %d %d %d %d", counts[0], counts[1], counts[2], counts[3]);
    so = (sampler_options){1.0f, 3, 1.0f, 3}; /* top_k 3 */
    CHECK_OK(sampler_create(&so, 4, &s, &err), &err);
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < 4000; i++) counts[sampler_pick(s, logits)]++;
    sampler_free(s);
    CHECKF(counts[3] == 0 && counts[2] > 500 && counts[2] < 800, "counts %d %d %d %d", counts[0],
           counts[1], counts[2], counts[3]);
    so = (sampler_options){-1.0f, 0, 1.0f, 3};
    CHECK(sampler_create(&so, 4, &s, &err) == BADAM_E_INVALID);
    so = (sampler_options){1.0f, 0, 1.5f, 3};
    CHECK(sampler_create(&so, 4, &s, &err) == BADAM_E_INVALID);
    so = (sampler_options){0}; /* zeroed options: greedy */
    CHECK_OK(sampler_create(&so, 4, &s, &err), &err);
    CHECK(sampler_pick(s, logits) == 0);
    sampler_free(s);
}

/* ---------------------------------------------------------------- command line */

static int run_cli(const char *args, const char *input, char *out, size_t size) {
    return test_run_cli(test_workdir("generate_cli"), input, args, out, size);
}

static void test_cli(void) {
    if (!getenv("BADAM_CLI") || !getenv("BADAM_SOURCE_DIR")) {
        fprintf(stderr, "SKIP test_cli: run through ctest (BADAM_CLI)\n");
        return;
    }
    static char out[1 << 16];
    CHECK(run_cli("generate --help", NULL, out, sizeof out) == 0);
    CHECK(strstr(out, "--max-new-tokens") && strstr(out, "--chat") && strstr(out, "--stop"));
    CHECK(run_cli("generate --model x --prompt y --no-such-flag", NULL, out, sizeof out) == 2);
    CHECKF(strstr(out, "unknown option '--no-such-flag'") && !strchr(strchr(out, '\n') + 1, '\n'),
           "%s", out);
    CHECK(run_cli("generate --model models/tiny-random-llama", NULL, out, sizeof out) == 2);
    CHECK(run_cli("generate --model models/tiny-random-llama --prompt hi --temperature -1", NULL,
                  out, sizeof out) == 2);
    CHECK(run_cli("generate --model /nonexistent --prompt hi", NULL, out, sizeof out) == 1);
    CHECK(strstr(out, "/nonexistent") != NULL);
    CHECK(run_cli("generate --model models/tiny-random-llama --prompt hello --max-new-tokens 6",
                  NULL, out, sizeof out) == 0);
    CHECK(run_cli("generate --model models/tiny-random-llama --template alpaca --prompt hello "
                  "--max-new-tokens 4 --temperature 0.7 --top-k 20 --top-p 0.9 --seed 3 "
                  "--stop x --stop yz",
                  NULL, out, sizeof out) == 0);
    CHECK(run_cli("generate --model models/tiny-random-llama --chat --template alpaca "
                  "--max-new-tokens 4",
                  "printf 'hi\\nreverse abc\\n' |", out, sizeof out) == 0);
}

int main(void) {
    RUN_TEST(test_kv_cache_matches_forward);
    RUN_TEST(test_greedy_matches_pytorch);
    RUN_TEST(test_stops_and_streaming);
    RUN_TEST(test_sampling_seeded);
    RUN_TEST(test_cli);
    return test_result();
}
