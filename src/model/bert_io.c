/* Loading and saving encoder (bert, roberta) Hugging Face folders: the weights under their HF
 * names (the I64 position_ids buffer older folders carry is skipped by the safetensors reader),
 * config.json, and the tokenizer files beside them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"
#include "io/json_write.h"
#include "io/safetensors.h"
#include "model/model_folder.h"
#include "model/bert_internal.h"

#define PATH_BYTES 4096

/* The tied decoder of a masked-LM folder (its weight is the word embedding, its bias the head's
 * bias; older folders carry both copies): read past. */
static int tied_decoder(const llama_model *m, const char *name) {
    return m->cfg.encoder_head == LLAMA_HEAD_MLM &&
           (!strcmp(name, "lm_head.decoder.weight") || !strcmp(name, "lm_head.decoder.bias") ||
            !strcmp(name, "cls.predictions.decoder.weight") ||
            !strcmp(name, "cls.predictions.decoder.bias"));
}

badam_status bert_model_load(const char *dir, badam_dtype dtype, llama_model **out,
                             badam_error *err) {
    *out = NULL;
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/config.json", dir);
    llama_config cfg;
    badam_status st = bert_config_load(path, &cfg, err);
    if (st) return st;
    st_set *set = NULL;
    if ((st = st_set_open_dir(dir, &set, err))) return st;
    llama_model *m = NULL;
    st = bert_model_create(&cfg, dtype, &m, err);
    if (!st) st = model_load_weights(m, set, dir, tied_decoder, err);
    st_set_close(set);
    if (st) {
        llama_model_free(m);
        return st;
    }
    *out = m;
    return BADAM_OK;
}

/* config.json of a parsed config (no source folder to copy from). */
static json_t *config_to_json(const llama_config *c, badam_dtype dtype) {
    json_t *j = json_object();
    int roberta = !strcmp(c->model_type, "roberta");
    const char *arch =
        c->encoder_head == LLAMA_HEAD_MLM ? (roberta ? "RobertaForMaskedLM" : "BertForMaskedLM")
        : c->num_labels == 1 ? (roberta ? "RobertaForMultipleChoice" : "BertForMultipleChoice")
        : roberta            ? "RobertaForSequenceClassification"
                             : "BertForSequenceClassification";
    json_array_append_new(io_json_add_array(j, "architectures"), json_string(arch));
    json_object_set_new(j, "model_type", json_string(c->model_type));
    json_object_set_new(j, "hidden_size", json_integer(c->hidden_size));
    json_object_set_new(j, "intermediate_size", json_integer(c->intermediate_size));
    json_object_set_new(j, "num_hidden_layers", json_integer(c->n_layers));
    json_object_set_new(j, "num_attention_heads", json_integer(c->n_heads));
    json_object_set_new(j, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(j, "max_position_embeddings", json_integer(c->max_position_embeddings));
    json_object_set_new(j, "type_vocab_size", json_integer(c->type_vocab_size));
    json_object_set_new(j, "pad_token_id", json_integer(c->pad_token_id));
    json_object_set_new(j, "layer_norm_eps", io_json_real_float(c->layer_norm_eps));
    json_object_set_new(j, "hidden_dropout_prob", io_json_real_float(c->hidden_dropout));
    json_object_set_new(j, "attention_probs_dropout_prob",
                        io_json_real_float(c->attention_dropout));
    json_object_set_new(j, "classifier_dropout", io_json_real_float(c->classifier_dropout));
    json_object_set_new(j, "hidden_act", json_string("gelu"));
    json_object_set_new(j, "position_embedding_type", json_string("absolute"));
    if (c->num_labels > 1) {
        json_object_set_new(j, "num_labels", json_integer(c->num_labels));
        json_object_set_new(j, "problem_type", json_string("single_label_classification"));
    }
    json_object_set_new(j, "torch_dtype", json_string(model_torch_dtype_name(dtype)));
    return j;
}

/* The weights' dtype under the key the source config uses: "dtype" when it has one
 * (transformers 5), else "torch_dtype". */
static void set_dtype_field(json_t *json, badam_dtype dtype) {
    const char *key = json_object_get(json, "dtype") ? "dtype" : "torch_dtype";
    json_object_set_new(json, key, json_string(model_torch_dtype_name(dtype)));
}

/* Files of an encoder folder that travel with the weights unchanged (WordPiece vocab.txt, BPE
 * vocab.json and merges.txt, tokenizer.json and its configs). */
static const char *const COMPANION_FILES[] = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
    "merges.txt",     "added_tokens.json",
};

/* A model loaded with another head than its source folder's (bert_model_load_as): the copied
 * config.json gets the model's architectures and labels (id2label / label2id dropped). */
static badam_status fix_head_fields(const llama_model *m, const char *src_dir, const char *out_dir,
                                    badam_error *err) {
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/config.json", src_dir);
    llama_config src;
    badam_status st = bert_config_load(path, &src, err);
    if (st || (src.encoder_head == m->cfg.encoder_head && src.num_labels == m->cfg.num_labels))
        return st;
    snprintf(path, sizeof path, "%s/config.json", out_dir);
    json_t *json = NULL, *fresh = config_to_json(&m->cfg, m->dtype);
    if (!(st = io_read_json(path, &json, err))) {
        json_object_set(json, "architectures", json_object_get(fresh, "architectures"));
        json_object_del(json, "id2label"), json_object_del(json, "label2id");
        json_object_del(json, "num_labels"), json_object_del(json, "problem_type");
        if (m->cfg.num_labels > 1) {
            json_object_set(json, "num_labels", json_object_get(fresh, "num_labels"));
            json_object_set(json, "problem_type", json_object_get(fresh, "problem_type"));
        }
        st = io_json_write_file(path, json, 2, err);
    }
    json_decref(json);
    json_decref(fresh);
    return st;
}

badam_status bert_model_save(const llama_model *m, const char *src_dir, const char *out_dir,
                             size_t max_shard_bytes, badam_error *err) {
    badam_status st = model_write_weights(m, out_dir, max_shard_bytes, err);
    if (st == BADAM_OK)
        st = model_write_config(m, src_dir, out_dir, config_to_json, set_dtype_field, err);
    if (st == BADAM_OK && src_dir) st = fix_head_fields(m, src_dir, out_dir, err);
    if (!src_dir || st != BADAM_OK) return st;
    return model_copy_companions(src_dir, out_dir, COMPANION_FILES,
                                 sizeof COMPANION_FILES / sizeof COMPANION_FILES[0], err);
}
