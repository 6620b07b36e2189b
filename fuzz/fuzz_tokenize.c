/* libFuzzer harness: text (the input) through the repository's fixed tokenizers (byte-level BPE
 * of the tiny models, and the byte-level and SentencePiece-style fixtures of the parity test):
 * encode with and without special tokens, decode the ids back (with and without special tokens),
 * and decode the input's bytes read as arbitrary int32 ids (out-of-range ids included). The
 * tokenizer and the options are chosen from the input's size, so plain text files are seeds. */
#include <stdlib.h>

#include "badam/tokenizer.h"
#include "fuzz_util.h"

#define N_TOK 3
static badam_tokenizer *toks[N_TOK];

static void load_all(void) {
    static const char *const rel[N_TOK] = {"tests/fixtures/data/tiny_tokenizer",
                                           "tests/tokenizer/fixtures/bytelevel/tokenizer.json",
                                           "tests/tokenizer/fixtures/sentencepiece/tokenizer.json"};
    badam_error err;
    for (int i = 0; i < N_TOK; i++)
        fuzz_require(tokenizer_load(fuzz_source(0, rel[i]), &toks[i], &err), &err, rel[i]);
}

static void free_all(void) {
    for (int i = 0; i < N_TOK; i++) tokenizer_free(toks[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!toks[0]) {
        load_all();
        atexit(free_all);
    }
    const badam_tokenizer *tok = toks[size % N_TOK];
    int add_special = (size / N_TOK) % 2;
    badam_error err;
    int32_t *ids = NULL;
    size_t n = 0;
    char *out = NULL;
    size_t len = 0;
    if (tokenizer_encode(tok, (const char *)data, size, add_special, &ids, &n, &err) != BADAM_OK)
        abort(); /* any text encodes */
    for (int skip = 0; skip < 2; skip++) {
        if (tokenizer_decode(tok, ids, n, skip, &out, &len, &err) != BADAM_OK) abort();
        free(out);
    }
    free(ids);
    size_t n_raw = size / sizeof(int32_t);
    int32_t *raw = malloc((n_raw ? n_raw : 1) * sizeof *raw);
    if (!raw) abort();
    memcpy(raw, data, n_raw * sizeof *raw);
    if (tokenizer_decode(tok, n_raw ? raw : NULL, n_raw, add_special, &out, &len, &err) != BADAM_OK)
        abort();
    free(out);
    free(raw);
    return 0;
}
