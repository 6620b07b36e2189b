/* libFuzzer harness: tokenizer.json (the input) through tokenizer_load; on success a fixed text
 * is encoded and decoded, and every id of the vocabulary is decoded once. */
#include <stdlib.h>

#include "badam/tokenizer.h"
#include "fuzz_util.h"

static const char text[] = "Hello, world! 123 ab  \n\tcafé 日本語 <s> </s> [INST] ▁x";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path(0, "tokenizer.json");
    fuzz_write(path, data, size);
    badam_error err;
    badam_tokenizer *tok = NULL;
    if (tokenizer_load(path, &tok, &err) != BADAM_OK) return 0;
    int32_t *ids = NULL;
    size_t n = 0;
    char *out = NULL;
    size_t len = 0;
    if (tokenizer_encode(tok, text, sizeof text - 1, 1, &ids, &n, &err) == BADAM_OK) {
        if (tokenizer_decode(tok, ids, n, 0, &out, &len, &err) == BADAM_OK) free(out);
        free(ids);
    }
    int V = tokenizer_vocab_size(tok);
    int32_t *all = malloc(((size_t)V + 1) * sizeof *all);
    if (all) {
        for (int i = 0; i < V; i++) all[i] = i;
        if (tokenizer_decode(tok, all, (size_t)V, 1, &out, &len, &err) == BADAM_OK) free(out);
        free(all);
    }
    tokenizer_free(tok);
    return 0;
}
