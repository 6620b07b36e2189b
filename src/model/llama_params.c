/* The parameter table of a Llama-family model: Hugging Face names, shapes, storage order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/llama.h"
#include "base/memory.h"
#include "model/llama_internal.h"

static const char *const LAYER_SUFFIX[LLAMA_P_KIND_COUNT] = {
    [LLAMA_P_ATTN_NORM] = "input_layernorm.weight",
    [LLAMA_P_Q] = "self_attn.q_proj.weight",
    [LLAMA_P_K] = "self_attn.k_proj.weight",
    [LLAMA_P_V] = "self_attn.v_proj.weight",
    [LLAMA_P_O] = "self_attn.o_proj.weight",
    [LLAMA_P_Q_BIAS] = "self_attn.q_proj.bias",
    [LLAMA_P_K_BIAS] = "self_attn.k_proj.bias",
    [LLAMA_P_V_BIAS] = "self_attn.v_proj.bias",
    [LLAMA_P_O_BIAS] = "self_attn.o_proj.bias",
    [LLAMA_P_MLP_NORM] = "post_attention_layernorm.weight",
    [LLAMA_P_GATE] = "mlp.gate_proj.weight",
    [LLAMA_P_UP] = "mlp.up_proj.weight",
    [LLAMA_P_DOWN] = "mlp.down_proj.weight",
};

/* Per-layer kinds in storage order (HF order within a layer). */
static const llama_param_kind LAYER_KINDS[] = {
    LLAMA_P_ATTN_NORM, LLAMA_P_Q,      LLAMA_P_Q_BIAS, LLAMA_P_K,      LLAMA_P_K_BIAS,
    LLAMA_P_V,         LLAMA_P_V_BIAS, LLAMA_P_O,      LLAMA_P_O_BIAS, LLAMA_P_MLP_NORM,
    LLAMA_P_GATE,      LLAMA_P_UP,     LLAMA_P_DOWN,
};

static int kind_present(const llama_config *cfg, llama_param_kind kind) {
    switch (kind) {
    case LLAMA_P_Q_BIAS:
    case LLAMA_P_K_BIAS:
    case LLAMA_P_V_BIAS:
        return cfg->qkv_bias;
    case LLAMA_P_O_BIAS:
        return cfg->o_bias;
    case LLAMA_P_LM_HEAD:
        return !cfg->tie_word_embeddings;
    default:
        return 1;
    }
}

/* Shape [rows, cols] (cols 0 for vectors) of a parameter kind. */
static void kind_shape(const llama_config *cfg, llama_param_kind kind, int64_t *rows,
                       int64_t *cols) {
    int64_t C = cfg->hidden_size, I = cfg->intermediate_size, V = cfg->vocab_size;
    int64_t q = (int64_t)cfg->n_heads * cfg->head_dim,
            kv = (int64_t)cfg->n_kv_heads * cfg->head_dim;
    *cols = 0;
    switch (kind) {
    case LLAMA_P_EMBED:
    case LLAMA_P_LM_HEAD:
        *rows = V, *cols = C;
        break;
    case LLAMA_P_ATTN_NORM:
    case LLAMA_P_MLP_NORM:
    case LLAMA_P_FINAL_NORM:
    case LLAMA_P_O_BIAS:
        *rows = C;
        break;
    case LLAMA_P_Q:
        *rows = q, *cols = C;
        break;
    case LLAMA_P_K:
    case LLAMA_P_V:
        *rows = kv, *cols = C;
        break;
    case LLAMA_P_O:
        *rows = C, *cols = q;
        break;
    case LLAMA_P_Q_BIAS:
        *rows = q;
        break;
    case LLAMA_P_K_BIAS:
    case LLAMA_P_V_BIAS:
        *rows = kv;
        break;
    case LLAMA_P_GATE:
    case LLAMA_P_UP:
        *rows = I, *cols = C;
        break;
    case LLAMA_P_DOWN:
        *rows = C, *cols = I;
        break;
    default:
        *rows = 0;
        break;
    }
}

/* The neutral tag of a Llama parameter kind (model_tags.h). Projection roles carry the kind's
 * number, so a kind mask and a role mask agree on the projections. */
