/* badam train: fine-tune a Hugging Face model folder with BAdam or a baseline. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "badam/train.h"
#include "badam/memory.h"
#include "cli.h"
#include "options.h"
#include "train_memcheck.h"
#include "train_mpi.h"
#include "train_options.h"
#include "train_cli.h"
#include "train_out.h"

static const char *USAGE =
    "badam train --model DIR --data FILE --out DIR [--method "
    "badam|adam|lora|lomo|sgd-bcd|badam-ratio|mezo|mezo-lora|galore|adapter] "
    "[options]";
static const char *DESCRIPTION =
    "Fine-tunes every parameter of a Llama-family model (llama, mistral, qwen2) with BAdam:\n"
    "block coordinate descent that trains one block (by default one transformer layer) for K\n"
    "steps with Adam, then moves on, keeping fp32 state for that block only. The baselines use\n"
    "the same loop. Data: Alpaca (JSON/JSONL), ShareGPT, or pre-tokenized JSONL\n"
    "({\"input_ids\": [...], \"labels\": [...]}). OUT receives the fine-tuned model as a Hugging "
    "Face\n"
    "folder, OUT/adapter (LoRA, PEFT layout), OUT/checkpoint, metrics.jsonl and memory.json.\n"
    "Encoders (bert, roberta *ForSequenceClassification / *ForMultipleChoice folders) train on a\n"
    "SuperGLUE task with --task NAME (--data and --val-data are the task's jsonl files;\n"
    "validation reports the task's metrics; BAdam trains the head in every block).";

/* The command line of `badam train`: the run's settings and the CLI's own flags. */
typedef struct train_cli {
    train_config c;
    int quiet, no_shuffle, no_group;
    int overwrite, ignore_memory_check; /* train_out.h, train_memcheck.h */
    int nproc;                          /* --nproc: start this command under mpirun with N ranks */
    double comm_timeout;                /* --comm-timeout: seconds a rank waits for the others */
} train_cli;

/* Entries of the option table, without its end marker. */
enum {
    N_RUN_OPTIONS = 39,
    N_METHOD_OPTIONS = 14,
    N_DATA_OPTIONS = 16,
    N_TRAIN_OPTIONS = N_RUN_OPTIONS + N_METHOD_OPTIONS + N_DATA_OPTIONS
};

/* The options of the run (model, data, output, method, blocks, optimizer, loop), into
 * opts[N_RUN_OPTIONS]. */
