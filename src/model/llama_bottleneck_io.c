/* The bottleneck adapter folder (llama.h: llama_bottleneck_save / _load / _open;
 * docs/file-formats.md, "Bottleneck adapters"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"
#include "io/json_get.h"
#include "io/json_write.h"
#include "io/safetensors.h"
#include "model/llama_internal.h"

#define NAME_BYTES 160

static const char *const SITE[2] = {"attn_adapter", "mlp_adapter"};

/* "model.layers.3.mlp_adapter.up.weight" of adapter a's part, and its shape. */
static void part_name(const llama_model *m, int a, int part, char *out, int64_t shape[2],
                      int *ndim) {
    const llama_bottleneck *b = m->bottleneck;
    const char *name;
    llama_bottleneck_part(b, m->cfg.hidden_size, part, NULL, &name);
    snprintf(out, NAME_BYTES, "model.layers.%d.%s.%s", a / 2, SITE[a % 2], name);
    int64_t s = b->size, C = m->cfg.hidden_size;
    const int64_t rows[4] = {s, s, C, C}, cols[4] = {C, 0, s, 0};
    shape[0] = rows[part], shape[1] = cols[part];
    *ndim = cols[part] ? 2 : 1;
}

badam_status llama_bottleneck_save(const llama_model *m, const char *dir, const char *base_model,
                                   badam_error *err) {
    const llama_bottleneck *b = m->bottleneck;
    if (!b) return badam_fail(err, BADAM_E_INVALID, "bottleneck adapters: none to save");
    badam_status st = io_make_dir(dir, err);
    if (st) return st;
    size_t n = (size_t)b->n_adapters * 4;
    st_entry *e = calloc(n, sizeof *e);
    char(*names)[NAME_BYTES] = calloc(n, sizeof *names);
    if (!e || !names) {
        free(e), free(names);
        return badam_fail(err, BADAM_E_NOMEM, "bottleneck adapters: out of memory");
    }
    for (int a = 0, k = 0; a < b->n_adapters; a++)
        for (int part = 0; part < 4; part++, k++) {
            int ndim;
            e[k].name = names[k];
            part_name(m, a, part, names[k], e[k].shape, &ndim);
            e[k].ndim = ndim, e[k].dtype = BADAM_DTYPE_F32;
            e[k].data = b->w[a] + llama_bottleneck_part(b, m->cfg.hidden_size, part, NULL, NULL);
        }
    char path[4096];
    io_path_join(path, sizeof path, dir, "adapter_model.safetensors");
    st = st_write(path, e, n, err);
    free(e), free(names);
    json_t *cfg = json_object(), *sites = json_array();
    json_array_append_new(sites, json_string("attention"));
    json_array_append_new(sites, json_string("mlp"));
    json_object_set_new(cfg, "adapter_type", json_string("bottleneck"));
    json_object_set_new(cfg, "task_type", json_string("CAUSAL_LM"));
    json_object_set_new(cfg, "adapter_size", json_integer(b->size));
    json_object_set_new(cfg, "hidden_size", json_integer(m->cfg.hidden_size));
    json_object_set_new(cfg, "num_layers", json_integer(m->cfg.n_layers));
    json_object_set_new(cfg, "non_linearity", json_string("relu"));
    json_object_set_new(cfg, "residual", json_boolean(1));
    json_object_set_new(cfg, "sites", sites);
    json_object_set_new(cfg, "base_model_name_or_path", json_string(base_model ? base_model : ""));
    io_path_join(path, sizeof path, dir, "adapter_config.json");
    if (!st) st = io_json_write_file(path, cfg, 2, err);
    json_decref(cfg);
    return st;
}

/* The fields of adapter_config.json that describe what we implement and nothing else: residual
 * true (z = y + adapter(y)) and sites ["attention", "mlp"] (both, each once, in any order). An
 * absent field means that; another value is refused, naming the file and the field. */
static badam_status check_form(const json_t *cfg, const char *path, badam_error *err) {
    const json_t *residual = json_object_get(cfg, "residual");
    const json_t *sites = json_object_get(cfg, "sites");
    if (residual && !json_is_true(residual))
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "%s: field 'residual' must be true (adapters without the residual add "
                          "are not implemented)",
                          path);
    if (!sites) return BADAM_OK;
    int seen[2] = {0, 0}, ok = json_is_array(sites) && json_array_size(sites) == 2;
    for (size_t i = 0; ok && i < 2; i++) {
        const char *v = json_string_value(json_array_get(sites, i));
        int k = !v ? -1 : !strcmp(v, "attention") ? 0 : !strcmp(v, "mlp") ? 1 : -1;
        ok = k >= 0 && !seen[k]++;
    }
    if (!ok)
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "%s: field 'sites' must be [\"attention\", \"mlp\"] (adapters at other "
                          "sites, or at one of them only, are not implemented)",
                          path);
    return BADAM_OK;
}