static model_tag kind_tag(llama_param_kind kind) {
    switch (kind) {
    case LLAMA_P_EMBED:
        return (model_tag){MODEL_GROUP_EMBEDDING, MODEL_ROLE_EMBED, 0};
    case LLAMA_P_ATTN_NORM:
        return (model_tag){MODEL_GROUP_ATTENTION, MODEL_ROLE_NORM, 0};
    case LLAMA_P_Q:
    case LLAMA_P_K:
    case LLAMA_P_V:
    case LLAMA_P_O:
        return (model_tag){MODEL_GROUP_ATTENTION, (int8_t)kind, 0};
    case LLAMA_P_Q_BIAS:
    case LLAMA_P_K_BIAS:
    case LLAMA_P_V_BIAS:
    case LLAMA_P_O_BIAS:
        return (model_tag){MODEL_GROUP_ATTENTION, (int8_t)(LLAMA_P_Q + (kind - LLAMA_P_Q_BIAS)), 1};
    case LLAMA_P_MLP_NORM:
        return (model_tag){MODEL_GROUP_MLP, MODEL_ROLE_NORM, 0};
    case LLAMA_P_GATE:
    case LLAMA_P_UP:
    case LLAMA_P_DOWN:
        return (model_tag){MODEL_GROUP_MLP, (int8_t)kind, 0};
    case LLAMA_P_FINAL_NORM:
        return (model_tag){MODEL_GROUP_HEAD, MODEL_ROLE_NORM, 0};
    case LLAMA_P_LM_HEAD:
        return (model_tag){MODEL_GROUP_HEAD, MODEL_ROLE_HEAD, 0};
    default:
        return (model_tag){MODEL_GROUP_OTHER, MODEL_ROLE_OTHER, 0};
    }
}

_Static_assert(MODEL_ROLE_Q == (int)LLAMA_P_Q && MODEL_ROLE_K == (int)LLAMA_P_K &&
                   MODEL_ROLE_V == (int)LLAMA_P_V && MODEL_ROLE_O == (int)LLAMA_P_O &&
                   MODEL_ROLE_GATE == (int)LLAMA_P_GATE && MODEL_ROLE_UP == (int)LLAMA_P_UP &&
                   MODEL_ROLE_DOWN == (int)LLAMA_P_DOWN &&
                   MODEL_ROLE_COUNT == (int)LLAMA_P_KIND_COUNT,
               "projection roles carry the numbers of the Llama kinds (model_tags.h)");

static void add_param(const llama_config *cfg, llama_param *p, llama_param_kind kind, int layer) {
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->layer = layer;
    p->tag = kind_tag(kind);
    if (kind == LLAMA_P_EMBED)
        snprintf(p->name, sizeof p->name, "model.embed_tokens.weight");
    else if (kind == LLAMA_P_FINAL_NORM)
        snprintf(p->name, sizeof p->name, "model.norm.weight");
    else if (kind == LLAMA_P_LM_HEAD)
        snprintf(p->name, sizeof p->name, "lm_head.weight");
    else
        snprintf(p->name, sizeof p->name, "model.layers.%d.%s", layer, LAYER_SUFFIX[kind]);
    int64_t rows, cols;
    kind_shape(cfg, kind, &rows, &cols);
    p->ndim = cols ? 2 : 1;
    p->shape[0] = rows;
    p->shape[1] = cols;
    p->numel = (size_t)rows * (size_t)(cols ? cols : 1);
}

badam_status llama_param_table(const llama_config *cfg, llama_param **params, int *n_params,
                               badam_error *err) {
    int per_layer = 0;
    for (size_t k = 0; k < sizeof LAYER_KINDS / sizeof LAYER_KINDS[0]; k++)
        per_layer += kind_present(cfg, LAYER_KINDS[k]);
    int n = 2 + cfg->n_layers * per_layer + kind_present(cfg, LLAMA_P_LM_HEAD);
    llama_param *p = calloc((size_t)n, sizeof *p);
    if (!p) return badam_fail(err, BADAM_E_NOMEM, "parameter table: out of memory");
    int i = 0;
    add_param(cfg, &p[i++], LLAMA_P_EMBED, -1);
    for (int l = 0; l < cfg->n_layers; l++)
        for (size_t k = 0; k < sizeof LAYER_KINDS / sizeof LAYER_KINDS[0]; k++)
            if (kind_present(cfg, LAYER_KINDS[k])) add_param(cfg, &p[i++], LAYER_KINDS[k], l);
    add_param(cfg, &p[i++], LLAMA_P_FINAL_NORM, -1);
    if (kind_present(cfg, LLAMA_P_LM_HEAD)) add_param(cfg, &p[i++], LLAMA_P_LM_HEAD, -1);
    *params = p;
    *n_params = n;
    return BADAM_OK;
}

