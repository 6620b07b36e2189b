#include "base/memory.h"

#include <stdlib.h>
#include <string.h>

void *badam_alloc(size_t bytes) {
    if (bytes == 0) bytes = BADAM_ALIGNMENT;
    size_t rounded = (bytes + BADAM_ALIGNMENT - 1) / BADAM_ALIGNMENT * BADAM_ALIGNMENT;
    if (rounded < bytes) return NULL;
    void *p = aligned_alloc(BADAM_ALIGNMENT, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}

void *badam_alloc_array(size_t count, size_t size) {
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes)) return NULL;
    return badam_alloc(bytes);
}

void badam_free(void *p) {
    free(p);
}
