/* A test backend that keeps its tensor memory out of reach between its calls: every allocation is
 * its own mmap'ed region, all of them PROT_NONE while no op runs; each op makes them readable and
 * writable, forwards to an inner backend (the CPU backend, or any other), and protects them
 * again. Any read or write of backend memory outside an op then faults (SIGSEGV), so a test run
 * on it proves the caller reaches tensor memory only through the backend's ops.
 *
 * Memory it allocates is not counted in base/memory.h's categories (mmap, not badam_alloc_in).
 * Host memory handed to an op (a weight, an upload source) is the caller's and is not protected.
 * Single-threaded callers only (as every backend); the inner backend may use threads inside an
 * op. */
#ifndef BADAM_TEST_MPROTECT_BACKEND_H
#define BADAM_TEST_MPROTECT_BACKEND_H

#include <stdint.h>

#include "model/backend.h"

/* The mprotect backend around a fresh CPU backend (the signature backend_list.c wants). */
badam_status mprotect_backend_create(backend **out, badam_error *err);
/* Around `inner`, which it then owns (destroyed with it, also on failure). */
badam_status mprotect_backend_wrap(backend *inner, backend **out, badam_error *err);

/* What it did: ops forwarded, mprotect calls that opened (PROT_READ|PROT_WRITE) and closed
 * (PROT_NONE) a region, live regions, and mprotect/mmap calls that failed (a test asserts 0).
 * By memory category: allocations made, and the bytes they would take from base/memory.h
 * (badam_alloc_size of the size asked) live now and at their peak, so a test can check that
 * what a run allocates here plus what it allocated on the host adds up to a CPU run's
 * accounting. */
typedef struct mprotect_stats {
    uint64_t ops, opened, closed, failures;
    size_t live;
    uint64_t allocs[BADAM_MEM_CATEGORY_COUNT];
    size_t bytes[BADAM_MEM_CATEGORY_COUNT], peak[BADAM_MEM_CATEGORY_COUNT];
} mprotect_stats;
mprotect_stats mprotect_backend_stats(const backend *be);

/* 1 when p lies inside one of be's live regions (be must be an mprotect backend). */
int mprotect_backend_owns(const backend *be, const void *p);
/* 1 when be is an mprotect backend. */
int mprotect_backend_is(const backend *be);

#endif
