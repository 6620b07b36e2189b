/* The device side of a run with --device cuda (train_run, trainer.c): after the run, its memory
 * on the GPU by category (the CUDA backend's pool peaks) beside the memory plan's prediction,
 * and the device's use as cudaMemGetInfo reports it, the CUDA context included. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/log.h"
#include "badam/model.h"
#include "model/cuda/cuda_backend.h"
#include "train/trainer_internal.h"

void train_log_device_memory(const train_config *c, const backend *be, const train_report *r) {
    cuda_memory_report m;
    badam_error err = {0};
    if (backend_cuda_memory(be, &m, &err)) {
        badam_logf(&c->log, BADAM_LOG_INFO, "  device memory: %s", err.message);
        return;
    }
    char line[768];
    size_t used = (size_t)snprintf(line, sizeof line, "  device memory (pool peak / plan):");
    for (int cat = 1; cat < BADAM_MEM_CATEGORY_COUNT && used < sizeof line; cat++)
        used += (size_t)snprintf(line + used, sizeof line - used, " %s %.1f/%.1f MiB%s",
                                 badam_mem_category_name(cat), m.by_category[cat] / 1048576.0,
                                 r->predicted.bytes[cat] / 1048576.0,
                                 cat + 1 < BADAM_MEM_CATEGORY_COUNT ? "," : "");
    badam_logf(&c->log, BADAM_LOG_INFO, "%s", line);
    double gib = 1073741824.0, peak = (double)(m.device_used - m.pool_bytes + m.pool_peak);
    badam_logf(&c->log, BADAM_LOG_INFO,
               "  device peak %.2f GiB of %.2f (cudaMemGetInfo, CUDA context included; pool "
               "%.2f GiB reserved, %.2f GiB used at most)",
               peak / gib, m.device_total / gib, m.pool_bytes / gib, m.pool_peak / gib);
}

badam_status train_device_refuse(const train_config *c, badam_error *err) {
    const char *name = c->method_name ? c->method_name : train_method_name(c->method);
    if (name && (!strcmp(name, "lora") || !strcmp(name, "mezo-lora")))
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "--device cuda: --method %s is not supported on cuda yet (its adapters "
                          "are host memory)",
                          name);
    return BADAM_OK;
}

static int on_cuda(const backend *be) {
    return be && be->ops && be->ops->name && !strcmp(be->ops->name, "cuda");
}

badam_status train_device_keep_weights(backend *be, void *storage, size_t bytes, badam_error *err) {
    const char *env = getenv("BADAM_CUDA_RESIDENT");
    if (!on_cuda(be) || (env && !strcmp(env, "0"))) return BADAM_OK;
    return backend_cuda_keep_weights(be, storage, bytes, err);
}

badam_status train_device_sync_weights(backend *be, badam_error *err) {
    return on_cuda(be) ? backend_cuda_sync_weights(be, err) : BADAM_OK;
}

void train_device_drop_weights(backend *be) {
    if (on_cuda(be)) backend_cuda_keep_weights(be, NULL, 0, NULL);
}

/* The pool's margin over the memory plan: what the CUDA backend holds beside the plan's
 * categories (cuBLASLt's 32 MiB workspace, the bf16-rounded GEMM operands, attention deltas,
 * staging of host operands such as the validation logits) and the pool's 256-byte rounding and
 * fragmentation: 256 MiB + 1/16 of the plan's total. */
#define POOL_MARGIN_FIXED ((size_t)256 << 20)
#define POOL_MARGIN_SHIFT 4

/* The plan's total for c's run on the model's config.json (rows: the whole micro-batch). */
static badam_status plan_total(const train_config *c, memory_plan *plan, llama_config *mc,
                               badam_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", c->model_dir ? c->model_dir : ".");
    const model_arch *arch = NULL;
    badam_status st = model_arch_for_folder(c->model_dir ? c->model_dir : ".", &arch, err);
    if (!st) st = arch->config_load(path, mc, err);
    if (!st) st = memory_plan_predict(mc, c, c->batch_size, c->seq_len, plan, err);
    return st ? badam_error_prefix(err, "--device cuda: sizing the pool from the memory plan")
              : BADAM_OK;
}

badam_status train_device_create(const train_config *c, backend **be, badam_error *err) {
    *be = NULL;
    const char *mb = getenv("BADAM_CUDA_POOL_MB");
    if (mb && atol(mb) > 0) return backend_cuda_create(be, err); /* the user's size */
    memory_plan plan;
    llama_config mc;
    badam_status st = plan_total(c, &plan, &mc, err);
    if (st) return st;
    size_t margin = POOL_MARGIN_FIXED + (plan.total >> POOL_MARGIN_SHIFT);
    const char *g = getenv("BADAM_GEMM"); /* fp32 GEMMs on half weights: a weight as fp32 */
    if (g && !strcmp(g, "fp32") && c->dtype != BADAM_DTYPE_F32) {
        size_t big = (size_t)mc.vocab_size * (size_t)mc.hidden_size;
        size_t mlp = (size_t)mc.intermediate_size * (size_t)mc.hidden_size;
        margin += 4 * (big > mlp ? big : mlp);
    }
    size_t want = plan.total + margin, free_b = 0, total_b = 0;
    char name[128];
    st = backend_cuda_mem_info(&free_b, &total_b, name, sizeof name, err);
    if (st) return st;
    double mib = 1048576.0;
    if (want > free_b)
        return badam_fail(err, BADAM_E_NOMEM,
                          "--device cuda: the run needs a %.0f MiB pool (memory plan %.0f MiB + "
                          "margin %.0f MiB) but %s has %.0f MiB free of %.0f MiB (cudaMemGetInfo); "
                          "lower --batch-size or --seq-len, or set BADAM_CUDA_POOL_MB",
                          want / mib, plan.total / mib, margin / mib, name, free_b / mib,
                          total_b / mib);
    badam_logf(&c->log, BADAM_LOG_INFO,
               "  device pool %.0f MiB (memory plan %.0f MiB + margin %.0f MiB) on %s, %.0f MiB "
               "free",
               want / mib, plan.total / mib, margin / mib, name, free_b / mib);
    return backend_cuda_create_sized(be, want, err);
}
