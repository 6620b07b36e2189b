/* Sharded frozen weights at run time (`badam train --shard-weights`, src/train/shard.h), 2 ranks
 * x 1 OpenMP thread:
 *  - BAdam (K = 2 over 8 steps: 3 block switches) and SGD-BCD (with --recompute: the layers
 *    are gathered again for recomputation) sharded on 2 ranks end with the
 *    1-process unsharded run's fp32 weights within 1e-5 of each tensor's largest value and the
 *    same losses (1e-5 relative) and token counts; and with exactly the bytes of the unsharded
 *    2-rank run, fp32 and bf16 (sharding only moves bytes: the sums are the data-parallel ones);
 *    The final model and the last checkpoint (model, optimizer state) hold the same bytes as
 *    the unsharded run's: rank 0 streams them, gathering one layer at a time;
 *  - rank 0's measured peak per category (memory.json) equals `badam plan --world-size 2
 *    --shard-weights --json` in a run that writes checkpoints and the model (the save holds
 *    nothing beyond the plan), and differs from the unsharded 2-rank plan (the peaks count
 *    from the moment the shards are made: the load is not sharded yet);
 *  - paused at step 5 and resumed, sharded, equals the uninterrupted sharded run (same bytes);
 *    paused sharded on 2 ranks and resumed in 1 process, it is within 1e-5 (fp32);
 *  - a method that cannot shard is refused, naming it; one rank runs unsharded, saying so.
 * Skips (77, with the reason) when the library was built without MPI or mpirun is missing. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "badam/comm.h"
#include "io/files.h"
#include "io/safetensors.h"
#include "model_fixtures.h"
#include "run_compare.h"

#define TOL 1e-5

static const char *CATS[] = {"weights",   "master",      "gradients",
                             "optimizer", "activations", "workspace"};
enum { N_CATS = 6 };

static char g_model[1024], g_data[1024];

/* `badam train` on the fixture: one process (ranks 1) or 2 ranks through --nproc. */
static int train(const char *out, int ranks, const char *args) {
    char cmd[8192], np[32] = "";
    if (ranks > 1) snprintf(np, sizeof np, "--nproc %d", ranks);
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 %s train --model %s --data %s --out %s --quiet --seq-len 48 "
             "--batch-size 4 %s %s > %s.log 2>&1",
             getenv("BADAM_CLI"), g_model, g_data, out, np, args, out);
    return test_system(cmd);
}

static int log_has(const char *out, const char *text) {
    char path[1200], *s = NULL;
    size_t n = 0;
    badam_error err = {0};
    snprintf(path, sizeof path, "%s.log", out);
    if (io_read_file(path, &s, &n, &err)) return 0;
    int has = strstr(s, text) != NULL;
    free(s);
    return has;
}

/* The files a/NAME and b/NAME hold the same bytes. */
static void check_same_file(const char *what, const char *a, const char *b, const char *name) {
    char pa[1300], pb[1300], *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    badam_error err = {0};
    snprintf(pa, sizeof pa, "%s/%s", a, name);
    snprintf(pb, sizeof pb, "%s/%s", b, name);
    if (io_read_file(pa, &x, &nx, &err) || io_read_file(pb, &y, &ny, &err))
        CHECKF(0, "%s: %s", what, err.message);
    else
        CHECKF(nx == ny && !memcmp(x, y, nx), "%s: %s and %s differ", what, pa, pb);
    free(x);
    free(y);
}

/* Sharded on 2 ranks against 1 process (fp32: 1e-5) and unsharded 2 ranks (same bytes). */
static void check_run(const char *name, const char *dtype, const char *args) {
    char base[1024], one[1100], dp[1100], sh[1100], a[1024], b[1100];
    snprintf(base, sizeof base, "%s", test_workdir(name));
    snprintf(one, sizeof one, "%s/one", base);
    snprintf(dp, sizeof dp, "%s/two", base);
    snprintf(sh, sizeof sh, "%s/two-sharded", base);
    snprintf(a, sizeof a, "--dtype %s %s", dtype, args);
    snprintf(b, sizeof b, "%s --shard-weights", a);
    int is_fp32 = !strcmp(dtype, "fp32");
    if ((is_fp32 && train(one, 1, a)) || train(dp, 2, a) || train(sh, 2, b)) {
        CHECKF(0, "%s: a run failed (%s.log, %s.log, %s.log)", name, one, dp, sh);
        return;
    }
    check_same_file(name, dp, sh, "model.safetensors");
    /* the last checkpoint, streamed the same way */
    check_same_file(name, dp, sh, "checkpoint/model.safetensors");
    check_same_file(name, dp, sh, "checkpoint/optimizer.safetensors");
    run_check_curves(name, dp, sh, TOL);
    if (!is_fp32) return;
    char fa[1300], fb[1300];
    snprintf(fa, sizeof fa, "%s/model.safetensors", one);
    snprintf(fb, sizeof fb, "%s/model.safetensors", sh);
    run_check_tensors(name, fa, fb, TOL);
    run_check_curves(name, one, sh, TOL);
}