static void run_options(train_cli *x, cli_option *opts) {
    train_config *c = &x->c;
    const cli_option table[] = {
        {"model", OPT_STRING, &c->model_dir, "DIR", "Hugging Face model folder to fine-tune", 0},
        {"data", OPT_STRING, &c->data_path, "FILE", "training data (Alpaca, ShareGPT, tokenized)",
         0},
        {"val-data", OPT_STRING, &c->val_path, "FILE", "separate validation data", 0},
        {"out", OPT_STRING, &c->out_dir, "DIR", "output folder (created)", 0},
        {"method", OPT_CUSTOM, &c->method, "NAME",
         "badam (default), adam, lora, lomo, sgd-bcd, badam-ratio, mezo, mezo-lora, galore, "
         "adapter",
         parse_method},
        {"dtype", OPT_CUSTOM, &c->dtype, "T", "weight storage: bf16 (default) or fp32",
         parse_dtype},
        {"device", OPT_STRING, &c->device, "D",
         "cpu (default) or cuda (a -DBADAM_CUDA=ON build and a GPU; not yet run on one)", 0},
        {"switch-every", OPT_CUSTOM, &c->switch_every, "K|auto",
         "optimizer steps per block (auto: clamp(n/(B*D), 50, 100))", parse_switch_every},
        {"switch-mode", OPT_CUSTOM, &c->order, "MODE",
         "block order: random (default), ascending, descending, fixed", parse_switch_mode},
        {"start-block", OPT_INT, &c->start_block, "N", "first block to train", 0},
        {"partition", OPT_CUSTOM, &c->partition, "P",
         "layer (default), module, matrix, or prefixes 'a.,b.;c.' (';' between blocks)",
         parse_partition},
        {"include-embedding", OPT_FLAG, &c->partition.include_embedding, NULL,
         "add the embedding as a block", 0},
        {"include-head", OPT_FLAG, &c->partition.include_head, NULL,
         "add final norm + lm_head as a block (tied models: the norm only; the tied matrix "
         "trains with --include-embedding)",
         0},
        {"always-active", OPT_STRING, &c->partition.always_active, "PREFIXES",
         "parameters trained in every block (comma-separated name prefixes)", 0},
        {"reference-compat", OPT_FLAG, &c->reference_compat, NULL,
         "as the reference BlockOptimizer: first block K-1 steps, norm weights decayed", 0},
        {"lr", OPT_FLOAT, &c->lr, "X", "peak learning rate (default 1e-5)", 0},
        {"beta1", OPT_FLOAT, &c->beta1, "X", "Adam beta1 (0.9)", 0},
        {"beta2", OPT_FLOAT, &c->beta2, "X", "Adam beta2 (0.999)", 0},
        {"eps", OPT_FLOAT, &c->eps, "X", "Adam epsilon (1e-8)", 0},
        {"weight-decay", OPT_FLOAT, &c->weight_decay, "X", "decoupled weight decay on matrices (0)",
         0},
        {"schedule", OPT_CUSTOM, &c->schedule, "S", "cosine (default), linear, constant",
         parse_schedule},
        {"warmup", OPT_INT, &c->warmup, "N", "warmup steps (0)", 0},
        {"min-lr-ratio", OPT_FLOAT, &c->min_lr_ratio, "X", "decay floor as a fraction of lr (0)",
         0},
        {"clip", OPT_FLOAT, &c->clip, "X", "max global gradient norm (1; 0 = off; LOMO: off)", 0},
        {"epochs", OPT_INT, &c->epochs, "N", "epochs when --max-steps is not given (1)", 0},
        {"max-steps", OPT_INT, &c->max_steps, "N", "optimizer steps", 0},
        {"batch-size", OPT_INT, &c->batch_size, "B", "sequences per micro-batch (2)", 0},
        {"grad-accum", OPT_INT, &c->grad_accum, "N", "micro-batches per optimizer step (1)", 0},
        {"seq-len", OPT_INT, &c->seq_len, "T", "maximum tokens per sequence (512)", 0},
        {"seed", OPT_CUSTOM, &c->seed, "N", "random seed (42)", parse_u64},
        {"save-every", OPT_INT, &c->save_every, "N", "checkpoint every N steps (and at the end)",
         0},
        {"eval-every", OPT_INT, &c->eval_every, "N", "validation loss every N steps", 0},
        {"val-size", OPT_DOUBLE, &c->val_size, "N|F",
         "hold out N examples (or a fraction) for validation", 0},
        {"resume", OPT_FLAG, &c->resume, NULL,
         "continue from OUT/checkpoint (same training options)", 0},
        {"no-checkpoint", OPT_FLAG, &c->no_checkpoint, NULL, "write no checkpoint", 0},
        {"no-save", OPT_FLAG, &c->no_save, NULL,
         "write no trained model (only metrics.jsonl and memory.json; for benchmarks)", 0},
        {"stop-at-step", OPT_INT, &c->stop_at_step, "N",
         "pause: checkpoint and stop after step N (the schedule is unchanged; --resume goes on)",
         0},
        {"max-seconds", OPT_DOUBLE, &c->max_seconds, "S",
         "time limit: end (validate, save) after the step during which S seconds of training "
         "elapsed (the schedule keeps --max-steps; 0: no limit, the default)",
         0},
        {"recompute", OPT_FLAG, &c->recompute, NULL,
         "keep only layer inputs; recompute activations in backward", 0},
    };
    _Static_assert(sizeof table / sizeof table[0] == N_RUN_OPTIONS, "N_RUN_OPTIONS");
    memcpy(opts, table, sizeof table);
}

/* The options of the methods that have their own (LoRA, GaLore, bottleneck adapters), into
 * opts[N_METHOD_OPTIONS]. */
