/* Where a run computes: "cpu" (the default) or "cuda" (one NVIDIA GPU; a build with
 * cmake -DBADAM_CUDA=ON, which is off by default and has NOT yet run on a GPU: README.md, CUDA). */
#ifndef BADAM_DEVICE_H
#define BADAM_DEVICE_H

#include <stddef.h>

#include "badam/status.h"

/* BADAM_OK when `device` (NULL: "cpu") names a device this build and machine can run on.
 * Errors: BADAM_E_INVALID for an unknown name; BADAM_E_UNSUPPORTED for "cuda" in a build without
 * CUDA or on a machine without a GPU (the message says which). */
badam_status badam_device_check(const char *device, badam_error *err);

/* Free and total memory of the device in bytes as the driver reports them (cudaMemGetInfo, the
 * CUDA context's own memory already taken) and its name (name_bytes with the terminator).
 * Errors as badam_device_check's; "cpu" is BADAM_E_UNSUPPORTED (host memory is not reported
 * here). */
badam_status badam_device_memory(const char *device, size_t *free_bytes, size_t *total_bytes,
                                 char *name, size_t name_bytes, badam_error *err);

#endif
