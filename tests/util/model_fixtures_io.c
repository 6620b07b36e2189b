#include <stdio.h>

#include "model_fixtures.h"

int fixture_write_model(const char *dir, const llama_config *cfg, badam_dtype dtype, uint64_t seed,
                        float scale) {
    badam_error err = {0};
    llama_model *m = NULL;
    if (llama_model_create(cfg, dtype, &m, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    test_rng rng;
    test_rng_seed(&rng, seed);
    fixture_randomize(m, &rng, scale);
    badam_status st = llama_model_save(m, NULL, dir, 0, &err);
    if (st) fprintf(stderr, "%s\n", err.message);
    llama_model_free(m);
    return st ? -1 : 0;
}

int fixture_write_tokenized_data(const char *path, int n, int min_len, int max_len, int vocab,
                                 uint64_t seed) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    test_rng rng;
    test_rng_seed(&rng, seed);
    for (int e = 0; e < n; e++) {
        int len = min_len + (int)(test_rng_u32(&rng) % (uint32_t)(max_len - min_len + 1));
        int prompt = 1 + (int)(test_rng_u32(&rng) % (uint32_t)(len / 2));
        int ids[4096];
        for (int i = 0; i < len; i++)
            ids[i] = 3 + (int)(test_rng_u32(&rng) % (uint32_t)(vocab - 3));
        fprintf(f, "{\"input_ids\": [");
        for (int i = 0; i < len; i++) fprintf(f, "%s%d", i ? ", " : "", ids[i]);
        fprintf(f, "], \"labels\": [");
        for (int i = 0; i < len; i++) fprintf(f, "%s%d", i ? ", " : "", i < prompt ? -100 : ids[i]);
        fprintf(f, "]}\n");
    }
    fclose(f);
    return 0;
}
