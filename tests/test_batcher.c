/* Batcher: every example exactly once per epoch, shifted targets, right padding with -100,
 * packing (examples whole, positions and seg_start), length grouping reducing padding, exact
 * resume from (epoch, index), and seeds that change the order. Synthetic datasets whose token ids
 * encode (example, position) = example * 1000 + position, so a batch can be read back. */
#include <stdlib.h>
#include <string.h>

#include "badam/data.h"
#include "testutil.h"
#include "text/data_internal.h"

#define ID(ex, pos) ((int32_t)((ex)*1000 + (pos) + 1)) /* never 0, the pad id */
#define EX_OF(id) (((id)-1) / 1000)
#define POS_OF(id) (((id)-1) % 1000)

/* n examples with lengths from a seeded RNG in [min_len, max_len]; the first third of each
 * example (at least one token) is an untrained prompt. */
static data_set *make_set(size_t n, int min_len, int max_len, uint64_t seed) {
    data_set *ds = calloc(1, sizeof *ds);
    ds->examples = calloc(n, sizeof *ds->examples);
    test_rng rng;
    test_rng_seed(&rng, seed);
    badam_error err;
    for (size_t i = 0; i < n; i++) {
        int len = min_len + (int)(test_rng_u32(&rng) % (uint32_t)(max_len - min_len + 1));
        int prompt = len / 3 > 0 ? len / 3 : 1;
        for (int t = 0; t < len; t++) token_seq_push(&ds->examples[i], ID(i, t), t >= prompt, &err);
    }
    ds->n = n;
    return ds;
}

static void free_set(data_set *ds) {
    data_free(ds);
}

/* Checks one unpacked row: the example's tokens, shifted targets, positions, padding. Returns
 * the example index, or -1 on a failed check. */
static int check_row(const data_set *ds, const data_batch *b, int r, int seq_len, int *targets) {
    const int32_t *tok = b->tokens + (size_t)r * b->T, *tgt = b->targets + (size_t)r * b->T;
    const int32_t *pos = b->positions + (size_t)r * b->T, *seg = b->seg_start + (size_t)r * b->T;
    int ex = EX_OF(tok[0]);
    if (ex < 0 || (size_t)ex >= ds->n) return -1;
    const token_seq *e = &ds->examples[ex];
    int L = (int)e->len;
    if (seq_len > 0 && L > seq_len) L = seq_len;
    int ok = L <= b->T;
    for (int t = 0; t < b->T && ok; t++) {
        if (t < L) {
            int want = t + 1 < L && e->trained[t + 1] ? e->ids[t + 1] : -100;
            ok = tok[t] == e->ids[t] && tgt[t] == want && pos[t] == t && seg[t] == 0;
            *targets += want != -100;
        } else { /* right padding */
            ok = tok[t] == 0 && tgt[t] == -100 && seg[t] == 0;
        }
    }
    return ok ? ex : -1;
}

static size_t batch_hash(const data_batch *b) {
    size_t h = 1469598103934665603ull;
    size_t n = (size_t)b->B * (size_t)b->T;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (size_t)(uint32_t)b->tokens[i]) * 1099511628211ull;
        h = (h ^ (size_t)(uint32_t)b->targets[i]) * 1099511628211ull;
        h = (h ^ (size_t)(uint32_t)b->seg_start[i]) * 1099511628211ull;
    }
    return h ^ ((size_t)b->B << 32) ^ (size_t)b->T;
}

/* ---- tests ---- */

