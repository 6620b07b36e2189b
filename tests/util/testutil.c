#include "testutil.h"

#include <cblas.h>

#include "badam/cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

int test_failures = 0;

/* Every test binary starts here: BADAM_CPU names the kernel path under test (the suite runs the
 * kernel and model tests once per path). A path this CPU cannot run skips the test (77); the path,
 * OpenBLAS's kernel set and the GEMM used are printed so a log shows what ran. */
__attribute__((constructor)) static void test_cpu_path(void) {
    badam_error err = {0};
    badam_status st = badam_cpu_check_env(&err);
    if (st == BADAM_E_UNSUPPORTED) {
        fprintf(stderr, "SKIP: %s\n", err.message);
        exit(TEST_SKIP_CODE);
    }
    if (st != BADAM_OK) {
        fprintf(stderr, "%s\n", err.message);
        exit(1);
    }
    const char *gemm = getenv("BADAM_GEMM");
    fprintf(stderr, "cpu path: %s (best here: %s, AVX512_BF16 %s); OpenBLAS kernels: %s%s%s\n",
            badam_cpu_path_name(badam_cpu_active()), badam_cpu_path_name(badam_cpu_best()),
            badam_cpu_detect().avx512_bf16 ? "yes" : "no", openblas_get_corename(),
            gemm ? "; BADAM_GEMM=" : "", gemm ? gemm : "");
}

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

/* Element i of a float (f64 == 0) or double array, as a double. */
static double elem(const void *x, int f64, size_t i) {
    return f64 ? ((const double *)x)[i] : (double)((const float *)x)[i];
}

static test_closeness close_of(const void *a, const void *b, int f64, size_t n, double atol,
                               double rtol) {
    test_closeness c = {0, 0, 0, 0, 0};
    for (size_t i = 0; i < n; i++)
        if (fabs(elem(b, f64, i)) > c.scale) c.scale = fabs(elem(b, f64, i));
    c.bound = atol + rtol * c.scale;
    for (size_t i = 0; i < n; i++) {
        double ai = elem(a, f64, i), bi = elem(b, f64, i), d = fabs(ai - bi);
        if (ai == bi) continue; /* equal infinities too */
        double r = isfinite(d) ? (c.bound > 0 ? d / c.bound : INFINITY) : INFINITY;
        if (!(r <= c.ratio)) c.ratio = r, c.diff = d, c.worst = i;
    }
    return c;
}

test_closeness test_close(const float *a, const float *b, size_t n, double atol, double rtol) {
    return close_of(a, b, 0, n, atol, rtol);
}

test_closeness test_close_f64(const double *a, const double *b, size_t n, double atol,
                              double rtol) {
    return close_of(a, b, 1, n, atol, rtol);
}

const char *test_workdir(const char *name) {
    static char path[4096];
    const char *bin = getenv("BADAM_BINARY_DIR");
    /* Runs of one test on several CPU paths (BADAM_TEST_VARIANT) may run at once: each has its own
     * folders. */
    const char *variant = getenv("BADAM_TEST_VARIANT");
    snprintf(path, sizeof path, "%s/test-work/%s%s%s", bin ? bin : "/tmp/badam-test",
             variant ? variant : "", variant ? "/" : "", name);
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

int test_have_hf_tokenizers(void) {
    const char *src = getenv("BADAM_SOURCE_DIR");
    if (!src) return 0;
    char probe[4096];
    snprintf(probe, sizeof probe,
             "%s/tests/tokenizer/node_modules/@huggingface/tokenizers/package.json", src);
    struct stat st;
    return stat(probe, &st) == 0 && S_ISREG(st.st_mode) &&
           test_system("node --version >/dev/null 2>&1") == 0;
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
