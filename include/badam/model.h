/* The model interface: an architecture table the engine reaches a model family through, the
 * batch built from the text layer's batches, and the per-layer weight hooks.
 *
 * Architecture table. A model family (Llama: llama, mistral, qwen2) is one model_arch: the
 * Hugging Face model_type values it serves and its functions (configuration, parameter table,
 * load, save, gradient plan, workspace sizing, forward to the loss, backward, decoding, FLOP
 * count). model_arch_find(config.json's model_type) picks the family. The containers the
 * functions exchange (llama_model: a tagged parameter table with storage; llama_batch;
 * llama_grad_plan; llama_workspace; llama_kv_cache) carry the llama_ prefix for history: they
 * are the engine's model containers, and the Llama family is their first implementation.
 *
 * How a new family (e.g. BERT / RoBERTa) plugs in:
 *   1. src/model/<family>_*.c: config parsing into the config (a family adds its fields at the
 *      end of llama_config), the parameter table with a model_tag on every tensor (group:
 *      embedding / attention / mlp / head; role: q, k, v, o, up, down, norm, head...; bias), load
 *      and save, forward / backward / decode over its own workspace, each layer's weights taken
 *      through the workspace's weight hooks (model_weight_hooks below).
 *   2. One line in src/model/model_arch.c's table naming its model_types and functions.
 *   Partitions (layer / module / matrix, include-embedding / head) and LoRA targets read only
 *   the tags, so they need nothing more. A family states which target kinds it takes
 *   (model_arch.target_kinds): an encoder adds MODEL_TARGETS_SEQUENCE / _CHOICE and reads
 *   token_types and pad_mask; the Llama family refuses them with an error naming the field.
 *
 * Weight hooks. The model reads each layer's weights between acquire(layer) and
 * release(layer); model_weight_hooks below states the contract. */
#ifndef BADAM_MODEL_H
#define BADAM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "badam/data.h"
#include "badam/decode.h"
#include "badam/llama.h"
#include "badam/model_tags.h"
#include "badam/status.h"

/* ---------------------------------------------------------------- architecture table */

typedef struct model_arch {
    const char *family;             /* "llama" */
    const char *const *model_types; /* config.json model_type values served, NULL-terminated */
    unsigned target_kinds;          /* bit (1u << model_target_kind) for each kind supported */

    badam_status (*config_load)(const char *path, llama_config *cfg, badam_error *err);
    /* The tagged parameter table of a config, without weights (planning, partitions). */
    badam_status (*describe)(const llama_config *cfg, badam_dtype dtype, llama_model **out,
                             badam_error *err);
    badam_status (*load)(const char *dir, badam_dtype dtype, llama_model **out, badam_error *err);
    badam_status (*save)(const llama_model *m, const char *src_dir, const char *out_dir,
                         size_t max_shard_bytes, badam_error *err);
    void (*free)(llama_model *m);

    /* The cheapest gradient plan for a set of flags (train_adapters: LoRA gradients too). */
    void (*plan_for_flags)(const llama_model *m, const uint8_t *need_grad, int train_adapters,
                           llama_grad_plan *plan);
    /* Workspace bytes predicted from the config alone, and the workspace itself. */
    llama_workspace_bytes (*workspace_predict)(const llama_config *cfg, badam_dtype dtype, int B,
                                               int T, int lora_rank, int lora_adapters_per_layer,
                                               int bottleneck_size);
    badam_status (*workspace_create)(const llama_model *m, int B, int T, llama_workspace **out,
                                     badam_error *err);
    void (*workspace_free)(llama_workspace *ws);

    /* Forward to the loss (plan NULL: loss only), backward under the same plan. */
    badam_status (*forward)(const llama_model *m, llama_workspace *ws, const llama_batch *batch,
                            const llama_grad_plan *plan, float grad_scale, float **grads,
                            double *loss_sum, int *n_tokens, badam_error *err);
    badam_status (*backward)(const llama_model *m, llama_workspace *ws, const llama_batch *batch,
                             const llama_grad_plan *plan, float **grads, badam_error *err);
    /* Incremental decoding (NULL for a family that does not generate, e.g. an encoder). */
    badam_status (*kv_cache_create)(const llama_model *m, int max_len, int max_chunk,
                                    llama_kv_cache **out, badam_error *err);
    badam_status (*decode)(const llama_model *m, llama_kv_cache *kv, const int32_t *tokens, int n,
                           float *logits, int all_logits, badam_error *err);
    /* Analytic GEMM FLOPs of one forward + backward under a plan (NULL: forward only). */
    uint64_t (*gemm_flops)(const llama_model *m, const llama_grad_plan *plan, int B, int T,
                           int n_tokens);
} model_arch;

