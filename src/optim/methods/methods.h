/* The built-in training methods (one file each in this folder) and what the block-wise ones
 * share. Private to src/optim. */
#ifndef BADAM_OPTIM_METHODS_H
#define BADAM_OPTIM_METHODS_H

#include "optim/method.h"

extern const train_method_ops method_badam;       /* badam.c */
extern const train_method_ops method_adam;        /* adam.c */
extern const train_method_ops method_lora;        /* lora.c */
extern const train_method_ops method_lomo;        /* lomo.c */
extern const train_method_ops method_sgd_bcd;     /* sgd_bcd.c */
extern const train_method_ops method_badam_ratio; /* badam_ratio.c */
extern const train_method_ops method_mezo;        /* mezo.c */
extern const train_method_ops method_mezo_lora;   /* mezo.c */
extern const train_method_ops method_galore;      /* galore.c */
extern const train_method_ops method_adapter;     /* adapter.c */

/* Block coordinate descent, the part of badam.c that SGD-BCD reuses with another update:
 * partition, K, the block order and switch, and the state reset at a switch. */
badam_status bcd_sizes(const llama_model *m, const method_options *o, int has_moments,
                       method_sizes *out, badam_error *err);
badam_status bcd_create(method_state *s, badam_error *err);
badam_status bcd_allocate(method_state *s, int has_moments, badam_error *err);
int bcd_on_step_begin(method_state *s, int step);
badam_status bcd_load_parts(method_state *s, const char *dir, const method_resume *r,
                            badam_error *err);
void bcd_describe(const method_state *s, const badam_logger *log);
void bcd_free(method_state *s);

/* What LoRA (lora.c) shares with MeZO's adapter mode (mezo.c): the pool floats of every A and B
 * (z->pool, z->trainable; moments flagged), the bytes of the adapters' own tensors (each of A,
 * B, and again of dA, dB), attaching them (and --init-adapter), and OUT/adapter + the merge. */
void lora_pool(const llama_model *m, int rank, uint32_t targets, trainable_sizes *z);
size_t lora_tensor_bytes(const llama_model *m, int r, uint32_t targets);
badam_status lora_prepare_model(llama_model *m, const method_options *o, int resume,
                                badam_error *err);
badam_status lora_save_final(method_state *s, const char *out_dir, const char *base_model,
                             badam_error *err);

/* The AdamW update of every tensor of ts (adam.c; BAdam and LoRA use it too): step count + 1,
 * then adamw_update (or adamw_update_split on a split master) with g = grad * scale. */
void adam_update_trainables(trainable_set *ts, badam_dtype weight_dtype, float lr, float scale,
                            float weight_decay, const adamw_hparams *h);

/* The update of every Adam-trained method (adam.c; BAdam, LoRA and the bottleneck adapters use
 * it as theirs): g = (all-reduced) gradient sums of s->ts / tokens, clipped to the global norm
 * (method_clip_scale, which sets *norm), then adam_update_trainables with the method's lr,
 * weight decay and Adam hyper-parameters. Errors: those of the reduction and the clip. */
badam_status adam_method_update(method_state *s, const method_update_ctx *c, double *norm,
                                badam_error *err);

#endif
