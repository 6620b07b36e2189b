/* Training configuration: defaults, method names, and the method a configuration chooses. */
#include <string.h>

#include "train/method_select.h"

_Static_assert(METHOD_COUNT == TRAIN_METHOD_BUILTIN_COUNT,
               "train_method lists the built-in methods of optim/method_registry.c");

badam_status train_method_parse(const char *name, train_method *m, badam_error *err) {
    for (int i = 0; i < METHOD_COUNT; i++)
        if (!strcmp(name, train_method_builtin(i)->name)) {
            *m = (train_method)i;
            return BADAM_OK;
        }
    return badam_fail(err, BADAM_E_INVALID,
                      "unknown method '%s' (choose badam, adam, lora, lomo, sgd-bcd, badam-ratio, "
                      "mezo, mezo-lora, galore or adapter)",
                      name);
}

const char *train_method_name(train_method m) {
    return train_method_builtin((int)m)->name;
}

badam_status train_method_select(const train_config *c, const train_method_ops **ops,
                                 badam_error *err) {
    *ops = c->method_name ? train_method_find(c->methods, c->method_name)
                          : train_method_builtin((int)c->method);
    if (!*ops)
        return badam_fail(err, BADAM_E_INVALID, "unknown method '%s'",
                          c->method_name ? c->method_name : "(out of range)");
    return BADAM_OK;
}

void train_method_options(const train_config *c, method_options *o) {
    memset(o, 0, sizeof *o);
    o->dtype = c->dtype;
    o->weight_decay = c->weight_decay;
    o->adam = (adamw_hparams){c->beta1, c->beta2, c->eps};
    o->clip = c->clip;
    o->grad_accum = c->grad_accum;
    o->seed = c->seed;
    o->switch_every = c->switch_every;
    o->order = c->order;
    o->start_block = c->start_block;
    o->partition = c->partition;
    o->reference_compat = c->reference_compat;
    o->effective_batch = c->batch_size * c->grad_accum;
    o->lora_rank = c->lora_rank;
    o->lora_alpha = c->lora_alpha, o->lora_dropout = c->lora_dropout;
    o->lora_targets = c->lora_targets;
    o->init_adapter = c->init_adapter;
    o->update_ratio = c->update_ratio, o->mask_scatter = c->mask_scatter;
    o->mezo_eps = c->mezo_eps, o->mezo_samples = c->mezo_samples;
    o->galore_rank = c->galore_rank, o->galore_update_gap = c->galore_update_gap;
    o->galore_scale = c->galore_scale, o->galore_per_layer = c->galore_per_layer;
    o->adapter_size = c->adapter_size;
}

void train_config_defaults(train_config *c) {
    memset(c, 0, sizeof *c);
    c->method = METHOD_BADAM;
    c->dtype = BADAM_DTYPE_BF16;
    c->switch_every = 0;
    c->order = BLOCK_ORDER_RANDOM;
    c->start_block = -1;
    c->partition.kind = PARTITION_LAYER;
    c->lr = 1e-5f;
    c->beta1 = 0.9f, c->beta2 = 0.999f, c->eps = 1e-8f;
    c->schedule = LR_COSINE;
    c->clip = -1.0f;
    c->epochs = 1;
    c->batch_size = 2, c->grad_accum = 1, c->seq_len = 512;
    c->seed = 42;
    c->lora_rank = 8, c->lora_alpha = 16.0f;
    c->lora_targets = (1u << LLAMA_P_Q) | (1u << LLAMA_P_K) | (1u << LLAMA_P_V) |
                      (1u << LLAMA_P_O) | (1u << LLAMA_P_GATE) | (1u << LLAMA_P_UP) |
                      (1u << LLAMA_P_DOWN);
    c->update_ratio = 0.1f;
    c->mezo_eps = 1e-3f, c->mezo_samples = 1;
    c->adapter_size = 64;
    c->galore_rank = 128, c->galore_update_gap = 200, c->galore_scale = 0.25f;
    c->shuffle = 1;
    c->group_by_length = 1;
    c->max_shard_bytes = (size_t)5 << 30;
}
