/* Internals shared by the encoder family's files (bert_*.c): the parameter layout, the
 * workspace, and the layer forward used by forward and backward.
 *
 * Parameter table (storage order, Hugging Face names under the base prefix "bert." or
 * "roberta."): the five embedding tensors (word, position, token type, LayerNorm weight and
 * bias), then BERT_LAYER_PARAMS per layer in HF order (query, key, value, attention.output.dense,
 * attention.output.LayerNorm, intermediate.dense, output.dense, output.LayerNorm; each weight
 * followed by its bias), then the four head tensors (pooler.dense and classifier, or RoBERTa's
 * classifier.dense and classifier.out_proj; weight then bias). Every tensor's index is therefore
 * a function of (layer, slot); bert_model_describe checks the table against it. */
#ifndef BADAM_MODEL_BERT_INTERNAL_H
#define BADAM_MODEL_BERT_INTERNAL_H

#include "badam/bert.h"
#include "badam/llama.h"
#include "badam/model.h"
#include "model/backend.h"
#include "model/llama_internal.h"

/* Embedding tensors, indices 0..4. */
enum { BERT_E_WORD = 0, BERT_E_POS, BERT_E_TYPE, BERT_E_LN_W, BERT_E_LN_B, BERT_N_EMBED };

/* Slots of a layer's tensors, in storage order. */
typedef enum bert_slot {
    BERT_Q = 0,
    BERT_Q_B,
    BERT_K,
    BERT_K_B,
    BERT_V,
    BERT_V_B,
    BERT_O,
    BERT_O_B,
    BERT_LN1, /* attention.output.LayerNorm */
    BERT_LN1_B,
    BERT_UP, /* intermediate.dense */
    BERT_UP_B,
    BERT_DOWN, /* output.dense */
    BERT_DOWN_B,
    BERT_LN2, /* output.LayerNorm */
    BERT_LN2_B,
    BERT_LAYER_PARAMS
} bert_slot;

/* Head tensors after the layers: the dense layer before tanh (pooler.dense or classifier.dense),
 * then the classifier (classifier or classifier.out_proj). */
enum { BERT_H_DENSE = 0, BERT_H_DENSE_B, BERT_H_CLS, BERT_H_CLS_B, BERT_N_HEAD };
/* The masked-LM head's tensors instead (LLAMA_HEAD_MLM): dense, its LayerNorm, the output bias
 * (the decoder weight is the word embedding, tied). */
enum { BERT_M_DENSE = 0, BERT_M_DENSE_B, BERT_M_LN, BERT_M_LN_B, BERT_M_BIAS, BERT_N_MLM };

static inline int bert_n_head(const llama_config *c) {
    return c->encoder_head == LLAMA_HEAD_MLM ? BERT_N_MLM : BERT_N_HEAD;
}

static inline int bert_layer_param(const llama_model *m, int l, int slot) {
    (void)m;
    return BERT_N_EMBED + l * BERT_LAYER_PARAMS + slot;
}
static inline int bert_head_param(const llama_model *m, int j) {
    return BERT_N_EMBED + m->cfg.n_layers * BERT_LAYER_PARAMS + j;
}

/* Activations of one layer kept for backward. */
typedef struct bert_acts {
    float *x;             /* [N,C] layer input */
    float *q, *k, *v;     /* [N,C] */
    float *lse;           /* [B,H,T] */
    float *attn;          /* [N,C] attention output (attention.output.dense input) */
    float *s1, *h1;       /* [N,C] x + drop(dense(attn)), and its LayerNorm */
    float *mean1, *rstd1; /* [N] */
    float *u;             /* [N,I] intermediate.dense output (the GELU input) */
    float *s2;            /* [N,C] h1 + drop(output.dense(gelu(u))) */
    float *mean2, *rstd2; /* [N] */
    float *lora_block;    /* [adapters per layer * N * r] (NULL without LoRA), split into: */
    float *lora_u[LLAMA_P_KIND_COUNT]; /* [N,r] A drop(x) of the adapter on a kind, or NULL */
} bert_acts;
#define BERT_ACTS_FIELDS 13

