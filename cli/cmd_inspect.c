/* badam inspect MODEL_DIR: what a Hugging Face model folder holds, checked against its config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/llama.h"
#include "cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: badam inspect MODEL_DIR\n"
            "\n"
            "Prints the architecture from config.json, every parameter tensor with its shape,\n"
            "stored dtype and size, the total parameter count, and the per-layer blocks BAdam\n"
            "trains one at a time (with the fp32 master + gradient + Adam state each needs).\n"
            "Reads safetensors headers only; weights are not loaded.\n");
}

/* An encoder's fields (bert, roberta): post-LayerNorm blocks, token types, the head. */
static void print_encoder(const char *dir, const llama_config *c) {
    printf("model: %s\n", dir);
    printf("  type            %s (encoder, %s)\n", c->model_type,
           c->encoder_head == LLAMA_HEAD_MLM ? "masked-LM head, decoder tied to the word embeddings"
           : c->num_labels == 1              ? "multiple choice: one score per choice"
           : c->encoder_head == LLAMA_HEAD_ROBERTA_CLASSIFIER ? "classification head"
                                                              : "pooler + classifier");
    printf("  hidden          %d   intermediate %d   layers %d\n", c->hidden_size,
           c->intermediate_size, c->n_layers);
    printf("  heads           %d   head_dim %d\n", c->n_heads, c->head_dim);
    printf("  vocab           %d   max positions %d   token types %d   pad id %d\n", c->vocab_size,
           c->max_position_embeddings, c->type_vocab_size, c->pad_token_id);
    printf("  layer_norm_eps  %g   labels %d   dropout hidden %g, attention %g, classifier %g\n",
           c->layer_norm_eps, c->num_labels, c->hidden_dropout, c->attention_dropout,
           c->classifier_dropout);
}

static void print_config(const char *dir, const llama_config *c) {
    if (c->encoder_head != LLAMA_HEAD_NONE) {
        print_encoder(dir, c);
        return;
    }
    printf("model: %s\n", dir);
    printf("  type            %s\n", c->model_type);
    printf("  hidden          %d   intermediate %d   layers %d\n", c->hidden_size,
           c->intermediate_size, c->n_layers);
    printf("  heads           %d   kv heads %d   head_dim %d%s\n", c->n_heads, c->n_kv_heads,
           c->head_dim, c->n_kv_heads < c->n_heads ? "   (grouped-query attention)" : "");
    printf("  vocab           %d   max positions %d\n", c->vocab_size, c->max_position_embeddings);
    printf("  rms_norm_eps    %g   rope_theta %g", c->rms_norm_eps, c->rope_theta);
    if (c->rope_scaling == LLAMA_ROPE_LLAMA3)
        printf("   rope_scaling llama3 (factor %g, low %g, high %g, original %d)", c->rope_factor,
               c->rope_low_freq_factor, c->rope_high_freq_factor,
               c->rope_original_max_position_embeddings);
    printf("\n  embeddings      %s   q/k/v bias %s   o bias %s\n",
           c->tie_word_embeddings ? "tied" : "untied", c->qkv_bias ? "yes" : "no",
           c->o_bias ? "yes" : "no");
}

/* The tensor table with found dtypes and problems; returns the total parameter count. */
static size_t print_tensors(const llama_folder_report *r) {
    char a[32], b[32];
    size_t total = 0;
    printf("\ntensors:\n  %-52s %-14s %-5s %10s\n", "name", "shape", "dtype", "params");
    for (int i = 0; i < r->n_params; i++) {
        const llama_param *p = &r->params[i];
        const llama_folder_tensor *t = &r->tensors[i];
        char shape[48];
        if (p->ndim == 2)
            snprintf(shape, sizeof shape, "[%lld, %lld]", (long long)p->shape[0],
                     (long long)p->shape[1]);
        else
            snprintf(shape, sizeof shape, "[%lld]", (long long)p->shape[0]);
        printf("  %-52s %-14s %-5s %10s%s\n", p->name, shape,
               t->found ? badam_dtype_name(t->stored_dtype) : "-", cli_human_count(a, p->numel),
               !t->found     ? "   MISSING"
               : t->shape_ok ? ""
                             : "   WRONG SHAPE");
        total += p->numel;
    }
    for (size_t i = 0; i < r->n_unknown; i++)
        printf("  %-52s (not a parameter of this config; ignored on load)\n", r->unknown[i]);
    printf("\ntotal parameters: %zu (%s), stored in %s\n", total, cli_human_count(a, total),
           cli_human_bytes(b, r->stored_bytes));
    return total;
}

