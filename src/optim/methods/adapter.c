/* Bottleneck adapters (Houlsby et al. 2019): the base weights stay frozen; after the attention
 * and after the MLP of every layer an adapter z = y + U relu(D y + d) + u (llama.h:
 * llama_bottleneck; initialised near the identity, U = 0) is trained by AdamW (weight decay on D
 * and U, not on the biases). Their values and gradients live with the model's adapters; the
 * moments here. Not mergeable: a checkpoint holds the adapter (adapter/) and the moments, OUT/
 * gets the unchanged base and OUT/adapter (generate and eval load it with --adapter).
 * Data parallel: the adapters' gradient sums are all-reduced before the global-norm clip
 * (adam_method_update over the trainable set, which holds the adapters only); rank 0's initial
 * adapters are broadcast by the trainer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/memory.h"
#include "io/files.h"
#include "optim/methods/methods.h"

#define PATH_BYTES 4096

/* Moments for every part of every adapter. */
static void adapter_pool(const llama_model *m, int size, trainable_sizes *z) {
    memset(z, 0, sizeof *z);
    llama_bottleneck b = {size, 2 * m->cfg.n_layers, 0, NULL, NULL};
    for (int a = 0; a < b.n_adapters; a++)
        for (int part = 0; part < 4; part++) {
            size_t n;
            llama_bottleneck_part(&b, m->cfg.hidden_size, part, &n, NULL);
            z->pool += pool_floats_of(n), z->trainable += n;
        }
    z->has_moments = 1;
}

static badam_status adapter_check(const method_options *o, badam_error *err) {
    if (o->adapter_size < 1)
        return badam_fail(err, BADAM_E_INVALID, "--adapter-size must be >= 1 (got %d)",
                          o->adapter_size);
    return BADAM_OK;
}

static badam_status adapter_sizes(const llama_model *m, const method_options *o, method_sizes *out,
                                  badam_error *err) {
    badam_status st = adapter_check(o, err);
    if (st) return st;
    if (o->adapter_size > m->cfg.hidden_size) /* as llama_bottleneck_attach: the plan refuses too */
        return badam_fail(err, BADAM_E_INVALID,
                          "--adapter-size %d is outside [1, hidden_size %d]: a bottleneck "
                          "adapter is narrower than the model",
                          o->adapter_size, m->cfg.hidden_size);
    trainable_sizes z;
    adapter_pool(m, o->adapter_size, &z);
    trainable_sizes_bytes(&z, out->bytes);
    /* values and gradients: one block per adapter each (llama_bottleneck_attach) */
    size_t per = 2 * (size_t)o->adapter_size * m->cfg.hidden_size + (size_t)o->adapter_size +
                 (size_t)m->cfg.hidden_size;
    size_t blocks = (size_t)2 * m->cfg.n_layers * badam_alloc_size(per * sizeof(float));
    out->bytes[BADAM_MEM_MASTER] += blocks;
    out->bytes[BADAM_MEM_GRADIENTS] += blocks;
    out->trainable = z.trainable;
    out->bottleneck_size = o->adapter_size;
    return BADAM_OK;
}

/* The adapters, seeded; a new run may start from --init-adapter (a resumed one loads the
 * checkpoint's in load_parts). */
static badam_status adapter_prepare_model(llama_model *m, const method_options *o, int resume,
                                          badam_error *err) {
    badam_status st = llama_bottleneck_attach(m, o->adapter_size, o->seed, err);
    if (!st && !resume && o->init_adapter) st = llama_bottleneck_load(m, o->init_adapter, err);
    return st;
}

/* Tensor names of the trainables ("model.layers.3.mlp_adapter"), one per adapter. */
typedef struct adapter_names {
    char (*name)[64];
} adapter_names;

