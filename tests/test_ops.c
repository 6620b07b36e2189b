/* CPU op kernels: every backward against central finite differences of its forward
 * (L = sum(out * R) for a random R), linear against a naive loop for fp32/bf16/f16 weights,
 * accumulate semantics, FLOP counters, and a few exact cases. */
#include "model/cpu/ops.h"
#include "ref_backend.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

/* The bf16 GEMM state of the kernels under test (one CPU backend context's worth). */
static gemm_bf16_ctx *g_gemm;

static float *alloc_floats(size_t n) {
    return calloc(n ? n : 1, sizeof(float));
}

static float *randn(test_rng *rng, size_t n, float scale) {
    float *x = alloc_floats(n);
    test_fill_normal(rng, x, n, scale);
    return x;
}

static float *copy_floats(const float *x, size_t n) {
    float *y = alloc_floats(n);
    memcpy(y, x, n * sizeof(float));
    return y;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* b - a, elementwise, into a fresh buffer: the part an accumulating op added. */
static float *diff(const float *b, const float *a, size_t n) {
    float *d = alloc_floats(n);
    for (size_t i = 0; i < n; i++) d[i] = b[i] - a[i];
    return d;
}

typedef double (*loss_fn)(void *ctx);

/* Compares an analytic gradient of f with respect to x[0..n) to central differences with step h
 * (the actual fp32 step (x+h)-(x-h) is used as the denominator): |analytic - numeric| <=
 * FD_ATOL + rtol * max|numeric|. */
#define FD_ATOL 1e-6
static void check_grad(const char *name, const float *analytic, float *x, size_t n, float h,
                       loss_fn f, void *ctx, double rtol) {
    float *numeric = alloc_floats(n);
    for (size_t i = 0; i < n; i++) {
        float save = x[i];
        float xp = save + h, xm = save - h;
        x[i] = xp;
        double lp = f(ctx);
        x[i] = xm;
        double lm = f(ctx);
        x[i] = save;
        numeric[i] = (float)((lp - lm) / ((double)xp - (double)xm));
    }
    CHECK_CLOSE(analytic, numeric, n, FD_ATOL, rtol, "%s: analytic vs finite-difference gradient",
                name);
    free(numeric);
}

/* ---- linear ---- */

/* y = x W^T + b in double, W given in fp32 (already rounded to the stored dtype). */
static void naive_linear(float *y, const float *x, const float *w, const float *b, int n, int in,
                         int out) {
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double s = b ? b[o] : 0.0;
            for (int j = 0; j < in; j++) s += (double)x[i * in + j] * w[o * in + j];
            y[i * out + o] = (float)s;
        }
}

static void naive_linear_backward_input(float *dx, const float *dy, const float *w, int n, int in,
                                        int out) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < in; j++) {
            double s = 0;
            for (int o = 0; o < out; o++) s += (double)dy[i * out + o] * w[o * in + j];
            dx[i * in + j] = (float)s;
        }
}

static void naive_linear_backward_weight(float *dw, float *db, const float *dy, const float *x,
                                         int n, int in, int out) {
    for (int o = 0; o < out; o++) {
        double sb = 0;
        for (int i = 0; i < n; i++) sb += dy[i * out + o];
        db[o] = (float)sb;
        for (int j = 0; j < in; j++) {
            double s = 0;
            for (int i = 0; i < n; i++) s += (double)dy[i * out + o] * x[i * in + j];
            dw[o * in + j] = (float)s;
        }
    }
}

static void test_linear_oracle_dtype(badam_dtype dtype) {
    test_rng rng;
    test_rng_seed(&rng, 11 + dtype);
    const int n = 7, in = 33, out = 2 * LINEAR_WEIGHT_TILE_ROWS + 45;
    float *x = randn(&rng, (size_t)n * in, 1.0f);
    float *w32 = randn(&rng, (size_t)out * in, 0.2f);
    float *b = randn(&rng, out, 1.0f);
    float *dy = randn(&rng, (size_t)n * out, 1.0f);
    /* Stored weight and its exact fp32 value (the oracle's weight). */
    void *w = malloc((size_t)out * in * badam_dtype_size(dtype));
    badam_convert(w, dtype, w32, BADAM_DTYPE_F32, (size_t)out * in);
    badam_convert(w32, BADAM_DTYPE_F32, w, dtype, (size_t)out * in);
    float *scratch = alloc_floats(linear_scratch_floats(in));
    op_counters cnt = {0};
    const uint64_t flops = 2ull * n * in * out;

    float *y = alloc_floats((size_t)n * out), *y_ref = alloc_floats((size_t)n * out);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        const float *bias = with_bias ? b : NULL;
        memset(&cnt, 0, sizeof cnt);
        linear_forward(y, x, w, dtype, bias, n, in, out, scratch, &cnt, g_gemm);
        naive_linear(y_ref, x, w32, bias, n, in, out);
        CHECK_CLOSE(y, y_ref, (size_t)n * out, 1e-6, 1e-5, "%s forward (bias %d)",
                    badam_dtype_name(dtype), with_bias);
        CHECK(cnt.gemm_flops == flops);
    }

    /* backward_input accumulates: two calls on top of dx0 add twice the product. */
    float *dx0 = randn(&rng, (size_t)n * in, 1.0f);
    float *dx = copy_floats(dx0, (size_t)n * in), *dx_ref = alloc_floats((size_t)n * in);
    naive_linear_backward_input(dx_ref, dy, w32, n, in, out);
    memset(&cnt, 0, sizeof cnt);
    linear_backward_input(dx, dy, w, dtype, n, in, out, scratch, &cnt, g_gemm);
    CHECK(cnt.gemm_flops == flops);
    linear_backward_input(dx, dy, w, dtype, n, in, out, scratch, &cnt, g_gemm);
    CHECK(cnt.gemm_flops == 2 * flops);
    for (size_t i = 0; i < (size_t)n * in; i++) dx_ref[i] = dx0[i] + 2.0f * dx_ref[i];
    CHECK_CLOSE(dx, dx_ref, (size_t)n * in, 1e-6, 1e-5, "%s backward_input x2",
                badam_dtype_name(dtype));

    if (dtype == BADAM_DTYPE_F32) {
        float *dw = alloc_floats((size_t)out * in), *db = alloc_floats(out);
        float *dw_ref = alloc_floats((size_t)out * in), *db_ref = alloc_floats(out);
        naive_linear_backward_weight(dw_ref, db_ref, dy, x, n, in, out);
        memset(&cnt, 0, sizeof cnt);
        linear_backward_weight(dw, db, dy, x, n, in, out, &cnt);
        linear_backward_weight(dw, db, dy, x, n, in, out, &cnt);
        CHECK(cnt.gemm_flops == 2 * flops);
        for (size_t i = 0; i < (size_t)out * in; i++) dw_ref[i] *= 2.0f;
        for (int o = 0; o < out; o++) db_ref[o] *= 2.0f;
        CHECK_CLOSE(dw, dw_ref, (size_t)out * in, 1e-6, 1e-5, "backward_weight dw x2");
        CHECK_CLOSE(db, db_ref, out, 1e-6, 1e-5, "backward_weight db x2");
        /* db alone does no GEMM. */
        memset(&cnt, 0, sizeof cnt);
        linear_backward_weight(NULL, db, dy, x, n, in, out, &cnt);
        CHECK(cnt.gemm_flops == 0);
        free(dw), free(db), free(dw_ref), free(db_ref);
    }
    free(x), free(w32), free(b), free(dy), free(w), free(scratch), free(y), free(y_ref);
    free(dx0), free(dx), free(dx_ref);
}

