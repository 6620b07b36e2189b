/* badam/device.h: device names and the CUDA device's memory (model/cuda/cuda_backend.h). */
#include "badam/device.h"

#include <string.h>

#include "model/cuda/cuda_backend.h"

static int is_cpu(const char *device) {
    return !device || !strcmp(device, "cpu");
}

badam_status badam_device_check(const char *device, badam_error *err) {
    if (is_cpu(device)) return BADAM_OK;
    if (strcmp(device, "cuda"))
        return badam_fail(err, BADAM_E_INVALID, "--device: '%s' is not a device (cpu or cuda)",
                          device);
    size_t f, t;
    return backend_cuda_mem_info(&f, &t, NULL, 0, err);
}

badam_status badam_device_memory(const char *device, size_t *free_bytes, size_t *total_bytes,
                                 char *name, size_t name_bytes, badam_error *err) {
    *free_bytes = *total_bytes = 0;
    badam_status st = badam_device_check(device, err);
    if (st) return st;
    if (is_cpu(device))
        return badam_fail(err, BADAM_E_UNSUPPORTED, "--device cpu: no device memory to report");
    return backend_cuda_mem_info(free_bytes, total_bytes, name, name_bytes, err);
}