static void run_epochs_unpacked(const batcher_options *o, const char *label) {
    data_set *ds = make_set(103, 3, 40, 1);
    batcher *b = NULL;
    badam_error err;
    CHECK_OK(batcher_create(ds, o, &b, &err), &err);
    size_t nb = batcher_batches_per_epoch(b);
    CHECK(nb == (103 + (size_t)o->batch_size - 1) / (size_t)o->batch_size);
    for (int epoch = 0; epoch < 3; epoch++) {
        int seen[103] = {0};
        for (size_t k = 0; k < nb; k++) {
            batcher_state s = batcher_get_state(b);
            CHECK(s.epoch == (uint64_t)epoch && s.index == k);
            data_batch batch;
            batcher_next(b, &batch);
            CHECK(batch.B >= 1 && batch.B <= o->batch_size);
            int longest = 0, targets = 0;
            for (int r = 0; r < batch.B; r++) {
                int ex = check_row(ds, &batch, r, o->seq_len, &targets);
                CHECKF(ex >= 0, "%s: epoch %d batch %zu row %d", label, epoch, k, r);
                if (ex < 0) continue;
                seen[ex]++;
                int L = (int)ds->examples[ex].len;
                if (o->seq_len > 0 && L > o->seq_len) L = o->seq_len;
                if (L > longest) longest = L;
            }
            CHECKF(batch.T == longest, "%s: T %d is not the longest row %d", label, batch.T,
                   longest);
            CHECK(batch.n_targets == targets);
        }
        for (int i = 0; i < 103; i++)
            CHECKF(seen[i] == 1, "%s: epoch %d: example %d seen %d times", label, epoch, i,
                   seen[i]);
    }
    batcher_state s = batcher_get_state(b);
    CHECK(s.epoch == 3 && s.index == 0);
    batcher_free(b);
    free_set(ds);
}

static void test_every_example_once(void) {
    batcher_options plain = {.batch_size = 8};
    run_epochs_unpacked(&plain, "in order");
    batcher_options shuffled = {.batch_size = 8, .shuffle = 1, .seed = 3};
    run_epochs_unpacked(&shuffled, "shuffled");
    batcher_options grouped = {.batch_size = 4, .shuffle = 1, .group_by_length = 1, .seed = 5};
    run_epochs_unpacked(&grouped, "grouped");
    batcher_options capped = {.batch_size = 5, .seq_len = 16, .shuffle = 1, .seed = 9};
    run_epochs_unpacked(&capped, "capped at seq_len 16");
    batcher_options single = {.batch_size = 1, .group_by_length = 1};
    run_epochs_unpacked(&single, "batch size 1, grouped, in order");
}

/* In order, without shuffling: batch k holds examples k*B .. k*B+B-1; the last one is short. */
static void test_in_order_and_shift(void) {
    data_set *ds = calloc(1, sizeof *ds);
    ds->examples = calloc(3, sizeof *ds->examples);
    ds->n = 3;
    badam_error err;
    /* example 0: 5 tokens, trained from position 2; example 1: 2 tokens; example 2: 3 tokens */
    for (int t = 0; t < 5; t++) token_seq_push(&ds->examples[0], 10 + t, t >= 2, &err);
    for (int t = 0; t < 2; t++) token_seq_push(&ds->examples[1], 20 + t, t == 1, &err);
    for (int t = 0; t < 3; t++) token_seq_push(&ds->examples[2], 30 + t, t != 1, &err);
    batcher *b = NULL;
    batcher_options o = {.batch_size = 2};
    CHECK_OK(batcher_create(ds, &o, &b, &err), &err);
    CHECK(batcher_batches_per_epoch(b) == 2);
    data_batch x;
    batcher_next(b, &x);
    CHECK(x.B == 2 && x.T == 5);
    const int32_t tokens[10] = {10, 11, 12, 13, 14, 20, 21, 0, 0, 0};
    const int32_t targets[10] = {-100, 12, 13, 14, -100, 21, -100, -100, -100, -100};
    const int32_t positions[10] = {0, 1, 2, 3, 4, 0, 1, 2, 3, 4};
    for (int i = 0; i < 10; i++) {
        CHECK(x.tokens[i] == tokens[i]);
        CHECK(x.targets[i] == targets[i]);
        CHECK(x.positions[i] == positions[i]);
        CHECK(x.seg_start[i] == 0);
    }
    CHECK(x.n_targets == 4);
    batcher_next(b, &x);
    CHECK(x.B == 1 && x.T == 3);
    CHECK(x.tokens[0] == 30 && x.tokens[2] == 32);
    /* token 1 (31) is untrained, so position 0 has no target; token 2 is trained */
    CHECK(x.targets[0] == -100 && x.targets[1] == 32 && x.targets[2] == -100 && x.n_targets == 1);
    /* the next call starts epoch 1 (same order without shuffle) */
    batcher_next(b, &x);
    CHECK(x.B == 2 && x.tokens[0] == 10);
    batcher_state s = batcher_get_state(b);
    CHECK(s.epoch == 1 && s.index == 1);
    batcher_free(b);
    data_free(ds);
}

