/* Safetensors reader: maps the file read-only and checks every header field before use.
 *
 * Layout: u64 little-endian N | N bytes of JSON header (may be padded with spaces) | data.
 * Each tensor's [begin, end) is relative to the start of the data section. Checks: the sizes
 * fit the file, the header is UTF-8 JSON, each entry has a supported dtype, a shape of at most
 * ST_MAX_DIMS non-negative integers whose product does not overflow, data_offsets inside the
 * data section whose length is numel * dtype size, no two tensors overlap, no name twice. */
#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/files.h"

#include "io/json_get.h"

/* Shapes and offsets are integers below 2^53 (JavaScript's and Python's float-exact range, which
 * readers that go through doubles keep); a real that is a whole number below that is accepted. */
#define ST_MAX_JSON_INT 9007199254740992LL /* 2^53 */

/* 1 when item is an integer in [0, 2^53); stores it in *out. */
static int json_uint53(const json_t *item, uint64_t *out) {
    long long v;
    if (!json_int_in_range(item, 0, ST_MAX_JSON_INT - 1, &v)) return 0;
    *out = (uint64_t)v;
    return 1;
}

/* The top-level key whose value holds byte `at` of the header (the tensor a parse error is in),
 * copied into out (empty when none). A small scan of strings and nesting, enough to name it. */
static void enclosing_key(const char *h, size_t size, size_t at, char *out, size_t out_size) {
    int depth = 0, in_string = 0;
    size_t str_start = 0, key_start = 0, key_len = 0, last_start = 0, last_len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < size && i < at; i++) {
        char c = h[i];
        if (in_string) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_string = 0;
                last_start = str_start, last_len = i - str_start;
            }
            continue;
        }
        if (c == '"') {
            in_string = 1, str_start = i + 1, last_len = 0;
        } else if (c == ':' && depth == 1) {
            key_start = last_start, key_len = last_len;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    if (key_len && depth >= 1) snprintf(out, out_size, "%.*s", (int)key_len, h + key_start);
}

static int dtype_from_name(const char *name, badam_dtype *out) {
    if (!strcmp(name, "F32"))
        *out = BADAM_DTYPE_F32;
    else if (!strcmp(name, "BF16"))
        *out = BADAM_DTYPE_BF16;
    else if (!strcmp(name, "F16"))
        *out = BADAM_DTYPE_F16;
    else
        return -1;
    return 0;
}

/* The entry's field `key`; NULL when missing (a key given twice fails the parse). */
static badam_status entry_field(const json_t *entry, const char *key, const json_t **out,
                                const char *path, const char *name, badam_error *err) {
    *out = json_object_get(entry, key);
    if (!*out)
        return badam_fail(err, BADAM_E_FORMAT, "%s: tensor '%s': missing field '%s'", path, name,
                          key);
    return BADAM_OK;
}

/* A tensor name fit for an error message: control bytes replaced, long names shortened. */
typedef struct shown_name {
    char s[160];
} shown_name;

