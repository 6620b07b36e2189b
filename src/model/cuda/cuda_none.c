/* The CUDA backend's entry points in a build without it (cmake -DBADAM_CUDA=OFF, the default):
 * every call says so. */
#include <string.h>

#include "model/cuda/cuda_backend.h"

static badam_status not_built(badam_error *err) {
    return badam_fail(err, BADAM_E_UNSUPPORTED,
                      "--device cuda: this badam was built without CUDA (cmake -DBADAM_CUDA=ON)");
}

int backend_cuda_built(void) {
    return 0;
}

badam_status backend_cuda_create_sized(backend **out, size_t pool_bytes, badam_error *err) {
    (void)pool_bytes;
    *out = NULL;
    return not_built(err);
}

badam_status backend_cuda_create(backend **out, badam_error *err) {
    *out = NULL;
    return not_built(err);
}

badam_status backend_cuda_status(backend *be, badam_error *err) {
    (void)be;
    return not_built(err);
}

badam_status backend_cuda_mem_info(size_t *free_bytes, size_t *total_bytes, char *name,
                                   size_t name_bytes, badam_error *err) {
    *free_bytes = *total_bytes = 0;
    if (name && name_bytes) name[0] = '\0';
    return not_built(err);
}

size_t backend_cuda_pool_used(const backend *be) {
    (void)be;
    return 0;
}

size_t backend_cuda_pool_peak(const backend *be) {
    (void)be;
    return 0;
}

badam_status backend_cuda_memory(const backend *be, cuda_memory_report *out, badam_error *err) {
    (void)be;
    memset(out, 0, sizeof *out);
    return not_built(err);
}

badam_status backend_cuda_keep_weights(backend *be, void *host, size_t bytes, badam_error *err) {
    (void)be, (void)host, (void)bytes;
    return not_built(err);
}

badam_status backend_cuda_sync_weights(backend *be, badam_error *err) {
    (void)be;
    return not_built(err);
}
