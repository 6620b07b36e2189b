/* The Llama family (llama, mistral, qwen2): configuration, parameters by Hugging Face name,
 * forward and backward on CPU under a gradient plan, and loading/saving HF model folders. The
 * family is the first entry of the architecture table (badam/model.h), which also holds the
 * batch builder and the per-layer weight hooks; the containers declared here (llama_model,
 * llama_batch, llama_grad_plan, llama_workspace) are the ones the table's functions exchange. */
#ifndef BADAM_LLAMA_H
#define BADAM_LLAMA_H

#include <stddef.h>
#include <stdint.h>

#include "badam/dtype.h"
#include "badam/model_tags.h"
#include "badam/status.h"

/* ---------------------------------------------------------------- configuration */

typedef enum llama_rope_scaling {
    LLAMA_ROPE_NONE = 0,
    LLAMA_ROPE_LLAMA3, /* rope_scaling {"rope_type": "llama3", factor, low/high_freq_factor, ...} */
} llama_rope_scaling;

#define LLAMA_MAX_EOS 8

typedef struct llama_config {
    char model_type[16]; /* "llama", "mistral" or "qwen2" */
    int hidden_size;
    int intermediate_size;
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim; /* config's head_dim when present, else hidden_size / n_heads */
    int vocab_size;
    int max_position_embeddings;
    float rms_norm_eps;
    double rope_theta;
    llama_rope_scaling rope_scaling;
    double rope_factor;
    double rope_low_freq_factor;
    double rope_high_freq_factor;
    int rope_original_max_position_embeddings;
    int tie_word_embeddings;
    int qkv_bias;       /* q_proj, k_proj, v_proj have a bias (qwen2; llama attention_bias) */
    int o_bias;         /* o_proj has a bias (llama attention_bias) */
    int sliding_window; /* attention window (mistral, qwen2 use_sliding_window); 0 = none */
    int bos_token_id;   /* -1 when absent */
    int n_eos;
    int eos_token_ids[LLAMA_MAX_EOS];
    /* Encoder families (bert, roberta: src/model/bert_*.c); zero for a causal LM. */
    int encoder_head;         /* llama_encoder_head */
    int num_labels;           /* classes of a sequence-classification head; 1 for multiple choice */
    int type_vocab_size;      /* rows of token_type_embeddings */
    int pad_token_id;         /* -1 when absent */
    int position_offset;      /* roberta: pad_token_id + 1 (HF's padding_idx offset); bert: 0 */
    float layer_norm_eps;     /* every LayerNorm's eps */
    float hidden_dropout;     /* hidden_dropout_prob: embeddings, attention and MLP outputs */
    float attention_dropout;  /* attention_probs_dropout_prob */
    float classifier_dropout; /* the head's dropout (classifier_dropout, else hidden_dropout) */
} llama_config;

/* The head of an encoder (llama_config.encoder_head), from config.json's "architectures". */
typedef enum llama_encoder_head {
    LLAMA_HEAD_NONE = 0,           /* a causal LM */
    LLAMA_HEAD_POOLER,             /* *ForSequenceClassification of BERT, *ForMultipleChoice:
                                    * <base>.pooler.dense (tanh), dropout, classifier */
    LLAMA_HEAD_ROBERTA_CLASSIFIER, /* RobertaForSequenceClassification: dropout, classifier.dense
                                    * (tanh), dropout, classifier.out_proj */
    LLAMA_HEAD_MLM,                /* *ForMaskedLM: the masked-LM head (RoBERTa lm_head.dense, gelu,
                                    * lm_head.layer_norm, decoder tied to the word embeddings,
                                    * lm_head.bias; BERT the same under cls.predictions.*; no
                                    * pooler); per-token targets, num_labels 0 */
} llama_encoder_head;

/* Parses `path` (a config.json). Errors name the file and the field. */
badam_status llama_config_load(const char *path, llama_config *cfg, badam_error *err);

/* ---------------------------------------------------------------- parameters */