/* Data parallel: the rows of rank r of N are rows [B r / N, B (r + 1) / N) of the one-process
 * batch, bit for bit, with its T and first_row; over 3 epochs (a short last batch of 3 rows on 4
 * ranks gives rank 0 none), grouped and shuffled, and packed. */
static void check_shards(const batcher_options *one, int ranks, const char *label) {
    data_set *ds = make_set(103, 2, 40, 17);
    badam_error err;
    batcher *b = NULL, *r[4] = {0};
    CHECK_OK(batcher_create(ds, one, &b, &err), &err);
    for (int k = 0; k < ranks; k++) {
        batcher_options o = *one;
        o.rank = k, o.n_ranks = ranks;
        CHECK_OK(batcher_create(ds, &o, &r[k], &err), &err);
    }
    size_t steps = 3 * batcher_batches_per_epoch(b);
    for (size_t s = 0; s < steps; s++) {
        data_batch x, y;
        batcher_next(b, &x);
        int rows = 0, targets = 0;
        for (int k = 0; k < ranks; k++) {
            batcher_next(r[k], &y);
            CHECKF(y.T == x.T && y.first_row == rows && y.first_row == x.B * k / ranks &&
                       y.B == x.B * (k + 1) / ranks - y.first_row,
                   "%s: step %zu rank %d: B %d T %d first %d (one process: B %d T %d)", label, s, k,
                   y.B, y.T, y.first_row, x.B, x.T);
            size_t at = (size_t)rows * x.T, n = (size_t)y.B * y.T;
            CHECKF(!memcmp(y.tokens, x.tokens + at, n * 4) &&
                       !memcmp(y.targets, x.targets + at, n * 4) &&
                       !memcmp(y.positions, x.positions + at, n * 4) &&
                       !memcmp(y.seg_start, x.seg_start + at, n * 4),
                   "%s: step %zu rank %d: rows differ", label, s, k);
            rows += y.B, targets += y.n_targets;
        }
        CHECK(rows == x.B && targets == x.n_targets && x.first_row == 0);
    }
    batcher_free(b);
    for (int k = 0; k < ranks; k++) batcher_free(r[k]);
    free_set(ds);
}

static void test_rank_shards(void) {
    batcher_options grouped = {.batch_size = 4, .shuffle = 1, .group_by_length = 1, .seed = 5};
    check_shards(&grouped, 2, "grouped, 2 ranks");
    check_shards(&grouped, 4, "grouped, 4 ranks");
    batcher_options packed = {.batch_size = 6, .seq_len = 48, .pack = 1, .shuffle = 1, .seed = 2};
    check_shards(&packed, 3, "packed, 3 ranks");
    batcher_options bad = {.batch_size = 4, .rank = 2, .n_ranks = 2};
    data_set *ds = make_set(10, 2, 8, 1);
    batcher *b = NULL;
    badam_error err;
    CHECK(batcher_create(ds, &bad, &b, &err) == BADAM_E_INVALID && !b);
    free_set(ds);
}