static void method_options(train_cli *x, cli_option *opts) {
    train_config *c = &x->c;
    const cli_option table[] = {
        {"lora-rank", OPT_INT, &c->lora_rank, "R", "LoRA rank (8)", 0},
        {"lora-alpha", OPT_FLOAT, &c->lora_alpha, "A", "LoRA alpha (16)", 0},
        {"lora-dropout", OPT_FLOAT, &c->lora_dropout, "P", "LoRA dropout (0)", 0},
        {"lora-targets", OPT_CUSTOM, &c->lora_targets, "LIST",
         "modules to adapt (q,k,v,o,gate,up,down; an encoder's query,key,value,"
         "attention.output.dense,intermediate.dense,output.dense)",
         parse_lora_targets},
        {"init-adapter", OPT_STRING, &c->init_adapter, "DIR",
         "start LoRA (a PEFT adapter) or bottleneck adapters (an adapter folder) from DIR", 0},
        {"adapter-size", OPT_INT, &c->adapter_size, "N",
         "bottleneck adapters (--method adapter): width (64)", 0},
        {"galore-rank", OPT_INT, &c->galore_rank, "R",
         "GaLore projection rank (128; clamped to each weight's smaller dimension, as the "
         "authors' code)",
         0},
        {"galore-update-gap", OPT_INT, &c->galore_update_gap, "T",
         "GaLore: steps between projector refreshes (SVD of the gradient) (200)", 0},
        {"galore-scale", OPT_FLOAT, &c->galore_scale, "A",
         "GaLore: scale of the projected-back update (0.25)", 0},
        {"galore-per-layer", OPT_FLAG, &c->galore_per_layer, NULL,
         "GaLore: update each weight inside backward (no full gradient stored; needs --clip 0 "
         "and --grad-accum 1)",
         0},
        {"update-ratio", OPT_FLOAT, &c->update_ratio, "X",
         "badam-ratio: fraction of each tensor updated per mask (0.1)", 0},
        {"mask-mode", OPT_CUSTOM, &c->mask_scatter, "M",
         "badam-ratio: adjacent (default) or scatter entries", parse_mask_mode},
        {"mezo-eps", OPT_FLOAT, &c->mezo_eps, "X", "mezo: perturbation scale (1e-3)", 0},
        {"mezo-samples", OPT_INT, &c->mezo_samples, "N", "mezo: SPSA samples per step (1)", 0},
    };
    _Static_assert(sizeof table / sizeof table[0] == N_METHOD_OPTIONS, "N_METHOD_OPTIONS");
    memcpy(opts, table, sizeof table);
}

static int parse_objective(const char *v, void *target, char *why, size_t n) {
    int *objective = target;
    if (!strcmp(v, "lm") || !strcmp(v, "mlm")) {
        *objective = !strcmp(v, "mlm") ? TRAIN_OBJECTIVE_MLM : TRAIN_OBJECTIVE_DEFAULT;
        return 0;
    }
    snprintf(why, n, "'%s' is not an objective (lm or mlm)", v);
    return -1;
}

/* The options of the data's rendering and batching and of the output, into opts[N_DATA_OPTIONS
 * + 1] (with the table's end marker). */
