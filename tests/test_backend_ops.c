/* Every op of every backend in tests/util/backend_list.c against the reference backend
 * (tests/util/ref_backend.c) on randomised shapes with edge cases: one row (T = 1), odd sizes,
 * grouped-query attention, packed segments, sliding windows, fp32, bf16 and f16 weights, and the
 * optimizer ops over four steps (n = 0, 1, odd, large; write-back to fp32, bf16 and f16; split
 * masters). Each check states an absolute and a relative tolerance (CHECK_CLOSE); what is defined
 * bit for bit (a write-back copy is its master rounded, a split master equals the fp32 master,
 * scale's single rounding) is compared exactly. Inputs live in backend memory
 * (uploaded), results are downloaded: the test uses only the interface, so a device backend runs
 * it unchanged. bf16 weights run the portable fp32 GEMM here (the native bf16 GEMM rounds the
 * activations, and test_ops checks it against its own oracle). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_list.h"
#include "ref_backend.h"
#include "testutil.h"

typedef struct pair {
    backend *be, *ref;
    const char *name;
    test_rng rng;
} pair;

static float *host_randn(test_rng *rng, size_t n, float scale) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    test_fill_normal(rng, x, n, scale);
    return x;
}

/* A copy of host data in be's memory. */
static void *up(backend *be, const void *host, size_t bytes) {
    void *p = BE(be, alloc, BADAM_MEM_OTHER, bytes ? bytes : 4);
    BE(be, upload, p, host, bytes);
    return p;
}

/* be's tensor downloaded into a malloc'd host array. */
static float *down(backend *be, const void *dev, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    BE(be, download, h, dev, n * sizeof(float));
    return h;
}

/* Runs `n` floats of output on both backends from the same host start values and compares. */
#define COMPARE(P, n, atol, rtol, what, dev_out, ref_out)                                          \
    do {                                                                                           \
        float *a_ = down((P)->be, dev_out, n), *b_ = down((P)->ref, ref_out, n);                   \
        CHECK_CLOSE(a_, b_, n, atol, rtol, "%s: %s", (P)->name, what);                             \
        free(a_), free(b_);                                                                        \
    } while (0)

static void check_linear(pair *P, badam_dtype dt, int n, int in, int out, int bias) {
    test_rng *r = &P->rng;
    float *x = host_randn(r, (size_t)n * in, 1), *w32 = host_randn(r, (size_t)out * in, 0.2f);
    float *b = host_randn(r, out, 1), *dy = host_randn(r, (size_t)n * out, 1);
    float *g0 = host_randn(r, (size_t)out * in, 1), *x0 = host_randn(r, (size_t)n * in, 1);
    void *w = malloc((size_t)out * in * badam_dtype_size(dt));
    badam_convert(w, dt, w32, BADAM_DTYPE_F32, (size_t)out * in);
    backend *bs[2] = {P->be, P->ref};
    float *y[2], *dx[2], *dw[2], *db[2];
    op_counters before[2];
    for (int s = 0; s < 2; s++) {
        backend *be = bs[s];
        size_t sc = be->ops->linear_scratch_floats(in > out ? in : out);
        float *scratch = BE(be, alloc, BADAM_MEM_WORKSPACE, sc * sizeof(float));
        float *dx_ = up(be, x, sizeof(float) * n * in), *dy_ = up(be, dy, sizeof(float) * n * out);
        float *b_ = up(be, b, sizeof(float) * out);
        before[s] = be->counters;
        y[s] = BE(be, alloc, BADAM_MEM_OTHER, sizeof(float) * ((size_t)n * out + 1));
        BE(be, linear_forward, y[s], dx_, w, dt, bias ? b_ : NULL, n, in, out, scratch);
        dx[s] = up(be, x0, sizeof(float) * n * in);
        BE(be, linear_backward_input, dx[s], dy_, w, dt, n, in, out, scratch);
        dw[s] = up(be, g0, sizeof(float) * out * in);
        db[s] = up(be, b, sizeof(float) * out);
        BE(be, linear_backward_weight, dw[s], bias ? db[s] : NULL, dy_, dx_, dt, n, in, out,
           scratch, sc);
        BE(be, free, scratch), BE(be, free, dx_), BE(be, free, dy_), BE(be, free, b_);
    }
    char what[96];
    snprintf(what, sizeof what, "linear %s n=%d in=%d out=%d bias=%d", badam_dtype_name(dt), n, in,
             out, bias);
    COMPARE(P, (size_t)n * out, 1e-5, 1e-5, what, y[0], y[1]);
    COMPARE(P, (size_t)n * in, 1e-5, 1e-5, what, dx[0], dx[1]);
    COMPARE(P, (size_t)out * in, 1e-5, 1e-5, what, dw[0], dw[1]);
    if (bias) COMPARE(P, (size_t)out, 1e-5, 1e-5, what, db[0], db[1]);
    CHECKF(P->be->counters.gemm_flops - before[0].gemm_flops ==
               P->ref->counters.gemm_flops - before[1].gemm_flops,
           "%s: %s GEMM FLOPs", P->name, what);
    for (int s = 0; s < 2; s++)
        BE(bs[s], free, y[s]), BE(bs[s], free, dx[s]), BE(bs[s], free, dw[s]),
            BE(bs[s], free, db[s]);
    free(x), free(w32), free(b), free(dy), free(g0), free(x0), free(w);
}

static void check_gemm(pair *P, int ta, int tb, int M, int N, int K, float beta) {
    test_rng *r = &P->rng;
    float *A = host_randn(r, (size_t)M * K, 1), *B = host_randn(r, (size_t)K * N, 1);
    float *C0 = host_randn(r, (size_t)M * N, 1);
    backend *bs[2] = {P->be, P->ref};
    float *c[2];
    for (int s = 0; s < 2; s++) {
        float *a = up(bs[s], A, sizeof(float) * M * K), *b = up(bs[s], B, sizeof(float) * K * N);
        c[s] = up(bs[s], C0, sizeof(float) * M * N);
        BE(bs[s], gemm_f32, ta, tb, M, N, K, 0.7f, a, ta ? M : K, b, tb ? K : N, beta, c[s], N);
        BE(bs[s], free, a), BE(bs[s], free, b);
    }
    char what[80];
    snprintf(what, sizeof what, "gemm_f32 ta=%d tb=%d %dx%dx%d beta=%g", ta, tb, M, N, K, beta);
    COMPARE(P, (size_t)M * N, 1e-5, 1e-5, what, c[0], c[1]);
    for (int s = 0; s < 2; s++) BE(bs[s], free, c[s]);
    free(A), free(B), free(C0);
}