static void test_linear_oracle(void) {
    test_linear_oracle_dtype(BADAM_DTYPE_F32);
    test_linear_oracle_dtype(BADAM_DTYPE_BF16);
    test_linear_oracle_dtype(BADAM_DTYPE_F16);
}

typedef struct linear_ctx {
    float *x, *w, *b, *r, *y, *scratch;
    int n, in, out;
} linear_ctx;

static double linear_loss(void *p) {
    linear_ctx *c = p;
    linear_forward(c->y, c->x, c->w, BADAM_DTYPE_F32, c->b, c->n, c->in, c->out, c->scratch, NULL,
                   g_gemm);
    return dot(c->y, c->r, (size_t)c->n * c->out);
}

static void test_linear_grad(void) {
    test_rng rng;
    test_rng_seed(&rng, 1);
    linear_ctx c = {.n = 3, .in = 5, .out = 4};
    size_t nx = (size_t)c.n * c.in, nw = (size_t)c.out * c.in, ny = (size_t)c.n * c.out;
    c.x = randn(&rng, nx, 1.0f), c.w = randn(&rng, nw, 1.0f), c.b = randn(&rng, c.out, 1.0f);
    c.r = randn(&rng, ny, 1.0f), c.y = alloc_floats(ny);
    c.scratch = alloc_floats(linear_scratch_floats(c.in));
    /* Gradients accumulate on top of random initial values. */
    float *dx0 = randn(&rng, nx, 1.0f), *dw0 = randn(&rng, nw, 1.0f), *db0 = randn(&rng, c.out, 1);
    float *dx = copy_floats(dx0, nx), *dw = copy_floats(dw0, nw), *db = copy_floats(db0, c.out);
    linear_backward_input(dx, c.r, c.w, BADAM_DTYPE_F32, c.n, c.in, c.out, c.scratch, NULL, g_gemm);
    linear_backward_weight(dw, db, c.r, c.x, c.n, c.in, c.out, NULL);
    float *gx = diff(dx, dx0, nx), *gw = diff(dw, dw0, nw), *gb = diff(db, db0, c.out);
    check_grad("linear dx", gx, c.x, nx, 1e-2f, linear_loss, &c, 1e-4);
    check_grad("linear dw", gw, c.w, nw, 1e-2f, linear_loss, &c, 1e-4);
    check_grad("linear db", gb, c.b, c.out, 1e-2f, linear_loss, &c, 1e-4);
    free(c.x), free(c.w), free(c.b), free(c.r), free(c.y), free(c.scratch);
    free(dx0), free(dw0), free(db0), free(dx), free(dw), free(db), free(gx), free(gw), free(gb);
}

/* ---- embedding ---- */

typedef struct embedding_ctx {
    float *table, *out, *r;
    const int32_t *tokens;
    int n, C;
} embedding_ctx;

static double embedding_loss(void *p) {
    embedding_ctx *c = p;
    embedding_forward(c->out, c->tokens, c->n, c->table, BADAM_DTYPE_F32, c->C);
    return dot(c->out, c->r, (size_t)c->n * c->C);
}

static void test_embedding(void) {
    test_rng rng;
    test_rng_seed(&rng, 2);
    const int V = 6, C = 5, n = 7;
    static const int32_t tokens[7] = {3, 0, 3, 5, 1, 3, 0}; /* repeats; token 2 and 4 unused */
    embedding_ctx c = {.tokens = tokens, .n = n, .C = C};
    c.table = randn(&rng, (size_t)V * C, 1.0f), c.out = alloc_floats((size_t)n * C);
    c.r = randn(&rng, (size_t)n * C, 1.0f);
    float *d0 = randn(&rng, (size_t)V * C, 1.0f), *d = copy_floats(d0, (size_t)V * C);
    embedding_backward(d, tokens, n, c.r, C);
    float *g = diff(d, d0, (size_t)V * C);
    check_grad("embedding dtable", g, c.table, (size_t)V * C, 1e-2f, embedding_loss, &c, 1e-5);
    for (int j = 0; j < C; j++) CHECK(d[2 * C + j] == d0[2 * C + j]);

    /* bf16 table: rows come back as the exact bf16 values. */
    uint16_t *tb = malloc((size_t)V * C * sizeof(uint16_t));
    badam_convert(tb, BADAM_DTYPE_BF16, c.table, BADAM_DTYPE_F32, (size_t)V * C);
    embedding_forward(c.out, tokens, n, tb, BADAM_DTYPE_BF16, C);
    int exact = 1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < C; j++)
            exact &= c.out[i * C + j] == badam_bf16_to_f32(tb[tokens[i] * C + j]);
    CHECK(exact);
    free(tb), free(c.table), free(c.out), free(c.r), free(d0), free(d), free(g);
}

/* ---- rmsnorm ---- */

typedef struct rmsnorm_ctx {
    float *x, *w, *y, *r;
    int n, C;
} rmsnorm_ctx;

static double rmsnorm_loss(void *p) {
    rmsnorm_ctx *c = p;
    rmsnorm_forward(c->y, NULL, c->x, c->w, c->n, c->C, 1e-5f);
    return dot(c->y, c->r, (size_t)c->n * c->C);
}

