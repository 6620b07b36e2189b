/* libFuzzer harness: model.safetensors.index.json (the input) in a folder holding the two shards
 * of fuzz/seeds/safetensors_index (copied once), through st_set_open_dir; on success every
 * indexed tensor is found and read. */
#include "fuzz_util.h"
#include "io/files.h"
#include "io/safetensors.h"

static void copy_shard(const char *name) {
    char *data = NULL;
    size_t n = 0;
    badam_error err;
    char rel[256];
    snprintf(rel, sizeof rel, "fuzz/seeds/safetensors_index/%s", name);
    fuzz_require(io_read_file(fuzz_source(0, rel), &data, &n, &err), &err, rel);
    fuzz_write(fuzz_path(1, name), data, n);
    free(data);
}

static void make_shards(void) {
    copy_shard("model-00001-of-00002.safetensors");
    copy_shard("model-00002-of-00002.safetensors");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    if (!ready) {
        make_shards();
        ready = 1;
    }
    fuzz_write(fuzz_path(0, "model.safetensors.index.json"), data, size);
    badam_error err;
    st_set *set = NULL;
    if (st_set_open_dir(fuzz_dir(), &set, &err) != BADAM_OK) return 0;
    volatile unsigned sum = 0;
    for (size_t i = 0; i < set->n_index; i++) {
        const st_file *file = NULL;
        const st_tensor *t = st_set_find(set, set->index[i]->name, &file);
        if (t != set->index[i] || file != set->index_file[i]) abort();
        const unsigned char *p = t->data;
        for (size_t k = 0; k < t->nbytes; k++) sum += p[k];
    }
    (void)sum;
    st_set_close(set);
    return 0;
}