static void check_elementwise(pair *P, size_t n) {
    test_rng *r = &P->rng;
    float *a = host_randn(r, n, 2), *b = host_randn(r, n, 2), *o0 = host_randn(r, n, 1);
    backend *bs[2] = {P->be, P->ref};
    float *out[2][8];
    for (int s = 0; s < 2; s++) {
        backend *be = bs[s];
        float *da = up(be, a, n * 4), *db = up(be, b, n * 4);
        for (int i = 0; i < 8; i++) out[s][i] = up(be, o0, n * 4);
        BE(be, add, out[s][0], da, db, n);
        BE(be, dropout, out[s][1], da, n, 0x1234u + n, 0, 0.3, 0);
        BE(be, dropout, out[s][2], da, n, 0x99u, 0, 0.1, 1);
        BE(be, swiglu_forward, out[s][3], da, db, n);
        BE(be, swiglu_backward, out[s][4], out[s][5], db, da, out[s][0], n);
        BE(be, relu_forward, out[s][6], da, n);
        BE(be, relu_backward, out[s][7], db, out[s][6], n);
        BE(be, free, da), BE(be, free, db);
    }
    static const char *names[8] = {"add",       "dropout",   "dropout accumulate", "swiglu forward",
                                   "swiglu dg", "swiglu du", "relu forward",       "relu backward"};
    for (int i = 0; i < 8; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s n=%zu", names[i], n);
        COMPARE(P, n, 1e-6, 1e-5, what, out[0][i], out[1][i]);
        BE(P->be, free, out[0][i]), BE(P->ref, free, out[1][i]);
    }
    free(a), free(b), free(o0);
}

static void check_norm_embed_rope(pair *P, badam_dtype dt, int n, int C, int V, int heads, int D) {
    test_rng *r = &P->rng;
    float *x = host_randn(r, (size_t)n * C, 1.5f), *w = host_randn(r, C, 1);
    float *dy = host_randn(r, (size_t)n * C, 1), *table32 = host_randn(r, (size_t)V * C, 1);
    float *q = host_randn(r, (size_t)n * heads * D, 1);
    int32_t *tok = malloc(sizeof(int32_t) * n), *pos = malloc(sizeof(int32_t) * n);
    for (int i = 0; i < n; i++) tok[i] = (int32_t)(test_rng_u32(r) % V);
    for (int i = 0; i < n; i++) pos[i] = (int32_t)(test_rng_u32(r) % 50);
    int half = D / 2;
    float *inv = malloc(sizeof(float) * half);
    for (int i = 0; i < half; i++) inv[i] = powf(10000.0f, -2.0f * i / D);
    void *table = malloc((size_t)V * C * badam_dtype_size(dt));
    badam_convert(table, dt, table32, BADAM_DTYPE_F32, (size_t)V * C);
    backend *bs[2] = {P->be, P->ref};
    float *o[2][8];
    for (int s = 0; s < 2; s++) {
        backend *be = bs[s];
        float *dx_ = up(be, x, 4 * (size_t)n * C), *dw_ = up(be, w, 4 * (size_t)C);
        float *ddy = up(be, dy, 4 * (size_t)n * C);
        int32_t *dtok = up(be, tok, 4 * (size_t)n), *dpos = up(be, pos, 4 * (size_t)n);
        o[s][0] = up(be, x, 4 * (size_t)n * C);                              /* y */
        o[s][1] = up(be, x, 4 * (size_t)n);                                  /* rstd */
        o[s][2] = up(be, dy, 4 * (size_t)n * C);                             /* dx */
        o[s][3] = up(be, w, 4 * (size_t)C);                                  /* dw */
        o[s][4] = up(be, x, 4 * (size_t)n * C);                              /* embedding out */
        o[s][5] = up(be, table32, 4 * (size_t)V * C);                        /* dtable */
        o[s][6] = BE(be, alloc, BADAM_MEM_OTHER, 4 * (size_t)50 * half * 2); /* tables */
        o[s][7] = up(be, q, 4 * (size_t)n * heads * D);                      /* rope */
        BE(be, rmsnorm_forward, o[s][0], o[s][1], dx_, dw_, n, C, 1e-5f);
        BE(be, rmsnorm_backward, o[s][2], o[s][3], ddy, dx_, dw_, o[s][1], n, C);
        BE(be, embedding_forward, o[s][4], dtok, n, table, dt, C);
        BE(be, embedding_backward, o[s][5], dtok, n, ddy, C);
        BE(be, rope_tables, o[s][6], o[s][6] + 50 * half, inv, 50, half);
        BE(be, rope_forward, o[s][7], dpos, o[s][6], o[s][6] + 50 * half, n, heads, D);
        BE(be, rope_backward, o[s][7], dpos, o[s][6], o[s][6] + 50 * half, n, heads, D / 2 * 2);
        BE(be, rope_forward, o[s][7], dpos, o[s][6], o[s][6] + 50 * half, n, heads, D);
        BE(be, free, dx_), BE(be, free, dw_), BE(be, free, ddy), BE(be, free, dtok);
        BE(be, free, dpos);
    }
    size_t sizes[8] = {(size_t)n * C, (size_t)n,     (size_t)n * C,         (size_t)C,
                       (size_t)n * C, (size_t)V * C, (size_t)50 * half * 2, (size_t)n * heads * D};
    static const char *names[8] = {"rmsnorm y",   "rmsnorm rstd",         "rmsnorm dx",
                                   "rmsnorm dw",  "embedding forward",    "embedding backward",
                                   "rope tables", "rope forward/backward"};
    for (int i = 0; i < 8; i++) {
        char what[96];
        snprintf(what, sizeof what, "%s %s n=%d C=%d", names[i], badam_dtype_name(dt), n, C);
        COMPARE(P, sizes[i], 1e-5, 1e-5, what, o[0][i], o[1][i]);
        BE(P->be, free, o[0][i]), BE(P->ref, free, o[1][i]);
    }
    free(x), free(w), free(dy), free(table32), free(q), free(tok), free(pos), free(inv);
    free(table);
}

