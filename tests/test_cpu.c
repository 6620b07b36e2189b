/* CPU paths and run-time dispatch (include/badam/cpu.h, src/base/cpu_dispatch.h), checked on the
 * machine the suite runs on:
 * - detection agrees with /proc/cpuinfo's flags (read here independently);
 * - BADAM_CPU names are parsed, bad values and paths this CPU lacks are refused with a message;
 * - every dispatched kernel runs the variant of the active path, and only it, for every path the
 *   machine can run (dispatch counters), with results that agree across paths;
 * - the library is built for the x86-64 baseline: outside the AVX2 / AVX-512 variants, no
 *   function of libbadam.a uses a VEX or EVEX instruction (no -march flag leaked into the build),
 *   and the AVX-512 variants really use 512-bit registers.
 * It prints which paths ran and which this CPU cannot run. */
#include <stdlib.h>
#include <string.h>

#include "badam/cpu.h"
#include "badam/dtype.h"
#include "model/cpu/ops.h"
#include "testutil.h"

/* 1 when /proc/cpuinfo's first "flags" line lists every flag of the space-separated `want`. */
static int cpuinfo_has(const char *want) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return -1;
    static char line[1 << 16];
    int found = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) {
            found = 1;
            char w[256];
            snprintf(w, sizeof w, "%s", want);
            for (char *t = strtok(w, " "); t; t = strtok(NULL, " ")) {
                char pat[64];
                snprintf(pat, sizeof pat, " %s", t);
                char *p = strstr(line, pat);
                if (!p || (p[strlen(pat)] != ' ' && p[strlen(pat)] != '\n')) found = 0;
            }
            break;
        }
    fclose(f);
    return found;
}

static void test_detection(void) {
    badam_cpu_features f = badam_cpu_detect();
    int v3 = cpuinfo_has("avx2 fma bmi2 f16c movbe");
    int v4 = cpuinfo_has("avx2 fma bmi2 f16c movbe avx512f avx512bw avx512cd avx512dq avx512vl");
    int bf16 = cpuinfo_has("avx512_bf16");
    if (v3 < 0) {
        fprintf(stderr, "  no /proc/cpuinfo flags: detection not cross-checked\n");
        return;
    }
    CHECKF(f.avx2_fma == v3, "AVX2+FMA: detected %d, /proc/cpuinfo %d", f.avx2_fma, v3);
    CHECKF(f.avx512 == v4, "AVX-512 (x86-64-v4): detected %d, /proc/cpuinfo %d", f.avx512, v4);
    CHECKF(f.avx512_bf16 == (v4 && bf16), "AVX512_BF16: detected %d, /proc/cpuinfo %d",
           f.avx512_bf16, bf16);
    badam_cpu_path best = v4 ? BADAM_CPU_AVX512 : v3 ? BADAM_CPU_AVX2 : BADAM_CPU_PORTABLE;
    CHECK(badam_cpu_best() == best);
    fprintf(stderr, "  this CPU: AVX2+FMA %s, AVX-512 %s, AVX512_BF16 %s\n", v3 ? "yes" : "no",
            v4 ? "yes" : "no", bf16 ? "yes" : "no");
}

