/* Masked-LM masking (badam/mlm.h): the exact draws against a Python port of the rule
 * (tests/ref/mlm_mask_ref.py, plain Python); the statistics (15% of non-special tokens selected,
 * 80% of those masked, 10% random, 10% unchanged; special tokens never); masks that depend on the
 * sequence (unit), not on the batch it sits in, its row, its padding or the number of ranks, and
 * change with the epoch; padding gets the pad id and pad_mask 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/mlm.h"
#include "io/files.h"
#include "ref_compare.h"
#include "testutil.h"

enum { V = 5000, MASK = 4, PAD = 1 };

static mlm_masker *make(uint64_t seed) {
    uint8_t *special = calloc(V, 1);
    special[0] = special[2] = special[3] = 1;
    mlm_masker *mk = NULL;
    badam_error err = {0};
    badam_status st = mlm_masker_create_ids(V, MASK, PAD, special, 0.15, seed, &mk, &err);
    CHECKF(!st, "masker: %s", err.message);
    free(special);
    return mk;
}

/* Row u's tokens: <s>-like 0 first, </s>-like 2 last, others pseudo-random non-special ids. */
static void row_ids(int u, int n, int32_t *ids) {
    for (int t = 0; t < n; t++) ids[t] = 5 + (int32_t)((u * 7919u + t * 104729u) % (V - 5));
    ids[0] = 0, ids[n - 1] = 2;
}

static void test_python_port(void) {
    if (!test_source_path("tests/ref")) {
        fprintf(stderr, "skip: BADAM_SOURCE_DIR is not set\n");
        return;
    }
    const char *dir = test_workdir("mlm-port");
    enum { ROWS = 6, N = 300 };
    int units[ROWS] = {0, 1, 2, 77, 1000003, 5};
    int32_t ids[ROWS][N], in[N], tg[N];
    char path[1200], outp[1200], cmd[4096];
    snprintf(path, sizeof path, "%s/rows.json", dir);
    snprintf(outp, sizeof outp, "%s/out.json", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fprintf(f, "{\"units\": [");
    for (int r = 0; r < ROWS; r++) fprintf(f, "%s%d", r ? ", " : "", units[r]);
    fprintf(f, "], \"ids\": [");
    for (int r = 0; r < ROWS; r++) {
        row_ids(units[r], N, ids[r]);
        for (int t = 0; t < N; t++) fprintf(f, "%s%d", t ? ", " : r ? ", [" : "[", ids[r][t]);
        fprintf(f, "]");
    }
    fprintf(f, "]}\n");
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/mlm_mask_ref.py --seed 11 --epoch 3 --vocab %d --mask %d --pad "
             "%d --special 0,2,3 --rows %s > %s",
             test_source_path("tests/ref"), V, MASK, PAD, path, outp);
    CHECK(test_system(cmd) == 0);
    json_t *ref = NULL;
    badam_error err = {0};
    CHECK_OK(io_read_json(outp, &ref, &err), &err);
    if (!ref) return;
    mlm_masker *mk = make(11);
    int diff = 0, masked = 0;
    for (int r = 0; r < ROWS; r++) {
        masked += mlm_mask_row(mk, 3, (uint64_t)units[r], ids[r], N, in, tg);
        const json_t *ri = json_array_get(json_object_get(ref, "inputs"), r);
        const json_t *rt = json_array_get(json_object_get(ref, "targets"), r);
        CHECK(json_array_size(ri) == N && json_array_size(rt) == N);
        for (int t = 0; t < N && json_array_size(ri) == N; t++)
            diff += in[t] != json_integer_value(json_array_get(ri, t)) ||
                    tg[t] != json_integer_value(json_array_get(rt, t));
    }
    CHECKF(diff == 0 && masked > 100, "Python port: %d of %d positions differ (%d masked)", diff,
           ROWS * N, masked);
    json_decref(ref);
    mlm_masker_free(mk);
}