typedef enum llama_param_kind {
    LLAMA_P_EMBED = 0, /* model.embed_tokens.weight [V, C] */
    LLAMA_P_ATTN_NORM, /* model.layers.i.input_layernorm.weight [C] */
    LLAMA_P_Q,         /* self_attn.q_proj.weight [Hq*D, C] */
    LLAMA_P_K,         /* self_attn.k_proj.weight [Hkv*D, C] */
    LLAMA_P_V,         /* self_attn.v_proj.weight [Hkv*D, C] */
    LLAMA_P_O,         /* self_attn.o_proj.weight [C, Hq*D] */
    LLAMA_P_Q_BIAS,
    LLAMA_P_K_BIAS,
    LLAMA_P_V_BIAS,
    LLAMA_P_O_BIAS,
    LLAMA_P_MLP_NORM,   /* model.layers.i.post_attention_layernorm.weight [C] */
    LLAMA_P_GATE,       /* mlp.gate_proj.weight [I, C] */
    LLAMA_P_UP,         /* mlp.up_proj.weight [I, C] */
    LLAMA_P_DOWN,       /* mlp.down_proj.weight [C, I] */
    LLAMA_P_FINAL_NORM, /* model.norm.weight [C] */
    LLAMA_P_LM_HEAD,    /* lm_head.weight [V, C] (absent when tied) */
    LLAMA_P_KIND_COUNT
} llama_param_kind;

typedef struct llama_param {
    char name[96]; /* Hugging Face name */
    llama_param_kind kind;
    int layer; /* -1 for embedding, final norm, LM head */
    int ndim;
    int64_t shape[2];
    size_t numel;
    void *data;    /* in the model's dtype; NULL in a table built from a config alone */
    model_tag tag; /* architecture-neutral group and role (model_tags.h) */
} llama_param;

/* The parameter table of a config, in storage order: embedding, layer 0..L-1, final norm,
 * LM head. Caller frees *params. No weights are touched. */
badam_status llama_param_table(const llama_config *cfg, llama_param **params, int *n_params,
                               badam_error *err);
size_t llama_param_count(const llama_config *cfg); /* total parameters */
/* Bytes the model's weight storage takes in `dtype` (what llama_model_create allocates). */
size_t llama_model_storage_bytes(const llama_config *cfg, badam_dtype dtype);

/* LoRA adapters (Hu et al. 2021) on linear layers:
 *   y = W x + b + scale * B (A drop(x)),  A [r, in], B [out, r], scale = alpha / r,
 * where drop() zeroes inputs with probability `dropout` and scales the rest by 1/(1-dropout)
 * while training (the mask is a hash of seed, step, layer, module, row and column, so backward
 * regenerates it instead of storing it). A and B are fp32. */
typedef struct llama_lora {
    int rank;
    float alpha;
    float dropout;
    int training;          /* dropout on */
    uint64_t dropout_seed; /* set by the trainer */
    uint64_t dropout_step; /* set by the trainer for each micro-batch */
    uint32_t targets;      /* bit (1u << model_role) for each adapted role (model_tags.h; the
                            * projection roles equal their llama_param_kind) */
    float **A, **B;        /* [n_layers * MODEL_ROLE_COUNT], slot layer * 16 + role: NULL where
                            * not adapted */
    float **dA, **dB;      /* gradients, accumulated by backward when the plan trains adapters */
    int n_adapters;
    size_t n_params; /* total A and B elements */
} llama_lora;

/* Bottleneck adapters (Houlsby et al. 2019, "Parameter-Efficient Transfer Learning for NLP")
 * after the attention and after the MLP of every layer, on the sublayer's output y (o_proj's,
 * down_proj's) before its residual add:
 *   z = y + U relu(D y + d) + u
 * with D [size, C], d [size], U [C, size], u [C]. Adapter a = 2 layer + site (site 0: after the
 * attention, 1: after the MLP) holds its four tensors in one block w[a] in the order D, d, U, u
 * (llama_bottleneck_part gives offsets); g[a] the gradients, same layout. fp32. Not mergeable
 * into the weights (the nonlinearity), so saved and loaded beside the base. */