static void test_rmsnorm(void) {
    test_rng rng;
    test_rng_seed(&rng, 3);
    rmsnorm_ctx c = {.n = 4, .C = 70}; /* C > the dw column block, not a multiple of it */
    size_t nx = (size_t)c.n * c.C;
    c.x = randn(&rng, nx, 1.0f), c.w = randn(&rng, c.C, 1.0f), c.y = alloc_floats(nx);
    c.r = randn(&rng, nx, 1.0f);
    float *rstd = alloc_floats(c.n);
    rmsnorm_forward(c.y, rstd, c.x, c.w, c.n, c.C, 1e-5f);
    for (int i = 0; i < c.n; i++) {
        double ss = dot(c.x + i * c.C, c.x + i * c.C, c.C) / c.C;
        CHECK_NEAR(rstd[i], 1.0 / sqrt(ss + 1e-5), 1e-7, 1e-5, "rmsnorm rstd row %d", i);
    }
    /* y may alias x. */
    float *xa = copy_floats(c.x, nx);
    rmsnorm_forward(xa, NULL, xa, c.w, c.n, c.C, 1e-5f);
    CHECK(memcmp(xa, c.y, nx * sizeof(float)) == 0);

    float *dx0 = randn(&rng, nx, 1.0f), *dw0 = randn(&rng, c.C, 1.0f);
    float *dx = copy_floats(dx0, nx), *dw = copy_floats(dw0, c.C);
    rmsnorm_backward(dx, dw, c.r, c.x, c.w, rstd, c.n, c.C);
    float *gx = diff(dx, dx0, nx), *gw = diff(dw, dw0, c.C);
    check_grad("rmsnorm dx", gx, c.x, nx, 1e-3f, rmsnorm_loss, &c, 2e-3);
    check_grad("rmsnorm dw", gw, c.w, c.C, 1e-2f, rmsnorm_loss, &c, 1e-4);
    free(c.x), free(c.w), free(c.y), free(c.r), free(rstd), free(xa);
    free(dx0), free(dw0), free(dx), free(dw), free(gx), free(gw);
}

/* ---- rope ---- */

typedef struct rope_ctx {
    float *x, *y, *r, *cos_t, *sin_t;
    const int32_t *pos;
    int n, H, D;
} rope_ctx;

static double rope_loss(void *p) {
    rope_ctx *c = p;
    size_t nx = (size_t)c->n * c->H * c->D;
    memcpy(c->y, c->x, nx * sizeof(float));
    rope_forward(c->y, c->pos, c->cos_t, c->sin_t, c->n, c->H, c->D);
    return dot(c->y, c->r, nx);
}

static void test_rope(void) {
    test_rng rng;
    test_rng_seed(&rng, 4);
    const int T = 9, D = 8, half = D / 2;
    static const int32_t pos[5] = {0, 1, 8, 3, 5};
    rope_ctx c = {.pos = pos, .n = 5, .H = 3, .D = D};
    size_t nx = (size_t)c.n * c.H * D;
    float inv_freq[4];
    for (int i = 0; i < half; i++) inv_freq[i] = powf(10000.0f, -2.0f * i / D);
    c.cos_t = alloc_floats((size_t)T * half), c.sin_t = alloc_floats((size_t)T * half);
    rope_tables(c.cos_t, c.sin_t, inv_freq, T, half);
    CHECK_NEAR(c.cos_t[7 * half + 1], cos(7.0 * inv_freq[1]), 1e-6, 1e-6, "rope cos table");
    CHECK_NEAR(c.sin_t[7 * half + 1], sin(7.0 * inv_freq[1]), 1e-6, 1e-6, "rope sin table");
    c.x = randn(&rng, nx, 1.0f), c.y = alloc_floats(nx), c.r = randn(&rng, nx, 1.0f);

    /* Position 0 is the identity; every (i, i+half) pair keeps its norm. */
    rope_loss(&c);
    int identity = 1, norms = 1;
    for (int j = 0; j < c.H * D; j++) identity &= c.y[j] == c.x[j];
    for (int r = 0; r < c.n * c.H; r++)
        for (int i = 0; i < half; i++) {
            const float *a = c.x + (size_t)r * D, *b = c.y + (size_t)r * D;
            double na = (double)a[i] * a[i] + (double)a[i + half] * a[i + half];
            double nb = (double)b[i] * b[i] + (double)b[i + half] * b[i + half];
            norms &= fabs(na - nb) <= 1e-5 * (na + 1e-6);
        }
    CHECK(identity);
    CHECK(norms);
    /* backward undoes forward. */
    float *back = copy_floats(c.y, nx);
    rope_backward(back, pos, c.cos_t, c.sin_t, c.n, c.H, D);
    CHECK_CLOSE(back, c.x, nx, 1e-6, 1e-6, "rope backward of forward vs input");

    float *g = copy_floats(c.r, nx);
    rope_backward(g, pos, c.cos_t, c.sin_t, c.n, c.H, D);
    check_grad("rope dx", g, c.x, nx, 1e-2f, rope_loss, &c, 1e-4);
    free(c.cos_t), free(c.sin_t), free(c.x), free(c.y), free(c.r), free(back), free(g);
}

/* ---- attention ---- */

typedef struct attention_ctx {
    float *q, *k, *v, *out, *r;
    const int32_t *seg; /* seg_start, or NULL */
    int B, T, Hq, Hkv, D;
} attention_ctx;

static double attention_loss(void *p) {
    attention_ctx *c = p;
    attention_forward(c->out, NULL, c->q, c->k, c->v, c->B, c->T, c->Hq, c->Hkv, c->D, c->seg,
                      NULL);
    return dot(c->out, c->r, (size_t)c->B * c->T * c->Hq * c->D);
}