static int32_t *segments(test_rng *r, int B, int T, int max_len) {
    int32_t *seg = malloc(sizeof(int32_t) * B * T);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T;) {
            int len = 1 + (int)(test_rng_u32(r) % (uint32_t)max_len);
            for (int i = 0; i < len && t < T; i++, t++) seg[b * T + t] = t - i;
        }
    return seg;
}

static void check_attention(pair *P, int B, int T, int Hq, int Hkv, int D, int max_seg) {
    test_rng *r = &P->rng;
    size_t nq = (size_t)B * T * Hq * D, nkv = (size_t)B * T * Hkv * D, nl = (size_t)B * Hq * T;
    float *q = host_randn(r, nq, 1), *k = host_randn(r, nkv, 1), *v = host_randn(r, nkv, 1);
    float *dout = host_randn(r, nq, 1);
    int32_t *seg = max_seg ? segments(r, B, T, max_seg) : NULL;
    backend *bs[2] = {P->be, P->ref};
    float *o[2][5];
    for (int s = 0; s < 2; s++) {
        backend *be = bs[s];
        float *dq_ = up(be, q, 4 * nq), *dk_ = up(be, k, 4 * nkv), *dv_ = up(be, v, 4 * nkv);
        float *ddo = up(be, dout, 4 * nq);
        int32_t *dseg = seg ? up(be, seg, 4 * (size_t)B * T) : NULL;
        o[s][0] = up(be, q, 4 * nq), o[s][1] = up(be, q, 4 * nl);
        o[s][2] = up(be, q, 4 * nq), o[s][3] = up(be, k, 4 * nkv), o[s][4] = up(be, v, 4 * nkv);
        BE(be, attention_forward, o[s][0], o[s][1], dq_, dk_, dv_, B, T, Hq, Hkv, D, dseg);
        BE(be, attention_backward, o[s][2], o[s][3], o[s][4], ddo, o[s][0], o[s][1], dq_, dk_, dv_,
           B, T, Hq, Hkv, D, dseg);
        BE(be, free, dq_), BE(be, free, dk_), BE(be, free, dv_), BE(be, free, ddo);
        if (dseg) BE(be, free, dseg);
    }
    size_t sizes[5] = {nq, nl, nq, nkv, nkv};
    static const char *names[5] = {"out", "lse", "dq", "dk", "dv"};
    for (int i = 0; i < 5; i++) {
        char what[96];
        snprintf(what, sizeof what, "attention %s B=%d T=%d Hq=%d Hkv=%d D=%d seg=%d", names[i], B,
                 T, Hq, Hkv, D, max_seg);
        COMPARE(P, sizes[i], 1e-5, i < 2 ? 1e-5 : 1e-4, what, o[0][i], o[1][i]);
        BE(P->be, free, o[0][i]), BE(P->ref, free, o[1][i]);
    }
    free(q), free(k), free(v), free(dout), free(seg);
}

static void check_decode(pair *P, int len, int p0, int n, int Hq, int Hkv, int D, int window) {
    test_rng *r = &P->rng;
    int stride = Hkv * D + 3; /* a cache row wider than the heads */
    float *q = host_randn(r, (size_t)n * Hq * D, 1);
    float *K = host_randn(r, (size_t)len * stride, 1), *V = host_randn(r, (size_t)len * stride, 1);
    backend *bs[2] = {P->be, P->ref};
    float *o[2];
    for (int s = 0; s < 2; s++) {
        backend *be = bs[s];
        float *dq = up(be, q, 4 * (size_t)n * Hq * D), *dK = up(be, K, 4 * (size_t)len * stride);
        float *dV = up(be, V, 4 * (size_t)len * stride);
        size_t sc = be->ops->attention_decode_scratch_floats(be, len);
        float *scratch = BE(be, alloc, BADAM_MEM_WORKSPACE, 4 * sc);
        o[s] = up(be, q, 4 * (size_t)n * Hq * D);
        BE(be, attention_decode, o[s], dq, dK, dV, n, p0, Hq, Hkv, D, stride, window, len, scratch);
        BE(be, free, dq), BE(be, free, dK), BE(be, free, dV), BE(be, free, scratch);
    }
    char what[96];
    snprintf(what, sizeof what, "attention_decode p0=%d n=%d Hq=%d Hkv=%d D=%d window=%d", p0, n,
             Hq, Hkv, D, window);
    COMPARE(P, (size_t)n * Hq * D, 1e-5, 1e-5, what, o[0], o[1]);
    BE(P->be, free, o[0]), BE(P->ref, free, o[1]);
    free(q), free(K), free(V);
}

static void check_lm_head(pair *P, badam_dtype dt, int n, int C, int V) {
    test_rng *r = &P->rng;
    float *h = host_randn(r, (size_t)n * C, 1), *w32 = host_randn(r, (size_t)V * C, 0.3f);
    float *g0 = host_randn(r, (size_t)V * C, 1), *dh0 = host_randn(r, (size_t)n * C, 1);
    int32_t *tg = malloc(sizeof(int32_t) * n);
    for (int i = 0; i < n; i++)
        tg[i] = test_rng_u32(r) % 3 == 0 ? LOSS_IGNORE_INDEX : (int32_t)(test_rng_u32(r) % V);
    void *w = malloc((size_t)V * C * badam_dtype_size(dt));
    badam_convert(w, dt, w32, BADAM_DTYPE_F32, (size_t)V * C);
    backend *bs[2] = {P->be, P->ref};
    float *dh[2], *dw[2];
    double loss[2];
    int counted[2];
    int chunk = 16;
    for (int s = 0; s < 2; s++) {
        backend *be = bs[s];
        size_t wsz = be->ops->lm_head_loss_workspace_floats(chunk, C, V);
        float *work = BE(be, alloc, BADAM_MEM_WORKSPACE, 4 * wsz),
              *dh_ = up(be, h, 4 * (size_t)n * C);
        int32_t *dtg = up(be, tg, 4 * (size_t)n);
        dh[s] = up(be, dh0, 4 * (size_t)n * C), dw[s] = up(be, g0, 4 * (size_t)V * C);
        loss[s] = BE(be, lm_head_loss, dh[s], dw[s], dh_, w, dt, dtg, n, C, V, chunk, 0.25f, work,
                     &counted[s]);
        BE(be, free, work), BE(be, free, dh_), BE(be, free, dtg);
    }
    char what[96];
    snprintf(what, sizeof what, "lm_head_loss %s n=%d C=%d V=%d", badam_dtype_name(dt), n, C, V);
    CHECK_NEAR(loss[0], loss[1], 1e-6, 1e-6, "%s: %s loss", P->name, what);
    CHECKF(counted[0] == counted[1], "%s: %s counted %d vs %d", P->name, what, counted[0],
           counted[1]);
    COMPARE(P, (size_t)n * C, 1e-6, 1e-5, what, dh[0], dh[1]);
    COMPARE(P, (size_t)V * C, 1e-6, 1e-5, what, dw[0], dw[1]);
    for (int s = 0; s < 2; s++) BE(bs[s], free, dh[s]), BE(bs[s], free, dw[s]);
    free(h), free(w32), free(g0), free(dh0), free(tg), free(w);
}

