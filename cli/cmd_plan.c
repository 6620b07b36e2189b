/* badam plan: the memory a training run will take, by category, from config.json alone. */
#include <stdio.h>
#include <string.h>

#include "badam/device.h"
#include "badam/train.h"
#include "badam/memory.h"
#include "badam/model.h"
#include "cli.h"
#include "options.h"
#include "train_memcheck.h"
#include "train_options.h"

static const char *USAGE = "badam plan --model DIR [--method NAME|all] [--seq-len T] "
                           "[--batch-size B] [--world-size N [--shard-weights]] [options]";
static const char *DESCRIPTION =
    "Predicts the bytes a `badam train` run holds, by category (weights, master copies,\n"
    "gradients, optimizer state, activations, workspace), for each method, reading only\n"
    "config.json (a 70B plan costs nothing). For BAdam the master + gradient + optimizer bytes\n"
    "are 14 x the largest block's parameters (bf16 weights). Process overhead (code, data,\n"
    "tokenizer) comes on top. With --world-size N the bytes are per rank of a data-parallel run\n"
    "(--batch-size is the global micro-batch, N must divide it); --shard-weights counts\n"
    "ZeRO-3-style sharded weights as badam train --shard-weights keeps them (1/N of every layer\n"
    "per rank, the embedding and the head whole, a gather buffer and the trained layer's buffer;\n"
    "the block state unsharded; badam, sgd-bcd only).";

static void print_row(const char *name, const memory_plan *p, int json, int first) {
    if (json) {
        printf("%s\n  \"%s\": {", first ? "" : ",", name);
        for (int c = 1; c < BADAM_MEM_CATEGORY_COUNT; c++)
            printf("\"%s\": %zu, ", badam_mem_category_name(c), p->bytes[c]);
        printf("\"total\": %zu, \"trainable_params\": %zu, \"blocks\": %d}", p->total, p->trainable,
               p->n_blocks);
        return;
    }
    char buf[BADAM_MEM_CATEGORY_COUNT + 1][32];
    for (int c = 1; c < BADAM_MEM_CATEGORY_COUNT; c++) cli_human_bytes(buf[c], p->bytes[c]);
    cli_human_bytes(buf[0], p->total);
    printf("  %-11s %11s %11s %11s %11s %11s %11s %11s\n", name, buf[BADAM_MEM_WEIGHTS],
           buf[BADAM_MEM_MASTER], buf[BADAM_MEM_GRADIENTS], buf[BADAM_MEM_OPTIMIZER],
           buf[BADAM_MEM_ACTIVATIONS], buf[BADAM_MEM_WORKSPACE], buf[0]);
}

/* Parameters of a config, from its family's parameter table (0 when it cannot be built). */
static size_t param_count(const model_arch *arch, const llama_config *mc) {
    llama_model *m = NULL;
    badam_error err = {0};
    if (arch->describe(mc, BADAM_DTYPE_F32, &m, &err)) return 0;
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += m->params[i].numel;
    arch->free(m);
    return n;
}

/* A warning for each printed plan that exceeds the memory available now (the check `badam
 * train` makes before it runs; per rank, for one rank on this machine). */
static void warn_memory(const memory_plan *plans, const int *skip) {
    size_t available = badam_mem_available();
    char msg[512];
    for (int i = 0; i < METHOD_COUNT; i++)
        if (!skip[i] && memcheck_message(plans[i].total, 1, available, msg, sizeof msg))
            cli_warn("badam plan",
                     "--method %s: %s; badam train would refuse it (unless "
                     "--ignore-memory-check)",
                     train_method_name((train_method)i), msg);
}

/* The ranks of the plan: N, and whether weights are sharded. */
typedef struct plan_ranks {
    int world, shard;
} plan_ranks;

/* Plans every method (or `only`) into plans[], marking in skip[] the methods --shard-weights
 * leaves out of "all" (they cannot shard): 0, or 1 after a message. */
