/* Data-parallel training over MPI (2 ranks, 1 OpenMP thread each, as the CI's 2 cores allow):
 * - 2 ranks and 1 process with the same global batch end with the same fp32 weights (per tensor,
 *   max |a - b| within 1e-5 of the tensor's largest |value|) and the same loss curve (1e-5
 *   relative) and trained-token counts (exact) for BAdam (3+ block switches), Adam, LoRA with
 *   dropout (its adapter), SGD-BCD and LOMO, and for badam-ratio (2 mask renewals), MeZO and
 *   MeZO-LoRA (losses summed over ranks; forward-only memory as planned on 2 ranks), GaLore
 *   (3 projector refreshes; also per layer) and bottleneck adapters; the sums over ranks differ
 *   from one process's only in rounding;
 * - a --batch-size the ranks do not divide is refused, and a last batch that leaves a rank without
 *   rows for a method that communicates inside its step; ranks whose options or data differ are
 *   refused at start, naming the difference; a caller's own method that declares
 *   data_parallel = 0 is refused with more than one rank (every built-in one runs data parallel;
 *   a library run with a 2-rank communicator of the test's own, also without MPI);
 * - a rank stopped with SIGSTOP makes the other fail within --comm-timeout naming the lost rank;
 *   a rank killed with SIGKILL ends the job (non-zero) and the resumed run from the last
 *   checkpoint ends with the uninterrupted run's weights;
 * - a run paused on 2 ranks and resumed on 1 ends as the uninterrupted 1-process run (resume with
 *   another number of ranks is exact up to the rounding of the sums).
 * Skips (77, with the reason) the runs under mpirun when the library was built without MPI or
 * mpirun is missing. */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "badam/comm.h"
#include "badam/train.h"
#include "io/files.h"
#include "io/safetensors.h"
#include "model_fixtures.h"
#include "optim/method.h"
#include "run_compare.h"

#define TOL 1e-5

static char g_model[1024], g_data[1024], g_mpirun[2048];
static char g_two[1100]; /* the 2-rank run's folder of the last check_method */

/* `badam train` on the fixture: one process (ranks 0) or under mpirun with `ranks` ranks. */
static int train(const char *out, int ranks, const char *args) {
    char cmd[8192];
    if (ranks > 1)
        snprintf(cmd, sizeof cmd,
                 "OMP_NUM_THREADS=1 %s train --model %s --data %s --out %s --quiet --dtype fp32 "
                 "--seq-len 48 --batch-size 4 --nproc %d %s > %s.log 2>&1",
                 getenv("BADAM_CLI"), g_model, g_data, out, ranks, args, out);
    else
        snprintf(cmd, sizeof cmd,
                 "OMP_NUM_THREADS=1 %s train --model %s --data %s --out %s --quiet --dtype fp32 "
                 "--seq-len 48 --batch-size 4 %s > %s.log 2>&1",
                 getenv("BADAM_CLI"), g_model, g_data, out, args, out);
    return test_system(cmd);
}

/* The same run on 1 process and on 2 ranks. */
static void check_method(const char *name, const char *args, const char *file) {
    char base[1024], one[1100], two[1100], fa[1300], fb[1300];
    snprintf(base, sizeof base, "%s", test_workdir(name));
    snprintf(one, sizeof one, "%s/one", base);
    snprintf(two, sizeof two, "%s/two", base);
    snprintf(g_two, sizeof g_two, "%s", two);
    if (train(one, 1, args) || train(two, 2, args)) {
        CHECKF(0, "%s: a run failed (%s.log, %s.log)", name, one, two);
        return;
    }
    snprintf(fa, sizeof fa, "%s/%s", one, file);
    snprintf(fb, sizeof fb, "%s/%s", two, file);
    run_check_tensors(name, fa, fb, TOL);
    run_check_curves(name, one, two, TOL);
}

/* The buckets of the last 2-rank run (g_two) that started their all-reduce inside backward
 * (train/grad_buckets.h), from rank 0's "communication" line; -1 when the line is missing. */
static long overlapped_buckets(void) {
    char path[1200], *s = NULL;
    size_t n = 0;
    badam_error err = {0};
    snprintf(path, sizeof path, "%s.log", g_two);
    if (io_read_file(path, &s, &n, &err)) return -1;
    const char *at = strstr(s, " buckets overlapped with backward");
    long v = -1;
    if (at) {
        while (at > s && at[-1] >= '0' && at[-1] <= '9') at--;
        v = atol(at);
    }
    free(s);
    return v;
}

