/* Safetensors files: an 8-byte little-endian header length N, N bytes of JSON header
 * ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}),
 * then the data. A header is untrusted input: every field is checked before use. */
#ifndef BADAM_IO_SAFETENSORS_H
#define BADAM_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "badam/dtype.h"
#include "badam/status.h"

#define ST_MAX_DIMS 8
/* Headers larger than this are refused (the format's own reference uses 100 MB). */
#define ST_MAX_HEADER_BYTES (100u * 1024u * 1024u)

typedef struct st_tensor {
    char *name;
    badam_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    const void *data; /* points into the mapping; valid until st_close */
    size_t nbytes;
} st_tensor;

typedef struct st_file {
    char *path;
    void *map;
    size_t map_size;
    st_tensor *tensors; /* sorted by name */
    size_t n_tensors;
} st_file;

/* Maps and validates a file. Errors name the file and, where one is at fault, the tensor. */
badam_status st_open(const char *path, st_file **out, badam_error *err);
void st_close(st_file *file);
const st_tensor *st_find(const st_file *file, const char *name);
/* Tells the kernel a tensor's pages will not be read again soon (they are dropped from memory
 * and read back from the file if needed), so loading a model does not hold the file and the
 * converted weights resident at once. */
void st_tensor_release(const st_tensor *t);

/* A tensor to write. */
typedef struct st_entry {
    const char *name;
    badam_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data; /* numel * dtype size bytes */
} st_entry;

/* Writes one file atomically (temporary file in the same folder, fsync, rename), with
 * {"__metadata__": {"format": "pt"}}. A failure leaves any existing file at `path` untouched. */
badam_status st_write(const char *path, const st_entry *entries, size_t n, badam_error *err);
/* st_write for tensors the caller cannot read directly (a backend's memory): each entry's bytes
 * reach the file through fetch(ctx, host, (const char *)data + offset, bytes), which copies them
 * into a host buffer of at most ST_FETCH_CHUNK bytes, so no host copy of a whole tensor is made.
 * The same file as st_write gives for the same bytes. */
#define ST_FETCH_CHUNK ((size_t)4 << 20)
typedef badam_status (*st_fetch_fn)(void *ctx, void *host, const void *src, size_t bytes,
                                    badam_error *err);
badam_status st_write_fetch(const char *path, const st_entry *entries, size_t n, st_fetch_fn fetch,
                            void *ctx, badam_error *err);

/* The weights of a Hugging Face folder: `model.safetensors`, or the shards listed in
 * `model.safetensors.index.json` ("weight_map": name -> shard file). */
typedef struct st_set {
    char *dir;
    st_file **files;
    size_t n_files;
    const st_tensor **index; /* every tensor of every file, sorted by name */
    const st_file **index_file;
    size_t n_index;
} st_set;

/* Opens every shard, checks the index against the shards (a listed tensor missing from its
 * shard, a shard tensor not in the index, a name in two shards: all errors). */
badam_status st_set_open_dir(const char *dir, st_set **out, badam_error *err);
void st_set_close(st_set *set);
/* Looks a tensor up by name; *file_out (may be NULL) receives the file holding it. */
const st_tensor *st_set_find(const st_set *set, const char *name, const st_file **file_out);

/* Writes entries into dir as `model.safetensors`, or, when they exceed max_shard_bytes, as
 * `model-0000i-of-0000N.safetensors` shards plus `model.safetensors.index.json`, each file
 * atomically. max_shard_bytes = 0 means a single file. Weight files of the other layout left
 * from an earlier save in dir are removed only after the new ones are in place. */
badam_status st_write_dir(const char *dir, const st_entry *entries, size_t n,
                          size_t max_shard_bytes, badam_error *err);
/* st_write_dir with each file's data read through fetch (NULL: directly), as st_write_fetch. */
badam_status st_write_dir_fetch(const char *dir, const st_entry *entries, size_t n,
                                size_t max_shard_bytes, st_fetch_fn fetch, void *ctx,
                                badam_error *err);

#endif
