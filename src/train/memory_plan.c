/* The memory plan: bytes by category predicted from config.json alone. The weights, activations
 * and workspace come from the model family's sizing functions (its model_arch: the parameter
 * table's storage, as llama_model_storage_bytes computes it, and workspace_predict), the rest
 * from the method's sizes op, which calls the sizing functions its allocator calls; so predicted
 * and allocated bytes agree by construction, and a test checks that they do. */
#include <string.h>

#include "badam/model.h"
#include "base/memory.h"
#include "train/encoder_data.h"
#include "train/method_select.h"

/* Bytes of a described model's weight storage in its dtype (llama_model_storage_bytes's sum). */
static size_t storage_bytes(const llama_model *m) {
    size_t total = 0;
    for (int i = 0; i < m->n_params; i++)
        total += badam_alloc_size(m->params[i].numel * badam_dtype_size(m->dtype));
    return badam_alloc_size(total);
}

badam_status memory_plan_predict(const llama_config *mc, const train_config *cfg, int B, int T,
                                 memory_plan *out, badam_error *err) {
    memset(out, 0, sizeof *out);
    const train_method_ops *ops;
    badam_status st = train_method_select(cfg, &ops, err);
    if (st) return st;
    method_options o;
    train_method_options(cfg, &o);
    char head[64]; /* an encoder's head is trained in every block (encoder_data.h) */
    if (mc->encoder_head != LLAMA_HEAD_NONE && (st = encoder_method_check(cfg, err))) return st;
    if (mc->encoder_head != LLAMA_HEAD_NONE && !o.partition.always_active)
        o.partition.always_active = encoder_head_prefixes(mc, head, sizeof head);
    const model_arch *arch = model_arch_find(mc->model_type);
    if (!arch)
        return badam_fail(err, BADAM_E_UNSUPPORTED, "memory plan: no model family serves '%s'",
                          mc->model_type);
    llama_model *m = NULL;
    if ((st = arch->describe(mc, cfg->dtype, &m, err))) return st;
    method_sizes z;
    memset(&z, 0, sizeof z);
    st = ops->sizes(m, &o, &z, err);
    size_t weights = storage_bytes(m), params = 0;
    for (int i = 0; i < m->n_params; i++) params += m->params[i].numel;
    arch->free(m);
    if (st) return st;

    for (int c = 0; c < BADAM_MEM_CATEGORY_COUNT; c++) out->bytes[c] = z.bytes[c];
    out->bytes[BADAM_MEM_WEIGHTS] = weights;
    llama_workspace_bytes wb = arch->workspace_predict(mc, cfg->dtype, B, T, z.adapter_rank,
                                                       z.adapter_targets, z.bottleneck_size);
    size_t kept = (size_t)(mc->n_layers - z.first_layer);
    out->bytes[BADAM_MEM_ACTIVATIONS] =
        kept * (wb.input_per_layer + (cfg->recompute ? 0 : wb.activations_per_layer));
    out->bytes[BADAM_MEM_WORKSPACE] = wb.workspace;
    for (int c = 0; c < BADAM_MEM_CATEGORY_COUNT; c++) out->total += out->bytes[c];
    out->n_blocks = z.n_blocks;
    out->largest_block = z.largest_block;
    out->trainable = z.trainable;
    out->params = params;
    return BADAM_OK;
}
