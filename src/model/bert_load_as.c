/* An encoder folder loaded with another head (bert.h: bert_model_load_as), as transformers'
 * from_pretrained does when a *ForMaskedLM checkpoint is loaded into *ForSequenceClassification:
 * the body (embeddings and layers) from the folder, the folder's other tensors (its masked-LM
 * head, pooler or classifier) dropped unless the new head has a tensor of the same name and
 * shape, and the new head's remaining tensors initialised as BertPreTrainedModel._init_weights
 * does: Linear weights N(0, initializer_range^2) (config.json, default 0.02), biases 0,
 * LayerNorm weights 1; the normals Box-Muller from splitmix64 of (seed, parameter, element). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"
#include "io/json_get.h"
#include "io/safetensors.h"
#include "model/bert_internal.h"
#include "model/model_folder.h"

#define PATH_BYTES 4096

static int body_params(const llama_model *m) {
    return BERT_N_EMBED + m->cfg.n_layers * BERT_LAYER_PARAMS;
}

/* While the body loads, every tensor that is not a body parameter may be skipped. */
static int not_body(const llama_model *m, const char *name) {
    (void)m, (void)name;
    return 1;
}

/* N(0, std^2) for element j of parameter i (Box-Muller on two splitmix64 draws). */
static float normal_at(uint64_t seed, int i, size_t j, double std) {
    uint64_t h = backend_mix64(seed ^ backend_mix64(((uint64_t)i << 40) ^ (uint64_t)j));
    double u1 = (double)((h >> 11) + 1) * 0x1.0p-53, u2 = backend_unit(backend_mix64(h));
    return (float)(std * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* Initialises head parameter i as _init_weights does. */
static badam_status init_param(llama_model *m, int i, uint64_t seed, double std, badam_error *err) {
    llama_param *p = &m->params[i];
    float *v = malloc(sizeof(float) * p->numel);
    if (!v) return badam_fail(err, BADAM_E_NOMEM, "load: out of memory");
    int norm = p->tag.role == MODEL_ROLE_NORM;
    for (size_t j = 0; j < p->numel; j++)
        v[j] = p->ndim == 2 ? normal_at(seed, i, j, std) : norm && !p->tag.bias ? 1.0f : 0.0f;
    badam_convert(p->data, m->dtype, v, BADAM_DTYPE_F32, p->numel);
    free(v);
    return BADAM_OK;
}

/* The head tensors: from the folder when it has them in the same shape, else initialised; the
 * names initialised go to `fresh`. */
static badam_status load_head(llama_model *m, const st_set *set, uint64_t seed, double std,
                              char *fresh, size_t size, badam_error *err) {
    badam_status st = BADAM_OK;
    for (int i = body_params(m); i < m->n_params && !st; i++) {
        llama_param *p = &m->params[i];
        const st_file *file = NULL;
        const st_tensor *t = st_set_find(set, p->name, &file);
        int same = t && t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
        if (same) {
            badam_convert(p->data, m->dtype, t->data, t->dtype, p->numel);
        } else {
            st = init_param(m, i, seed, std, err);
            size_t used = strlen(fresh);
            snprintf(fresh + used, size - used, "%s%s", used ? ", " : "", p->name);
        }
        if (t) st_tensor_release(t);
    }
    return st;
}

/* config.json with the requested head, and initializer_range. */
static badam_status read_config(const char *dir, llama_encoder_head head, int num_labels,
                                llama_config *cfg, int *same_head, double *std, badam_error *err) {
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/config.json", dir);
    badam_status st = bert_config_load(path, cfg, err);
    if (st) return st;
    *same_head = cfg->encoder_head == (int)head && cfg->num_labels == num_labels;
    cfg->encoder_head = head, cfg->num_labels = num_labels;
    json_t *json = NULL;
    *std = 0.02;
    if ((st = io_read_json(path, &json, err))) return st;
    st = json_get_double(json, "initializer_range", 0, std, path, err);
    json_decref(json);
    return st;
}

badam_status bert_model_load_as(const char *dir, badam_dtype dtype, llama_encoder_head head,
                                int num_labels, uint64_t seed, const badam_logger *log,
                                llama_model **out, badam_error *err) {
    *out = NULL;
    if (head == LLAMA_HEAD_NONE || (head == LLAMA_HEAD_MLM) != (num_labels == 0) ||
        num_labels < 0 || (head == LLAMA_HEAD_ROBERTA_CLASSIFIER && num_labels < 2))
        return badam_fail(err, BADAM_E_INVALID,
                          "load: head %d with %d labels is not an encoder head (classification: "
                          ">= 2 labels, multiple choice: 1 with the pooler, masked LM: 0)",
                          (int)head, num_labels);
    llama_config cfg;
    int same = 0;
    double std = 0.02;
    badam_status st = read_config(dir, head, num_labels, &cfg, &same, &std, err);
    if (st) return st;
    if (same) return bert_model_load(dir, dtype, out, err);
    st_set *set = NULL;
    if ((st = st_set_open_dir(dir, &set, err))) return st;
    llama_model *m = NULL;
    st = bert_model_create(&cfg, dtype, &m, err);
    char fresh[1024] = "";
    if (!st) { /* the body: the table cut before the head while it loads */
        int n = m->n_params;
        m->n_params = body_params(m);
        st = model_load_weights(m, set, dir, not_body, err);
        m->n_params = n;
    }
    if (!st) st = load_head(m, set, seed, std, fresh, sizeof fresh, err);
    st_set_close(set);
    if (st) {
        llama_model_free(m);
        return st;
    }
    badam_logf(log, BADAM_LOG_INFO,
               "%s: encoder body loaded; the folder's own head is dropped and %s newly "
               "initialised (seed %llu, as transformers does)",
               dir, fresh, (unsigned long long)seed);
    *out = m;
    return BADAM_OK;
}
