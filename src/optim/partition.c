/* Block partitions of a model's parameters for block coordinate descent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/optim.h"

static const char *const KIND_NAMES[] = {"layer", "module", "matrix", "prefixes"};

badam_status partition_parse_kind(const char *name, partition_kind *kind, badam_error *err) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, KIND_NAMES[i])) {
            *kind = (partition_kind)i;
            return BADAM_OK;
        }
    return badam_fail(err, BADAM_E_INVALID,
                      "unknown partition '%s' (choose layer, module, matrix, or give prefixes)",
                      name);
}

void partition_free(block_partition *p) {
    for (int b = 0; p->block_name && b < p->n_blocks; b++) free(p->block_name[b]);
    free(p->block_name);
    free(p->block_of);
    free(p->always_active);
    free(p->block_numel);
    memset(p, 0, sizeof *p);
}

static int starts_with(const char *s, const char *prefix) {
    return !strncmp(s, prefix, strlen(prefix));
}

/* Adds a block named `name`; returns its index or -1 on allocation failure. */
static int add_block(block_partition *p, const char *name) {
    char **names = realloc(p->block_name, sizeof(char *) * (size_t)(p->n_blocks + 1));
    if (!names) return -1;
    p->block_name = names;
    p->block_name[p->n_blocks] = strdup(name);
    if (!p->block_name[p->n_blocks]) return -1;
    return p->n_blocks++;
}

/* The module-level group of a per-layer kind: 0 attention (norm, q, k, v, o, biases), 1 MLP. */
static int module_of(llama_param_kind k) {
    return k >= LLAMA_P_MLP_NORM ? 1 : 0;
}

/* The matrix a per-layer parameter belongs to in the matrix partition: biases follow their
 * matrix; input_layernorm joins q_proj, post_attention_layernorm joins gate_proj. */
static llama_param_kind matrix_of(llama_param_kind k) {
    switch (k) {
    case LLAMA_P_ATTN_NORM:
    case LLAMA_P_Q_BIAS:
        return LLAMA_P_Q;
    case LLAMA_P_K_BIAS:
        return LLAMA_P_K;
    case LLAMA_P_V_BIAS:
        return LLAMA_P_V;
    case LLAMA_P_O_BIAS:
        return LLAMA_P_O;
    case LLAMA_P_MLP_NORM:
        return LLAMA_P_GATE;
    default:
        return k;
    }
}

static badam_status build_structural(const llama_model *m, partition_kind kind, block_partition *p,
                                     badam_error *err) {
    /* Blocks in model order; the block of a (layer, group) is found through a small table. */
    int L = m->cfg.n_layers;
    int groups = kind == PARTITION_LAYER ? 1 : kind == PARTITION_MODULE ? 2 : LLAMA_P_KIND_COUNT;
    int *table = malloc(sizeof(int) * (size_t)L * groups);
    if (!table) return badam_fail(err, BADAM_E_NOMEM, "partition: out of memory");
    for (int i = 0; i < L * groups; i++) table[i] = -1;
    for (int i = 0; i < m->n_params; i++) {
        const llama_param *q = &m->params[i];
        if (q->layer < 0) continue;
        int g = kind == PARTITION_LAYER    ? 0
                : kind == PARTITION_MODULE ? module_of(q->kind)
                                           : (int)matrix_of(q->kind);
        int *slot = &table[q->layer * groups + g];
        if (*slot < 0) {
            char name[128];
            if (kind == PARTITION_LAYER)
                snprintf(name, sizeof name, "model.layers.%d.", q->layer);
            else if (kind == PARTITION_MODULE)
                snprintf(name, sizeof name, "model.layers.%d.%s", q->layer,
                         g ? "mlp+post_attention_layernorm" : "self_attn+input_layernorm");
            else {
                int mi = llama_param_index(m, q->layer, (llama_param_kind)g);
                snprintf(name, sizeof name, "%s", m->params[mi].name);
                char *dot = strrchr(name, '.');
                if (dot) dot[1] = '\0'; /* "model.layers.0.self_attn.q_proj." */
            }
            *slot = add_block(p, name);
            if (*slot < 0) {
                free(table);
                return badam_fail(err, BADAM_E_NOMEM, "partition: out of memory");
            }
        }
        p->block_of[i] = *slot;
    }
    free(table);
    return BADAM_OK;
}

