/* The task batcher (badam/tasks.h, "batches"): rows equal tokenizer_encode_pair's encoding with
 * the truncation to seq_len, right padding with the pad id (type 0, mask 0), labels per unit;
 * every example once per epoch, a new seeded order each epoch, the same order for the same seed;
 * the rows of two ranks together are the one-process batch (same T, first_row); choice sets give
 * n_choices consecutive rows per question; exact resume from (epoch, index); errors. */
#include <stdlib.h>
#include <string.h>

#include "badam/tasks.h"
#include "testutil.h"

static badam_tokenizer *g_tok;
static task_set *g_rte, *g_copa;

static task_batcher *make(const task_set *set, int bs, int seq_len, int shuffle, uint64_t seed,
                          int rank, int ranks) {
    task_batch_options o = {bs, seq_len, shuffle, seed, rank, ranks, 0};
    task_batcher *b = NULL;
    badam_error err = {0};
    if (task_batcher_create(set, g_tok, &o, &b, &err)) fprintf(stderr, "%s\n", err.message);
    return b;
}

/* Row r of a batch against the tokenizer's own encoding of (a, b). */
static void check_row(const task_batch *tb, int r, const char *a, const char *b, int seq_len) {
    tokenizer_encoding e = {0};
    badam_error err = {0};
    CHECK_OK(tokenizer_encode_pair(g_tok, a, strlen(a), b, b ? strlen(b) : 0, 1, (size_t)seq_len,
                                   &e, &err),
             &err);
    const int32_t *tok = tb->tokens + (size_t)r * tb->T, *ty = tb->token_types + (size_t)r * tb->T;
    const uint8_t *m = tb->pad_mask + (size_t)r * tb->T;
    CHECK(e.n <= (size_t)tb->T);
    for (int t = 0; t < tb->T; t++) {
        int real = (size_t)t < e.n;
        CHECKF(tok[t] == (real ? e.ids[t] : 0) && ty[t] == (real ? e.type_ids[t] : 0) &&
                   m[t] == real,
               "row %d token %d", r, t);
    }
    tokenizer_encoding_free(&e);
}

static void test_rows_and_epochs(void) {
    task_batcher *b = make(g_rte, 3, 24, 1, 5, 0, 1);
    CHECK(b && task_batcher_batches_per_epoch(b) == 3 && task_batcher_smallest_batch(b) == 1);
    CHECK(task_batcher_truncated(b) == 3); /* the long pairs of rte_train.jsonl */
    int seen[2][7] = {{0}};
    size_t order[2][7];
    for (int epoch = 0; epoch < 2; epoch++) {
        size_t at = 0;
        for (int k = 0; k < 3; k++) {
            task_batch tb;
            task_batcher_next(b, &tb);
            CHECK(tb.n_choices == 0 && tb.B == tb.n_units && tb.first_row == 0);
            for (int u = 0; u < tb.n_units; u++) {
                const task_example *x = &g_rte->examples[tb.example[u]];
                seen[epoch][tb.example[u]]++;
                order[epoch][at++] = tb.example[u];
                CHECK(tb.targets[u] == x->label);
                check_row(&tb, u, x->text_a, x->text_b, 24);
            }
        }
        CHECK(at == 7);
    }
    for (int i = 0; i < 7; i++) CHECK(seen[0][i] == 1 && seen[1][i] == 1);
    CHECK(memcmp(order[0], order[1], sizeof order[0]) != 0); /* a new order each epoch */
    /* the same seed, the same order; resume at (1, 1) gives epoch 1's second batch */
    task_batcher *c = make(g_rte, 3, 24, 1, 5, 0, 1);
    badam_error err = {0};
    CHECK(task_batcher_set_state(c, 1, 1, &err) == BADAM_OK);
    task_batch tb;
    task_batcher_next(c, &tb);
    CHECK(tb.n_units == 3 && memcmp(tb.example, order[1] + 3, 3 * sizeof(size_t)) == 0);
    uint64_t e, i;
    task_batcher_get_state(c, &e, &i);
    CHECK(e == 1 && i == 2);
    CHECK(task_batcher_set_state(c, 0, 4, &err) == BADAM_E_INVALID);
    task_batcher_free(c);
    task_batcher_free(b);
}