/* The bucketed path ran: `want` buckets overlapped (-2: any number above 0). With it, the weight
 * comparison of check_method is the test that fails when a bucket is not waited for (its sum is
 * then never copied back, so the ranks train on their own halves of the batch). */
static void check_overlapped(const char *name, long want) {
    long got = overlapped_buckets();
    if (want == -2)
        CHECKF(got > 0, "%s: %ld buckets overlapped with backward, want some (%s.log)", name, got,
               g_two);
    else
        CHECKF(got == want, "%s: %ld buckets overlapped with backward, want %ld (%s.log)", name,
               got, want, g_two);
}

static void test_methods(void) {
    /* K = 2 over 8 steps: blocks switch at steps 2, 4 and 6 */
    check_method("mpi-badam", "--method badam --switch-every 2 --max-steps 8 --lr 1e-4 --clip 0.5",
                 "model.safetensors");
    check_overlapped("mpi-badam", -2);
    check_method("mpi-adam", "--method adam --max-steps 6 --lr 1e-4", "model.safetensors");
    check_overlapped("mpi-adam", 6 * 39); /* every step, each of the fixture's 39 tensors */
    /* --eps 1e-2 (above sqrt(v)) keeps Adam's step linear in the gradient: B starts at 0, and
     * with the default eps the elements whose gradient changes sign are steps of +-lr chosen by
     * the rounding of the sums (2e-5 to 7e-5 of B's largest value here, between builds) */
    check_method("mpi-lora",
                 "--method lora --lora-rank 4 --lora-dropout 0.2 --max-steps 6 --lr 1e-1 --eps "
                 "1e-2 --grad-accum 2",
                 "adapter/adapter_model.safetensors");
    check_overlapped("mpi-lora", 0); /* backward announces no adapter: reduced after it */
    check_method("mpi-sgd-bcd", "--method sgd-bcd --switch-every 2 --max-steps 8 --lr 1e-2",
                 "model.safetensors");
    check_overlapped("mpi-sgd-bcd", -2);
    check_method("mpi-lomo", "--method lomo --max-steps 6 --lr 1e-2 --clip 0", "model.safetensors");
    check_overlapped("mpi-lomo", 0); /* LOMO reduces each gradient inside its own grad_ready */
}

/* After the adapter's check_method: rank 1 starts its bottleneck adapters from the trained ones
 * of the 1-process run (--init-adapter is not part of the run record, so the start-up check lets
 * it through), rank 0 from the seeded ones. Rank 0's adapters, broadcast, are what every rank
 * trains: the run ends as the 1-process run without --init-adapter. */
static void check_adapter_broadcast(const char *args) {
    char base[1100], out[1200], cmd[8192], fa[1300], fb[1300];
    snprintf(base, sizeof base, "%s", g_two);
    *strrchr(base, '/') = 0;
    snprintf(out, sizeof out, "%s/rank1-init", base);
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 %s -np 2 sh -c 'exec %s train --model %s --data %s --out %s "
             "--quiet --dtype fp32 --seq-len 48 --batch-size 4 %s $([ $OMPI_COMM_WORLD_RANK = 1 ] "
             "&& echo --init-adapter %s/one/adapter)' > %s.log 2>&1",
             g_mpirun, getenv("BADAM_CLI"), g_model, g_data, out, args, base, out);
    if (test_system(cmd)) {
        CHECKF(0, "rank 1 with --init-adapter: the run failed (%s.log)", out);
        return;
    }
    snprintf(fa, sizeof fa, "%s/one/adapter/adapter_model.safetensors", base);
    snprintf(fb, sizeof fb, "%s/adapter/adapter_model.safetensors", out);
    run_check_tensors("adapter, rank 1 with --init-adapter", fa, fb, TOL);
}

/* After a check_method with `args`: paused after step 3 on 2 ranks, resumed on 1, the run ends
 * as its 1-process run (the method's checkpoint parts are rank-independent). */