static void input_output_options(train_cli *x, cli_option *opts) {
    train_config *c = &x->c;
    const cli_option table[] = {
        {"format", OPT_CUSTOM, &c->format, "F", "data format: auto, alpaca, sharegpt, tokenized",
         parse_format},
        {"template", OPT_STRING, &c->template_name, "T",
         "chat template: default, alpaca, llama2, llama3, chatml, mistral", 0},
        {"system", OPT_STRING, &c->system_prompt, "TEXT", "system prompt", 0},
        {"no-shuffle", OPT_FLAG, &x->no_shuffle, NULL, "keep the file order", 0},
        {"no-group-by-length", OPT_FLAG, &x->no_group, NULL, "do not group batches by length", 0},
        {"pack", OPT_FLAG, &c->pack, NULL, "pack several examples per sequence", 0},
        {"objective", OPT_CUSTOM, &c->objective, "O",
         "lm (the model's own loss, default) or mlm (masked-LM pretraining of a *ForMaskedLM "
         "encoder: 15% of the tokens, 80/10/10)",
         parse_objective},
        {"shard-size", OPT_CUSTOM, &c->max_shard_bytes, "MB", "max safetensors shard size (5120)",
         parse_megabytes},
        {"task", OPT_STRING, &c->task, "NAME",
         "encoders: train on a SuperGLUE task's jsonl (boolq, cb, copa, multirc, rte, wic, wsc)",
         0},
        {"warmup-ratio", OPT_FLOAT, &c->warmup_ratio, "X",
         "warmup as a fraction of the steps (ceil; overrides --warmup)", 0},
        {"quiet", OPT_FLAG, &x->quiet, NULL, "no progress line", 0},
        {"nproc", OPT_INT, &x->nproc, "N",
         "data parallel: run this command under mpirun with N ranks (or launch with mpirun)", 0},
        {"comm-timeout", OPT_DOUBLE, &x->comm_timeout, "S",
         "data parallel: seconds a rank waits for the others before failing (300)", 0},
        {"overwrite", OPT_FLAG, &x->overwrite, NULL,
         "replace a previous run's adapter/ or checkpoint/ in OUT that this run would not write "
         "(without it such a run is refused)",
         0},
        {"ignore-memory-check", OPT_FLAG, &x->ignore_memory_check, NULL,
         "run even when the memory plan exceeds the memory available (MemAvailable)", 0},
        {"shard-weights", OPT_FLAG, &c->shard_weights, NULL,
         "data parallel: each rank keeps 1/N of every layer's weights (badam, sgd-bcd)", 0},
        {0},
    };
    _Static_assert(sizeof table / sizeof table[0] == N_DATA_OPTIONS + 1, "N_DATA_OPTIONS");
    memcpy(opts, table, sizeof table);
}

/* The option table of `badam train`, its targets in x, into opts[N_TRAIN_OPTIONS + 1]. */
static void train_options(train_cli *x, cli_option *opts) {
    run_options(x, opts);
    method_options(x, opts + N_RUN_OPTIONS);
    input_output_options(x, opts + N_RUN_OPTIONS + N_METHOD_OPTIONS);
}

/* Each numeric setting in its range, named by the user's flag: 0, or 2 after a message. */
static int check_ranges(const train_config *c) {
    const char *bad = NULL, *want = NULL;
    double v = 0;
#define RANGE(flag, value, ok, expect)                                                             \
    if (!bad && !(ok)) bad = flag, v = (double)(value), want = expect
    RANGE("--lr", c->lr, c->lr >= 0, ">= 0");
    RANGE("--beta1", c->beta1, c->beta1 >= 0 && c->beta1 < 1, "in [0, 1)");
    RANGE("--beta2", c->beta2, c->beta2 >= 0 && c->beta2 < 1, "in [0, 1)");
    RANGE("--eps", c->eps, c->eps > 0, "> 0");
    RANGE("--weight-decay", c->weight_decay, c->weight_decay >= 0, ">= 0");
    RANGE("--warmup", c->warmup, c->warmup >= 0, ">= 0");
    RANGE("--warmup-ratio", c->warmup_ratio, c->warmup_ratio >= 0 && c->warmup_ratio <= 1,
          "in [0, 1]");
    RANGE("--min-lr-ratio", c->min_lr_ratio, c->min_lr_ratio >= 0 && c->min_lr_ratio <= 1,
          "in [0, 1]");
    RANGE("--batch-size", c->batch_size, c->batch_size >= 1, ">= 1");
    RANGE("--grad-accum", c->grad_accum, c->grad_accum >= 1, ">= 1");
    RANGE("--seq-len", c->seq_len, c->seq_len >= 2, ">= 2");
    RANGE("--max-steps", c->max_steps, c->max_steps >= 0, ">= 0");
    RANGE("--epochs", c->epochs, c->epochs >= 0, ">= 0");
#undef RANGE
    if (bad) {
        fprintf(stderr, "badam train: %s %g: must be %s\n", bad, v, want);
        return 2;
    }
    if (c->max_steps == 0 && c->epochs == 0) {
        fprintf(stderr, "badam train: --epochs 0 trains nothing: give a positive --epochs or "
                        "--max-steps\n");
        return 2;
    }
    return 0;
}