static void test_equals_unsharded(void) {
    /* K = 2 over 8 steps: blocks switch at steps 2, 4 and 6 */
    const char *badam = "--method badam --switch-every 2 --max-steps 8 --lr 1e-4 --clip 0.5";
    check_run("shard-badam-fp32", "fp32", badam);
    check_run("shard-badam-bf16", "bf16", badam);
    check_run("shard-sgd-bcd", "fp32",
              "--method sgd-bcd --switch-every 2 --max-steps 8 --lr 1e-2 --recompute");
}

/* Bytes by category of `badam plan --world-size 2 [--shard-weights] --json` (badam). */
static int plan(const char *dir, const char *extra, double *bytes) {
    char args[2048];
    static char out[16384];
    snprintf(args, sizeof args,
             "plan --model %s --method badam --batch-size 4 --seq-len 48 --world-size 2 %s --json",
             g_model, extra);
    int rc = test_run_cli(dir, NULL, args, out, sizeof out);
    const char *brace = strchr(out, '{');
    json_t *j = rc || !brace ? NULL : json_loads(brace, JSON_DISABLE_EOF_CHECK, NULL);
    const json_t *m = json_object_get(j, "badam");
    for (int c = 0; c < N_CATS; c++) {
        const json_t *v = json_object_get(m, CATS[c]);
        bytes[c] = json_is_integer(v) ? (double)json_integer_value(v) : -1;
    }
    json_decref(j);
    if (!m) fprintf(stderr, "badam %s (rc %d):\n%s\n", args, rc, out);
    return m ? 0 : 1;
}

static void test_memory_is_planned(void) {
    const char *dir = test_workdir("shard-memory");
    char out[1100], path[1300];
    snprintf(out, sizeof out, "%s/run", dir);
    /* ascending with K = 1 visits every block, so the activation peak is the planned worst case */
    if (train(out, 2,
              "--method badam --max-steps 4 --switch-every 1 --switch-mode ascending "
              "--no-shuffle --lr 1e-4 --shard-weights")) {
        CHECKF(0, "see %s.log", out);
        return;
    }
    /* the checkpoints and the model were saved, streamed through the gather buffer */
    snprintf(path, sizeof path, "%s/checkpoint/model.safetensors", out);
    CHECKF(io_is_file(path), "%s missing", path);
    snprintf(path, sizeof path, "%s/memory.json", out);
    json_t *j = json_load_file(path, 0, NULL);
    const json_t *m = json_object_get(j, "measured_peak");
    double got[N_CATS], want[N_CATS], unsharded[N_CATS];
    for (int c = 0; c < N_CATS; c++) {
        const json_t *v = json_object_get(m, CATS[c]);
        got[c] = json_is_integer(v) ? (double)json_integer_value(v) : -1;
    }
    json_decref(j);
    if (plan(dir, "--shard-weights", want) || plan(dir, "", unsharded)) {
        CHECK(0);
        return;
    }
    for (int c = 0; c < N_CATS; c++)
        CHECKF(got[c] == want[c], "%s: measured %.0f on rank 0, planned %.0f per rank", CATS[c],
               got[c], want[c]);
    /* the comparison tells the layouts apart (on this 3-layer model the whole embedding and
     * head and the two layer buffers outweigh what sharding saves) */
    CHECKF(got[0] != unsharded[0], "weights: sharded %.0f, unsharded plan %.0f", got[0],
           unsharded[0]);
}

