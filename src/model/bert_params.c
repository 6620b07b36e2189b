/* The parameter table of an encoder (bert, roberta): Hugging Face names, shapes and tags, in the
 * storage order bert_internal.h states. Tags: the embeddings are the EMBEDDING group; query, key,
 * value, attention.output.dense and attention.output.LayerNorm the ATTENTION group (the
 * LayerNorm is part of HF's attention module: it normalises the attention sublayer's residual
 * sum); intermediate.dense (role up), output.dense (down) and output.LayerNorm the MLP group;
 * pooler / classifier tensors the HEAD group. The Llama kinds that mean the same thing are set
 * too (q, k, v, o and their biases, up, down, the two norms, the word embedding), so
 * llama_param_index finds them; the other tensors have no Llama kind (LLAMA_P_KIND_COUNT). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/memory.h"
#include "model/bert_internal.h"

typedef struct slot_info {
    const char *suffix;
    int group, role, bias, kind;
} slot_info;

#define NOKIND LLAMA_P_KIND_COUNT
static const slot_info LAYER_SLOTS[BERT_LAYER_PARAMS] = {
    {"attention.self.query.weight", MODEL_GROUP_ATTENTION, MODEL_ROLE_Q, 0, LLAMA_P_Q},
    {"attention.self.query.bias", MODEL_GROUP_ATTENTION, MODEL_ROLE_Q, 1, LLAMA_P_Q_BIAS},
    {"attention.self.key.weight", MODEL_GROUP_ATTENTION, MODEL_ROLE_K, 0, LLAMA_P_K},
    {"attention.self.key.bias", MODEL_GROUP_ATTENTION, MODEL_ROLE_K, 1, LLAMA_P_K_BIAS},
    {"attention.self.value.weight", MODEL_GROUP_ATTENTION, MODEL_ROLE_V, 0, LLAMA_P_V},
    {"attention.self.value.bias", MODEL_GROUP_ATTENTION, MODEL_ROLE_V, 1, LLAMA_P_V_BIAS},
    {"attention.output.dense.weight", MODEL_GROUP_ATTENTION, MODEL_ROLE_O, 0, LLAMA_P_O},
    {"attention.output.dense.bias", MODEL_GROUP_ATTENTION, MODEL_ROLE_O, 1, LLAMA_P_O_BIAS},
    {"attention.output.LayerNorm.weight", MODEL_GROUP_ATTENTION, MODEL_ROLE_NORM, 0,
     LLAMA_P_ATTN_NORM},
    {"attention.output.LayerNorm.bias", MODEL_GROUP_ATTENTION, MODEL_ROLE_NORM, 1, NOKIND},
    {"intermediate.dense.weight", MODEL_GROUP_MLP, MODEL_ROLE_UP, 0, LLAMA_P_UP},
    {"intermediate.dense.bias", MODEL_GROUP_MLP, MODEL_ROLE_UP, 1, NOKIND},
    {"output.dense.weight", MODEL_GROUP_MLP, MODEL_ROLE_DOWN, 0, LLAMA_P_DOWN},
    {"output.dense.bias", MODEL_GROUP_MLP, MODEL_ROLE_DOWN, 1, NOKIND},
    {"output.LayerNorm.weight", MODEL_GROUP_MLP, MODEL_ROLE_NORM, 0, LLAMA_P_MLP_NORM},
    {"output.LayerNorm.bias", MODEL_GROUP_MLP, MODEL_ROLE_NORM, 1, NOKIND},
};

static const slot_info EMBED_SLOTS[BERT_N_EMBED] = {
    {"embeddings.word_embeddings.weight", MODEL_GROUP_EMBEDDING, MODEL_ROLE_EMBED, 0,
     LLAMA_P_EMBED},
    {"embeddings.position_embeddings.weight", MODEL_GROUP_EMBEDDING, MODEL_ROLE_EMBED, 0, NOKIND},
    {"embeddings.token_type_embeddings.weight", MODEL_GROUP_EMBEDDING, MODEL_ROLE_EMBED, 0, NOKIND},
    {"embeddings.LayerNorm.weight", MODEL_GROUP_EMBEDDING, MODEL_ROLE_NORM, 0, NOKIND},
    {"embeddings.LayerNorm.bias", MODEL_GROUP_EMBEDDING, MODEL_ROLE_NORM, 1, NOKIND},
};

/* Head names: pooler layout (BERT sequence classification, multiple choice) and RoBERTa's
 * classification head; the pooler lives under the base prefix. */
