/* Packed rows: two examples in one row (positions restart, attention kept inside each example)
 * give the same logits, loss and gradients as the examples in separate right-padded rows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_fixtures.h"

enum { C = 32, I = 48, L = 2, HQ = 4, HKV = 2, V = 31, LEN0 = 4, LEN1 = 5 };

static void test_packed_equals_separate(void) {
    badam_error err = {0};
    llama_config cfg = fixture_config(C, I, L, HQ, HKV, V, 1, 1, 0);
    llama_model *m = NULL;
    CHECK_OK(llama_model_create(&cfg, BADAM_DTYPE_F32, &m, &err), &err);
    test_rng rng;
    test_rng_seed(&rng, 21);
    fixture_randomize(m, &rng, 0.15f);
    int32_t ex[2][LEN1], tg[2][LEN1];
    int lens[2] = {LEN0, LEN1};
    for (int e = 0; e < 2; e++)
        for (int t = 0; t < lens[e]; t++) {
            ex[e][t] = (int32_t)(test_rng_u32(&rng) % V);
            tg[e][t] = t + 1 < lens[e] ? (int32_t)(test_rng_u32(&rng) % V) : -100;
        }
    /* Separate: B=2, T=5, the first row padded. */
    int32_t sep_tok[2 * LEN1] = {0}, sep_tgt[2 * LEN1];
    for (int i = 0; i < 2 * LEN1; i++) sep_tgt[i] = -100;
    for (int e = 0; e < 2; e++)
        for (int t = 0; t < lens[e]; t++) {
            sep_tok[e * LEN1 + t] = ex[e][t];
            sep_tgt[e * LEN1 + t] = tg[e][t];
        }
    /* Packed: B=1, T=9. */
    enum { TP = LEN0 + LEN1 };
    int32_t pk_tok[TP], pk_tgt[TP], pk_pos[TP], pk_seg[TP];
    for (int t = 0; t < TP; t++) {
        int e = t >= LEN0, u = e ? t - LEN0 : t;
        pk_tok[t] = ex[e][u], pk_tgt[t] = tg[e][u], pk_pos[t] = u, pk_seg[t] = e ? LEN0 : 0;
    }
    llama_batch sep = {.B = 2, .T = LEN1, .tokens = sep_tok, .targets = sep_tgt};
    llama_batch pk = {.B = 1,
                      .T = TP,
                      .tokens = pk_tok,
                      .targets = pk_tgt,
                      .positions = pk_pos,
                      .seg_start = pk_seg};
    llama_workspace *ws_sep = NULL, *ws_pk = NULL;
    CHECK_OK(llama_workspace_create(m, 2, LEN1, &ws_sep, &err), &err);
    CHECK_OK(llama_workspace_create(m, 1, TP, &ws_pk, &err), &err);
    float *lsep = malloc(sizeof(float) * 2 * LEN1 * V), *lpk = malloc(sizeof(float) * TP * V);
    CHECK_OK(llama_forward_logits(m, ws_sep, &sep, lsep, &err), &err);
    CHECK_OK(llama_forward_logits(m, ws_pk, &pk, lpk, &err), &err);
    for (int t = 0; t < TP; t++) {
        int e = t >= LEN0, u = e ? t - LEN0 : t;
        CHECK_CLOSE(lpk + (size_t)t * V, lsep + (size_t)(e * LEN1 + u) * V, V, 1e-6, 1e-5,
                    "packed position %d logits differ", t);
    }
    uint8_t *all = malloc((size_t)m->n_params);
    memset(all, 1, (size_t)m->n_params);
    llama_grad_plan plan;
    llama_plan_for_flags(m, all, 0, &plan);
    float **g_sep = fixture_grads_alloc(m), **g_pk = fixture_grads_alloc(m);
    double loss_sep = fixture_train_step(m, ws_sep, &sep, &plan, g_sep);
    double loss_pk = fixture_train_step(m, ws_pk, &pk, &plan, g_pk);
    CHECK_NEAR(loss_pk, loss_sep, 1e-7, 1e-5, "loss, packed vs separate");
    for (int i = 0; i < m->n_params; i++) {
        CHECK_CLOSE(g_pk[i], g_sep[i], m->params[i].numel, 1e-6, 1e-4,
                    "%s: packed vs separate gradient", m->params[i].name);
    }
    /* A segment start after the position is refused. */
    pk_seg[2] = 3;
    double ls;
    int n;
    CHECK(llama_forward(m, ws_pk, &pk, NULL, 1.0f, NULL, &ls, &n, &err) == BADAM_E_SHAPE);
    fixture_grads_free(m, g_sep);
    fixture_grads_free(m, g_pk);
    free(all);
    free(lsep);
    free(lpk);
    llama_workspace_free(ws_sep);
    llama_workspace_free(ws_pk);
    llama_model_free(m);
}

int main(void) {
    RUN_TEST(test_packed_equals_separate);
    return test_result();
}