static void check_memory(pair *P) {
    const size_t n = 1000;
    float host[1000], back[1000];
    for (size_t i = 0; i < n; i++) host[i] = (float)i * 0.5f;
    float *a = up(P->be, host, sizeof host), *b = BE(P->be, alloc, BADAM_MEM_OTHER, sizeof host);
    BE(P->be, copy, b, a, sizeof host);
    BE(P->be, download, back, b, sizeof back);
    CHECKF(!memcmp(back, host, sizeof host), "%s: upload, copy, download", P->name);
    BE(P->be, zero, b, sizeof host);
    BE(P->be, download, back, b, sizeof back);
    int zero = 1;
    for (size_t i = 0; i < n; i++) zero &= back[i] == 0.0f;
    CHECKF(zero, "%s: zero", P->name);
    uint16_t *h16 = BE(P->be, alloc, BADAM_MEM_OTHER, n * 2);
    BE(P->be, convert, h16, BADAM_DTYPE_BF16, a, BADAM_DTYPE_F32, n);
    BE(P->be, convert, b, BADAM_DTYPE_F32, h16, BADAM_DTYPE_BF16, n);
    BE(P->be, download, back, b, sizeof back);
    float expect[1000];
    uint16_t tmp[1000];
    badam_convert(tmp, BADAM_DTYPE_BF16, host, BADAM_DTYPE_F32, n);
    badam_convert(expect, BADAM_DTYPE_F32, tmp, BADAM_DTYPE_BF16, n);
    CHECKF(!memcmp(back, expect, sizeof back), "%s: convert f32 -> bf16 -> f32", P->name);
    BE(P->be, free, a), BE(P->be, free, b), BE(P->be, free, h16);
}

/* The optimizer ops' buffers on one backend, started from the same host values: AdamW on an fp32
 * master p (m, v) with a write-back copy pw in dtype dt, AdamW on a split master (sw, slo; sm,
 * sv), SGD on an fp32 master q with write-back qw, SGD on a split master (tw, tlo), and SGD on
 * weights kept only in dt (st). On the host the same struct holds the downloaded results. */
typedef struct optim_run {
    float *p, *m, *v, *sm, *sv, *q;
    uint16_t *sw, *slo, *tw, *tlo;
    void *pw, *qw, *st;
} optim_run;

#define OPTIM_F32S 6 /* p, m, v, sm, sv, q */
#define OPTIM_U16S 4 /* sw, slo, tw, tlo */

static float **run_f32(optim_run *r, int i) {
    float **f[OPTIM_F32S] = {&r->p, &r->m, &r->v, &r->sm, &r->sv, &r->q};
    return f[i];
}
static uint16_t **run_u16(optim_run *r, int i) {
    uint16_t **u[OPTIM_U16S] = {&r->sw, &r->slo, &r->tw, &r->tlo};
    return u[i];
}
static void **run_dt(optim_run *r, int i) {
    void **d[3] = {&r->pw, &r->qw, &r->st};
    return d[i];
}

/* p0 (bf16-representable, so a split master starts from it exactly) and st0 = p0 in dt. */
static void optim_run_start(backend *be, optim_run *r, const float *p0, const void *st0, size_t n,
                            badam_dtype dt) {
    float *zeros = calloc(n ? n : 1, sizeof(float));
    uint16_t *w16 = malloc((n ? n : 1) * 2), *lo = calloc(n ? n : 1, 2);
    badam_convert(w16, BADAM_DTYPE_BF16, p0, BADAM_DTYPE_F32, n);
    for (int i = 0; i < OPTIM_F32S; i++)
        *run_f32(r, i) = up(be, i == 0 || i == 5 ? p0 : zeros, n * 4);
    for (int i = 0; i < OPTIM_U16S; i++) *run_u16(r, i) = up(be, i % 2 ? lo : w16, n * 2);
    for (int i = 0; i < 3; i++)
        *run_dt(r, i) = i == 2 ? up(be, st0, n * badam_dtype_size(dt))
                               : BE(be, alloc, BADAM_MEM_OTHER, n * badam_dtype_size(dt) + 4);
    free(zeros), free(w16), free(lo);
}

static void optim_run_step(backend *be, optim_run *r, const float *g_host, size_t n, badam_dtype dt,
                           int step) {
    const adamw_step_args a = {1e-2f, 0.5f, 0.1f, 0.9f, 0.999f, 1e-8f, step};
    float *g = up(be, g_host, n * 4);
    BE(be, adamw_update, r->p, r->m, r->v, g, n, &a, r->pw, dt);
    BE(be, adamw_update_split, r->sw, r->slo, r->sm, r->sv, g, n, &a);
    BE(be, sgd_update, r->q, g, n, 1e-2f, 0.5f, 0.1f, r->qw, dt);
    BE(be, sgd_update_split, r->tw, r->tlo, g, n, 1e-2f, 0.5f, 0.1f);
    BE(be, sgd_update_stored, r->st, dt, g, n, 1e-2f, 0.5f, 0.1f);
    BE(be, free, g);
}

/* Downloads every buffer of r into host (malloc'd), freeing r's backend memory. */
static void optim_run_finish(backend *be, optim_run *r, optim_run *host, size_t n, badam_dtype dt) {
    for (int i = 0; i < OPTIM_F32S; i++) {
        *run_f32(host, i) = down(be, *run_f32(r, i), n);
        BE(be, free, *run_f32(r, i));
    }
    for (int i = 0; i < OPTIM_U16S; i++) {
        *run_u16(host, i) = malloc(n * 2 + 2);
        BE(be, download, *run_u16(host, i), *run_u16(r, i), n * 2);
        BE(be, free, *run_u16(r, i));
    }
    for (int i = 0; i < 3; i++) {
        *run_dt(host, i) = malloc(n * badam_dtype_size(dt) + 4);
        BE(be, download, *run_dt(host, i), *run_dt(r, i), n * badam_dtype_size(dt));
        BE(be, free, *run_dt(r, i));
    }
}

