/* Loading and saving Llama-family models as Hugging Face folders. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/llama.h"
#include "io/files.h"
#include "io/json_write.h"
#include "io/safetensors.h"
#include "model/model_folder.h"

#define PATH_BYTES 4096

/* Tensors a checkpoint may carry that are not parameters and that we may safely ignore. */
static int ignorable_tensor(const llama_model *m, const char *name) {
    size_t n = strlen(name);
    const char *rotary = ".rotary_emb.inv_freq"; /* buffer saved by older transformers */
    if (n > strlen(rotary) && !strcmp(name + n - strlen(rotary), rotary)) return 1;
    /* Tied models sometimes also store the head; HF ties it to the embedding on load. */
    return m->cfg.tie_word_embeddings && !strcmp(name, "lm_head.weight");
}

badam_status llama_model_load(const char *dir, badam_dtype dtype, llama_model **out,
                              badam_error *err) {
    *out = NULL;
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/config.json", dir);
    llama_config cfg;
    badam_status st = llama_config_load(path, &cfg, err);
    if (st != BADAM_OK) return st;
    st_set *set = NULL;
    st = st_set_open_dir(dir, &set, err);
    if (st != BADAM_OK) return st;
    llama_model *m = NULL;
    st = llama_model_create(&cfg, dtype, &m, err);
    if (st == BADAM_OK) st = model_load_weights(m, set, dir, ignorable_tensor, err);
    st_set_close(set);
    if (st != BADAM_OK) {
        llama_model_free(m);
        return st;
    }
    *out = m;
    return BADAM_OK;
}

/* config.json written from the parsed config when there is no source folder to copy from. */
static json_t *config_to_json(const llama_config *c, badam_dtype dtype) {
    json_t *j = json_object();
    const char *arch = !strcmp(c->model_type, "qwen2")     ? "Qwen2ForCausalLM"
                       : !strcmp(c->model_type, "mistral") ? "MistralForCausalLM"
                                                           : "LlamaForCausalLM";
    json_t *archs = io_json_add_array(j, "architectures");
    json_array_append_new(archs, json_string(arch));
    json_object_set_new(j, "model_type", json_string(c->model_type));
    json_object_set_new(j, "hidden_size", json_integer(c->hidden_size));
    json_object_set_new(j, "intermediate_size", json_integer(c->intermediate_size));
    json_object_set_new(j, "num_hidden_layers", json_integer(c->n_layers));
    json_object_set_new(j, "num_attention_heads", json_integer(c->n_heads));
    json_object_set_new(j, "num_key_value_heads", json_integer(c->n_kv_heads));
    json_object_set_new(j, "head_dim", json_integer(c->head_dim));
    json_object_set_new(j, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(j, "max_position_embeddings", json_integer(c->max_position_embeddings));
    json_object_set_new(j, "rms_norm_eps", io_json_real_float(c->rms_norm_eps));
    json_object_set_new(j, "rope_theta", io_json_real(c->rope_theta));
    json_object_set_new(j, "hidden_act", json_string("silu"));
    json_object_set_new(j, "tie_word_embeddings", json_boolean(c->tie_word_embeddings));
    if (!strcmp(c->model_type, "llama"))
        json_object_set_new(j, "attention_bias", json_boolean(c->qkv_bias));
    if (c->sliding_window)
        json_object_set_new(j, "sliding_window", json_integer(c->sliding_window));
    if (c->rope_scaling == LLAMA_ROPE_LLAMA3) {
        json_t *rs = io_json_add_object(j, "rope_scaling");
        json_object_set_new(rs, "rope_type", json_string("llama3"));
        json_object_set_new(rs, "factor", io_json_real(c->rope_factor));
        json_object_set_new(rs, "low_freq_factor", io_json_real(c->rope_low_freq_factor));
        json_object_set_new(rs, "high_freq_factor", io_json_real(c->rope_high_freq_factor));
        json_object_set_new(rs, "original_max_position_embeddings",
                            json_integer(c->rope_original_max_position_embeddings));
    }
    if (c->bos_token_id >= 0) json_object_set_new(j, "bos_token_id", json_integer(c->bos_token_id));
    if (c->n_eos == 1)
        json_object_set_new(j, "eos_token_id", json_integer(c->eos_token_ids[0]));
    else if (c->n_eos > 1) {
        json_t *eos = io_json_add_array(j, "eos_token_id");
        for (int i = 0; i < c->n_eos; i++)
            json_array_append_new(eos, json_integer(c->eos_token_ids[i]));
    }
    json_object_set_new(j, "torch_dtype", json_string(model_torch_dtype_name(dtype)));
    return j;
}

/* The weights' dtype under the key(s) the source config uses: "dtype" (transformers 5, which
 * still reads "torch_dtype"), "torch_dtype" (transformers 4), both when both are there, and
 * "torch_dtype" when neither is (every version reads it). */
static void set_dtype_fields(json_t *json, badam_dtype dtype) {
    const char *name = model_torch_dtype_name(dtype);
    int has_new = (json_object_get(json, "dtype") != NULL);
    int has_old = (json_object_get(json, "torch_dtype") != NULL);
    if (has_new) json_object_set_new(json, "dtype", json_string(name));
    if (has_old)
        json_object_set_new(json, "torch_dtype", json_string(name));
    else if (!has_new)
        json_object_set_new(json, "torch_dtype", json_string(name));
}

/* Files of a HF folder that travel with the weights unchanged. */
static const char *const COMPANION_FILES[] = {
    "tokenizer.json",  "tokenizer_config.json",  "special_tokens_map.json",
    "tokenizer.model", "generation_config.json", "vocab.json",
    "merges.txt",      "added_tokens.json",      "chat_template.jinja",
};

badam_status llama_model_save(const llama_model *m, const char *src_dir, const char *out_dir,
                              size_t max_shard_bytes, badam_error *err) {
    badam_status st = model_write_weights(m, out_dir, max_shard_bytes, err);
    if (st == BADAM_OK)
        st = model_write_config(m, src_dir, out_dir, config_to_json, set_dtype_fields, err);
    if (!src_dir || st != BADAM_OK) return st;
    return model_copy_companions(src_dir, out_dir, COMPANION_FILES,
                                 sizeof COMPANION_FILES / sizeof COMPANION_FILES[0], err);
}
