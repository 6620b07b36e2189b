/* config.json's RoPE settings in both forms Hugging Face transformers writes:
 *
 *   transformers 4.x:  "rope_theta": 500000.0,
 *                      "rope_scaling": {"rope_type" (or "type"): "llama3", "factor": 8.0, ...}
 *   transformers 5.x:  "rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3",
 *                                          "factor": 8.0, ...}
 *
 * Resolution follows transformers 5 (modeling_rope_utils.py, RotaryEmbeddingConfigMixin
 * convert_rope_params_to_dict / standardize_rope_params):
 *   - the dict is the legacy `rope_scaling` when it is a non-empty object, else `rope_parameters`
 *     (`rope_scaling or self.rope_parameters`);
 *   - rope_theta: the dict's, else the top-level `rope_theta`, else 10000 (default_theta);
 *   - rope_type: the dict's `rope_type`, else its legacy `type`, else "default";
 *   - llama3: original_max_position_embeddings is a top-level `original_max_position_embeddings`
 *     when there is one (it takes priority), else the dict's, else max_position_embeddings;
 *   - partial_rotary_factor (top level or in the dict): the fraction of head_dim rotated.
 *   - a dict keyed by layer type ({"full_attention": {...}, "sliding_attention": {...}}) holds one
 *     RoPE per kind of layer.
 * We implement "default" and "llama3" over the whole head_dim. Anything else is an error naming
 * the file and the field, never a silent fallback: another rope_type, a scaling key without a
 * type, a key that type does not take, partial_rotary_factor other than 1, layer types whose
 * RoPEs differ. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "badam/llama.h"
#include "io/json_get.h"
#include "model/llama_config_rope.h"

#define TRY(call)                                                                                  \
    do {                                                                                           \
        badam_status st_ = (call);                                                                 \
        if (st_ != BADAM_OK) return st_;                                                           \
    } while (0)

/* Keys each rope_type takes (transformers 5 _validate_<type>_rope_parameters: required and
 * optional keys), plus the common ones every dict may carry. */
static const char *const COMMON_KEYS[] = {"rope_type", "type", "rope_theta",
                                          "partial_rotary_factor", NULL};
static const char *const LLAMA3_KEYS[] = {"factor", "low_freq_factor", "high_freq_factor",
                                          "original_max_position_embeddings", NULL};

static int in_list(const char *const *list, const char *key) {
    for (; *list; list++)
        if (!strcmp(*list, key)) return 1;
    return 0;
}

static int is_layer_type(const char *key) {
    return !strcmp(key, "full_attention") || !strcmp(key, "sliding_attention");
}

/* One RoPE dict (`where` names it in messages, e.g. "rope_parameters.full_attention"). */
static badam_status parse_rope_dict(const json_t *json, const json_t *rd, const char *where,
                                    const char *path, llama_config *cfg, badam_error *err) {
    char ctx[4200];
    snprintf(ctx, sizeof ctx, "%s: %s", path, where);
    char type[32] = "";
    TRY(json_get_string(rd, "type", 0, type, sizeof type, ctx, err));
    TRY(json_get_string(rd, "rope_type", 0, type, sizeof type, ctx, err));
    int llama3 = !strcmp(type, "llama3");
    if (type[0] && strcmp(type, "default") != 0 && !llama3)
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "%s: field '%s.rope_type' is '%s'; supported: 'default' and 'llama3'",
                          path, where, type);
    if (!type[0] && json_object_get(rd, "factor"))
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: field '%s.factor' is given without a rope_type: the scaling "
                          "method is unknown (set '%s.rope_type', e.g. \"llama3\")",
                          path, where, where);
    const char *key;
    size_t key_len;
    json_t *item;
    json_object_keylen_foreach((json_t *)rd, key, key_len, item) {
        int whole = strlen(key) == key_len; /* "factor\u0000x" is not "factor" */
        if (whole && (in_list(COMMON_KEYS, key) || (llama3 && in_list(LLAMA3_KEYS, key)))) continue;
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "%s: field '%s.%s' is not understood for rope_type '%s'", path, where,
                          key, type[0] ? type : "default");
    }

    cfg->rope_theta = 10000.0;
    TRY(json_get_double(json, "rope_theta", 0, &cfg->rope_theta, path, err));
    TRY(json_get_double(rd, "rope_theta", 0, &cfg->rope_theta, ctx, err));
    double partial = 1.0;
    TRY(json_get_double(json, "partial_rotary_factor", 0, &partial, path, err));
    TRY(json_get_double(rd, "partial_rotary_factor", 0, &partial, ctx, err));
    if (partial != 1.0)
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "%s: field 'partial_rotary_factor' = %g: only RoPE over the whole head "
                          "(1.0) is supported",
                          path, partial);

    cfg->rope_scaling = LLAMA_ROPE_NONE;
    if (!llama3) return BADAM_OK;
    cfg->rope_scaling = LLAMA_ROPE_LLAMA3;
    TRY(json_get_double(rd, "factor", 1, &cfg->rope_factor, ctx, err));
    TRY(json_get_double(rd, "low_freq_factor", 1, &cfg->rope_low_freq_factor, ctx, err));
    TRY(json_get_double(rd, "high_freq_factor", 1, &cfg->rope_high_freq_factor, ctx, err));
    cfg->rope_original_max_position_embeddings = cfg->max_position_embeddings;
    TRY(json_get_int(rd, "original_max_position_embeddings", 0,
                     &cfg->rope_original_max_position_embeddings, ctx, err));
    TRY(json_get_int(json, "original_max_position_embeddings", 0,
                     &cfg->rope_original_max_position_embeddings, path, err));
    if (!(cfg->rope_factor > 0) || !(cfg->rope_low_freq_factor > 0) ||
        !(cfg->rope_high_freq_factor > cfg->rope_low_freq_factor) ||
        cfg->rope_original_max_position_embeddings <= 0)
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: field '%s': llama3 needs factor > 0, "
                          "high_freq_factor > low_freq_factor > 0, "
                          "original_max_position_embeddings > 0",
                          path, where);
    return BADAM_OK;
}

