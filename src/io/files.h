/* Small file helpers: whole-file reads, atomic writes, JSON parsing with file-named errors. */
#ifndef BADAM_IO_FILES_H
#define BADAM_IO_FILES_H

#include <stddef.h>

#include <jansson.h>

#include "badam/status.h"

/* The one way files we read (models, shards, tokenizers, configs, data) are opened: read-only,
 * and only when the path is a regular file. A FIFO, device, socket or folder is an error and is
 * never waited on (the open itself is non-blocking; the descriptor is made blocking again after
 * the check). *size_out (may be NULL) is the file's size at open. */
badam_status io_open_regular(const char *path, int *fd_out, size_t *size_out, badam_error *err);

/* For a file that may be absent: *present = 1 when path is a regular file, 0 when nothing is
 * there (a dangling symbolic link included). Something else under that name (a folder, a FIFO,
 * a device, a socket) is an error naming path and what it is: it is never skipped silently. */
badam_status io_optional_file(const char *path, int *present, badam_error *err);

/* Reads a whole regular file into a NUL-terminated malloc'd buffer. */
badam_status io_read_file(const char *path, char **data_out, size_t *size_out, badam_error *err);

/* Writes data to path atomically: a temporary file in the same folder, fsync, rename over path.
 * On any failure (full disk included) the temporary is removed and path is left as it was. */
badam_status io_write_file_atomic(const char *path, const void *data, size_t size,
                                  badam_error *err);

/* The same discipline for data written in pieces: io_atomic_begin creates the temporary
 * (`path.tmp.<pid>.<n>`), io_atomic_write appends to it, io_atomic_commit fsyncs, renames it
 * over path and releases the writer; io_atomic_abort (also called by any failing step) removes
 * the temporary. A writer that failed or was committed needs no further call. */
typedef struct io_atomic_file {
    int fd; /* -1 when closed */
    char *path;
    char *tmp_path;
} io_atomic_file;
badam_status io_atomic_begin(io_atomic_file *file, const char *path, badam_error *err);
badam_status io_atomic_write(io_atomic_file *file, const void *data, size_t size, badam_error *err);
badam_status io_atomic_commit(io_atomic_file *file, badam_error *err);
void io_atomic_abort(io_atomic_file *file);

/* Copies a file atomically (the destination is written via io_write_file_atomic). */
badam_status io_copy_file(const char *src, const char *dst, badam_error *err);

/* 1 when the path exists and is a regular file / a directory. */
int io_is_file(const char *path);
int io_is_dir(const char *path);
/* Creates a directory (and parents) if missing. */
badam_status io_make_dir(const char *path, badam_error *err);

/* out = dir + "/" + name; returns -1 when it does not fit (out is then truncated). */
int io_path_join(char *out, size_t size, const char *dir, const char *name);

/* Removes a file or a folder with everything in it (missing is fine). */
badam_status io_remove_tree(const char *path, badam_error *err);
/* fsync of a folder (so renames inside it survive a crash). */
badam_status io_sync_dir(const char *dir, badam_error *err);
/* Makes the complete folder `fresh` take the place of `target`: target is renamed to
 * target.old, fresh to target, then target.old is removed. A crash leaves target or target.old
 * whole; readers fall back to target.old when target is missing. */
badam_status io_replace_dir(const char *fresh, const char *target, badam_error *err);

/* 1 when the bytes are valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int io_valid_utf8(const char *s, size_t n);
/* Offset of the first byte that is not well-formed UTF-8, or n. */
size_t io_utf8_error_offset(const char *s, size_t n);

/* How every JSON text is decoded: any value at the top level, and strings may hold U+0000
 * (strings carry their length: json_string_length, json_object_keylen). A lone escaped surrogate
 * (\uD800 without its pair) is an error, as is any data after the value. */
#define IO_JSON_DECODE_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL)

/* Where and why a JSON text did not parse: the byte offset of the offending token, its line and
 * column (1-based, the column in bytes), and Jansson's message. */
typedef struct io_json_error {
    size_t offset;
    int line, column;
    char text[JSON_ERROR_TEXT_LENGTH];
} io_json_error;

/* json_loadb with IO_JSON_DECODE_FLAGS | flags (no UTF-8 pre-check); an integer too big for 64
 * bits is read as a real (as Python reads it). NULL on failure, with *e (may be NULL) filled. */
json_t *io_json_loadb(const char *text, size_t size, size_t flags, io_json_error *e);

/* Parses JSON text (checked to be UTF-8 first); `what` names the source in errors (a path), which
 * also give the line, column and byte offset. *out is released with json_decref. */
badam_status io_parse_json(const char *text, size_t size, const char *what, json_t **out,
                           badam_error *err);
/* Reads and parses a JSON file. */
badam_status io_read_json(const char *path, json_t **out, badam_error *err);
/* The same with more Jansson decoding flags: JSON_REJECT_DUPLICATES where a key given twice is an
 * error (safetensors headers and indexes) rather than the last one winning (Python's json). */
badam_status io_parse_json_opts(const char *text, size_t size, const char *what, size_t flags,
                                json_t **out, badam_error *err);
/* The same, also giving the offset of the offending token (*error_at) when it fails. */
badam_status io_parse_json_at(const char *text, size_t size, const char *what, size_t flags,
                              json_t **out, size_t *error_at, badam_error *err);
badam_status io_read_json_opts(const char *path, size_t flags, json_t **out, badam_error *err);

#endif
