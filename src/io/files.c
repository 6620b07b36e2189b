/* Whole-file reads, atomic writes (temporary + fsync + rename), mkdir -p, strict UTF-8 and
 * JSON parsing whose errors name the source. */
#include "io/files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Distinguishes temporaries made by several threads of one process. */
static atomic_uint io_tmp_counter;

/* ---- reading ---- */

/* What a file that is not a regular file is, for messages. */
static const char *kind_of(mode_t mode) {
    return S_ISDIR(mode)    ? "a directory"
           : S_ISFIFO(mode) ? "a FIFO (named pipe)"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : "not a regular file";
}

badam_status io_optional_file(const char *path, int *present, badam_error *err) {
    *present = 0;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return BADAM_OK;
        return badam_fail(err, BADAM_E_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return badam_fail(err, BADAM_E_IO, "%s: is %s; only regular files are read", path,
                          kind_of(st.st_mode));
    *present = 1;
    return BADAM_OK;
}

badam_status io_open_regular(const char *path, int *fd_out, size_t *size_out, badam_error *err) {
    *fd_out = -1;
    if (size_out) *size_out = 0;
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer (forever). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return badam_fail(err, BADAM_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return badam_fail(err, BADAM_E_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return badam_fail(err, BADAM_E_IO, "%s: is %s; only regular files are read", path,
                          kind_of(st.st_mode));
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        return badam_fail(err, BADAM_E_IO, "%s: fcntl failed: %s", path, strerror(e));
    }
    if ((unsigned long long)st.st_size > (unsigned long long)(SIZE_MAX / 2)) {
        close(fd);
        return badam_fail(err, BADAM_E_IO, "%s: file too large (%lld bytes)", path,
                          (long long)st.st_size);
    }
    *fd_out = fd;
    if (size_out) *size_out = (size_t)st.st_size;
    return BADAM_OK;
}

badam_status io_read_file(const char *path, char **data_out, size_t *size_out, badam_error *err) {
    *data_out = NULL;
    if (size_out) *size_out = 0;
    int fd;
    size_t file_size;
    badam_status ost = io_open_regular(path, &fd, &file_size, err);
    if (ost != BADAM_OK) return ost;
    /* The size from fstat is a hint only (the file may grow or shrink): read until end of file. */
    size_t cap = file_size > 0 ? file_size + 1 : 4096;
    size_t len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return badam_fail(err, BADAM_E_NOMEM, "%s: cannot allocate %zu bytes", path, cap);
    }
    for (;;) {
        if (len + 1 >= cap) {
            size_t new_cap = cap * 2;
            char *grown = new_cap > cap ? realloc(buf, new_cap) : NULL;
            if (!grown) {
                free(buf);
                close(fd);
                return badam_fail(err, BADAM_E_NOMEM, "%s: cannot allocate %zu bytes", path,
                                  new_cap);
            }
            buf = grown;
            cap = new_cap;
        }
        ssize_t got = read(fd, buf + len, cap - 1 - len);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return badam_fail(err, BADAM_E_IO, "%s: read failed: %s", path, strerror(e));
        }
        if (got == 0) break;
        len += (size_t)got;
    }
    close(fd);
    buf[len] = '\0';
    *data_out = buf;
    if (size_out) *size_out = len;
    return BADAM_OK;
}

/* ---- atomic writes ---- */

/* Writes all of data to fd; a short write that makes no progress is a full disk. */
static badam_status write_all(int fd, const void *data, size_t size, const char *what,
                              badam_error *err) {
    const char *p = data;
    while (size > 0) {
        size_t chunk = size > (1u << 30) ? (1u << 30) : size;
        ssize_t n = write(fd, p, chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return badam_fail(err, BADAM_E_IO, "%s: write failed: %s", what, strerror(errno));
        if (n == 0)
            return badam_fail(err, BADAM_E_IO, "%s: write failed: %s", what, strerror(ENOSPC));
        p += n;
        size -= (size_t)n;
    }
    return BADAM_OK;
}

/* Flushes the directory holding path so a rename survives a crash. Filesystems that cannot
 * sync a directory (EINVAL) are accepted; a failing device is not. */
static badam_status sync_parent_dir(const char *path, badam_error *err) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (!dir) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return BADAM_OK; /* unreadable folder: the rename itself succeeded */
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL && e != ENOTSUP && e != EROFS)
        return badam_fail(err, BADAM_E_IO, "%s: fsync of its folder failed: %s", path, strerror(e));
    return BADAM_OK;
}

