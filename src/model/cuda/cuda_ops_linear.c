/* GEMM ops of the CUDA backend: gemm_f32, the linear ops and the fused LM head + cross-entropy
 * (backend.h states each). A bf16 (f16) weight runs a bf16 (f16) cuBLASLt GEMM with fp32
 * accumulation, its fp32 activation operands rounded to the weight's type first (as the CPU's
 * native bf16 GEMM does); with BADAM_GEMM=fp32 the weight is converted to fp32 instead and the
 * GEMM runs in fp32 (no TF32). A host weight is staged through the pool per call. */
#include <stdlib.h>

#include "model/cuda/cuda_internal.h"
#include "model/cuda/cuda_kernels.h"

#define CARVE_ALIGN ((size_t)256)

static size_t up256(size_t b) {
    return (b + CARVE_ALIGN - 1) / CARVE_ALIGN * CARVE_ALIGN;
}

/* How one linear op runs: the GEMM type and the scratch it needs. */
typedef struct lin_plan {
    int half;         /* weight stored in bf16/f16 */
    int conv;         /* ... and converted to fp32 (BADAM_GEMM=fp32) */
    cudaDataType_t t; /* the GEMM's operand type */
} lin_plan;

static lin_plan plan_of(const cuda_backend *c, badam_dtype wd) {
    lin_plan p = {wd != BADAM_DTYPE_F32, 0, CUDA_R_32F};
    p.conv = p.half && c->gemm_fp32;
    if (p.half && !p.conv) p.t = cuda_type(wd);
    return p;
}

/* The weight [count] as a device operand of type p.t: staged (slot 0) when host, converted into
 * f32buf when p.conv. NULL on failure (recorded). */
static const void *weight_operand(cuda_backend *c, const lin_plan *p, const void *w, badam_dtype wd,
                                  size_t count, float *f32buf) {
    const void *d = cuda_dev(c, 0, w, count * badam_dtype_size(wd), 1);
    if (!d || !p->conv) return d;
    cuk_convert(f32buf, 0, d, (int)wd, count);
    return f32buf;
}

/* x [count] as an operand of type p.t: x itself for fp32, else rounded into buf. */
static const void *act_operand(const lin_plan *p, badam_dtype wd, const float *x, size_t count,
                               void *buf) {
    if (p->t == CUDA_R_32F) return x;
    cuk_convert(buf, (int)wd, x, 0, count);
    return buf;
}

/* 1 when every non-NULL pointer is device memory; else records that `op` got host memory (LoRA
 * adapters and their gradients are host memory today) and returns 0. */
static int all_dev(cuda_backend *c, const char *op, const void *a, const void *b, const void *d) {
    if ((!a || cuda_map(c, a)) && (!b || cuda_map(c, b)) && (!d || cuda_map(c, d))) return 1;
    cuda_fail(c, BADAM_E_UNSUPPORTED,
              "%s: an operand in host memory (LoRA adapters, a caller's gradient buffer) is not "
              "supported on cuda",
              op);
    return 0;
}

void cu_gemm_f32(backend *be, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    cuda_backend *c = cuda_of(be);
    if (!all_dev(c, "gemm_f32", A, B, C)) return;
    cuda_gemm(c, ta, tb, M, N, K, alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, beta, C, ldc);
    cuda_check(c, "gemm_f32");
}

/* Scratch for one linear op: the fp32 weight (conv) and `act` activation elements (half). */
static char *lin_scratch(cuda_backend *c, const lin_plan *p, size_t wcount, size_t act,
                         char **act_buf) {
    size_t wbytes = p->conv ? up256(wcount * sizeof(float)) : 0;
    char *t = cuda_tmp(c, wbytes + up256(act * 2));
    if (t) *act_buf = t + wbytes;
    return t;
}