static shown_name show(const char *name) {
    shown_name out;
    size_t n = 0;
    for (; name[n] && n < sizeof out.s - 4; n++) { /* names hold no U+0000 (parse_header) */
        unsigned char c = (unsigned char)name[n];
        out.s[n] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (name[n]) memcpy(out.s + n, "...", 3), n += 3;
    out.s[n] = '\0';
    return out;
}

/* Fills t (name already set) from one header entry; data_size is the data section's size. */
static badam_status parse_entry(const json_t *entry, st_tensor *t, const char *data,
                                size_t data_size, const char *path, badam_error *err) {
    shown_name shown = show(t->name);
    const char *name = shown.s;
    if (!json_is_object(entry))
        return badam_fail(err, BADAM_E_FORMAT, "%s: tensor '%s': entry is not an object", path,
                          name);
    const json_t *dtype, *shape, *offsets;
    badam_status st = entry_field(entry, "dtype", &dtype, path, name, err);
    if (st == BADAM_OK) st = entry_field(entry, "shape", &shape, path, name, err);
    if (st == BADAM_OK) st = entry_field(entry, "data_offsets", &offsets, path, name, err);
    if (st != BADAM_OK) return st;

    if (!json_is_string(dtype))
        return badam_fail(err, BADAM_E_FORMAT, "%s: tensor '%s': field 'dtype' is not a string",
                          path, name);
    if (dtype_from_name(json_string_value(dtype), &t->dtype) != 0)
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "%s: tensor '%s': dtype '%s' is not supported (only F32, BF16, F16)",
                          path, name, show(json_string_value(dtype)).s);

    if (!json_is_array(shape))
        return badam_fail(err, BADAM_E_FORMAT, "%s: tensor '%s': field 'shape' is not an array",
                          path, name);
    size_t ndim = json_array_size(shape);
    if (ndim > ST_MAX_DIMS)
        return badam_fail(err, BADAM_E_FORMAT, "%s: tensor '%s': shape has %zu dims (at most %d)",
                          path, name, ndim, ST_MAX_DIMS);
    t->ndim = (int)ndim;
    size_t numel = 1;
    for (int d = 0; d < (int)ndim; d++) {
        const json_t *dim = json_array_get(shape, (size_t)d);
        uint64_t v;
        if (!json_uint53(dim, &v))
            return badam_fail(err, BADAM_E_FORMAT,
                              "%s: tensor '%s': shape[%d] is not a non-negative integer", path,
                              name, d);
        t->shape[d] = (int64_t)v;
        if (__builtin_mul_overflow(numel, (size_t)v, &numel))
            return badam_fail(err, BADAM_E_FORMAT,
                              "%s: tensor '%s': shape product overflows (dim %d = %llu)", path,
                              name, d, (unsigned long long)v);
    }
    t->numel = numel;
    size_t nbytes;
    if (__builtin_mul_overflow(numel, badam_dtype_size(t->dtype), &nbytes))
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: tensor '%s': byte size overflows (%zu elements)", path, name, numel);
    t->nbytes = nbytes;

    uint64_t begin, end;
    if (!json_is_array(offsets) || json_array_size(offsets) != 2 ||
        !json_uint53(json_array_get(offsets, 0), &begin) ||
        !json_uint53(json_array_get(offsets, 1), &end))
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: tensor '%s': data_offsets must be two non-negative integers", path,
                          name);
    if (begin > end)
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: tensor '%s': data_offsets [%llu, %llu] begin after end", path, name,
                          (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: tensor '%s': data_offsets [%llu, %llu] out of range (data section "
                          "is %zu bytes)",
                          path, name, (unsigned long long)begin, (unsigned long long)end,
                          data_size);
    if (end - begin != nbytes)
        return badam_fail(err, BADAM_E_SHAPE,
                          "%s: tensor '%s': data_offsets [%llu, %llu] span %llu bytes but %s shape "
                          "with %zu elements needs %zu",
                          path, name, (unsigned long long)begin, (unsigned long long)end,
                          (unsigned long long)(end - begin), badam_dtype_name(t->dtype), numel,
                          nbytes);
    t->data = data + begin;
    return BADAM_OK;
}

static badam_status check_metadata(const json_t *meta, const char *path, badam_error *err) {
    if (!json_is_object(meta))
        return badam_fail(err, BADAM_E_FORMAT, "%s: __metadata__ is not an object", path);
    const char *key;
    const json_t *f;
    json_object_foreach((json_t *)meta, key, f) if (!json_is_string(f)) return badam_fail(
        err, BADAM_E_FORMAT, "%s: __metadata__ field '%s' is not a string", path, show(key).s);
    return BADAM_OK;
}

static int cmp_by_offset(const void *a, const void *b) {
    const st_tensor *x = a, *y = b;
    if (x->data != y->data) return (const char *)x->data < (const char *)y->data ? -1 : 1;
    return (x->nbytes > y->nbytes) - (x->nbytes < y->nbytes);
}