static void atomic_release(io_atomic_file *file) {
    free(file->path);
    free(file->tmp_path);
    file->path = NULL;
    file->tmp_path = NULL;
    file->fd = -1;
}

void io_atomic_abort(io_atomic_file *file) {
    if (!file) return;
    if (file->fd >= 0) close(file->fd);
    if (file->tmp_path) unlink(file->tmp_path);
    atomic_release(file);
}

badam_status io_atomic_begin(io_atomic_file *file, const char *path, badam_error *err) {
    file->fd = -1;
    file->path = NULL;
    file->tmp_path = NULL;
    if (!path || !*path) return badam_fail(err, BADAM_E_INVALID, "empty output path");
    size_t tmp_size = strlen(path) + 64;
    file->path = strdup(path);
    file->tmp_path = malloc(tmp_size);
    if (!file->path || !file->tmp_path) {
        atomic_release(file);
        return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", path);
    }
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned n = atomic_fetch_add(&io_tmp_counter, 1u);
        snprintf(file->tmp_path, tmp_size, "%s.tmp.%ld.%u", path, (long)getpid(), n);
        file->fd = open(file->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (file->fd >= 0) return BADAM_OK;
        if (errno != EEXIST) break;
    }
    int e = errno;
    badam_fail(err, BADAM_E_IO, "%s: cannot create temporary file %s: %s", path, file->tmp_path,
               strerror(e));
    free(file->tmp_path); /* not ours: nothing to unlink */
    file->tmp_path = NULL;
    atomic_release(file);
    return BADAM_E_IO;
}

badam_status io_atomic_write(io_atomic_file *file, const void *data, size_t size,
                             badam_error *err) {
    if (file->fd < 0) return badam_fail(err, BADAM_E_INVALID, "write to a closed atomic file");
    badam_status st = write_all(file->fd, data, size, file->path, err);
    if (st != BADAM_OK) io_atomic_abort(file);
    return st;
}

badam_status io_atomic_commit(io_atomic_file *file, badam_error *err) {
    if (file->fd < 0) return badam_fail(err, BADAM_E_INVALID, "commit of a closed atomic file");
    if (fsync(file->fd) != 0) {
        badam_fail(err, BADAM_E_IO, "%s: fsync failed: %s", file->path, strerror(errno));
        io_atomic_abort(file);
        return BADAM_E_IO;
    }
    int rc = close(file->fd);
    file->fd = -1;
    if (rc != 0) {
        badam_fail(err, BADAM_E_IO, "%s: close failed: %s", file->path, strerror(errno));
        io_atomic_abort(file);
        return BADAM_E_IO;
    }
    if (rename(file->tmp_path, file->path) != 0) {
        badam_fail(err, BADAM_E_IO, "%s: cannot rename %s into place: %s", file->path,
                   file->tmp_path, strerror(errno));
        io_atomic_abort(file);
        return BADAM_E_IO;
    }
    badam_status st = sync_parent_dir(file->path, err);
    atomic_release(file);
    return st;
}

badam_status io_write_file_atomic(const char *path, const void *data, size_t size,
                                  badam_error *err) {
    io_atomic_file file;
    badam_status st = io_atomic_begin(&file, path, err);
    if (st != BADAM_OK) return st;
    st = io_atomic_write(&file, data, size, err);
    if (st != BADAM_OK) return st;
    return io_atomic_commit(&file, err);
}

badam_status io_copy_file(const char *src, const char *dst, badam_error *err) {
    int fd;
    badam_status ost = io_open_regular(src, &fd, NULL, err);
    if (ost != BADAM_OK) return ost;
    enum { CHUNK = 1 << 20 };
    char *buf = malloc(CHUNK);
    if (!buf) {
        close(fd);
        return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", src);
    }
    io_atomic_file out;
    badam_status st = io_atomic_begin(&out, dst, err);
    while (st == BADAM_OK) {
        ssize_t got = read(fd, buf, CHUNK);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            badam_fail(err, BADAM_E_IO, "%s: read failed: %s", src, strerror(errno));
            io_atomic_abort(&out);
            st = BADAM_E_IO;
            break;
        }
        if (got == 0) {
            st = io_atomic_commit(&out, err);
            break;
        }
        st = io_atomic_write(&out, buf, (size_t)got, err);
    }
    free(buf);
    close(fd);
    return st;
}

