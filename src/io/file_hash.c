/* File hashing (file_hash.h): SHA-256 by OpenSSL's libcrypto (EVP), read in 1 MiB pieces. */
#include "io/file_hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

badam_status io_sha256_file(const char *path, char hex[65], badam_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return badam_fail(err, BADAM_E_IO, "%s: cannot open: %s", path, strerror(errno));
    enum { PIECE = 1 << 20 };
    unsigned char *buf = malloc(PIECE), digest[EVP_MAX_MD_SIZE];
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = buf && c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;
    size_t n;
    while (ok && (n = fread(buf, 1, PIECE, f)) > 0) ok = EVP_DigestUpdate(c, buf, n) == 1;
    unsigned int len = 0;
    int failed = ferror(f);
    if (ok && !failed) ok = EVP_DigestFinal_ex(c, digest, &len) == 1 && len == 32;
    EVP_MD_CTX_free(c);
    free(buf);
    fclose(f);
    if (failed) return badam_fail(err, BADAM_E_IO, "%s: read error while hashing", path);
    if (!ok) return badam_fail(err, BADAM_E_NOMEM, "%s: cannot hash (libcrypto)", path);
    for (unsigned int i = 0; i < len; i++) snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    return BADAM_OK;
}
