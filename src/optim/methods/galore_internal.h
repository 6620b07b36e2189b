/* GaLore's state, shared by the method (galore.c) and its checkpoint part (galore_state.c).
 * Private to src/optim/methods. */
#ifndef BADAM_OPTIM_METHODS_GALORE_INTERNAL_H
#define BADAM_OPTIM_METHODS_GALORE_INTERNAL_H

#include "optim/methods/methods.h"

/* One projected matrix: its shape, rank, projector P and low-rank moments m, v (backend memory),
 * its fp32 master (16-bit weights: fp32 copy or split master low bits) and gradient. */
typedef struct gproj {
    int param, rows, cols, k;
    size_t low; /* numel of R (= of m, v) */
    float *P, *m, *v, *master, *grad;
    uint16_t *master_lo;
} gproj;

typedef struct galore {
    gproj *p;
    int n;
    int *plain_of; /* [n_params] index in s->ts, or -1 */
    int *proj_of;  /* [n_params] index in p, or -1 */
    float *pool_P, *pool_m, *pool_v, *pool_master, *pool_grad, *R, *Z, *svd;
    uint16_t *pool_lo;
    double sum_sq;   /* per-layer: this step's scaled gradients' sum of squares */
    badam_status st; /* per-layer: an error inside backward, returned by update */
    badam_error err;
} galore;

/* galore.safetensors in a checkpoint: per layer matrix NAME, NAME.galore.P, NAME.galore.m and
 * NAME.galore.v (F32), and its master where the weight is not its own: NAME.master (F32, f16
 * weights) or NAME.master_lo (the split master's low bits under the BF16 tag, bf16 weights), as
 * in optimizer.safetensors; the other tensors' AdamW state is in optimizer.safetensors. */
badam_status galore_save_parts(const method_state *s, const char *dir, const char *base_model,
                               badam_error *err);
badam_status galore_load_parts(method_state *s, const char *dir, const method_resume *r,
                               badam_error *err);

#endif