/* Float counts of the workspace's buffers (bert_workspace.c). */
typedef struct bert_layout {
    size_t acts[BERT_ACTS_FIELDS]; /* one layer's activations, in bert_acts order */
    size_t scratch[64];
    int n_scratch;
    size_t lin_scratch, layer_f32;
    size_t lora_block; /* one layer's adapter inputs (bert_acts.lora_block) */
    int mlm_rows;      /* rows of a masked-LM head chunk (0 without that head) */
    int lora_rank;
} bert_layout;

typedef struct bert_workspace {
    llama_workspace base; /* first: a bert_workspace * is a llama_workspace *; base holds the
                           * backend, batch shape, weight hooks, fp32 layer copy, byte count */
    int L, C, I, H, D, K, max_pos;
    bert_layout layout;
    bert_acts **saved;   /* [L] NULL until a plan keeps the layer */
    float **saved_input; /* [L] [N,C] layer inputs a recomputing plan keeps (NULL until then) */
    bert_acts tmp;       /* layers nothing is kept of */
    float *ping[2];      /* [N,C] layer outputs nothing keeps */
    float *x_final;      /* [N,C] */
    float *emb_sum, *emb_mean, *emb_rstd; /* [N,C], [N], [N] embedding LayerNorm input, stats */
    float *tbuf; /* [N,C] a projection's output before dropout and the residual */
    float *gbuf; /* [N,I] GELU output */
    float *dres, *dA, *dB, *dC, *dq, *dk, *dv; /* [N,C] gradient temporaries */
    float *dg;                                 /* [N,I] */
    float *cls, *cls_in, *pool, *pool_in;      /* [B,C] head activations */
    float *dcls, *dpool;                       /* [B,C] */
    float *logits, *dlogits;                   /* [B,K] */
    float *lin_scratch;
    float *vec[4]; /* fp32 copies of small parameters, max(C, I, K) floats each */
    int32_t *tokens, *types, *pos, *targets; /* [N] backend memory */
    uint8_t *mask;                           /* [N] backend memory */
    int32_t *host_idx;                       /* [N] host staging */
    uint8_t *host_mask;
    const uint8_t *key_mask; /* mask when the batch has one, else NULL */
    int n_rows, row_len;     /* loss rows and logits per row of the current batch */
    int training;
    uint64_t seed, step;
    int first;           /* first layer the last forward kept for backward; -1 none */
    int recompute;       /* the last forward kept only layer inputs (plan->recompute) */
    int no_lora_dropout; /* set while bert_forward_logits runs: adapters without dropout */
    /* masked-LM head (bert_mlm.c), chunks of R = layout.mlm_rows masked positions: */
    float *mx, *mt, *mg, *mh;  /* [R,C] hidden rows, dense out, gelu out, LayerNorm out */
    float *mmean, *mrstd;      /* [R] */
    float *mlogits, *mdlogits; /* [R,V] */
    float *mdh, *mdx;          /* [R,C] gradient temporaries */
    int32_t *mtargets;         /* [R] backend memory */
    int32_t *mrows;            /* [N] host: the masked positions of the batch */
    int32_t *mhost;            /* [R] host staging of a chunk's targets */
} bert_workspace;

static inline bert_workspace *bert_ws(llama_workspace *ws) {
    return (bert_workspace *)ws;
}

/* Dropout sites (mask keys). */
enum {
    BERT_DROP_EMBED = 0,
    BERT_DROP_ATTN_PROBS,
    BERT_DROP_ATTN_OUT,
    BERT_DROP_MLP_OUT,
    BERT_DROP_HEAD_IN,
    BERT_DROP_HEAD_MID
};
/* The rate of a site (0 when not training) and its mask key. */
double bert_drop_rate(const bert_workspace *w, const llama_model *m, int site);
uint64_t bert_drop_key(const bert_workspace *w, int layer, int site);
/* y = drop(x) at `site` of `layer` when its rate is > 0 (returns y), else returns x. */
const float *bert_dropout(bert_workspace *w, const llama_model *m, int layer, int site, float *y,
                          const float *x, size_t n);