static void check_resume_other_world(const char *args, const char *file) {
    char base[1100], out[1200], paused[1024], resumed[1024], fa[1300], fb[1300];
    snprintf(base, sizeof base, "%s", g_two);
    *strrchr(base, '/') = 0;
    snprintf(out, sizeof out, "%s/two-then-one", base);
    snprintf(paused, sizeof paused, "%s --stop-at-step 3", args);
    snprintf(resumed, sizeof resumed, "%s --resume", args);
    if (train(out, 2, paused) || train(out, 1, resumed)) {
        CHECKF(0, "paused on 2 ranks, resumed on 1: a run failed (%s.log)", out);
        return;
    }
    snprintf(fa, sizeof fa, "%s/one/%s", base, file);
    snprintf(fb, sizeof fb, "%s/%s", out, file);
    char what[1300];
    snprintf(what, sizeof what, "%s paused on 2 ranks, resumed on 1", strrchr(base, '/') + 1);
    run_check_tensors(what, fa, fb, TOL);
}

/* The last check_method's run on 2 ranks (rank 0's memory.json) was forward-only: no activations
 * kept for a backward, and every category's measured peak equal to the plan. */
static void check_forward_only(void) {
    char path[1300];
    snprintf(path, sizeof path, "%s/memory.json", g_two);
    json_t *j = json_load_file(path, 0, NULL);
    json_t *pred = json_object_get(j, "predicted"), *peak = json_object_get(j, "measured_peak");
    CHECKF(pred && peak, "%s: no memory.json", path);
    const char *key;
    json_t *v;
    json_object_foreach(peak, key, v) {
        json_int_t got = json_integer_value(v),
                   want = json_integer_value(json_object_get(pred, key));
        CHECKF(got == want, "%s: %s measured %lld, planned %lld bytes", path, key, (long long)got,
               (long long)want);
    }
    CHECKF(json_integer_value(json_object_get(peak, "activations")) == 0,
           "%s: activations kept on a forward-only run", path);
    json_decref(j);
}

/* The five newer methods, each over enough steps to pass its state changes. The Adam-based ones
 * use --eps 1e-2 as the LoRA run does (Adam's step stays linear in the gradient; with the default
 * eps the elements whose gradient is near 0 take steps of +-lr chosen by the rounding of the
 * sums: 1.4e-5 to 9e-5 of a tensor's largest value here at --lr 1e-3). */
static void test_newer_methods(void) {
    /* K = 2 over 6 steps: new masks and fresh state at steps 2 and 4 (scatter masks); the clip
     * (0.5) is active: the global norm is above it */
    const char *ratio = "--method badam-ratio --update-ratio 0.2 --mask-mode scatter "
                        "--switch-every 2 --max-steps 6 --lr 1e-2 --eps 1e-2 --clip 0.5";
    check_method("mpi-badam-ratio", ratio, "model.safetensors");
    check_resume_other_world(ratio, "model.safetensors"); /* inside the second period */
    /* the projected gradient from the losses summed over ranks; 2 samples per step */
    check_method("mpi-mezo", "--method mezo --mezo-samples 2 --max-steps 6 --lr 1e-3 --clip 0",
                 "model.safetensors");
    check_forward_only();
    /* --mezo-eps 1e-2: the rounding of the loss sums, divided by 2 eps, stays below 1e-6 */
    check_method("mpi-mezo-lora",
                 "--method mezo-lora --lora-rank 4 --lora-dropout 0 --mezo-samples 2 --mezo-eps "
                 "1e-2 --max-steps 6 --lr 1e-2 --clip 0",
                 "adapter/adapter_model.safetensors");
    check_forward_only();
    /* T = 2 over 6 steps: projectors from the SVD of the reduced gradient at steps 1, 3 and 5 */
    const char *galore = "--method galore --galore-rank 4 --galore-update-gap 2 --max-steps 6 "
                         "--lr 1e-2 --eps 1e-2 --clip 0.5 --grad-accum 2";
    check_method("mpi-galore", galore, "model.safetensors");
    check_resume_other_world(galore, "model.safetensors"); /* the projector of step 3 saved */
    check_method("mpi-galore-per-layer",
                 "--method galore --galore-per-layer --galore-rank 4 --galore-update-gap 2 "
                 "--max-steps 6 --lr 1e-2 --eps 1e-2 --clip 0",
                 "model.safetensors");
    const char *adapter = "--method adapter --adapter-size 8 --max-steps 6 --lr 1e-1 --eps 1e-2";
    check_method("mpi-adapter", adapter, "adapter/adapter_model.safetensors");
    check_adapter_broadcast(adapter);
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

static void test_refused(void) {
    char base[1024], out[1100], cmd[8192];
    snprintf(base, sizeof base, "%s", test_workdir("mpi-refused"));
    snprintf(out, sizeof out, "%s/odd", base);
    CHECK(train(out, 2, "--max-steps 2 --batch-size 3") != 0);
    CHECKF(log_has(out, "--batch-size 3 is not divisible by the 2 ranks"), "see %s.log", out);
    /* a method that communicates inside its step, with a last batch (31 = 5 x 6 + 1 examples)
     * that leaves a rank without rows */
    snprintf(out, sizeof out, "%s/short-batch", base);
    CHECK(train(out, 2, "--max-steps 2 --method mezo --clip 0 --val-size 1 --batch-size 6") != 0);
    CHECKF(log_has(out, "the last batch of an epoch has 1 sequences, so a rank would get none"),
           "see %s.log", out);
    /* rank 1 with another learning rate */
    snprintf(out, sizeof out, "%s/mismatch", base);
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 %s -np 2 sh -c 'exec %s train --model %s --data %s --out %s "
             "--quiet --max-steps 2 --lr 1e-$((3 + OMPI_COMM_WORLD_RANK))' > %s.log 2>&1",
             g_mpirun, getenv("BADAM_CLI"), g_model, g_data, out, out);
    CHECK(test_system(cmd) != 0);
    CHECKF(log_has(out, "rank 1 does not run what rank 0 runs") &&
               log_has(out, "--lr: rank 0 has \"0.001\", rank 1 \"0.0001\""),
           "the mismatch is not named (%s.log)", out);
}

