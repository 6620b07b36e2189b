/* config.json -> llama_config for model types llama, mistral and qwen2. */
#include <math.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "badam/llama.h"
#include "io/files.h"
#include "io/json_get.h"
#include "model/llama_config_rope.h"

#define TRY(call)                                                                                  \
    do {                                                                                           \
        badam_status st_ = (call);                                                                 \
        if (st_ != BADAM_OK) return st_;                                                           \
    } while (0)

static badam_status parse_eos(const json_t *json, const char *path, llama_config *cfg,
                              badam_error *err) {
    const json_t *eos = json_object_get(json, "eos_token_id");
    cfg->n_eos = 0;
    if (!eos || json_is_null(eos)) return BADAM_OK;
    if (json_number_is_int(eos)) {
        long long v;
        json_int_in_range(eos, INT_MIN, INT_MAX, &v);
        cfg->eos_token_ids[cfg->n_eos++] = (int)v;
        return BADAM_OK;
    }
    if (!json_is_array(eos) || json_array_size(eos) > LLAMA_MAX_EOS)
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: field 'eos_token_id' must be an integer or a list of at most %d",
                          path, LLAMA_MAX_EOS);
    const json_t *item;
    size_t index;
    json_array_foreach(eos, index, item) {
        long long v;
        if (!json_int_in_range(item, INT_MIN, INT_MAX, &v))
            return badam_fail(err, BADAM_E_FORMAT, "%s: field 'eos_token_id' has a non-integer",
                              path);
        cfg->eos_token_ids[cfg->n_eos++] = (int)v;
    }
    return BADAM_OK;
}

static badam_status check_range(const char *path, const char *field, int value, int lo, int hi,
                                badam_error *err) {
    if (value < lo || value > hi)
        return badam_fail(err, BADAM_E_FORMAT, "%s: field '%s' = %d is outside [%d, %d]", path,
                          field, value, lo, hi);
    return BADAM_OK;
}

/* Qwen2's sliding window (transformers Qwen2Config / Qwen2Attention): the window is
 * `sliding_window` when `use_sliding_window`, applied to the layers whose `layer_types` entry is
 * "sliding_attention"; without `layer_types` (transformers 4), to the layers i >=
 * `max_window_layers` (default 28). We keep the window when any layer slides (sliding attention
 * itself is not implemented: longer sequences are refused). */
static badam_status parse_qwen2_window(const json_t *json, const char *path, llama_config *cfg,
                                       badam_error *err) {
    int use_sw = 0, max_window_layers = 28;
    TRY(json_get_bool(json, "use_sliding_window", 0, &use_sw, path, err));
    TRY(json_get_int(json, "max_window_layers", 0, &max_window_layers, path, err));
    int window = 0;
    if (use_sw) TRY(json_get_int(json, "sliding_window", 0, &window, path, err));
    int any_sliding = cfg->n_layers > max_window_layers;
    const json_t *lt = json_object_get(json, "layer_types");
    if (lt && !json_is_null(lt)) {
        if (!json_is_array(lt) || json_array_size(lt) != (size_t)cfg->n_layers)
            return badam_fail(err, BADAM_E_FORMAT,
                              "%s: field 'layer_types' must be a list of num_hidden_layers (%d) "
                              "strings",
                              path, cfg->n_layers);
        any_sliding = 0;
        const json_t *item;
        size_t index;
        json_array_foreach(lt, index, item) {
            const char *s = json_string_is_c(item) ? json_string_value(item) : "";
            if (!strcmp(s, "sliding_attention"))
                any_sliding = 1;
            else if (strcmp(s, "full_attention") != 0)
                return badam_fail(err, BADAM_E_UNSUPPORTED,
                                  "%s: field 'layer_types' has '%s'; supported: "
                                  "'full_attention', 'sliding_attention'",
                                  path, s);
        }
    }
    cfg->sliding_window = any_sliding ? window : 0;
    return BADAM_OK;
}

/* The sizes: hidden, intermediate, layers, heads, vocab, positions, head_dim, with their ranges. */
static badam_status parse_sizes(const json_t *json, const char *path, llama_config *cfg,
                                badam_error *err) {
    TRY(json_get_int(json, "hidden_size", 1, &cfg->hidden_size, path, err));
    TRY(json_get_int(json, "intermediate_size", 1, &cfg->intermediate_size, path, err));
    TRY(json_get_int(json, "num_hidden_layers", 1, &cfg->n_layers, path, err));
    TRY(json_get_int(json, "num_attention_heads", 1, &cfg->n_heads, path, err));
    cfg->n_kv_heads = cfg->n_heads;
    TRY(json_get_int(json, "num_key_value_heads", 0, &cfg->n_kv_heads, path, err));
    TRY(json_get_int(json, "vocab_size", 1, &cfg->vocab_size, path, err));
    cfg->max_position_embeddings = 2048;
    TRY(json_get_int(json, "max_position_embeddings", 0, &cfg->max_position_embeddings, path, err));

    TRY(check_range(path, "hidden_size", cfg->hidden_size, 1, 1 << 17, err));
    TRY(check_range(path, "intermediate_size", cfg->intermediate_size, 1, 1 << 19, err));
    TRY(check_range(path, "num_hidden_layers", cfg->n_layers, 1, 1024, err));
    TRY(check_range(path, "num_attention_heads", cfg->n_heads, 1, 1024, err));
    TRY(check_range(path, "num_key_value_heads", cfg->n_kv_heads, 1, cfg->n_heads, err));
    TRY(check_range(path, "vocab_size", cfg->vocab_size, 1, 1 << 23, err));
    TRY(check_range(path, "max_position_embeddings", cfg->max_position_embeddings, 1, 1 << 24,
                    err));
    if (cfg->n_heads % cfg->n_kv_heads != 0)
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: num_attention_heads (%d) is not a multiple of "
                          "num_key_value_heads (%d)",
                          path, cfg->n_heads, cfg->n_kv_heads);

    cfg->head_dim = 0;
    TRY(json_get_int(json, "head_dim", 0, &cfg->head_dim, path, err));
    if (cfg->head_dim == 0) {
        if (cfg->hidden_size % cfg->n_heads != 0)
            return badam_fail(err, BADAM_E_FORMAT,
                              "%s: hidden_size (%d) is not a multiple of num_attention_heads (%d) "
                              "and no head_dim is given",
                              path, cfg->hidden_size, cfg->n_heads);
        cfg->head_dim = cfg->hidden_size / cfg->n_heads;
    }
    TRY(check_range(path, "head_dim", cfg->head_dim, 2, 1024, err));
    if (cfg->head_dim % 2)
        return badam_fail(err, BADAM_E_FORMAT, "%s: field 'head_dim' = %d must be even", path,
                          cfg->head_dim);
    return BADAM_OK;
}

