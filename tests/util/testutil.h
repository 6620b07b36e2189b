/* Minimal test harness: CHECK macros that count failures, a seeded RNG, tolerances,
 * scratch directories under the build tree, and a SKIP exit code (77) ctest understands. */
#ifndef BADAM_TESTUTIL_H
#define BADAM_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int test_failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

#define CHECKF(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

/* Fails the test (and returns from the calling function) when a badam call does not return OK. */
#define CHECK_OK(call, errp)                                                                       \
    do {                                                                                           \
        badam_status st_ = (call);                                                                 \
        if (st_ != BADAM_OK) {                                                                     \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, (errp)->message); \
            test_failures++;                                                                       \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Runs a test function and reports it. */
#define RUN_TEST(fn)                                                                               \
    do {                                                                                           \
        int before_ = test_failures;                                                               \
        fn();                                                                                      \
        fprintf(stderr, "%s %s\n", test_failures == before_ ? "ok  " : "FAIL", #fn);               \
    } while (0)

#define TEST_SKIP_CODE 77

/* Exit status for main(): 0 when all checks passed. */
int test_result(void);

/* xorshift-style RNG for reproducible test data. */
typedef struct test_rng {
    uint64_t state;
} test_rng;
void test_rng_seed(test_rng *rng, uint64_t seed);
uint32_t test_rng_u32(test_rng *rng);
float test_rng_uniform(test_rng *rng); /* [0, 1) */
float test_rng_normal(test_rng *rng);  /* N(0, 1) */
void test_fill_normal(test_rng *rng, float *x, size_t n, float scale);

/* max_i |a-b| / max(max_i |b|, floor): a relative error measure robust to near-zero entries. */
double test_rel_error(const float *a, const float *b, size_t n);
double test_max_abs(const float *x, size_t n);

/* A fresh empty directory for this test: $BADAM_BINARY_DIR/test-work/<name> (or /tmp). */
const char *test_workdir(const char *name);
/* Path of a file in the source tree ($BADAM_SOURCE_DIR/rel); NULL when unknown. */
const char *test_source_path(const char *rel);
/* dir + "/" + name in one of 8 rotating static buffers (several may be live at once). */
char *test_path_in(const char *dir, const char *name);
/* Writes n raw bytes to path; 0 on success. */
int test_write_raw(const char *path, const void *data, size_t n);
/* Runs a shell command; returns its exit status (or -1). */
int test_system(const char *cmd);
/* Runs `[input] $BADAM_CLI args` from $BADAM_SOURCE_DIR with stdout and stderr captured into a
 * file of test_workdir-style folder `scratch` (created by the caller), copies the output into
 * out (size bytes, NUL-terminated) and returns the exit status. input, when not NULL, is a shell
 * prefix such as "printf 'hi\n' |". */
int test_run_cli(const char *scratch, const char *input, const char *args, char *out, size_t size);
/* 1 when /usr/bin/python3 can import torch. */
int test_have_torch(void);

#endif