/* "a.,b.;c." -> blocks {a., b.} and {c.}; every prefix must end in '.' and match something. */
static badam_status build_prefixes(const llama_model *m, const char *spec, block_partition *p,
                                   badam_error *err) {
    char *copy = strdup(spec ? spec : "");
    if (!copy) return badam_fail(err, BADAM_E_NOMEM, "partition: out of memory");
    badam_status st = BADAM_OK;
    char *save_block = NULL;
    for (char *blk = strtok_r(copy, ";", &save_block); blk && !st;
         blk = strtok_r(NULL, ";", &save_block)) {
        int b = add_block(p, blk);
        if (b < 0) {
            st = badam_fail(err, BADAM_E_NOMEM, "partition: out of memory");
            break;
        }
        char *save = NULL;
        for (char *pre = strtok_r(blk, ",", &save); pre && !st; pre = strtok_r(NULL, ",", &save)) {
            size_t n = strlen(pre);
            if (!n || pre[n - 1] != '.') {
                st = badam_fail(err, BADAM_E_INVALID,
                                "block prefix '%s' must end in '.' (e.g. model.layers.3.)", pre);
                break;
            }
            int matched = 0;
            for (int i = 0; i < m->n_params; i++)
                if (starts_with(m->params[i].name, pre)) {
                    if (p->block_of[i] >= 0 && p->block_of[i] != b)
                        st = badam_fail(err, BADAM_E_INVALID,
                                        "parameter '%s' is in two blocks (prefix '%s')",
                                        m->params[i].name, pre);
                    p->block_of[i] = b;
                    matched = 1;
                }
            if (!matched && !st)
                st =
                    badam_fail(err, BADAM_E_INVALID, "block prefix '%s' matches no parameter", pre);
        }
    }
    if (!st && p->n_blocks == 0) st = badam_fail(err, BADAM_E_INVALID, "no block prefixes given");
    free(copy);
    return st;
}

badam_status partition_build(const llama_model *m, const partition_options *o, block_partition *p,
                             badam_error *err) {
    memset(p, 0, sizeof *p);
    p->n_params = m->n_params;
    p->block_of = malloc(sizeof(int) * (size_t)m->n_params);
    p->always_active = calloc((size_t)m->n_params, 1);
    if (!p->block_of || !p->always_active) {
        partition_free(p);
        return badam_fail(err, BADAM_E_NOMEM, "partition: out of memory");
    }
    for (int i = 0; i < m->n_params; i++) p->block_of[i] = -1;
    badam_status st = BADAM_OK;
    if (o->include_embedding) {
        int b = add_block(p, "model.embed_tokens.");
        if (b < 0)
            st = badam_fail(err, BADAM_E_NOMEM, "partition: out of memory");
        else
            p->block_of[m->embed] = b;
    }
    if (!st && o->kind == PARTITION_PREFIXES)
        st = build_prefixes(m, o->prefixes, p, err);
    else if (!st)
        st = build_structural(m, o->kind, p, err);
    if (!st && o->include_head) {
        int b = add_block(p, m->cfg.tie_word_embeddings ? "model.norm." : "lm_head.,model.norm.");
        if (b < 0)
            st = badam_fail(err, BADAM_E_NOMEM, "partition: out of memory");
        else {
            p->block_of[m->final_norm] = b;
            if (m->lm_head != m->embed) p->block_of[m->lm_head] = b;
        }
    }
    if (!st && o->always_active && *o->always_active) {
        char *copy = strdup(o->always_active), *save = NULL;
        for (char *pre = strtok_r(copy, ",", &save); pre && !st; pre = strtok_r(NULL, ",", &save)) {
            int matched = 0;
            for (int i = 0; i < m->n_params; i++)
                if (starts_with(m->params[i].name, pre)) {
                    p->always_active[i] = 1;
                    p->block_of[i] = -1;
                    matched = 1;
                }
            if (!matched)
                st = badam_fail(err, BADAM_E_INVALID,
                                "always-active prefix '%s' matches no parameter", pre);
        }
        free(copy);
    }
    if (!st) {
        p->block_numel = calloc((size_t)(p->n_blocks ? p->n_blocks : 1), sizeof(size_t));
        if (!p->block_numel) st = badam_fail(err, BADAM_E_NOMEM, "partition: out of memory");
        for (int i = 0; !st && i < m->n_params; i++)
            if (p->block_of[i] >= 0) p->block_numel[p->block_of[i]] += m->params[i].numel;
        for (int b = 0; !st && b < p->n_blocks; b++)
            if (!p->block_numel[b])
                st = badam_fail(err, BADAM_E_INVALID, "block %d (%s) has no parameters", b,
                                p->block_name[b]);
    }
    if (st) partition_free(p);
    return st;
}

size_t partition_largest_block(const block_partition *p) {
    size_t largest = 0;
    for (int b = 0; b < p->n_blocks; b++)
        if (p->block_numel[b] > largest) largest = p->block_numel[b];
    return largest;
}

const char *partition_tied_head_note(const llama_config *cfg, const partition_options *opts) {
    if (!opts->include_head || !cfg->tie_word_embeddings) return NULL;
    return opts->include_embedding
               ? "lm_head is tied to the embedding: the head block holds only model.norm; the "
                 "tied matrix trains in the embedding block (--include-embedding)"
               : "lm_head is tied to the embedding: the head block holds only model.norm; the "
                 "tied matrix trains only with --include-embedding";
}