static void test_packing(void) {
    data_set *ds = make_set(200, 2, 50, 11);
    const int S = 64;
    batcher_options o = {.batch_size = 4, .seq_len = S, .pack = 1, .shuffle = 1, .seed = 2};
    batcher *b = NULL;
    badam_error err;
    CHECK_OK(batcher_create(ds, &o, &b, &err), &err);
    size_t nb = batcher_batches_per_epoch(b), total_len = 0;
    for (size_t i = 0; i < ds->n; i++) total_len += ds->examples[i].len;
    size_t rows_per_epoch = 0;
    size_t first_hashes[64] = {0};
    for (int epoch = 0; epoch < 2; epoch++) {
        int seen[200] = {0};
        size_t cells = 0, rows = 0;
        for (size_t k = 0; k < nb; k++) {
            data_batch x;
            batcher_next(b, &x);
            if (epoch == 0 && k < 64) first_hashes[k] = batch_hash(&x);
            CHECK(x.T <= S && x.B >= 1 && x.B <= 4);
            cells += (size_t)x.B * (size_t)x.T;
            rows += (size_t)x.B;
            int targets = 0, longest = 0;
            for (int r = 0; r < x.B; r++) {
                const int32_t *tok = x.tokens + (size_t)r * x.T, *tgt = x.targets + (size_t)r * x.T;
                const int32_t *pos = x.positions + (size_t)r * x.T;
                const int32_t *seg = x.seg_start + (size_t)r * x.T;
                int t = 0, ok = 1;
                while (t < x.T && tok[t] != 0 && ok) { /* one example per segment */
                    int ex = EX_OF(tok[t]);
                    ok = ex >= 0 && ex < 200 && POS_OF(tok[t]) == 0;
                    if (!ok) break;
                    const token_seq *e = &ds->examples[ex];
                    int L = (int)e->len;
                    ok = t + L <= x.T;
                    for (int j = 0; j < L && ok; j++) {
                        int want = j + 1 < L && e->trained[j + 1] ? e->ids[j + 1] : -100;
                        ok = tok[t + j] == e->ids[j] && tgt[t + j] == want && pos[t + j] == j &&
                             seg[t + j] == t;
                        targets += want != -100;
                    }
                    seen[ex]++;
                    t += L;
                }
                CHECKF(ok, "packed row %d of batch %zu", r, k);
                if (t > longest) longest = t;
                for (int p = t; p < x.T; p++) /* padding: its own segment, no target */
                    CHECK(tok[p] == 0 && tgt[p] == -100 && seg[p] == t && pos[p] == p - t);
            }
            CHECK(x.T == longest);
            CHECK(x.n_targets == targets);
        }
        for (int i = 0; i < 200; i++)
            CHECKF(seen[i] == 1, "packing, epoch %d: example %d seen %d times", epoch, i, seen[i]);
        if (epoch == 0) rows_per_epoch = rows;
        CHECK(rows == rows_per_epoch);
        /* best-fit decreasing fills rows well: padding under 10% */
        double pad = 1.0 - (double)total_len / (double)cells;
        CHECKF(pad < 0.10, "packing padding ratio %.3f", pad);
        CHECK(rows < 200 / 2);
    }
    /* resume inside packing */
    batcher *c = NULL;
    CHECK_OK(batcher_create(ds, &o, &c, &err), &err);
    batcher_state st = {0, 3};
    CHECK_OK(batcher_set_state(c, st, &err), &err);
    for (size_t k = 3; k < nb && k < 64; k++) {
        data_batch x;
        batcher_next(c, &x);
        CHECK(batch_hash(&x) == first_hashes[k]);
    }
    batcher_free(c);
    batcher_free(b);

    /* examples longer than seq_len are cut to seq_len, still one per row */
    data_set *big = make_set(10, 30, 40, 4);
    batcher_options o2 = {.batch_size = 3, .seq_len = 20, .pack = 1};
    CHECK_OK(batcher_create(big, &o2, &b, &err), &err);
    CHECK(batcher_batches_per_epoch(b) == 4);
    data_batch x;
    batcher_next(b, &x);
    CHECK(x.B == 3 && x.T == 20);
    CHECK(x.seg_start[19] == 0 && x.positions[19] == 19 && x.targets[19] == -100);
    batcher_free(b);
    data_free(big);
    free_set(ds);
}