/* adapter_config.json's adapter_size, checked against the model (type, width, layers) and what
 * we implement (check_form). */
static badam_status read_config(const llama_model *m, const char *dir, int *size,
                                badam_error *err) {
    char path[4096];
    io_path_join(path, sizeof path, dir, "adapter_config.json");
    json_t *cfg = NULL;
    badam_status st = io_read_json(path, &cfg, err);
    if (st) return st;
    const json_t *type = json_object_get(cfg, "adapter_type");
    const json_t *act = json_object_get(cfg, "non_linearity");
    int hidden = 0, layers = 0;
    if (!json_is_string(type) || strcmp(json_string_value(type), "bottleneck"))
        st = badam_fail(err, BADAM_E_UNSUPPORTED,
                        "%s: field 'adapter_type' must be \"bottleneck\" (a LoRA adapter is "
                        "merged into the model by badam train instead)",
                        path);
    else if (!json_is_string(act) || strcmp(json_string_value(act), "relu"))
        st = badam_fail(err, BADAM_E_UNSUPPORTED, "%s: field 'non_linearity' must be \"relu\"",
                        path);
    if (!st) st = check_form(cfg, path, err);
    if (!st) st = json_get_int(cfg, "adapter_size", 1, size, path, err);
    if (!st) st = json_get_int(cfg, "hidden_size", 1, &hidden, path, err);
    if (!st) st = json_get_int(cfg, "num_layers", 1, &layers, path, err);
    if (!st && (hidden != m->cfg.hidden_size || layers != m->cfg.n_layers))
        st = badam_fail(err, BADAM_E_SHAPE,
                        "%s: adapters for hidden_size %d and %d layers; the model has %d and %d",
                        path, hidden, layers, m->cfg.hidden_size, m->cfg.n_layers);
    json_decref(cfg);
    return st;
}

badam_status llama_bottleneck_load(llama_model *m, const char *dir, badam_error *err) {
    llama_bottleneck *b = m->bottleneck;
    if (!b) return badam_fail(err, BADAM_E_INVALID, "bottleneck adapters: none attached");
    int size = 0;
    badam_status st = read_config(m, dir, &size, err);
    if (!st && size != b->size)
        st = badam_fail(err, BADAM_E_SHAPE,
                        "%s/adapter_config.json: adapter_size %d, but the attached adapters have "
                        "%d",
                        dir, size, b->size);
    if (st) return st;
    char path[4096];
    io_path_join(path, sizeof path, dir, "adapter_model.safetensors");
    st_file *f = NULL;
    if ((st = st_open(path, &f, err))) return st;
    for (int a = 0; a < b->n_adapters && !st; a++)
        for (int part = 0; part < 4 && !st; part++) {
            char name[NAME_BYTES];
            int64_t shape[2];
            int ndim;
            part_name(m, a, part, name, shape, &ndim);
            const st_tensor *t = st_find(f, name);
            if (!t)
                st = badam_fail(err, BADAM_E_SHAPE, "%s: tensor '%s' is missing", path, name);
            else if (t->ndim != ndim || t->shape[0] != shape[0] ||
                     (ndim == 2 && t->shape[1] != shape[1]))
                st = badam_fail(err, BADAM_E_SHAPE, "%s: tensor '%s' has the wrong shape", path,
                                name);
            else
                badam_convert(b->w[a] +
                                  llama_bottleneck_part(b, m->cfg.hidden_size, part, NULL, NULL),
                              BADAM_DTYPE_F32, t->data, t->dtype, t->numel);
        }
    if (!st && f->n_tensors != (size_t)b->n_adapters * 4)
        st = badam_fail(err, BADAM_E_SHAPE, "%s: holds %zu tensors, expected %d", path,
                        f->n_tensors, b->n_adapters * 4);
    st_close(f);
    return st;
}

badam_status llama_bottleneck_open(llama_model *m, const char *dir, badam_error *err) {
    int size = 0;
    badam_status st = read_config(m, dir, &size, err);
    if (!st) st = llama_bottleneck_attach(m, size, 0, err);
    if (!st) st = llama_bottleneck_load(m, dir, err);
    if (st) llama_bottleneck_detach(m);
    return st;
}