static void optim_run_free_host(optim_run *h) {
    for (int i = 0; i < OPTIM_F32S; i++) free(*run_f32(h, i));
    for (int i = 0; i < OPTIM_U16S; i++) free(*run_u16(h, i));
    for (int i = 0; i < 3; i++) free(*run_dt(h, i));
}

/* What one backend's results must satisfy bit for bit: a write-back copy is its master rounded to
 * dt; a split master equals the fp32 master (and its Adam state) from the same start, its weight
 * the master rounded to nearest (ties excepted: the split rounds them away from zero); SGD on
 * fp32-only storage equals SGD on an fp32 master. */
static void check_optim_exact(const char *name, const char *what, optim_run *h, size_t n,
                              badam_dtype dt) {
    size_t es = badam_dtype_size(dt);
    void *round = malloc(n * es + 4);
    badam_convert(round, dt, h->p, BADAM_DTYPE_F32, n);
    CHECKF(!memcmp(round, h->pw, n * es), "%s: %s AdamW write-back", name, what);
    badam_convert(round, dt, h->q, BADAM_DTYPE_F32, n);
    CHECKF(!memcmp(round, h->qw, n * es), "%s: %s SGD write-back", name, what);
    if (dt == BADAM_DTYPE_F32)
        CHECKF(!memcmp(h->st, h->q, n * 4), "%s: %s SGD stored f32 vs master", name, what);
    int bad[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        float ps = badam_master_join(h->sw[i], h->slo[i]),
              qs = badam_master_join(h->tw[i], h->tlo[i]);
        bad[0] += memcmp(&ps, &h->p[i], 4) != 0 || memcmp(&h->sm[i], &h->m[i], 4) != 0 ||
                  memcmp(&h->sv[i], &h->v[i], 4) != 0;
        bad[1] += memcmp(&qs, &h->q[i], 4) != 0;
        bad[2] += h->sw[i] != badam_f32_to_bf16(h->p[i]) && h->slo[i] != 0x8000u;
        bad[3] += h->tw[i] != badam_f32_to_bf16(h->q[i]) && h->tlo[i] != 0x8000u;
    }
    CHECKF(!bad[0], "%s: %s AdamW split master: %d elements differ", name, what, bad[0]);
    CHECKF(!bad[1], "%s: %s SGD split master: %d elements differ", name, what, bad[1]);
    CHECKF(!bad[2] && !bad[3], "%s: %s split weights not rounded: %d, %d", name, what, bad[2],
           bad[3]);
    free(round);
}

/* Four steps of every optimizer op on n elements, write-back in dt, on the backend and the
 * reference. Across backends the fp32 results agree to 1e-6 of the tensor's largest value (fp32
 * rounding of each op, against the reference's double), and the 16-bit stored weights to two units
 * in the last place of dt at the largest value (the reference rounds twice, double -> fp32 -> dt).
 */
static void check_optim(pair *P, size_t n, badam_dtype dt) {
    test_rng *r = &P->rng;
    float *p0 = host_randn(r, n, 0.3f);
    uint16_t *b = malloc(n * 2 + 2);
    badam_convert(b, BADAM_DTYPE_BF16, p0, BADAM_DTYPE_F32, n);
    badam_convert(p0, BADAM_DTYPE_F32, b, BADAM_DTYPE_BF16, n);
    void *st0 = malloc(n * badam_dtype_size(dt) + 4);
    badam_convert(st0, dt, p0, BADAM_DTYPE_F32, n);
    backend *bs[2] = {P->be, P->ref};
    optim_run run[2], host[2];
    for (int s = 0; s < 2; s++) optim_run_start(bs[s], &run[s], p0, st0, n, dt);
    for (int step = 1; step <= 4; step++) {
        float *g = host_randn(r, n, step == 2 ? 1e-3f : 1.0f);
        for (int s = 0; s < 2; s++) optim_run_step(bs[s], &run[s], g, n, dt, step);
        free(g);
    }
    char what[64];
    snprintf(what, sizeof what, "optimizer n=%zu write-back %s", n, badam_dtype_name(dt));
    for (int s = 0; s < 2; s++) {
        optim_run_finish(bs[s], &run[s], &host[s], n, dt);
        check_optim_exact(s ? "reference" : P->name, what, &host[s], n, dt);
    }
    static const char *names[OPTIM_F32S] = {"AdamW p",       "AdamW m",       "AdamW v",
                                            "AdamW split m", "AdamW split v", "SGD p"};
    for (int i = 0; i < OPTIM_F32S; i++)
        CHECK_CLOSE(*run_f32(&host[0], i), *run_f32(&host[1], i), n, 1e-7, 1e-6, "%s: %s %s",
                    P->name, what, names[i]);
    float *st[2];
    for (int s = 0; s < 2; s++) {
        st[s] = malloc(n * 4 + 4);
        badam_convert(st[s], BADAM_DTYPE_F32, host[s].st, dt, n);
    }
    double ulp = dt == BADAM_DTYPE_BF16 ? 1.0 / 128 : dt == BADAM_DTYPE_F16 ? 1.0 / 1024 : 1.2e-7;
    CHECK_CLOSE(st[0], st[1], n, 1e-7, 2 * ulp, "%s: %s SGD stored", P->name, what);
    for (int s = 0; s < 2; s++) optim_run_free_host(&host[s]), free(st[s]);
    free(p0), free(b), free(st0);
}

/* sum_squares (double: 1e-12 relative), scale (one rounding of the product on both sides: exact)
 * and axpy (fp32 product and sum against the reference's single rounding: 1e-6). */