/* ---- paths ---- */

int io_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int io_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static badam_status make_one_dir(const char *dir, const char *full, badam_error *err) {
    if (mkdir(dir, 0777) == 0) return BADAM_OK;
    int e = errno;
    if (e == EEXIST && io_is_dir(dir)) return BADAM_OK;
    if (e == EEXIST)
        return badam_fail(err, BADAM_E_IO,
                          "%s: cannot create folder: %s exists and is not a folder", full, dir);
    return badam_fail(err, BADAM_E_IO, "%s: cannot create folder %s: %s", full, dir, strerror(e));
}

badam_status io_make_dir(const char *path, badam_error *err) {
    if (!path || !*path) return badam_fail(err, BADAM_E_INVALID, "empty folder path");
    if (io_is_dir(path)) return BADAM_OK;
    char *copy = strdup(path);
    if (!copy) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", path);
    badam_status st = BADAM_OK;
    for (char *p = copy + 1; *p && st == BADAM_OK; p++) {
        if (*p != '/' || p[-1] == '/') continue;
        *p = '\0';
        st = make_one_dir(copy, path, err);
        *p = '/';
    }
    if (st == BADAM_OK) st = make_one_dir(copy, path, err);
    free(copy);
    return st;
}

/* ---- UTF-8 and JSON ---- */

/* Offset of the first byte that does not start a well-formed UTF-8 sequence, or n. Follows
 * the Unicode table of well-formed byte sequences: no overlongs (C0, C1, E0 80-9F, F0 80-8F),
 * no surrogates (ED A0-BF), nothing above U+10FFFF (F4 90+, F5-FF). */
static size_t utf8_error_offset(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF)
            len = 2;
        else if (c == 0xE0)
            len = 3, lo = 0xA0;
        else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
            len = 3;
        else if (c == 0xED)
            len = 3, hi = 0x9F;
        else if (c == 0xF0)
            len = 4, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3)
            len = 4;
        else if (c == 0xF4)
            len = 4, hi = 0x8F;
        else
            return i;
        if (n - i < len) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return i;
        i += len;
    }
    return n;
}

size_t io_utf8_error_offset(const char *s, size_t n) {
    return utf8_error_offset((const unsigned char *)s, n);
}

int io_valid_utf8(const char *s, size_t n) {
    return utf8_error_offset((const unsigned char *)s, n) == n;
}

badam_status io_parse_json_at(const char *text, size_t size, const char *what, size_t flags,
                              json_t **out, size_t *error_at, badam_error *err) {
    *out = NULL;
    size_t bad = utf8_error_offset((const unsigned char *)text, size);
    if (bad != size) {
        if (error_at) *error_at = bad;
        return badam_fail(err, BADAM_E_FORMAT, "%s: invalid UTF-8 at byte %zu", what, bad);
    }
    io_json_error je;
    json_t *root = io_json_loadb(text, size, flags, &je);
    if (!root) {
        if (error_at) *error_at = je.offset;
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: invalid JSON at line %d, column %d (byte %zu): %s", what, je.line,
                          je.column, je.offset, je.text);
    }
    *out = root;
    return BADAM_OK;
}

badam_status io_parse_json_opts(const char *text, size_t size, const char *what, size_t flags,
                                json_t **out, badam_error *err) {
    return io_parse_json_at(text, size, what, flags, out, NULL, err);
}

badam_status io_parse_json(const char *text, size_t size, const char *what, json_t **out,
                           badam_error *err) {
    return io_parse_json_opts(text, size, what, 0, out, err);
}

badam_status io_read_json_opts(const char *path, size_t flags, json_t **out, badam_error *err) {
    *out = NULL;
    char *text;
    size_t size;
    badam_status st = io_read_file(path, &text, &size, err);
    if (st != BADAM_OK) return st;
    st = io_parse_json_opts(text, size, path, flags, out, err);
    free(text);
    return st;
}

badam_status io_read_json(const char *path, json_t **out, badam_error *err) {
    return io_read_json_opts(path, 0, out, err);
}
