/* A saved folder that declares how the model was fine-tuned (llama_model_save_meta): the
 * end-of-turn token a chat template trained after every response stops generation in
 * transformers, vLLM and llama.cpp only if the folder says so. transformers reads eos_token_id
 * from generation_config.json (falling back to config.json) and accepts a list; the tokenizer's
 * eos_token and chat_template come from tokenizer_config.json, or chat_template.jinja first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/llama.h"
#include "io/files.h"
#include "io/json_write.h"
#include "model/bert_internal.h"

#define PATH_BYTES 4096

static badam_status write_json(const char *dir, const char *name, const json_t *json,
                               badam_error *err) {
    char path[PATH_BYTES];
    io_path_join(path, sizeof path, dir, name);
    return io_json_write_file(path, json, 2, err);
}

/* The JSON of dir/name, or a new object when the file does not exist. */
static badam_status read_or_new(const char *dir, const char *name, json_t **out, badam_error *err) {
    char path[PATH_BYTES] = "";
    if (dir) io_path_join(path, sizeof path, dir, name);
    *out = NULL;
    int present = 0;
    badam_status st = dir ? io_optional_file(path, &present, err) : BADAM_OK;
    if (st) return st;
    if (present) {
        st = io_read_json(path, out, err);
        if (st) return st;
        if (!json_is_object(*out)) {
            json_decref(*out);
            *out = NULL;
            return badam_fail(err, BADAM_E_FORMAT, "%s: expected a JSON object", path);
        }
        return BADAM_OK;
    }
    *out = json_object();
    return *out ? BADAM_OK : badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", name);
}

/* obj[key] = value: an existing key keeps its place, a new one comes last. */
static void set_item(json_t *obj, const char *key, json_t *value) {
    json_object_set_new(obj, key, value);
}

static json_t *eos_value(const llama_folder_meta *meta) {
    if (meta->n_eos == 1) return json_integer(meta->eos_ids[0]);
    json_t *a = json_array();
    for (int i = 0; a && i < meta->n_eos; i++)
        json_array_append_new(a, json_integer(meta->eos_ids[i]));
    return a;
}

/* config.json (already written to out_dir) and generation_config.json: eos_token_id. */
static badam_status write_eos(const char *src_dir, const char *out_dir,
                              const llama_folder_meta *meta, badam_error *err) {
    json_t *cfg = NULL;
    badam_status st = read_or_new(out_dir, "config.json", &cfg, err);
    if (st) return st;
    set_item(cfg, "eos_token_id", eos_value(meta));
    st = write_json(out_dir, "config.json", cfg, err);
    json_decref(cfg);
    if (st) return st;
    json_t *gen = NULL;
    if ((st = read_or_new(src_dir, "generation_config.json", &gen, err))) return st;
    if (!json_object_get(gen, "bos_token_id") && meta->bos_id >= 0)
        json_object_set_new(gen, "bos_token_id", json_integer(meta->bos_id));
    set_item(gen, "eos_token_id", eos_value(meta));
    st = write_json(out_dir, "generation_config.json", gen, err);
    json_decref(gen);
    return st;
}

/* tokenizer_config.json: eos_token and chat_template; chat_template.jinja when the source has
 * one. Only when the source has a tokenizer_config.json (a folder without one has no tokenizer
 * to describe). */
static badam_status write_tokenizer_config(const char *src_dir, const char *out_dir,
                                           const llama_folder_meta *meta, badam_error *err) {
    char path[PATH_BYTES];
    io_path_join(path, sizeof path, src_dir, "tokenizer_config.json");
    int present = 0;
    badam_status st = io_optional_file(path, &present, err);
    if (st || !present) return st;
    json_t *tc = NULL;
    if ((st = read_or_new(src_dir, "tokenizer_config.json", &tc, err))) return st;
    if (meta->eos_token) {
        json_t *old = json_object_get(tc, "eos_token");
        if (json_is_object(old) && json_object_get(old, "content")) /* AddedToken form */
            json_object_set_new(old, "content", json_string(meta->eos_token));
        else
            set_item(tc, "eos_token", json_string(meta->eos_token));
    }
    if (meta->chat_template) set_item(tc, "chat_template", json_string(meta->chat_template));
    st = write_json(out_dir, "tokenizer_config.json", tc, err);
    json_decref(tc);
    io_path_join(path, sizeof path, src_dir, "chat_template.jinja");
    if (!st && meta->chat_template && io_is_file(path)) {
        io_path_join(path, sizeof path, out_dir, "chat_template.jinja");
        st = io_write_file_atomic(path, meta->chat_template, strlen(meta->chat_template), err);
    }
    return st;
}

badam_status llama_model_save_meta(const llama_model *m, const char *src_dir, const char *out_dir,
                                   size_t max_shard_bytes, const llama_folder_meta *meta,
                                   badam_error *err) {
    /* an encoder (bert, roberta) is saved by its family, with no generation metadata */
    int encoder = m->cfg.encoder_head != LLAMA_HEAD_NONE;
    badam_status st = encoder ? bert_model_save(m, src_dir, out_dir, max_shard_bytes, err)
                              : llama_model_save(m, src_dir, out_dir, max_shard_bytes, err);
    if (st || !meta || encoder) return st;
    if (meta->n_eos > 0 && (st = write_eos(src_dir, out_dir, meta, err))) return st;
    if (src_dir && (meta->eos_token || meta->chat_template))
        st = write_tokenizer_config(src_dir, out_dir, meta, err);
    return st;
}
