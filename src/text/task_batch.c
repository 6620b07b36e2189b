/* Task batcher: SuperGLUE examples -> tokenized encoder batches (badam/tasks.h, "batches").
 * Every row is tokenized once at creation into one flat id / type array; a batch copies its
 * units' rows and pads them. The epoch order is the instruction batcher's (batcher.c) without
 * length grouping: identity or a splitmix64 Fisher-Yates permutation seeded with (seed, epoch). */
#include <stdlib.h>
#include <string.h>

#include "badam/tasks.h"
#include "text/data_internal.h"

struct task_batcher {
    const task_set *set;
    task_batch_options o;
    int rows_per_unit; /* n_choices, or 1 */
    size_t n_units, n_batches, truncated;
    size_t *row_off;      /* row r's tokens are ids[row_off[r] .. row_off[r + 1]) */
    int32_t *ids, *types; /* all rows */
    uint64_t epoch, index;
    int have_order;
    size_t *order;
    /* the batch */
    int32_t *tokens, *token_types, *targets;
    uint8_t *pad_mask;
    size_t *example;
    size_t max_len;
};

/* Row k of example e: (text_a, text_b), text_a alone, or (text_a, choices[k]), whole; a row
 * longer than seq_len is encoded again with the truncation (and counted). */
static badam_status encode_row(task_batcher *b, const badam_tokenizer *tok, size_t e, int k,
                               tokenizer_encoding *enc, badam_error *err) {
    const task_example *x = &b->set->examples[e];
    const char *second = x->n_choices ? x->choices[k] : x->text_b;
    size_t la = strlen(x->text_a), lb = second ? strlen(second) : 0;
    badam_status st = tokenizer_encode_pair(tok, x->text_a, la, second, lb, 1, 0, enc, err);
    if (!st && enc->n > (size_t)b->o.seq_len) {
        tokenizer_encoding_free(enc);
        b->truncated++;
        st = tokenizer_encode_pair(tok, x->text_a, la, second, lb, 1, (size_t)b->o.seq_len, enc,
                                   err);
    }
    if (st) return badam_error_prefix(err, "task batcher: example %zu (line %zu)", e, x->line);
    return BADAM_OK;
}

/* Tokenizes every row into ids / types (two passes: lengths, then the tokens). */
static badam_status tokenize_all(task_batcher *b, const badam_tokenizer *tok, badam_error *err) {
    size_t rows = b->n_units * (size_t)b->rows_per_unit, cap = 0;
    b->row_off = calloc(rows + 1, sizeof *b->row_off);
    if (!b->row_off) return badam_fail(err, BADAM_E_NOMEM, "task batcher: out of memory");
    for (size_t r = 0; r < rows; r++) {
        tokenizer_encoding enc = {0};
        badam_status st =
            encode_row(b, tok, r / b->rows_per_unit, (int)(r % b->rows_per_unit), &enc, err);
        if (st) return st;
        if (b->row_off[r] + enc.n > cap) {
            size_t want = (b->row_off[r] + enc.n) * 2;
            int32_t *ids = realloc(b->ids, want * sizeof *ids);
            if (ids) b->ids = ids;
            int32_t *types = ids ? realloc(b->types, want * sizeof *types) : NULL;
            if (types) b->types = types;
            if (!ids || !types) {
                tokenizer_encoding_free(&enc);
                return badam_fail(err, BADAM_E_NOMEM, "task batcher: out of memory");
            }
            cap = want;
        }
        memcpy(b->ids + b->row_off[r], enc.ids, enc.n * sizeof *enc.ids);
        memcpy(b->types + b->row_off[r], enc.type_ids, enc.n * sizeof *enc.type_ids);
        b->row_off[r + 1] = b->row_off[r] + enc.n;
        if (enc.n > b->max_len) b->max_len = enc.n;
        tokenizer_encoding_free(&enc);
    }
    return BADAM_OK;
}

/* The units' shape: every example of a choice set has the same n_choices. */
static badam_status check_set(const task_set *set, const task_batch_options *o, int *rows,
                              badam_error *err) {
    if (!set || set->n == 0)
        return badam_fail(err, BADAM_E_INVALID, "task batcher: the task set is empty");
    if (!o || o->batch_size < 1 || o->seq_len < 1)
        return badam_fail(err, BADAM_E_INVALID,
                          "task batcher: batch size and sequence length must be at least 1");
    if (o->n_ranks > 1 && (o->rank < 0 || o->rank >= o->n_ranks))
        return badam_fail(err, BADAM_E_INVALID, "task batcher: rank %d of %d ranks", o->rank,
                          o->n_ranks);
    *rows = set->examples[0].n_choices ? set->examples[0].n_choices : 1;
    for (size_t i = 1; i < set->n; i++)
        if ((set->examples[i].n_choices ? set->examples[i].n_choices : 1) != *rows)
            return badam_fail(err, BADAM_E_INVALID,
                              "task batcher: example %zu (line %zu) has %d choices, example 0 "
                              "has %d",
                              i, set->examples[i].line, set->examples[i].n_choices, *rows);
    return BADAM_OK;
}

