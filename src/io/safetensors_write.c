/* Safetensors writers: one file (st_write) and a Hugging Face weights folder (st_write_dir).
 *
 * The header is {"__metadata__":{"format":"pt"}, then each tensor in the given order with
 * contiguous data_offsets}, padded with spaces to a multiple of 8 bytes so the data section
 * starts aligned. Files are written to a temporary in the same folder and renamed into place,
 * so a failure (full disk included) leaves whatever was at the path before. */
#include "io/safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/files.h"

#define ST_MAX_JSON_INT 9007199254740992.0 /* 2^53: larger integers do not survive JSON */
#define ST_SINGLE_NAME "model.safetensors"
#define ST_INDEX_NAME "model.safetensors.index.json"
#define ST_MAX_SHARDS 99999

/* ---- a growable string ---- */

typedef struct strbuf {
    char *p;
    size_t len, cap;
    int oom;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(strbuf *b, const char *s) {
    sb_put(b, s, strlen(s));
}

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        b->oom = 1; /* only short numeric pieces go here */
    else
        sb_put(b, tmp, (size_t)n);
}

/* A JSON string literal: quotes, backslashes and control characters escaped; other bytes (UTF-8,
 * checked by the caller) copied as they are. */
static void sb_json_string(strbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            sb_put(b, "\\\"", 2);
        else if (c == '\\')
            sb_put(b, "\\\\", 2);
        else if (c < 0x20)
            sb_printf(b, "\\u%04x", c);
        else
            sb_put(b, p, 1);
    }
    sb_put(b, "\"", 1);
}

/* ---- checking entries ---- */

static badam_status check_entry(const st_entry *e, size_t i, const char *path, size_t *nbytes,
                                badam_error *err) {
    if (!e->name) return badam_fail(err, BADAM_E_INVALID, "%s: tensor #%zu has no name", path, i);
    const char *name = e->name;
    if (!io_valid_utf8(name, strlen(name)))
        return badam_fail(err, BADAM_E_INVALID, "%s: tensor #%zu: name is not valid UTF-8", path,
                          i);
    if (!strcmp(name, "__metadata__"))
        return badam_fail(err, BADAM_E_INVALID, "%s: '__metadata__' cannot be a tensor name", path);
    if ((unsigned)e->dtype > (unsigned)BADAM_DTYPE_F16)
        return badam_fail(err, BADAM_E_INVALID, "%s: tensor '%s': unknown dtype %d", path, name,
                          (int)e->dtype);
    if (e->ndim < 0 || e->ndim > ST_MAX_DIMS)
        return badam_fail(err, BADAM_E_INVALID, "%s: tensor '%s': ndim %d outside [0, %d]", path,
                          name, e->ndim, ST_MAX_DIMS);
    size_t numel = 1;
    for (int d = 0; d < e->ndim; d++) {
        int64_t v = e->shape[d];
        if (v < 0 || (double)v >= ST_MAX_JSON_INT)
            return badam_fail(err, BADAM_E_INVALID, "%s: tensor '%s': shape[%d] = %lld is invalid",
                              path, name, d, (long long)v);
        if (__builtin_mul_overflow(numel, (size_t)v, &numel))
            return badam_fail(err, BADAM_E_INVALID, "%s: tensor '%s': shape product overflows",
                              path, name);
    }
    if (__builtin_mul_overflow(numel, badam_dtype_size(e->dtype), nbytes) ||
        (double)*nbytes >= ST_MAX_JSON_INT)
        return badam_fail(err, BADAM_E_INVALID, "%s: tensor '%s': byte size overflows", path, name);
    if (*nbytes > 0 && !e->data)
        return badam_fail(err, BADAM_E_INVALID, "%s: tensor '%s': data is NULL", path, name);
    return BADAM_OK;
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks every entry and that no name repeats; fills nbytes[i] (n entries) and *total. */
static badam_status check_entries(const st_entry *entries, size_t n, const char *path,
                                  size_t *nbytes, size_t *total, badam_error *err) {
    *total = 0;
    for (size_t i = 0; i < n; i++) {
        badam_status st = check_entry(&entries[i], i, path, &nbytes[i], err);
        if (st != BADAM_OK) return st;
        if (__builtin_add_overflow(*total, nbytes[i], total))
            return badam_fail(err, BADAM_E_INVALID, "%s: total data size overflows", path);
    }
    if (n < 2) return BADAM_OK;
    const char **names = malloc(n * sizeof *names);
    if (!names) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) names[i] = entries[i].name;
    qsort(names, n, sizeof *names, cmp_str_ptr);
    badam_status st = BADAM_OK;
    for (size_t i = 1; i < n && st == BADAM_OK; i++)
        if (!strcmp(names[i - 1], names[i]))
            st = badam_fail(err, BADAM_E_INVALID, "%s: tensor name '%s' appears twice", path,
                            names[i]);
    free(names);
    return st;
}

