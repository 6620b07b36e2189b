/* The CUDA backend (src/model/cuda, built with cmake -DBADAM_CUDA=ON; without it
 * cuda_none.c answers every call with BADAM_E_UNSUPPORTED). NOT YET RUN ON A GPU: it compiles
 * with nvcc and -Werror, and scripts/device_check.sh runs its tests on one.
 *
 * Memory: one device pool (a single cudaMalloc at creation) from which alloc hands out 256-byte
 * aligned blocks; nothing is allocated from the driver after creation. Pointers outside the pool
 * are host memory (backend.h allows it for w, table, src and the write-back copies): ops stage
 * them through a region of the pool (and copy written ones back), a host-device copy per use.
 * A training run avoids that for the model's weights with backend_cuda_keep_weights: their
 * storage is uploaded once into the pool and from then on every op that gets a pointer into the
 * host storage reads and writes the device copy instead (no weight traffic in a step);
 * backend_cuda_sync_weights brings the host storage up to date before the host reads it
 * (checkpoints, the saved model).
 *
 * Errors: backend.h's ops return nothing, so the first failure (a CUDA error, an op this backend
 * does not support, the pool exhausted) is kept in the context and returned by
 * backend_cuda_status; later ops still run but their results are undefined. GEMM operands other
 * than the weight must be device memory: LoRA's adapters and their gradients (host memory today)
 * are refused that way ("gemm_f32: an operand in host memory ... not supported on cuda"). */
#ifndef BADAM_MODEL_CUDA_BACKEND_H
#define BADAM_MODEL_CUDA_BACKEND_H

#include <stddef.h>

#include "model/backend.h"

/* 1 when this build has the CUDA backend (cmake -DBADAM_CUDA=ON), else 0. */
int backend_cuda_built(void);

/* The CUDA backend on device 0 with a pool of pool_bytes (0: the device's free memory less
 * 512 MiB, or BADAM_CUDA_POOL_MB megabytes when that variable is set). Errors:
 * BADAM_E_UNSUPPORTED without the CUDA build or without a GPU (the message says which),
 * BADAM_E_NOMEM when the pool cannot be allocated. */
badam_status backend_cuda_create_sized(backend **out, size_t pool_bytes, badam_error *err);
/* backend_cuda_create_sized(out, 0, err): the signature of tests/util/backend_list.h */
badam_status backend_cuda_create(backend **out, badam_error *err);

/* Makes the host region [host, host + bytes) (a model's weight storage) resident: a pool block
 * of `bytes` (counted as BADAM_MEM_WEIGHTS) receives a copy, and ops given a pointer into the
 * region use its place in that copy instead; the host region is then stale until
 * backend_cuda_sync_weights. One region at a time (a second call replaces the first, after
 * syncing it; host NULL drops the copy without syncing). Errors: BADAM_E_NOMEM naming the sizes
 * when the pool has no room, BADAM_E_IO for a failed upload, BADAM_E_INVALID when be is not a CUDA
 * backend. */
badam_status backend_cuda_keep_weights(backend *be, void *host, size_t bytes, badam_error *err);
/* Copies the resident weights back into their host region (nothing when none are resident).
 * Errors: BADAM_E_IO for a failed download, BADAM_E_INVALID when be is not a CUDA backend. */
badam_status backend_cuda_sync_weights(backend *be, badam_error *err);

/* The first error an op of be met (BADAM_OK when none), copied into err. */
badam_status backend_cuda_status(backend *be, badam_error *err);

/* Device 0's free and total memory in bytes (cudaMemGetInfo) and its name (name_bytes with the
 * terminator). Errors as backend_cuda_create. */
badam_status backend_cuda_mem_info(size_t *free_bytes, size_t *total_bytes, char *name,
                                   size_t name_bytes, badam_error *err);

/* Bytes the pool holds in use now and at most since creation (the device-side counterpart of
 * base/memory.h's accounting; 0 for a backend that is not CUDA). */
size_t backend_cuda_pool_used(const backend *be);
size_t backend_cuda_pool_peak(const backend *be);

/* What a run on be held on the device: the pool's peak bytes by badam_mem_category
 * (by_category[BADAM_MEM_CATEGORY_COUNT]; staging and scratch count as workspace), the pool's
 * peak and size, and the device memory in use now by every allocation of the process, the CUDA
 * context included (cudaMemGetInfo: total - free). The peak a run needed is then
 * device_used - pool_bytes + pool_peak. Errors as backend_cuda_create's; BADAM_E_INVALID when be
 * is not a CUDA backend. */
typedef struct cuda_memory_report {
    size_t by_category[BADAM_MEM_CATEGORY_COUNT];
    size_t pool_peak, pool_bytes, device_used, device_total;
} cuda_memory_report;
badam_status backend_cuda_memory(const backend *be, cuda_memory_report *out, badam_error *err);

#endif
