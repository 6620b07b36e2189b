/* libFuzzer harness: config.json (the input) through llama_config_load; on success the
 * parameter table is described (sizes from the config, no weights allocated). */
#include "badam/llama.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path(0, "config.json");
    fuzz_write(path, data, size);
    badam_error err;
    llama_config cfg;
    if (llama_config_load(path, &cfg, &err) != BADAM_OK) return 0;
    llama_model *m = NULL;
    if (llama_model_describe(&cfg, BADAM_DTYPE_BF16, &m, &err) == BADAM_OK) llama_model_free(m);
    return 0;
}
