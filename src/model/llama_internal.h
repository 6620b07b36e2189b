/* Internals shared by the Llama forward, backward and workspace code. */
#ifndef BADAM_MODEL_LLAMA_INTERNAL_H
#define BADAM_MODEL_LLAMA_INTERNAL_H

#include "badam/llama.h"
#include "badam/model.h"
#include "model/backend.h"
#include "model/model_backend.h"

/* Rows of the LM head / cross-entropy processed at a time: as many as keep one chunk's logits
 * within LLAMA_LOSS_LOGITS_MAX floats (32 MiB), a multiple of 16 between 16 and 256. A 32K
 * vocabulary gets 256 rows; Llama 3's 128K gets 64 (256 rows would hold 131 MB of logits). */
#define LLAMA_LOSS_LOGITS_MAX (8u << 20)
static inline int llama_loss_chunk(size_t vocab) {
    size_t rows = vocab ? LLAMA_LOSS_LOGITS_MAX / vocab / 16 * 16 : 256;
    return rows < 16 ? 16 : rows > 256 ? 256 : (int)rows;
}

/* Activations of one layer. The layer's input is kept separately. xn1, xn2 and h are only the
 * inputs of weight gradients and cheap to rebuild (a norm, a product), so a saved layer does not
 * own them: they point at the shared ws->tmp copies, which forward overwrites layer after layer,
 * and backward recomputes them (LAYER_ACTS_SHARED marks them in the layout). */
typedef struct layer_acts {
    float *rstd1;                      /* [N] */
    float *xn1;                        /* [N,C] input_layernorm output (shared) */
    float *q;                          /* [N,QD] after RoPE */
    float *k;                          /* [N,KVD] after RoPE */
    float *v;                          /* [N,KVD] */
    float *lse;                        /* [B,Hq,T] attention logsumexp (P is recomputed) */
    float *attn;                       /* [N,QD] attention output, o_proj input */
    float *x_mid;                      /* [N,C] residual stream after attention */
    float *rstd2;                      /* [N] */
    float *xn2;                        /* [N,C] post_attention_layernorm output (shared) */
    float *gate;                       /* [N,I] */
    float *up;                         /* [N,I] */
    float *h;                          /* [N,I] silu(gate) * up, down_proj input (shared) */
    float *lora_u[LLAMA_P_KIND_COUNT]; /* [N,r] A drop(x) of each adapter (into lora_block) */
    float *lora_block;
    float *bottleneck[2]; /* [N, C + size] each bottleneck adapter's input and hidden (into
                           * bottleneck_block; NULL without bottleneck adapters) */
    float *bottleneck_block;
} layer_acts;

/* layer_acts fields (in ws_layout.acts order) a saved layer shares with ws->tmp. */
#define LAYER_ACTS_SHARED(i) ((i) == 1 || (i) == 9 || (i) == 12)

/* Float counts of every workspace buffer (llama_workspace.c). */
typedef struct ws_layout {
    size_t N, C, QD, KVD, I, V, Hq, T, half, r, adapters, bn;
    size_t acts[15]; /* one layer's saved activations: 13 tensors, the LoRA and bottleneck blocks */
    size_t input;    /* a saved layer input */
    size_t scratch[30];
    int n_scratch;
    size_t lin_scratch; /* floats of ws->lin_scratch */
    size_t layer_f32;   /* floats of ws->layer_f32 (0: weights are read as stored) */
} ws_layout;

struct llama_workspace {
    int max_B, max_T;
    int C, QD, KVD, I, V, L, Hq, Hkv, D, max_pos;
    int B, T;                 /* the current batch */
    int first_row;            /* its first row's index in the global (data-parallel) batch */
    layer_acts **saved;       /* [L] activations kept for backward (NULL until a plan needs them) */
    float **saved_input;      /* [L] layer inputs kept for backward */
    layer_acts tmp;           /* for layers nothing is kept of, and for recomputation */
    float *ping[2];           /* [N,C] residual stream through layers that keep nothing */
    float *x_final;           /* [N,C] residual stream after the last layer */
    float *rstd_final;        /* [N] */
    float *xn_final;          /* [N,C] final norm output */
    float *dresid;            /* [N,C] gradient of the residual stream */
    float *dxn;               /* [N,C] gradient at a norm's output */
    float *dbig[3];           /* [N, max(I, QD)] gradient temporaries */
    float *dkv[2];            /* [N,KVD] */
    float *lin_scratch;       /* linear_scratch_floats(max in) */
    float *loss_work;         /* lm_head_loss_workspace_floats */
    float *vec[4];            /* fp32 copies of norm weights and biases */
    float *cos_t, *sin_t;     /* [max_T, head_dim/2] */
    int32_t *pos;             /* [N] position of each row */
    const int32_t *seg_start; /* current batch's, or NULL */
    float *lora_du;           /* [N,r] */
    float *lora_x;            /* [N, max in]: dropped-out adapter input */
    float *lora_tmp;          /* [N, max(in, out)] */
    float *bn_dh, *bn_dy;     /* bottleneck backward: [N, size] and [N, C] */
    int32_t *tokens;          /* [N] the current batch's token ids (backend memory) */
    int32_t *targets;         /* [N] its targets */
    int32_t *seg;             /* [N] its segment starts (seg_start points here, or is NULL) */
    float *layer_f32;         /* one layer's matrices in fp32 (the default weight hook), or NULL */
    int layer_f32_of;         /* the layer it holds; -1 none */
    model_weight_hooks hooks; /* where layers' weights come from (model.h) */
    int32_t *host_pos;        /* [N] host staging for the positions */
    int lora_rank, lora_adapters; /* adapters per layer */
    size_t bytes;                 /* everything allocated, for accounting */
    int forward_plan_first_layer; /* first layer kept by the last forward; -1 none */
    int forward_recompute;
    ws_layout layout;
    const llama_model *model;
    backend *be; /* every op on the workspace's memory goes through it */
    int owns_be; /* 1: created with the workspace (the CPU backend), freed with it */
};

