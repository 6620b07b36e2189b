/* Evaluation: the loss equals the mean cross-entropy over trained tokens computed from
 * llama_forward_logits example by example; exact match on a hand-made dataset whose answers are
 * the model's own greedy outputs for half the examples (so exactly half match); the demo split
 * runs with counts that add up; `badam eval` on the command line (--help, bad flags, --json). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "badam/evaluate.h"
#include "badam/generate.h"
#include "io/files.h"
#include "io/json_write.h"
#include "testutil.h"

typedef struct fixture {
    llama_model *m;
    badam_tokenizer *tok;
} fixture;

static int open_tiny(fixture *f) {
    memset(f, 0, sizeof *f);
    badam_error err = {0};
    const char *dir = test_source_path("models/tiny-random-llama");
    if (llama_model_load(dir, BADAM_DTYPE_F32, &f->m, &err) || tokenizer_load(dir, &f->tok, &err)) {
        fprintf(stderr, "tiny model: %s\n", err.message);
        test_failures++;
        return -1;
    }
    return 0;
}

static void close_tiny(fixture *f) {
    tokenizer_free(f->tok);
    llama_model_free(f->m);
}

static data_set *load(const fixture *f, const char *path, int seq_len, badam_error *err) {
    data_options o = {DATA_FORMAT_AUTO, "alpaca", NULL, seq_len};
    data_set *ds = NULL;
    if (data_load(path, f->tok, &o, &ds, err)) return NULL;
    return ds;
}

/* Mean loss over trained tokens from full logits, one example at a time, in double. */
static double reference_loss(const llama_model *m, const data_set *ds, size_t *n_tokens) {
    int V = m->cfg.vocab_size;
    double total = 0.0;
    *n_tokens = 0;
    badam_error err = {0};
    for (size_t i = 0; i < ds->n; i++) {
        const token_seq *x = &ds->examples[i];
        int T = (int)x->len;
        llama_workspace *ws = NULL;
        float *logits = malloc(sizeof(float) * (size_t)T * V);
        llama_batch b = {.B = 1, .T = T, .tokens = x->ids};
        if (llama_workspace_create(m, 1, T, &ws, &err) ||
            llama_forward_logits(m, ws, &b, logits, &err)) {
            fprintf(stderr, "reference_loss: %s\n", err.message);
            test_failures++;
        } else {
            for (int t = 0; t + 1 < T; t++) {
                if (!x->trained[t + 1]) continue;
                const float *z = logits + (size_t)t * V;
                double mx = z[0], s = 0.0;
                for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
                for (int v = 0; v < V; v++) s += exp(z[v] - mx);
                total += mx + log(s) - z[x->ids[t + 1]];
                (*n_tokens)++;
            }
        }
        free(logits);
        llama_workspace_free(ws);
    }
    return *n_tokens ? total / (double)*n_tokens : 0.0;
}

static void test_loss_matches_forward(void) {
    fixture f;
    if (open_tiny(&f)) return;
    badam_error err = {0};
    data_set *ds = load(&f, test_source_path("data/demo/reverse_val.json"), 96, &err);
    CHECKF(ds != NULL, "%s", err.message);
    if (ds) {
        eval_options o = {0};
        o.batch_size = 3; /* the last batch is partial */
        eval_result r;
        CHECK(!evaluate(f.m, f.tok, ds, &o, &r, &err));
        size_t n = 0;
        double want = reference_loss(f.m, ds, &n);
        CHECKF(r.n_tokens == n, "%zu tokens, reference %zu", r.n_tokens, n);
        CHECK_NEAR(r.loss, want, 1e-7, 1e-5, "eval loss vs reference");
        CHECK_NEAR(r.perplexity, exp(r.loss), 0, 1e-9, "perplexity = exp(loss)");
        CHECK(r.n_examples == ds->n && r.em_count == 0);
        o.batch_size = 0;
        CHECK(evaluate(f.m, f.tok, ds, &o, &r, &err) == BADAM_E_INVALID);
    }
    data_free(ds);
    close_tiny(&f);
}

