/* libFuzzer harness: one safetensors file (the input) through st_open; on success every tensor's
 * bytes are read (ASan: they must lie inside the mapping) and looked up by name. */
#include "fuzz_util.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path(0, "model.safetensors");
    fuzz_write(path, data, size);
    badam_error err;
    st_file *f = NULL;
    if (st_open(path, &f, &err) != BADAM_OK) return 0;
    volatile unsigned sum = 0;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const st_tensor *t = &f->tensors[i];
        const unsigned char *p = t->data;
        for (size_t k = 0; k < t->nbytes; k++) sum += p[k];
        if (st_find(f, t->name) != t) abort();
        if (t->nbytes != t->numel * badam_dtype_size(t->dtype)) abort();
    }
    (void)sum;
    st_close(f);
    return 0;
}