/* Two ranks as the trainer sees them, with collectives that do nothing (the refusal comes first).
 */
static int two_rank(void *ctx) {
    (void)ctx;
    return 0;
}
static int two_size(void *ctx) {
    (void)ctx;
    return 2;
}
static badam_status two_f32(void *ctx, float *b, size_t n, badam_error *err) {
    (void)ctx, (void)b, (void)n, (void)err;
    return BADAM_OK;
}
static badam_status two_f64(void *ctx, double *b, size_t n, badam_error *err) {
    (void)ctx, (void)b, (void)n, (void)err;
    return BADAM_OK;
}
static badam_status two_rs(void *ctx, const float *s, float *r, size_t n, badam_error *err) {
    (void)ctx, (void)s, (void)r, (void)n, (void)err;
    return BADAM_OK;
}
static badam_status two_ag(void *ctx, const float *s, float *r, size_t n, badam_error *err) {
    (void)ctx, (void)s, (void)r, (void)n, (void)err;
    return BADAM_OK;
}
static badam_status two_bcast(void *ctx, void *b, size_t n, int root, badam_error *err) {
    (void)ctx, (void)b, (void)n, (void)root, (void)err;
    return BADAM_OK;
}
static badam_status two_barrier(void *ctx, badam_error *err) {
    (void)ctx, (void)err;
    return BADAM_OK;
}

/* Every built-in method runs data parallel; a caller's own method that declares data_parallel = 0
 * (here: Adam's table under another name) is refused with more than one rank, naming it. A
 * library run (no MPI needed). */
static void test_refused_method(void) {
    static const badam_comm_ops ops = {two_rank, two_size,  two_f32,     two_f64, two_rs,
                                       two_ag,   two_bcast, two_barrier, NULL,    NULL};
    badam_comm two = {&ops, NULL};
    for (int i = 0; i < TRAIN_METHOD_BUILTIN_COUNT; i++)
        CHECKF(train_method_builtin(i)->data_parallel, "%s: not data parallel",
               train_method_builtin(i)->name);
    train_method_registry reg;
    train_method_registry_init(&reg);
    train_method_ops mine = *train_method_find(NULL, "adam");
    mine.name = "adam-one-process";
    mine.data_parallel = 0;
    badam_error err = {0};
    CHECK_OK(train_method_register(&reg, &mine, &err), &err);
    train_config c;
    train_config_defaults(&c);
    c.model_dir = g_model, c.data_path = g_data;
    c.out_dir = test_workdir("mpi-refused-method");
    c.methods = &reg, c.method_name = mine.name;
    c.dtype = BADAM_DTYPE_F32;
    c.batch_size = 4, c.seq_len = 48, c.max_steps = 1;
    c.comm = &two;
    train_report r;
    CHECK(train_run(&c, &r, &err) == BADAM_E_UNSUPPORTED);
    CHECKF(strstr(err.message, "--method adam-one-process does not run data parallel yet (2 "
                               "ranks)"),
           "%s", err.message);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Starts `args` on 2 ranks under mpirun, each rank's pid in OUT.pid.RANK; returns mpirun's pid. */
static pid_t start_ranks(const char *out, const char *args) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 exec %s -np 2 sh -c 'p=%s.pid.$OMPI_COMM_WORLD_RANK; "
             "echo $$ > $p.tmp && mv $p.tmp $p; exec "
             "%s train --model %s --data %s --out %s --quiet --dtype fp32 --seq-len 48 "
             "--batch-size 4 %s' > %s.log 2>&1",
             g_mpirun, out, getenv("BADAM_CLI"), g_model, g_data, out, args, out);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits (up to limit s) for path to exist; 0 when it does. (The pid files are written whole and
 * renamed into place, so one that exists is complete.) */
