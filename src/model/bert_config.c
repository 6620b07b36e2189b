/* config.json -> llama_config for the encoder families bert and roberta (transformers'
 * BertConfig / RobertaConfig): the sizes, the embeddings' vocabularies and padding index, the
 * LayerNorm eps, the dropouts and the head from "architectures". */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "io/files.h"
#include "io/json_get.h"
#include "model/bert_internal.h"

#define TRY(call)                                                                                  \
    do {                                                                                           \
        badam_status st_ = (call);                                                                 \
        if (st_ != BADAM_OK) return st_;                                                           \
    } while (0)

static badam_status check_range(const char *path, const char *field, int value, int lo, int hi,
                                badam_error *err) {
    if (value < lo || value > hi)
        return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' = %d is outside [%d, %d]", path,
                          field, value, lo, hi);
    return BADAM_OK;
}

/* A string field that must equal `want` when present. */
static badam_status require_string(const json_t *json, const char *field, const char *want,
                                   const char *path, badam_error *err) {
    char v[64] = "";
    TRY(json_get_string(json, field, 0, v, sizeof v, path, err));
    if (v[0] && strcmp(v, want))
        return badam_fail(err, BADAM_E_UNSUPPORTED, "%s: field '%s' is '%s'; supported: '%s'", path,
                          field, v, want);
    return BADAM_OK;
}

static badam_status parse_sizes(const json_t *json, const char *path, llama_config *cfg,
                                badam_error *err) {
    TRY(json_get_int(json, "hidden_size", 1, &cfg->hidden_size, path, err));
    TRY(json_get_int(json, "intermediate_size", 1, &cfg->intermediate_size, path, err));
    TRY(json_get_int(json, "num_hidden_layers", 1, &cfg->n_layers, path, err));
    TRY(json_get_int(json, "num_attention_heads", 1, &cfg->n_heads, path, err));
    TRY(json_get_int(json, "vocab_size", 1, &cfg->vocab_size, path, err));
    cfg->max_position_embeddings = 512, cfg->type_vocab_size = 2;
    TRY(json_get_int(json, "max_position_embeddings", 0, &cfg->max_position_embeddings, path, err));
    TRY(json_get_int(json, "type_vocab_size", 0, &cfg->type_vocab_size, path, err));
    TRY(check_range(path, "hidden_size", cfg->hidden_size, 1, 1 << 17, err));
    TRY(check_range(path, "intermediate_size", cfg->intermediate_size, 1, 1 << 19, err));
    TRY(check_range(path, "num_hidden_layers", cfg->n_layers, 1, 1024, err));
    TRY(check_range(path, "num_attention_heads", cfg->n_heads, 1, 1024, err));
    TRY(check_range(path, "vocab_size", cfg->vocab_size, 1, 1 << 23, err));
    TRY(check_range(path, "max_position_embeddings", cfg->max_position_embeddings, 1, 1 << 24,
                    err));
    TRY(check_range(path, "type_vocab_size", cfg->type_vocab_size, 1, 1 << 16, err));
    if (cfg->hidden_size % cfg->n_heads)
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: field 'hidden_size' (%d) is not a multiple of "
                          "'num_attention_heads' (%d)",
                          path, cfg->hidden_size, cfg->n_heads);
    cfg->n_kv_heads = cfg->n_heads;
    cfg->head_dim = cfg->hidden_size / cfg->n_heads;
    return BADAM_OK;
}

/* The dropouts (HF defaults 0.1; classifier_dropout null: hidden_dropout_prob) and eps. */
static badam_status parse_rates(const json_t *json, const char *path, llama_config *cfg,
                                badam_error *err) {
    double hidden = 0.1, attn = 0.1, eps = 1e-12, cls = -1.0;
    TRY(json_get_double(json, "hidden_dropout_prob", 0, &hidden, path, err));
    TRY(json_get_double(json, "attention_probs_dropout_prob", 0, &attn, path, err));
    TRY(json_get_double(json, "classifier_dropout", 0, &cls, path, err));
    TRY(json_get_double(json, "layer_norm_eps", 0, &eps, path, err));
    const char *bad = !(hidden >= 0 && hidden < 1)              ? "hidden_dropout_prob"
                      : !(attn >= 0 && attn < 1)                ? "attention_probs_dropout_prob"
                      : !(cls == -1.0 || (cls >= 0 && cls < 1)) ? "classifier_dropout"
                      : !(eps > 0 && eps < 1)                   ? "layer_norm_eps"
                                                                : NULL;
    if (bad) return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' is out of range", path, bad);
    cfg->hidden_dropout = (float)hidden, cfg->attention_dropout = (float)attn;
    cfg->classifier_dropout = (float)(cls < 0 ? hidden : cls);
    cfg->layer_norm_eps = (float)eps;
    return BADAM_OK;
}