void cu_linear_forward(backend *be, float *y, const float *x, const void *w, badam_dtype wd,
                       const float *b, int n, int in, int out, float *scratch) {
    cuda_backend *c = cuda_of(be);
    if (b && !(b = cuda_dev(c, 2, b, sizeof(float) * (size_t)(out > 0 ? out : 0), 1)))
        return; /* a host bias: resident or staged */
    if (!all_dev(c, "linear_forward", x, b, NULL)) return;
    lin_plan p = plan_of(c, wd);
    size_t wc = (size_t)out * in;
    char *xb = NULL, *t = lin_scratch(c, &p, wc, p.t != CUDA_R_32F ? (size_t)n * in : 0, &xb);
    const void *W = t ? weight_operand(c, &p, w, wd, wc, (float *)t) : NULL;
    if (!W || n <= 0 || out <= 0) return;
    const void *X = act_operand(&p, wd, x, (size_t)n * in, xb);
    size_t ybytes = sizeof(float) * (size_t)n * out;
    float *yd = cuda_dev(c, 1, y, ybytes, 0); /* host y: llama_forward_logits's logits */
    if (!yd) return;
    if (b) cuk_fill_rows(yd, b, n, out);
    cuda_gemm(c, 0, 1, n, out, in, 1.0f, X, p.t, in, W, p.t, in, b ? 1.0f : 0.0f, yd, out);
    cuda_check(c, "linear_forward");
    cuda_back(c, y, yd, ybytes);
}

void cu_linear_backward_input(backend *be, float *dx, const float *dy, const void *w,
                              badam_dtype wd, int n, int in, int out, float *scratch) {
    cuda_backend *c = cuda_of(be);
    if (!all_dev(c, "linear_backward_input", dx, dy, NULL)) return;
    lin_plan p = plan_of(c, wd);
    size_t wc = (size_t)out * in;
    char *db = NULL, *t = lin_scratch(c, &p, wc, p.t != CUDA_R_32F ? (size_t)n * out : 0, &db);
    const void *W = t ? weight_operand(c, &p, w, wd, wc, (float *)t) : NULL;
    if (!W || n <= 0 || in <= 0) return;
    const void *DY = act_operand(&p, wd, dy, (size_t)n * out, db);
    cuda_gemm(c, 0, 0, n, in, out, 1.0f, DY, p.t, out, W, p.t, in, 1.0f, dx, in);
    cuda_check(c, "linear_backward_input");
}

void cu_linear_backward_weight(backend *be, float *dw, float *db, const float *dy, const float *x,
                               badam_dtype wd, int n, int in, int out, float *scratch,
                               size_t scratch_floats) {
    cuda_backend *c = cuda_of(be);
    if (n <= 0 || out <= 0 || !all_dev(c, "linear_backward_weight", dw, db, dy)) return;
    if (!all_dev(c, "linear_backward_weight", x, NULL, NULL)) return;
    if (dw && in > 0) {
        lin_plan p = plan_of(c, wd);
        p.conv = 0; /* the weight itself is not an operand */
        size_t a = (size_t)n * out, bx = (size_t)n * in;
        char *t = p.t != CUDA_R_32F ? cuda_tmp(c, up256(a * 2) + up256(bx * 2)) : NULL;
        if (p.t != CUDA_R_32F && !t) return;
        const void *DY = act_operand(&p, wd, dy, a, t);
        const void *X = act_operand(&p, wd, x, bx, t ? t + up256(a * 2) : NULL);
        cuda_gemm(c, 1, 0, out, in, n, 1.0f, DY, p.t, out, X, p.t, in, 1.0f, dw, in);
    }
    if (db) cuk_col_sum(db, dy, n, out);
    cuda_check(c, "linear_backward_weight");
}

/* Indices of the rows whose target lies in [0, V) (ignored and out-of-range rows are skipped, as
 * on the CPU), read back from the device; returns their count, -1 out of memory. */
static int selected_rows(cuda_backend *c, int32_t *sel, const int32_t *targets, int n, int V) {
    int32_t *ht = malloc(sizeof *ht * (size_t)n + 1);
    if (!ht) return -1;
    cuda_to_host(c, ht, targets, sizeof *ht * (size_t)n);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (ht[i] != LOSS_IGNORE_INDEX && ht[i] >= 0 && ht[i] < V) sel[m++] = i;
    free(ht);
    return m;
}

