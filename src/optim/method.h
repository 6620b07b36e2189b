/* Training methods behind one interface: each method (BAdam, Adam, LoRA, LOMO, SGD-BCD, and any
 * a caller registers) is a train_method_ops table in one file of src/optim/methods/, and the
 * trainer (src/train/trainer.c) drives every method through it without knowing which it is.
 *
 * The trainer's calls, in order (ops marked optional may be NULL):
 *   check (optional)          refuse options the method cannot honour, before anything loads
 *   prepare_model (optional)  change the loaded model (LoRA attaches adapters)
 *   create                    structure without optimizer state: partition, K, clip
 *   allocate                  optimizer state and gradient buffers (need_grad, grads)
 *   load_parts (resume)       its checkpoint parts back, by tensor name
 *   train_mode (optional)     before each micro-batch (on, with its index) and before a forward
 *                             without gradients (off): LoRA's dropout
 *   per step:
 *     on_step_begin           e.g. a block switch; returns 1 when need_grad changed
 *     step (optional)         a method that runs its own step (forward-only, MeZO-like) does it
 *                             here through a narrow context, and nothing below is called
 *     zero_grads              before the micro-batches
 *     grad_ready (optional)   inside backward, each flagged parameter's finished gradient
 *     update                  after the micro-batches: all-reduce, clip by the global norm, apply
 *   save_parts                checkpoint parts (optimizer.safetensors tensors, adapters)
 *   save_final (optional)     what OUT/ gets besides the model (LoRA: adapter/, then merge)
 *   free
 *   sizes                     (the memory plan, with no weights) bytes it will allocate
 * Adding a method: a new file in src/optim/methods/ defining one train_method_ops, and one line
 * in method_registry.c (or train_method_register at run time, for a caller's own method). */
#ifndef BADAM_OPTIM_METHOD_H
#define BADAM_OPTIM_METHOD_H

#include "badam/comm.h"
#include "badam/log.h"
#include "badam/optim.h"
#include "base/memory.h"
#include "optim/trainable.h"

/* Option groups a method's trajectory depends on (the run record records only those). */
enum {
    METHOD_USES_BLOCKS = 1u << 0, /* partition, K, block order, start block, reference compat */
    METHOD_USES_ADAM = 1u << 1,   /* beta1, beta2, eps */
    METHOD_USES_LORA = 1u << 2,   /* LoRA rank, alpha, dropout, targets */
    METHOD_USES_ZO = 1u << 3,     /* MeZO: eps, samples */
    METHOD_USES_RATIO = 1u << 4,  /* BAdam ratio mode: update ratio, mask mode */
    METHOD_USES_GALORE = 1u << 5, /* GaLore rank, update gap, scale, per-layer */
    METHOD_USES_ADAPTER = 1u << 6 /* bottleneck adapter size */
};

/* What a method is built from: the training options that concern methods (the trainer fills it
 * from train_config; optim does not see train_config). */
typedef struct method_options {
    badam_dtype dtype;
    float weight_decay;
    adamw_hparams adam;
    float clip; /* as given: < 0 asks for the method's default_clip */
    int grad_accum;
    uint64_t seed;
    /* block-wise methods */
    int switch_every; /* K; 0: auto from n_examples and effective_batch */
    block_order order;
    int start_block;
    partition_options partition;
    int reference_compat;
    size_t n_examples;   /* training examples (K auto) */
    int effective_batch; /* batch size x grad accumulation (K auto) */
    /* LoRA */
    int lora_rank;
    float lora_alpha, lora_dropout;
    uint32_t lora_targets;
    const char *init_adapter; /* adapter folder to start from (not when resuming) */
    /* BAdam ratio mode: the fraction of each tensor updated, and the mask mode */
    float update_ratio;
    int mask_scatter; /* 0: adjacent, 1: scatter */
    /* MeZO */
    float mezo_eps;
    int mezo_samples;
    /* GaLore: projection rank, steps between projector refreshes, scale alpha, update inside
     * backward */
    int galore_rank, galore_update_gap;
    float galore_scale;
    int galore_per_layer;
    int adapter_size; /* bottleneck adapters: width */
} method_options;

/* What the memory plan needs from a method, computed on a described model (no weights). */
typedef struct method_sizes {
    size_t bytes[BADAM_MEM_CATEGORY_COUNT]; /* master, gradients, optimizer: what it allocates */
    size_t trainable;                       /* parameters trained at once */
    int n_blocks;                           /* 0 unless block-wise */
    size_t largest_block;                   /* parameters (block-wise) */
    int first_layer;     /* the lowest layer any of its gradient plans keeps activations from */
    int adapter_rank;    /* LoRA: rank and number of adapted kinds (the workspace); else 0 */
    int adapter_targets; /* popcount of the adapted kinds */
    int bottleneck_size; /* bottleneck adapters: their width (the workspace); else 0 */
} method_sizes;