/* The head from architectures[0] (absent: sequence classification) and the number of labels
 * (id2label's size, else num_labels, else 2 as transformers' PretrainedConfig). */
static badam_status parse_head(const json_t *json, const char *path, llama_config *cfg,
                               badam_error *err) {
    int roberta = !strcmp(cfg->model_type, "roberta");
    const char *seq =
        roberta ? "RobertaForSequenceClassification" : "BertForSequenceClassification";
    const char *mc = roberta ? "RobertaForMultipleChoice" : "BertForMultipleChoice";
    const json_t *archs = json_field(json, "architectures");
    const json_t *a0 = archs && json_is_array(archs) ? json_array_get(archs, 0) : NULL;
    const char *arch = a0 && json_string_is_c(a0) ? json_string_value(a0) : seq;
    if (archs && !(json_is_array(archs) && json_array_size(archs) == 1 && json_string_is_c(a0)))
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: field 'architectures' must be a list of one string", path);
    const char *mlm = roberta ? "RobertaForMaskedLM" : "BertForMaskedLM";
    int multiple_choice = !strcmp(arch, mc);
    if (!strcmp(arch, mlm)) {
        cfg->num_labels = 0; /* the vocabulary is the output */
        cfg->encoder_head = LLAMA_HEAD_MLM;
        return BADAM_OK;
    }
    if (!multiple_choice && strcmp(arch, seq))
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "%s: field 'architectures' is '%s'; supported for %s: %s, %s, %s", path,
                          arch, cfg->model_type, seq, mc, mlm);
    cfg->num_labels = 2;
    const json_t *id2label = json_field(json, "id2label");
    if (id2label && json_is_object(id2label)) cfg->num_labels = (int)json_object_size(id2label);
    TRY(json_get_int(json, "num_labels", 0, &cfg->num_labels, path, err));
    if (multiple_choice) {
        cfg->num_labels = 1; /* one score per choice */
        cfg->encoder_head = LLAMA_HEAD_POOLER;
        return BADAM_OK;
    }
    TRY(check_range(path, "num_labels", cfg->num_labels, 2, 1 << 20, err));
    TRY(require_string(json, "problem_type", "single_label_classification", path, err));
    cfg->encoder_head = roberta ? LLAMA_HEAD_ROBERTA_CLASSIFIER : LLAMA_HEAD_POOLER;
    return BADAM_OK;
}

badam_status bert_config_load(const char *path, llama_config *cfg, badam_error *err) {
    memset(cfg, 0, sizeof *cfg);
    json_t *json = NULL;
    TRY(io_read_json(path, &json, err));
    badam_status st =
        json_get_string(json, "model_type", 1, cfg->model_type, sizeof cfg->model_type, path, err);
    if (!st && strcmp(cfg->model_type, "bert") && strcmp(cfg->model_type, "roberta"))
        st = badam_fail(err, BADAM_E_UNSUPPORTED,
                        "%s: field 'model_type' is '%s'; the encoder family serves bert, roberta",
                        path, cfg->model_type);
    if (!st) st = parse_sizes(json, path, cfg, err);
    if (!st) st = parse_rates(json, path, cfg, err);
    if (!st) st = parse_head(json, path, cfg, err);
    if (!st) st = require_string(json, "hidden_act", "gelu", path, err);
    if (!st) st = require_string(json, "position_embedding_type", "absolute", path, err);
    int roberta = !strcmp(cfg->model_type, "roberta");
    cfg->pad_token_id = roberta ? 1 : 0;
    if (!st) st = json_get_int(json, "pad_token_id", 0, &cfg->pad_token_id, path, err);
    json_decref(json);
    if (st) return st;
    cfg->bos_token_id = -1;
    /* RoBERTa numbers positions from padding_idx + 1 (create_position_ids_from_input_ids) */
    cfg->position_offset = roberta ? cfg->pad_token_id + 1 : 0;
    if (roberta && (cfg->pad_token_id < 0 || cfg->pad_token_id >= cfg->vocab_size))
        return badam_fail(err, BADAM_E_FORMAT, "%s: field 'pad_token_id' = %d is outside [0, %d)",
                          path, cfg->pad_token_id, cfg->vocab_size);
    if (cfg->position_offset >= cfg->max_position_embeddings)
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: field 'max_position_embeddings' (%d) leaves no position after "
                          "pad_token_id + 1 (%d)",
                          path, cfg->max_position_embeddings, cfg->position_offset);
    return BADAM_OK;
}
