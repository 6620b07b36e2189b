/* Writing a model's Hugging Face folder: the weights and the files that travel with them. */
#include "model/model_folder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"
#include "io/safetensors.h"

#define PATH_BYTES 4096

const char *model_torch_dtype_name(badam_dtype dtype) {
    switch (dtype) {
    case BADAM_DTYPE_F32:
        return "float32";
    case BADAM_DTYPE_BF16:
        return "bfloat16";
    default:
        return "float16";
    }
}

badam_status model_write_weights(const llama_model *m, const char *out_dir, size_t max_shard_bytes,
                                 badam_error *err) {
    badam_status st = io_make_dir(out_dir, err);
    if (st != BADAM_OK) return st;
    st_entry *entries = calloc((size_t)m->n_params, sizeof *entries);
    if (!entries) return badam_fail(err, BADAM_E_NOMEM, "save: out of memory");
    for (int i = 0; i < m->n_params; i++) {
        const llama_param *p = &m->params[i];
        entries[i].name = p->name;
        entries[i].dtype = m->dtype;
        entries[i].ndim = p->ndim;
        entries[i].shape[0] = p->shape[0];
        entries[i].shape[1] = p->shape[1];
        entries[i].data = p->data;
    }
    st = st_write_dir(out_dir, entries, (size_t)m->n_params, max_shard_bytes, err);
    free(entries);
    return st;
}

badam_status model_copy_companions(const char *src_dir, const char *out_dir,
                                   const char *const *files, size_t n, badam_error *err) {
    for (size_t i = 0; i < n; i++) {
        char src[PATH_BYTES], dst[PATH_BYTES];
        snprintf(src, sizeof src, "%s/%s", src_dir, files[i]);
        snprintf(dst, sizeof dst, "%s/%s", out_dir, files[i]);
        int present = 0;
        badam_status st = io_optional_file(src, &present, err);
        if (st != BADAM_OK) return st;
        if (!present || !strcmp(src, dst)) continue;
        st = io_copy_file(src, dst, err);
        if (st != BADAM_OK) return st;
    }
    return BADAM_OK;
}