typedef struct llama_bottleneck {
    int size;           /* bottleneck width (1 .. hidden_size) */
    int n_adapters;     /* 2 n_layers */
    size_t per_adapter; /* floats of one adapter: 2 size C + size + C */
    float **w, **g;     /* [n_adapters] */
} llama_bottleneck;

typedef struct llama_model {
    llama_config cfg;
    badam_dtype dtype; /* storage dtype of every parameter */
    llama_param *params;
    int n_params;
    int *layer_index;               /* [n_layers * LLAMA_P_KIND_COUNT]: param index or -1 */
    int embed, final_norm, lm_head; /* param indices; lm_head == embed when tied */
    void *storage;                  /* one allocation holding every parameter */
    size_t storage_bytes;
    float *inv_freq;              /* [head_dim/2] RoPE frequencies, scaling applied */
    llama_lora *lora;             /* NULL without adapters */
    llama_bottleneck *bottleneck; /* NULL without bottleneck adapters */
    /* Saving (llama_model_save and the savers built on it) reads the parameters' bytes, in
     * parameter order and a bounded chunk at a time, through save_fetch(save_ctx, host,
     * params[i].data + offset, bytes) when it is set, else from params[].data directly: set by
     * a holder whose weights are not all in memory at once (--shard-weights), NULL otherwise. */
    badam_status (*save_fetch)(void *ctx, void *host, const void *src, size_t bytes,
                               badam_error *err); /* an error ends the save with it */
    void *save_ctx;
} llama_model;

/* Index of the parameter of `kind` in `layer` (layer ignored for global kinds), or -1. */
int llama_param_index(const llama_model *m, int layer, llama_param_kind kind);
int llama_find_param(const llama_model *m, const char *hf_name);

/* The parameter table and indices of a config with no weight storage (data pointers NULL):
 * enough for planning and partitioning without reading weights. */
badam_status llama_model_describe(const llama_config *cfg, badam_dtype dtype, llama_model **out,
                                  badam_error *err);
/* A model with zeroed weights for a config (tests, pretraining from scratch). */
badam_status llama_model_create(const llama_config *cfg, badam_dtype dtype, llama_model **out,
                                badam_error *err);
void llama_model_free(llama_model *m);

/* Loads a Hugging Face folder (config.json + model.safetensors or shards), converting every
 * tensor to `dtype`. Missing, unexpected or wrongly shaped tensors are errors naming them. */
badam_status llama_model_load(const char *dir, badam_dtype dtype, llama_model **out,
                              badam_error *err);

/* What a folder holds against its config, without loading weights (badam inspect). tensors[i]
 * describes params[i]: found in the safetensors files, with the config's shape, its stored
 * dtype and bytes. unknown: tensor names of the folder that are no parameter of the config
 * (ignored on load). n_problems: parameters missing or wrongly shaped. */
typedef struct llama_folder_tensor {
    int found, shape_ok;
    badam_dtype stored_dtype;
    size_t stored_bytes;
} llama_folder_tensor;
typedef struct llama_folder_report {
    llama_config cfg;
    llama_param *params; /* the config's parameter table (data NULL) */
    int n_params;
    llama_folder_tensor *tensors; /* [n_params] */
    char **unknown;
    size_t n_unknown;
    size_t stored_bytes;
    int n_problems;
} llama_folder_report;
/* Reads dir/config.json and the safetensors headers (single file or sharded index). Errors
 * (unreadable config, malformed headers) name the file and field. */
badam_status llama_folder_inspect(const char *dir, llama_folder_report *r, badam_error *err);
void llama_folder_report_free(llama_folder_report *r);

/* Saves weights (model dtype) to out_dir in the HF layout, sharded above max_shard_bytes
 * (0: one file); writes config.json (from src_dir's when given, torch_dtype updated) and copies
 * tokenizer and generation files from src_dir. Every file is written atomically. */
badam_status llama_model_save(const llama_model *m, const char *src_dir, const char *out_dir,
                              size_t max_shard_bytes, badam_error *err);

