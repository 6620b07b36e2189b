/* The training loop: BAdam and the baselines behind one trainer, the memory plan, checkpoints
 * and exact resume, metrics. */
#ifndef BADAM_TRAIN_H
#define BADAM_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "badam/comm.h"
#include "badam/data.h"
#include "badam/log.h"
#include "badam/llama.h"
#include "badam/optim.h"
#include "badam/status.h"
#include "badam/tasks.h"

typedef enum train_method {
    METHOD_BADAM = 0,   /* block coordinate descent, Adam inner solver */
    METHOD_ADAM,        /* every parameter, fp32 master and state */
    METHOD_LORA,        /* low-rank adapters on frozen weights */
    METHOD_LOMO,        /* SGD fused into backward, one gradient alive at a time */
    METHOD_SGD_BCD,     /* block coordinate descent with SGD (the paper's ablation) */
    METHOD_BADAM_RATIO, /* a fraction of every tensor by mask, sparse Adam (reference ratio mode) */
    METHOD_MEZO,        /* zeroth order: SPSA with the seed trick, forward passes only */
    METHOD_MEZO_LORA,   /* MeZO on LoRA adapters (the weights frozen) */
    METHOD_GALORE,      /* Adam in a low-rank projection of each layer matrix's gradient */
    METHOD_ADAPTER,     /* bottleneck adapters after attention and MLP, base frozen */
    METHOD_COUNT
} train_method;

/* The built-in methods by --method name; a method of one's own is registered in a
 * train_method_registry (src/optim/method.h) and chosen with train_config.method_name. */
badam_status train_method_parse(const char *name, train_method *m, badam_error *err);
const char *train_method_name(train_method m);

struct train_method_registry;

typedef struct train_config {
    const char *model_dir;
    const char *data_path;
    const char *val_path; /* optional separate validation file */
    const char *out_dir;
    train_method method;
    /* A method by name, looked up in `methods` (NULL: the built-in ones); NULL: `method`. */
    const char *method_name;
    const struct train_method_registry *methods;
    /* The ranks of a multi-process run (badam/comm.h); NULL: this process alone. */
    const badam_comm *comm;
    /* Where it computes (badam/device.h): NULL or "cpu", or "cuda" (--device) */
    const char *device;
    /* --shard-weights: with more than one rank, each keeps 1/N of every layer's weights and
     * gathers a layer when it is used (src/train/shard.h); one rank: the unsharded run. BAdam
     * and SGD-BCD only. */
    int shard_weights;
    badam_dtype dtype; /* weight storage: bf16 (default) or fp32 */

    /* BAdam / SGD-BCD */
    int switch_every; /* K; 0 = auto */
    block_order order;
    int start_block; /* -1: the order's default */
    partition_options partition;
    /* Reproduce the reference package's BlockOptimizer exactly: the first block gets K - 1
     * steps, and RMSNorm weights are weight-decayed (every parameter but biases). Off: every
     * block gets K steps (Algorithm 1) and only matrices decay. docs/how-badam-works.md. */
    int reference_compat;

    /* optimizer */
    float lr, beta1, beta2, eps, weight_decay;
    lr_schedule_kind schedule;
    int warmup;
    float min_lr_ratio;
    float clip; /* max gradient norm; 0 = none; < 0 = the method's default (1, LOMO 0) */

    /* loop */
    int epochs;    /* used when max_steps == 0 */
    int max_steps; /* optimizer steps */
    int batch_size, grad_accum, seq_len;
    uint64_t seed;
    int save_every;    /* checkpoint every N steps (0: only at the end) */
    int no_checkpoint; /* write no checkpoint at all (the final model is still saved) */
    int no_save;    /* write no final model (OUT/ gets metrics.jsonl and memory.json): benchmarks */
    int eval_every; /* validation loss every N steps (0: only at the end) */
    double val_size;
    int resume;
    int stop_at_step; /* > 0: checkpoint and stop after this step (a pause; not recorded) */
    int recompute;
    int progress;     /* report a live progress line (BADAM_LOG_PROGRESS) */
    badam_logger log; /* where the run's summary and progress go (fn NULL: nowhere) */
    size_t max_shard_bytes;

    /* LoRA */
    int lora_rank;
    float lora_alpha, lora_dropout;
    uint32_t lora_targets;
    const char *init_adapter;

    /* BAdam ratio mode (--method badam-ratio) */
    float update_ratio; /* fraction of each trained tensor updated per mask (0.1) */
    int mask_scatter;   /* 0: adjacent entries (default), 1: scattered (seeded permutation) */
    /* MeZO (--method mezo) */
    float mezo_eps;   /* perturbation scale (1e-3) */
    int mezo_samples; /* SPSA samples per step, averaged (1) */
    /* GaLore: rank, steps between projector refreshes (SVD of the gradient), scale alpha of
     * the projected-back update, and the per-layer variant (updates inside backward) */
    int galore_rank, galore_update_gap;
    float galore_scale;
    int galore_per_layer;

    /* bottleneck adapters (--method adapter): width; init_adapter starts them from a folder */
    int adapter_size;

    /* data */
    data_format format;
    const char *template_name, *system_prompt;
    int shuffle, group_by_length, pack;

    /* Encoders (bert, roberta): a SuperGLUE task ("rte", ...; badam/tasks.h) whose jsonl files
     * data_path and val_path are, trained as sequence classification or multiple choice
     * (batch_size counts examples, for choice tasks questions); NULL: causal-LM data. */
    const char *task;
    /* > 0: warmup = ceil(warmup_ratio * total steps) (Hugging Face's warmup_ratio); overrides
     * warmup. */
    float warmup_ratio;
    /* TRAIN_OBJECTIVE_MLM: masked-LM pretraining of a *ForMaskedLM encoder (badam/mlm.h: 15%
     * of the tokens, 80/10/10, masks keyed by seed, epoch, sequence and position) */
    int objective;
    /* > 0: a time limit in seconds of training steps (from the first step, not counting loading
     * or validation): the run ends after the step during which it elapsed, with validation, the
     * checkpoint and the model saved as at a normal end; the schedule keeps its max_steps (the lr
     * does not reach its end). metrics.jsonl's last step line says "stop": "max_seconds", and
     * train_report.time_limited is set; data parallel: the ranks stop together (an all-reduce of
     * the decision each step). 0: none. A run so stopped resumes with --resume. */
    double max_seconds;
} train_config;