static void test_attention_shape(int B, int T, int Hq, int Hkv, int D) {
    test_rng rng;
    test_rng_seed(&rng, 5 + Hkv);
    attention_ctx c = {.B = B, .T = T, .Hq = Hq, .Hkv = Hkv, .D = D};
    size_t nq = (size_t)B * T * Hq * D, nkv = (size_t)B * T * Hkv * D;
    size_t nl = (size_t)B * Hq * T;
    c.q = randn(&rng, nq, 1.0f), c.k = randn(&rng, nkv, 1.0f), c.v = randn(&rng, nkv, 1.0f);
    c.out = alloc_floats(nq), c.r = randn(&rng, nq, 1.0f);
    float *lse = alloc_floats(nl), *out2 = alloc_floats(nq);
    float *out_ref = alloc_floats(nq), *lse_ref = alloc_floats(nl);

    const uint64_t pairs = (uint64_t)B * Hq * T * (T + 1) / 2;
    op_counters cnt = {0};
    attention_forward(c.out, lse, c.q, c.k, c.v, B, T, Hq, Hkv, D, NULL, &cnt);
    CHECK(cnt.attention_flops == 4ull * D * pairs);
    CHECK(cnt.gemm_flops == 0);
    attention_forward(out2, NULL, c.q, c.k, c.v, B, T, Hq, Hkv, D, NULL, NULL);
    CHECK(memcmp(out2, c.out, nq * sizeof(float)) == 0);
    ref_attention_forward_loops(out_ref, lse_ref, c.q, c.k, c.v, B, T, Hq, Hkv, D, NULL);
    CHECK_CLOSE(c.out, out_ref, nq, 1e-6, 1e-5, "attention out vs oracle");
    CHECK_CLOSE(lse, lse_ref, nl, 1e-6, 1e-5, "attention lse vs oracle");

    /* Outputs are overwritten: start from garbage. */
    float *dq = randn(&rng, nq, 1.0f), *dk = randn(&rng, nkv, 1.0f), *dv = randn(&rng, nkv, 1.0f);
    memset(&cnt, 0, sizeof cnt);
    attention_backward(dq, dk, dv, c.r, c.out, lse, c.q, c.k, c.v, B, T, Hq, Hkv, D, NULL, &cnt);
    CHECK(cnt.attention_flops == 8ull * D * pairs);
    check_grad("attention dq", dq, c.q, nq, 1e-2f, attention_loss, &c, 5e-4);
    check_grad("attention dk", dk, c.k, nkv, 1e-2f, attention_loss, &c, 5e-4);
    check_grad("attention dv", dv, c.v, nkv, 1e-2f, attention_loss, &c, 5e-4);
    /* check_grad leaves c.out as the forward of the unperturbed inputs */
    attention_forward(c.out, lse, c.q, c.k, c.v, B, T, Hq, Hkv, D, NULL, NULL);

    /* Partial requests compute the same values and count only their products. */
    float *dq2 = randn(&rng, nq, 1.0f), *dv2 = randn(&rng, nkv, 1.0f);
    memset(&cnt, 0, sizeof cnt);
    attention_backward(dq2, NULL, NULL, c.r, c.out, lse, c.q, c.k, c.v, B, T, Hq, Hkv, D, NULL,
                       &cnt);
    CHECK(cnt.attention_flops == 4ull * D * pairs); /* dP and dq */
    CHECK(memcmp(dq2, dq, nq * sizeof(float)) == 0);
    memset(&cnt, 0, sizeof cnt);
    attention_backward(NULL, NULL, dv2, c.r, c.out, lse, c.q, c.k, c.v, B, T, Hq, Hkv, D, NULL,
                       &cnt);
    CHECK(cnt.attention_flops == 2ull * D * pairs); /* dv only */
    CHECK(memcmp(dv2, dv, nkv * sizeof(float)) == 0);

    free(c.q), free(c.k), free(c.v), free(c.out), free(c.r), free(lse), free(out2);
    free(out_ref), free(lse_ref);
    free(dq), free(dk), free(dv), free(dq2), free(dv2);
}

/* Packed rows: segments of random lengths (1..max_len) laid end to end in each sequence. */
static int32_t *random_segments(test_rng *rng, int B, int T, int max_len) {
    int32_t *seg = malloc((size_t)B * T * sizeof(int32_t));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T;) {
            int len = 1 + (int)(test_rng_u32(rng) % (uint32_t)max_len);
            for (int i = 0; i < len && t < T; i++, t++) seg[(size_t)b * T + t] = t - i;
        }
    return seg;
}

/* Blocked kernels against the double oracles at shapes that cross the tiles (T not a multiple of
 * them, D not a multiple of the vector width, chunked head dimensions), with and without packing,
 * and every subset of requested gradients: each gives the values of the full request bit for bit
 * and counts only its products. */
static void test_attention_oracle(int B, int T, int Hq, int Hkv, int D, int max_seg) {
    test_rng rng;
    test_rng_seed(&rng, 11 + T + D);
    size_t nq = (size_t)B * T * Hq * D, nkv = (size_t)B * T * Hkv * D, nl = (size_t)B * Hq * T;
    float *q = randn(&rng, nq, 1.0f), *k = randn(&rng, nkv, 1.0f), *v = randn(&rng, nkv, 1.0f);
    float *dout = randn(&rng, nq, 1.0f);
    int32_t *seg = max_seg ? random_segments(&rng, B, T, max_seg) : NULL;
    float *out = alloc_floats(nq), *lse = alloc_floats(nl), *out2 = alloc_floats(nq);
    float *out_ref = alloc_floats(nq), *lse_ref = alloc_floats(nl);
    uint64_t pairs = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) pairs += (uint64_t)(t + 1 - (seg ? seg[b * T + t] : 0));
    pairs *= (uint64_t)Hq;

    op_counters cnt = {0};
    attention_forward(out, lse, q, k, v, B, T, Hq, Hkv, D, seg, &cnt);
    CHECK(cnt.attention_flops == 4ull * D * pairs);
    attention_forward(out2, NULL, q, k, v, B, T, Hq, Hkv, D, seg, NULL);
    CHECK(memcmp(out2, out, nq * sizeof(float)) == 0);
    ref_attention_forward_loops(out_ref, lse_ref, q, k, v, B, T, Hq, Hkv, D, seg);
    CHECK_CLOSE(out, out_ref, nq, 1e-6, 1e-5, "attention out vs oracle (T=%d D=%d seg=%d)", T, D,
                max_seg);
    CHECK_CLOSE(lse, lse_ref, nl, 1e-6, 1e-5, "attention lse vs oracle (T=%d D=%d seg=%d)", T, D,
                max_seg);

    float *dq = randn(&rng, nq, 1.0f), *dk = randn(&rng, nkv, 1.0f), *dv = randn(&rng, nkv, 1.0f);
    float *dq_ref = alloc_floats(nq), *dk_ref = alloc_floats(nkv), *dv_ref = alloc_floats(nkv);
    memset(&cnt, 0, sizeof cnt);
    attention_backward(dq, dk, dv, dout, out, lse, q, k, v, B, T, Hq, Hkv, D, seg, &cnt);
    CHECK(cnt.attention_flops == 8ull * D * pairs);
    ref_attention_backward_loops(dq_ref, dk_ref, dv_ref, dout, q, k, v, B, T, Hq, Hkv, D, seg);
    CHECK_CLOSE(dq, dq_ref, nq, 1e-6, 1e-4, "attention dq vs oracle (T=%d D=%d seg=%d)", T, D,
                max_seg);
    CHECK_CLOSE(dk, dk_ref, nkv, 1e-6, 1e-4, "attention dk vs oracle (T=%d D=%d seg=%d)", T, D,
                max_seg);
    CHECK_CLOSE(dv, dv_ref, nkv, 1e-6, 1e-4, "attention dv vs oracle (T=%d D=%d seg=%d)", T, D,
                max_seg);

    for (int mask = 1; mask < 7; mask++) { /* bit 0: dq, 1: dk, 2: dv (7 was the full run) */
        float *pq = mask & 1 ? randn(&rng, nq, 1.0f) : NULL;
        float *pk = mask & 2 ? randn(&rng, nkv, 1.0f) : NULL;
        float *pv = mask & 4 ? randn(&rng, nkv, 1.0f) : NULL;
        memset(&cnt, 0, sizeof cnt);
        attention_backward(pq, pk, pv, dout, out, lse, q, k, v, B, T, Hq, Hkv, D, seg, &cnt);
        uint64_t products = (uint64_t)((mask & 3) != 0) + (mask & 1) + !!(mask & 2) + !!(mask & 4);
        CHECKF(cnt.attention_flops == products * 2ull * D * pairs, "attention subset %d flops",
               mask);
        if (pq) CHECKF(memcmp(pq, dq, nq * sizeof(float)) == 0, "attention subset %d dq", mask);
        if (pk) CHECKF(memcmp(pk, dk, nkv * sizeof(float)) == 0, "attention subset %d dk", mask);
        if (pv) CHECKF(memcmp(pv, dv, nkv * sizeof(float)) == 0, "attention subset %d dv", mask);
        free(pq), free(pk), free(pv);
    }
    free(q), free(k), free(v), free(dout), free(seg), free(out), free(lse), free(out2);
    free(out_ref), free(lse_ref), free(dq), free(dk), free(dv), free(dq_ref), free(dk_ref);
    free(dv_ref);
}

