/* Writing a model's Hugging Face folder: the weights and the files that travel with them. */
#include "model/model_folder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"
#include "io/json_write.h"
#include "io/safetensors.h"

#define PATH_BYTES 4096

static void shape_text(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < ndim && used < size; d++)
        used +=
            (size_t)snprintf(buf + used, size - used, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

static badam_status load_tensor(llama_param *p, badam_dtype dtype, const st_tensor *t,
                                const st_file *file, badam_error *err) {
    int same = t->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
    if (!same) {
        char got[128], want[128];
        shape_text(got, sizeof got, t->ndim, t->shape);
        shape_text(want, sizeof want, p->ndim, p->shape);
        return badam_fail(err, BADAM_E_SHAPE,
                          "%s: tensor '%s' has shape %s but config.json implies %s", file->path,
                          p->name, got, want);
    }
    badam_convert(p->data, dtype, t->data, t->dtype, p->numel);
    return BADAM_OK;
}

badam_status model_load_weights(llama_model *m, const st_set *set, const char *dir,
                                model_ignorable_fn ignorable, badam_error *err) {
    badam_status st = BADAM_OK;
    for (int i = 0; st == BADAM_OK && i < m->n_params; i++) {
        const st_file *file = NULL;
        const st_tensor *t = st_set_find(set, m->params[i].name, &file);
        if (!t) {
            char want[128];
            shape_text(want, sizeof want, m->params[i].ndim, m->params[i].shape);
            st = badam_fail(err, BADAM_E_SHAPE, "%s: tensor '%s' (shape %s) is missing", dir,
                            m->params[i].name, want);
        } else {
            st = load_tensor(&m->params[i], m->dtype, t, file, err);
            st_tensor_release(t);
        }
    }
    for (size_t i = 0; st == BADAM_OK && i < set->n_index; i++) {
        const char *name = set->index[i]->name;
        if (llama_find_param(m, name) < 0 && !(ignorable && ignorable(m, name)))
            st = badam_fail(err, BADAM_E_SHAPE,
                            "%s: unexpected tensor '%s' (not a parameter of this %s config)",
                            set->index_file[i]->path, name, m->cfg.model_type);
    }
    return st;
}

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

badam_status model_write_config(const llama_model *m, const char *src_dir, const char *out_dir,
                                model_config_json_fn fresh, model_set_dtype_fn set_dtype,
                                badam_error *err) {
    char path[PATH_BYTES];
    json_t *json = NULL;
    if (src_dir) {
        snprintf(path, sizeof path, "%s/config.json", src_dir);
        badam_status st = io_read_json(path, &json, err);
        if (st != BADAM_OK) return st;
        set_dtype(json, m->dtype);
    } else {
        json = fresh(&m->cfg, m->dtype);
    }
    snprintf(path, sizeof path, "%s/config.json", out_dir);
    badam_status st = io_json_write_file(path, json, 2, err);
    json_decref(json);
    return st;
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
    st = st_write_dir_fetch(out_dir, entries, (size_t)m->n_params, max_shard_bytes, m->save_fetch,
                            m->save_ctx, err);
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