/* A warning for each flag of the comma-separated `flags` given while the method is not one they
 * are for (applies 0): "--galore-rank is ignored with --method lora (it is for --method galore)".
 */
static void warn_method_flags(const train_config *c, const cli_option *opts,
                              const unsigned char *given, const char *flags, int applies,
                              const char *for_methods) {
    char name[64];
    for (const char *p = flags; !applies && *p;) {
        size_t n = strcspn(p, ",");
        snprintf(name, sizeof name, "%.*s", (int)n, p);
        if (cli_given(opts, given, name))
            cli_warn("badam train", "--%s is ignored with --method %s (it is for --method %s)",
                     name, train_method_name(c->method), for_methods);
        p += n + (p[n] == ',');
    }
}

/* Options that contradict each other are refused (2, after a message naming both); an option
 * that another makes pointless is a warning. */
static int check_conflicts(const train_config *c, const cli_option *opts,
                           const unsigned char *given) {
#define GIVEN(name) cli_given(opts, given, name)
    const char *refused = NULL;
    if (GIVEN("max-steps") && c->max_steps == 0)
        refused = "--max-steps 0 trains nothing: give a positive number of steps (or leave it out "
                  "to train for --epochs)";
    else if (GIVEN("no-checkpoint") && GIVEN("save-every"))
        refused = "--no-checkpoint and --save-every contradict each other (write no checkpoint / "
                  "checkpoint every N steps): give one";
    else if (GIVEN("warmup") && GIVEN("warmup-ratio"))
        refused = "--warmup and --warmup-ratio both set the warmup: give one";
    else if (GIVEN("val-data") && GIVEN("val-size"))
        refused = "--val-data and --val-size both choose the validation set: give one";
    else if (GIVEN("init-adapter") && c->method != METHOD_LORA && c->method != METHOD_MEZO_LORA &&
             c->method != METHOD_ADAPTER)
        refused = "--init-adapter starts LoRA or bottleneck adapters: it needs --method lora, "
                  "mezo-lora or adapter";
    if (refused) {
        fprintf(stderr, "badam train: %s\n", refused);
        return 2;
    }
    if (GIVEN("init-adapter") && c->resume)
        cli_warn("badam train", "--init-adapter is ignored with --resume (the checkpoint holds "
                                "the adapter)");
    if (GIVEN("overwrite") && c->resume)
        cli_warn("badam train", "--overwrite is ignored with --resume (the run goes on in OUT)");
    if (GIVEN("epochs") && GIVEN("max-steps"))
        cli_warn("badam train", "--epochs is ignored: --max-steps sets the length of the run");
    if (GIVEN("no-group-by-length") && c->pack)
        cli_warn("badam train", "--no-group-by-length is ignored with --pack (packed rows are "
                                "never grouped)");
    if (c->task && GIVEN("no-group-by-length"))
        cli_warn("badam train", "--no-group-by-length is ignored with --task (task batches are "
                                "never grouped by length)");
    if (GIVEN("eval-every") && !c->val_path && !(c->val_size > 0))
        cli_warn("badam train", "--eval-every is ignored: there is no validation set (--val-data "
                                "or --val-size)");
    const char *block_flags[] = {"switch-every",      "switch-mode",  "start-block",  "partition",
                                 "include-embedding", "include-head", "always-active"};
    int blockwise = c->method == METHOD_BADAM || c->method == METHOD_SGD_BCD;
    for (int i = 0; i < 7 && !blockwise; i++)
        if (GIVEN(block_flags[i]) &&
            !(c->method == METHOD_BADAM_RATIO && (i == 0 || i == 4 || i == 5)))
            cli_warn("badam train", "--%s is ignored with --method %s (it trains no blocks)",
                     block_flags[i], train_method_name(c->method));
    int lora = c->method == METHOD_LORA || c->method == METHOD_MEZO_LORA;
    int mezo = c->method == METHOD_MEZO || c->method == METHOD_MEZO_LORA;
    warn_method_flags(c, opts, given, "lora-rank,lora-alpha,lora-dropout,lora-targets", lora,
                      "lora or mezo-lora");
    warn_method_flags(c, opts, given, "update-ratio,mask-mode", c->method == METHOD_BADAM_RATIO,
                      "badam-ratio");
    warn_method_flags(c, opts, given, "mezo-eps,mezo-samples", mezo, "mezo or mezo-lora");
    warn_method_flags(c, opts, given, "galore-rank,galore-update-gap,galore-scale,galore-per-layer",
                      c->method == METHOD_GALORE, "galore");
    warn_method_flags(c, opts, given, "adapter-size", c->method == METHOD_ADAPTER, "adapter");
#undef GIVEN
    return 0;
}

