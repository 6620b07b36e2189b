/* Checkpoint save, find and load (checkpoint.h). */
#include "badam/model.h"
#include "train/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"
#include "io/json_write.h"
#include "io/json_get.h"

#define PATH_BYTES 4096

#define KEY_BYTES 512

/* trainer_state.json: step, the method's optimizer step and block, the data position, the run
 * record, and the names and sizes of the method's optimizer tensors (ts may be NULL: none). */
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
    for (int i = 0; ts && i < ts->n; i++) {
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
                             const method_state *method, const checkpoint_state *state,
                             size_t max_shard_bytes, const llama_folder_meta *meta,
                             badam_error *err) {
    char tmp[PATH_BYTES], final[PATH_BYTES];
    io_path_join(tmp, sizeof tmp, out_dir, "checkpoint.tmp");
    io_path_join(final, sizeof final, out_dir, "checkpoint");
    char old[PATH_BYTES];
    io_path_join(old, sizeof old, out_dir, "checkpoint.old");
    int had_previous = io_is_dir(final) || io_is_dir(old);
    badam_status st = io_remove_tree(tmp, err);
    const model_arch *arch = model_arch_find(m->cfg.model_type);
    if (!st && m->cfg.encoder_head != LLAMA_HEAD_NONE && arch) /* an encoder: its own layout */
        st = arch->save(m, src_model_dir, tmp, max_shard_bytes, err);
    else if (!st)
        st = llama_model_save_meta(m, src_model_dir, tmp, max_shard_bytes, meta, err);
    /* the method's own parts: optimizer.safetensors, LoRA's adapter/ */
    if (!st && method && method->ops->save_parts)
        st = method->ops->save_parts(method, tmp, src_model_dir, err);
    if (!st) st = write_state(tmp, method ? &method->ts : NULL, state, err);
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