/* Writes an Alpaca file with the given instructions and outputs (Jansson does the escaping). */
static int write_alpaca(const char *path, const char *const *instr, char *const *outputs, int n) {
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "instruction", json_string(instr[i]));
        json_object_set_new(o, "input", json_string(""));
        json_object_set_new(o, "output", json_string(outputs[i]));
        json_array_append_new(arr, o);
    }
    char *s = io_json_dump(arr, 2, NULL);
    json_decref(arr);
    badam_error err = {0};
    int rc = s ? (int)io_write_file_atomic(path, s, strlen(s), &err) : -1;
    free(s);
    return rc;
}

static void test_exact_match_known_answers(void) {
    enum { N = 4, MAX_NEW = 3 };
    fixture f;
    if (open_tiny(&f)) return;
    const char *instr[N] = {"abc", "hello there", "xyz", "reverse: cat"};
    char *outputs[N] = {0};
    badam_error err = {0};
    int32_t stops[16];
    int n_stops = generate_stop_ids(f.m, f.tok, "alpaca", stops, 16);
    llama_kv_cache *kv = NULL;
    CHECK_OK(llama_kv_cache_create(f.m, 256, 0, &kv, &err), &err);
    generate_options go = {0};
    go.max_new_tokens = MAX_NEW;
    go.sampling.top_p = 1.0f;
    go.stop_ids = stops, go.n_stop_ids = n_stops;
    /* The model's greedy answers: examples 0 and 2 get them as references, 1 and 3 get "zq!". */
    for (int i = 0; i < N; i++) {
        chat_turn turn = {CHAT_USER, instr[i], 0};
        token_seq seq = {0};
        generate_result g = {0};
        CHECK(!template_render("alpaca", f.tok, &turn, 1, NULL, 1, &seq, &err));
        CHECKF(!generate_text(f.m, f.tok, kv, seq.ids, seq.len, &go, &g, &err), "%s", err.message);
        CHECKF(g.text && strlen(g.text) == g.text_len, "example %d: output with a NUL byte", i);
        outputs[i] = strdup(i % 2 == 0 ? (g.text ? g.text : "") : "zq!");
        if (i % 2) CHECK(!g.text || strcmp(g.text, "zq!") != 0);
        generate_result_free(&g);
        token_seq_free(&seq);
    }
    llama_kv_cache_free(kv);
    const char *dir = test_workdir("eval_em");
    char path[4200];
    snprintf(path, sizeof path, "%s/known.json", dir);
    CHECK(write_alpaca(path, instr, outputs, N) == 0);
    data_set *ds = load(&f, path, 256, &err);
    CHECKF(ds && ds->n == N, "%s", err.message);
    if (ds) {
        eval_options o = {0};
        o.batch_size = 2, o.exact_match = 1, o.max_new_tokens = MAX_NEW;
        o.stop_ids = stops, o.n_stop_ids = n_stops;
        eval_result r;
        CHECK(!evaluate(f.m, f.tok, ds, &o, &r, &err));
        CHECK_NEAR(r.em_accuracy, 0.5, 1e-12, 0, "exact-match accuracy");
        CHECKF(r.em_count == N && r.em_correct == 2, "exact match %zu / %zu", r.em_correct,
               r.em_count);
    }
    data_free(ds);
    for (int i = 0; i < N; i++) free(outputs[i]);
    close_tiny(&f);
}

static void test_exact_match_demo(void) {
    fixture f;
    if (open_tiny(&f)) return;
    badam_error err = {0};
    data_set *ds = load(&f, test_source_path("data/demo/reverse_val.json"), 96, &err);
    if (ds) {
        int32_t stops[16];
        eval_options o = {0};
        o.batch_size = 8, o.exact_match = 1, o.max_new_tokens = 8;
        o.stop_ids = stops, o.n_stop_ids = generate_stop_ids(f.m, f.tok, "alpaca", stops, 16);
        eval_result r;
        CHECK(!evaluate(f.m, f.tok, ds, &o, &r, &err));
        CHECK(r.em_count == ds->n && r.em_correct <= r.em_count);
        CHECK(r.em_accuracy >= 0.0 && r.em_accuracy <= 1.0);
    } else {
        CHECKF(0, "%s", err.message);
    }
    data_free(ds);
    close_tiny(&f);
}

