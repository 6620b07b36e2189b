/* The weights of a Hugging Face folder: `model.safetensors.index.json` and its shards, or a
 * single `model.safetensors`. The index is untrusted too: shard names must be plain file
 * names in the folder, every listed tensor must be in its shard, and every shard tensor must
 * be listed (under that shard). */
#include "io/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"
#include "io/json_get.h"

#define ST_SINGLE_NAME "model.safetensors"
#define ST_INDEX_NAME "model.safetensors.index.json"

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* A file name inside the folder: no separators, not "." or "..", not empty. */
static int plain_file_name(const char *name) {
    return name[0] && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 && !strchr(name, '/') &&
           !strchr(name, '\\');
}

static badam_status add_file(st_set *set, const char *path, badam_error *err) {
    st_file *file;
    badam_status st = st_open(path, &file, err);
    if (st != BADAM_OK) return st;
    set->files[set->n_files++] = file;
    return BADAM_OK;
}

/* One weight_map entry: the tensor name and the shard (an index into the sorted shard names). */
typedef struct listing {
    const char *name;
    const char *shard;
    size_t file;
} listing;

static int cmp_listing(const void *a, const void *b) {
    return strcmp(((const listing *)a)->name, ((const listing *)b)->name);
}

static int cmp_key_listing(const void *key, const void *elem) {
    return strcmp(key, ((const listing *)elem)->name);
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The weight_map of the index: *list (n entries, sorted by tensor name, each name once) and
 * *shards (the shard name of each entry, in the map's order). *list and *shards are the
 * caller's to free, also on failure. */
static badam_status read_weight_map(const json_t *root, const char *index_path, listing **list,
                                    const char ***shards, size_t *n, badam_error *err) {
    if (!json_is_object(root))
        return badam_fail(err, BADAM_E_FORMAT, "%s: not a JSON object", index_path);
    const json_t *map = json_object_get(root, "weight_map");
    if (!map) return badam_fail(err, BADAM_E_FORMAT, "%s: missing field 'weight_map'", index_path);
    if (!json_is_object(map))
        return badam_fail(err, BADAM_E_FORMAT, "%s: field 'weight_map' is not an object",
                          index_path);
    *n = json_object_size(map);
    if (*n == 0)
        return badam_fail(err, BADAM_E_FORMAT, "%s: weight_map lists no tensors", index_path);
    *list = malloc(*n * sizeof **list);
    *shards = malloc(*n * sizeof **shards);
    if (!*list || !*shards) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", index_path);
    size_t i = 0;
    const char *key;
    size_t key_len;
    json_t *e;
    json_object_keylen_foreach((json_t *)map, key, key_len, e) {
        if (strlen(key) != key_len || (json_is_string(e) && !json_string_is_c(e)))
            return badam_fail(err, BADAM_E_FORMAT,
                              "%s: weight_map: tensor '%s': a tensor or shard name holds U+0000",
                              index_path, key);
        if (!json_is_string(e))
            return badam_fail(err, BADAM_E_FORMAT,
                              "%s: weight_map: tensor '%s': value is not a string", index_path,
                              key);
        if (!plain_file_name(json_string_value(e)))
            return badam_fail(err, BADAM_E_FORMAT,
                              "%s: weight_map: tensor '%s': shard '%s' is not a plain file name",
                              index_path, key, json_string_value(e));
        (*list)[i] = (listing){key, json_string_value(e), 0};
        (*shards)[i] = json_string_value(e);
        i++;
    }
    qsort(*list, *n, sizeof **list, cmp_listing);
    for (i = 1; i < *n; i++)
        if (!strcmp((*list)[i - 1].name, (*list)[i].name))
            return badam_fail(err, BADAM_E_FORMAT, "%s: weight_map lists tensor '%s' twice",
                              index_path, (*list)[i].name);
    return BADAM_OK;
}

/* Opens the shards (sorted, distinct names) into set: files[i] is the shard named shards[i]. */
static badam_status open_shards(st_set *set, const char **shards, size_t n_shards,
                                const char *index_path, badam_error *err) {
    set->files = calloc(n_shards, sizeof *set->files);
    if (!set->files) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", index_path);
    badam_status st = BADAM_OK;
    for (size_t i = 0; i < n_shards && st == BADAM_OK; i++) {
        char *path = join_path(set->dir, shards[i]);
        st = path ? add_file(set, path, err)
                  : badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", index_path);
        free(path);
    }
    return st;
}

/* Every listed tensor is in its shard (and list[i].file is set to that shard's file) ... */
static badam_status check_listed_tensors(const st_set *set, listing *list, size_t n,
                                         const char **shards, size_t n_shards,
                                         const char *index_path, badam_error *err) {
    for (size_t i = 0; i < n; i++) {
        const char **found = bsearch(&list[i].shard, shards, n_shards, sizeof *shards, cmp_str_ptr);
        list[i].file = (size_t)(found - shards);
        if (!st_find(set->files[list[i].file], list[i].name))
            return badam_fail(
                err, BADAM_E_FORMAT,
                "%s: tensor '%s' is listed in shard '%s', which has no such tensor (%s)",
                index_path, list[i].name, list[i].shard, set->files[list[i].file]->path);
    }
    return BADAM_OK;
}

/* ... and every shard tensor is listed, under that shard. */
static badam_status check_shard_tensors(const st_set *set, const listing *list, size_t n,
                                        const char *index_path, badam_error *err) {
    for (size_t f = 0; f < set->n_files; f++) {
        const st_file *file = set->files[f];
        for (size_t t = 0; t < file->n_tensors; t++) {
            const char *name = file->tensors[t].name;
            const listing *l = bsearch(name, list, n, sizeof *list, cmp_key_listing);
            if (!l)
                return badam_fail(err, BADAM_E_FORMAT, "%s: tensor '%s' is not listed in %s",
                                  file->path, name, index_path);
            if (l->file != f)
                return badam_fail(err, BADAM_E_FORMAT,
                                  "%s: tensor '%s' is listed in %s under shard '%s'", file->path,
                                  name, index_path, l->shard);
        }
    }
    return BADAM_OK;
}

/* Opens each distinct shard of the index once and checks the index against the shards. */
static badam_status open_sharded(st_set *set, const char *index_path, badam_error *err) {
    json_t *root;
    badam_status st = io_read_json_opts(index_path, JSON_REJECT_DUPLICATES, &root, err);
    if (st != BADAM_OK) return st;
    listing *list = NULL;
    const char **shards = NULL;
    size_t n = 0, n_shards = 0;
    st = read_weight_map(root, index_path, &list, &shards, &n, err);
    if (!st) {
        qsort(shards, n, sizeof *shards, cmp_str_ptr);
        for (size_t i = 0; i < n; i++)
            if (i == 0 || strcmp(shards[i], shards[n_shards - 1]) != 0)
                shards[n_shards++] = shards[i];
        st = open_shards(set, shards, n_shards, index_path, err);
    }
    if (!st) st = check_listed_tensors(set, list, n, shards, n_shards, index_path, err);
    if (!st) st = check_shard_tensors(set, list, n, index_path, err);
    free(list);
    free(shards);
    json_decref(root);
    return st;
}

typedef struct located {
    const st_tensor *tensor;
    const st_file *file;
} located;

static int cmp_located(const void *a, const void *b) {
    return strcmp(((const located *)a)->tensor->name, ((const located *)b)->tensor->name);
}

/* Every tensor of every file, sorted by name; a name in two files is an error. */
static badam_status build_index(st_set *set, badam_error *err) {
    size_t n = 0;
    for (size_t f = 0; f < set->n_files; f++) n += set->files[f]->n_tensors;
    located *all = malloc((n ? n : 1) * sizeof *all);
    set->index = malloc((n ? n : 1) * sizeof *set->index);
    set->index_file = malloc((n ? n : 1) * sizeof *set->index_file);
    if (!all || !set->index || !set->index_file) {
        free(all);
        return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", set->dir);
    }
    size_t k = 0;
    for (size_t f = 0; f < set->n_files; f++)
        for (size_t t = 0; t < set->files[f]->n_tensors; t++)
            all[k++] = (located){&set->files[f]->tensors[t], set->files[f]};
    qsort(all, n, sizeof *all, cmp_located);
    for (k = 1; k < n; k++)
        if (!strcmp(all[k - 1].tensor->name, all[k].tensor->name)) {
            badam_status st =
                badam_fail(err, BADAM_E_FORMAT, "%s: tensor '%s' is in both %s and %s", set->dir,
                           all[k].tensor->name, all[k - 1].file->path, all[k].file->path);
            free(all);
            return st;
        }
    for (k = 0; k < n; k++) {
        set->index[k] = all[k].tensor;
        set->index_file[k] = all[k].file;
    }
    set->n_index = n;
    free(all);
    return BADAM_OK;
}

badam_status st_set_open_dir(const char *dir, st_set **out, badam_error *err) {
    *out = NULL;
    st_set *set = calloc(1, sizeof *set);
    char *index_path = join_path(dir, ST_INDEX_NAME);
    char *single_path = join_path(dir, ST_SINGLE_NAME);
    badam_status st = BADAM_OK;
    int have_index = 0, have_single = 0;
    if (!set || !index_path || !single_path || !(set->dir = strdup(dir)))
        st = badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", dir);
    /* a folder or FIFO under either name is an error naming it, not "no weights" */
    if (!st) st = io_optional_file(index_path, &have_index, err);
    if (!st && !have_index) st = io_optional_file(single_path, &have_single, err);
    if (st) {
        /* reported */
    } else if (have_index) {
        st = open_sharded(set, index_path, err);
    } else if (have_single) {
        set->files = calloc(1, sizeof *set->files);
        st = set->files ? add_file(set, single_path, err)
                        : badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", dir);
    } else {
        st = badam_fail(err, BADAM_E_IO, "no %s or %s in %s", ST_SINGLE_NAME, ST_INDEX_NAME, dir);
    }
    if (st == BADAM_OK) st = build_index(set, err);
    free(index_path);
    free(single_path);
    if (st != BADAM_OK) {
        st_set_close(set);
        return st;
    }
    *out = set;
    return BADAM_OK;
}

void st_set_close(st_set *set) {
    if (!set) return;
    for (size_t f = 0; f < set->n_files; f++) st_close(set->files[f]);
    free(set->files);
    free(set->index);
    free(set->index_file);
    free(set->dir);
    free(set);
}

static int cmp_key_tensor_ptr(const void *key, const void *elem) {
    return strcmp(key, (*(const st_tensor *const *)elem)->name);
}

const st_tensor *st_set_find(const st_set *set, const char *name, const st_file **file_out) {
    if (file_out) *file_out = NULL;
    if (!set || !name || set->n_index == 0) return NULL;
    const st_tensor *const *found =
        bsearch(name, set->index, set->n_index, sizeof *set->index, cmp_key_tensor_ptr);
    if (!found) return NULL;
    if (file_out) *file_out = set->index_file[found - set->index];
    return *found;
}