badam_status task_batcher_create(const task_set *set, const badam_tokenizer *tok,
                                 const task_batch_options *opts, task_batcher **out,
                                 badam_error *err) {
    *out = NULL;
    int rows = 1;
    badam_status st = check_set(set, opts, &rows, err);
    if (st) return st;
    task_batcher *b = calloc(1, sizeof *b);
    if (!b) return badam_fail(err, BADAM_E_NOMEM, "task batcher: out of memory");
    b->set = set;
    b->o = *opts;
    b->rows_per_unit = rows;
    b->n_units = set->n;
    size_t bs = (size_t)opts->batch_size;
    b->n_batches = (b->n_units + bs - 1) / bs;
    if ((st = tokenize_all(b, tok, err))) {
        task_batcher_free(b);
        return st;
    }
    if (b->max_len < 1) b->max_len = 1;
    size_t cells = bs * (size_t)rows * b->max_len;
    b->order = malloc(b->n_units * sizeof *b->order);
    b->tokens = malloc(cells * sizeof *b->tokens);
    b->token_types = malloc(cells * sizeof *b->token_types);
    b->pad_mask = malloc(cells);
    b->targets = malloc(bs * sizeof *b->targets);
    b->example = malloc(bs * sizeof *b->example);
    if (!b->order || !b->tokens || !b->token_types || !b->pad_mask || !b->targets || !b->example) {
        task_batcher_free(b);
        return badam_fail(err, BADAM_E_NOMEM, "task batcher: out of memory");
    }
    *out = b;
    return BADAM_OK;
}

void task_batcher_free(task_batcher *b) {
    if (!b) return;
    free(b->row_off);
    free(b->ids);
    free(b->types);
    free(b->order);
    free(b->tokens);
    free(b->token_types);
    free(b->pad_mask);
    free(b->targets);
    free(b->example);
    free(b);
}

size_t task_batcher_batches_per_epoch(const task_batcher *b) {
    return b->n_batches;
}

size_t task_batcher_smallest_batch(const task_batcher *b) {
    size_t bs = (size_t)b->o.batch_size, last = b->n_units % bs;
    return last ? last : bs;
}

int task_batcher_max_rows(const task_batcher *b) {
    int ranks = b->o.n_ranks > 1 ? b->o.n_ranks : 1;
    return (b->o.batch_size + ranks - 1) / ranks * b->rows_per_unit;
}

size_t task_batcher_truncated(const task_batcher *b) {
    return b->truncated;
}

static void build_epoch(task_batcher *b) {
    uint64_t rng = data_rng_seed(b->o.seed, b->epoch);
    for (size_t i = 0; i < b->n_units; i++) b->order[i] = i;
    if (b->o.shuffle) data_shuffle(b->order, b->n_units, &rng);
    b->have_order = 1;
}

/* Row `row` of the set into batch row r of T cells, right-padded. */
static void put_row(task_batcher *b, size_t row, int r, size_t T) {
    size_t from = b->row_off[row], n = b->row_off[row + 1] - from, at = (size_t)r * T;
    memcpy(b->tokens + at, b->ids + from, n * sizeof *b->tokens);
    memcpy(b->token_types + at, b->types + from, n * sizeof *b->token_types);
    memset(b->pad_mask + at, 1, n);
    for (size_t t = n; t < T; t++) {
        b->tokens[at + t] = b->o.pad_id;
        b->token_types[at + t] = 0;
        b->pad_mask[at + t] = 0;
    }
}

void task_batcher_next(task_batcher *b, task_batch *out) {
    if (b->index >= b->n_batches) {
        b->epoch++;
        b->index = 0;
        b->have_order = 0;
    }
    if (!b->have_order) build_epoch(b);
    size_t bs = (size_t)b->o.batch_size, K = (size_t)b->rows_per_unit;
    size_t from = b->index * bs, to = from + bs < b->n_units ? from + bs : b->n_units;
    b->index++;
    size_t T = 1; /* the global batch's longest row */
    for (size_t k = from; k < to; k++)
        for (size_t c = 0; c < K; c++) {
            size_t row = b->order[k] * K + c, n = b->row_off[row + 1] - b->row_off[row];
            if (n > T) T = n;
        }
    size_t ranks = b->o.n_ranks > 1 ? (size_t)b->o.n_ranks : 1, rank = ranks > 1 ? b->o.rank : 0;
    size_t first = (to - from) * rank / ranks, U = (to - from) * (rank + 1) / ranks - first;
    int n_targets = 0;
    for (size_t u = 0; u < U; u++) {
        size_t e = b->order[from + first + u];
        for (size_t c = 0; c < K; c++) put_row(b, e * K + c, (int)(u * K + c), T);
        int label = b->set->examples[e].label;
        b->targets[u] = label >= 0 ? label : -100;
        n_targets += label >= 0;
        b->example[u] = e;
    }
    *out = (task_batch){(int)(U * K),
                        (int)T,
                        b->tokens,
                        b->token_types,
                        b->targets,
                        b->pad_mask,
                        K > 1 || b->set->examples[0].n_choices ? (int)K : 0,
                        (int)U,
                        n_targets,
                        (int)(first * K),
                        b->example};
}

void task_batcher_get_state(const task_batcher *b, uint64_t *epoch, uint64_t *index) {
    *epoch = b->epoch, *index = b->index;
    if (*index >= b->n_batches) { /* the end of epoch e is the start of epoch e + 1 */
        ++*epoch;
        *index = 0;
    }
}

badam_status task_batcher_set_state(task_batcher *b, uint64_t epoch, uint64_t index,
                                    badam_error *err) {
    if (index > b->n_batches)
        return badam_fail(err, BADAM_E_INVALID,
                          "task batcher: resume index %llu is past the %zu batches of an epoch",
                          (unsigned long long)index, b->n_batches);
    b->epoch = epoch, b->index = index, b->have_order = 0;
    return BADAM_OK;
}