static void check_reductions(pair *P, size_t n) {
    test_rng *r = &P->rng;
    float *x = host_randn(r, n, 3), *y = host_randn(r, n, 1);
    backend *bs[2] = {P->be, P->ref};
    float *sx[2], *sy[2];
    double ss[2];
    for (int s = 0; s < 2; s++) {
        sx[s] = up(bs[s], x, n * 4), sy[s] = up(bs[s], y, n * 4);
        ss[s] = BE(bs[s], sum_squares, sx[s], n);
        BE(bs[s], axpy, sy[s], -0.37f, sx[s], n);
        BE(bs[s], scale, sx[s], 1.7f, n);
    }
    CHECK_NEAR(ss[0], ss[1], 0.0, 1e-12, "%s: sum_squares n=%zu", P->name, n);
    CHECKF(n || ss[0] == 0.0, "%s: sum_squares of nothing is %g", P->name, ss[0]);
    float *a = down(P->be, sx[0], n), *b = down(P->ref, sx[1], n);
    CHECKF(!memcmp(a, b, n * 4), "%s: scale n=%zu not exact", P->name, n);
    free(a), free(b);
    char what[48];
    snprintf(what, sizeof what, "axpy n=%zu", n);
    COMPARE(P, n, 1e-7, 1e-6, what, sy[0], sy[1]);
    for (int s = 0; s < 2; s++) BE(bs[s], free, sx[s]), BE(bs[s], free, sy[s]);
    free(x), free(y);
}

/* gaussian_perturb, gaussian_update_stored, gather and scatter on n elements stored in dt: the
 * same fp32 operations in the same order as the reference, so the results are bit-identical; the
 * draws of a large tensor have mean ~0 and variance ~1. */
static void check_zo_mask(pair *P, size_t n, badam_dtype dt) {
    test_rng *r = &P->rng;
    size_t es = badam_dtype_size(dt);
    float *w32 = host_randn(r, n, 0.5f);
    void *w = malloc(n * es + 4);
    badam_convert(w, dt, w32, BADAM_DTYPE_F32, n);
    size_t k = n / 3;
    int32_t *idx = malloc((k + 1) * sizeof *idx);
    for (size_t j = 0; j < k; j++) idx[j] = (int32_t)((j * 7919 + 13) % n); /* distinct: n prime */
    float *src = host_randn(r, k, 1);
    backend *bs[2] = {P->be, P->ref};
    float *pert[2], *gat[2], *srcb[2];
    void *upd[2], *sct[2];
    int32_t *ib[2];
    for (int s = 0; s < 2; s++) {
        pert[s] = BE(bs[s], alloc, BADAM_MEM_WORKSPACE, n * 4 + 4);
        BE(bs[s], gaussian_perturb, pert[s], w, dt, n, 1e-2f, 0x1234abcdull);
        upd[s] = up(bs[s], w, n * es);
        BE(bs[s], gaussian_update_stored, upd[s], dt, n, 0.3f, -1.7f, 0.1f, 99);
        ib[s] = up(bs[s], idx, k * 4);
        srcb[s] = up(bs[s], src, k * 4);
        gat[s] = BE(bs[s], alloc, BADAM_MEM_WORKSPACE, k * 4 + 4);
        BE(bs[s], gather, gat[s], w, dt, ib[s], k, 0);
        BE(bs[s], gather, gat[s], w, dt, ib[s], k, 1);
        sct[s] = up(bs[s], w, n * es);
        BE(bs[s], scatter, sct[s], dt, srcb[s], ib[s], k);
    }
    const char *dn = badam_dtype_name(dt);
    float *a = down(P->be, pert[0], n), *b = down(P->ref, pert[1], n);
    CHECKF(!memcmp(a, b, n * 4), "%s: gaussian_perturb n=%zu %s not exact", P->name, n, dn);
    free(a), free(b);
    void *ua = malloc(n * es + 4), *ub = malloc(n * es + 4);
    BE(P->be, download, ua, upd[0], n * es), BE(P->ref, download, ub, upd[1], n * es);
    CHECKF(!memcmp(ua, ub, n * es), "%s: gaussian_update_stored n=%zu %s", P->name, n, dn);
    BE(P->be, download, ua, sct[0], n * es), BE(P->ref, download, ub, sct[1], n * es);
    CHECKF(!memcmp(ua, ub, n * es), "%s: scatter n=%zu %s", P->name, n, dn);
    free(ua), free(ub);
    a = down(P->be, gat[0], k), b = down(P->ref, gat[1], k);
    CHECKF(!memcmp(a, b, k * 4), "%s: gather n=%zu %s not exact", P->name, n, dn);
    free(a), free(b);
    if (n > 10000 && dt == BADAM_DTYPE_F32) {
        float *zero = calloc(n, 4), *z = BE(P->be, alloc, BADAM_MEM_WORKSPACE, n * 4);
        BE(P->be, gaussian_perturb, z, zero, BADAM_DTYPE_F32, n, 1.0f, 7);
        float *h = down(P->be, z, n);
        double s1 = 0, s2 = 0;
        for (size_t j = 0; j < n; j++) s1 += h[j], s2 += (double)h[j] * h[j];
        double mean = s1 / n, var = s2 / n - mean * mean;
        CHECKF(fabs(mean) < 0.02 && fabs(var - 1) < 0.03, "%s: gaussian mean %g variance %g",
               P->name, mean, var);
        free(h), free(zero);
        BE(P->be, free, z);
    }
    for (int s = 0; s < 2; s++) {
        BE(bs[s], free, pert[s]), BE(bs[s], free, upd[s]), BE(bs[s], free, ib[s]);
        BE(bs[s], free, srcb[s]), BE(bs[s], free, gat[s]), BE(bs[s], free, sct[s]);
    }
    free(w32), free(w), free(idx), free(src);
}

/* The encoder ops: LayerNorm with bias forward and backward, GELU, tanh, the classification loss
 * (some rows ignored). */