static const char *const POOLER_NAMES[BERT_N_HEAD] = {"pooler.dense.weight", "pooler.dense.bias",
                                                      "classifier.weight", "classifier.bias"};
static const char *const ROBERTA_NAMES[BERT_N_HEAD] = {
    "classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight",
    "classifier.out_proj.bias"};

/* The masked-LM head (RobertaLMHead; BertOnlyMLMHead under cls.predictions). */
static const char *const ROBERTA_MLM_NAMES[BERT_N_MLM] = {
    "lm_head.dense.weight", "lm_head.dense.bias", "lm_head.layer_norm.weight",
    "lm_head.layer_norm.bias", "lm_head.bias"};
static const char *const BERT_MLM_NAMES[BERT_N_MLM] = {
    "cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
    "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
    "cls.predictions.bias"};

static void set_param(llama_param *p, const char *name, int layer, int kind, model_tag tag,
                      int64_t rows, int64_t cols) {
    memset(p, 0, sizeof *p);
    size_t len = strlen(name); /* at most 61 bytes ("roberta.encoder.layer.1023.attention...") */
    if (len >= sizeof p->name) len = sizeof p->name - 1;
    memcpy(p->name, name, len);
    p->kind = (llama_param_kind)kind;
    p->layer = layer;
    p->tag = tag;
    p->ndim = cols ? 2 : 1;
    p->shape[0] = rows, p->shape[1] = cols;
    p->numel = (size_t)rows * (size_t)(cols ? cols : 1);
}

/* [rows, cols] of a layer slot (cols 0: a vector). */
static void layer_shape(const llama_config *c, int slot, int64_t *rows, int64_t *cols) {
    int64_t C = c->hidden_size, I = c->intermediate_size;
    int weight = !LAYER_SLOTS[slot].bias && LAYER_SLOTS[slot].role != MODEL_ROLE_NORM;
    *rows = slot == BERT_UP || slot == BERT_UP_B ? I : C;
    *cols = !weight ? 0 : slot == BERT_UP ? C : slot == BERT_DOWN ? I : C;
}

/* The masked-LM head's BERT_N_MLM tensors into p (the HEAD group; LayerNorm role NORM, the
 * output bias role HEAD). */
static void mlm_head_params(const llama_config *c, llama_param *p) {
    int roberta = !strcmp(c->model_type, "roberta");
    for (int j = 0; j < BERT_N_MLM; j++) {
        int norm = j == BERT_M_LN || j == BERT_M_LN_B;
        model_tag tag = {MODEL_GROUP_HEAD,
                         norm               ? MODEL_ROLE_NORM
                         : j == BERT_M_BIAS ? MODEL_ROLE_HEAD
                                            : MODEL_ROLE_OTHER,
                         (int8_t)(j != BERT_M_DENSE && j != BERT_M_LN)};
        int64_t rows = j == BERT_M_BIAS ? c->vocab_size : c->hidden_size;
        set_param(&p[j], (roberta ? ROBERTA_MLM_NAMES : BERT_MLM_NAMES)[j], -1, NOKIND, tag, rows,
                  j == BERT_M_DENSE ? c->hidden_size : 0);
    }
}