static int same_rope(const llama_config *a, const llama_config *b) {
    return a->rope_theta == b->rope_theta && a->rope_scaling == b->rope_scaling &&
           (a->rope_scaling == LLAMA_ROPE_NONE ||
            (a->rope_factor == b->rope_factor &&
             a->rope_low_freq_factor == b->rope_low_freq_factor &&
             a->rope_high_freq_factor == b->rope_high_freq_factor &&
             a->rope_original_max_position_embeddings == b->rope_original_max_position_embeddings));
}

/* A dict keyed by layer type: every entry must describe the same RoPE (we have one). */
static badam_status parse_per_layer(const json_t *json, const json_t *rd, const char *name,
                                    const char *path, llama_config *cfg, badam_error *err) {
    llama_config first = *cfg;
    int n = 0;
    const char *key;
    json_t *item;
    json_object_foreach((json_t *)rd, key, item) {
        char where[96];
        snprintf(where, sizeof where, "%s.%s", name, key);
        if (!json_is_object(item))
            return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' must be an object", path, where);
        TRY(parse_rope_dict(json, item, where, path, cfg, err));
        if (n++ == 0)
            first = *cfg;
        else if (!same_rope(&first, cfg))
            return badam_fail(err, BADAM_E_UNSUPPORTED,
                              "%s: field '%s' differs from the other layer types' RoPE; one RoPE "
                              "for every layer is supported",
                              path, where);
    }
    return BADAM_OK;
}

badam_status llama_config_parse_rope(const json_t *json, const char *path, llama_config *cfg,
                                     badam_error *err) {
    const char *names[] = {"rope_scaling", "rope_parameters"};
    const json_t *rd = NULL;
    const char *name = "rope_parameters";
    for (int i = 0; i < 2 && !rd; i++) {
        const json_t *x = json_object_get(json, names[i]);
        if (!x || json_is_null(x)) continue;
        if (!json_is_object(x))
            return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' must be an object or null", path,
                              names[i]);
        if (!json_object_size(x)) continue; /* {} is no dict: transformers' `rope_scaling or ...` */
        rd = x;
        name = names[i];
    }
    if (!rd) {
        json_t *empty = json_object();
        if (!empty) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", path);
        badam_status st = parse_rope_dict(json, empty, name, path, cfg, err);
        json_decref(empty);
        return st;
    }
    int per_layer = 1;
    const char *key;
    size_t key_len;
    json_t *item;
    json_object_keylen_foreach((json_t *)rd, key, key_len, item) per_layer =
        per_layer && strlen(key) == key_len && is_layer_type(key);
    if (per_layer) return parse_per_layer(json, rd, name, path, cfg, err);
    return parse_rope_dict(json, rd, name, path, cfg, err);
}
