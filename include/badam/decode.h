/* Incremental decoding over a KV cache (model layer): the keys and values of the tokens seen so
 * far are kept, so each new token costs one row of every layer. */
#ifndef BADAM_DECODE_H
#define BADAM_DECODE_H

#include <stdint.h>

#include "badam/llama.h"
#include "badam/status.h"

/* The keys and values of every layer for the tokens decoded so far (fp32, [L][max_len][Hkv*D]),
 * the token ids themselves, and the scratch one decoding call needs. */
typedef struct llama_kv_cache llama_kv_cache;

/* A cache for up to max_len tokens (at most max_position_embeddings). Prompts are processed
 * max_chunk rows at a time (0: 64). The model must outlive the cache. */
badam_status llama_kv_cache_create(const llama_model *m, int max_len, int max_chunk,
                                   llama_kv_cache **out, badam_error *err);
void llama_kv_cache_free(llama_kv_cache *kv);
/* Tokens held (the position the next token gets). */
int llama_kv_cache_length(const llama_kv_cache *kv);
int llama_kv_cache_capacity(const llama_kv_cache *kv);
/* The ids held, [length]. */
const int32_t *llama_kv_cache_tokens(const llama_kv_cache *kv);
/* Forgets every token from position len on (0: all). */
void llama_kv_cache_truncate(llama_kv_cache *kv, int len);

/* Appends n tokens at positions length .. length+n-1 and runs them through the model, attending
 * to everything already cached (causal; sliding window where the config has one). logits [n, V]
 * receives every new position's logits when all_logits, else only the last one's ([V]); NULL:
 * none. Equals llama_forward_logits on the whole sequence up to fp32 rounding.
 * LoRA adapters attached to the model are applied (unmerged, no dropout), and so are bottleneck
 * adapters. Each layer runs the same code as llama_forward (llama_layer_forward) with its weights
 * taken through the cache's weight hooks (badam/model.h; default: the stored weights). */
badam_status llama_decode(const llama_model *m, llama_kv_cache *kv, const int32_t *tokens, int n,
                          float *logits, int all_logits, badam_error *err);

#endif