static int make_plans(const llama_config *mc, train_config *c, train_method only, plan_ranks pr,
                      memory_plan *plans, int *skip) {
    badam_error err = {0};
    for (int i = 0; i < METHOD_COUNT; i++) {
        skip[i] = only != METHOD_COUNT && i != (int)only;
        if (skip[i]) continue;
        c->method = (train_method)i;
        badam_status st = memory_plan_predict_ranks(mc, c, pr.world, pr.shard, &plans[i], &err);
        if (st == BADAM_E_UNSUPPORTED && only == METHOD_COUNT) {
            skip[i] = 1; /* "all" lists what this model and layout support */
            if (!pr.shard) fprintf(stderr, "note: left out: %s\n", err.message);
            continue;
        }
        if (st) {
            fprintf(stderr, "badam plan: --method %s: %s\n", train_method_name(c->method),
                    err.message);
            return 1;
        }
    }
    return 0;
}

/* The plan of each method (or of `only`), as a table or JSON: 0, or 1 after a message. Every
 * plan is made before anything is printed, so an error leaves no partial output. */
static int print_plans(const model_arch *arch, const llama_config *mc, train_config *c,
                       train_method only, plan_ranks pr, int json) {
    char a[32];
    memory_plan plans[METHOD_COUNT];
    int skip[METHOD_COUNT];
    if (make_plans(mc, c, only, pr, plans, skip)) return 1;
    if (!json) {
        printf("model %s: %s, %s parameters, %s weights, batch %d x %d tokens\n", c->model_dir,
               mc->model_type, cli_human_count(a, param_count(arch, mc)),
               c->dtype == BADAM_DTYPE_BF16 ? "bf16" : "fp32", c->batch_size, c->seq_len);
        if (pr.world > 1 || pr.shard)
            printf("per rank of %d (%d of the batch's sequences each)%s\n", pr.world,
                   c->batch_size / pr.world,
                   pr.shard ? ", weights sharded (embedding, layers and head; one gather buffer)"
                            : ", weights whole on every rank");
        printf("  %-11s %11s %11s %11s %11s %11s %11s %11s\n", "method", "weights", "master",
               "gradients", "optimizer", "activations", "workspace", "total");
    } else {
        printf("{");
    }
    int first = 1;
    for (int i = 0; i < METHOD_COUNT; i++) {
        if (skip[i]) continue;
        print_row(train_method_name((train_method)i), &plans[i], json, first);
        first = 0;
        if (!json && (i == METHOD_BADAM || i == METHOD_SGD_BCD))
            printf("  %-11s %d blocks, largest %s parameters\n", "", plans[i].n_blocks,
                   cli_human_count(a, plans[i].largest_block));
    }
    if (json) printf("\n}\n");
    if (pr.shard && only == METHOD_COUNT)
        fprintf(json ? stderr : stdout,
                "note: --shard-weights: only badam and sgd-bcd shard; the others are left out\n");
    const char *note = partition_tied_head_note(mc, &c->partition);
    if (note && (only == METHOD_COUNT || only == METHOD_BADAM || only == METHOD_SGD_BCD))
        fprintf(json ? stderr : stdout, "note: %s\n", note);
    fflush(stdout); /* the table first, then the warnings (stderr) */
    warn_memory(plans, skip);
    return 0;
}

/* With --device cuda: the GPU's free memory (cudaMemGetInfo), to set against the totals. */
static int print_device(const char *device, int json) {
    size_t free_b, total_b;
    char name[128];
    badam_error err = {0};
    if (!device || !strcmp(device, "cpu")) return 0;
    if (badam_device_memory(device, &free_b, &total_b, name, sizeof name, &err)) {
        fprintf(stderr, "badam plan: %s\n", err.message);
        return 1;
    }
    fprintf(json ? stderr : stdout,
            "device %s (%s): %.2f GiB free of %.2f GiB (cudaMemGetInfo; the plan's total must fit "
            "in the free memory)\n",
            device, name, free_b / 1073741824.0, total_b / 1073741824.0);
    return 0;
}