/* Reads and checks the command line into x: 0, 1 after --help, 2 after an error message. */
static int parse_args(int argc, char **argv, train_cli *x) {
    cli_option opts[N_TRAIN_OPTIONS + 1];
    unsigned char given[N_TRAIN_OPTIONS] = {0};
    train_options(x, opts);
    int rc = cli_parse_given("badam train", USAGE, DESCRIPTION, opts, argc, argv, given);
    if (rc) return rc;
    train_config *c = &x->c;
    c->shuffle = !x->no_shuffle;
    c->group_by_length = !x->no_group;
    c->progress = !x->quiet && isatty(STDERR_FILENO);
    c->log = (badam_logger){cli_log_stderr, NULL};
    if (!c->model_dir || !c->data_path || !c->out_dir) {
        fprintf(stderr, "badam train: --model, --data and --out are required (see --help)\n");
        return 2;
    }
    if ((rc = check_ranges(c))) return rc;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int most = cores > 16 ? 4 * (int)cores : 64; /* ranks on this machine: a few per core */
    if ((cli_given(opts, given, "nproc") && (x->nproc < 1 || x->nproc > most)) ||
        !(x->comm_timeout > 0)) {
        fprintf(stderr,
                "badam train: --nproc must be 1 to %d here (ranks on this machine; use mpirun "
                "with a host file for more) and --comm-timeout > 0 seconds\n",
                most);
        return 2;
    }
    return check_conflicts(c, opts, given);
}

/* The summary of a finished run. */
static void print_report(const train_config *c, const train_report *r) {
    char a[32], b[32], d[32];
    double tps = r->seconds > 0 ? r->tokens / r->seconds : 0;
    fprintf(stderr, "done: %d steps in %.1f s (%.0f tokens/s), final loss %.4f", r->steps,
            r->seconds, tps, r->final_loss);
    if (!isnan(r->val_loss)) fprintf(stderr, ", validation loss %.4f", r->val_loss);
    fprintf(stderr, "\n  time: forward %.1f s, backward %.1f s, update %.2f s, switch %.3f s\n",
            r->forward_s, r->backward_s, r->update_s, r->switch_s);
    size_t measured = 0;
    for (int cat = 1; cat < BADAM_MEM_CATEGORY_COUNT; cat++) measured += r->measured[cat];
    fprintf(stderr, "  memory: predicted %s, allocated peak %s, process peak RSS %s\n",
            cli_human_bytes(a, r->predicted.total), cli_human_bytes(b, measured),
            cli_human_bytes(d, r->peak_rss));
    fprintf(stderr, "  wrote %s (model), %s/metrics.jsonl, %s/memory.json\n", c->out_dir,
            c->out_dir, c->out_dir);
}

/* Only rank 0 of a data-parallel run reports the run's summary and progress. */
static void quiet_log(void *ctx, badam_log_level level, const char *text) {
    (void)ctx, (void)level, (void)text;
}

/* Before the run: the memory check (each rank, with the ranks sharing this machine) and, on rank
 * 0, OUT's previous files (train_out.h). 0 to run; else the exit status, after a message. */
static int guard_run(train_cli *x, const badam_comm *comm, train_out *out) {
    memset(out, 0, sizeof *out);
    out->existed = 1; /* nothing to remove until train_out_prepare looked */
    int ranks = badam_comm_size(comm);
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE"); /* ranks on this machine */
    int here = local && atoi(local) > 0 ? atoi(local) : ranks;
    int rc = 0;
    if (!x->ignore_memory_check) rc = memcheck_train(&x->c, x->c.batch_size / ranks, here);
    if (!rc && badam_comm_rank(comm) == 0) rc = train_out_prepare(&x->c, x->overwrite, out);
    return rc;
}