static int run_cli(const char *args, char *out, size_t size) {
    return test_run_cli(test_workdir("eval_cli"), NULL, args, out, size);
}

static void test_cli(void) {
    if (!getenv("BADAM_CLI") || !getenv("BADAM_SOURCE_DIR")) {
        fprintf(stderr, "SKIP test_cli: run through ctest (BADAM_CLI)\n");
        return;
    }
    static char out[1 << 16];
    CHECK(run_cli("eval --help", out, sizeof out) == 0);
    CHECK(strstr(out, "--exact-match") && strstr(out, "--json") && strstr(out, "--template"));
    CHECK(run_cli("eval --model x --data y --bogus", out, sizeof out) == 2);
    CHECKF(strstr(out, "unknown option '--bogus'") && !strchr(strchr(out, '\n') + 1, '\n'), "%s",
           out);
    CHECK(run_cli("eval --model models/tiny-random-llama", out, sizeof out) == 2);
    CHECK(run_cli("eval --model models/tiny-random-llama --data /nonexistent.json", out,
                  sizeof out) == 1);
    CHECK(strstr(out, "/nonexistent.json") != NULL);
    CHECK(run_cli("eval --model models/tiny-random-llama --data data/demo/reverse_val.json "
                  "--template alpaca --seq-len 256 --exact-match --max-new-tokens 6 --json",
                  out, sizeof out) == 0);
    json_t *j = json_loads(out, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    const json_t *em = json_object_get(j, "exact_match");
    CHECKF(j && json_is_number(json_object_get(j, "loss")) &&
               json_is_number(json_object_get(j, "perplexity")) &&
               json_is_number(json_object_get(em, "accuracy")) &&
               (int)json_number_value(json_object_get(em, "count")) ==
                   (int)json_number_value(json_object_get(j, "examples")),
           "%s", out);
    json_decref(j);
    CHECK(run_cli("eval --model models/tiny-random-llama --data data/demo/reverse_val.json "
                  "--template alpaca",
                  out, sizeof out) == 0);
    CHECK(strstr(out, "perplexity") != NULL);
}

static int json_count(const json_t *j, const char *key) {
    const json_t *v = json_object_get(j, key);
    return json_is_number(v) ? (int)json_number_value(v) : -1;
}

/* eval says how many records it kept and dropped (a record with no trained token), in text and
 * in --json, and its counts add up. */
static void test_cli_reports_dropped(void) {
    if (!getenv("BADAM_CLI") || !getenv("BADAM_SOURCE_DIR")) {
        fprintf(stderr, "SKIP test_cli_reports_dropped: run through ctest (BADAM_CLI)\n");
        return;
    }
    const char *dir = test_workdir("eval_dropped");
    char path[2048], cmd[4096];
    snprintf(path, sizeof path, "%s/data.jsonl", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"input_ids\": [1, 5, 6, 7], \"labels\": [-100, -100, 6, 7]}\n"
          "{\"input_ids\": [1, 8, 9], \"labels\": [-100, -100, -100]}\n"
          "{\"input_ids\": [1, 5, 9, 9], \"labels\": [-100, 5, 9, 9]}\n",
          f);
    fclose(f);
    static char out[1 << 16];
    snprintf(cmd, sizeof cmd, "eval --model models/tiny-random-llama --data %s --json", path);
    CHECK(run_cli(cmd, out, sizeof out) == 0);
    json_t *j = json_loads(out, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    CHECKF(json_count(j, "records") == 3 && json_count(j, "examples") == 2 &&
               json_count(j, "dropped") == 1 && json_count(j, "truncated") == 0,
           "%s", out);
    json_decref(j);
    snprintf(cmd, sizeof cmd, "eval --model models/tiny-random-llama --data %s", path);
    CHECK(run_cli(cmd, out, sizeof out) == 0);
    CHECKF(strstr(out, "2 of 3 records kept, 1 dropped"), "%s", out);
}

int main(void) {
    RUN_TEST(test_loss_matches_forward);
    RUN_TEST(test_exact_match_known_answers);
    RUN_TEST(test_exact_match_demo);
    RUN_TEST(test_cli);
    RUN_TEST(test_cli_reports_dropped);
    return test_result();
}
