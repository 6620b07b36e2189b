/* SHA-256 (FIPS 180-4), incremental: the hash checkpoints record of each data file, so a user
 * can compare it with `sha256sum FILE`. */
#ifndef BADAM_BASE_SHA256_H
#define BADAM_BASE_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct sha256_ctx {
    uint32_t h[8];
    uint64_t bytes; /* message length so far */
    uint8_t block[64];
    size_t used; /* bytes waiting in block */
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t n);
/* The digest as 64 lowercase hex digits and a NUL. */
void sha256_final_hex(sha256_ctx *c, char hex[65]);

#endif
