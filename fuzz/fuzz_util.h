/* Shared by the libFuzzer harnesses: every parser reads files, so each input is written to a
 * file in a private temporary folder (removed at exit) and parsed from there, exactly as badam
 * reads a user's file. BADAM_SOURCE_DIR (set by fuzz/CMakeLists.txt) locates the fixtures. */
#ifndef BADAM_FUZZ_UTIL_H
#define BADAM_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "badam/status.h"

/* The harness's temporary folder (created on first use, in $TMPDIR, else /dev/shm, else /tmp). */
const char *fuzz_dir(void);
/* fuzz_dir()/name, in a static buffer per call site's slot (0..3). */
const char *fuzz_path(int slot, const char *name);
/* Writes n bytes to path (replacing it); aborts on failure (the harness is broken, not the input).
 */
void fuzz_write(const char *path, const void *data, size_t n);
/* BADAM_SOURCE_DIR/rel in a static buffer per slot (0..3). */
const char *fuzz_source(int slot, const char *rel);
/* Aborts with a message when a badam call that must succeed (harness setup) fails. */
void fuzz_require(badam_status st, const badam_error *err, const char *what);

#endif
