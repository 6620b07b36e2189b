/* The memory plan: bytes by category predicted from config.json alone. It calls the same sizing
 * functions the allocators use (llama_model_storage_bytes, trainable_sizes_of,
 * llama_workspace_predict), so predicted and allocated bytes agree by construction; a test checks
 * that they do. */
#include <stdlib.h>
#include <string.h>

#include "base/memory.h"
#include "train/trainable.h"

static size_t floats_bytes(size_t floats) {
    return floats ? badam_alloc_size(floats * 4) : 0;
}

/* The lowest layer any block's plan keeps activations from. */
static int lowest_first_layer(const llama_model *m, const block_partition *part) {
    int lowest = m->cfg.n_layers;
    uint8_t *flags = calloc((size_t)m->n_params, 1);
    for (int b = 0; flags && b < part->n_blocks; b++) {
        for (int i = 0; i < m->n_params; i++)
            flags[i] = part->block_of[i] == b || part->always_active[i];
        llama_grad_plan plan;
        llama_plan_for_flags(m, flags, 0, &plan);
        int first = llama_plan_first_layer(m, &plan);
        if (first < lowest) lowest = first;
    }
    free(flags);
    return lowest;
}

static int popcount(uint32_t x) {
    return __builtin_popcount(x);
}

badam_status memory_plan_predict(const llama_config *mc, const train_config *cfg, int B, int T,
                                 memory_plan *out, badam_error *err) {
    memset(out, 0, sizeof *out);
    llama_model *m = NULL;
    badam_status st = llama_model_describe(mc, cfg->dtype, &m, err);
    if (st) return st;
    block_partition part;
    memset(&part, 0, sizeof part);
    int blockwise = cfg->method == METHOD_BADAM || cfg->method == METHOD_SGD_BCD;
    if (blockwise && (st = partition_build(m, &cfg->partition, &part, err))) {
        llama_model_free(m);
        return st;
    }
    int lora = cfg->method == METHOD_LORA;
    int rank = lora ? cfg->lora_rank : 0;
    uint32_t targets = lora ? cfg->lora_targets : 0;
    trainable_sizes z = trainable_sizes_of(m, cfg->method, &part, rank, targets);
    size_t lora_bytes = lora ? lora_tensor_bytes(m, rank, targets) : 0;

    out->bytes[BADAM_MEM_WEIGHTS] = llama_model_storage_bytes(mc, cfg->dtype);
    size_t master = !z.has_master    ? 0
                    : z.master_split ? badam_alloc_size(z.pool * sizeof(uint16_t))
                                     : floats_bytes(z.pool);
    out->bytes[BADAM_MEM_MASTER] = master + lora_bytes;
    out->bytes[BADAM_MEM_GRADIENTS] = (z.has_grad ? floats_bytes(z.pool) : 0) + lora_bytes +
                                      floats_bytes(z.lomo_matrix) + floats_bytes(z.lomo_vector);
    out->bytes[BADAM_MEM_OPTIMIZER] = z.has_moments ? 2 * floats_bytes(z.pool) : 0;
    llama_workspace_bytes wb =
        llama_workspace_predict(mc, cfg->dtype, B, T, rank, popcount(targets));
    int first = blockwise ? lowest_first_layer(m, &part) : 0;
    size_t kept = (size_t)(mc->n_layers - first);
    out->bytes[BADAM_MEM_ACTIVATIONS] =
        kept * (wb.input_per_layer + (cfg->recompute ? 0 : wb.activations_per_layer));
    out->bytes[BADAM_MEM_WORKSPACE] = wb.workspace;
    for (int c = 0; c < BADAM_MEM_CATEGORY_COUNT; c++) out->total += out->bytes[c];
    out->n_blocks = part.n_blocks;
    out->largest_block = blockwise ? partition_largest_block(&part) : 0;
    out->trainable = z.trainable;
    out->params = llama_param_count(mc);
    if (blockwise) partition_free(&part);
    llama_model_free(m);
    return BADAM_OK;
}