int cmd_plan(int argc, char **argv) {
    train_config c;
    train_config_defaults(&c);
    const char *method = "all";
    int json = 0;
    plan_ranks pr = {1, 0};
    const cli_option opts[] = {
        {"model", OPT_STRING, &c.model_dir, "DIR", "model folder (only config.json is read)", 0},
        {"method", OPT_STRING, &method, "NAME",
         "badam, adam, lora, lomo, sgd-bcd, badam-ratio, mezo, mezo-lora, galore, adapter or all",
         0},
        {"dtype", OPT_CUSTOM, &c.dtype, "T", "weight storage: bf16 (default) or fp32", parse_dtype},
        {"device", OPT_STRING, &c.device, "D", "cpu (default) or cuda: also print its free memory",
         0},
        {"seq-len", OPT_INT, &c.seq_len, "T", "tokens per sequence (512)", 0},
        {"batch-size", OPT_INT, &c.batch_size, "B", "sequences per micro-batch (2)", 0},
        {"partition", OPT_CUSTOM, &c.partition, "P", "BAdam blocks: layer, module, matrix",
         parse_partition},
        {"include-embedding", OPT_FLAG, &c.partition.include_embedding, NULL,
         "embedding as a block", 0},
        {"include-head", OPT_FLAG, &c.partition.include_head, NULL,
         "head as a block (tied models: the norm only)", 0},
        {"lora-rank", OPT_INT, &c.lora_rank, "R", "LoRA rank (8)", 0},
        {"lora-targets", OPT_CUSTOM, &c.lora_targets, "LIST", "LoRA modules", parse_lora_targets},
        {"update-ratio", OPT_FLOAT, &c.update_ratio, "X", "badam-ratio: fraction updated (0.1)", 0},
        {"galore-rank", OPT_INT, &c.galore_rank, "R",
         "GaLore rank (128; clamped to each weight's smaller dim)", 0},
        {"adapter-size", OPT_INT, &c.adapter_size, "N", "bottleneck adapter width (64)", 0},
        {"galore-per-layer", OPT_FLAG, &c.galore_per_layer, NULL,
         "GaLore updating inside backward (one layer gradient alive)", 0},
        {"recompute", OPT_FLAG, &c.recompute, NULL, "activation recomputation", 0},
        {"world-size", OPT_INT, &pr.world, "N", "ranks of a data-parallel run: bytes per rank (1)",
         0},
        {"shard-weights", OPT_FLAG, &pr.shard, NULL,
         "layer weights sharded over the ranks (badam, sgd-bcd)", 0},
        {"json", OPT_FLAG, &json, NULL, "print JSON", 0},
        {0},
    };
    int rc = cli_parse("badam plan", USAGE, DESCRIPTION, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    if (!c.model_dir) {
        fprintf(stderr, "badam plan: --model is required (see --help)\n");
        return 2;
    }
    if (c.batch_size < 1 || c.seq_len < 2 || c.lora_rank < 1 ||
        !(c.update_ratio > 0.0f && c.update_ratio <= 1.0f)) {
        fprintf(stderr, "badam plan: --batch-size, --seq-len and --lora-rank must be positive, "
                        "--update-ratio in (0, 1]\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", c.model_dir);
    badam_error err = {0};
    llama_config mc;
    const model_arch *arch = NULL;
    if (model_arch_for_folder(c.model_dir, &arch, &err) || arch->config_load(path, &mc, &err)) {
        fprintf(stderr, "badam plan: %s\n", err.message);
        return 1;
    }
    train_method only = METHOD_COUNT;
    if (strcmp(method, "all") != 0 && train_method_parse(method, &only, &err)) {
        fprintf(stderr, "badam plan: --method: %s\n", err.message);
        return 2;
    }
    if (pr.world < 1 || c.batch_size % pr.world) {
        fprintf(stderr, "badam plan: --world-size %d must be >= 1 and divide --batch-size %d\n",
                pr.world, c.batch_size);
        return 2;
    }
    if (badam_device_check(c.device, &err)) {
        fprintf(stderr, "badam plan: %s\n", err.message);
        return 1;
    }
    rc = print_plans(arch, &mc, &c, only, pr, json);
    return rc ? rc : print_device(c.device, json);
}