/* The family serving a Hugging Face model_type ("llama", "mistral", "qwen2"), or NULL. */
const model_arch *model_arch_find(const char *model_type);
/* The family of dir/config.json's model_type. Errors name the file and the field (unreadable
 * file, no model_type, a model_type no family serves: the message lists the served ones). */
badam_status model_arch_for_folder(const char *dir, const model_arch **arch, badam_error *err);
/* The registered families, for listing: *n receives their count. */
const model_arch *const *model_arch_all(int *n);

/* ---------------------------------------------------------------- batches */

/* The model batch of a text-layer batch (causal LM: per-token targets). The arrays are the
 * data_batch's (not copied): valid while it is. Encoder fields stay zero until the text layer
 * produces them. */
void model_batch_from_data(const data_batch *db, llama_batch *out);

/* ---------------------------------------------------------------- per-layer weight hooks */

#define MODEL_LAYER_MAX_PARAMS 32

/* One layer's parameters as the model reads them in a pass: data[i] and dtype[i] stand for
 * params[first + i], i < n (a layer's parameters are contiguous in the table). */
typedef struct model_layer_weights {
    int layer;
    int first, n;
    const void *data[MODEL_LAYER_MAX_PARAMS];
    badam_dtype dtype[MODEL_LAYER_MAX_PARAMS];
} model_layer_weights;

/* Where the model gets a layer's weights: the seam for a per-layer fp32 conversion buffer (the
 * default of a workspace whose backend multiplies fp32 faster), memory-mapped weights, sharded
 * weights (an all-gather in acquire) and device upload.
 *
 * Contract.
 *  - acquire(ctx, m, layer, lw) fills lw (layer, first, n, data, dtype) before the model reads
 *    any parameter of that layer; release(ctx, m, layer, lw) follows once it reads none any
 *    more. Calls are balanced and never nested: every forward, recomputation, backward and
 *    decode chunk takes one layer at a time (forward 0..L-1, backward L-1..first; with
 *    recompute one acquire covers the layer's recomputed forward and its backward).
 *  - The pointers in lw are valid from acquire to the matching release only. A hook may keep a
 *    converted or gathered copy past release and hand it out again on the next acquire of the
 *    same layer (the default keeps the last layer's fp32 copy, which the next backward reuses).
 *  - Weights change only between passes: the optimizer writes params[].data after backward and
 *    before the next forward. invalidate(ctx, m) is called at the start of every pass (each
 *    forward, forward_logits and decode call) and must drop every cached copy; a hook whose copy
 *    is written to (device upload) must write nothing back except through the optimizer.
 *  - Parameters outside the layers (embeddings, final norm, head) are read from
 *    params[].data directly; they are not behind the hooks yet.
 *  - acquire may fail (mapping, communication): the pass returns its error. */
typedef struct model_weight_hooks {
    badam_status (*acquire)(void *ctx, const llama_model *m, int layer, model_layer_weights *lw,
                            badam_error *err);
    void (*release)(void *ctx, const llama_model *m, int layer, model_layer_weights *lw);
    void (*invalidate)(void *ctx, const llama_model *m);
    void *ctx;
} model_weight_hooks;

/* The stored weights: data = params[].data, dtype = the model's. A hook may call it. */
badam_status model_layer_weights_stored(const llama_model *m, int layer, model_layer_weights *lw,
                                        badam_error *err);

/* The hooks a workspace or KV cache uses; set NULL to restore the default (workspace: the fp32
 * layer copy when its backend asks for one, else the stored weights; KV cache: the stored
 * weights). Set hooks between passes only; a wrapper may call the hooks it replaces. */
model_weight_hooks llama_workspace_weight_hooks(const llama_workspace *ws);
void llama_workspace_set_weight_hooks(llama_workspace *ws, const model_weight_hooks *hooks);
model_weight_hooks llama_kv_cache_weight_hooks(const llama_kv_cache *kv);
void llama_kv_cache_set_weight_hooks(llama_kv_cache *kv, const model_weight_hooks *hooks);

#endif
