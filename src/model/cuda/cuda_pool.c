/* The CUDA backend's pool allocator: one cudaMalloc'd region handed out first-fit in 256-byte
 * aligned blocks, the block list kept on the host sorted by offset, neighbours merged on free.
 * Nothing here calls the driver, so alloc and free inside a step cost host time only. */
#include <stdlib.h>
#include <string.h>

#include "model/cuda/cuda_internal.h"

#define POOL_ALIGN ((size_t)256)

int cuda_pool_init(cuda_backend *c) {
    c->cap_segs = 64;
    c->segs = malloc(sizeof(cuda_seg) * (size_t)c->cap_segs);
    if (!c->segs) return -1;
    c->segs[0] = (cuda_seg){0, c->pool_bytes, 0, 0};
    c->n_segs = 1;
    return 0;
}

/* Makes room for one more block at index i (the blocks from i on move up one). */
static int insert_at(cuda_backend *c, int i) {
    if (c->n_segs == c->cap_segs) {
        cuda_seg *s = realloc(c->segs, sizeof(cuda_seg) * (size_t)c->cap_segs * 2);
        if (!s) return -1;
        c->segs = s;
        c->cap_segs *= 2;
    }
    memmove(&c->segs[i + 1], &c->segs[i], sizeof(cuda_seg) * (size_t)(c->n_segs - i));
    c->n_segs++;
    return 0;
}

static void remove_at(cuda_backend *c, int i) {
    memmove(&c->segs[i], &c->segs[i + 1], sizeof(cuda_seg) * (size_t)(c->n_segs - i - 1));
    c->n_segs--;
}

void *cuda_pool_alloc(cuda_backend *c, int category, size_t bytes) {
    size_t need = (bytes + POOL_ALIGN - 1) / POOL_ALIGN * POOL_ALIGN;
    if (need == 0) need = POOL_ALIGN;
    if (need < bytes) return NULL; /* overflow */
    for (int i = 0; i < c->n_segs; i++) {
        cuda_seg *s = &c->segs[i];
        if (s->used || s->size < need) continue;
        if (s->size > need) {
            if (insert_at(c, i + 1)) return NULL;
            s = &c->segs[i];
            c->segs[i + 1] = (cuda_seg){s->off + need, s->size - need, 0, 0};
            s->size = need;
        }
        s->used = 1;
        s->category = category;
        c->used += need;
        c->used_by_cat[category] += need;
        if (c->used_by_cat[category] > c->peak_by_cat[category])
            c->peak_by_cat[category] = c->used_by_cat[category];
        if (c->used > c->peak) c->peak = c->used;
        return c->pool + s->off;
    }
    return NULL;
}

void cuda_pool_free(cuda_backend *c, void *p) {
    if (!p) return;
    size_t off = (size_t)((char *)p - c->pool);
    int lo = 0, hi = c->n_segs - 1, i = -1;
    while (lo <= hi) { /* binary search by offset */
        int mid = (lo + hi) / 2;
        if (c->segs[mid].off == off) {
            i = mid;
            break;
        }
        if (c->segs[mid].off < off)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    if (i < 0 || !c->segs[i].used) {
        cuda_fail(c, BADAM_E_INVALID, "cuda free: %p is not a block of the pool", p);
        return;
    }
    c->used -= c->segs[i].size;
    c->used_by_cat[c->segs[i].category] -= c->segs[i].size;
    c->segs[i].used = 0;
    if (i + 1 < c->n_segs && !c->segs[i + 1].used) {
        c->segs[i].size += c->segs[i + 1].size;
        remove_at(c, i + 1);
    }
    if (i > 0 && !c->segs[i - 1].used) {
        c->segs[i - 1].size += c->segs[i].size;
        remove_at(c, i);
    }
}
