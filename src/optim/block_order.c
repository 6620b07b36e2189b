/* Which block each visit trains. */
#include <stdlib.h>
#include <string.h>

#include "badam/optim.h"

static const char *const NAMES[] = {"random", "ascending", "descending", "fixed"};

badam_status block_order_parse(const char *name, block_order *order, badam_error *err) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, NAMES[i])) {
            *order = (block_order)i;
            return BADAM_OK;
        }
    return badam_fail(err, BADAM_E_INVALID,
                      "unknown switch mode '%s' (choose random, ascending, descending or fixed)",
                      name);
}

const char *block_order_name(block_order order) {
    return NAMES[order];
}

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Position `index` of the Fisher-Yates permutation of n blocks for block epoch `epoch`. */
static int permuted(int n, uint64_t seed, uint64_t epoch, int index) {
    int small[256] = {0}, *perm = n <= 256 ? small : malloc(sizeof(int) * (size_t)n);
    if (!perm) return index % n;
    for (int i = 0; i < n; i++) perm[i] = i;
    uint64_t state = seed ^ (epoch * 0xD1B54A32D192ED03ull);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(splitmix64(&state) % (uint64_t)(i + 1));
        int t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    int b = perm[index];
    if (perm != small) free(perm);
    return b;
}

int block_for_visit(block_order order, int n, int start, uint64_t seed, uint64_t visit) {
    switch (order) {
    case BLOCK_ORDER_ASCENDING:
        return (int)(((uint64_t)(start < 0 ? 0 : start) + visit) % n);
    case BLOCK_ORDER_DESCENDING: {
        int s = start < 0 ? n - 1 : start;
        return (int)(((uint64_t)s + (uint64_t)n * (visit / n + 1) - visit % n) % n);
    }
    case BLOCK_ORDER_FIXED:
        return start < 0 ? 0 : start;
    default: {
        /* With a start block, visit 0 trains it and the permutations follow. */
        if (start >= 0) {
            if (visit == 0) return start;
            visit--;
        }
        return permuted(n, seed, visit / n, (int)(visit % n));
    }
    }
}

int block_visit_of_step(int step, int K, int reference_compat, int *starts) {
    if (K < 1) K = 1;
    if (!reference_compat) {
        *starts = step % K == 0;
        return step / K;
    }
    /* steps s' in [1, step] after which the reference switched: (s' + 1) % K == 0 */
    *starts = step == 0 || (step + 1) % K == 0;
    return (step + 1) / K - (K == 1 ? 1 : 0);
}

int block_switch_every_auto(size_t n_examples, int effective_batch, int n_blocks) {
    size_t denom =
        (size_t)(effective_batch > 0 ? effective_batch : 1) * (n_blocks > 0 ? n_blocks : 1);
    size_t k = n_examples / denom;
    return k < 50 ? 50 : k > 100 ? 100 : (int)k;
}
