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

#define PATH_BYTES 4096

static badam_status write_json(const char *dir, const char *name, const cJSON *json,
                               badam_error *err) {
    char path[PATH_BYTES];
    io_path_join(path, sizeof path, dir, name);
    char *text = cJSON_Print(json);
    if (!text) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", path);
    badam_status st = io_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return st;
}

/* The JSON of dir/name, or a new object when the file does not exist. */
static badam_status read_or_new(const char *dir, const char *name, cJSON **out, badam_error *err) {
    char path[PATH_BYTES] = "";
    if (dir) io_path_join(path, sizeof path, dir, name);
    *out = NULL;
    if (dir && io_is_file(path)) {
        badam_status st = io_read_json(path, out, err);
        if (st) return st;
        if (!cJSON_IsObject(*out)) {
            cJSON_Delete(*out);
            *out = NULL;
            return badam_fail(err, BADAM_E_FORMAT, "%s: expected a JSON object", path);
        }
        return BADAM_OK;
    }
    *out = cJSON_CreateObject();
    return *out ? BADAM_OK : badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", name);
}

static void set_item(cJSON *obj, const char *key, cJSON *value) {
    if (cJSON_HasObjectItem(obj, key))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, value);
    else
        cJSON_AddItemToObject(obj, key, value);
}

static cJSON *eos_value(const llama_folder_meta *meta) {
    if (meta->n_eos == 1) return cJSON_CreateNumber(meta->eos_ids[0]);
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < meta->n_eos; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(meta->eos_ids[i]));
    return a;
}

/* config.json (already written to out_dir) and generation_config.json: eos_token_id. */
static badam_status write_eos(const char *src_dir, const char *out_dir,
                              const llama_folder_meta *meta, badam_error *err) {
    cJSON *cfg = NULL;
    badam_status st = read_or_new(out_dir, "config.json", &cfg, err);
    if (st) return st;
    set_item(cfg, "eos_token_id", eos_value(meta));
    st = write_json(out_dir, "config.json", cfg, err);
    cJSON_Delete(cfg);
    if (st) return st;
    cJSON *gen = NULL;
    if ((st = read_or_new(src_dir, "generation_config.json", &gen, err))) return st;
    if (!cJSON_HasObjectItem(gen, "bos_token_id") && meta->bos_id >= 0)
        cJSON_AddNumberToObject(gen, "bos_token_id", meta->bos_id);
    set_item(gen, "eos_token_id", eos_value(meta));
    st = write_json(out_dir, "generation_config.json", gen, err);
    cJSON_Delete(gen);
    return st;
}

/* tokenizer_config.json: eos_token and chat_template; chat_template.jinja when the source has
 * one. Only when the source has a tokenizer_config.json (a folder without one has no tokenizer
 * to describe). */
static badam_status write_tokenizer_config(const char *src_dir, const char *out_dir,
                                           const llama_folder_meta *meta, badam_error *err) {
    char path[PATH_BYTES];
    io_path_join(path, sizeof path, src_dir, "tokenizer_config.json");
    if (!io_is_file(path)) return BADAM_OK;
    cJSON *tc = NULL;
    badam_status st = read_or_new(src_dir, "tokenizer_config.json", &tc, err);
    if (st) return st;
    if (meta->eos_token) {
        cJSON *old = cJSON_GetObjectItemCaseSensitive(tc, "eos_token");
        if (cJSON_IsObject(old) && cJSON_HasObjectItem(old, "content")) /* AddedToken form */
            cJSON_ReplaceItemInObjectCaseSensitive(old, "content",
                                                   cJSON_CreateString(meta->eos_token));
        else
            set_item(tc, "eos_token", cJSON_CreateString(meta->eos_token));
    }
    if (meta->chat_template) set_item(tc, "chat_template", cJSON_CreateString(meta->chat_template));
    st = write_json(out_dir, "tokenizer_config.json", tc, err);
    cJSON_Delete(tc);
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
    badam_status st = llama_model_save(m, src_dir, out_dir, max_shard_bytes, err);
    if (st || !meta) return st;
    if (meta->n_eos > 0 && (st = write_eos(src_dir, out_dir, meta, err))) return st;
    if (src_dir && (meta->eos_token || meta->chat_template))
        st = write_tokenizer_config(src_dir, out_dir, meta, err);
    return st;
}
