/* Validation split, freeing, and the Fisher-Yates shuffle shared with the batcher. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "text/data_internal.h"

void data_shuffle(size_t *a, size_t n, uint64_t *state) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)data_rng_below(state, i);
        size_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

void data_free(data_set *ds) {
    if (!ds) return;
    for (size_t i = 0; i < ds->n; i++) token_seq_free(&ds->examples[i]);
    free(ds->examples);
    free(ds);
}

static void recount(data_set *ds) {
    ds->stats.examples = ds->n;
    ds->stats.tokens = ds->stats.trained_tokens = 0;
    for (size_t i = 0; i < ds->n; i++) {
        ds->stats.tokens += ds->examples[i].len;
        ds->stats.trained_tokens += token_seq_trained_count(&ds->examples[i]);
    }
}

/* The validation examples are the first n_val of a splitmix64 Fisher-Yates permutation of the
 * example indices (seeded by `seed`); both parts keep the file's order. The file-level counts
 * (records, truncated, dropped_empty) stay with the training part; each part's examples, tokens and
 * trained_tokens are its own. */
badam_status data_split(data_set *all, double val_size, uint64_t seed, data_set **train,
                        data_set **val, badam_error *err) {
    *train = *val = NULL;
    if (!all) return badam_fail(err, BADAM_E_INVALID, "data_split: no dataset");
    size_t n = all->n, n_val;
    if (!isfinite(val_size) || val_size < 0)
        return badam_fail(err, BADAM_E_INVALID,
                          "validation size %g: must be a count >= 1 or a fraction in [0, 1)",
                          val_size);
    if (val_size >= 1) {
        if (val_size != floor(val_size))
            return badam_fail(err, BADAM_E_INVALID,
                              "validation size %g: a count must be a whole number (a fraction "
                              "must be below 1)",
                              val_size);
        n_val = val_size >= (double)SIZE_MAX ? SIZE_MAX : (size_t)val_size;
    } else {
        n_val = (size_t)ceil(val_size * (double)n);
    }
    if (n_val >= n && n_val > 0)
        return badam_fail(err, BADAM_E_INVALID,
                          "validation size %g takes %zu of the %zu examples and leaves none for "
                          "training",
                          val_size, n_val, n);

    data_set *tr = calloc(1, sizeof *tr), *va = calloc(1, sizeof *va);
    size_t *perm = malloc((n ? n : 1) * sizeof *perm);
    uint8_t *is_val = calloc(n ? n : 1, 1);
    if (tr) tr->examples = malloc((n - n_val ? n - n_val : 1) * sizeof *tr->examples);
    if (va) va->examples = malloc((n_val ? n_val : 1) * sizeof *va->examples);
    if (!tr || !va || !perm || !is_val || !tr->examples || !va->examples) {
        if (tr) free(tr->examples);
        if (va) free(va->examples);
        free(tr);
        free(va);
        free(perm);
        free(is_val);
        return badam_fail(err, BADAM_E_NOMEM, "data_split: out of memory");
    }
    for (size_t i = 0; i < n; i++) perm[i] = i;
    uint64_t rng = data_rng_seed(seed, 0x53504c4954ull /* "SPLIT" */);
    data_shuffle(perm, n, &rng);
    for (size_t i = 0; i < n_val; i++) is_val[perm[i]] = 1;
    for (size_t i = 0; i < n; i++) {
        if (is_val[i])
            va->examples[va->n++] = all->examples[i];
        else
            tr->examples[tr->n++] = all->examples[i];
    }
    free(perm);
    free(is_val);

    tr->stats = all->stats;
    tr->format = va->format = all->format;
    recount(tr);
    recount(va);
    free(all->examples);
    all->examples = NULL;
    all->n = 0;
    memset(&all->stats, 0, sizeof all->stats);
    *train = tr;
    *val = va;
    return BADAM_OK;
}
