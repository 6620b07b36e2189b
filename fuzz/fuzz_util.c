#include "fuzz_util.h"

#include "io/files.h"

static char dir[256];

static void remove_dir(void) {
    badam_error err;
    if (dir[0]) io_remove_tree(dir, &err);
}

const char *fuzz_dir(void) {
    if (!dir[0]) {
        /* memory-backed when possible: every execution writes its input file */
        const char *tmp = getenv("TMPDIR");
        if (!tmp || !*tmp)
            tmp = io_is_dir("/dev/shm") && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/badam-fuzz-XXXXXX", tmp);
        if (!mkdtemp(dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(remove_dir);
    }
    return dir;
}

const char *fuzz_path(int slot, const char *name) {
    static char paths[4][512];
    snprintf(paths[slot & 3], sizeof paths[0], "%s/%s", fuzz_dir(), name);
    return paths[slot & 3];
}

void fuzz_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

const char *fuzz_source(int slot, const char *rel) {
    static char paths[4][1024];
    snprintf(paths[slot & 3], sizeof paths[0], "%s/%s", BADAM_SOURCE_DIR, rel);
    return paths[slot & 3];
}

void fuzz_require(badam_status st, const badam_error *err, const char *what) {
    if (st == BADAM_OK) return;
    fprintf(stderr, "fuzz setup: %s: %s\n", what, err->message);
    abort();
}