/* What a saved folder declares beyond the weights, for a model fine-tuned with a chat template
 * (the trainer fills it; NULL / 0 fields leave the source folder's values). */
typedef struct llama_folder_meta {
    const int32_t *eos_ids; /* eos_token_id in config.json and generation_config.json */
    int n_eos;
    int bos_id;                /* generation_config.json's bos_token_id when it is created; -1 */
    const char *eos_token;     /* tokenizer_config.json eos_token */
    const char *chat_template; /* tokenizer_config.json chat_template (and chat_template.jinja) */
} llama_folder_meta;

/* llama_model_save, then the folder files rewritten as `meta` says: config.json's eos_token_id;
 * generation_config.json's eos_token_id (created when the source has none, other fields kept);
 * tokenizer_config.json's eos_token and chat_template, and chat_template.jinja when the source
 * has one (transformers reads it before tokenizer_config.json's). meta NULL: llama_model_save. */
badam_status llama_model_save_meta(const llama_model *m, const char *src_dir, const char *out_dir,
                                   size_t max_shard_bytes, const llama_folder_meta *meta,
                                   badam_error *err);

/* Attaches LoRA adapters to every layer weight (not a bias) whose tag's role is in `targets`
 * (bit 1u << model_role; only the projection roles q, k, v, o, gate, up, down may be adapted),
 * initialised as PEFT does: A ~ U(-1/sqrt(in), 1/sqrt(in)) from `seed`, B = 0. Gradient buffers
 * are allocated too. */
badam_status llama_lora_attach(llama_model *m, int rank, float alpha, float dropout,
                               uint32_t targets, uint64_t seed, badam_error *err);
void llama_lora_detach(llama_model *m);
/* Merges the adapters into the stored weights: W += scale * B A (rounded to the storage dtype). */
void llama_lora_merge(llama_model *m);
/* The module name of an adapted linear: its weight's name without the last part
 * ("model.layers.3.self_attn.q_proj"). */
void llama_lora_module_name(const llama_model *m, int layer, llama_param_kind kind, char *out,
                            size_t size);
/* Saves / loads a PEFT-style adapter folder: adapter_config.json and adapter_model.safetensors
 * with names base_model.model.<module>.lora_A.weight / lora_B.weight. Loading checks rank,
 * targets and shapes against the attached adapters. */
badam_status llama_lora_save(const llama_model *m, const char *dir, const char *base_model,
                             badam_error *err);
badam_status llama_lora_load(llama_model *m, const char *dir, badam_error *err);
/* Parses role names "q,k,v,o,gate,up,down" (also q_proj, ..., or "all") into a mask of roles. */
badam_status llama_lora_parse_targets(const char *list, uint32_t *targets, badam_error *err);

/* Attaches bottleneck adapters of width `size` (1 .. hidden_size) after the attention and the MLP
 * of every layer, initialised near the identity as Houlsby et al.: D ~ U(-1/sqrt(C), 1/sqrt(C))
 * from `seed`, d = 0, U = 0, u = 0 (so z = y). Gradient buffers are allocated too. Refused
 * together with LoRA adapters. */
badam_status llama_bottleneck_attach(llama_model *m, int size, uint64_t seed, badam_error *err);
void llama_bottleneck_detach(llama_model *m);
/* Offset (floats) and element count of part 0..3 (D, d, U, u) in an adapter block, and its
 * name ("down.weight", "down.bias", "up.weight", "up.bias"). */
size_t llama_bottleneck_part(const llama_bottleneck *b, int C, int part, size_t *numel,
                             const char **name);
/* The adapter folder (docs/file-formats.md, "Bottleneck adapters"): adapter_config.json
 * ("adapter_type": "bottleneck", "adapter_size", "non_linearity": "relu", ...) and
 * adapter_model.safetensors with model.layers.L.{attn,mlp}_adapter.{down,up}.{weight,bias}.
 * save writes the attached adapters; load fills them (size and shapes checked); open attaches
 * adapters of the folder's size and loads them (generate and eval's --adapter). */
