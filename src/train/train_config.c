/* Training configuration: defaults and method names. */
#include <string.h>

#include "badam/train.h"

static const char *const METHOD_NAMES[METHOD_COUNT] = {"badam", "adam", "lora", "lomo", "sgd-bcd"};

badam_status train_method_parse(const char *name, train_method *m, badam_error *err) {
    for (int i = 0; i < METHOD_COUNT; i++)
        if (!strcmp(name, METHOD_NAMES[i])) {
            *m = (train_method)i;
            return BADAM_OK;
        }
    return badam_fail(err, BADAM_E_INVALID,
                      "unknown method '%s' (choose badam, adam, lora, lomo or sgd-bcd)", name);
}

const char *train_method_name(train_method m) {
    return METHOD_NAMES[m];
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
    c->shuffle = 1;
    c->group_by_length = 1;
    c->max_shard_bytes = (size_t)5 << 30;
}
