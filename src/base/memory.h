/* Aligned allocation for tensors and workspaces, accounted by category (badam/memory.h) so a run
 * can report the bytes it actually holds next to the bytes its memory plan predicted. */
#ifndef BADAM_BASE_MEMORY_H
#define BADAM_BASE_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "badam/memory.h"

#define BADAM_ALIGNMENT 64

/* Bytes an allocation of `bytes` really occupies (rounded up to the alignment). */
size_t badam_alloc_size(size_t bytes);

/* Zero-filled, BADAM_ALIGNMENT-aligned block of `bytes` (NULL on failure or overflow), counted
 * in `category`. */
void *badam_alloc_in(badam_mem_category category, size_t bytes);
void *badam_alloc_array_in(badam_mem_category category, size_t count, size_t size);
/* Frees a block from badam_alloc_in (NULL is fine). */
void badam_free(void *p);

/* Uncategorised (BADAM_MEM_OTHER) shorthands. */
void *badam_alloc(size_t bytes);
void *badam_alloc_array(size_t count, size_t size);

/* Number of successful badam_alloc_in calls so far (process-wide): the trainer reports how many
 * a step made (0 in steady state). */
uint64_t badam_alloc_count(void);

#endif
