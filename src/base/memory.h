/* Aligned allocation for tensors and workspaces. */
#ifndef BADAM_BASE_MEMORY_H
#define BADAM_BASE_MEMORY_H

#include <stddef.h>

#define BADAM_ALIGNMENT 64

/* Zero-filled, BADAM_ALIGNMENT-aligned block of `bytes` (NULL on failure or overflow). */
void *badam_alloc(size_t bytes);
/* As badam_alloc for count * size bytes, NULL when the product overflows. */
void *badam_alloc_array(size_t count, size_t size);
void badam_free(void *p);

#endif
