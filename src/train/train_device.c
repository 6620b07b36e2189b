/* The device side of a run with --device cuda (train_run, trainer.c): after the run, its memory
 * on the GPU by category (the CUDA backend's pool peaks) beside the memory plan's prediction,
 * and the device's use as cudaMemGetInfo reports it, the CUDA context included. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/log.h"
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