static void check_encoder_ops(pair *P, int n, int C, int K) {
    test_rng *r = &P->rng;
    size_t nc = (size_t)n * C, nk = (size_t)n * K;
    float *x = host_randn(r, nc, 1.5f), *w = host_randn(r, C, 1), *b = host_randn(r, C, 1);
    float *dy = host_randn(r, nc, 1), *g0 = host_randn(r, nc, 1), *z = host_randn(r, nk, 2);
    int32_t *tg = malloc(sizeof(int32_t) * (n ? n : 1));
    for (int i = 0; i < n; i++)
        tg[i] = i % 3 == 2 ? LOSS_IGNORE_INDEX : (int32_t)(test_rng_u32(r) % (uint32_t)K);
    backend *bs[2] = {P->be, P->ref};
    float *o[2][11];
    double loss[2];
    int counted[2];
    for (int s = 0; s < 2; s++) {
        backend *be = bs[s];
        float *dx_ = up(be, x, 4 * nc), *dw_ = up(be, w, 4 * (size_t)C),
              *db_ = up(be, b, 4 * (size_t)C);
        float *ddy = up(be, dy, 4 * nc), *dz = up(be, z, 4 * nk);
        int32_t *dtg = up(be, tg, 4 * (size_t)n);
        o[s][0] = up(be, x, 4 * nc);        /* layernorm y */
        o[s][1] = up(be, x, 4 * (size_t)n); /* mean */
        o[s][2] = up(be, x, 4 * (size_t)n); /* rstd */
        o[s][3] = up(be, g0, 4 * nc);       /* dx (accumulated) */
        o[s][4] = up(be, w, 4 * (size_t)C); /* dw */
        o[s][5] = up(be, b, 4 * (size_t)C); /* db */
        o[s][6] = up(be, g0, 4 * nc);       /* gelu y */
        o[s][7] = up(be, g0, 4 * nc);       /* gelu dx */
        o[s][8] = up(be, g0, 4 * nc);       /* tanh y */
        o[s][9] = up(be, g0, 4 * nc);       /* tanh dx */
        o[s][10] = up(be, z, 4 * nk);       /* dlogits */
        BE(be, layernorm_forward, o[s][0], o[s][1], o[s][2], dx_, dw_, db_, n, C, 1e-5f);
        BE(be, layernorm_backward, o[s][3], o[s][4], o[s][5], ddy, dx_, o[s][1], o[s][2], dw_, n,
           C);
        BE(be, gelu_forward, o[s][6], dx_, nc);
        BE(be, gelu_backward, o[s][7], ddy, dx_, nc);
        BE(be, tanh_forward, o[s][8], dx_, nc);
        BE(be, tanh_backward, o[s][9], ddy, o[s][8], nc);
        loss[s] = BE(be, class_loss, o[s][10], dz, dtg, n, K, 0.5f, &counted[s]);
        BE(be, free, dx_), BE(be, free, dw_), BE(be, free, db_), BE(be, free, ddy);
        BE(be, free, dz), BE(be, free, dtg);
    }
    size_t sizes[11] = {nc, (size_t)n, (size_t)n, nc, (size_t)C, (size_t)C, nc, nc, nc, nc, nk};
    static const char *names[11] = {"layernorm y",  "layernorm mean",    "layernorm rstd",
                                    "layernorm dx", "layernorm dw",      "layernorm db",
                                    "gelu y",       "gelu dx",           "tanh y",
                                    "tanh dx",      "class_loss dlogits"};
    for (int i = 0; i < 11; i++) {
        char what[96];
        snprintf(what, sizeof what, "%s n=%d C=%d K=%d", names[i], n, C, K);
        COMPARE(P, sizes[i], 1e-5, 1e-4, what, o[0][i], o[1][i]);
        BE(P->be, free, o[0][i]), BE(P->ref, free, o[1][i]);
    }
    CHECKF(counted[0] == counted[1] && fabs(loss[0] - loss[1]) <= 1e-5 * (1 + fabs(loss[1])),
           "%s: class_loss n=%d K=%d: %.9g (%d rows) vs %.9g (%d rows)", P->name, n, K, loss[0],
           counted[0], loss[1], counted[1]);
    free(x), free(w), free(b), free(dy), free(g0), free(z), free(tg);
}

/* Bidirectional attention with a key padding mask (padding at the end of each sequence, one
 * sequence fully real) and attention-probability dropout, forward and backward. */
static void check_attention_bidir(pair *P, int B, int T, int H, int D, int masked, double p) {
    test_rng *r = &P->rng;
    size_t nq = (size_t)B * T * H * D, nl = (size_t)B * H * T;
    float *q = host_randn(r, nq, 1), *k = host_randn(r, nq, 1), *v = host_randn(r, nq, 1);
    float *dout = host_randn(r, nq, 1);
    uint8_t *mask = malloc((size_t)B * T);
    for (int b = 0; b < B; b++) {
        int len = b == 0 ? T : 1 + (int)(test_rng_u32(r) % (uint32_t)T);
        for (int t = 0; t < T; t++) mask[b * T + t] = t < len;
    }
    backend *bs[2] = {P->be, P->ref};
    float *o[2][5];
    uint64_t flops[2];
    for (int s = 0; s < 2; s++) {
        backend *be = bs[s];
        float *dq_ = up(be, q, 4 * nq), *dk_ = up(be, k, 4 * nq), *dv_ = up(be, v, 4 * nq);
        float *ddo = up(be, dout, 4 * nq);
        uint8_t *dmask = masked ? up(be, mask, (size_t)B * T) : NULL;
        o[s][0] = up(be, q, 4 * nq), o[s][1] = up(be, q, 4 * nl);
        o[s][2] = up(be, q, 4 * nq), o[s][3] = up(be, k, 4 * nq), o[s][4] = up(be, v, 4 * nq);
        uint64_t before = be->counters.attention_flops;
        BE(be, attention_bidir_forward, o[s][0], o[s][1], dq_, dk_, dv_, B, T, H, D, dmask, p,
           0x5eedull);
        BE(be, attention_bidir_backward, o[s][2], o[s][3], o[s][4], ddo, o[s][0], o[s][1], dq_, dk_,
           dv_, B, T, H, D, dmask, p, 0x5eedull);
        flops[s] = be->counters.attention_flops - before;
        BE(be, free, dq_), BE(be, free, dk_), BE(be, free, dv_), BE(be, free, ddo);
        if (dmask) BE(be, free, dmask);
    }
    size_t sizes[5] = {nq, nl, nq, nq, nq};
    static const char *names[5] = {"out", "lse", "dq", "dk", "dv"};
    char what[112];
    for (int i = 0; i < 5; i++) {
        snprintf(what, sizeof what, "attention_bidir %s B=%d T=%d H=%d D=%d mask=%d p=%g", names[i],
                 B, T, H, D, masked, p);
        COMPARE(P, sizes[i], 1e-5, i < 2 ? 1e-5 : 1e-4, what, o[0][i], o[1][i]);
        BE(P->be, free, o[0][i]), BE(P->ref, free, o[1][i]);
    }
    CHECKF(flops[0] == flops[1], "%s: %s attention FLOPs %llu vs %llu", P->name, what,
           (unsigned long long)flops[0], (unsigned long long)flops[1]);
    free(q), free(k), free(v), free(dout), free(mask);
}

/* galore_projector against the Jacobi oracle: the same singular vectors (signs fixed by the op's
 * rule, so they compare directly) to 1e-5, for a tall, a wide and a square gradient and a rank
 * above min(rows, cols); and the rows (tall) or columns (wide) of P orthonormal to 1e-5. */