static int wait_file(const char *path, double limit) {
    for (double t0 = now_s(); now_s() - t0 < limit;) {
        if (io_is_file(path)) return 0;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static pid_t rank_pid(const char *out, int rank) {
    char path[1200], *s = NULL;
    size_t n = 0;
    badam_error err = {0};
    snprintf(path, sizeof path, "%s.pid.%d", out, rank);
    if (wait_file(path, 30) || io_read_file(path, &s, &n, &err)) return -1;
    pid_t pid = (pid_t)atol(s);
    free(s);
    return pid;
}

/* Waits for mpirun (at most limit s, then kills it); its exit status, -1 when killed here. */
static int wait_job(pid_t pid, double limit, double *took) {
    double t0 = now_s();
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (now_s() - t0 > limit) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    *took = now_s() - t0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* SIGSTOP on rank 1: rank 0 names it and the job ends non-zero within the timeout. */
static void test_stopped_rank(void) {
    char out[1100];
    snprintf(out, sizeof out, "%s/run", test_workdir("mpi-sigstop"));
    pid_t job = start_ranks(out, "--method adam --max-steps 100000 --lr 1e-5 --no-checkpoint "
                                 "--comm-timeout 3");
    pid_t r1 = rank_pid(out, 1);
    char metrics[1200];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out);
    /* stopped once training runs (--comm-timeout guards the collectives, not MPI_Init) */
    CHECK(r1 > 0 && wait_file(metrics, 120) == 0);
    if (r1 <= 0) return;
    struct timespec ts = {0, 300000000};
    nanosleep(&ts, NULL);
    kill(r1, SIGSTOP);
    double took = 0;
    int rc = wait_job(job, 60, &took);
    kill(r1, SIGKILL); /* if the job left it behind */
    CHECKF(rc > 0, "the job did not end non-zero (%d) after rank 1 stopped (%s.log)", rc, out);
    CHECKF(took < 30, "the job took %.1f s to end after rank 1 stopped (timeout 3 s)", took);
    CHECKF(log_has(out, "lost rank 1"), "rank 0 does not name the lost rank (%s.log)", out);
    fprintf(stderr, "  SIGSTOP: the job ended with %d %.1f s after the stop\n", rc, took);
}

/* SIGKILL on rank 1 after a checkpoint: the job ends non-zero; resuming finishes as the
 * uninterrupted run. */
static void test_killed_rank(void) {
    char base[1024], a[1100], b[1100], state[1300], fa[1300], fb[1300];
    const char *args = "--method badam --switch-every 3 --max-steps 400 --lr 1e-4 --save-every 5";
    snprintf(base, sizeof base, "%s", test_workdir("mpi-sigkill"));
    snprintf(a, sizeof a, "%s/uninterrupted", base);
    snprintf(b, sizeof b, "%s/killed", base);
    if (train(a, 2, args)) {
        CHECKF(0, "the uninterrupted run failed (%s.log)", a);
        return;
    }
    pid_t job = start_ranks(b, args);
    pid_t r1 = rank_pid(b, 1);
    snprintf(state, sizeof state, "%s/checkpoint/trainer_state.json", b);
    CHECK(r1 > 0 && wait_file(state, 60) == 0);
    kill(r1, SIGKILL);
    double took = 0;
    int rc = wait_job(job, 60, &took);
    snprintf(fb, sizeof fb, "%s/model.safetensors", b);
    if (io_is_file(fb)) {
        fprintf(stderr, "  SIGKILL: the run ended before the kill; not checked\n");
        return;
    }
    CHECKF(rc > 0 && took < 30, "the job ended with %d, %.1f s after the kill (%s.log)", rc, took,
           b);
    CHECKF(log_has(b, "rank 1"), "the lost rank is not named (%s.log)", b);
    char resumed[512];
    snprintf(resumed, sizeof resumed, "%s --resume", args);
    if (train(b, 2, resumed)) {
        CHECKF(0, "the resumed run failed (%s.log)", b);
        return;
    }
    snprintf(fa, sizeof fa, "%s/model.safetensors", a);
    run_check_tensors("killed and resumed", fa, fb, TOL);
}

/* Paused on 2 ranks, resumed on 1: as the uninterrupted 1-process run. */
static void test_resume_other_world(void) {
    char base[1024], a[1100], b[1100], fa[1300], fb[1300];
    const char *args = "--method badam --switch-every 2 --max-steps 8 --lr 1e-4";
    snprintf(base, sizeof base, "%s", test_workdir("mpi-resume-n"));
    snprintf(a, sizeof a, "%s/one", base);
    snprintf(b, sizeof b, "%s/two-then-one", base);
    char paused[512], resumed[512];
    snprintf(paused, sizeof paused, "%s --stop-at-step 5", args);
    snprintf(resumed, sizeof resumed, "%s --resume", args);
    if (train(a, 1, args) || train(b, 2, paused) || train(b, 1, resumed)) {
        CHECKF(0, "a run failed (%s.log, %s.log)", a, b);
        return;
    }
    snprintf(fa, sizeof fa, "%s/model.safetensors", a);
    snprintf(fb, sizeof fb, "%s/model.safetensors", b);
    run_check_tensors("paused on 2 ranks, resumed on 1", fa, fb, TOL);
}

int main(void) {
    if (!getenv("BADAM_CLI")) {
        fprintf(stderr, "SKIP: BADAM_CLI is not set (run through ctest)\n");
        return TEST_SKIP_CODE;
    }
    const char *mpirun = getenv("BADAM_MPIRUN");
    const char *dir = test_workdir("mpi-fixture");
    snprintf(g_model, sizeof g_model, "%s/model", dir);
    snprintf(g_data, sizeof g_data, "%s/train.jsonl", dir);
    /* no q/k/v bias: the gradient of k's bias is zero but for rounding, and Adam would amplify
     * the rounding of the sums into steps of the full learning rate */
    llama_config cfg = fixture_config(64, 128, 4, 4, 2, 300, 0, 0, 0);
    if (fixture_write_model(g_model, &cfg, BADAM_DTYPE_F32, 9, 0.05f) ||
        fixture_write_tokenized_data(g_data, 32, 8, 40, 300, 10))
        return 1;
    RUN_TEST(test_refused_method); /* without MPI too */
    if (!badam_comm_mpi_available() || !mpirun || !*mpirun || access(mpirun, X_OK)) {
        fprintf(stderr, "SKIP: badam was built without MPI or mpirun is missing (apt install "
                        "libopenmpi-dev openmpi-bin, then rebuild)\n");
        return test_failures ? test_result() : TEST_SKIP_CODE;
    }
    /* Under the sanitizers: Open MPI's libraries have no frame pointers, so the fast unwinder
     * stops inside them and LeakSanitizer could not match its suppressions (tests/lsan_mpi.supp,
     * Open MPI's own allocations) against their frames; the full unwinder can. */
    const char *asan = getenv("ASAN_OPTIONS");
    if (asan) {
        static char opts[2048];
        snprintf(opts, sizeof opts, "%s%sfast_unwind_on_malloc=0", asan, *asan ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
    }
    snprintf(g_mpirun, sizeof g_mpirun, "%s %s --oversubscribe --bind-to none", mpirun,
             geteuid() == 0 ? "--allow-run-as-root" : "");
    RUN_TEST(test_methods);
    RUN_TEST(test_newer_methods);
    RUN_TEST(test_refused);
    RUN_TEST(test_resume_other_world);
    RUN_TEST(test_stopped_rank);
    RUN_TEST(test_killed_rank);
    return test_result();
}
