/* Batcher: examples -> right-padded (or packed) batches with shifted targets, in a seeded order
 * that a (epoch, index) state reproduces exactly.
 *
 * Order of epoch e (every example exactly once per epoch):
 *   1. the units (examples, or packed rows) in index order; with shuffle, a Fisher-Yates
 *      permutation driven by splitmix64 seeded with data_rng_seed(seed, e);
 *   2. group_by_length (not with packing): windows of 64 batches' worth of units, each sorted by
 *      length (longest first, ties by index), cut into batches; with shuffle the batch order is
 *      then permuted with the same generator; finally the batch holding the longest example moves
 *      to the front, so a batch that does not fit in memory shows at the first step (as
 *      Hugging Face's LengthGroupedSampler does);
 *   3. otherwise consecutive runs of batch_size units. The last batch of an epoch may be smaller.
 * Packing is decided once, at creation: best-fit decreasing (examples longest first, each into the
 * fullest row that still has room, else a new row of seq_len), so rows do not change between
 * epochs; only their order does. Packed examples stay whole.
 *
 * A batch is B rows of T tokens, T the longest row in that batch. With n_ranks > 1 (data
 * parallel) the batches above are the global batches; rank r fills only its rows
 * [B * r / n_ranks, B * (r + 1) / n_ranks) of each, padded to the global batch's T. */
#include <stdlib.h>
#include <string.h>

#include "text/data_internal.h"

#define GROUP_WINDOW_BATCHES 64

struct batcher {
    const data_set *ds;
    batcher_options o;
    size_t cap_len; /* the most tokens of one row */
    size_t *lens;   /* example lengths, capped at cap_len */
    /* packed rows (pack only): row r holds row_items[row_off[r] .. row_off[r+1]) */
    size_t n_rows, *row_off, *row_items, *row_len;
    size_t n_units, n_batches;
    /* the current epoch's batches: batch k holds units order[batch_off[k] .. batch_off[k+1]) */
    uint64_t epoch, index;
    int have_order;
    size_t *order, *batch_off, *scratch;
    int32_t *tokens, *targets, *positions, *seg_start, *lengths;
    int64_t *units;
};

static size_t unit_len(const batcher *b, size_t u) {
    return b->o.pack ? b->row_len[u] : b->lens[u];
}

/* ---------------------------------------------------------------- packing */

/* Best-fit decreasing into rows of cap_len tokens. buckets[r] lists the rows with r tokens of room
 * left; a bitset marks the non-empty buckets so the best fit is a short word scan. */