static badam_status adapter_create(method_state *s, badam_error *err) {
    if (!s->m->bottleneck)
        return badam_fail(err, BADAM_E_INVALID, "adapter: the model has no adapters attached");
    adapter_names *n = calloc(1, sizeof *n);
    if (n) n->name = calloc((size_t)s->m->bottleneck->n_adapters, sizeof *n->name);
    s->priv = n;
    if (!n || !n->name) return badam_fail(err, BADAM_E_NOMEM, "adapter: out of memory");
    for (int a = 0; a < s->m->bottleneck->n_adapters; a++)
        snprintf(n->name[a], sizeof n->name[a], "model.layers.%d.%s", a / 2,
                 a % 2 ? "mlp_adapter" : "attn_adapter");
    return BADAM_OK;
}

static badam_status adapter_allocate(method_state *s, badam_error *err) {
    const llama_model *m = s->m;
    const llama_bottleneck *b = m->bottleneck;
    adapter_names *names = s->priv;
    trainable_sizes z;
    adapter_pool(m, b->size, &z);
    badam_status st = trainable_alloc(&s->ts, s->be, m->n_params, &z, err);
    if (st) return st;
    size_t at = 0;
    for (int a = 0; a < b->n_adapters; a++)
        for (int part = 0; part < 4; part++) {
            size_t n;
            const char *pname;
            size_t off = llama_bottleneck_part(b, m->cfg.hidden_size, part, &n, &pname);
            if (trainable_push_external(&s->ts, names->name[a], pname, n, b->w[a] + off,
                                        b->g[a] + off, &at)) {
                trainable_free(&s->ts);
                return badam_fail(err, BADAM_E_NOMEM, "optimizer state: out of memory");
            }
            s->ts.t[s->ts.n - 1].decay = part == 0 || part == 2; /* matrices only */
        }
    /* no model parameter needs a gradient: backward accumulates the adapters' */
    s->need_grad = s->ts.flags, s->grads = s->ts.grads;
    s->train_adapters = 1;
    return BADAM_OK;
}

/* dir/adapter and optimizer.safetensors (the moments, by tensor name). */
static badam_status adapter_save_parts(const method_state *s, const char *dir,
                                       const char *base_model, badam_error *err) {
    char path[PATH_BYTES];
    io_path_join(path, sizeof path, dir, "adapter");
    badam_status st = llama_bottleneck_save(s->m, path, base_model, err);
    if (!st) st = io_sync_dir(path, err);
    if (!st) st = method_save_trainables(s, dir, base_model, err);
    return st;
}

static badam_status adapter_load_parts(method_state *s, const char *dir, const method_resume *r,
                                       badam_error *err) {
    char path[PATH_BYTES];
    io_path_join(path, sizeof path, dir, "adapter");
    badam_status st = llama_bottleneck_load(s->m, path, err);
    if (!st) st = method_load_trainables(s, dir, r, err);
    return st;
}

/* OUT/adapter beside the unchanged base (OUT/ itself). */
static badam_status adapter_save_final(method_state *s, const char *out_dir, const char *base_model,
                                       badam_error *err) {
    char path[PATH_BYTES];
    io_path_join(path, sizeof path, out_dir, "adapter");
    return llama_bottleneck_save(s->m, path, base_model, err);
}

static void adapter_free(method_state *s) {
    adapter_names *n = s->priv;
    if (n) free(n->name);
    free(n);
    s->priv = NULL;
}

const train_method_ops method_adapter = {
    .name = "adapter",
    .uses = METHOD_USES_ADAM | METHOD_USES_ADAPTER,
    .data_parallel = 1,
    .default_clip = 1.0f,
    .check = adapter_check,
    .prepare_model = adapter_prepare_model,
    .sizes = adapter_sizes,
    .create = adapter_create,
    .allocate = adapter_allocate,
    .zero_grads = method_zero_trainable_grads,
    .update = adam_method_update,
    .save_parts = adapter_save_parts,
    .load_parts = adapter_load_parts,
    .save_final = adapter_save_final,
    .free = adapter_free,
};
