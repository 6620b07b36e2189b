/* The tensors an optimizer holds at one time and the pools they live in, shared by the methods
 * that keep optimizer state (src/optim/methods/). Pools are allocated once (sized for the
 * largest set the method will hold, e.g. its largest block) and re-pointed when the set changes.
 *
 * The pools (master, master_lo, grad, m, v) are backend memory (model/backend.h): allocated with
 * the set's backend by category and reached only through its ops (zero, convert, the optimizer
 * updates, sum_squares, download and upload for checkpoints). What a trainable points at outside
 * the pools is host memory: model weights (fp32: the master itself; 16-bit: the stored copy an
 * update refreshes) and LoRA's A, B and their gradients, which backend ops read and write in
 * place (host memory is valid op memory on the CPU backend; a device backend needs them uploaded,
 * not built yet). */
#ifndef BADAM_OPTIM_TRAINABLE_H
#define BADAM_OPTIM_TRAINABLE_H

#include <stddef.h>
#include <stdint.h>

#include "badam/optim.h"
#include "io/safetensors.h"
#include "model/backend.h"

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
    backend *be; /* the pools' backend (not owned) */
    trainable *t;
    int n, cap;
    float *pool_master, *pool_grad, *pool_m, *pool_v; /* NULL where the method needs none */
    uint16_t *pool_master_lo; /* split masters (bf16 weights) instead of pool_master */
    int adam_step;            /* steps taken by the current optimizer state */
    int block;                /* active block (BAdam / SGD-BCD), -1 otherwise */
    float **grads;            /* [n_params] gradient buffer per parameter (NULL: not flagged) */
    uint8_t *flags;           /* [n_params] */
    /* weight decay on every tensor but biases (the reference BlockOptimizer's groups, which
     * decay RMSNorm weights too); 0: on matrices only. Read when a tensor is placed. */
    int decay_all_but_biases;
} trainable_set;

/* Floats a tensor occupies in a pool (rounded up so each tensor starts 64-byte aligned). */
size_t pool_floats_of(size_t numel);

/* What a method's pools hold: shared by the allocator (trainable_alloc) and the memory plan
 * (trainable_sizes_bytes) so the two agree by construction. */
typedef struct trainable_sizes {
    size_t pool; /* master/grad/m/v pool floats (each) */
    int has_master, has_grad, has_moments;
    int master_split; /* bf16 weights: the master is the weight + 2 bytes of low bits */
    size_t trainable; /* parameters held at once */
} trainable_sizes;

/* Masters for model parameters: a split master for bf16 weights, an fp32 copy for other 16-bit
 * weights, none for fp32 weights (the weight is the master). */
void trainable_sizes_masters(trainable_sizes *z, badam_dtype weight_dtype);
/* Adds the bytes the pools of z take to bytes[category] (master, gradients, optimizer). */
void trainable_sizes_bytes(const trainable_sizes *z, size_t *bytes);

/* Allocates the set's bookkeeping ([n_params] flags and gradient pointers, host memory) and the
 * pools of z on backend be (which must outlive the set; trainable_free gives the pools back). */
badam_status trainable_alloc(trainable_set *s, backend *be, int n_params, const trainable_sizes *z,
                             badam_error *err);
void trainable_free(trainable_set *s);

/* Appends model parameter i to the set at pool offset *at (advanced): its master built from the
 * stored weight, its gradient buffer flagged for the model's gradient plan. */
badam_status trainable_place(trainable_set *s, const llama_model *m, int i, size_t *at);
/* Appends a tensor whose values and gradient live elsewhere (LoRA's A and B), with moments at
 * pool offset *at (advanced). */
badam_status trainable_push_external(trainable_set *s, const char *name, const char *part,
                                     size_t numel, float *values, float *grad, size_t *at);

/* Appends t as given (a method that lays out its own pools: BAdam's ratio mode); 0, or -1 when
 * out of memory. */
int trainable_push(trainable_set *s, const trainable *t);

/* Makes `block` of part (plus always-active parameters) the trainable set: masters built from
 * the current weights, gradients and moments zeroed, Adam step count 0. */
void trainable_activate_block(trainable_set *s, const llama_model *m, const block_partition *part,
                              int block);
void trainable_zero_grads(trainable_set *s);

/* optimizer.safetensors: the masters and Adam moments of every trainable tensor, under its
 * tensor name (checkpoint_tensor_key). Loading matches by name, dtype and size: each tensor of
 * the set must be in the file and the file must hold nothing else. The tensors travel through
 * host: writing downloads them a bounded chunk at a time (st_write_fetch, no host copy of the
 * state), reading uploads each tensor from the mapped file. */
badam_status checkpoint_write_optimizer(const char *dir, const trainable_set *ts, badam_error *err);
badam_status checkpoint_load_optimizer(const char *dir, trainable_set *ts, badam_error *err);
/* "model.layers.0.mlp.up_proj.weight.m": the tensor name, the LoRA part if any, then `what`
 * (master, master_lo, m or v). */
void checkpoint_tensor_key(const trainable *t, const char *what, char *out, size_t size);

/* What loading a state file (f, read from `path`) checks, shared by optimizer.safetensors and
 * the methods' own files. checkpoint_upload_tensor: the tensor `name` of f must exist with
 * `dtype` and `numel` elements; it is uploaded into the backend memory dst. Errors:
 * BADAM_E_SHAPE naming path and tensor ("... written by a different setup" then `hint`, e.g.
 * " (--galore-rank?)", or ""). checkpoint_check_count: BADAM_E_SHAPE unless f holds exactly
 * `used` tensors (the file must hold nothing the run does not expect). */
badam_status checkpoint_upload_tensor(const st_file *f, const char *path, const char *name,
                                      badam_dtype dtype, size_t numel, void *dst, backend *be,
                                      const char *hint, badam_error *err);
badam_status checkpoint_check_count(const st_file *f, const char *path, size_t used,
                                    badam_error *err);

#endif