/* Finite differences through packed rows (small shape). */
static void test_attention_packed_grad(void) {
    test_rng rng;
    test_rng_seed(&rng, 23);
    int B = 2, T = 19, Hq = 4, Hkv = 2, D = 8;
    attention_ctx c = {.B = B, .T = T, .Hq = Hq, .Hkv = Hkv, .D = D};
    size_t nq = (size_t)B * T * Hq * D, nkv = (size_t)B * T * Hkv * D;
    int32_t *seg = random_segments(&rng, B, T, 7);
    c.seg = seg;
    c.q = randn(&rng, nq, 1.0f), c.k = randn(&rng, nkv, 1.0f), c.v = randn(&rng, nkv, 1.0f);
    c.out = alloc_floats(nq), c.r = randn(&rng, nq, 1.0f);
    float *lse = alloc_floats((size_t)B * Hq * T);
    float *dq = alloc_floats(nq), *dk = alloc_floats(nkv), *dv = alloc_floats(nkv);
    attention_forward(c.out, lse, c.q, c.k, c.v, B, T, Hq, Hkv, D, seg, NULL);
    attention_backward(dq, dk, dv, c.r, c.out, lse, c.q, c.k, c.v, B, T, Hq, Hkv, D, seg, NULL);
    check_grad("packed attention dq", dq, c.q, nq, 1e-2f, attention_loss, &c, 5e-4);
    check_grad("packed attention dk", dk, c.k, nkv, 1e-2f, attention_loss, &c, 5e-4);
    check_grad("packed attention dv", dv, c.v, nkv, 1e-2f, attention_loss, &c, 5e-4);
    free(seg), free(c.q), free(c.k), free(c.v), free(c.out), free(c.r), free(lse);
    free(dq), free(dk), free(dv);
}

static void test_attention(void) {
    test_attention_shape(2, 5, 4, 2, 8);   /* grouped-query */
    test_attention_shape(2, 5, 3, 3, 8);   /* one kv head per query head */
    test_attention_shape(1, 4, 4, 1, 4);   /* multi-query */
    test_attention_shape(1, 150, 4, 2, 8); /* several key tiles (online softmax rescaling) */
    test_attention_packed_grad();
    /* B, T, Hq, Hkv, D, longest packed segment (0: no packing) */
    test_attention_oracle(2, 1, 2, 1, 8, 0);
    test_attention_oracle(2, 37, 4, 1, 64, 0);  /* group 4 */
    test_attention_oracle(2, 100, 4, 2, 80, 0); /* group 2, D not a multiple of 32 */
    test_attention_oracle(1, 130, 2, 2, 128, 0);
    test_attention_oracle(1, 70, 2, 1, 136, 0); /* head dimension in two chunks */
    test_attention_oracle(2, 130, 4, 2, 64, 40);
    test_attention_oracle(2, 100, 2, 2, 8, 9);
    test_attention_oracle(1, 37, 2, 1, 80, 150); /* one segment may cover the sequence */
    test_attention_oracle(1, 200, 2, 1, 16, 3);  /* many short segments */
    test_attention_oracle(1, 9, 2, 1, 4100, 4);  /* forward past ATTN_FD_HUGE: row by row */
}

/* ---- swiglu ---- */

typedef struct swiglu_ctx {
    float *g, *u, *h, *r;
    size_t n;
} swiglu_ctx;

static double swiglu_loss(void *p) {
    swiglu_ctx *c = p;
    swiglu_forward(c->h, c->g, c->u, c->n);
    return dot(c->h, c->r, c->n);
}

static void test_swiglu(void) {
    test_rng rng;
    test_rng_seed(&rng, 6);
    swiglu_ctx c = {.n = 40};
    c.g = randn(&rng, c.n, 2.0f), c.u = randn(&rng, c.n, 1.0f);
    c.h = alloc_floats(c.n), c.r = randn(&rng, c.n, 1.0f);
    c.g[0] = 30.0f, c.g[1] = -30.0f;                                  /* saturated sigmoid */
    float *dg = randn(&rng, c.n, 1.0f), *du = randn(&rng, c.n, 1.0f); /* overwritten */
    swiglu_backward(dg, du, c.r, c.g, c.u, c.n);
    check_grad("swiglu dg", dg, c.g, c.n, 1e-3f, swiglu_loss, &c, 5e-4);
    check_grad("swiglu du", du, c.u, c.n, 1e-2f, swiglu_loss, &c, 1e-5);
    float *du2 = alloc_floats(c.n);
    swiglu_backward(NULL, du2, c.r, c.g, c.u, c.n);
    CHECK(memcmp(du2, du, c.n * sizeof(float)) == 0);
    free(c.g), free(c.u), free(c.h), free(c.r), free(dg), free(du), free(du2);
}

/* ---- cross-entropy ---- */

typedef struct ce_ctx {
    float *z;
    int V, target;
} ce_ctx;

static double ce_loss(void *p) {
    ce_ctx *c = p;
    return cross_entropy_row(NULL, c->z, c->V, c->target, 1.0f);
}

