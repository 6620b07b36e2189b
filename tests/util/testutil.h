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

/* Closeness of a result `a` to a reference `b` (n floats), both tolerances stated by the caller:
 * passes when |a_i - b_i| <= atol + rtol * max_j |b_j| for every i. The reference's largest
 * magnitude sets the relative scale (entries near zero are judged against the tensor), and atol
 * keeps the check meaningful when the reference is all zeros or tiny. ratio: the worst
 * |a_i - b_i| / bound (<= 1 passes; a NaN or Inf where the other side differs gives +inf). */
typedef struct test_closeness {
    double ratio, diff, bound, scale;
    size_t worst; /* index of the worst element */
} test_closeness;
test_closeness test_close(const float *a, const float *b, size_t n, double atol, double rtol);
/* The same for doubles. */
test_closeness test_close_f64(const double *a, const double *b, size_t n, double atol, double rtol);
double test_max_abs(const float *x, size_t n);

#define CHECK_CLOSE_REPORT_(c_, av_, bv_, atol, rtol, ...)                                         \
    do {                                                                                           \
        if (!(c_.ratio <= 1.0)) {                                                                  \
            fprintf(stderr, "%s:%d: CHECK_CLOSE failed: ", __FILE__, __LINE__);                    \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr,                                                                        \
                    ": |a-b| = %.3g at [%zu] (a %.9g, b %.9g) > atol %.3g + rtol %.3g * "          \
                    "max|b| %.3g\n",                                                               \
                    c_.diff, c_.worst, (double)(av_), (double)(bv_), (double)(atol),               \
                    (double)(rtol), c_.scale);                                                     \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

/* Fails (with the worst element, both values and the bound) unless a is close to the reference
 * b: |a_i - b_i| <= atol + rtol * max|b| for all i < n. The message is printf-style. */
#define CHECK_CLOSE(a, b, n, atol, rtol, ...)                                                      \
    do {                                                                                           \
        const float *ca_ = (a), *cb_ = (b);                                                        \
        test_closeness cc_ = test_close(ca_, cb_, (n), (atol), (rtol));                            \
        CHECK_CLOSE_REPORT_(cc_, ca_[cc_.worst], cb_[cc_.worst], atol, rtol, __VA_ARGS__);         \
    } while (0)

/* Scalar form: |a - b| <= atol + rtol * |b|. */
#define CHECK_NEAR(a, b, atol, rtol, ...)                                                          \
    do {                                                                                           \
        double na_ = (a), nb_ = (b);                                                               \
        test_closeness cc_ = test_close_f64(&na_, &nb_, 1, (atol), (rtol));                        \
        CHECK_CLOSE_REPORT_(cc_, na_, nb_, atol, rtol, __VA_ARGS__);                               \
    } while (0)

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
/* 1 when node runs and scripts/setup.sh installed @huggingface/tokenizers under
 * $BADAM_SOURCE_DIR/tests/tokenizer/node_modules (the tokenizer reference). */
int test_have_hf_tokenizers(void);

#endif