typedef struct train_method_ops train_method_ops;

/* One method in a run: the fields every method fills (the trainer reads them), the shared
 * optimizer state, and the method's own state behind priv. */
typedef struct method_state {
    const train_method_ops *ops;
    llama_model *m;
    /* The run's backend (the trainer's; not owned). Optimizer state and gradient buffers a
     * method allocates are its memory (BE(be, alloc, category, bytes)) and every touch of them
     * is one of its ops: the method never reads or writes them directly. */
    backend *be;
    method_options o;
    float clip; /* resolved: o.clip, or the method's default */
    int K;      /* steps per block visit (block-wise), else 0 */
    int block;  /* active block, -1 when not block-wise or before the first switch */
    const block_partition *part; /* NULL unless block-wise */
    /* the model's gradient plan: flags and one buffer per flagged parameter ([n_params]; NULL
     * for a method without gradients); train_adapters: LoRA gradients accumulate */
    const uint8_t *need_grad;
    float **grads;
    int train_adapters;
    /* the tensors an optimizer holds (optim/trainable.h); empty for methods without them. Its
     * adam_step and tensor names go to trainer_state.json. */
    trainable_set ts;
    void *priv;
} method_state;

/* What update() gets from the trainer. */
typedef struct method_update_ctx {
    int step;    /* optimizer step (from 0), for messages */
    float lr;    /* this step's learning rate */
    long tokens; /* target tokens of the step, summed over ranks: gradients are sums of token
                    losses, g = sum / tokens */
    const badam_comm *comm; /* all-reduce of the gradients the method trains */
    int grads_reduced;      /* 1: the trainer already summed the trainable gradients over ranks
                               (train/grad_buckets.h), so method_reduce_trainable_grads does not */
} method_update_ctx;

/* What grad_ready() gets for each micro-batch. */
typedef struct method_micro_ctx {
    float lr;
    float grad_scale; /* 1 / target tokens of the micro-batch (summed over ranks) */
    const badam_comm *comm;
} method_micro_ctx;

/* A method that runs its own step: the step's batch and a loss of the model on it. */
typedef struct method_step_ctx {
    int step;
    float lr;
    const llama_batch *batch;
    const badam_comm *comm;
    /* Sum of the token losses of batch under the model's current weights (no gradients, no
     * dropout), and the number of target tokens, both summed over ranks. */
    badam_status (*forward_loss)(void *self, double *loss_sum, long *tokens, badam_error *err);
    void *self;
    /* The workspace forward_loss runs on: a method may wrap its weight hooks for the step
     * (badam/model.h; MeZO perturbs each layer as the forward takes it) and must restore them. */
    llama_workspace *ws;
} method_step_ctx;

typedef struct method_step_result {
    double loss_sum; /* token-loss sum the step reports (its mean is the metrics' loss) */
    long tokens;
    double grad_norm; /* NAN when the method has none */
} method_step_result;

/* A resumed run's state of the method (trainer_state.json). */
typedef struct method_resume {
    int block;              /* -1: none */
    int adam_step;          /* steps of the optimizer state */
    const char *base_model; /* the run's --model (adapters name it) */
} method_resume;

struct train_method_ops {
    const char *name; /* --method NAME */
    unsigned uses;    /* METHOD_USES_* */
    float default_clip;
    /* 1: its gradients and state are reduced across ranks as data parallel needs, and test_mpi
     * checks 2 ranks against 1 process; 0: a run with more than one rank is refused */
    int data_parallel;
    badam_status (*check)(const method_options *o, badam_error *err); /* optional */
    badam_status (*prepare_model)(llama_model *m, const method_options *o, int resume,
                                  badam_error *err); /* optional */
    badam_status (*sizes)(const llama_model *described, const method_options *o, method_sizes *out,
                          badam_error *err);
    badam_status (*create)(method_state *s, badam_error *err);
    badam_status (*allocate)(method_state *s, badam_error *err);
    int (*on_step_begin)(method_state *s, int step); /* optional; 1: need_grad changed */
    /* optional: training (1: micro-batch `micro` of the run, counting from 0) or evaluation (0) */
    void (*train_mode)(method_state *s, int training, uint64_t micro);
    badam_status (*step)(method_state *s, const method_step_ctx *c, method_step_result *out,
                         badam_error *err); /* optional: the whole step */
    void (*zero_grads)(method_state *s);    /* optional */
    void (*grad_ready)(method_state *s, int param, const method_micro_ctx *c); /* optional */
    /* the update after the micro-batches; *norm: the global gradient norm before clipping.
     * Required unless the method has step. */
    badam_status (*update)(method_state *s, const method_update_ctx *c, double *norm,
                           badam_error *err);
    badam_status (*save_parts)(const method_state *s, const char *dir, const char *base_model,
                               badam_error *err); /* optional: nothing to save */
    badam_status (*load_parts)(method_state *s, const char *dir, const method_resume *r,
                               badam_error *err); /* optional */
    badam_status (*save_final)(method_state *s, const char *out_dir, const char *base_model,
                               badam_error *err);                     /* optional */
    void (*describe)(const method_state *s, const badam_logger *log); /* optional: summary lines */
    void (*free)(method_state *s);                                    /* optional */
};