static void test_cross_entropy_row(void) {
    /* z = (1, 2, 3), y = 0: logsumexp = 3.4076059644443806, softmax = (0.0900306, 0.2447285,
     * 0.6652410). */
    float z[3] = {1, 2, 3}, dz[3];
    float loss = cross_entropy_row(dz, z, 3, 0, 0.5f);
    CHECK_NEAR(loss, 2.4076059644443806, 1e-6, 1e-6, "cross-entropy loss");
    const float dz_ref[3] = {0.5f * (0.09003057f - 1.0f), 0.5f * 0.24472847f, 0.5f * 0.66524096f};
    CHECK_CLOSE(dz, dz_ref, 3, 1e-7, 1e-6, "cross-entropy dz");
    /* Large logits are stable; dz may alias z. */
    float big[3] = {1e4f, 1e4f + 1, 1e4f + 2};
    loss = cross_entropy_row(big, big, 3, 2, 1.0f);
    CHECK_NEAR(loss, 0.4076059644443806, 1e-6, 1e-5, "cross-entropy loss, large logits");
    CHECK_NEAR(big[0], 0.09003057, 1e-7, 1e-6, "cross-entropy dz[0], large logits");
    CHECK_NEAR(big[2], 0.66524096 - 1, 1e-7, 1e-6, "cross-entropy dz[2], large logits");
    float neg[2] = {-1e4f, 1e4f};
    CHECK(isfinite(cross_entropy_row(NULL, neg, 2, 0, 1.0f)));
    /* An invalid target is refused without reading out of bounds. */
    CHECK(isnan(cross_entropy_row(NULL, z, 3, 3, 1.0f)));
    CHECK(isnan(cross_entropy_row(NULL, z, 3, -100, 1.0f)));

    test_rng rng;
    test_rng_seed(&rng, 7);
    ce_ctx c = {.V = 13, .target = 4};
    c.z = randn(&rng, c.V, 2.0f);
    float *g = alloc_floats(c.V);
    cross_entropy_row(g, c.z, c.V, c.target, 1.0f);
    check_grad("cross_entropy dz", g, c.z, c.V, 1e-2f, ce_loss, &c, 2e-4);
    free(c.z), free(g);
}

/* ---- lm_head_loss ---- */

typedef struct lm_ctx {
    float *h, *w, *ws;
    const int32_t *targets;
    int n, C, V, chunk;
    float scale;
} lm_ctx;

static double lm_loss(void *p) {
    lm_ctx *c = p;
    return c->scale * lm_head_loss(NULL, NULL, c->h, c->w, BADAM_DTYPE_F32, c->targets, c->n, c->C,
                                   c->V, c->chunk, c->scale, c->ws, NULL, NULL, g_gemm);
}

static void test_lm_head_loss(void) {
    test_rng rng;
    test_rng_seed(&rng, 8);
    /* Rows 1, 4 and 8 are ignored; rows 6 and 9 have out-of-range targets (skipped). */
    static const int32_t targets[10] = {3, LOSS_IGNORE_INDEX, 0, 10, LOSS_IGNORE_INDEX, 7, 11,
                                        2, LOSS_IGNORE_INDEX, -5};
    const int n = 10, C = 6, V = 11, k = 5;
    lm_ctx c = {.targets = targets, .n = n, .C = C, .V = V, .chunk = 3, .scale = 0.3f};
    size_t nh = (size_t)n * C, nw = (size_t)V * C;
    c.h = randn(&rng, nh, 1.0f), c.w = randn(&rng, nw, 1.0f);
    c.ws = alloc_floats(lm_head_loss_workspace_floats(c.chunk, C, V));

    /* Reference loss: row by row. */
    double ref = 0;
    float logits[11];
    for (int i = 0; i < n; i++) {
        if (targets[i] < 0 || targets[i] >= V) continue;
        naive_linear(logits, c.h + i * C, c.w, NULL, 1, C, V);
        ref += cross_entropy_row(NULL, logits, V, targets[i], 1.0f);
    }

    float *dh0 = randn(&rng, nh, 1.0f), *dw0 = randn(&rng, nw, 1.0f);
    float *dh = copy_floats(dh0, nh), *dw = copy_floats(dw0, nw);
    int counted = -1;
    op_counters cnt = {0};
    double loss = lm_head_loss(dh, dw, c.h, c.w, BADAM_DTYPE_F32, targets, n, C, V, c.chunk,
                               c.scale, c.ws, &counted, &cnt, g_gemm);
    CHECK(counted == n - k);
    CHECK_NEAR(loss, ref, 1e-7, 1e-5, "lm_head_loss vs oracle");
    CHECK(cnt.gemm_flops == 3ull * 2 * (n - k) * C * V); /* logits, dh, dW */
    for (int i = 0; i < n; i++) {
        if (targets[i] >= 0 && targets[i] < V) continue;
        CHECK(memcmp(dh + i * C, dh0 + i * C, C * sizeof(float)) == 0);
    }
    float *gh = diff(dh, dh0, nh), *gw = diff(dw, dw0, nw);
    check_grad("lm_head dh", gh, c.h, nh, 1e-2f, lm_loss, &c, 3e-4);
    check_grad("lm_head dW", gw, c.w, nw, 1e-2f, lm_loss, &c, 3e-4);

    /* Forward only counts only the selected rows; each gradient adds one more GEMM. */
    memset(&cnt, 0, sizeof cnt);
    double loss_fwd = lm_head_loss(NULL, NULL, c.h, c.w, BADAM_DTYPE_F32, targets, n, C, V, c.chunk,
                                   1.0f, c.ws, &counted, &cnt, g_gemm);
    CHECK(cnt.gemm_flops == 2ull * (n - k) * C * V);
    CHECK(loss_fwd == loss);
    memset(&cnt, 0, sizeof cnt);
    float *dh_only = alloc_floats(nh);
    lm_head_loss(dh_only, NULL, c.h, c.w, BADAM_DTYPE_F32, targets, n, C, V, c.chunk, c.scale, c.ws,
                 NULL, &cnt, g_gemm);
    CHECK(cnt.gemm_flops == 2ull * 2 * (n - k) * C * V);
    CHECK_CLOSE(dh_only, gh, nh, 1e-6, 1e-6, "lm_head_loss dh alone vs with dW");

    /* The chunk size changes nothing but the grouping. */
    for (int chunk = 1; chunk <= n + 2; chunk += 4) {
        float *ws = alloc_floats(lm_head_loss_workspace_floats(chunk, C, V));
        float *dh2 = alloc_floats(nh);
        double l2 = lm_head_loss(dh2, NULL, c.h, c.w, BADAM_DTYPE_F32, targets, n, C, V, chunk,
                                 c.scale, ws, &counted, NULL, g_gemm);
        CHECK(counted == n - k);
        CHECK_NEAR(l2, ref, 1e-7, 1e-5, "lm_head_loss chunk %d: loss", chunk);
        CHECK_CLOSE(dh2, gh, nh, 1e-6, 1e-5, "lm_head_loss chunk %d: dh", chunk);
        free(ws), free(dh2);
    }
    /* All rows ignored: nothing computed. */
    static const int32_t none[3] = {LOSS_IGNORE_INDEX, LOSS_IGNORE_INDEX, LOSS_IGNORE_INDEX};
    memset(&cnt, 0, sizeof cnt);
    CHECK(lm_head_loss(dh, dw, c.h, c.w, BADAM_DTYPE_F32, none, 3, C, V, c.chunk, 1.0f, c.ws,
                       &counted, &cnt, g_gemm) == 0.0);
    CHECK(counted == 0 && cnt.gemm_flops == 0);
    free(c.h), free(c.w), free(c.ws), free(dh0), free(dw0), free(dh), free(dw), free(gh), free(gw);
    free(dh_only);
}