static badam_status param_table(const llama_config *c, llama_param **params, int *n_params,
                                badam_error *err) {
    int n = BERT_N_EMBED + c->n_layers * BERT_LAYER_PARAMS + bert_n_head(c);
    llama_param *p = calloc((size_t)n, sizeof *p);
    if (!p) return badam_fail(err, BADAM_E_NOMEM, "parameter table: out of memory");
    const char *base = !strcmp(c->model_type, "roberta") ? "roberta" : "bert";
    char name[128];
    int64_t C = c->hidden_size;
    const int64_t embed_rows[BERT_N_EMBED] = {c->vocab_size, c->max_position_embeddings,
                                              c->type_vocab_size, C, C};
    int i = 0;
    for (int s = 0; s < BERT_N_EMBED; s++, i++) {
        const slot_info *e = &EMBED_SLOTS[s];
        snprintf(name, sizeof name, "%s.%s", base, e->suffix);
        set_param(&p[i], name, -1, e->kind, (model_tag){e->group, e->role, e->bias}, embed_rows[s],
                  s < BERT_E_LN_W ? C : 0);
    }
    for (int l = 0; l < c->n_layers; l++)
        for (int s = 0; s < BERT_LAYER_PARAMS; s++, i++) {
            const slot_info *e = &LAYER_SLOTS[s];
            int64_t rows, cols;
            layer_shape(c, s, &rows, &cols);
            snprintf(name, sizeof name, "%s.encoder.layer.%d.%s", base, l, e->suffix);
            set_param(&p[i], name, l, e->kind, (model_tag){e->group, e->role, e->bias}, rows, cols);
        }
    if (c->encoder_head == LLAMA_HEAD_MLM) {
        mlm_head_params(c, p + i);
        *params = p;
        *n_params = n;
        return BADAM_OK;
    }
    int pooler = c->encoder_head != LLAMA_HEAD_ROBERTA_CLASSIFIER;
    for (int j = 0; j < BERT_N_HEAD; j++, i++) {
        if (pooler && j < BERT_H_CLS)
            snprintf(name, sizeof name, "%s.%s", base, POOLER_NAMES[j]);
        else
            snprintf(name, sizeof name, "%s", (pooler ? POOLER_NAMES : ROBERTA_NAMES)[j]);
        int cls = j >= BERT_H_CLS, bias = j & 1;
        model_tag tag = {MODEL_GROUP_HEAD, cls ? MODEL_ROLE_HEAD : MODEL_ROLE_OTHER, (int8_t)bias};
        set_param(&p[i], name, -1, NOKIND, tag, cls ? c->num_labels : C, bias ? 0 : C);
    }
    *params = p;
    *n_params = n;
    return BADAM_OK;
}

badam_status bert_model_describe(const llama_config *cfg, badam_dtype dtype, llama_model **out,
                                 badam_error *err) {
    *out = NULL;
    if (cfg->encoder_head == LLAMA_HEAD_NONE ||
        (cfg->num_labels < 1 && cfg->encoder_head != LLAMA_HEAD_MLM))
        return badam_fail(err, BADAM_E_INVALID,
                          "encoder config: no classification head (encoder_head, num_labels)");
    llama_model *m = calloc(1, sizeof *m);
    if (!m) return badam_fail(err, BADAM_E_NOMEM, "model: out of memory");
    m->cfg = *cfg;
    m->dtype = dtype;
    badam_status st = param_table(cfg, &m->params, &m->n_params, err);
    if (st) {
        free(m);
        return st;
    }
    m->layer_index = malloc(sizeof(int) * (size_t)cfg->n_layers * LLAMA_P_KIND_COUNT);
    if (!m->layer_index) {
        llama_model_free(m);
        return badam_fail(err, BADAM_E_NOMEM, "model: out of memory");
    }
    for (int i = 0; i < cfg->n_layers * LLAMA_P_KIND_COUNT; i++) m->layer_index[i] = -1;
    for (int i = 0; i < m->n_params; i++) {
        const llama_param *p = &m->params[i];
        if (p->layer >= 0 && p->kind != NOKIND)
            m->layer_index[p->layer * LLAMA_P_KIND_COUNT + p->kind] = i;
    }
    m->embed = BERT_E_WORD;
    m->final_norm = -1; /* post-LayerNorm blocks: no final norm */
    /* the output layer: the classifier, or the masked-LM head's bias (its weight is tied) */
    m->lm_head = bert_head_param(m, cfg->encoder_head == LLAMA_HEAD_MLM ? BERT_M_BIAS : BERT_H_CLS);
    *out = m;
    return BADAM_OK;
}

badam_status bert_model_create(const llama_config *cfg, badam_dtype dtype, llama_model **out,
                               badam_error *err) {
    llama_model *m = NULL;
    badam_status st = bert_model_describe(cfg, dtype, &m, err);
    if (st) return st;
    st = llama_model_alloc_weights(m, err);
    if (st) return st;
    *out = m;
    return BADAM_OK;
}