/* ---------------------------------------------------------------- lifecycle */

/* Fills s (ops, m, be, o, block -1, clip resolved) and calls ops->create. be: the backend the
 * method's state lives on (it must outlive s). */
badam_status method_create(method_state *s, const train_method_ops *ops, llama_model *m,
                           backend *be, const method_options *o, badam_error *err);
/* ops->free, then the shared state; s is zeroed. Safe on a zeroed s. */
void method_free(method_state *s);

/* ---------------------------------------------------------------- the registry */

#define TRAIN_METHOD_REGISTRY_MAX 32
#define TRAIN_METHOD_BUILTIN_COUNT 10

/* A table of methods the caller owns (no global state): starts with the built-in methods, and a
 * caller adds its own with train_method_register. */
typedef struct train_method_registry {
    const train_method_ops *ops[TRAIN_METHOD_REGISTRY_MAX];
    int n;
} train_method_registry;

/* The built-in methods in train_method order (badam, adam, lora, lomo, sgd-bcd, badam-ratio,
 * mezo, mezo-lora, galore, adapter); NULL outside. */
const train_method_ops *train_method_builtin(int index);
void train_method_registry_init(train_method_registry *r);
/* Adds ops (which must outlive r); refuses a name already there, a table that is full, or ops
 * without name, sizes, create, allocate, and update or step. */
badam_status train_method_register(train_method_registry *r, const train_method_ops *ops,
                                   badam_error *err);
/* The method called name in r (NULL r: the built-in methods), or NULL. */
const train_method_ops *train_method_find(const train_method_registry *r, const char *name);

/* ---------------------------------------------------------------- helpers for methods */

/* Clipping by the global norm (torch.nn.utils.clip_grad_norm_ with max_norm = clip):
 *   g = grads / tokens;  norm = |g|_2 = sqrt(sum_sq) / tokens
 *   coef = clip / (norm + 1e-6);  scale = coef < 1 ? scale * coef : scale
 * sum_sq: the sum of squares of the gradient sums over every trained tensor (after the
 * all-reduce, so every rank has the same). Returns the scale the update multiplies the
 * gradient sums by; *norm gets the norm. A norm that is not finite is BADAM_E_NUMERIC. */
badam_status method_clip_scale(const method_state *s, const method_update_ctx *c, double sum_sq,
                               double *norm, float *scale, badam_error *err);
/* All-reduces (sums) n floats of backend memory g over comm. One process: nothing to do (the sum
 * over one rank is the value), so the gradient never leaves the backend; several: download into
 * a host buffer, the communicator's all-reduce, upload (a host copy of g per call; a device-aware
 * communicator would take g in place). */
badam_status method_all_reduce_grad(backend *be, const badam_comm *comm, float *g, size_t n,
                                    badam_error *err);
/* All-reduces the gradient of every tensor of s->ts over c->comm (sum) and returns the sum of
 * squares of all of them (the backend's sum_squares). */
badam_status method_reduce_trainable_grads(method_state *s, const method_update_ctx *c,
                                           double *sum_sq, badam_error *err);
/* Zeroes the gradients of s->ts (the zero_grads of methods that use it). */
void method_zero_trainable_grads(method_state *s);
/* optimizer.safetensors of s->ts (checkpoint_write_optimizer / checkpoint_load_optimizer). */
badam_status method_save_trainables(const method_state *s, const char *dir, const char *base_model,
                                    badam_error *err);
badam_status method_load_trainables(method_state *s, const char *dir, const method_resume *r,
                                    badam_error *err);

#endif