badam_status llama_bottleneck_save(const llama_model *m, const char *dir, const char *base_model,
                                   badam_error *err);
badam_status llama_bottleneck_load(llama_model *m, const char *dir, badam_error *err);
badam_status llama_bottleneck_open(llama_model *m, const char *dir, badam_error *err);

/* RoPE inverse frequencies [head_dim/2] for a config, with llama3 scaling when configured. */
void llama_rope_inv_freq(const llama_config *cfg, float *inv_freq);

/* ---------------------------------------------------------------- gradient plan */

/* What backward must compute. need_grad[i] flags parameter i (the caller supplies a gradient
 * buffer for it). Input gradients are computed for layers >= lowest_input_grad_layer; a layer
 * below that is entered only if it has a flagged parameter and is directly below
 * (lowest_input_grad_layer - 1); nothing below is touched, and forward keeps no activations
 * there. lowest_input_grad_layer == n_layers: no layer input gradient at all. */
typedef struct llama_grad_plan {
    const uint8_t *need_grad; /* [n_params] */
    int lowest_input_grad_layer;
    int recompute;      /* keep only each layer's input; recompute its activations in backward */
    int train_adapters; /* accumulate adapter gradients (LoRA's m->lora->dA, dB, or the
                         * bottleneck adapters' m->bottleneck->g) of visited layers */
    /* Called once per flagged parameter as soon as its gradient for this step is complete and
     * nothing later in backward reads the parameter (LOMO updates in place here and reuses the
     * gradient buffer). NULL: no calls. */
    void (*grad_ready)(void *ctx, int param_index);
    void *grad_ready_ctx;
} llama_grad_plan;

/* The cheapest plan for a set of flags (lowest_input_grad_layer as high as possible); with
 * train_adapters, every adapted layer counts as flagged. Other fields are zeroed. */
void llama_plan_for_flags(const llama_model *m, const uint8_t *need_grad, int train_adapters,
                          llama_grad_plan *plan);
/* Checks a plan is consistent (no flagged parameter below what backward visits). */
badam_status llama_plan_check(const llama_model *m, const llama_grad_plan *plan, badam_error *err);
/* The first layer backward enters under a plan (n_layers if none). */
int llama_plan_first_layer(const llama_model *m, const llama_grad_plan *plan);

/* ---------------------------------------------------------------- forward / backward */

/* What a batch's targets are (model.h describes the families that support each). */
typedef enum model_target_kind {
    MODEL_TARGETS_TOKEN = 0, /* targets[B*T]: the token each position predicts, or -100 */
    MODEL_TARGETS_SEQUENCE,  /* targets[B]: the class of each sequence, or -100 */
    MODEL_TARGETS_CHOICE,    /* targets[B / n_choices]: which of n_choices consecutive rows is the
                              * answer of its group, or -100 */
    MODEL_TARGETS_MASKED,    /* targets[B*T]: masked-LM targets, the original token at each masked
                              * position (no shift: the position itself is predicted, seeing both
                              * sides), or -100 (badam/mlm.h makes them) */
} model_target_kind;

/* B sequences of T tokens, right-padded. With the default target kind (token),
 * targets[b*T+t] is the token position t predicts, or -100 to leave the position out of the loss
 * (padding, prompt). Packed rows hold several examples: positions (NULL: t) restart in each, and
 * seg_start (NULL: 0) gives the row position where the example of position t starts; attention
 * never crosses examples. The fields after seg_start serve encoder families (model.h) and are
 * zero for a causal LM: token_types [B*T] (NULL: none), pad_mask [B*T] (1: a real token, 0:
 * padding no position attends to; NULL: all real), target_kind and n_choices (the rows per group
 * for MODEL_TARGETS_CHOICE). The Llama family takes token targets only and refuses the rest. */
typedef struct llama_batch {
    int B, T;
    const int32_t *tokens;
    const int32_t *targets;
    const int32_t *positions;
    const int32_t *seg_start;
    const int32_t *token_types;
    const uint8_t *pad_mask;
    model_target_kind target_kind;
    int n_choices;
    /* Data parallel: the index of row 0 within the global micro-batch of all ranks (dropout
     * masks follow the global sequence index, so they do not depend on the number of ranks);
     * 0 in one process. */
    int first_row;
} llama_batch;