static void test_env(void) {
    char saved[64] = "";
    const char *env = getenv("BADAM_CPU");
    if (env) snprintf(saved, sizeof saved, "%s", env);
    badam_cpu_path before = badam_cpu_active();
    badam_error err = {0};

    setenv("BADAM_CPU", "sse9", 1);
    CHECK(badam_cpu_check_env(&err) == BADAM_E_INVALID);
    CHECKF(strstr(err.message, "BADAM_CPU") && strstr(err.message, "sse9"), "%s", err.message);
    CHECK(badam_cpu_active() == before); /* a refused value changes nothing */
    for (int p = 0; p < BADAM_CPU_PATH_COUNT; p++) {
        setenv("BADAM_CPU", badam_cpu_path_name((badam_cpu_path)p), 1);
        badam_status st = badam_cpu_check_env(&err);
        if (badam_cpu_supports((badam_cpu_path)p)) {
            CHECK(st == BADAM_OK && badam_cpu_active() == (badam_cpu_path)p);
        } else {
            CHECK(st == BADAM_E_UNSUPPORTED);
            CHECKF(strstr(err.message, "cannot run"), "%s", err.message);
            CHECK(badam_cpu_set_path((badam_cpu_path)p, &err) == BADAM_E_UNSUPPORTED);
        }
    }
    setenv("BADAM_CPU", "auto", 1);
    CHECK(badam_cpu_check_env(&err) == BADAM_OK && badam_cpu_active() == badam_cpu_best());
    if (saved[0])
        setenv("BADAM_CPU", saved, 1);
    else
        unsetenv("BADAM_CPU");
    CHECK(badam_cpu_set_path(before, &err) == BADAM_OK);
}

/* Inputs and outputs of one run of every dispatched kernel. */
enum { N_ROWS = 37, C = 80, V = 1000, B = 2, T = 70, H = 2, D = 24 };
typedef struct kernel_outputs {
    float rms_y[N_ROWS * C], rms_dx[N_ROWS * C], sw_h[N_ROWS * C], sw_dg[N_ROWS * C],
        sw_du[N_ROWS * C];
    float ce_dz[V], ce_loss;
    float at_out[B * T * H * D], at_lse[B * H * T], at_dq[B * T * H * D], at_dk[B * T * H * D],
        at_dv[B * T * H * D];
    uint16_t bf[N_ROWS * C];
} kernel_outputs;

typedef struct kernel_inputs {
    float x[N_ROWS * C], w[N_ROWS * C], dy[N_ROWS * C], z[V];
    float q[B * T * H * D], k[B * T * H * D], v[B * T * H * D], dout[B * T * H * D];
} kernel_inputs;

/* Runs kernel `which` (0..6); returns its name. */
static const char *run_kernel(int which, const kernel_inputs *in, kernel_outputs *o) {
    float rstd[N_ROWS];
    switch (which) {
    case 0:
        rmsnorm_forward(o->rms_y, rstd, in->x, in->w, N_ROWS, C, 1e-5f);
        return "rmsnorm_fwd";
    case 1:
        rmsnorm_forward(o->rms_y, rstd, in->x, in->w, N_ROWS, C, 1e-5f);
        memset(o->rms_dx, 0, sizeof o->rms_dx);
        rmsnorm_backward(o->rms_dx, NULL, in->dy, in->x, in->w, rstd, N_ROWS, C);
        return "rmsnorm_bwd";
    case 2:
        swiglu_forward(o->sw_h, in->x, in->w, (size_t)N_ROWS * C);
        return "swiglu_fwd";
    case 3:
        swiglu_backward(o->sw_dg, o->sw_du, in->dy, in->x, in->w, (size_t)N_ROWS * C);
        return "swiglu_bwd";
    case 4:
        o->ce_loss = cross_entropy_row(o->ce_dz, in->z, V, 17, 0.5f);
        return "cross_entropy";
    case 5:
        attention_forward(o->at_out, o->at_lse, in->q, in->k, in->v, B, T, H, H, D, NULL, NULL);
        attention_backward(o->at_dq, o->at_dk, o->at_dv, in->dout, o->at_out, o->at_lse, in->q,
                           in->k, in->v, B, T, H, H, D, NULL, NULL);
        return "attention";
    default:
        convert_f32_to_bf16(o->bf, in->x, (size_t)N_ROWS * C);
        return "convert_bf16";
    }
}
#define N_KERNELS 7