static int cmp_by_name(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

/* Sorts by offset and checks that no two non-empty tensors share a byte. */
static badam_status check_overlaps(st_tensor *t, size_t n, const char *data, const char *path,
                                   badam_error *err) {
    qsort(t, n, sizeof *t, cmp_by_offset);
    const st_tensor *last = NULL; /* the non-empty tensor reaching furthest so far */
    for (size_t i = 0; i < n; i++) {
        if (t[i].nbytes == 0) continue;
        if (last && (const char *)last->data + last->nbytes > (const char *)t[i].data) {
            size_t b0 = (size_t)((const char *)last->data - data);
            size_t b1 = (size_t)((const char *)t[i].data - data);
            return badam_fail(err, BADAM_E_FORMAT,
                              "%s: tensors '%s' and '%s' overlap in the data section ([%zu, %zu) "
                              "and [%zu, %zu))",
                              path, show(last->name).s, show(t[i].name).s, b0, b0 + last->nbytes,
                              b1, b1 + t[i].nbytes);
        }
        if (!last ||
            (const char *)t[i].data + t[i].nbytes > (const char *)last->data + last->nbytes)
            last = &t[i];
    }
    return BADAM_OK;
}

/* Hugging Face integer buffers a checkpoint may carry beside its weights and that we accept and
 * skip: an I64 entry named "*.position_ids" (BERT / RoBERTa embeddings, transformers < 4.31)
 * whose data_offsets lie in the data section and span its shape. It is left out of the tensor
 * list (its bytes are not read). Any other integer tensor is still refused. */
static int skipped_buffer(const char *name, const json_t *entry, size_t data_size) {
    const char *suffix = ".position_ids";
    size_t n = strlen(name), k = strlen(suffix);
    if (n <= k || strcmp(name + n - k, suffix) || !json_is_object(entry)) return 0;
    const json_t *dtype = json_object_get(entry, "dtype"), *shape = json_object_get(entry, "shape");
    const json_t *off = json_object_get(entry, "data_offsets");
    if (!json_is_string(dtype) || strcmp(json_string_value(dtype), "I64") ||
        !json_is_array(shape) || json_array_size(shape) > ST_MAX_DIMS || !json_is_array(off) ||
        json_array_size(off) != 2)
        return 0;
    uint64_t numel = 1, v, begin, end;
    for (size_t d = 0; d < json_array_size(shape); d++) {
        if (!json_uint53(json_array_get(shape, d), &v) || (v && numel > (UINT64_MAX / 8) / v))
            return 0;
        numel *= v;
    }
    return json_uint53(json_array_get(off, 0), &begin) &&
           json_uint53(json_array_get(off, 1), &end) && begin <= end && end <= data_size &&
           end - begin == 8 * numel;
}

/* Parses and validates the header; fills file->tensors sorted by name. */
static badam_status parse_header(st_file *file, const char *header, size_t header_size,
                                 const char *data, size_t data_size, badam_error *err) {
    const char *path = file->path;
    size_t what_size = strlen(path) + 16;
    char *what = malloc(what_size);
    if (!what) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", path);
    snprintf(what, what_size, "%s: header", path);
    json_t *root;
    size_t error_at = 0;
    badam_status st =
        io_parse_json_at(header, header_size, what, JSON_REJECT_DUPLICATES, &root, &error_at, err);
    free(what);
    if (st != BADAM_OK) {
        char key[128];
        enclosing_key(header, header_size, error_at, key, sizeof key);
        if (key[0]) badam_error_prefix(err, "in tensor '%s'", show(key).s);
        return st;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return badam_fail(err, BADAM_E_FORMAT, "%s: header is not a JSON object", path);
    }
    size_t n = json_object_size(root) - (json_object_get(root, "__metadata__") != NULL);
    const char *key;
    size_t key_len;
    json_t *e;
    file->tensors = calloc(n ? n : 1, sizeof *file->tensors);
    if (!file->tensors) {
        json_decref(root);
        return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory for %zu tensors", path, n);
    }
    json_object_keylen_foreach(root, key, key_len, e) {
        if (st != BADAM_OK) break;
        if (!strcmp(key, "__metadata__")) {
            st = check_metadata(e, path, err);
            continue;
        }
        /* Names are looked up as C strings: one holding U+0000 could not be found by its name. */
        if (strlen(key) != key_len) {
            st = badam_fail(err, BADAM_E_FORMAT, "%s: tensor name '%s' holds U+0000", path,
                            show(key).s);
            break;
        }
        if (skipped_buffer(key, e, data_size)) continue;
        st_tensor *t = &file->tensors[file->n_tensors];
        t->name = strdup(key);
        if (!t->name) {
            st = badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", path);
            break;
        }
        file->n_tensors++;
        st = parse_entry(e, t, data, data_size, path, err);
    }
    json_decref(root);
    if (st != BADAM_OK) return st;

    st = check_overlaps(file->tensors, file->n_tensors, data, path, err);
    if (st != BADAM_OK) return st;
    qsort(file->tensors, file->n_tensors, sizeof *file->tensors, cmp_by_name);
    for (size_t i = 1; i < file->n_tensors; i++)
        if (!strcmp(file->tensors[i - 1].name, file->tensors[i].name))
            return badam_fail(err, BADAM_E_FORMAT, "%s: tensor '%s' appears twice in the header",
                              path, show(file->tensors[i].name).s);
    return BADAM_OK;
}

badam_status st_open(const char *path, st_file **out, badam_error *err) {
    *out = NULL;
    st_file *file = calloc(1, sizeof *file);
    if (!file || !(file->path = strdup(path))) {
        free(file);
        return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", path);
    }
    int fd = -1;
    size_t size = 0;
    badam_status st = io_open_regular(path, &fd, &size, err);
    if (st != BADAM_OK) {
        /* nothing opened */
    } else if (size < 8) {
        st =
            badam_fail(err, BADAM_E_FORMAT,
                       "%s: file is %zu bytes, too short for the 8-byte header length", path, size);
    } else {
        file->map_size = size;
        file->map = mmap(NULL, file->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (file->map == MAP_FAILED) {
            file->map = NULL;
            st = badam_fail(err, BADAM_E_IO, "%s: mmap failed: %s", path, strerror(errno));
        }
    }
    if (fd >= 0) close(fd);

    if (st == BADAM_OK) {
        const unsigned char *bytes = file->map;
        uint64_t header_size = 0;
        for (int i = 7; i >= 0; i--) header_size = (header_size << 8) | bytes[i];
        size_t room = file->map_size - 8;
        if (header_size > room)
            st = badam_fail(err, BADAM_E_FORMAT,
                            "%s: header length %llu exceeds the %zu bytes after the length field",
                            path, (unsigned long long)header_size, room);
        else if (header_size > ST_MAX_HEADER_BYTES)
            st = badam_fail(err, BADAM_E_FORMAT, "%s: header length %llu exceeds the limit of %u",
                            path, (unsigned long long)header_size, ST_MAX_HEADER_BYTES);
        else {
            const char *header = (const char *)file->map + 8;
            st = parse_header(file, header, (size_t)header_size, header + header_size,
                              room - (size_t)header_size, err);
        }
    }
    if (st != BADAM_OK) {
        st_close(file);
        return st;
    }
    *out = file;
    return BADAM_OK;
}

void st_close(st_file *file) {
    if (!file) return;
    if (file->map) munmap(file->map, file->map_size);
    if (file->tensors)
        for (size_t i = 0; i < file->n_tensors; i++) free(file->tensors[i].name);
    free(file->tensors);
    free(file->path);
    free(file);
}

static int cmp_key_tensor(const void *key, const void *elem) {
    return strcmp(key, ((const st_tensor *)elem)->name);
}

const st_tensor *st_find(const st_file *file, const char *name) {
    if (!file || !name || file->n_tensors == 0) return NULL;
    return bsearch(name, file->tensors, file->n_tensors, sizeof *file->tensors, cmp_key_tensor);
}

void st_tensor_release(const st_tensor *t) {
    if (!t || !t->nbytes) return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t begin = (uintptr_t)t->data, end = begin + t->nbytes;
    begin = (begin + page - 1) / page * page; /* whole pages only: neighbours stay */
    end = end / page * page;
    if (end > begin) madvise((void *)begin, end - begin, MADV_DONTNEED);
}