enum { TRAIN_OBJECTIVE_DEFAULT = 0, TRAIN_OBJECTIVE_MLM = 1 };

/* Defaults: BAdam, bf16, K auto, random order, layer partition, lr 1e-5, betas (0.9, 0.999),
 * eps 1e-8, wd 0, cosine with no warmup, clip 1, 1 epoch, batch 2, accum 1, seq 512, seed 42,
 * LoRA rank 8 alpha 16 on all seven projections, GaLore rank 128 every 200 steps scale 0.25,
 * adapter size 64. */
void train_config_defaults(train_config *cfg);

/* ---------------------------------------------------------------- memory plan */

typedef struct memory_plan {
    size_t bytes[8]; /* by badam_mem_category (src/base/memory.h order) */
    size_t total;
    int n_blocks;
    size_t largest_block; /* parameters (BAdam / SGD-BCD) */
    size_t trainable;     /* parameters the optimizer holds at once */
    size_t params;        /* model parameters */
} memory_plan;

/* Predicted bytes by category for cfg on a model config, without weights. */
badam_status memory_plan_predict(const llama_config *mc, const train_config *cfg, int B, int T,
                                 memory_plan *out, badam_error *err);

/* Predicted bytes by category on each rank of a run of world_size ranks (badam/comm.h) with the
 * global micro-batch cfg->batch_size of cfg->seq_len tokens (a rank holds batch_size / N rows).
 * shard_weights 0: data parallel, each rank holds one process's plan for its rows.
 * shard_weights 1: ZeRO-3 / FSDP-style sharded weights (src/train/shard.h): each rank keeps 1/N
 * of every layer, of the embedding and of the head (flat, padded to N) plus one gather buffer of
 * the largest of them (weights); the active block's master and Adam state are split over the
 * ranks; its gradient is whole (reduce-scattered in place). Activations and workspace are as
 * unsharded. Errors: BADAM_E_INVALID for world_size outside 1 .. 65536 or not dividing
 * batch_size; BADAM_E_UNSUPPORTED, naming the method, for shard_weights with a method other
 * than badam or sgd-bcd. */
badam_status memory_plan_predict_ranks(const llama_config *mc, const train_config *cfg,
                                       int world_size, int shard_weights, memory_plan *out,
                                       badam_error *err);

/* ---------------------------------------------------------------- run */

typedef struct train_report {
    int steps;
    double final_loss; /* mean loss of the last step */
    double val_loss;   /* NAN without a validation set */
    size_t peak_rss;
    memory_plan predicted;
    size_t measured[8]; /* peak bytes by category */
    double seconds;
    double forward_s, backward_s, update_s, switch_s;
    size_t tokens;
    int stopped;      /* ended at stop_at_step with a checkpoint, not at the end */
    int time_limited; /* ended before max_steps because train_config.max_seconds elapsed */
} train_report;

/* ---------------------------------------------------------------- encoder evaluation */

typedef struct task_eval_result {
    double loss;          /* mean loss over the labelled examples (NaN: none) */
    size_t n, n_labelled; /* examples (choice tasks: questions), and those with a label */
    size_t truncated;     /* rows cut to seq_len */
    task_scores scores;   /* the task's metrics (scores.n = 0 when an example has no label) */
    int majority;         /* the set's majority label (-1: none labelled) */
    task_scores baseline; /* the scores of always predicting it */
} task_eval_result;

/* `badam eval --task`: the encoder folder model_dir (config.json, weights, tokenizer.json) on
 * a SuperGLUE task file, in file order, batch_size examples (choice tasks: questions) of at most
 * seq_len tokens a row per pass, no dropout. Errors as train_run's for --task. The majority
 * baseline is the set's own majority label (a lower bound to compare with, not a model). */
badam_status train_task_evaluate(const char *model_dir, const char *task, const char *data_path,
                                 int batch_size, int seq_len, badam_dtype dtype,
                                 task_eval_result *r, badam_error *err);

/* Runs a whole training job: loads, trains, checkpoints, writes OUT/ (HF folder of the final
 * weights, adapter folder for LoRA, metrics.jsonl, memory.json). */
badam_status train_run(const train_config *cfg, train_report *report, badam_error *err);

#endif
