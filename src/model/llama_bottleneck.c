/* Bottleneck adapters (llama.h: llama_bottleneck; Houlsby et al. 2019) on the Llama layers:
 * attach, forward and backward. On the sublayer output y [N, C] (site 0: o_proj's, 1:
 * down_proj's), before the residual add:
 *   h = relu(y D^T + d)  [N, s];   z = y + h U^T + u
 *   dU += dz^T h;  du += sum_rows dz;  dh = dz U;  dp = dh * (h > 0)
 *   dD += dp^T y;  dd += sum_rows dp;  dy = dz + dp D
 * Forward keeps y and h (the adapter's `keep` block, [N, C + s]) for backward. */
#include <math.h>
#include <stdlib.h>

#include "base/memory.h"
#include "model/llama_internal.h"

size_t llama_bottleneck_part(const llama_bottleneck *b, int C, int part, size_t *numel,
                             const char **name) {
    static const char *const NAMES[4] = {"down.weight", "down.bias", "up.weight", "up.bias"};
    size_t s = (size_t)b->size, c = (size_t)C;
    const size_t n[4] = {s * c, s, c * s, c}, off[4] = {0, s * c, s * c + s, 2 * s * c + s};
    if (numel) *numel = n[part];
    if (name) *name = NAMES[part];
    return off[part];
}

void llama_bottleneck_detach(llama_model *m) {
    llama_bottleneck *b = m->bottleneck;
    if (!b) return;
    for (int a = 0; a < b->n_adapters; a++) {
        if (b->w) badam_free(b->w[a]);
        if (b->g) badam_free(b->g[a]);
    }
    free(b->w), free(b->g), free(b);
    m->bottleneck = NULL;
}

badam_status llama_bottleneck_attach(llama_model *m, int size, uint64_t seed, badam_error *err) {
    const int C = m->cfg.hidden_size;
    if (m->bottleneck || m->lora)
        return badam_fail(err, BADAM_E_INVALID,
                          "bottleneck adapters: the model has adapters attached already");
    if (size < 1 || size > C)
        return badam_fail(err, BADAM_E_INVALID,
                          "bottleneck adapters: --adapter-size %d is outside [1, hidden_size %d]",
                          size, C);
    llama_bottleneck *b = calloc(1, sizeof *b);
    m->bottleneck = b;
    if (!b) return badam_fail(err, BADAM_E_NOMEM, "bottleneck adapters: out of memory");
    b->size = size, b->n_adapters = 2 * m->cfg.n_layers;
    b->per_adapter = 2 * (size_t)size * C + (size_t)size + (size_t)C;
    b->w = calloc((size_t)b->n_adapters, sizeof(float *));
    b->g = calloc((size_t)b->n_adapters, sizeof(float *));
    if (!b->w || !b->g) goto nomem;
    double bound = 1.0 / sqrt((double)C);
    for (int a = 0; a < b->n_adapters; a++) {
        b->w[a] = badam_alloc_array_in(BADAM_MEM_MASTER, b->per_adapter, sizeof(float));
        b->g[a] = badam_alloc_array_in(BADAM_MEM_GRADIENTS, b->per_adapter, sizeof(float));
        if (!b->w[a] || !b->g[a]) goto nomem;
        /* D ~ U(-1/sqrt(C), 1/sqrt(C)); d, U, u stay 0 (badam_alloc zero-fills) */
        for (size_t j = 0; j < (size_t)size * C; j++) {
            uint64_t h = backend_mix64(seed ^ backend_mix64((uint64_t)a * 0x100000001B3ull + j));
            b->w[a][j] = (float)((2.0 * backend_unit(h) - 1.0) * bound);
        }
    }
    return BADAM_OK;
nomem:
    llama_bottleneck_detach(m);
    return badam_fail(err, BADAM_E_NOMEM, "bottleneck adapters: out of memory (size %d)", size);
}

/* The four tensors of an adapter block p (values or gradients). */
typedef struct bn_parts {
    float *D, *d, *U, *u;
} bn_parts;

static bn_parts parts_of(const llama_model *m, float *p) {
    const llama_bottleneck *b = m->bottleneck;
    int C = m->cfg.hidden_size;
    bn_parts x = {p + llama_bottleneck_part(b, C, 0, NULL, NULL),
                  p + llama_bottleneck_part(b, C, 1, NULL, NULL),
                  p + llama_bottleneck_part(b, C, 2, NULL, NULL),
                  p + llama_bottleneck_part(b, C, 3, NULL, NULL)};
    return x;
}

void llama_bottleneck_forward(const llama_model *m, const layer_run *r, int l, int site, float *y,
                              float *keep) {
    const llama_bottleneck *b = m->bottleneck;
    if (!b) return;
    int N = r->n, C = m->cfg.hidden_size, s = b->size;
    bn_parts p = parts_of(m, b->w[2 * l + site]);
    float *yin = keep, *h = keep + (size_t)N * C;
    BE(r->be, copy, yin, y, sizeof(float) * (size_t)N * C);
    BE(r->be, linear_forward, h, yin, p.D, BADAM_DTYPE_F32, p.d, N, C, s, r->lin_scratch);
    BE(r->be, relu_forward, h, h, (size_t)N * s);
    BE(r->be, linear_forward, y, h, p.U, BADAM_DTYPE_F32, p.u, N, s, C, r->lin_scratch);
    BE(r->be, add, y, y, yin, (size_t)N * C);
}

void llama_bottleneck_backward(const llama_model *m, llama_workspace *ws, int l, int site,
                               const float *dz, const float *keep, float *dy, int train) {
    const llama_bottleneck *b = m->bottleneck;
    int N = ws->B * ws->T, C = ws->C, s = b->size;
    int a = 2 * l + site;
    bn_parts p = parts_of(m, b->w[a]);
    const float *yin = keep, *h = keep + (size_t)N * C;
    float *dh = ws->bn_dh;
    backend *be = ws->be;
    size_t sf = ws->layout.lin_scratch;
    BE(be, zero, dh, sizeof(float) * (size_t)N * s);
    BE(be, linear_backward_input, dh, dz, p.U, BADAM_DTYPE_F32, N, s, C, ws->lin_scratch);
    bn_parts dg = parts_of(m, b->g[a]);
    if (train)
        BE(be, linear_backward_weight, dg.U, dg.u, dz, h, BADAM_DTYPE_F32, N, s, C, ws->lin_scratch,
           sf);
    BE(be, relu_backward, dh, dh, h, (size_t)N * s);
    if (train)
        BE(be, linear_backward_weight, dg.D, dg.d, dh, yin, BADAM_DTYPE_F32, N, C, s,
           ws->lin_scratch, sf);
    BE(be, copy, dy, dz, sizeof(float) * (size_t)N * C);
    BE(be, linear_backward_input, dy, dh, p.D, BADAM_DTYPE_F32, N, C, s, ws->lin_scratch);
}
