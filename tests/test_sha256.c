/* SHA-256 of files (io_sha256_file, what checkpoints record of the data) against coreutils'
 * sha256sum, on lengths around the 55/56/64-byte padding edges and across the 1 MiB read
 * pieces, and the FIPS 180-4 example "abc". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/file_hash.h"
#include "io/files.h"
#include "testutil.h"

/* `sha256sum path`'s digest, or "" when it cannot be run. */
static void reference(const char *path, char hex[65]) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    hex[0] = 0;
    FILE *p = popen(cmd, "r");
    if (!p) return;
    if (fscanf(p, "%64s", hex) != 1) hex[0] = 0;
    pclose(p);
}

static void test_abc(void) {
    const char *path = test_path_in(test_workdir("sha256-abc"), "abc");
    CHECK(test_write_raw(path, "abc", 3) == 0);
    char hex[65] = "";
    badam_error err = {0};
    CHECK_OK(io_sha256_file(path, hex, &err), &err);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
}

static void test_against_sha256sum(void) {
    const char *dir = test_workdir("sha256");
    const size_t lengths[] = {0,        1,
                              3,        55,
                              56,       57,
                              63,       64,
                              65,       119,
                              120,      128,
                              1000,     (1u << 20) - 1,
                              1u << 20, (1u << 20) + 1,
                              3u << 20};
    test_rng rng;
    test_rng_seed(&rng, 5);
    size_t max = 3u << 20;
    unsigned char *bytes = malloc(max);
    if (!bytes) {
        CHECK(0);
        return;
    }
    for (size_t i = 0; i < max; i++) bytes[i] = (unsigned char)(test_rng_u32(&rng) >> 24);
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
        char path[1200], ours[65], theirs[65];
        snprintf(path, sizeof path, "%s/f%zu", dir, lengths[k]);
        badam_error err = {0};
        CHECK(io_write_file_atomic(path, bytes, lengths[k], &err) == BADAM_OK);
        CHECK(io_sha256_file(path, ours, &err) == BADAM_OK);
        reference(path, theirs);
        CHECKF(!strcmp(ours, theirs), "%zu bytes: %s, sha256sum says %s", lengths[k], ours, theirs);
    }
    free(bytes);
    char hex[65];
    badam_error err = {0};
    CHECK(io_sha256_file("/nonexistent/file", hex, &err) == BADAM_E_IO);
}

int main(void) {
    RUN_TEST(test_abc);
    RUN_TEST(test_against_sha256sum);
    return test_result();
}
