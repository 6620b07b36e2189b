/* RoPE settings of config.json in the transformers 4 and 5 forms (llama_config_rope.c). */
#ifndef BADAM_MODEL_LLAMA_CONFIG_ROPE_H
#define BADAM_MODEL_LLAMA_CONFIG_ROPE_H

#include <jansson.h>

#include "badam/llama.h"

/* Sets cfg's rope_theta and rope scaling from `json` (the whole config; cfg's
 * max_position_embeddings must be set already). Errors name `path` and the field. */
badam_status llama_config_parse_rope(const json_t *json, const char *path, llama_config *cfg,
                                     badam_error *err);

#endif