/* The name prefix of layer l's parameters up to the layer number ("model.layers.3."). */
static const char *layer_prefix(const llama_param *params, int n, int l, char *out, size_t size) {
    char tag[24];
    snprintf(tag, sizeof tag, ".%d.", l);
    for (int i = 0; i < n; i++) {
        const char *at = params[i].layer == l ? strstr(params[i].name, tag) : NULL;
        if (at) {
            snprintf(out, size, "%.*s", (int)(at - params[i].name) + (int)strlen(tag),
                     params[i].name);
            return out;
        }
    }
    snprintf(out, size, "layer %d: ", l);
    return out;
}

int cmd_inspect(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-') {
        if (argc >= 2 && argv[1][0] == '-')
            fprintf(stderr, "badam inspect: unknown option '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    const char *dir = argv[1];
    char path[4096], prefix[128];
    badam_error err = {0};
    llama_folder_report r;
    if (llama_folder_inspect(dir, &r, &err)) {
        fprintf(stderr, "badam inspect: %s\n", err.message);
        return 1;
    }
    const llama_config cfg = r.cfg;
    const llama_param *params = r.params;
    int n_params = r.n_params;
    print_config(dir, &cfg);

    char a[32], b[32];
    size_t total = print_tensors(&r);

    /* BAdam's default partition: one block per transformer layer (norms included). */
    size_t *block = calloc((size_t)cfg.n_layers, sizeof *block), largest = 0, outside = 0;
    for (int i = 0; i < n_params; i++) {
        if (params[i].layer >= 0)
            block[params[i].layer] += params[i].numel;
        else
            outside += params[i].numel;
    }
    printf("\nBAdam blocks (partition by layer, D = %d; %s frozen):\n", cfg.n_layers,
           cfg.encoder_head != LLAMA_HEAD_NONE ? "embeddings and head"
                                               : "embedding, final norm and head");
    for (int l = 0; l < cfg.n_layers; l++) {
        if (block[l] > largest) largest = block[l];
        if (l < 3 || l == cfg.n_layers - 1)
            printf("  block %-3d %s*   %10s params   fp32 master+grad+Adam %s\n", l,
                   layer_prefix(params, n_params, l, prefix, sizeof prefix),
                   cli_human_count(a, block[l]), cli_human_bytes(b, 16ull * block[l]));
        else if (l == 3)
            printf("  ...\n");
    }
    if (cfg.encoder_head != LLAMA_HEAD_NONE)
        printf("  not in any block: %s params (embeddings and head)\n",
               cli_human_count(a, outside));
    else
        printf("  not in any block: %s params (embedding, final norm%s)\n",
               cli_human_count(a, outside), cfg.tie_word_embeddings ? "" : ", lm_head");
    /* 14 B: the split master's low 2 bytes (its high half is the bf16 weight), the fp32
     * gradient and the two fp32 Adam moments (README, "Memory") */
    printf("\nmemory without activations: bf16 weights %s + active block state %s (14 B x %s)\n",
           cli_human_bytes(a, 2ull * total), cli_human_bytes(b, 14ull * largest),
           cli_human_count(path, largest));
    free(block);
    int problems = r.n_problems;
    llama_folder_report_free(&r);
    if (problems) {
        fprintf(stderr, "badam inspect: %d tensor(s) missing or with the wrong shape\n", problems);
        return 1;
    }
    return 0;
}
