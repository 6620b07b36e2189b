/* Memory by category: the bytes a run holds for weights, master copies, gradients, optimizer
 * state, activations and workspace (counted by the library's allocator, base/memory.h), and the
 * process's resident set size, so a run can report what it holds next to what its memory plan
 * predicted. */
#ifndef BADAM_MEMORY_H
#define BADAM_MEMORY_H

#include <stddef.h>
#include <stdint.h>

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
/* Memory the machine can give a new allocation without swapping, in bytes: MemAvailable of
 * /proc/meminfo (free memory plus the reclaimable caches, the kernel's estimate); 0 when
 * unavailable (not Linux). */
size_t badam_mem_available(void);

#endif