/* Two ranks: their rows, in rank order, are the one-process batch's. */
static void test_ranks(void) {
    task_batcher *one = make(g_rte, 3, 16, 1, 9, 0, 1);
    task_batcher *r0 = make(g_rte, 3, 16, 1, 9, 0, 2), *r1 = make(g_rte, 3, 16, 1, 9, 1, 2);
    CHECK(one && r0 && r1);
    for (int k = 0; k < 6 && one && r0 && r1; k++) {
        task_batch a, b0, b1;
        task_batcher_next(one, &a);
        task_batcher_next(r0, &b0);
        task_batcher_next(r1, &b1);
        CHECK(b0.T == a.T && b1.T == a.T && b0.B + b1.B == a.B && b1.first_row == b0.B);
        size_t cells0 = (size_t)b0.B * a.T, cells1 = (size_t)b1.B * a.T;
        CHECK(memcmp(b0.tokens, a.tokens, cells0 * 4) == 0);
        CHECK(memcmp(b1.tokens, a.tokens + cells0, cells1 * 4) == 0);
        CHECK(memcmp(b1.pad_mask, a.pad_mask + cells0, cells1) == 0);
        CHECK(b0.n_targets + b1.n_targets == a.n_targets);
    }
    badam_error err = {0};
    task_batch_options o = {3, 16, 0, 1, 2, 2, 0};
    task_batcher *bad = NULL;
    CHECK(task_batcher_create(g_rte, g_tok, &o, &bad, &err) == BADAM_E_INVALID && !bad);
    task_batcher_free(one);
    task_batcher_free(r0);
    task_batcher_free(r1);
}

static void test_choices(void) {
    task_batcher *b = make(g_copa, 2, 32, 0, 1, 0, 1);
    CHECK(b && task_batcher_max_rows(b) == 4);
    task_batch tb;
    task_batcher_next(b, &tb);
    CHECK(tb.n_choices == 2 && tb.n_units == 2 && tb.B == 4);
    for (int u = 0; u < 2; u++) {
        const task_example *x = &g_copa->examples[u];
        CHECK(tb.example[u] == (size_t)u && tb.targets[u] == x->label);
        check_row(&tb, 2 * u, x->text_a, x->choices[0], 32);
        check_row(&tb, 2 * u + 1, x->text_a, x->choices[1], 32);
    }
    task_batcher_free(b);
    /* a budget below the special tokens is the tokenizer's error, naming the example */
    task_batch_options o = {2, 2, 0, 1, 0, 1, 0};
    task_batcher *bad = NULL;
    badam_error err = {0};
    CHECK(task_batcher_create(g_copa, g_tok, &o, &bad, &err) != BADAM_OK && !bad);
    CHECKF(strstr(err.message, "example 0 (line 1)"), "%s", err.message);
}

int main(void) {
    if (!test_source_path("tests/fixtures/wordpiece-tiny")) {
        fprintf(stderr, "SKIP: BADAM_SOURCE_DIR is not set\n");
        return TEST_SKIP_CODE;
    }
    badam_error err = {0};
    char tok[4096], rte[4096], copa[4096];
    snprintf(tok, sizeof tok, "%s", test_source_path("tests/fixtures/wordpiece-tiny"));
    snprintf(rte, sizeof rte, "%s", test_source_path("tests/fixtures/encoder/rte_train.jsonl"));
    snprintf(copa, sizeof copa, "%s", test_source_path("tests/fixtures/encoder/copa_train.jsonl"));
    if (tokenizer_load(tok, &g_tok, &err) || task_load(TASK_RTE, rte, &g_rte, &err) ||
        task_load(TASK_COPA, copa, &g_copa, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    RUN_TEST(test_rows_and_epochs);
    RUN_TEST(test_ranks);
    RUN_TEST(test_choices);
    task_set_free(g_rte);
    task_set_free(g_copa);
    tokenizer_free(g_tok);
    return test_result();
}