/* ---- one file ---- */

/* The header JSON, space-padded to a multiple of 8 bytes. Entries are already checked. */
static badam_status build_header(strbuf *b, const st_entry *entries, size_t n, const size_t *nbytes,
                                 const char *path, badam_error *err) {
    sb_puts(b, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const st_entry *e = &entries[i];
        sb_put(b, ",", 1);
        sb_json_string(b, e->name);
        sb_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", badam_dtype_name(e->dtype));
        for (int d = 0; d < e->ndim; d++)
            sb_printf(b, d ? ",%lld" : "%lld", (long long)e->shape[d]);
        sb_printf(b, "],\"data_offsets\":[%zu,%zu]}", offset, offset + nbytes[i]);
        offset += nbytes[i];
    }
    sb_put(b, "}", 1);
    while (!b->oom && b->len % 8 != 0) sb_put(b, " ", 1);
    if (b->oom) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory for the header", path);
    return BADAM_OK;
}

/* Entry data through fetch, one bounded host chunk at a time. */
static badam_status write_fetched(io_atomic_file *out, const void *data, size_t bytes,
                                  st_fetch_fn fetch, void *ctx, unsigned char *chunk,
                                  badam_error *err) {
    badam_status st = BADAM_OK;
    for (size_t off = 0; off < bytes && st == BADAM_OK; off += ST_FETCH_CHUNK) {
        size_t len = bytes - off < ST_FETCH_CHUNK ? bytes - off : ST_FETCH_CHUNK;
        st = fetch(ctx, chunk, (const char *)data + off, len, err);
        if (st == BADAM_OK) st = io_atomic_write(out, chunk, len, err);
    }
    return st;
}

badam_status st_write(const char *path, const st_entry *entries, size_t n, badam_error *err) {
    return st_write_fetch(path, entries, n, NULL, NULL, err);
}

badam_status st_write_fetch(const char *path, const st_entry *entries, size_t n, st_fetch_fn fetch,
                            void *ctx, badam_error *err) {
    size_t *nbytes = malloc((n ? n : 1) * sizeof *nbytes);
    if (!nbytes) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", path);
    size_t total;
    strbuf header = {0};
    badam_status st = check_entries(entries, n, path, nbytes, &total, err);
    if (st == BADAM_OK) st = build_header(&header, entries, n, nbytes, path, err);
    if (st != BADAM_OK) {
        free(header.p);
        free(nbytes);
        return st;
    }
    unsigned char len_le[8];
    uint64_t len = header.len;
    for (int i = 0; i < 8; i++) len_le[i] = (unsigned char)(len >> (8 * i));

    unsigned char *chunk = fetch ? malloc(ST_FETCH_CHUNK) : NULL;
    io_atomic_file out;
    st = fetch && !chunk ? badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", path)
                         : io_atomic_begin(&out, path, err);
    if (st == BADAM_OK) st = io_atomic_write(&out, len_le, sizeof len_le, err);
    if (st == BADAM_OK) st = io_atomic_write(&out, header.p, header.len, err);
    for (size_t i = 0; i < n && st == BADAM_OK; i++)
        if (nbytes[i])
            st = fetch ? write_fetched(&out, entries[i].data, nbytes[i], fetch, ctx, chunk, err)
                       : io_atomic_write(&out, entries[i].data, nbytes[i], err);
    if (st == BADAM_OK) st = io_atomic_commit(&out, err);
    free(chunk);
    free(header.p);
    free(nbytes);
    return st;
}