/* fp32 view of parameter idx: from an acquired layer's table (lw) or, lw NULL, params[].data;
 * converted into w->vec[slot] unless stored in fp32. */
const float *bert_small(bert_workspace *w, const llama_model *m, const model_layer_weights *lw,
                        int idx, int slot);
/* A matrix of an acquired layer (lw) or, lw NULL, of the stored parameters, and its dtype. */
const void *bert_matrix(const llama_model *m, const model_layer_weights *lw, int idx,
                        badam_dtype *dtype);

/* 1 when the plan trains an adapter on layer l's weight at `slot` (bert_plan.c). */
int bert_plan_trains_slot(const llama_model *m, const llama_grad_plan *plan, int l, int slot);

/* One layer forward x -> y (y must not alias x), filling a (with LoRA adapters, a->lora_u). */
void bert_layer_forward(const llama_model *m, bert_workspace *w, const model_layer_weights *lw,
                        int l, bert_acts *a, const float *x, float *y);

/* Activations of layer l, allocated on first use. */
badam_status bert_workspace_layer(bert_workspace *w, int l, bert_acts **a, badam_error *err);
/* The saved input of layer l for a recomputing plan, allocated on first use; frees the layer's
 * saved activations (a recomputing plan rebuilds them in backward). */
badam_status bert_workspace_input(bert_workspace *w, int l, float **x, badam_error *err);

/* The masked-LM head's loss over the positions whose target is not -100 (bert_mlm.c), fused
 * with its backward under plan (NULL: loss only): head gradients, the tied word embedding's
 * part, and the gradient at the last layer's output in w->dres when need_dh. */
double bert_mlm_head(const llama_model *m, bert_workspace *w, const llama_batch *b,
                     const llama_grad_plan *plan, float **grads, float grad_scale, int need_dh,
                     int *n_rows);
/* The argmax token of each of the batch's positions with a target (-1 elsewhere) after a
 * forward of the layers; host: [layout.mlm_rows * V] host scratch. */
void bert_mlm_argmax(const llama_model *m, bert_workspace *w, const llama_batch *b, int32_t *pred,
                     float *host);

/* The table's functions (model_arch.c). */
badam_status bert_config_load(const char *path, llama_config *cfg, badam_error *err);
badam_status bert_model_describe(const llama_config *cfg, badam_dtype dtype, llama_model **out,
                                 badam_error *err);
badam_status bert_model_create(const llama_config *cfg, badam_dtype dtype, llama_model **out,
                               badam_error *err);
badam_status bert_model_load(const char *dir, badam_dtype dtype, llama_model **out,
                             badam_error *err);
badam_status bert_model_save(const llama_model *m, const char *src_dir, const char *out_dir,
                             size_t max_shard_bytes, badam_error *err);
void bert_plan_for_flags(const llama_model *m, const uint8_t *need_grad, int train_adapters,
                         llama_grad_plan *plan);
int bert_plan_first_layer(const llama_model *m, const llama_grad_plan *plan);
int bert_plan_layer_flagged(const llama_model *m, const llama_grad_plan *plan, int l);
badam_status bert_plan_check(const llama_model *m, const llama_grad_plan *plan, badam_error *err);
llama_workspace_bytes bert_workspace_predict(const llama_config *cfg, badam_dtype dtype, int B,
                                             int T, int lora_rank, int lora_adapters_per_layer,
                                             int bottleneck_size);
badam_status bert_workspace_create(const llama_model *m, int B, int T, llama_workspace **out,
                                   badam_error *err);
void bert_workspace_free(llama_workspace *ws);
badam_status bert_forward(const llama_model *m, llama_workspace *ws, const llama_batch *batch,
                          const llama_grad_plan *plan, float grad_scale, float **grads,
                          double *loss_sum, int *n_rows, badam_error *err);
badam_status bert_backward(const llama_model *m, llama_workspace *ws, const llama_batch *batch,
                           const llama_grad_plan *plan, float **grads, badam_error *err);
uint64_t bert_plan_gemm_flops(const llama_model *m, const llama_grad_plan *plan, int B, int T,
                              int n_rows);

#endif
