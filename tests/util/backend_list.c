/* The backends under test (backend_list.h): one line each. */
#include "backend_list.h"

#include <stdlib.h>

#include "model/cuda/cuda_backend.h"
#include "mprotect_backend.h"

/* The CUDA backend with its shared-memory tiled attention (BADAM_CUDA_ATTN=tiled, read at
 * creation). */
static badam_status cuda_tiled_create(backend **out, badam_error *err) {
    setenv("BADAM_CUDA_ATTN", "tiled", 1);
    badam_status st = backend_cuda_create(out, err);
    unsetenv("BADAM_CUDA_ATTN");
    return st;
}

const test_backend_entry TEST_BACKENDS[] = {
    {"cpu", backend_cpu_create},
    /* the CPU backend with its memory PROT_NONE between ops (tests/util/mprotect_backend.h) */
    {"mprotect", mprotect_backend_create},
    /* the CUDA backend (src/model/cuda): skipped without the CUDA build or without a GPU */
    {"cuda", backend_cuda_create},
    {"cuda-tiled", cuda_tiled_create},
};
const int TEST_BACKEND_COUNT = (int)(sizeof TEST_BACKENDS / sizeof TEST_BACKENDS[0]);