static badam_status pack_rows(batcher *b, badam_error *err) {
    size_t n = b->ds->n, S = b->cap_len, words = S / 64 + 1;
    typedef struct {
        size_t len, idx;
    } item;
    item *items = malloc(n * sizeof *items);
    size_t *row_of = malloc(n * sizeof *row_of);
    size_t *head = malloc((S + 1) * sizeof *head), *next = malloc(n * sizeof *next);
    size_t *room = malloc(n * sizeof *room);
    uint64_t *bits = calloc(words, sizeof *bits);
    badam_status st = BADAM_OK;
    if (!items || !row_of || !head || !next || !room || !bits) {
        st = badam_fail(err, BADAM_E_NOMEM, "batcher: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) items[i] = (item){b->lens[i], i};
    /* longest first, ties by index (shell sort) */
    for (size_t gap = n / 2; gap > 0; gap /= 2)
        for (size_t i = gap; i < n; i++) {
            item x = items[i];
            size_t j = i;
            while (j >= gap && (items[j - gap].len < x.len ||
                                (items[j - gap].len == x.len && items[j - gap].idx > x.idx))) {
                items[j] = items[j - gap];
                j -= gap;
            }
            items[j] = x;
        }
    for (size_t r = 0; r <= S; r++) head[r] = SIZE_MAX;
    size_t n_rows = 0;
    for (size_t k = 0; k < n; k++) {
        size_t L = items[k].len, r = SIZE_MAX;
        for (size_t w = L / 64; w < words && r == SIZE_MAX; w++) {
            uint64_t m = bits[w];
            if (w == L / 64) m &= ~0ull << (L % 64);
            if (m) r = w * 64 + (size_t)__builtin_ctzll(m);
        }
        size_t row;
        if (r != SIZE_MAX && r <= S) {
            row = head[r];
            head[r] = next[row];
            if (head[r] == SIZE_MAX) bits[r / 64] &= ~(1ull << (r % 64));
        } else {
            row = n_rows++;
            room[row] = S;
        }
        row_of[items[k].idx] = row;
        room[row] -= L;
        size_t left = room[row];
        next[row] = head[left];
        head[left] = row;
        bits[left / 64] |= 1ull << (left % 64);
    }
    b->n_rows = n_rows;
    b->row_off = calloc(n_rows + 1, sizeof *b->row_off);
    b->row_items = malloc(n * sizeof *b->row_items);
    b->row_len = calloc(n_rows, sizeof *b->row_len);
    if (!b->row_off || !b->row_items || !b->row_len) {
        st = badam_fail(err, BADAM_E_NOMEM, "batcher: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) b->row_off[row_of[i] + 1]++;
    for (size_t r = 0; r < n_rows; r++) b->row_off[r + 1] += b->row_off[r];
    /* rows list their examples longest first (the order they were placed) */
    size_t *fill = next; /* reuse: next[] is no longer needed */
    for (size_t r = 0; r < n_rows; r++) fill[r] = b->row_off[r];
    for (size_t k = 0; k < n; k++) {
        size_t i = items[k].idx, r = row_of[i];
        b->row_items[fill[r]++] = i;
        b->row_len[r] += b->lens[i];
    }
done:
    free(items);
    free(row_of);
    free(head);
    free(next);
    free(room);
    free(bits);
    return st;
}

/* ---------------------------------------------------------------- epoch order */

/* Sorts a[0..n) by unit length, longest first, ties by unit index (shell sort). */
static void sort_by_length(const batcher *b, size_t *a, size_t n) {
    for (size_t gap = n / 2; gap > 0; gap /= 2)
        for (size_t i = gap; i < n; i++) {
            size_t x = a[i], lx = unit_len(b, x), j = i;
            while (j >= gap) {
                size_t y = a[j - gap], ly = unit_len(b, y);
                if (ly > lx || (ly == lx && y < x)) break;
                a[j] = y;
                j -= gap;
            }
            a[j] = x;
        }
}

static void build_epoch(batcher *b) {
    size_t n = b->n_units, bs = (size_t)b->o.batch_size;
    uint64_t rng = data_rng_seed(b->o.seed, b->epoch);
    for (size_t i = 0; i < n; i++) b->order[i] = i;
    if (b->o.shuffle) data_shuffle(b->order, n, &rng);
    for (size_t k = 0; k <= b->n_batches; k++) b->batch_off[k] = k * bs < n ? k * bs : n;
    if (!b->o.group_by_length || b->o.pack) {
        b->have_order = 1;
        return;
    }
    size_t window = bs * GROUP_WINDOW_BATCHES;
    for (size_t w = 0; w < n; w += window)
        sort_by_length(b, b->order + w, n - w < window ? n - w : window);
    /* Permute the batches: batch k of the new order is old batch perm[k]. */
    size_t nb = b->n_batches, *perm = b->scratch, *off = b->scratch + nb;
    size_t *items = b->scratch + 2 * nb + 1;
    for (size_t k = 0; k < nb; k++) perm[k] = k;
    if (b->o.shuffle) data_shuffle(perm, nb, &rng);
    size_t longest = 0; /* position in perm of the batch holding the longest unit */
    for (size_t k = 1; k < nb; k++)
        if (unit_len(b, b->order[b->batch_off[perm[k]]]) >
            unit_len(b, b->order[b->batch_off[perm[longest]]]))
            longest = k;
    size_t t = perm[0];
    perm[0] = perm[longest];
    perm[longest] = t;
    size_t at = 0;
    for (size_t k = 0; k < nb; k++) {
        size_t from = b->batch_off[perm[k]], to = b->batch_off[perm[k] + 1];
        off[k] = at;
        memcpy(items + at, b->order + from, (to - from) * sizeof *items);
        at += to - from;
    }
    off[nb] = at;
    memcpy(b->order, items, n * sizeof *items);
    memcpy(b->batch_off, off, (nb + 1) * sizeof *off);
    b->have_order = 1;
}

/* ---------------------------------------------------------------- API */

badam_status batcher_create(const data_set *ds, const batcher_options *opts, batcher **out,
                            badam_error *err) {
    *out = NULL;
    if (!ds || ds->n == 0) return badam_fail(err, BADAM_E_INVALID, "batcher: the dataset is empty");
    if (!opts || opts->batch_size < 1)
        return badam_fail(err, BADAM_E_INVALID, "batcher: batch size must be at least 1");
    if (opts->n_ranks > 1 && (opts->rank < 0 || opts->rank >= opts->n_ranks))
        return badam_fail(err, BADAM_E_INVALID, "batcher: rank %d of %d ranks", opts->rank,
                          opts->n_ranks);
    if (opts->pack && opts->seq_len < 1)
        return badam_fail(err, BADAM_E_INVALID, "batcher: packing needs a sequence length");
    batcher *b = calloc(1, sizeof *b);
    if (!b) return badam_fail(err, BADAM_E_NOMEM, "batcher: out of memory");
    b->ds = ds;
    b->o = *opts;
    size_t n = ds->n, max_len = 0;
    b->lens = malloc(n * sizeof *b->lens);
    if (!b->lens) goto nomem;
    for (size_t i = 0; i < n; i++) {
        if (ds->examples[i].len == 0) {
            batcher_free(b);
            return badam_fail(err, BADAM_E_INVALID, "batcher: example %zu is empty", i);
        }
        if (ds->examples[i].len > max_len) max_len = ds->examples[i].len;
    }
    b->cap_len = opts->seq_len > 0 ? (size_t)opts->seq_len : max_len;
    for (size_t i = 0; i < n; i++)
        b->lens[i] = ds->examples[i].len < b->cap_len ? ds->examples[i].len : b->cap_len;
    if (opts->pack) {
        badam_status st = pack_rows(b, err);
        if (st != BADAM_OK) {
            batcher_free(b);
            return st;
        }
        b->n_units = b->n_rows;
    } else {
        b->n_units = n;
    }
    size_t bs = (size_t)opts->batch_size;
    b->n_batches = (b->n_units + bs - 1) / bs;
    b->order = malloc(b->n_units * sizeof *b->order);
    b->batch_off = malloc((b->n_batches + 1) * sizeof *b->batch_off);
    b->scratch = malloc((2 * b->n_batches + 1 + b->n_units) * sizeof *b->scratch);
    size_t cells = bs * b->cap_len;
    b->tokens = malloc(cells * sizeof *b->tokens);
    b->targets = malloc(cells * sizeof *b->targets);
    b->positions = malloc(cells * sizeof *b->positions);
    b->seg_start = malloc(cells * sizeof *b->seg_start);
    b->lengths = malloc(bs * sizeof *b->lengths);
    b->units = malloc(bs * sizeof *b->units);
    if (!b->order || !b->batch_off || !b->scratch || !b->tokens || !b->targets || !b->positions ||
        !b->seg_start || !b->lengths || !b->units)
        goto nomem;
    *out = b;
    return BADAM_OK;
nomem:
    batcher_free(b);
    return badam_fail(err, BADAM_E_NOMEM, "batcher: out of memory");
}

void batcher_free(batcher *b) {
    if (!b) return;
    free(b->lens);
    free(b->row_off);
    free(b->row_items);
    free(b->row_len);
    free(b->order);
    free(b->batch_off);
    free(b->scratch);
    free(b->tokens);
    free(b->targets);
    free(b->positions);
    free(b->seg_start);
    free(b->lengths);
    free(b->units);
    free(b);
}

size_t batcher_batches_per_epoch(const batcher *b) {
    return b->n_batches;
}

size_t batcher_smallest_batch(const batcher *b) {
    size_t bs = (size_t)b->o.batch_size;
    return b->n_units % bs ? b->n_units % bs : bs;
}

/* Writes example i at row offset `at` (len tokens): ids, shifted targets, positions, seg_start. */
static int put_example(batcher *b, size_t i, int32_t *tok, int32_t *tgt, int32_t *pos, int32_t *seg,
                       size_t at, int packed) {
    const token_seq *e = &b->ds->examples[i];
    size_t L = b->lens[i];
    int n_targets = 0;
    for (size_t t = 0; t < L; t++) {
        tok[at + t] = e->ids[t];
        int trained = t + 1 < L && e->trained[t + 1];
        tgt[at + t] = trained ? e->ids[t + 1] : -100;
        n_targets += trained;
        pos[at + t] = (int32_t)(packed ? t : at + t);
        seg[at + t] = (int32_t)(packed ? at : 0);
    }
    return n_targets;
}

void batcher_next(batcher *b, data_batch *out) {
    if (b->index >= b->n_batches) {
        b->epoch++;
        b->index = 0;
        b->have_order = 0;
    }
    if (!b->have_order) build_epoch(b);
    size_t from = b->batch_off[b->index], to = b->batch_off[b->index + 1];
    b->index++;
    size_t T = 0;
    for (size_t k = from; k < to; k++)
        if (unit_len(b, b->order[k]) > T) T = unit_len(b, b->order[k]);
    /* this rank's rows of the global batch [from, to) */
    size_t ranks = b->o.n_ranks > 1 ? (size_t)b->o.n_ranks : 1, rank = ranks > 1 ? b->o.rank : 0;
    size_t first = (to - from) * rank / ranks, B = (to - from) * (rank + 1) / ranks - first;
    from += first;
    int n_targets = 0;
    for (size_t r = 0; r < B; r++) {
        int32_t *tok = b->tokens + r * T, *tgt = b->targets + r * T;
        int32_t *pos = b->positions + r * T, *seg = b->seg_start + r * T;
        size_t u = b->order[from + r], used = 0;
        if (b->o.pack) {
            for (size_t k = b->row_off[u]; k < b->row_off[u + 1]; k++) {
                size_t i = b->row_items[k];
                n_targets += put_example(b, i, tok, tgt, pos, seg, used, 1);
                used += b->lens[i];
            }
        } else {
            n_targets += put_example(b, u, tok, tgt, pos, seg, 0, 0);
            used = b->lens[u];
        }
        /* Right padding: pad id 0, no target. Unpacked rows continue their positions; packed
         * rows' padding is a segment of its own. */
        for (size_t t = used; t < T; t++) {
            tok[t] = 0;
            tgt[t] = -100;
            pos[t] = (int32_t)(b->o.pack ? t - used : t);
            seg[t] = (int32_t)(b->o.pack ? used : 0);
        }
        b->lengths[r] = (int32_t)used;
        b->units[r] = (int64_t)u;
    }
    out->B = (int)B;
    out->T = (int)T;
    out->tokens = b->tokens;
    out->targets = b->targets;
    out->positions = b->positions;
    out->seg_start = b->seg_start;
    out->n_targets = n_targets;
    out->first_row = (int)first;
    out->lengths = b->lengths;
    out->units = b->units;
    out->epoch = b->epoch;
}

batcher_state batcher_get_state(const batcher *b) {
    batcher_state s = {b->epoch, b->index};
    if (s.index >= b->n_batches) { /* the end of epoch e is the start of epoch e + 1 */
        s.epoch++;
        s.index = 0;
    }
    return s;
}

badam_status batcher_set_state(batcher *b, batcher_state state, badam_error *err) {
    if (state.index > b->n_batches)
        return badam_fail(err, BADAM_E_INVALID,
                          "batcher: resume index %llu is past the %zu batches of an epoch",
                          (unsigned long long)state.index, b->n_batches);
    b->epoch = state.epoch;
    b->index = state.index;
    b->have_order = 0;
    return BADAM_OK;
}