static void test_pause_resume(void) {
    char base[1024], a[1100], b[1100];
    const char *args = "--dtype bf16 --method badam --switch-every 2 --max-steps 8 --lr 1e-4 "
                       "--shard-weights";
    char paused[512], resumed[512];
    snprintf(base, sizeof base, "%s", test_workdir("shard-resume"));
    snprintf(a, sizeof a, "%s/whole", base);
    snprintf(b, sizeof b, "%s/paused", base);
    snprintf(paused, sizeof paused, "%s --stop-at-step 5", args);
    snprintf(resumed, sizeof resumed, "%s --resume", args);
    if (train(a, 2, args) || train(b, 2, paused) || train(b, 2, resumed)) {
        CHECKF(0, "a run failed (%s.log, %s.log)", a, b);
        return;
    }
    check_same_file("paused and resumed", a, b, "model.safetensors");
    /* checkpoints hold the whole model and block state: paused sharded on 2 ranks, resumed in
     * one process, as the uninterrupted sharded run up to the rounding of the sums (fp32) */
    const char *f32 = "--dtype fp32 --method badam --switch-every 2 --max-steps 8 --lr 1e-4";
    char c[1100], d[1100], fa[1300], fb[1300];
    snprintf(c, sizeof c, "%s/whole-fp32", base);
    snprintf(d, sizeof d, "%s/two-then-one", base);
    snprintf(a, sizeof a, "%s --shard-weights", f32);
    snprintf(paused, sizeof paused, "%s --shard-weights --stop-at-step 5", f32);
    snprintf(resumed, sizeof resumed, "%s --resume", f32);
    if (train(c, 2, a) || train(d, 2, paused) || train(d, 1, resumed)) {
        CHECKF(0, "a run failed (%s.log, %s.log)", c, d);
        return;
    }
    snprintf(fa, sizeof fa, "%s/model.safetensors", c);
    snprintf(fb, sizeof fb, "%s/model.safetensors", d);
    run_check_tensors("paused sharded on 2 ranks, resumed on 1", fa, fb, TOL);
}

static void test_refused(void) {
    char out[1100];
    snprintf(out, sizeof out, "%s/adam", test_workdir("shard-refused"));
    CHECK(train(out, 2, "--method adam --max-steps 2 --shard-weights") != 0);
    CHECKF(log_has(out, "--shard-weights: method adam keeps more than one block's state"),
           "see %s.log", out);
    /* one rank: nothing to shard, the run is the unsharded one (and says so) */
    snprintf(out, sizeof out, "%s/one", test_workdir("shard-refused"));
    CHECK(train(out, 1, "--method badam --max-steps 2 --shard-weights --no-checkpoint") == 0);
    CHECKF(log_has(out, "--shard-weights on one rank has nothing to shard"), "see %s.log", out);
}

int main(void) {
    if (!getenv("BADAM_CLI")) {
        fprintf(stderr, "SKIP: BADAM_CLI is not set (run through ctest)\n");
        return TEST_SKIP_CODE;
    }
    const char *mpirun = getenv("BADAM_MPIRUN");
    if (!badam_comm_mpi_available() || !mpirun || !*mpirun || access(mpirun, X_OK)) {
        fprintf(stderr, "SKIP: badam was built without MPI or mpirun is missing (apt install "
                        "libopenmpi-dev openmpi-bin, then rebuild)\n");
        return TEST_SKIP_CODE;
    }
    /* as test_mpi: the full unwinder lets LeakSanitizer match Open MPI's frames */
    const char *asan = getenv("ASAN_OPTIONS");
    if (asan) {
        static char opts[2048];
        snprintf(opts, sizeof opts, "%s%sfast_unwind_on_malloc=0", asan, *asan ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
    }
    const char *dir = test_workdir("shard-fixture");
    snprintf(g_model, sizeof g_model, "%s/model", dir);
    snprintf(g_data, sizeof g_data, "%s/train.jsonl", dir);
    /* as test_mpi's fixture (no q/k/v bias), with 3 layers: units of odd sizes */
    llama_config cfg = fixture_config(64, 128, 3, 4, 2, 301, 0, 0, 0);
    if (fixture_write_model(g_model, &cfg, BADAM_DTYPE_F32, 9, 0.05f) ||
        fixture_write_tokenized_data(g_data, 32, 8, 40, 301, 10))
        return 1;
    RUN_TEST(test_equals_unsharded);
    RUN_TEST(test_memory_is_planned);
    RUN_TEST(test_pause_resume);
    RUN_TEST(test_refused);
    return test_result();
}
