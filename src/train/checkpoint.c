/* Checkpoint save, find and load (checkpoint.h). */
#include "train/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"
#include "io/json_write.h"
#include "io/json_get.h"
#include "io/safetensors.h"

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
    void *data; /* numel values of dtype */
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
    badam_status st = st_write(path, e, n, err);
    free(e);
    free(names);
    return st;
}

static badam_status write_state(const char *dir, const trainable_set *ts, const checkpoint_state *s,
                                badam_error *err) {
    json_t *j = json_object();
    json_object_set_new(j, "format", json_integer((json_int_t)CHECKPOINT_FORMAT));
    json_object_set_new(j, "step", json_integer((json_int_t)s->step));
    json_object_set_new(j, "adam_step", json_integer((json_int_t)s->adam_step));
    json_object_set_new(j, "block", json_integer((json_int_t)s->block));
    json_object_set_new(j, "run", json_deep_copy(s->run));
    json_t *data = io_json_add_object(j, "data");
    json_object_set_new(data, "epoch", json_integer((json_int_t)s->data.epoch));
    json_object_set_new(data, "index", json_integer((json_int_t)s->data.index));
    json_t *tensors = io_json_add_array(j, "tensors");
    for (int i = 0; i < ts->n; i++) {
        json_t *t = json_object();
        char key[KEY_BYTES];
        checkpoint_tensor_key(&ts->t[i], "", key, sizeof key);
        key[strlen(key) - 1] = 0; /* without the trailing '.' */
        json_object_set_new(t, "name", json_string(key));
        json_object_set_new(t, "numel", json_integer((json_int_t)ts->t[i].numel));
        json_array_append_new(tensors, t);
    }
    char path[PATH_BYTES];
    io_path_join(path, sizeof path, dir, "trainer_state.json");
    badam_status st = io_json_write_file(path, j, 2, err);
    json_decref(j);
    return st;
}

badam_status checkpoint_save(const char *out_dir, const char *src_model_dir, const llama_model *m,
                             const trainable_set *ts, const checkpoint_state *state,
                             size_t max_shard_bytes, const llama_folder_meta *meta,
                             badam_error *err) {
    char tmp[PATH_BYTES], final[PATH_BYTES], adapter[PATH_BYTES];
    io_path_join(tmp, sizeof tmp, out_dir, "checkpoint.tmp");
    io_path_join(final, sizeof final, out_dir, "checkpoint");
    char old[PATH_BYTES];
    io_path_join(old, sizeof old, out_dir, "checkpoint.old");
    int had_previous = io_is_dir(final) || io_is_dir(old);
    badam_status st = io_remove_tree(tmp, err);
    if (!st) st = llama_model_save_meta(m, src_model_dir, tmp, max_shard_bytes, meta, err);
    if (!st && m->lora) {
        io_path_join(adapter, sizeof adapter, tmp, "adapter");
        st = llama_lora_save(m, adapter, src_model_dir, err);
        if (!st) st = io_sync_dir(adapter, err);
    }
    if (!st) st = checkpoint_write_optimizer(tmp, ts, err);
    if (!st) st = write_state(tmp, ts, state, err);
    if (!st) st = io_replace_dir(tmp, final, err);
    if (st) {
        badam_error ignored;
        io_remove_tree(tmp, &ignored);
        badam_error_prefix(err, "checkpoint at step %d not written (%s)", state->step,
                           had_previous ? "the previous one is intact"
                                        : "there is no earlier checkpoint to resume from");
    }
    return st;
}

badam_status checkpoint_find(const char *out_dir, char *dir, size_t size, badam_error *err) {
    snprintf(dir, size, "%s/checkpoint", out_dir);
    char state[PATH_BYTES];
    io_path_join(state, sizeof state, dir, "trainer_state.json");
    if (io_is_file(state)) return BADAM_OK;
    snprintf(dir, size, "%s/checkpoint.old", out_dir);
    io_path_join(state, sizeof state, dir, "trainer_state.json");
    if (io_is_file(state)) return BADAM_OK;
    return badam_fail(err, BADAM_E_IO, "%s: no checkpoint to resume from (no checkpoint/ folder)",
                      out_dir);
}

badam_status checkpoint_read_state(const char *dir, checkpoint_state *s, badam_error *err) {
    char path[PATH_BYTES];
    io_path_join(path, sizeof path, dir, "trainer_state.json");
    json_t *j = NULL;
    badam_status st = io_read_json(path, &j, err);
    if (st) return st;
    memset(s, 0, sizeof *s);
    int format = 0, epoch = 0, index = 0;
    const json_t *data = json_object_get(j, "data");
    st = json_get_int(j, "format", 0, &format, path, err);
    if (!st && format < CHECKPOINT_FORMAT)
        st = badam_fail(err, BADAM_E_UNSUPPORTED,
                        "%s: this checkpoint was written by an older badam (format %d) that did "
                        "not record the options that shape training (K, block order, partition, "
                        "seed, schedule, data, ...), so resuming it cannot be checked and is "
                        "refused; start a new run (its weights can be the --model of one)",
                        path, format ? format : 1);
    if (!st && format > CHECKPOINT_FORMAT)
        st = badam_fail(err, BADAM_E_UNSUPPORTED,
                        "%s: format %d is newer than this badam reads (%d); resume with the badam "
                        "that wrote it",
                        path, format, CHECKPOINT_FORMAT);
    if (!st) st = json_get_int(j, "step", 1, &s->step, path, err);
    if (!st) st = json_get_int(j, "adam_step", 1, &s->adam_step, path, err);
    if (!st) st = json_get_int(j, "block", 1, &s->block, path, err);
    if (!st && !json_is_object(json_object_get(j, "run")))
        st = badam_fail(err, BADAM_E_FORMAT, "%s: field 'run' must be an object", path);
    if (!st && !json_is_object(data))
        st = badam_fail(err, BADAM_E_FORMAT, "%s: field 'data' must be an object", path);
    if (!st) st = json_get_int(data, "epoch", 1, &epoch, path, err);
    if (!st) st = json_get_int(data, "index", 1, &index, path, err);
    if (!st) s->run = json_incref(json_object_get(j, "run")); /* outlives j */
    s->data.epoch = (uint64_t)epoch, s->data.index = (uint64_t)index;
    json_decref(j);
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
            const st_tensor *x = st_find(f, name);
            if (!x || x->dtype != parts[k].dtype || x->numel != t->numel)
                st = badam_fail(err, BADAM_E_SHAPE,
                                "%s: tensor '%s' (%zu %s values) is %s: the checkpoint was "
                                "written by a different setup",
                                path, name, t->numel, badam_dtype_name(parts[k].dtype),
                                x ? "of another size or dtype" : "missing");
            else
                memcpy(parts[k].data, x->data, t->numel * badam_dtype_size(parts[k].dtype));
        }
    }
    if (!st && used != f->n_tensors)
        st = badam_fail(err, BADAM_E_SHAPE,
                        "%s: holds %zu tensors, this run expects %zu (the checkpoint was written "
                        "by a different setup)",
                        path, f->n_tensors, used);
    st_close(f);
    return st;
}