/* 200k tokens: selection 15% (5 sigma: 0.004), then 80 / 10 / 10 (within 0.015). */
static void test_statistics(void) {
    mlm_masker *mk = make(5);
    enum { ROWS = 400, N = 500 };
    int32_t ids[N], in[N], tg[N];
    long real = 0, sel = 0, mask = 0, same = 0, special_sel = 0;
    for (int u = 0; u < ROWS; u++) {
        row_ids(u, N, ids);
        ids[N / 2] = 3; /* another special token mid-row */
        mlm_mask_row(mk, 0, (uint64_t)u, ids, N, in, tg);
        for (int t = 0; t < N; t++) {
            int special = ids[t] == 0 || ids[t] == 2 || ids[t] == 3;
            real += !special;
            if (tg[t] == -100) {
                CHECK(in[t] == ids[t]);
                continue;
            }
            special_sel += special;
            CHECK(tg[t] == ids[t]);
            sel++, mask += in[t] == MASK, same += in[t] == ids[t];
        }
    }
    double p = (double)sel / real, pm = (double)mask / sel, ps = (double)same / sel;
    double pr = 1.0 - pm - ps;
    CHECKF(fabs(p - 0.15) < 0.004 && fabs(pm - 0.8) < 0.015 && fabs(ps - 0.1) < 0.015 &&
               fabs(pr - 0.1) < 0.015 && special_sel == 0,
           "selected %.4f, masked %.4f, unchanged %.4f, random %.4f of %ld; %ld special", p, pm, ps,
           pr, real, special_sel);
    mlm_masker_free(mk);
}

/* One batch of units 10..13 against the same units split as two ranks' rows with other padding,
 * and in another order: the same masks per unit; another epoch other masks. */
static void test_rank_independent(void) {
    mlm_masker *mk = make(9);
    enum { T = 40 };
    int32_t tok[4 * T], in[4 * T], tg[4 * T], len[4] = {40, 25, 33, 12};
    int64_t units[4] = {10, 11, 12, 13};
    uint8_t pm[4 * T];
    for (int r = 0; r < 4; r++) row_ids((int)units[r], len[r], tok + r * T);
    data_batch db = {.B = 4, .T = T, .tokens = tok, .lengths = len, .units = units, .epoch = 2};
    int n = mlm_mask_batch(mk, &db, in, tg, pm);
    CHECK(n > 0);
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < T; t++) {
            CHECK(pm[r * T + t] == (t < len[r]));
            if (t >= len[r]) CHECK(in[r * T + t] == PAD && tg[r * T + t] == -100);
        }
    /* "rank 1": units 13 and 11, T 30 */
    enum { T2 = 30 };
    int32_t tok2[2 * T2], in2[2 * T2], tg2[2 * T2], len2[2] = {12, 25};
    int64_t units2[2] = {13, 11};
    uint8_t pm2[2 * T2];
    row_ids(13, 12, tok2), row_ids(11, 25, tok2 + T2);
    data_batch d2 = {.B = 2, .T = T2, .tokens = tok2, .lengths = len2, .units = units2, .epoch = 2};
    mlm_mask_batch(mk, &d2, in2, tg2, pm2);
    int src[2] = {3, 1}, diff = 0;
    for (int r = 0; r < 2; r++)
        for (int t = 0; t < len2[r]; t++)
            diff += in2[r * T2 + t] != in[src[r] * T + t] || tg2[r * T2 + t] != tg[src[r] * T + t];
    CHECKF(diff == 0, "%d positions differ between the batch and its rows elsewhere", diff);
    db.epoch = 3;
    int32_t in3[4 * T], tg3[4 * T];
    mlm_mask_batch(mk, &db, in3, tg3, pm);
    CHECK(memcmp(tg3, tg, sizeof tg) != 0);
    mlm_masker_free(mk);
}

static void test_errors(void) {
    mlm_masker *mk = NULL;
    badam_error err = {0};
    CHECK(mlm_masker_create_ids(V, MASK, PAD, NULL, 0.0, 1, &mk, &err) == BADAM_E_INVALID);
    CHECK(mlm_masker_create_ids(V, V, PAD, NULL, 0.15, 1, &mk, &err) == BADAM_E_INVALID);
    CHECK(mk == NULL);
}

int main(void) {
    RUN_TEST(test_python_port);
    RUN_TEST(test_statistics);
    RUN_TEST(test_rank_independent);
    RUN_TEST(test_errors);
    return test_result();
}