/* ---- a weights folder ---- */

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Parses `model-IIIII-of-NNNNN.safetensors`; returns 1 and sets *index, *count on a match. */
static int parse_shard_name(const char *name, unsigned *index, unsigned *count) {
    static const char prefix[] = "model-", mid[] = "-of-", suffix[] = ".safetensors";
    if (strncmp(name, prefix, 6) != 0) return 0;
    const char *p = name + 6;
    unsigned v[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 5; i++, p++) {
            if (*p < '0' || *p > '9') return 0;
            v[k] = v[k] * 10 + (unsigned)(*p - '0');
        }
        if (k == 0) {
            if (strncmp(p, mid, 4) != 0) return 0;
            p += 4;
        }
    }
    if (strcmp(p, suffix) != 0) return 0;
    *index = v[0];
    *count = v[1];
    return 1;
}

static void shard_name(char *out, size_t size, size_t index, size_t count) {
    snprintf(out, size, "model-%05zu-of-%05zu.safetensors", index + 1, count);
}

static badam_status remove_if_present(const char *dir, const char *name, badam_error *err) {
    char *path = join_path(dir, name);
    if (!path) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", dir);
    badam_status st = BADAM_OK;
    if (unlink(path) != 0 && errno != ENOENT)
        st = badam_fail(err, BADAM_E_IO, "%s: cannot remove stale weights file: %s", path,
                        strerror(errno));
    free(path);
    return st;
}

/* Removes every `model-*-of-*.safetensors` in dir except the keep_count shards of this save
 * (keep_count 0: all of them). */
static badam_status remove_stale_shards(const char *dir, size_t keep_count, badam_error *err) {
    DIR *d = opendir(dir);
    if (!d) return badam_fail(err, BADAM_E_IO, "%s: cannot list folder: %s", dir, strerror(errno));
    badam_status st = BADAM_OK;
    struct dirent *ent;
    while (st == BADAM_OK && (ent = readdir(d)) != NULL) {
        unsigned index, count;
        if (!parse_shard_name(ent->d_name, &index, &count)) continue;
        if (keep_count && count == keep_count && index >= 1 && index <= keep_count) continue;
        st = remove_if_present(dir, ent->d_name, err);
    }
    closedir(d);
    return st;
}

static void sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd); /* best effort: the weights themselves were synced before their rename */
    close(fd);
}

typedef struct name_shard {
    const char *name;
    size_t shard;
} name_shard;

static int cmp_name_shard(const void *a, const void *b) {
    return strcmp(((const name_shard *)a)->name, ((const name_shard *)b)->name);
}

/* {"metadata": {"total_size": N}, "weight_map": {name: shard file, ...}} with names sorted, as
 * transformers writes it. */
static badam_status write_index(const char *dir, const st_entry *entries, size_t n,
                                const size_t *shard_of, size_t n_shards, size_t total,
                                badam_error *err) {
    name_shard *map = malloc((n ? n : 1) * sizeof *map);
    char *path = join_path(dir, ST_INDEX_NAME);
    if (!map || !path) {
        free(map);
        free(path);
        return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", dir);
    }
    for (size_t i = 0; i < n; i++) map[i] = (name_shard){entries[i].name, shard_of[i]};
    qsort(map, n, sizeof *map, cmp_name_shard);
    strbuf b = {0};
    sb_printf(&b, "{\n  \"metadata\": {\n    \"total_size\": %zu\n  },\n  \"weight_map\": {",
              total);
    for (size_t i = 0; i < n; i++) {
        char shard[64];
        shard_name(shard, sizeof shard, map[i].shard, n_shards);
        sb_puts(&b, i ? ",\n    " : "\n    ");
        sb_json_string(&b, map[i].name);
        sb_puts(&b, ": ");
        sb_json_string(&b, shard);
    }
    sb_puts(&b, "\n  }\n}\n");
    badam_status st = b.oom ? badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", path)
                            : io_write_file_atomic(path, b.p, b.len, err);
    free(b.p);
    free(map);
    free(path);
    return st;
}

/* The data of each file through fetch (NULL: read directly), st_write_fetch. */
typedef struct dir_fetch {
    st_fetch_fn fn;
    void *ctx;
} dir_fetch;

