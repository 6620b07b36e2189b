/* Folder operations for checkpoints: recursive removal and an atomic replace of one folder by
 * another (rename the old one aside, rename the new one in, then delete the old). */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "io/files.h"

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

badam_status io_remove_tree(const char *path, badam_error *err) {
    if (!io_is_dir(path) && !io_is_file(path)) return BADAM_OK;
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return badam_fail(err, BADAM_E_IO, "%s: cannot remove: %s", path, strerror(errno));
    return BADAM_OK;
}

badam_status io_sync_dir(const char *dir, badam_error *err) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return badam_fail(err, BADAM_E_IO, "%s: cannot open: %s", dir, strerror(errno));
    int rc = fsync(fd), e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL && e != ENOTSUP && e != EROFS)
        return badam_fail(err, BADAM_E_IO, "%s: fsync failed: %s", dir, strerror(e));
    return BADAM_OK;
}

badam_status io_replace_dir(const char *fresh, const char *target, badam_error *err) {
    char old[4096];
    snprintf(old, sizeof old, "%s.old", target);
    badam_status st = io_sync_dir(fresh, err);
    if (st) return st;
    if (io_is_dir(target)) {
        if ((st = io_remove_tree(old, err))) return st;
        if (rename(target, old) != 0)
            return badam_fail(err, BADAM_E_IO, "%s: cannot move aside to %s: %s", target, old,
                              strerror(errno));
    }
    if (rename(fresh, target) != 0)
        return badam_fail(err, BADAM_E_IO,
                          "%s: cannot rename to %s: %s (the previous one is "
                          "kept at %s)",
                          fresh, target, strerror(errno), old);
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", target);
    char *slash = strrchr(parent, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(parent, sizeof parent, ".");
    if ((st = io_sync_dir(parent, err))) return st;
    return io_remove_tree(old, err);
}

int io_path_join(char *out, size_t size, const char *dir, const char *name) {
    int n = snprintf(out, size, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}