/* llama_workspace_create_on: model/model_backend.h */

/* The workspace's default weight hooks: when the backend multiplies an fp32 copy faster
 * (backend_ops layer_weights_f32: bf16 weights without a native bf16 GEMM), acquire converts the
 * layer's matrices (its 2-D parameters) once into ws->layer_f32 and hands them out as fp32; the
 * copy is reused while the same layer is asked for again (a recomputed forward and its backward,
 * the last layer's forward and backward) and dropped by invalidate, which every pass calls since
 * weights change between steps. Otherwise, and for vectors, the stored weights. ctx: the ws. */
model_weight_hooks llama_workspace_default_hooks(llama_workspace *ws);

/* Acquires layer l through `hooks`, checking the filled table. */
badam_status llama_acquire_layer(const model_weight_hooks *hooks, const llama_model *m, int l,
                                 model_layer_weights *lw, badam_error *err);
static inline void llama_release_layer(const model_weight_hooks *hooks, const llama_model *m, int l,
                                       model_layer_weights *lw) {
    if (hooks->release) hooks->release(hooks->ctx, m, l, lw);
}

/* Where one pass of a layer runs: its backend and rows, the RoPE tables and positions, scratch,
 * and where attention reads keys and values. Training and evaluation run over a batch
 * (k_cache NULL: attention over the batch's own rows, B x T, seg_start); decoding runs a chunk of
 * n rows at positions p0.. whose keys and values go to the cache rows a->k, a->v point at and
 * attend to every cached row (k_cache, v_cache: [max_len, KVD] of the layer). */
typedef struct layer_run {
    backend *be;
    int n;
    const int32_t *pos;
    const float *cos_t, *sin_t;
    float *lin_scratch;
    float *vec[2];      /* fp32 conversion slots for norm weights and biases */
    float *lora_x;      /* [n, max in] dropped-out adapter input; NULL: no dropout (decoding) */
    int B, T;           /* batch attention */
    size_t first_token; /* first_row * T: the batch's first token row in the global batch */
    const int32_t *seg_start;
    const float *k_cache, *v_cache; /* cache attention */
    int p0, max_len, window;
    float *scores;
} layer_run;
/* The run of the workspace's current batch. */
layer_run llama_ws_run(llama_workspace *ws);

/* The matrix of `kind` in an acquired layer (NULL when absent), and its dtype. */
static inline const void *llama_lw_data(const llama_model *m, const model_layer_weights *lw,
                                        llama_param_kind kind) {
    int i = llama_param_index(m, lw->layer, kind);
    return i < 0 ? NULL : lw->data[i - lw->first];
}
static inline badam_dtype llama_lw_dtype(const llama_model *m, const model_layer_weights *lw,
                                         llama_param_kind kind) {
    return lw->dtype[llama_param_index(m, lw->layer, kind) - lw->first];
}
/* fp32 view of a small parameter (norm weight, bias) of an acquired layer: the data itself when
 * fp32, else a converted copy in vec[slot]. NULL when the layer has none of that kind. */
const float *llama_lw_small(const llama_model *m, backend *be, float *const vec[2],
                            const model_layer_weights *lw, llama_param_kind kind, int slot);

/* fp32 view of a parameter outside the layers (final norm): the data itself when stored in
 * fp32, else a converted copy in ws->vec[slot]. NULL when the index is -1. */
const float *llama_param_f32(const llama_model *m, llama_workspace *ws, int idx, int slot);

/* Activations of layer l for a forward that keeps them (allocated on first use). */
badam_status llama_workspace_layer(llama_workspace *ws, int l, int keep_acts, layer_acts **acts,
                                   float **input, badam_error *err);

/* LoRA: after y = W x (r->n rows), adds scale * B (A drop(x)) to y and keeps A drop(x) in u;
 * dropout only while training and when r->lora_x is given. */
void llama_lora_forward(const llama_model *m, const layer_run *r, int l, llama_param_kind kind,
                        float *y, const float *x, float *u, int in, int out);
/* LoRA backward given dy: dB += scale dy^T u, dA += (scale dy B)^T drop(x) (when train), and
 * dx += drop'(scale dy B A) (when dx != NULL). */
