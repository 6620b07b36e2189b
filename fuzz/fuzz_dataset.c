/* libFuzzer harness: a dataset file (the input) through data_load in the format FUZZ_FORMAT
 * (compiled once per format: fuzz_data_alpaca, fuzz_data_sharegpt, fuzz_data_tokenized) with
 * the tiny tokenizer fixture; on success the examples are split and batched. The template and
 * truncation are chosen from the input's size, so fixture files are seeds as they are. */
#include <stdlib.h>

#include "badam/data.h"
#include "fuzz_util.h"

static badam_tokenizer *tok;

static void free_tok(void) {
    tokenizer_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const templates[] = {"default", "alpaca", "llama2",
                                            "llama3",  "chatml", "mistral"};
    static const int seq_lens[] = {0, 7, 64};
    badam_error err;
    if (!tok) {
        fuzz_require(
            tokenizer_load(fuzz_source(0, "tests/fixtures/data/tiny_tokenizer"), &tok, &err), &err,
            "tiny tokenizer");
        atexit(free_tok);
    }
    const char *path = fuzz_path(0, (size / 18) % 2 ? "data.jsonl" : "data.json");
    fuzz_write(path, data, size);
    data_options o = {0};
    o.format = (size / 36) % 2 ? FUZZ_FORMAT : DATA_FORMAT_AUTO;
    o.template_name = templates[size % 6];
    o.seq_len = seq_lens[(size / 6) % 3];
    /* pre-tokenized data also loads without a tokenizer (ids unchecked against a vocabulary) */
    const badam_tokenizer *t = FUZZ_FORMAT == DATA_FORMAT_TOKENIZED && size % 2 ? NULL : tok;
    data_set *ds = NULL;
    if (data_load(path, t, &o, &ds, &err) != BADAM_OK) return 0;
    for (size_t i = 0; i < ds->n; i++)
        if (ds->examples[i].len == 0 || (o.seq_len && ds->examples[i].len > (size_t)o.seq_len))
            abort();
    data_set *train = NULL, *val = NULL;
    if (ds->n >= 2 && data_split(ds, 1, 7, &train, &val, &err) == BADAM_OK) {
        batcher_options bo = {
            .batch_size = 2, .seq_len = 16, .shuffle = 1, .pack = (int)(size % 2), .seed = 3};
        batcher *b = NULL;
        if (batcher_create(train, &bo, &b, &err) == BADAM_OK) {
            data_batch batch;
            for (int k = 0; k < 3; k++) batcher_next(b, &batch);
            batcher_free(b);
        }
        data_free(train);
        data_free(val);
    }
    data_free(ds);
    return 0;
}