/* What differs between llama, mistral and qwen2: activation, biases, sliding window. */
static badam_status parse_family(const json_t *json, const char *path, llama_config *cfg,
                                 badam_error *err) {
    char act[32] = "silu";
    TRY(json_get_string(json, "hidden_act", 0, act, sizeof act, path, err));
    if (strcmp(act, "silu") != 0)
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "%s: field 'hidden_act' is '%s'; only 'silu' is supported", path, act);
    int mlp_bias = 0;
    TRY(json_get_bool(json, "mlp_bias", 0, &mlp_bias, path, err));
    if (mlp_bias)
        return badam_fail(err, BADAM_E_UNSUPPORTED, "%s: field 'mlp_bias' = true is not supported",
                          path);

    if (!strcmp(cfg->model_type, "qwen2")) {
        cfg->qkv_bias = 1; /* Qwen2 always has q/k/v biases and no o_proj bias */
        TRY(parse_qwen2_window(json, path, cfg, err));
    } else if (!strcmp(cfg->model_type, "llama")) {
        int attention_bias = 0;
        TRY(json_get_bool(json, "attention_bias", 0, &attention_bias, path, err));
        cfg->qkv_bias = cfg->o_bias = attention_bias;
    } else {
        TRY(json_get_int(json, "sliding_window", 0, &cfg->sliding_window, path, err));
    }
    if (cfg->sliding_window < 0)
        return badam_fail(err, BADAM_E_FORMAT, "%s: field 'sliding_window' must be >= 0", path);
    return BADAM_OK;
}

static badam_status parse_config(const json_t *json, const char *path, llama_config *cfg,
                                 badam_error *err) {
    memset(cfg, 0, sizeof *cfg);
    if (!json_is_object(json))
        return badam_fail(err, BADAM_E_FORMAT, "%s: expected a JSON object", path);
    TRY(json_get_string(json, "model_type", 1, cfg->model_type, sizeof cfg->model_type, path, err));
    if (strcmp(cfg->model_type, "llama") && strcmp(cfg->model_type, "qwen2") &&
        strcmp(cfg->model_type, "mistral"))
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "%s: field 'model_type' is '%s'; supported: llama, mistral, qwen2", path,
                          cfg->model_type);
    TRY(parse_sizes(json, path, cfg, err));
    double eps = 1e-6;
    TRY(json_get_double(json, "rms_norm_eps", 0, &eps, path, err));
    cfg->rms_norm_eps = (float)eps;
    TRY(json_get_bool(json, "tie_word_embeddings", 0, &cfg->tie_word_embeddings, path, err));
    TRY(llama_config_parse_rope(json, path, cfg, err));
    if (!(cfg->rms_norm_eps > 0) || !(cfg->rope_theta > 0))
        return badam_fail(err, BADAM_E_FORMAT, "%s: rms_norm_eps and rope_theta must be > 0", path);
    TRY(parse_family(json, path, cfg, err));
    cfg->bos_token_id = -1;
    TRY(json_get_int(json, "bos_token_id", 0, &cfg->bos_token_id, path, err));
    TRY(parse_eos(json, path, cfg, err));
    return BADAM_OK;
}

badam_status llama_config_load(const char *path, llama_config *cfg, badam_error *err) {
    json_t *json = NULL;
    badam_status st = io_read_json(path, &json, err);
    if (st != BADAM_OK) return st;
    st = parse_config(json, path, cfg, err);
    json_decref(json);
    return st;
}

/* HF _compute_llama3_parameters: with wavelen = 2 pi / f, low_wl = old_ctx / low_freq_factor and
 * high_wl = old_ctx / high_freq_factor:
 *   wavelen < high_wl: f;   wavelen > low_wl: f / factor;
 *   otherwise (1 - s) f / factor + s f,  s = (old_ctx / wavelen - low) / (high - low). */
void llama_rope_inv_freq(const llama_config *cfg, float *inv_freq) {
    int half = cfg->head_dim / 2;
    for (int i = 0; i < half; i++) {
        double f = 1.0 / pow(cfg->rope_theta, (double)(2 * i) / cfg->head_dim);
        if (cfg->rope_scaling == LLAMA_ROPE_LLAMA3) {
            double old_ctx = cfg->rope_original_max_position_embeddings;
            double low = cfg->rope_low_freq_factor, high = cfg->rope_high_freq_factor;
            double wavelen = 2.0 * M_PI / f;
            if (wavelen > old_ctx / low) {
                f = f / cfg->rope_factor;
            } else if (wavelen >= old_ctx / high) {
                double s = (old_ctx / wavelen - low) / (high - low);
                f = (1.0 - s) * f / cfg->rope_factor + s * f;
            }
        }
        inv_freq[i] = (float)f;
    }
}