static void compare_outputs(const kernel_outputs *a, const kernel_outputs *ref, const char *path) {
    CHECK_CLOSE(a->rms_y, ref->rms_y, N_ROWS * C, 1e-6, 1e-5, "%s: rmsnorm y", path);
    CHECK_CLOSE(a->rms_dx, ref->rms_dx, N_ROWS * C, 1e-6, 1e-5, "%s: rmsnorm dx", path);
    CHECK_CLOSE(a->sw_h, ref->sw_h, N_ROWS * C, 1e-6, 1e-5, "%s: swiglu h", path);
    CHECK_CLOSE(a->sw_dg, ref->sw_dg, N_ROWS * C, 1e-6, 1e-5, "%s: swiglu dg", path);
    CHECK_CLOSE(a->sw_du, ref->sw_du, N_ROWS * C, 1e-6, 1e-5, "%s: swiglu du", path);
    CHECK_CLOSE(a->ce_dz, ref->ce_dz, V, 1e-8, 1e-5, "%s: cross-entropy dz", path);
    CHECK_NEAR(a->ce_loss, ref->ce_loss, 1e-6, 1e-6, "%s: cross-entropy loss", path);
    size_t nq = (size_t)B * T * H * D;
    CHECK_CLOSE(a->at_out, ref->at_out, nq, 1e-6, 1e-5, "%s: attention out", path);
    CHECK_CLOSE(a->at_lse, ref->at_lse, (size_t)B * H * T, 1e-6, 1e-5, "%s: attention lse", path);
    CHECK_CLOSE(a->at_dq, ref->at_dq, nq, 1e-6, 1e-4, "%s: attention dq", path);
    CHECK_CLOSE(a->at_dk, ref->at_dk, nq, 1e-6, 1e-4, "%s: attention dk", path);
    CHECK_CLOSE(a->at_dv, ref->at_dv, nq, 1e-6, 1e-4, "%s: attention dv", path);
    CHECKF(!memcmp(a->bf, ref->bf, sizeof a->bf), "%s: bf16 conversion is exact on every path",
           path);
}

static void test_dispatch(void) {
    kernel_inputs *in = malloc(sizeof *in);
    kernel_outputs *out[BADAM_CPU_PATH_COUNT] = {0};
    test_rng rng;
    test_rng_seed(&rng, 5);
    test_fill_normal(&rng, in->x, N_ROWS * C, 1.0f);
    test_fill_normal(&rng, in->w, N_ROWS * C, 1.0f);
    test_fill_normal(&rng, in->dy, N_ROWS * C, 1.0f);
    test_fill_normal(&rng, in->z, V, 3.0f);
    size_t nq = (size_t)B * T * H * D;
    test_fill_normal(&rng, in->q, nq, 1.0f);
    test_fill_normal(&rng, in->k, nq, 1.0f);
    test_fill_normal(&rng, in->v, nq, 1.0f);
    test_fill_normal(&rng, in->dout, nq, 1.0f);
    badam_cpu_path before = badam_cpu_active();
    badam_error err = {0};
    char ran[128] = "", skipped[128] = "";
    for (int p = 0; p < BADAM_CPU_PATH_COUNT; p++) {
        const char *name = badam_cpu_path_name((badam_cpu_path)p);
        if (badam_cpu_set_path((badam_cpu_path)p, &err) != BADAM_OK) {
            strcat(skipped, " "), strcat(skipped, name);
            continue;
        }
        strcat(ran, " "), strcat(ran, name);
        out[p] = calloc(1, sizeof *out[p]);
        for (int kidx = 0; kidx < N_KERNELS; kidx++) {
            badam_cpu_trace(1);
            const char *kernel = run_kernel(kidx, in, out[p]);
            badam_cpu_trace(0);
            uint64_t counts[BADAM_CPU_PATH_COUNT];
            badam_cpu_trace_counts(counts);
            for (int q = 0; q < BADAM_CPU_PATH_COUNT; q++)
                CHECKF(q == p ? counts[q] > 0 : counts[q] == 0,
                       "%s on path %s: %llu calls of the %s variant", kernel, name,
                       (unsigned long long)counts[q], badam_cpu_path_name((badam_cpu_path)q));
        }
    }
    for (int p = 1; p < BADAM_CPU_PATH_COUNT; p++)
        if (out[p]) compare_outputs(out[p], out[0], badam_cpu_path_name((badam_cpu_path)p));
    CHECK(badam_cpu_set_path(before, &err) == BADAM_OK);
    fprintf(stderr, "  dispatch checked on:%s; this CPU cannot run:%s\n", ran,
            skipped[0] ? skipped : " (none)");
    for (int p = 0; p < BADAM_CPU_PATH_COUNT; p++) free(out[p]);
    free(in);
}