static double padding_ratio(const data_set *ds, const batcher_options *o) {
    batcher *b = NULL;
    badam_error err;
    if (batcher_create(ds, o, &b, &err) != BADAM_OK) return 1.0;
    size_t nb = batcher_batches_per_epoch(b), cells = 0, tokens = 0;
    for (size_t i = 0; i < ds->n; i++) tokens += ds->examples[i].len;
    for (size_t k = 0; k < nb; k++) {
        data_batch x;
        batcher_next(b, &x);
        cells += (size_t)x.B * (size_t)x.T;
    }
    batcher_free(b);
    return 1.0 - (double)tokens / (double)cells;
}

static void test_group_by_length(void) {
    data_set *ds = make_set(2000, 5, 500, 21);
    batcher_options plain = {.batch_size = 8, .shuffle = 1, .seed = 1};
    batcher_options grouped = plain;
    grouped.group_by_length = 1;
    double p0 = padding_ratio(ds, &plain), p1 = padding_ratio(ds, &grouped);
    fprintf(stderr, "  padding: %.3f shuffled, %.3f grouped by length\n", p0, p1);
    CHECK(p0 > 0.3);
    CHECK(p1 < p0 / 4);
    /* the batch with the longest example comes first */
    batcher *b = NULL;
    badam_error err;
    CHECK_OK(batcher_create(ds, &grouped, &b, &err), &err);
    size_t longest = 0;
    for (size_t i = 0; i < ds->n; i++)
        if (ds->examples[i].len > longest) longest = ds->examples[i].len;
    data_batch x;
    batcher_next(b, &x);
    CHECK((size_t)x.T == longest);
    /* grouping still shuffles: the batch order of two epochs differs */
    size_t nb = batcher_batches_per_epoch(b);
    size_t *h0 = calloc(nb, sizeof *h0);
    h0[0] = batch_hash(&x);
    for (size_t k = 1; k < nb; k++) {
        batcher_next(b, &x);
        h0[k] = batch_hash(&x);
    }
    size_t differ = 0;
    for (size_t k = 0; k < nb; k++) {
        batcher_next(b, &x);
        differ += batch_hash(&x) != h0[k];
    }
    CHECK(differ > nb / 2);
    free(h0);
    batcher_free(b);
    free_set(ds);
}

static void test_resume(void) {
    data_set *ds = make_set(57, 2, 30, 31);
    const batcher_options opts[3] = {
        {.batch_size = 4, .shuffle = 1, .seed = 99},
        {.batch_size = 4, .shuffle = 1, .group_by_length = 1, .seed = 99},
        {.batch_size = 3, .seq_len = 40, .pack = 1, .shuffle = 1, .seed = 99},
    };
    for (int v = 0; v < 3; v++) {
        batcher *b = NULL;
        badam_error err;
        CHECK_OK(batcher_create(ds, &opts[v], &b, &err), &err);
        size_t nb = batcher_batches_per_epoch(b), total = nb * 3 + 2;
        size_t *hashes = calloc(total, sizeof *hashes);
        batcher_state *states = calloc(total, sizeof *states);
        for (size_t k = 0; k < total; k++) {
            states[k] = batcher_get_state(b);
            data_batch x;
            batcher_next(b, &x);
            hashes[k] = batch_hash(&x);
        }
        /* resume from a few points (mid-epoch, epoch starts) into a fresh batcher */
        size_t points[4] = {1, nb, nb + nb / 2, 2 * nb + 1};
        for (int p = 0; p < 4; p++) {
            batcher *c = NULL;
            CHECK_OK(batcher_create(ds, &opts[v], &c, &err), &err);
            CHECK_OK(batcher_set_state(c, states[points[p]], &err), &err);
            for (size_t k = points[p]; k < total; k++) {
                data_batch x;
                batcher_next(c, &x);
                CHECKF(batch_hash(&x) == hashes[k], "variant %d, resume at %zu: batch %zu", v,
                       points[p], k);
            }
            batcher_free(c);
        }
        /* the end of an epoch is the start of the next */
        batcher *c = NULL;
        CHECK_OK(batcher_create(ds, &opts[v], &c, &err), &err);
        batcher_state end = {1, nb};
        CHECK_OK(batcher_set_state(c, end, &err), &err);
        batcher_state norm = batcher_get_state(c);
        CHECK(norm.epoch == 2 && norm.index == 0);
        data_batch x;
        batcher_next(c, &x);
        CHECK(batch_hash(&x) == hashes[2 * nb]);
        batcher_state bad = {0, nb + 1};
        CHECK(batcher_set_state(c, bad, &err) == BADAM_E_INVALID);
        batcher_free(c);
        free(hashes);
        free(states);
        batcher_free(b);
    }
    free_set(ds);
}

