/* The architecture table: one line per model family (model.h says how a family plugs in). */
#include <stdio.h>
#include <string.h>

#include "badam/model.h"
#include "io/files.h"
#include "io/json_get.h"
#include "model/bert_internal.h"

static const char *const LLAMA_TYPES[] = {"llama", "mistral", "qwen2", NULL};

static const model_arch LLAMA_ARCH = {
    .family = "llama",
    .model_types = LLAMA_TYPES,
    .target_kinds = 1u << MODEL_TARGETS_TOKEN,
    .config_load = llama_config_load,
    .describe = llama_model_describe,
    .load = llama_model_load,
    .save = llama_model_save,
    .free = llama_model_free,
    .plan_for_flags = llama_plan_for_flags,
    .workspace_predict = llama_workspace_predict_adapters,
    .workspace_create = llama_workspace_create,
    .workspace_free = llama_workspace_free,
    .forward = llama_forward,
    .backward = llama_backward,
    .kv_cache_create = llama_kv_cache_create,
    .decode = llama_decode,
    .gemm_flops = llama_plan_gemm_flops,
};

static const char *const BERT_TYPES[] = {"bert", "roberta", NULL};

/* The encoder family (bert_*.c): sequence classification, multiple choice and masked-LM
 * (MODEL_TARGETS_MASKED), no decoding. */
static const model_arch BERT_ARCH = {
    .family = "bert",
    .model_types = BERT_TYPES,
    .target_kinds =
        1u << MODEL_TARGETS_SEQUENCE | 1u << MODEL_TARGETS_CHOICE | 1u << MODEL_TARGETS_MASKED,
    .config_load = bert_config_load,
    .describe = bert_model_describe,
    .load = bert_model_load,
    .save = bert_model_save,
    .free = llama_model_free,
    .plan_for_flags = bert_plan_for_flags,
    .workspace_predict = bert_workspace_predict,
    .workspace_create = bert_workspace_create,
    .workspace_free = bert_workspace_free,
    .forward = bert_forward,
    .backward = bert_backward,
    .kv_cache_create = NULL,
    .decode = NULL,
    .gemm_flops = bert_plan_gemm_flops,
};

/* The families, in lookup order. A new family is one line here. */
static const model_arch *const ARCHS[] = {&LLAMA_ARCH, &BERT_ARCH};
#define N_ARCHS ((int)(sizeof ARCHS / sizeof ARCHS[0]))

const model_arch *const *model_arch_all(int *n) {
    *n = N_ARCHS;
    return ARCHS;
}

const model_arch *model_arch_find(const char *model_type) {
    for (int a = 0; model_type && a < N_ARCHS; a++)
        for (const char *const *t = ARCHS[a]->model_types; *t; t++)
            if (!strcmp(*t, model_type)) return ARCHS[a];
    return NULL;
}

badam_status model_arch_for_folder(const char *dir, const model_arch **arch, badam_error *err) {
    *arch = NULL;
    char path[4096], type[64];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *cfg = NULL;
    badam_status st = io_read_json(path, &cfg, err);
    if (st) return st;
    st = json_get_string(cfg, "model_type", 1, type, sizeof type, path, err);
    json_decref(cfg);
    if (st) return st;
    if ((*arch = model_arch_find(type))) return BADAM_OK;
    char served[256] = "";
    for (int a = 0; a < N_ARCHS; a++)
        for (const char *const *t = ARCHS[a]->model_types; *t; t++) {
            size_t used = strlen(served);
            snprintf(served + used, sizeof served - used, "%s%s", used ? ", " : "", *t);
        }
    return badam_fail(err, BADAM_E_UNSUPPORTED, "%s: field 'model_type' is '%s'; supported: %s",
                      path, type, served);
}