/* badam_convert's bulk bf16 <-> fp32 loops, on every path the CPU runs, give the bits of the
 * scalar badam_bf16_to_f32 / badam_f32_to_bf16: all 65536 bf16 values, and fp32 bit patterns
 * covering ties, NaNs (signalling and quiet, both signs), infinities, subnormals and random bits.
 */
/* bf16 -> fp32 of n values starting at src + off (all offsets 0..3, lengths 0..70 covering every
 * vector tail), into dst + off with a guard value around it: returns the number of outputs that
 * differ from the scalar conversion plus guard values that were overwritten. */
static int convert_tails(const uint16_t *src, float *dst) {
    int bad = 0;
    const uint32_t guard_bits = 0x7fa5a5a5u;
    for (int off = 0; off < 4; off++)
        for (int n = 0; n <= 70; n++) {
            for (int i = 0; i < 80; i++) memcpy(&dst[i], &guard_bits, 4);
            const uint16_t *s = src + 0x7f00 + 37 * n + off; /* NaNs, infinities, ordinary */
            badam_convert(dst + off, BADAM_DTYPE_F32, s, BADAM_DTYPE_BF16, (size_t)n);
            for (int i = 0; i < 80; i++) {
                uint32_t got, want = guard_bits;
                memcpy(&got, &dst[i], 4);
                if (i >= off && i < off + n) {
                    float w = badam_bf16_to_f32(s[i - off]);
                    memcpy(&want, &w, 4);
                }
                bad += got != want;
            }
        }
    return bad;
}

static void test_convert_paths(void) {
    enum { NB = 65536, NF = 1 << 18 };
    uint16_t *h = malloc(NB * sizeof *h), *hb = malloc(NF * sizeof *hb);
    float *f = malloc(NB * sizeof *f), *x = malloc(NF * sizeof *x);
    test_rng rng;
    test_rng_seed(&rng, 9);
    for (int i = 0; i < NB; i++) h[i] = (uint16_t)i;
    const uint32_t special[] = {0x7f800000u, 0xff800000u, 0x7f800001u, 0x7fc00000u, 0xffffffffu,
                                0x00000001u, 0x807fffffu, 0x3f808000u, 0x3f818000u, 0x3f807fffu,
                                0x7f7fffffu, 0x00008000u, 0x7fff8000u, 0x00000000u, 0x80000000u};
    for (int i = 0; i < NF; i++) {
        uint32_t u = i < 15 ? special[i] : test_rng_u32(&rng);
        if (i % 7 == 1) u = (u & 0xffff0000u) | 0x8000u; /* exact ties */
        memcpy(&x[i], &u, 4);
    }
    badam_cpu_path before = badam_cpu_active();
    badam_error err = {0};
    for (int p = 0; p < BADAM_CPU_PATH_COUNT; p++) {
        if (badam_cpu_set_path((badam_cpu_path)p, &err) != BADAM_OK) continue;
        const char *name = badam_cpu_path_name((badam_cpu_path)p);
        badam_convert(f, BADAM_DTYPE_F32, h, BADAM_DTYPE_BF16, NB);
        int bad = 0;
        for (int i = 0; i < NB; i++) {
            float want = badam_bf16_to_f32(h[i]);
            bad += memcmp(&f[i], &want, 4) != 0;
        }
        CHECKF(bad == 0, "%s: bf16 -> fp32 differs from the scalar conversion in %d values", name,
               bad);
        bad = convert_tails(h, f);
        CHECKF(bad == 0, "%s: bf16 -> fp32 at odd offsets/lengths: %d wrong or overwritten", name,
               bad);
        badam_convert(hb, BADAM_DTYPE_BF16, x, BADAM_DTYPE_F32, NF);
        bad = 0;
        for (int i = 0; i < NF; i++) bad += hb[i] != badam_f32_to_bf16(x[i]);
        CHECKF(bad == 0, "%s: fp32 -> bf16 differs from the scalar rounding in %d values", name,
               bad);
    }
    CHECK(badam_cpu_set_path(before, &err) == BADAM_OK);
    free(h), free(hb), free(f), free(x);
}

