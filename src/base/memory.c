#include "base/memory.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Each block carries a header (one alignment unit) recording its size and category. */
typedef struct block_header {
    size_t bytes;
    int category;
} block_header;

static atomic_size_t current_bytes[BADAM_MEM_CATEGORY_COUNT];
static atomic_size_t peak_bytes[BADAM_MEM_CATEGORY_COUNT];
static atomic_size_t current_all, peak_all;

static void raise_peak(atomic_size_t *peak, size_t value) {
    size_t old = atomic_load(peak);
    while (value > old && !atomic_compare_exchange_weak(peak, &old, value)) {
    }
}

size_t badam_alloc_size(size_t bytes) {
    if (bytes == 0) bytes = 1;
    return (bytes + BADAM_ALIGNMENT - 1) / BADAM_ALIGNMENT * BADAM_ALIGNMENT;
}

static atomic_uint_fast64_t alloc_calls;

uint64_t badam_alloc_count(void) {
    return atomic_load(&alloc_calls);
}

void *badam_alloc_in(badam_mem_category category, size_t bytes) {
    size_t body = badam_alloc_size(bytes);
    if (body < bytes || body > SIZE_MAX - BADAM_ALIGNMENT) return NULL;
    char *raw = aligned_alloc(BADAM_ALIGNMENT, body + BADAM_ALIGNMENT);
    if (!raw) return NULL;
    memset(raw + BADAM_ALIGNMENT, 0, body);
    block_header *h = (block_header *)raw;
    h->bytes = body;
    h->category = (int)category;
    size_t now = atomic_fetch_add(&current_bytes[category], body) + body;
    raise_peak(&peak_bytes[category], now);
    raise_peak(&peak_all, atomic_fetch_add(&current_all, body) + body);
    atomic_fetch_add(&alloc_calls, 1);
    return raw + BADAM_ALIGNMENT;
}

void *badam_alloc_array_in(badam_mem_category category, size_t count, size_t size) {
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes)) return NULL;
    return badam_alloc_in(category, bytes);
}

void *badam_alloc(size_t bytes) {
    return badam_alloc_in(BADAM_MEM_OTHER, bytes);
}

void *badam_alloc_array(size_t count, size_t size) {
    return badam_alloc_array_in(BADAM_MEM_OTHER, count, size);
}

void badam_free(void *p) {
    if (!p) return;
    char *raw = (char *)p - BADAM_ALIGNMENT;
    block_header *h = (block_header *)raw;
    atomic_fetch_sub(&current_bytes[h->category], h->bytes);
    atomic_fetch_sub(&current_all, h->bytes);
    free(raw);
}

size_t badam_mem_current(badam_mem_category c) {
    return atomic_load(&current_bytes[c]);
}
size_t badam_mem_peak(badam_mem_category c) {
    return atomic_load(&peak_bytes[c]);
}
size_t badam_mem_current_total(void) {
    return atomic_load(&current_all);
}
size_t badam_mem_peak_total(void) {
    return atomic_load(&peak_all);
}

void badam_mem_reset_peaks(void) {
    for (int c = 0; c < BADAM_MEM_CATEGORY_COUNT; c++)
        atomic_store(&peak_bytes[c], atomic_load(&current_bytes[c]));
    atomic_store(&peak_all, atomic_load(&current_all));
}

const char *badam_mem_category_name(badam_mem_category c) {
    static const char *const names[BADAM_MEM_CATEGORY_COUNT] = {
        "other", "weights", "master", "gradients", "optimizer", "activations", "workspace"};
    return c < BADAM_MEM_CATEGORY_COUNT ? names[c] : "?";
}

size_t badam_peak_rss(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (size_t)ru.ru_maxrss * 1024u; /* Linux reports KiB */
}

size_t badam_current_rss(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long pages_total = 0, pages_resident = 0;
    int got = fscanf(f, "%lu %lu", &pages_total, &pages_resident);
    fclose(f);
    return got == 2 ? (size_t)pages_resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

size_t badam_mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kib = 0;
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "MemAvailable: %llu kB", &kib) == 1;
    fclose(f);
    return found ? (size_t)(kib * 1024ull) : 0;
}
