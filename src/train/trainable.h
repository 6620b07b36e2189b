/* The tensors an optimizer holds at one time, per method, and the pools they live in. Pools are
 * allocated once (sized for the largest block) and re-pointed on a block switch. */
#ifndef BADAM_TRAIN_TRAINABLE_H
#define BADAM_TRAIN_TRAINABLE_H

#include "badam/train.h"

typedef struct trainable {
    const char *name;
    int param; /* model parameter index, or -1 for a LoRA tensor */
    size_t numel;
    float *master; /* the fp32 values the optimizer updates (NULL with a split master) */
    void *weight;  /* storage refreshed from master after an update; NULL if master is it */
    float *grad, *m, *v;
    int decay;           /* weight decay applies (2-D tensors; see decay_all_but_biases) */
    uint16_t *master_lo; /* bf16 weights: the split master's low bits (optim.h); else NULL */
    const char *part;    /* LoRA: "lora_A" / "lora_B" of parameter `name`; NULL for the parameter */
} trainable;

typedef struct trainable_set {
    train_method method;
    trainable *t;
    int n, cap;
    float *pool_master, *pool_grad, *pool_m, *pool_v; /* NULL where the method needs none */
    uint16_t *pool_master_lo; /* split masters (bf16 weights) instead of pool_master */
    int adam_step;            /* steps taken by the current optimizer state */
    int block;                /* active block (BAdam / SGD-BCD), -1 otherwise */
    float **grads;            /* [n_params] gradient buffer per parameter (NULL: not flagged) */
    uint8_t *flags;           /* [n_params] */
    float *lomo_matrix, *lomo_vector; /* LOMO's two reusable gradient buffers */
    /* weight decay on every tensor but biases (the reference BlockOptimizer's groups, which
     * decay RMSNorm weights too); 0: on matrices only. Read when a block is activated. */
    int decay_all_but_biases;
} trainable_set;

/* Floats a tensor occupies in a pool (rounded up so each tensor starts 64-byte aligned). */
size_t pool_floats_of(size_t numel);

/* Sizes (floats) of the pools and LOMO buffers a method needs for a model: shared by the
 * allocator and the memory plan so the two agree by construction. */
typedef struct trainable_sizes {
    size_t pool; /* master/grad/m/v pool floats (each) */
    int has_master, has_grad, has_moments;
    int master_split; /* bf16 weights: the master is the weight + 2 bytes of low bits */
    size_t lomo_matrix, lomo_vector; /* floats */
    size_t trainable;                /* parameters held at once */
} trainable_sizes;

/* LoRA sizes come from lora_rank and lora_targets (the adapters need not be attached). */
trainable_sizes trainable_sizes_of(const llama_model *m, train_method method,
                                   const block_partition *part, int lora_rank,
                                   uint32_t lora_targets);
/* Bytes of LoRA A and B (each tensor its own allocation), the same for dA and dB. */
size_t lora_tensor_bytes(const llama_model *m, int lora_rank, uint32_t lora_targets);

badam_status trainable_create(trainable_set *s, const llama_model *m, train_method method,
                              const block_partition *part, badam_error *err);
void trainable_free(trainable_set *s);

/* BAdam / SGD-BCD: makes `block` (plus always-active parameters) the trainable set: masters
 * built from the current weights, gradients and moments zeroed, Adam step count 0. */
void trainable_activate_block(trainable_set *s, const llama_model *m, const block_partition *part,
                              int block);
void trainable_zero_grads(trainable_set *s);

#endif