/* bf16 head weight over several conversion tiles equals the fp32 path on the rounded weight. */
static void test_lm_head_loss_bf16(void) {
    test_rng rng;
    test_rng_seed(&rng, 9);
    const int n = 9, C = 16, V = LINEAR_WEIGHT_TILE_ROWS * 2 + 37, chunk = 4;
    int32_t targets[9];
    for (int i = 0; i < n; i++)
        targets[i] = i % 4 == 1 ? LOSS_IGNORE_INDEX : (int32_t)(test_rng_u32(&rng) % V);
    size_t nh = (size_t)n * C, nw = (size_t)V * C;
    float *h = randn(&rng, nh, 1.0f), *w32 = randn(&rng, nw, 0.5f);
    uint16_t *wb = malloc(nw * sizeof(uint16_t));
    badam_convert(wb, BADAM_DTYPE_BF16, w32, BADAM_DTYPE_F32, nw);
    badam_convert(w32, BADAM_DTYPE_F32, wb, BADAM_DTYPE_BF16, nw);
    float *ws = alloc_floats(lm_head_loss_workspace_floats(chunk, C, V));
    float *dh_a = alloc_floats(nh), *dh_b = alloc_floats(nh);
    float *dw_a = alloc_floats(nw), *dw_b = alloc_floats(nw);
    int ca = 0, cb = 0;
    double la = lm_head_loss(dh_a, dw_a, h, w32, BADAM_DTYPE_F32, targets, n, C, V, chunk, 1.0f, ws,
                             &ca, NULL, g_gemm);
    double lb = lm_head_loss(dh_b, dw_b, h, wb, BADAM_DTYPE_BF16, targets, n, C, V, chunk, 1.0f, ws,
                             &cb, NULL, g_gemm);
    CHECK(ca == cb && ca == n - 2);
    CHECK_NEAR(lb, la, 1e-7, 1e-5, "lm_head_loss bf16 vs fp32 weights: loss");
    CHECK_CLOSE(dh_b, dh_a, nh, 1e-6, 1e-5, "lm_head_loss bf16 vs fp32 weights: dh");
    CHECK_CLOSE(dw_b, dw_a, nw, 1e-6, 1e-5, "lm_head_loss bf16 vs fp32 weights: dW");
    /* Without dW, bf16 weights on the portable GEMM take the one-pass online softmax
     * (lm_head_online.c; here 7 rows per block: two blocks, three vocabulary tiles). */
    CHECK(lm_head_online_rows(lm_head_loss_workspace_floats(chunk, C, V), C, V) == 7);
    memset(dh_a, 0, nh * sizeof(float)), memset(dh_b, 0, nh * sizeof(float));
    op_counters cnt = {0};
    la = lm_head_loss(dh_a, NULL, h, w32, BADAM_DTYPE_F32, targets, n, C, V, chunk, 0.5f, ws, &ca,
                      NULL, g_gemm);
    lb = lm_head_loss(dh_b, NULL, h, wb, BADAM_DTYPE_BF16, targets, n, C, V, chunk, 0.5f, ws, &cb,
                      &cnt, g_gemm);
    CHECK(ca == cb && ca == n - 2);
    CHECK(cnt.gemm_flops == 2ull * 2 * (n - 2) * C * V);
    CHECK_NEAR(lb, la, 1e-7, 1e-5, "lm_head_loss bf16 vs fp32 weights, dh only: loss");
    CHECK_CLOSE(dh_b, dh_a, nh, 1e-6, 1e-5, "lm_head_loss bf16 vs fp32 weights, dh only: dh");
    lb = lm_head_loss(NULL, NULL, h, wb, BADAM_DTYPE_BF16, targets, n, C, V, chunk, 0.5f, ws, &cb,
                      NULL, g_gemm);
    CHECK_NEAR(lb, la, 1e-7, 1e-5, "lm_head_loss bf16 vs fp32 weights, loss only");
    free(h), free(w32), free(wb), free(ws), free(dh_a), free(dh_b), free(dw_a), free(dw_b);
}

/* The native bf16 GEMM path (gemm_bf16.c): activations rounded to bf16, products accumulated in
 * fp32. Oracle: the naive loop on the bf16-rounded activations and weights. Shapes cross the
 * row blocks (forward) and the row x column blocks (backward input) of the scratch. When no bf16
 * GEMM is available here, the same calls must take the portable path (equal to the fp32 path). */
static char g_outer_gemm[16]; /* BADAM_GEMM as the test was started with (a path variant) */