static badam_status write_single(const char *dir, const st_entry *entries, size_t n,
                                 const dir_fetch *f, badam_error *err) {
    char *path = join_path(dir, ST_SINGLE_NAME);
    if (!path) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", dir);
    badam_status st = st_write_fetch(path, entries, n, f->fn, f->ctx, err);
    free(path);
    /* The index goes first: while it exists, readers take the (old, complete) shards. */
    if (st == BADAM_OK) st = remove_if_present(dir, ST_INDEX_NAME, err);
    if (st == BADAM_OK) st = remove_stale_shards(dir, 0, err);
    sync_dir(dir);
    return st;
}

/* Shards filled greedily in the given order; a tensor larger than the limit gets its own, and a
 * zero-byte tensor never starts a new one. */
static badam_status write_sharded(const char *dir, const st_entry *entries, size_t n,
                                  const size_t *nbytes, size_t total, size_t max_shard_bytes,
                                  const dir_fetch *f, badam_error *err) {
    size_t *shard_of = malloc(n * sizeof *shard_of);
    size_t *first = malloc((n + 1) * sizeof *first); /* first entry of each shard */
    unsigned char *existed = calloc(n, 1);
    if (!shard_of || !first || !existed) {
        free(shard_of);
        free(first);
        free(existed);
        return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", dir);
    }
    size_t n_shards = 0, fill = 0;
    for (size_t i = 0; i < n; i++) {
        if (n_shards == 0 || (nbytes[i] > 0 && fill > 0 && fill + nbytes[i] > max_shard_bytes)) {
            first[n_shards++] = i;
            fill = 0;
        }
        shard_of[i] = n_shards - 1;
        fill += nbytes[i];
    }
    first[n_shards] = n;

    badam_status st = BADAM_OK;
    if (n_shards > ST_MAX_SHARDS)
        st = badam_fail(err, BADAM_E_INVALID, "%s: %zu shards exceed the limit of %d", dir,
                        n_shards, ST_MAX_SHARDS);
    size_t written = 0;
    char name[64];
    for (size_t s = 0; s < n_shards && st == BADAM_OK; s++) {
        shard_name(name, sizeof name, s, n_shards);
        char *path = join_path(dir, name);
        if (!path) {
            st = badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", dir);
            break;
        }
        existed[s] = (unsigned char)io_is_file(path);
        st = st_write_fetch(path, entries + first[s], first[s + 1] - first[s], f->fn, f->ctx, err);
        free(path);
        if (st == BADAM_OK) written++;
    }
    /* The index switches readers to the new shards; only then is the old layout removed. */
    if (st == BADAM_OK) st = write_index(dir, entries, n, shard_of, n_shards, total, err);
    if (st == BADAM_OK) {
        st = remove_if_present(dir, ST_SINGLE_NAME, err);
        if (st == BADAM_OK) st = remove_stale_shards(dir, n_shards, err);
        sync_dir(dir);
    } else {
        for (size_t s = 0; s < written; s++) /* new files nobody refers to */
            if (!existed[s]) {
                shard_name(name, sizeof name, s, n_shards);
                char *path = join_path(dir, name);
                if (path) unlink(path);
                free(path);
            }
    }
    free(shard_of);
    free(first);
    free(existed);
    return st;
}

badam_status st_write_dir(const char *dir, const st_entry *entries, size_t n,
                          size_t max_shard_bytes, badam_error *err) {
    return st_write_dir_fetch(dir, entries, n, max_shard_bytes, NULL, NULL, err);
}

badam_status st_write_dir_fetch(const char *dir, const st_entry *entries, size_t n,
                                size_t max_shard_bytes, st_fetch_fn fetch, void *ctx,
                                badam_error *err) {
    dir_fetch f = {fetch, ctx};
    size_t *nbytes = malloc((n ? n : 1) * sizeof *nbytes);
    if (!nbytes) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", dir);
    size_t total;
    badam_status st = check_entries(entries, n, dir, nbytes, &total, err);
    if (st == BADAM_OK) st = io_make_dir(dir, err);
    if (st == BADAM_OK) {
        if (max_shard_bytes == 0 || total <= max_shard_bytes)
            st = write_single(dir, entries, n, &f, err);
        else
            st = write_sharded(dir, entries, n, nbytes, total, max_shard_bytes, &f, err);
    }
    free(nbytes);
    return st;
}
