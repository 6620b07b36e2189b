/* Ops of the CUDA backend that run on the host: the encoder's bidirectional attention and
 * GaLore's truncated SVD. Their inputs are downloaded, the CPU kernels (model/cpu/ops_encoder.h,
 * model/cpu/ops.h state the math) run, and the outputs are uploaded: exact, but a round trip
 * over PCIe and the CPU's speed. Device kernels for them are not written yet. */
#include <stdlib.h>

#include "model/cpu/ops.h"
#include "model/cpu/ops_encoder.h"
#include "model/cuda/cuda_internal.h"

/* Host copies of `count` device arrays of the given byte sizes (NULL stays NULL); 0, or -1 out of
 * memory (recorded, nothing left allocated). */
static int fetch(cuda_backend *c, int count, void **host, const void *const *dev,
                 const size_t *bytes) {
    for (int i = 0; i < count; i++) {
        host[i] = NULL;
        if (!dev[i]) continue;
        host[i] = malloc(bytes[i] ? bytes[i] : 1);
        if (!host[i]) {
            for (int j = 0; j < i; j++) free(host[j]);
            cuda_fail(c, BADAM_E_NOMEM, "cuda host fallback: out of memory");
            return -1;
        }
        cuda_to_host(c, host[i], dev[i], bytes[i]);
    }
    return 0;
}

void cu_attention_bidir_forward(backend *be, float *out, float *lse, const float *q, const float *k,
                                const float *v, int B, int T, int H, int D, const uint8_t *key_mask,
                                double p_drop, uint64_t key) {
    cuda_backend *c = cuda_of(be);
    size_t act = sizeof(float) * (size_t)B * T * H * D, ls = sizeof(float) * (size_t)B * H * T;
    const void *dev[6] = {q, k, v, key_mask, out, lse};
    size_t bytes[6] = {act, act, act, (size_t)B * T, act, ls};
    void *h[6];
    if (fetch(c, 6, h, dev, bytes)) return;
    attention_bidir_forward(h[4], h[5], h[0], h[1], h[2], B, T, H, D, h[3], p_drop, key,
                            &be->counters);
    cuda_to_dev(c, out, h[4], act);
    if (lse) cuda_to_dev(c, lse, h[5], ls);
    for (int i = 0; i < 6; i++) free(h[i]);
}

void cu_attention_bidir_backward(backend *be, float *dq, float *dk, float *dv, const float *dout,
                                 const float *out, const float *lse, const float *q, const float *k,
                                 const float *v, int B, int T, int H, int D,
                                 const uint8_t *key_mask, double p_drop, uint64_t key) {
    cuda_backend *c = cuda_of(be);
    size_t act = sizeof(float) * (size_t)B * T * H * D, ls = sizeof(float) * (size_t)B * H * T;
    const void *dev[10] = {dout, out, lse, q, k, v, key_mask, dq, dk, dv};
    size_t bytes[10] = {act, act, ls, act, act, act, (size_t)B * T, act, act, act};
    void *h[10];
    if (fetch(c, 10, h, dev, bytes)) return;
    attention_bidir_backward(h[7], h[8], h[9], h[0], h[1], h[2], h[3], h[4], h[5], B, T, H, D, h[6],
                             p_drop, key, &be->counters);
    cuda_to_dev(c, dq, h[7], act);
    cuda_to_dev(c, dk, h[8], act);
    cuda_to_dev(c, dv, h[9], act);
    for (int i = 0; i < 10; i++) free(h[i]);
}

int cu_galore_projector(backend *be, float *P, const float *G, int rows, int cols, int rank,
                        float *scratch) {
    cuda_backend *c = cuda_of(be);
    int k = rank < rows ? rank : rows;
    k = k < cols ? k : cols;
    size_t gb = sizeof(float) * (size_t)rows * cols;
    size_t pb = sizeof(float) * (size_t)k * (size_t)(rows >= cols ? cols : rows);
    float *hg = malloc(gb + 1), *hp = malloc(pb + 1);
    float *hs = malloc(sizeof(float) * galore_projector_scratch_floats(rows, cols) + 1);
    int rc = -1;
    if (hg && hp && hs) {
        cuda_to_host(c, hg, G, gb);
        rc = galore_projector(hp, hg, rows, cols, rank, hs);
        if (!rc) cuda_to_dev(c, P, hp, pb);
    } else {
        cuda_fail(c, BADAM_E_NOMEM, "cuda galore_projector: out of memory");
    }
    free(hg), free(hp), free(hs);
    return rc;
}
