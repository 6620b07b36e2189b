#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

int test_failures = 0;

int test_result(void) {
    if (test_failures) fprintf(stderr, "%d check(s) failed\n", test_failures);
    return test_failures ? 1 : 0;
}

void test_rng_seed(test_rng *rng, uint64_t seed) {
    rng->state = seed * 0x9E3779B97F4A7C15ull + 1;
}

uint32_t test_rng_u32(test_rng *rng) {
    uint64_t x = rng->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng->state = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

float test_rng_uniform(test_rng *rng) {
    return (test_rng_u32(rng) >> 8) * (1.0f / 16777216.0f);
}

float test_rng_normal(test_rng *rng) {
    float u1 = test_rng_uniform(rng) + 1e-7f, u2 = test_rng_uniform(rng);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

void test_fill_normal(test_rng *rng, float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * test_rng_normal(rng);
}

double test_max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}

double test_rel_error(const float *a, const float *b, size_t n) {
    double scale = test_max_abs(b, n);
    if (scale < 1e-6) scale = 1e-6;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= worst)) worst = d; /* NaN propagates as the worst error */
    }
    return worst / scale;
}

const char *test_workdir(const char *name) {
    static char path[4096];
    const char *bin = getenv("BADAM_BINARY_DIR");
    snprintf(path, sizeof path, "%s/test-work/%s", bin ? bin : "/tmp/badam-test", name);
    char cmd[3 * 4096 + 64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", path, path);
    if (test_system(cmd) != 0) fprintf(stderr, "cannot create %s\n", path);
    return path;
}

const char *test_source_path(const char *rel) {
    static char path[4096];
    const char *src = getenv("BADAM_SOURCE_DIR");
    if (!src) return NULL;
    snprintf(path, sizeof path, "%s/%s", src, rel);
    return path;
}

int test_system(const char *cmd) {
    int rc = system(cmd);
    if (rc == -1) return -1;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int test_have_torch(void) {
    return test_system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

int test_run_cli(const char *scratch, const char *input, const char *args, char *out, size_t size) {
    char path[4200], cmd[16384];
    snprintf(path, sizeof path, "%s/cli-output.txt", scratch);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' %s > '%s' 2>&1", getenv("BADAM_SOURCE_DIR"),
             input ? input : "", getenv("BADAM_CLI"), args, path);
    int rc = test_system(cmd);
    out[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (f) {
        size_t n = fread(out, 1, size - 1, f);
        out[n] = '\0';
        fclose(f);
    }
    return rc;
}

char *test_path_in(const char *dir, const char *name) {
    static char buf[8][4096];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

int test_write_raw(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}