void llama_lora_backward(const llama_model *m, llama_workspace *ws, int l, llama_param_kind kind,
                         const float *dy, const float *x, const float *u, float *dx, int train,
                         int in, int out);

/* Bottleneck adapter (l, site) on the sublayer output y [r->n, C] in place (llama_bottleneck.c
 * states the math); keep [n, C + size] gets its input and hidden for backward. Nothing without
 * bottleneck adapters. */
void llama_bottleneck_forward(const llama_model *m, const layer_run *r, int l, int site, float *y,
                              float *keep);
/* Its backward from dz (the gradient at z): dy = dL/dy (overwritten; not aliasing dz), and the
 * adapter's gradients accumulated when train. */
void llama_bottleneck_backward(const llama_model *m, llama_workspace *ws, int l, int site,
                               const float *dz, const float *keep, float *dy, int train);
/* 1 when the plan trains bottleneck adapters (every layer then counts as flagged). */
int llama_plan_trains_bottleneck(const llama_model *m, const llama_grad_plan *plan);

/* One transformer layer forward: x [n,C] -> y [n,C] (y must not alias x), filling acts, with
 * layer l's weights `lw` (acquired by the caller). Shared by training, evaluation and decoding
 * (llama_decode.c points acts->k, acts->v at the KV cache rows). rstd1 / rstd2 may be NULL. */
void llama_layer_forward(const llama_model *m, const layer_run *r, const model_layer_weights *lw,
                         int l, layer_acts *acts, const float *x, float *y);

/* 1 when any parameter of layer l with kind in [first, last] is flagged. */
int llama_plan_layer_flags(const llama_model *m, const llama_grad_plan *plan, int l,
                           llama_param_kind first, llama_param_kind last);
int llama_plan_flag(const llama_model *m, const llama_grad_plan *plan, int idx);
/* Index into m->lora->A/B of the adapter on (layer, kind), or -1. */
int llama_adapter_index(const llama_model *m, int l, llama_param_kind kind);
/* 1 when the plan trains the adapter on (layer, kind). */
int llama_plan_trains_adapter(const llama_model *m, const llama_grad_plan *plan, int l,
                              llama_param_kind kind);
/* 1 when the parameter of (layer, kind) is flagged or its adapter is trained. */
int llama_plan_kind_active(const llama_model *m, const llama_grad_plan *plan, int l,
                           llama_param_kind kind);

/* Which parts of one layer's backward a plan needs (shared by backward and the FLOP count). */
typedef struct layer_grad_parts {
    int need_dx;    /* dL/d(layer input) */
    int need_dxmid; /* dL/d(x_mid) through the MLP (attention side or below needs it) */
    int need_dxn2;  /* dL/d(post_attention_layernorm output) */
    int mlp_inner;  /* backward through down_proj into swiglu */
    int attn_inner; /* backward through o_proj into attention */
} layer_grad_parts;
layer_grad_parts llama_layer_grad_parts(const llama_model *m, const llama_grad_plan *plan, int l);

/* Plan scaffolding shared by the architectures; `flagged(m, plan, l)` says whether layer l
 * has anything to train under plan (a flagged tensor or adapter), reading plan->need_grad and
 * plan->train_adapters only. */
typedef int (*llama_layer_flagged_fn)(const llama_model *m, const llama_grad_plan *plan, int l);
/* Zeroes plan, stores need_grad and train_adapters, and sets lowest_input_grad_layer: 0 when
 * embed_flagged (the embeddings need the input gradient of layer 0), else one above the lowest
 * flagged layer, else n_layers (backward visits no layer's input gradient). */
void llama_plan_fill(const llama_model *m, const uint8_t *need_grad, int train_adapters,
                     int embed_flagged, llama_layer_flagged_fn flagged, llama_grad_plan *plan);
/* The lowest layer backward visits: lowest_input_grad_layer - 1 when that layer is flagged (its
 * weight gradients are wanted without its input gradient), else lowest_input_grad_layer. */
int llama_plan_first_flagged(const llama_model *m, const llama_grad_plan *plan,
                             llama_layer_flagged_fn flagged);
/* BADAM_E_INVALID unless 0 <= plan->lowest_input_grad_layer <= n_layers. */
badam_status llama_plan_check_range(const llama_model *m, const llama_grad_plan *plan,
                                    badam_error *err);
/* BADAM_E_INVALID unless grads (may be NULL) holds a buffer for exactly the parameters
 * plan->need_grad flags. */
badam_status llama_plan_check_buffers(const llama_model *m, const llama_grad_plan *plan,
                                      float **grads, badam_error *err);

/* Weight storage for a described model of either architecture (llama_model_describe,
 * bert_model_describe): one BADAM_MEM_WEIGHTS block of sum over params of
 * badam_alloc_size(numel * dtype size) bytes, each params[i].data pointed at its slice in table
 * order; sets storage and storage_bytes. On BADAM_E_NOMEM frees m (the caller must not use it). */
badam_status llama_model_alloc_weights(llama_model *m, badam_error *err);

#endif