/* Disassembles libbadam.a: functions outside the CPU variants must not use VEX/EVEX vector
 * instructions (v-prefixed mnemonics on xmm/ymm/zmm registers), and the AVX-512 variants must use
 * zmm registers somewhere. */
static void test_baseline_build(void) {
#if defined(__x86_64__)
    const char *bin = getenv("BADAM_BINARY_DIR");
    if (!bin || test_system("command -v objdump >/dev/null 2>&1") != 0) {
        fprintf(stderr, "  objdump or BADAM_BINARY_DIR missing: build flags not checked\n");
        return;
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "objdump -d --no-show-raw-insn '%s/libbadam.a'", bin);
    FILE *f = popen(cmd, "r");
    CHECK(f != NULL);
    if (!f) return;
    char line[1024], fn[512] = "";
    int n_fns = 0, n_zmm_fns = 0, last_zmm_fn = -1, n_bad = 0;
    while (fgets(line, sizeof line, f)) {
        char *lt = strstr(line, ">:");
        if (lt && line[0] != ' ') {
            char *open = strchr(line, '<');
            if (open && open < lt) {
                snprintf(fn, sizeof fn, "%.*s", (int)(lt - open - 1), open + 1);
                n_fns++;
            }
            continue;
        }
        char *tab = strchr(line, '\t');
        if (!tab || !fn[0]) continue;
        const char *insn = tab + 1;
        int vector = insn[0] == 'v' && strpbrk(insn, "%") &&
                     (strstr(insn, "mm") != NULL); /* %xmm, %ymm, %zmm operands */
        int variant = strstr(fn, "_avx2") || strstr(fn, "_avx512");
        if (vector && !variant) {
            if (n_bad++ < 5) fprintf(stderr, "  baseline function %s uses %s", fn, insn);
        }
        if (strstr(fn, "_avx512") && strstr(insn, "%zmm") && last_zmm_fn != n_fns)
            n_zmm_fns++, last_zmm_fn = n_fns;
    }
    int rc = pclose(f);
    CHECK(rc == 0 && n_fns > 100);
    CHECKF(n_bad == 0, "%d VEX/EVEX instructions outside the CPU variants (a -march flag?)", n_bad);
#if defined(__SANITIZE_ADDRESS__)
    /* the sanitizer build is -O1: no loop vectoriser, so variants differ in ISA but not width */
    (void)n_zmm_fns;
#else
    CHECKF(n_zmm_fns >= 5, "only %d AVX-512 variants use zmm registers", n_zmm_fns);
#endif
    fprintf(stderr,
            "  libbadam.a: %d functions, baseline x86-64 outside the variants; %d AVX-512 "
            "variants use 512-bit registers\n",
            n_fns, n_zmm_fns);
#endif
}

int main(void) {
    RUN_TEST(test_detection);
    RUN_TEST(test_env);
    RUN_TEST(test_dispatch);
    RUN_TEST(test_convert_paths);
    RUN_TEST(test_baseline_build);
    return test_result();
}