/* Work counters (FLOPs actually performed). */
typedef struct llama_counters {
    uint64_t gemm_flops;
    uint64_t attention_flops;
} llama_counters;

typedef struct llama_workspace llama_workspace;

/* Memory a workspace holds, by kind, predicted from the config alone. */
typedef struct llama_workspace_bytes {
    size_t activations_per_layer; /* saved activations of one layer (without recompute) */
    size_t input_per_layer;       /* a saved layer input */
    size_t workspace;             /* everything else (allocated at creation) */
} llama_workspace_bytes;
/* lora_rank/lora_adapters: 0 without adapters; else the rank and adapters per layer. dtype: the
 * weights' storage (bf16 weights without a native bf16 GEMM add one layer's fp32 copy). */
llama_workspace_bytes llama_workspace_predict(const llama_config *cfg, badam_dtype dtype, int B,
                                              int T, int lora_rank, int lora_adapters_per_layer);
/* The same with bottleneck adapters of width bottleneck_size (0: none) attached. */
llama_workspace_bytes llama_workspace_predict_adapters(const llama_config *cfg, badam_dtype dtype,
                                                       int B, int T, int lora_rank,
                                                       int lora_adapters_per_layer,
                                                       int bottleneck_size);
/* Activation bytes a forward under `plan` keeps for backward: layers from the first visited. */
size_t llama_plan_activation_bytes(const llama_model *m, const llama_grad_plan *plan, int B, int T);

/* Workspace for batches up to B x T: activations (allocated per layer when a plan first needs
 * them), scratch, RoPE tables. Adapters must be attached before it is created. */
badam_status llama_workspace_create(const llama_model *m, int B, int T, llama_workspace **out,
                                    badam_error *err);
void llama_workspace_free(llama_workspace *ws);
/* Frees saved activations the plan does not need (plan NULL: all of them). */
void llama_workspace_trim(llama_workspace *ws, const llama_model *m, const llama_grad_plan *plan);
size_t llama_workspace_bytes_held(const llama_workspace *ws);
/* FLOPs performed since the workspace was created or the counters were reset. */
llama_counters llama_workspace_counters(const llama_workspace *ws);
void llama_workspace_reset_counters(llama_workspace *ws);

/* Logits [B*T, V] for every position (inference; nothing kept for backward). */
badam_status llama_forward_logits(const llama_model *m, llama_workspace *ws,
                                  const llama_batch *batch, float *logits, badam_error *err);

/* Forward to the loss. With plan == NULL only the loss is computed. With a plan, activations
 * the plan needs are kept, and the LM head / cross-entropy backward is fused in: gradients of
 * grad_scale * loss_sum for flagged head parameters are accumulated into grads[i], and the
 * gradient at the final hidden state is kept for llama_backward.
 * loss_sum: sum of token cross-entropies; n_tokens: positions with a target. */
badam_status llama_forward(const llama_model *m, llama_workspace *ws, const llama_batch *batch,
                           const llama_grad_plan *plan, float grad_scale, float **grads,
                           double *loss_sum, int *n_tokens, badam_error *err);

/* Backward through the layers the plan visits, after llama_forward with the same plan and
 * batch. grads[i] (fp32, numel of parameter i) is accumulated (+=) for every flagged i and
 * must be non-NULL exactly there. */
badam_status llama_backward(const llama_model *m, llama_workspace *ws, const llama_batch *batch,
                            const llama_grad_plan *plan, float **grads, badam_error *err);

/* Analytic GEMM FLOPs of one llama_forward + llama_backward under a plan (NULL: forward only)
 * for a B x T batch with n_tokens targets. Tests compare it with the counters. */
uint64_t llama_plan_gemm_flops(const llama_model *m, const llama_grad_plan *plan, int B, int T,
                               int n_tokens);

#endif