size_t llama_model_storage_bytes(const llama_config *cfg, badam_dtype dtype) {
    llama_param *p;
    int n;
    if (llama_param_table(cfg, &p, &n, NULL) != BADAM_OK) return 0;
    size_t total = 0;
    for (int i = 0; i < n; i++) total += badam_alloc_size(p[i].numel * badam_dtype_size(dtype));
    free(p);
    return badam_alloc_size(total);
}

size_t llama_param_count(const llama_config *cfg) {
    llama_param *p;
    int n;
    if (llama_param_table(cfg, &p, &n, NULL) != BADAM_OK) return 0;
    size_t total = 0;
    for (int i = 0; i < n; i++) total += p[i].numel;
    free(p);
    return total;
}

int llama_param_index(const llama_model *m, int layer, llama_param_kind kind) {
    switch (kind) {
    case LLAMA_P_EMBED:
        return m->embed;
    case LLAMA_P_FINAL_NORM:
        return m->final_norm;
    case LLAMA_P_LM_HEAD:
        return m->lm_head;
    default:
        if (layer < 0 || layer >= m->cfg.n_layers) return -1;
        return m->layer_index[layer * LLAMA_P_KIND_COUNT + kind];
    }
}

int llama_find_param(const llama_model *m, const char *hf_name) {
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, hf_name)) return i;
    return -1;
}

badam_status llama_model_describe(const llama_config *cfg, badam_dtype dtype, llama_model **out,
                                  badam_error *err) {
    *out = NULL;
    llama_model *m = calloc(1, sizeof *m);
    if (!m) return badam_fail(err, BADAM_E_NOMEM, "model: out of memory");
    m->cfg = *cfg;
    m->dtype = dtype;
    badam_status st = llama_param_table(cfg, &m->params, &m->n_params, err);
    if (st != BADAM_OK) {
        free(m);
        return st;
    }
    m->layer_index = malloc(sizeof(int) * (size_t)cfg->n_layers * LLAMA_P_KIND_COUNT);
    m->inv_freq = malloc(sizeof(float) * (size_t)(cfg->head_dim / 2));
    if (!m->layer_index || !m->inv_freq) {
        llama_model_free(m);
        return badam_fail(err, BADAM_E_NOMEM, "model: out of memory");
    }
    for (int i = 0; i < cfg->n_layers * LLAMA_P_KIND_COUNT; i++) m->layer_index[i] = -1;
    for (int i = 0; i < m->n_params; i++) {
        llama_param *p = &m->params[i];
        if (p->layer >= 0)
            m->layer_index[p->layer * LLAMA_P_KIND_COUNT + p->kind] = i;
        else if (p->kind == LLAMA_P_EMBED)
            m->embed = i;
        else if (p->kind == LLAMA_P_FINAL_NORM)
            m->final_norm = i;
        else
            m->lm_head = i;
    }
    if (cfg->tie_word_embeddings) m->lm_head = m->embed;
    llama_rope_inv_freq(cfg, m->inv_freq);
    *out = m;
    return BADAM_OK;
}

badam_status llama_model_alloc_weights(llama_model *m, badam_error *err) {
    size_t elem = badam_dtype_size(m->dtype), total = 0;
    for (int i = 0; i < m->n_params; i++) total += badam_alloc_size(m->params[i].numel * elem);
    m->storage_bytes = total;
    m->storage = badam_alloc_in(BADAM_MEM_WEIGHTS, total);
    if (!m->storage) {
        llama_model_free(m);
        return badam_fail(err, BADAM_E_NOMEM, "model: cannot allocate %zu bytes of weights", total);
    }
    size_t offset = 0;
    for (int i = 0; i < m->n_params; i++) {
        m->params[i].data = (char *)m->storage + offset;
        offset += badam_alloc_size(m->params[i].numel * elem);
    }
    return BADAM_OK;
}

badam_status llama_model_create(const llama_config *cfg, badam_dtype dtype, llama_model **out,
                                badam_error *err) {
    llama_model *m = NULL;
    badam_status st = llama_model_describe(cfg, dtype, &m, err);
    if (st) return st;
    st = llama_model_alloc_weights(m, err);
    if (st) return st;
    *out = m;
    return BADAM_OK;
}

void llama_model_free(llama_model *m) {
    if (!m) return;
    llama_lora_detach(m);
    llama_bottleneck_detach(m);
    badam_free(m->storage);
    free(m->params);
    free(m->layer_index);
    free(m->inv_freq);
    free(m);
}