/* The order of an epoch as example indices of each row's first token. */
static void epoch_order(const data_set *ds, const batcher_options *o, uint64_t epoch, int *out) {
    batcher *b = NULL;
    badam_error err;
    if (batcher_create(ds, o, &b, &err) != BADAM_OK) return;
    batcher_state s = {epoch, 0};
    batcher_set_state(b, s, &err);
    size_t nb = batcher_batches_per_epoch(b), k = 0;
    for (size_t i = 0; i < nb; i++) {
        data_batch x;
        batcher_next(b, &x);
        for (int r = 0; r < x.B; r++) out[k++] = EX_OF(x.tokens[(size_t)r * x.T]);
    }
    batcher_free(b);
}

static void test_seeds(void) {
    data_set *ds = make_set(64, 2, 10, 41);
    batcher_options o = {.batch_size = 4, .shuffle = 1, .seed = 1};
    int a[64], b[64], c[64], d[64], e[64];
    epoch_order(ds, &o, 0, a);
    epoch_order(ds, &o, 0, b);
    epoch_order(ds, &o, 1, c);
    o.seed = 2;
    epoch_order(ds, &o, 0, d);
    o.shuffle = 0;
    epoch_order(ds, &o, 0, e);
    int ab = 0, ac = 0, ad = 0, in_order = 1;
    for (int i = 0; i < 64; i++) {
        ab += a[i] != b[i];
        ac += a[i] != c[i];
        ad += a[i] != d[i];
        in_order &= e[i] == i;
    }
    CHECK(ab == 0);  /* same seed and epoch: same order */
    CHECK(ac > 32);  /* another epoch: another order */
    CHECK(ad > 32);  /* another seed: another order */
    CHECK(in_order); /* no shuffle: file order */
    free_set(ds);
}

static void test_errors(void) {
    data_set *ds = make_set(4, 2, 5, 1);
    batcher *b = NULL;
    badam_error err;
    batcher_options o = {.batch_size = 0};
    CHECK(batcher_create(ds, &o, &b, &err) == BADAM_E_INVALID && b == NULL);
    o.batch_size = 2;
    o.pack = 1;
    CHECK(batcher_create(ds, &o, &b, &err) == BADAM_E_INVALID);
    data_set empty = {0};
    o.pack = 0;
    CHECK(batcher_create(&empty, &o, &b, &err) == BADAM_E_INVALID);
    CHECK(batcher_create(NULL, &o, &b, &err) == BADAM_E_INVALID);
    free_set(ds);
}

int main(void) {
    RUN_TEST(test_every_example_once);
    RUN_TEST(test_in_order_and_shift);
    RUN_TEST(test_packing);
    RUN_TEST(test_group_by_length);
    RUN_TEST(test_resume);
    RUN_TEST(test_seeds);
    RUN_TEST(test_errors);
    RUN_TEST(test_rank_shards);
    return test_result();
}