/* The caller's workspace (cu_lm_head_loss_workspace_floats): gathered rows h [chunk, C], logits
 * [chunk, V], dh rows [chunk, C], the chunk's row indices and its per-row losses (doubles). */
typedef struct head_ws {
    float *hc, *logits, *dhc;
    int32_t *rows;
    double *loss;
} head_ws;

static head_ws head_ws_of(float *ws, int chunk, int C, int V) {
    head_ws h;
    h.hc = ws;
    h.logits = h.hc + (size_t)chunk * C;
    h.dhc = h.logits + (size_t)chunk * V;
    h.rows = (int32_t *)(h.dhc + (size_t)chunk * C);
    size_t off = (size_t)(h.dhc + (size_t)chunk * C - ws) + (size_t)chunk + 2;
    h.loss = (double *)(ws + (off + 1) / 2 * 2);
    return h;
}

/* One chunk of m selected rows: logits, per-row loss and gradient, dh and dW; returns the chunk's
 * loss sum (the per-row losses added in row order on the host). */
static double head_chunk(backend *be, const head_ws *s, float *dh, float *dw, const float *h,
                         const void *w, badam_dtype wd, const int32_t *targets, const int32_t *sel,
                         int m, int C, int V, float scale) {
    cuda_backend *c = cuda_of(be);
    double loss[512], sum = 0.0;
    cuda_to_dev(c, s->rows, sel, sizeof(int32_t) * (size_t)m);
    cuk_gather_rows(s->hc, h, s->rows, m, C);
    cu_linear_forward(be, s->logits, s->hc, w, wd, NULL, m, C, V, NULL);
    cuk_cross_entropy_rows(dh || dw ? s->logits : NULL, s->loss, s->logits, targets, s->rows, m, V,
                           scale);
    if (dh) {
        cudaMemsetAsync(s->dhc, 0, sizeof(float) * (size_t)m * C, 0);
        cu_linear_backward_input(be, s->dhc, s->logits, w, wd, m, C, V, NULL);
        cuk_scatter_add_rows(dh, s->dhc, s->rows, m, C);
    }
    if (dw) cu_linear_backward_weight(be, dw, NULL, s->logits, s->hc, wd, m, C, V, NULL, 0);
    cuda_check(c, "lm_head_loss");
    for (int r0 = 0; r0 < m; r0 += 512) {
        int k = m - r0 < 512 ? m - r0 : 512;
        cuda_to_host(c, loss, s->loss + r0, sizeof(double) * (size_t)k);
        for (int r = 0; r < k; r++) sum += loss[r];
    }
    return sum;
}

double cu_lm_head_loss(backend *be, float *dh, float *dw, const float *h, const void *w,
                       badam_dtype wd, const int32_t *targets, int n, int C, int V, int chunk,
                       float scale, float *workspace, int *n_counted) {
    cuda_backend *c = cuda_of(be);
    if (n_counted) *n_counted = 0;
    if (chunk <= 0) return NAN;
    int32_t *sel = malloc(sizeof *sel * (size_t)(n > 0 ? n : 1));
    int cnt = sel ? selected_rows(c, sel, targets, n, V) : -1;
    if (cnt < 0) {
        free(sel);
        cuda_fail(c, BADAM_E_NOMEM, "cuda lm_head_loss: out of memory");
        return NAN;
    }
    head_ws s = head_ws_of(workspace, chunk, C, V);
    double total = 0.0;
    for (int r0 = 0; r0 < cnt; r0 += chunk) {
        int m = cnt - r0 < chunk ? cnt - r0 : chunk;
        total += head_chunk(be, &s, dh, dw, h, w, wd, targets, sel + r0, m, C, V, scale);
    }
    free(sel);
    if (n_counted) *n_counted = cnt;
    return total;
}
