/* badam train's output folder (train_out.h): a previous run's files that the new run would not
 * replace, --overwrite, and the folder a failed run created. */
#define _XOPEN_SOURCE 700
#include "train_out.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const ENTRIES[TRAIN_OUT_ENTRIES] = {"adapter", "checkpoint", "checkpoint.old"};

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Whether this run writes entry k again: adapter/ with a method that has one (and a saved
 * model), checkpoint/ (and its checkpoint.old/ stage) unless --no-checkpoint. */
static int rewritten(const train_config *c, int k) {
    if (k == 0)
        return !c->no_save && (c->method == METHOD_LORA || c->method == METHOD_MEZO_LORA ||
                               c->method == METHOD_ADAPTER);
    return !c->no_checkpoint;
}

/* "adapter/ and checkpoint/" of the stale entries into buf. */
static void list_stale(const train_out *o, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int k = 0, seen = 0; k < TRAIN_OUT_ENTRIES; k++) {
        if (!o->stale[k]) continue;
        used += (size_t)snprintf(buf + used, size - used, "%s%s/", seen ? " and " : "", ENTRIES[k]);
        seen = 1;
        if (used >= size) return;
    }
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Removes a folder and everything in it: 0, or -1 (errno set). */
static int remove_tree(const char *path) {
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int train_out_prepare(const train_config *c, int overwrite, train_out *o) {
    memset(o, 0, sizeof *o);
    snprintf(o->dir, sizeof o->dir, "%s", c->out_dir);
    o->existed = access(c->out_dir, F_OK) == 0;
    if (!o->existed || c->resume) return 0;
    char path[TRAIN_OUT_PATH + 32], names[96];
    for (int k = 0; k < TRAIN_OUT_ENTRIES; k++) {
        snprintf(path, sizeof path, "%s/%s", c->out_dir, ENTRIES[k]);
        o->stale[k] = is_dir(path) && !rewritten(c, k);
        o->any_stale |= o->stale[k];
    }
    if (!o->any_stale) return 0;
    list_stale(o, names, sizeof names);
    if (!overwrite) {
        fprintf(stderr,
                "badam train: %s holds %s of a previous run, which this run (--method %s%s%s) "
                "would not write again, so they would be mixed up with its results: give "
                "--overwrite to replace them (they are removed when this run succeeds), "
                "--resume to continue that run, or another --out\n",
                c->out_dir, names, train_method_name(c->method), c->no_save ? ", --no-save" : "",
                c->no_checkpoint ? ", --no-checkpoint" : "");
        return 2;
    }
    /* set aside in one folder (renames: each entry is whole in one place or the other) */
    snprintf(o->aside, sizeof o->aside, "%s/.replaced-by-run-%ld", c->out_dir, (long)getpid());
    if (mkdir(o->aside, 0755) != 0) {
        fprintf(stderr, "badam train: --overwrite: cannot create %s: %s\n", o->aside,
                strerror(errno));
        return 1;
    }
    for (int k = 0; k < TRAIN_OUT_ENTRIES; k++) {
        if (!o->stale[k]) continue;
        char to[sizeof o->aside + 32];
        snprintf(path, sizeof path, "%s/%s", c->out_dir, ENTRIES[k]);
        snprintf(to, sizeof to, "%s/%s", o->aside, ENTRIES[k]);
        if (rename(path, to) != 0) {
            fprintf(stderr, "badam train: --overwrite: cannot move %s aside: %s\n", path,
                    strerror(errno));
            train_out_finish(o, 0);
            return 1;
        }
        o->moved[k] = 1;
    }
    cli_warn("badam train",
             "--overwrite: %s of the previous run in %s are replaced when this run "
             "succeeds (kept if it fails)",
             names, c->out_dir);
    return 0;
}

void train_out_finish(train_out *o, int ok) {
    if (o->aside[0]) {
        char path[TRAIN_OUT_PATH + 32], from[sizeof o->aside + 32];
        for (int k = 0; k < TRAIN_OUT_ENTRIES; k++) {
            if (!o->moved[k]) continue;
            snprintf(from, sizeof from, "%s/%s", o->aside, ENTRIES[k]);
            snprintf(path, sizeof path, "%s/%s", o->dir, ENTRIES[k]);
            if (ok ? remove_tree(from) != 0 : rename(from, path) != 0)
                cli_warn("badam train", "%s: cannot %s: %s (remove it by hand)", from,
                         ok ? "remove it" : "move it back", strerror(errno));
        }
        if (rmdir(o->aside) != 0)
            cli_warn("badam train", "%s: cannot remove: %s", o->aside, strerror(errno));
        o->aside[0] = '\0';
    }
    /* a folder this run created and left empty goes (rmdir removes only an empty folder; a folder
     * the run could not create in a read-only or forbidden parent is not there to remove) */
    if (!ok && !o->existed && rmdir(o->dir) != 0 && errno != ENOTEMPTY && errno != EEXIST &&
        errno != ENOENT && errno != EACCES && errno != EROFS && errno != EPERM)
        cli_warn("badam train", "%s: cannot remove the empty output folder: %s", o->dir,
                 strerror(errno));
}
