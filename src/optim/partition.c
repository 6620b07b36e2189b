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

/* Structural partitions read only the parameters' layers and tags (model_tags.h), never an
 * architecture's kinds: a layer block holds a layer's parameters; a module block a layer's
 * parameters of one group (attention or MLP, each with the norm feeding it); a matrix block one
 * weight with its bias, a norm joining the first weight of its group. Block names come from the
 * parameter names: the layer's common prefix ("model.layers.3."), that prefix with the group's
 * common module name and its norm ("model.layers.3.self_attn+input_layernorm"), or the weight's
 * name without its last part ("model.layers.3.self_attn.q_proj."). */

static size_t common_len(const char *a, const char *b) {
    size_t n = 0;
    while (a[n] && a[n] == b[n]) n++;
    return n;
}

/* n shortened to just after the last '.' within s[0..n), or 0. */
static size_t cut_after_dot(const char *s, size_t n) {
    while (n > 0 && s[n - 1] != '.') n--;
    return n;
}

/* The common name prefix of layer l's parameters, up to and including a '.'. */
static size_t layer_prefix_len(const llama_model *m, int l) {
    const char *first = NULL;
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++) {
        if (m->params[i].layer != l) continue;
        if (!first)
            first = m->params[i].name, n = strlen(first);
        else if (common_len(first, m->params[i].name) < n)
            n = common_len(first, m->params[i].name);
    }
    return first ? cut_after_dot(first, n) : 0;
}

static int same_group(const llama_param *a, const llama_param *b) {
    return a->layer == b->layer && a->tag.group == b->tag.group;
}

/* The weight parameter i joins in the matrix partition: its own index for a weight; for a bias,
 * the weight of its role; for a norm, the first weight (table order) of its group. */
static int matrix_anchor(const llama_model *m, int i) {
    const llama_param *p = &m->params[i];
    int norm = p->tag.role == MODEL_ROLE_NORM;
    if (!norm && !p->tag.bias) return i;
    for (int j = 0; j < m->n_params; j++) {
        const llama_param *q = &m->params[j];
        if (!same_group(p, q) || q->tag.bias || q->tag.role == MODEL_ROLE_NORM) continue;
        if (norm || q->tag.role == p->tag.role) return j;
    }
    return i;
}

/* "model.layers.3.self_attn+input_layernorm": the layer prefix, the common module name of the
 * group's weights and biases, and the names of its norms (each without its last part). */
static void module_block_name(const llama_model *m, int l, int group, char *out, size_t size) {
    size_t pre = layer_prefix_len(m, l), mod = 0;
    const char *layer_name = NULL, *mod_name = NULL;
    char norms[128] = "";
    for (int i = 0; i < m->n_params; i++) {
        const llama_param *q = &m->params[i];
        if (q->layer != l) continue;
        if (!layer_name) layer_name = q->name;
        if (q->tag.group != group) continue;
        const char *rest = q->name + pre;
        if (q->tag.role == MODEL_ROLE_NORM) {
            if (q->tag.bias) continue;
            size_t n = cut_after_dot(rest, strlen(rest)), used = strlen(norms);
            snprintf(norms + used, sizeof norms - used, "+%.*s", (int)(n ? n - 1 : strlen(rest)),
                     rest);
        } else if (!mod_name) {
            mod_name = rest, mod = strlen(rest);
        } else if (common_len(mod_name, rest) < mod) {
            mod = common_len(mod_name, rest);
        }
    }
    if (mod_name) mod = cut_after_dot(mod_name, mod);
    snprintf(out, size, "%.*s%.*s%s", (int)pre, layer_name ? layer_name : "",
             (int)(mod ? mod - 1 : 0), mod_name ? mod_name : "",
             mod ? norms : norms + (norms[0] == '+'));
}

/* The name of the block parameter i opens under `kind`. */
static void structural_block_name(const llama_model *m, partition_kind kind, int i, char *out,
                                  size_t size) {
    const llama_param *q = &m->params[i];
    if (kind == PARTITION_LAYER)
        snprintf(out, size, "%.*s", (int)layer_prefix_len(m, q->layer), q->name);
    else if (kind == PARTITION_MODULE)
        module_block_name(m, q->layer, q->tag.group, out, size);
    else
        snprintf(out, size, "%.*s", (int)cut_after_dot(q->name, strlen(q->name)), q->name);
}

static badam_status build_structural(const llama_model *m, partition_kind kind, block_partition *p,
                                     badam_error *err) {
    /* Blocks in model order; the block of a key (layer, layer and group, or matrix anchor) is
     * found through a small table. */
    int L = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].layer + 1 > L) L = m->params[i].layer + 1;
    size_t keys = (size_t)L * MODEL_GROUP_COUNT + (size_t)m->n_params;
    int *table = malloc(sizeof(int) * keys);
    if (!table) return badam_fail(err, BADAM_E_NOMEM, "partition: out of memory");
    for (size_t i = 0; i < keys; i++) table[i] = -1;
    for (int i = 0; i < m->n_params; i++) {
        const llama_param *q = &m->params[i];
        if (q->layer < 0) continue;
        int key = kind == PARTITION_LAYER    ? q->layer
                  : kind == PARTITION_MODULE ? q->layer * MODEL_GROUP_COUNT + q->tag.group
                                             : matrix_anchor(m, i);
        int *slot = &table[key];
        if (*slot < 0) {
            char name[192];
            structural_block_name(m, kind, kind == PARTITION_MATRIX ? key : i, name, sizeof name);
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

/* One block of the parameters outside the layers (layer -1) in `group`: the embeddings, or the
 * head (head weights first, then the final norm: "lm_head.,model.norm."; with a tied head only
 * "model.norm."). Named by the parameters' name prefixes, comma-separated. */
static badam_status add_global_block(const llama_model *m, int group, block_partition *p,
                                     badam_error *err) {
    char name[256] = "";
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < m->n_params; i++) {
            const llama_param *q = &m->params[i];
            int head_first = q->tag.role == MODEL_ROLE_HEAD || q->tag.role == MODEL_ROLE_EMBED;
            if (q->layer >= 0 || q->tag.group != group || head_first != !pass) continue;
            size_t used = strlen(name);
            snprintf(name + used, sizeof name - used, "%s%.*s", used ? "," : "",
                     (int)cut_after_dot(q->name, strlen(q->name)), q->name);
        }
    int b = add_block(p, name);
    if (b < 0) return badam_fail(err, BADAM_E_NOMEM, "partition: out of memory");
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].layer < 0 && m->params[i].tag.group == group) p->block_of[i] = b;
    return BADAM_OK;
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
    if (o->include_embedding) st = add_global_block(m, MODEL_GROUP_EMBEDDING, p, err);
    if (!st && o->kind == PARTITION_PREFIXES)
        st = build_prefixes(m, o->prefixes, p, err);
    else if (!st)
        st = build_structural(m, o->kind, p, err);
    if (!st && o->include_head) st = add_global_block(m, MODEL_GROUP_HEAD, p, err);
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