/* Under mpirun: the MPI communicator in x->c.comm (0), or 1 after a message. */
static int join_ranks(train_cli *x, badam_comm *comm) {
    badam_error err = {0};
    if (badam_comm_mpi_create(x->comm_timeout, comm, &err)) {
        fprintf(stderr, "badam train: %s\n", err.message);
        return 1;
    }
    x->c.comm = comm;
    if (badam_comm_rank(comm) != 0) {
        x->c.progress = 0;
        x->c.log = (badam_logger){quiet_log, NULL};
    }
    return 0;
}

int train_parse_config(int argc, char **argv, train_config *c) {
    train_cli x = {0};
    x.c = *c;
    x.comm_timeout = 300;
    int rc = parse_args(argc, argv, &x);
    if (!rc && x.nproc > 0) {
        fprintf(stderr, "badam train: --nproc is for badam train alone (not in compare)\n");
        rc = 2;
    }
    *c = x.c;
    return rc;
}

int train_option_takes_value(const char *name) {
    train_cli x = {0};
    cli_option opts[N_TRAIN_OPTIONS + 1];
    train_options(&x, opts);
    for (int i = 0; i < N_TRAIN_OPTIONS; i++)
        if (!strcmp(opts[i].name, name)) return opts[i].type != OPT_FLAG;
    return -1;
}

void train_print_options(FILE *out) {
    train_cli x = {0};
    cli_option opts[N_TRAIN_OPTIONS + 1];
    train_options(&x, opts);
    for (const cli_option *o = opts; o->name; o++) {
        char left[64];
        if (!strcmp(o->name, "method") || !strcmp(o->name, "out") || !strcmp(o->name, "nproc") ||
            !strcmp(o->name, "comm-timeout"))
            continue;
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        fprintf(out, "  %-28s %s\n", left, o->help);
    }
}

int cmd_train(int argc, char **argv) {
    train_cli x = {0};
    train_config_defaults(&x.c);
    x.comm_timeout = 300;
    int rc = parse_args(argc, argv, &x);
    if (rc) return rc == 1 ? 0 : 2;
    int mpi = cli_mpi_launched();
    if (x.nproc > 0 && !mpi) return cli_exec_mpirun(argc, argv, x.nproc);
    badam_comm comm = badam_comm_single();
    if (mpi && join_ranks(&x, &comm)) return 1;
    int rank = badam_comm_rank(&comm);
    badam_error err = {0};
    train_report r;
    train_out out;
    if ((rc = guard_run(&x, &comm, &out))) {
        badam_comm_mpi_destroy(&comm, 1); /* the other ranks end too */
        return rc;
    }
    badam_status st = train_run(&x.c, &r, &err);
    if (rank == 0) train_out_finish(&out, st == BADAM_OK);
    if (st) {
        if (rank)
            fprintf(stderr, "badam train (rank %d): %s\n", rank, err.message);
        else
            fprintf(stderr, "badam train: %s\n", err.message);
        fflush(stderr);
    }
    badam_comm_stats cs = badam_comm_mpi_stats(&comm);
    int ranks = badam_comm_size(&comm);
    badam_comm_mpi_destroy(&comm, st != BADAM_OK); /* a failed rank ends the whole job */
    if (st) return 1;
    if (rank) return 0;
    if (r.stopped) {
        fprintf(stderr,
                "paused after step %d in %.1f s: %s/checkpoint holds the run; the same command "
                "with --resume (and without --stop-at-step, or a later one) continues it\n",
                r.steps, r.seconds, x.c.out_dir);
        return 0;
    }
    print_report(&x.c, &r);
    if (ranks > 1 && r.steps > 0)
        fprintf(stderr,
                "  communication (rank 0 of %d): %.3f MB per step reduced (all-reduce payload), "
                "%.1f MB broadcast, %llu collectives, %.3f s in collectives, %llu buckets "
                "overlapped with backward\n",
                ranks, cs.reduce_bytes / r.steps / 1e6, cs.broadcast_bytes / 1e6, cs.collectives,
                cs.seconds, cs.async_reduces);
    return 0;
}
