/* Optimizers and the BAdam block machinery: AdamW and SGD updates, learning-rate schedules,
 * gradient norms, block partitions of a model's parameters, and the block order. */
#ifndef BADAM_OPTIM_H
#define BADAM_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "badam/dtype.h"
#include "badam/llama.h"
#include "badam/status.h"

/* ---------------------------------------------------------------- updates */

typedef struct adamw_hparams {
    float beta1, beta2, eps;
} adamw_hparams;

/* adamw_update: one fused pass of torch.optim.AdamW (PyTorch 1.13, single-tensor) over n
 * elements, with g = grad * grad_scale (the 1/tokens normalisation and the clip coefficient):
 *   p *= 1 - lr * wd
 *   m  = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2
 *   p -= (lr / (1 - beta1^step)) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
 * and, when weight != NULL, weight = p rounded to weight_dtype (the bf16 copy of the master).
 * step counts from 1. */
void adamw_update(float *param, float *m, float *v, const float *grad, size_t n, float lr,
                  float grad_scale, float weight_decay, int step, const adamw_hparams *h,
                  void *weight, badam_dtype weight_dtype);

/* sgd_update: p *= 1 - lr * wd;  p -= lr * grad * grad_scale;  weight = p (when not NULL). */
void sgd_update(float *param, const float *grad, size_t n, float lr, float grad_scale,
                float weight_decay, void *weight, badam_dtype weight_dtype);

/* sgd_update_stored: the same update applied to weights kept only in a 16-bit storage dtype:
 *   w = round(float(w) * (1 - lr * wd) - lr * grad_scale * grad)   (one pass, no fp32 copy) */
void sgd_update_stored(void *weight, badam_dtype weight_dtype, const float *grad, size_t n,
                       float lr, float grad_scale, float weight_decay);

/* Split master (badam_master_join / badam_master_split): include/badam/dtype.h. */

/* adamw_update_split / sgd_update_split: adamw_update / sgd_update on a split master (bf16
 * weight + low bits): p = join(weight, lo), the same update, then split(p) back. */
void adamw_update_split(uint16_t *weight, uint16_t *lo, float *m, float *v, const float *grad,
                        size_t n, float lr, float grad_scale, float weight_decay, int step,
                        const adamw_hparams *h);
void sgd_update_split(uint16_t *weight, uint16_t *lo, const float *grad, size_t n, float lr,
                      float grad_scale, float weight_decay);

/* sum of squares of n gradient elements, in double. */
double grad_sum_squares(const float *grad, size_t n);

/* ---------------------------------------------------------------- learning rate */

typedef enum lr_schedule_kind { LR_CONSTANT = 0, LR_COSINE, LR_LINEAR } lr_schedule_kind;

typedef struct lr_schedule {
    lr_schedule_kind kind;
    float lr;        /* peak */
    int warmup;      /* steps of linear warmup */
    int total;       /* optimizer steps in the run */
    float min_ratio; /* floor as a fraction of lr (cosine/linear) */
} lr_schedule;

/* Hugging Face LambdaLR semantics for optimizer step s (from 0):
 *   s < warmup:  lr * s / warmup
 *   else, p = (s - warmup) / max(1, total - warmup):
 *     cosine: lr * (min + (1 - min) * (1 + cos(pi p)) / 2);  linear: lr * (min + (1 - min)(1-p));
 *     constant: lr */
float lr_at(const lr_schedule *s, int step);
badam_status lr_schedule_parse(const char *name, lr_schedule_kind *kind, badam_error *err);
const char *lr_schedule_name(lr_schedule_kind kind);

/* ---------------------------------------------------------------- blocks */

typedef enum partition_kind {
    PARTITION_LAYER = 0, /* one block per transformer layer (norms included) */
    PARTITION_MODULE,    /* attention and MLP of each layer: 2 blocks per layer */
    PARTITION_MATRIX,    /* every weight matrix its own block (norms and biases join their
                            module's first matrix) */
    PARTITION_PREFIXES   /* user-given HF name prefixes, each ending in '.', ';' between blocks
                            and ',' between prefixes of one block */
} partition_kind;

typedef struct block_partition {
    int n_blocks;
    int n_params;
    int *block_of;          /* [n_params]: block index, or -1 (frozen unless always active) */
    uint8_t *always_active; /* [n_params]: trained in every block */
    size_t *block_numel;    /* [n_blocks]: parameters of each block (always-active excluded) */
    char **block_name;      /* [n_blocks]: e.g. "model.layers.3." */
} block_partition;

typedef struct partition_options {
    partition_kind kind;
    const char *prefixes;      /* PARTITION_PREFIXES */
    int include_embedding;     /* the embedding as a block of its own */
    int include_head;          /* final norm + lm_head as a block (only the norm when tied) */
    const char *always_active; /* comma-separated name prefixes, or NULL */
} partition_options;

badam_status partition_build(const llama_model *m, const partition_options *opts,
                             block_partition *out, badam_error *err);
void partition_free(block_partition *p);
badam_status partition_parse_kind(const char *name, partition_kind *kind, badam_error *err);
/* With --include-head on a model whose lm_head is tied to the embedding, the head block holds
 * only model.norm (the tied matrix belongs to the embedding, as in the reference BAdam); this
 * returns a sentence saying so and where the matrix trains, else NULL. */
const char *partition_tied_head_note(const llama_config *cfg, const partition_options *opts);
/* The largest block's parameter count (always-active parameters added). */
size_t partition_largest_block(const block_partition *p);

typedef enum block_order {
    BLOCK_ORDER_RANDOM = 0, /* a fresh seeded permutation every block epoch */
    BLOCK_ORDER_ASCENDING,
    BLOCK_ORDER_DESCENDING,
    BLOCK_ORDER_FIXED /* stay on the start block */
} block_order;

badam_status block_order_parse(const char *name, block_order *order, badam_error *err);
const char *block_order_name(block_order order);

/* The block trained in visit v (visit v covers optimizer steps v*K .. v*K + K - 1). A pure
 * function of (order, start, seed, v), so a resumed run needs only the step count.
 * start < 0 picks the default: 0 ascending, n-1 descending, first of the permutation random. */
int block_for_visit(block_order order, int n_blocks, int start, uint64_t seed, uint64_t visit);

/* The block visit optimizer step `step` (0-based) belongs to, and (*starts) whether the step
 * begins it, i.e. a block switch (fresh optimizer state) happens before the step.
 * BAdam Algorithm 1 (Luo, Yu, Li 2024): visit v covers steps vK .. vK + K - 1, so every block
 * gets K steps. reference_compat: the reference package's BlockOptimizer (Ledzy/BAdam,
 * src/badam/block_optim.py) switches after a step when (global_step + 1) % K == 0 with
 * global_step already counting that step, so the first block gets K - 1 steps (K = 1: one)
 * and every later block K. */
int block_visit_of_step(int step, int K, int reference_compat, int *starts);

/* clamp(n_examples / (effective_batch * n_blocks), 50, 100): the reference README's advice. */
int block_switch_every_auto(size_t n_examples, int effective_batch, int n_blocks);

#endif
