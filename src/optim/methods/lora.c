/* LoRA (Hu et al. 2021): the weights stay frozen; each adapted linear W (out x in) gets
 * W + (alpha / r) B A with A (r x in) and B (out x r) trained by AdamW (their values and
 * gradients live with the model's adapters, llama_lora; the moments here). A checkpoint holds
 * the adapter (adapter/) and the moments; OUT/ gets the adapter and the merged weights. */
#include <stdio.h>
#include <string.h>

#include "base/memory.h"
#include "io/files.h"
#include "optim/methods/methods.h"

#define PATH_BYTES 4096

/* Runs body for every adapted linear of the model, with in and out its shape. */
#define FOR_EACH_ADAPTER(m, targets, body)                                                         \
    for (int l_ = 0; l_ < (m)->cfg.n_layers; l_++)                                                 \
        for (int k_ = 0; k_ < LLAMA_P_KIND_COUNT; k_++) {                                          \
            if (!((targets) & (1u << k_))) continue;                                               \
            const llama_param *p_ = &(m)->params[llama_param_index(m, l_, (llama_param_kind)k_)];  \
            size_t in = (size_t)p_->shape[1], out = (size_t)p_->shape[0];                          \
            body;                                                                                  \
        }

/* Moments for every A and B. */
void lora_pool(const llama_model *m, int rank, uint32_t targets, trainable_sizes *z) {
    memset(z, 0, sizeof *z);
    size_t r = (size_t)rank;
    FOR_EACH_ADAPTER(m, targets, {
        z->pool += pool_floats_of(r * in) + pool_floats_of(out * r);
        z->trainable += r * (in + out);
    });
    z->has_moments = 1;
}

/* Bytes of A and B (each tensor its own allocation, llama_lora_attach), the same for dA, dB. */
size_t lora_tensor_bytes(const llama_model *m, int r, uint32_t targets) {
    size_t total = 0;
    FOR_EACH_ADAPTER(m, targets,
                     total += badam_alloc_size(r * in * 4) + badam_alloc_size(out * r * 4));
    return total;
}

static badam_status lora_sizes(const llama_model *m, const method_options *o, method_sizes *out,
                               badam_error *err) {
    (void)err;
    trainable_sizes z;
    lora_pool(m, o->lora_rank, o->lora_targets, &z);
    trainable_sizes_bytes(&z, out->bytes);
    size_t adapters = lora_tensor_bytes(m, o->lora_rank, o->lora_targets);
    out->bytes[BADAM_MEM_MASTER] += adapters;
    out->bytes[BADAM_MEM_GRADIENTS] += adapters;
    out->trainable = z.trainable;
    out->adapter_rank = o->lora_rank;
    out->adapter_targets = __builtin_popcount(o->lora_targets);
    return BADAM_OK;
}

/* The adapters, seeded; a new run may start from --init-adapter (a resumed one loads the
 * checkpoint's in load_parts). */
badam_status lora_prepare_model(llama_model *m, const method_options *o, int resume,
                                badam_error *err) {
    badam_status st = llama_lora_attach(m, o->lora_rank, o->lora_alpha, o->lora_dropout,
                                        o->lora_targets, o->seed, err);
    if (st) return st;
    m->lora->dropout_seed = o->seed;
    if (!resume && o->init_adapter) st = llama_lora_load(m, o->init_adapter, err);
    return st;
}

static badam_status lora_create(method_state *s, badam_error *err) {
    if (!s->m->lora)
        return badam_fail(err, BADAM_E_INVALID, "lora: the model has no adapters attached");
    return BADAM_OK;
}

static badam_status lora_allocate(method_state *s, badam_error *err) {
    const llama_model *m = s->m;
    const llama_lora *lo = m->lora;
    trainable_sizes z;
    lora_pool(m, lo->rank, lo->targets, &z);
    badam_status st = trainable_alloc(&s->ts, s->be, m->n_params, &z, err);
    if (st) return st;
    size_t at = 0;
    for (int i = 0; i < m->cfg.n_layers * LLAMA_P_KIND_COUNT; i++) {
        if (!lo->A[i]) continue;
        const llama_param *p = &m->params[llama_param_index(
            m, i / LLAMA_P_KIND_COUNT, (llama_param_kind)(i % LLAMA_P_KIND_COUNT))];
        size_t na = (size_t)lo->rank * p->shape[1], nb = (size_t)p->shape[0] * lo->rank;
        if (trainable_push_external(&s->ts, p->name, "lora_A", na, lo->A[i], lo->dA[i], &at) ||
            trainable_push_external(&s->ts, p->name, "lora_B", nb, lo->B[i], lo->dB[i], &at)) {
            trainable_free(&s->ts);
            return badam_fail(err, BADAM_E_NOMEM, "optimizer state: out of memory");
        }
    }
    /* no model parameter needs a gradient: backward accumulates the adapters' (dA, dB) */
    s->need_grad = s->ts.flags, s->grads = s->ts.grads;
    s->train_adapters = 1;
    return BADAM_OK;
}

/* Dropout on the adapters' input while training, seeded per micro-batch (the same masks on a
 * resumed run); off for validation. */
static void lora_train_mode(method_state *s, int training, uint64_t micro) {
    s->m->lora->training = training;
    if (training) s->m->lora->dropout_step = micro;
}

/* dir/adapter (PEFT format) and optimizer.safetensors (the moments, by tensor name). */
static badam_status lora_save_parts(const method_state *s, const char *dir, const char *base_model,
                                    badam_error *err) {
    char adapter[PATH_BYTES];
    io_path_join(adapter, sizeof adapter, dir, "adapter");
    badam_status st = llama_lora_save(s->m, adapter, base_model, err);
    if (!st) st = io_sync_dir(adapter, err);
    if (!st) st = method_save_trainables(s, dir, base_model, err);
    return st;
}

static badam_status lora_load_parts(method_state *s, const char *dir, const method_resume *r,
                                    badam_error *err) {
    char adapter[PATH_BYTES];
    if (io_path_join(adapter, sizeof adapter, dir, "adapter"))
        return badam_fail(err, BADAM_E_INVALID, "%s: path too long", dir);
    badam_status st = llama_lora_load(s->m, adapter, err);
    if (!st) st = method_load_trainables(s, dir, r, err);
    return st;
}

/* OUT/adapter, then the adapters merged into the weights (OUT/ itself gets those). */
badam_status lora_save_final(method_state *s, const char *out_dir, const char *base_model,
                             badam_error *err) {
    char dir[PATH_BYTES];
    io_path_join(dir, sizeof dir, out_dir, "adapter");
    badam_status st = llama_lora_save(s->m, dir, base_model, err);
    if (!st) llama_lora_merge(s->m);
    return st;
}

const train_method_ops method_lora = {
    .name = "lora",
    .uses = METHOD_USES_ADAM | METHOD_USES_LORA,
    .data_parallel = 1,
    .default_clip = 1.0f,
    .prepare_model = lora_prepare_model,
    .sizes = lora_sizes,
    .create = lora_create,
    .allocate = lora_allocate,
    .train_mode = lora_train_mode,
    .zero_grads = method_zero_trainable_grads,
    .update = adam_method_update,
    .save_parts = lora_save_parts,
    .load_parts = lora_load_parts,
    .save_final = lora_save_final,
};