static void test_linear_bf16_gemm(void) {
    if (g_outer_gemm[0])
        setenv("BADAM_GEMM", g_outer_gemm, 1);
    else
        unsetenv("BADAM_GEMM");
    int native = gemm_bf16_available(g_gemm);
    fprintf(stderr, "  bf16 GEMM: %s\n", native ? "native (oneDNN, AVX512_BF16)" : "portable");
    test_rng rng;
    test_rng_seed(&rng, 21);
    const int in = 24, out = 2 * LINEAR_WEIGHT_TILE_ROWS + 45;
    const int n = 2 * 2 * LINEAR_WEIGHT_TILE_ROWS + 3; /* > one forward row block */
    float *x = randn(&rng, (size_t)n * in, 1.0f), *xr = alloc_floats((size_t)n * in);
    float *w32 = randn(&rng, (size_t)out * in, 0.2f), *b = randn(&rng, out, 1.0f);
    float *dy = randn(&rng, (size_t)n * out, 1.0f), *dyr = alloc_floats((size_t)n * out);
    uint16_t *wb = malloc((size_t)out * in * sizeof(uint16_t));
    uint16_t *tmp = malloc((size_t)n * out * sizeof(uint16_t));
    badam_convert(wb, BADAM_DTYPE_BF16, w32, BADAM_DTYPE_F32, (size_t)out * in);
    badam_convert(w32, BADAM_DTYPE_F32, wb, BADAM_DTYPE_BF16, (size_t)out * in);
    /* convert_f32_to_bf16 rounds as badam_convert does. */
    convert_f32_to_bf16(tmp, x, (size_t)n * in);
    badam_convert(xr, BADAM_DTYPE_F32, tmp, BADAM_DTYPE_BF16, (size_t)n * in);
    for (size_t i = 0; i < (size_t)n * in; i++) CHECK(tmp[i] == badam_f32_to_bf16(x[i]));
    convert_f32_to_bf16(tmp, dy, (size_t)n * out);
    badam_convert(dyr, BADAM_DTYPE_F32, tmp, BADAM_DTYPE_BF16, (size_t)n * out);
    if (!native) memcpy(xr, x, (size_t)n * in * sizeof(float));
    if (!native) memcpy(dyr, dy, (size_t)n * out * sizeof(float));
    float *scratch = alloc_floats(linear_scratch_floats(in));
    float *y = alloc_floats((size_t)n * out), *y_ref = alloc_floats((size_t)n * out);
    op_counters cnt = {0};
    linear_forward(y, x, wb, BADAM_DTYPE_BF16, b, n, in, out, scratch, &cnt, g_gemm);
    naive_linear(y_ref, xr, w32, b, n, in, out);
    CHECK_CLOSE(y, y_ref, (size_t)n * out, 1e-6, 1e-5, "bf16 GEMM forward");
    CHECK(cnt.gemm_flops == 2ull * n * in * out);

    float *dx0 = randn(&rng, (size_t)n * in, 1.0f);
    float *dx = copy_floats(dx0, (size_t)n * in), *dx_ref = alloc_floats((size_t)n * in);
    linear_backward_input(dx, dy, wb, BADAM_DTYPE_BF16, n, in, out, scratch, &cnt, g_gemm);
    naive_linear_backward_input(dx_ref, dyr, w32, n, in, out);
    for (size_t i = 0; i < (size_t)n * in; i++) dx_ref[i] += dx0[i];
    CHECK_CLOSE(dx, dx_ref, (size_t)n * in, 1e-6, 1e-5, "bf16 GEMM backward_input");
    CHECK(cnt.gemm_flops == 4ull * n * in * out);

    /* Weight gradient of a bf16 weight: dy and x rounded to bf16, fp32 accumulation into dW; the
     * bias from the unrounded dy. The scratch holds 2 * TILE * in halfwords, (in + out) per row:
     * 16 rows a block here, so n rows take 65 blocks. */
    float *dw0 = randn(&rng, (size_t)out * in, 1.0f), *db0 = randn(&rng, out, 1.0f);
    float *dw = copy_floats(dw0, (size_t)out * in), *db = copy_floats(db0, out);
    float *dw_ref = alloc_floats((size_t)out * in), *db_ref = alloc_floats(out);
    float *dw_exact = alloc_floats((size_t)out * in), *db_unused = alloc_floats(out);
    cnt.gemm_flops = 0;
    linear_backward_weight_stored(dw, db, dy, x, BADAM_DTYPE_BF16, n, in, out, scratch,
                                  linear_scratch_floats(in), &cnt, g_gemm);
    naive_linear_backward_weight(dw_ref, db_unused, dyr, xr, n, in, out);
    naive_linear_backward_weight(dw_exact, db_ref, dy, x, n, in, out);
    for (size_t i = 0; i < (size_t)out * in; i++) dw_ref[i] += dw0[i], dw_exact[i] += dw0[i];
    for (int j = 0; j < out; j++) db_ref[j] += db0[j];
    CHECK_CLOSE(dw, dw_ref, (size_t)out * in, 1e-6, 1e-5, "bf16 GEMM backward_weight");
    CHECK_CLOSE(db, db_ref, out, 1e-6, 1e-5, "bf16 GEMM bias gradient");
    CHECK(cnt.gemm_flops == 2ull * n * in * out);
    /* A scratch too small for 16 rows takes the exact fp32 path. */
    memcpy(dw, dw0, (size_t)out * in * sizeof(float));
    linear_backward_weight_stored(dw, NULL, dy, x, BADAM_DTYPE_BF16, n, in, out, scratch, 100, NULL,
                                  g_gemm);
    CHECK_CLOSE(dw, dw_exact, (size_t)out * in, 1e-6, 1e-5, "small-scratch backward_weight");
    free(dw0), free(db0), free(dw), free(db), free(dw_ref), free(db_ref), free(dw_exact);
    free(db_unused);

    /* Forcing the portable path gives the fp32 result on the unrounded activations. */
    setenv("BADAM_GEMM", "fp32", 1);
    CHECK(!gemm_bf16_available(g_gemm));
    linear_forward(y, x, wb, BADAM_DTYPE_BF16, b, n, in, out, scratch, NULL, g_gemm);
    naive_linear(y_ref, x, w32, b, n, in, out);
    CHECK_CLOSE(y, y_ref, (size_t)n * out, 1e-6, 1e-5, "forced portable forward");
    free(x), free(xr), free(w32), free(b), free(dy), free(dyr), free(wb), free(tmp), free(scratch);
    free(y), free(y_ref), free(dx0), free(dx), free(dx_ref);
}

int main(void) {
    g_gemm = gemm_bf16_ctx_create();
    const char *outer = getenv("BADAM_GEMM");
    snprintf(g_outer_gemm, sizeof g_outer_gemm, "%s", outer ? outer : "");
    /* The oracles below compare bf16 storage against fp32 compute exactly: portable path. The
     * native bf16 GEMM has its own test. */
    setenv("BADAM_GEMM", "fp32", 1);
    RUN_TEST(test_linear_bf16_gemm);
    RUN_TEST(test_linear_oracle);
    RUN_TEST(test_linear_grad);
    RUN_TEST(test_embedding);
    RUN_TEST(test_rmsnorm);
    RUN_TEST(test_rope);
    RUN_TEST(test_attention);
    RUN_TEST(test_swiglu);
    RUN_TEST(test_cross_entropy_row);
    RUN_TEST(test_lm_head_loss);
    RUN_TEST(test_lm_head_loss_bf16);
    gemm_bf16_ctx_free(g_gemm);
    return test_result();
}
