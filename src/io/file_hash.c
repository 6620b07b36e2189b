/* File hashing (file_hash.h). */
#include "io/file_hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sha256.h"

badam_status io_sha256_file(const char *path, char hex[65], badam_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return badam_fail(err, BADAM_E_IO, "%s: cannot open: %s", path, strerror(errno));
    enum { PIECE = 1 << 20 };
    unsigned char *buf = malloc(PIECE);
    if (!buf) {
        fclose(f);
        return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory for hashing", path);
    }
    sha256_ctx c;
    sha256_init(&c);
    size_t n;
    while ((n = fread(buf, 1, PIECE, f)) > 0) sha256_update(&c, buf, n);
    int failed = ferror(f);
    free(buf);
    fclose(f);
    if (failed) return badam_fail(err, BADAM_E_IO, "%s: read error while hashing", path);
    sha256_final_hex(&c, hex);
    return BADAM_OK;
}
