/* Architecture-neutral tags of a model's parameters: the module group a tensor belongs to and
 * its role inside that group. Partitions (optim/partition.c) and adapter targets (LoRA) select
 * parameters by (layer, group, role) and never by an architecture's kinds or name patterns, so a
 * new model family only has to tag its parameter table. */
#ifndef BADAM_MODEL_TAGS_H
#define BADAM_MODEL_TAGS_H

#include <stdint.h>

/* The module a parameter belongs to. A norm belongs to the module it feeds (Llama's
 * input_layernorm: ATTENTION; post_attention_layernorm: MLP; the final norm: HEAD). */
typedef enum model_group {
    MODEL_GROUP_EMBEDDING = 0, /* token (and position, token-type) embeddings, layer -1 */
    MODEL_GROUP_ATTENTION,     /* attention projections, their biases and norm */
    MODEL_GROUP_MLP,           /* feed-forward projections, their biases and norm */
    MODEL_GROUP_HEAD,          /* final norm, output / classification head, layer -1 */
    MODEL_GROUP_OTHER,
    MODEL_GROUP_COUNT
} model_group;

/* What a parameter does inside its group. The projection roles carry the numbers of the
 * matching llama_param_kind values (Q = LLAMA_P_Q, ...), so an adapter target mask
 * (bit 1u << role) means what it meant when it was a mask of Llama kinds: run records and
 * checkpoints store such masks. */
typedef enum model_role {
    MODEL_ROLE_EMBED = 0, /* an embedding table [V, C] */
    MODEL_ROLE_NORM = 1,  /* a norm's weight (or its bias, with bias = 1) */
    MODEL_ROLE_Q = 2,     /* attention query projection */
    MODEL_ROLE_K = 3,
    MODEL_ROLE_V = 4,
    MODEL_ROLE_O = 5,     /* attention output projection */
    MODEL_ROLE_GATE = 11, /* gated MLP: gate projection */
    MODEL_ROLE_UP = 12,   /* MLP input projection (BERT: intermediate.dense) */
    MODEL_ROLE_DOWN = 13, /* MLP output projection (BERT: output.dense) */
    MODEL_ROLE_OTHER = 14,
    MODEL_ROLE_HEAD = 15, /* output projection to the vocabulary or the classes */
    MODEL_ROLE_COUNT = 16
} model_role;

/* A parameter's tag: group, role, and whether it is the bias of that role's weight. */
typedef struct model_tag {
    int8_t group; /* model_group */
    int8_t role;  /* model_role */
    int8_t bias;  /* 1: the bias vector of the (group, role) weight of the same layer */
} model_tag;

/* 1 when the role is a linear projection LoRA may adapt (q, k, v, o, gate, up, down). */
static inline int model_role_is_projection(int role) {
    return (role >= MODEL_ROLE_Q && role <= MODEL_ROLE_O) ||
           (role >= MODEL_ROLE_GATE && role <= MODEL_ROLE_DOWN);
}

#endif