static void check_galore_projector(pair *P, int rows, int cols, int rank) {
    test_rng *r = &P->rng;
    const size_t n = (size_t)rows * cols;
    const int k = rank < rows && rank < cols ? rank : rows < cols ? rows : cols;
    const size_t pn = (size_t)k * (rows >= cols ? cols : rows);
    float *g = host_randn(r, n, 1);
    backend *bs[2] = {P->be, P->ref};
    float *sg[2], *sp[2], *scr[2];
    int rc[2];
    for (int s = 0; s < 2; s++) {
        size_t sf = bs[s]->ops->galore_projector_scratch_floats(rows, cols);
        sg[s] = up(bs[s], g, n * 4);
        sp[s] = BE(bs[s], alloc, BADAM_MEM_OTHER, pn * 4);
        scr[s] = sf ? BE(bs[s], alloc, BADAM_MEM_OTHER, sf * 4) : NULL;
        rc[s] = BE(bs[s], galore_projector, sp[s], sg[s], rows, cols, rank, scr[s]);
    }
    char what[64];
    snprintf(what, sizeof what, "galore_projector %dx%d rank %d", rows, cols, rank);
    CHECKF(rc[0] == 0 && rc[1] == 0, "%s: %s returned %d / %d", P->name, what, rc[0], rc[1]);
    COMPARE(P, pn, 1e-5, 1e-5, what, sp[0], sp[1]);
    float *h = down(P->be, sp[0], pn);
    const int len = rows >= cols ? cols : rows; /* length of a singular vector */
    double worst = 0;
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) {
            double d = 0;
            for (int i = 0; i < len; i++)
                d += rows >= cols ? (double)h[a * len + i] * h[b * len + i]
                                  : (double)h[i * k + a] * h[i * k + b];
            double e = fabs(d - (a == b));
            if (e > worst) worst = e;
        }
    CHECKF(worst < 1e-5, "%s: %s: P is not orthonormal (%.3g)", P->name, what, worst);
    free(h), free(g);
    for (int s = 0; s < 2; s++) {
        BE(bs[s], free, sg[s]), BE(bs[s], free, sp[s]);
        if (scr[s]) BE(bs[s], free, scr[s]);
    }
}

static void check_backend(const test_backend_entry *e) {
    pair P = {.name = e->name};
    badam_error err = {0};
    if (e->create(&P.be, &err)) {
        fprintf(stderr, "backend %s: not available here (%s): skipped\n", e->name, err.message);
        return;
    }
    CHECK_OK(ref_backend_create(&P.ref, &err), &err);
    test_rng_seed(&P.rng, 2024);
    check_memory(&P);
    for (int i = 0; i < 3; i++) {
        badam_dtype dt = i == 0 ? BADAM_DTYPE_F32 : i == 1 ? BADAM_DTYPE_BF16 : BADAM_DTYPE_F16;
        check_linear(&P, dt, 1, 17, 9, 1);                 /* one row */
        check_linear(&P, dt, 7, 33, 2 * 256 + 45, i == 0); /* crosses weight tiles */
        check_linear(&P, dt, 40, 65, 31, 0);
        check_norm_embed_rope(&P, dt, 1, 7, 5, 1, 4);
        check_norm_embed_rope(&P, dt, 9, 70, 11, 3, 8);
        check_lm_head(&P, dt, 37, 24, 53);
    }
    check_lm_head(&P, BADAM_DTYPE_F32, 1, 8, 300);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) check_gemm(&P, ta, tb, 13, 7, 29, tb ? 1.0f : 0.0f);
    check_gemm(&P, 0, 1, 1, 33, 8, 1.0f);
    check_elementwise(&P, 1);
    check_elementwise(&P, 100003);
    /* B, T, Hq, Hkv, D, longest packed segment (0: none) */
    check_attention(&P, 1, 1, 2, 1, 8, 0);
    check_attention(&P, 2, 5, 4, 2, 8, 0);
    check_attention(&P, 2, 37, 4, 1, 64, 0);
    check_attention(&P, 1, 70, 3, 3, 20, 9);
    check_attention(&P, 2, 130, 4, 2, 16, 40);
    /* cache length, first position, rows, Hq, Hkv, D, window */
    check_encoder_ops(&P, 1, 7, 2);
    check_encoder_ops(&P, 13, 70, 5);
    check_encoder_ops(&P, 9, 130, 1);
    check_attention_bidir(&P, 1, 1, 2, 8, 0, 0.0);
    check_attention_bidir(&P, 3, 9, 2, 8, 1, 0.0);
    check_attention_bidir(&P, 2, 17, 4, 16, 1, 0.25);
    check_attention_bidir(&P, 2, 33, 3, 12, 0, 0.1);
    check_decode(&P, 40, 0, 1, 4, 2, 8, 0);
    check_decode(&P, 40, 17, 1, 4, 1, 16, 0);
    check_decode(&P, 40, 10, 13, 6, 2, 12, 0);
    check_decode(&P, 64, 30, 5, 4, 4, 8, 7);
    static const size_t optim_n[5] = {0, 1, 7, 4099, 65537};
    for (int i = 0; i < 5; i++) {
        for (int d = 0; d < 3; d++)
            check_optim(&P, optim_n[i],
                        d == 0   ? BADAM_DTYPE_F32
                        : d == 1 ? BADAM_DTYPE_BF16
                                 : BADAM_DTYPE_F16);
        check_reductions(&P, optim_n[i]);
    }
    for (int d = 0; d < 3; d++) {
        badam_dtype dt = d == 0 ? BADAM_DTYPE_F32 : d == 1 ? BADAM_DTYPE_BF16 : BADAM_DTYPE_F16;
        check_zo_mask(&P, 7, dt);
        check_zo_mask(&P, 65537, dt);
    }
    check_galore_projector(&P, 23, 7, 3);
    check_galore_projector(&P, 5, 19, 4);
    check_galore_projector(&P, 8, 8, 8);
    check_galore_projector(&P, 6, 4, 9);
    backend_destroy(P.ref);
    backend_destroy(P.be);
}

static void test_every_backend(void) {
    for (int i = 0; i < TEST_BACKEND_COUNT; i++) check_backend(&TEST_BACKENDS[i]);
}

int main(void) {
    setenv("BADAM_GEMM", "fp32", 1);
    RUN_TEST(test_every_backend);
    return test_result();
}
