/* Aligned allocation for tensors and workspaces, accounted by category so a run can report the
 * bytes it actually holds next to the bytes its memory plan predicted. */
#ifndef BADAM_BASE_MEMORY_H
#define BADAM_BASE_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#define BADAM_ALIGNMENT 64

typedef enum badam_mem_category {
    BADAM_MEM_OTHER = 0,
    BADAM_MEM_WEIGHTS,     /* stored parameters (bf16 or fp32) */
    BADAM_MEM_MASTER,      /* fp32 master copies of trainable parameters */
    BADAM_MEM_GRADIENTS,   /* fp32 gradients */
    BADAM_MEM_OPTIMIZER,   /* optimizer state (Adam m and v) */
    BADAM_MEM_ACTIVATIONS, /* activations kept for backward */
    BADAM_MEM_WORKSPACE,   /* scratch: gradient temporaries, loss chunk, tables */
    BADAM_MEM_CATEGORY_COUNT
} badam_mem_category;

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

/* Bytes currently held, and the most ever held at once, per category (process-wide). */
size_t badam_mem_current(badam_mem_category category);
size_t badam_mem_peak(badam_mem_category category);
/* Sum over categories of current bytes, and its peak. */
size_t badam_mem_current_total(void);
size_t badam_mem_peak_total(void);
void badam_mem_reset_peaks(void);
const char *badam_mem_category_name(badam_mem_category category);

/* Peak resident set size of this process in bytes (getrusage), 0 when unavailable. */
size_t badam_peak_rss(void);
/* Current resident set size in bytes (/proc/self/statm), 0 when unavailable. */
size_t badam_current_rss(void);

#endif
