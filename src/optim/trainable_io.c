/* optimizer.safetensors: a trainable set's optimizer tensors by name (trainable.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"
#include "io/safetensors.h"
#include "optim/trainable.h"

#define PATH_BYTES 4096

#define KEY_BYTES 512

void checkpoint_tensor_key(const trainable *t, const char *what, char *out, size_t size) {
    if (t->part)
        snprintf(out, size, "%s.%s.%s", t->name, t->part, what);
    else
        snprintf(out, size, "%s.%s", t->name, what);
}

/* optimizer.safetensors holds, per trainable tensor NAME: NAME.master (F32) where the master is
 * a separate fp32 copy, or NAME.master_lo where it is split (bf16 weights, optim.h): the raw low
 * 16 bits, under the BF16 tag since the format has no tag our tools read for plain 16-bit words
 * (the high bits are the weight saved with the model); NAME.m and NAME.v (F32) for Adam. LoRA
 * tensors are NAME.lora_A.* and NAME.lora_B.*. */
typedef struct optimizer_part {
    const char *what;
    badam_dtype dtype;
    void *data; /* numel values of dtype, backend memory */
} optimizer_part;

/* The optimizer tensors trainable t holds, in file order; returns how many (at most 4). */
static int optimizer_parts(const trainable *t, optimizer_part out[4]) {
    int n = 0;
    if (t->weight && t->master) out[n++] = (optimizer_part){"master", BADAM_DTYPE_F32, t->master};
    if (t->master_lo) out[n++] = (optimizer_part){"master_lo", BADAM_DTYPE_BF16, t->master_lo};
    if (t->m) out[n++] = (optimizer_part){"m", BADAM_DTYPE_F32, t->m};
    if (t->v) out[n++] = (optimizer_part){"v", BADAM_DTYPE_F32, t->v};
    return n;
}

/* st_write_fetch's fetch: a chunk of backend memory downloaded to the host. */
static badam_status download_chunk(void *ctx, void *host, const void *src, size_t bytes,
                                   badam_error *err) {
    (void)err;
    backend *be = ctx;
    BE(be, download, host, src, bytes);
    return BADAM_OK;
}

badam_status checkpoint_write_optimizer(const char *dir, const trainable_set *ts,
                                        badam_error *err) {
    st_entry *e = calloc((size_t)ts->n * 4 + 1, sizeof *e);
    char(*names)[KEY_BYTES] = calloc((size_t)ts->n * 4 + 1, sizeof *names);
    if (!e || !names) {
        free(e);
        free(names);
        return badam_fail(err, BADAM_E_NOMEM, "checkpoint: out of memory");
    }
    size_t n = 0;
    for (int i = 0; i < ts->n; i++) {
        const trainable *t = &ts->t[i];
        optimizer_part parts[4];
        int n_parts = optimizer_parts(t, parts);
        for (int k = 0; k < n_parts; k++, n++) {
            checkpoint_tensor_key(t, parts[k].what, names[n], sizeof names[n]);
            e[n] = (st_entry){names[n], parts[k].dtype, 1, {(int64_t)t->numel}, parts[k].data};
        }
    }
    char path[PATH_BYTES];
    io_path_join(path, sizeof path, dir, "optimizer.safetensors");
    /* the parts are backend memory: they reach the file through download, a chunk at a time */
    badam_status st = st_write_fetch(path, e, n, download_chunk, ts->be, err);
    free(e);
    free(names);
    return st;
}

badam_status checkpoint_load_optimizer(const char *dir, trainable_set *ts, badam_error *err) {
    char path[PATH_BYTES];
    io_path_join(path, sizeof path, dir, "optimizer.safetensors");
    st_file *f = NULL;
    badam_status st = st_open(path, &f, err);
    if (st) return st;
    size_t used = 0;
    for (int i = 0; i < ts->n && !st; i++) {
        const trainable *t = &ts->t[i];
        optimizer_part parts[4];
        int n_parts = optimizer_parts(t, parts);
        for (int k = 0; k < n_parts && !st; k++, used++) {
            char name[KEY_BYTES];
            checkpoint_tensor_key(t, parts[k].what, name, sizeof name);
            st = checkpoint_upload_tensor(f, path, name, parts[k].dtype, t->numel, parts[k].data,
                                          ts->be, "", err);
        }
    }
    if (!st) st = checkpoint_check_count(f, path, used, err);
    st_close(f);
    return st;
}

badam_status checkpoint_upload_tensor(const st_file *f, const char *path, const char *name,
                                      badam_dtype dtype, size_t numel, void *dst, backend *be,
                                      const char *hint, badam_error *err) {
    const st_tensor *x = st_find(f, name);
    if (!x || x->dtype != dtype || x->numel != numel)
        return badam_fail(err, BADAM_E_SHAPE,
                          "%s: tensor '%s' (%zu %s values) is %s: the checkpoint was "
                          "written by a different setup%s",
                          path, name, numel, badam_dtype_name(dtype),
                          x ? "of another size or dtype" : "missing", hint);
    BE(be, upload, dst, x->data, numel * badam_dtype_size(dtype)); /* from the mapped file */
    return BADAM_OK;
}

badam_status checkpoint_check_count(const st_file *f, const char *path, size_t used,
                                    badam_error *err) {
    if (used != f->n_tensors)
        return badam_fail(err, BADAM_E_SHAPE,
                          "%s: holds %zu tensors, this run expects %zu (the checkpoint was "
                          "written by a different setup)",
                          path, f->n_tensors, used);
    return BADAM_OK;
}
