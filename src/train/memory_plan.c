/* The memory plan: bytes by category predicted from config.json alone. The weights, activations
 * and workspace come from the model's sizing functions (llama_model_storage_bytes,
 * llama_workspace_predict), the rest from the method's sizes op, which calls the sizing
 * functions its allocator calls; so predicted and allocated bytes agree by construction, and a
 * test checks that they do. */
#include <string.h>

#include "base/memory.h"
#include "train/method_select.h"

badam_status memory_plan_predict(const llama_config *mc, const train_config *cfg, int B, int T,
                                 memory_plan *out, badam_error *err) {
    memset(out, 0, sizeof *out);
    const train_method_ops *ops;
    badam_status st = train_method_select(cfg, &ops, err);
    if (st) return st;
    method_options o;
    train_method_options(cfg, &o);
    llama_model *m = NULL;
    if ((st = llama_model_describe(mc, cfg->dtype, &m, err))) return st;
    method_sizes z;
    memset(&z, 0, sizeof z);
    st = ops->sizes(m, &o, &z, err);
    llama_model_free(m);
    if (st) return st;

    for (int c = 0; c < BADAM_MEM_CATEGORY_COUNT; c++) out->bytes[c] = z.bytes[c];
    out->bytes[BADAM_MEM_WEIGHTS] = llama_model_storage_bytes(mc, cfg->dtype);
    llama_workspace_bytes wb = llama_workspace_predict_adapters(
        mc, cfg->dtype, B, T, z.adapter_rank, z.adapter_targets, z.bottleneck_size);
    size_t kept = (size_t)(mc->n_layers - z.first_layer);
    out->bytes[BADAM_MEM_ACTIVATIONS] =
        kept * (wb.input_per_layer + (cfg->recompute ? 0 : wb.activations_per_layer));
    out->bytes[BADAM_MEM_WORKSPACE] = wb.workspace;
    for (int c = 0; c < BADAM_MEM_CATEGORY_COUNT; c++) out->total += out->bytes[c];
    out->n_blocks = z.n_blocks;
    out->largest_block = z.largest_block;
    out->trainable = z.trainable;
    out->params = llama_param_count(mc);
    return BADAM_OK;
}
