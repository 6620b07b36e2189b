/* The per-rank memory plan of a data-parallel run against a real one (2 ranks, 1 OpenMP thread
 * each): for badam, adam, lora, lomo and sgd-bcd, the peak bytes rank 0 allocates per category
 * (memory.json) equal `badam plan --world-size 2 --json` for the same options, exactly; and the
 * one-process plan (--world-size 1) differs from them (activations and workspace hold the whole
 * batch), so the comparison can tell the two apart. Skips (77, with the reason) when the library
 * was built without MPI or mpirun is missing. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "badam/comm.h"
#include "model_fixtures.h"

static const char *CATS[] = {"weights",   "master",      "gradients",
                             "optimizer", "activations", "workspace"};
enum { N_CATS = 6 };

static char g_model[1024], g_data[1024];

/* Bytes by category of `badam plan --world-size N --json` for one method; 0 on success. */
static int plan(const char *dir, const char *method, int world, double *bytes) {
    char args[2048];
    static char out[16384];
    snprintf(args, sizeof args,
             "plan --model %s --method %s --batch-size 4 --seq-len 48 --world-size %d --json",
             g_model, method, world);
    int rc = test_run_cli(dir, NULL, args, out, sizeof out);
    const char *brace = strchr(out, '{');
    json_t *j = rc || !brace ? NULL : json_loads(brace, JSON_DISABLE_EOF_CHECK, NULL);
    const json_t *m = json_object_get(j, method);
    for (int c = 0; c < N_CATS; c++) {
        const json_t *v = json_object_get(m, CATS[c]);
        bytes[c] = json_is_integer(v) ? (double)json_integer_value(v) : -1;
    }
    json_decref(j);
    if (!m) fprintf(stderr, "badam %s (rc %d):\n%s\n", args, rc, out);
    return m ? 0 : 1;
}

/* Measured peak bytes by category (memory.json of out); 0 on success. */
static int measured(const char *out, double *bytes) {
    char path[1200];
    snprintf(path, sizeof path, "%s/memory.json", out);
    json_t *j = json_load_file(path, 0, NULL);
    const json_t *m = json_object_get(j, "measured_peak");
    for (int c = 0; c < N_CATS; c++) {
        const json_t *v = json_object_get(m, CATS[c]);
        bytes[c] = json_is_integer(v) ? (double)json_integer_value(v) : -1;
    }
    json_decref(j);
    return m ? 0 : 1;
}

static void check_method(const char *dir, const char *method) {
    char out[1100], cmd[8192];
    snprintf(out, sizeof out, "%s/out-%s", dir, method);
    /* ascending with K = 1 visits every block, so the activation peak is the planned worst case */
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 %s train --model %s --data %s --out %s --quiet --method %s "
             "--seq-len 48 --batch-size 4 --max-steps 4 --switch-every 1 --switch-mode ascending "
             "--no-checkpoint --no-shuffle --lr 1e-4 --nproc 2 > %s.log 2>&1",
             getenv("BADAM_CLI"), g_model, g_data, out, method, out);
    double got[N_CATS], want[N_CATS], one[N_CATS];
    if (test_system(cmd) || measured(out, got)) {
        CHECKF(0, "%s on 2 ranks failed: see %s.log", method, out);
        return;
    }
    if (plan(dir, method, 2, want) || plan(dir, method, 1, one)) {
        CHECK(0);
        return;
    }
    int same_as_one = 1;
    for (int c = 0; c < N_CATS; c++) {
        CHECKF(got[c] == want[c], "%s %s: measured %.0f on rank 0, planned %.0f per rank", method,
               CATS[c], got[c], want[c]);
        same_as_one &= got[c] == one[c];
    }
    CHECKF(!same_as_one, "%s: the one-process plan matches the 2-rank run too", method);
}

static void test_plan_per_rank(void) {
    const char *dir = test_workdir("mpi-plan");
    const char *methods[] = {"badam", "adam", "lora", "lomo", "sgd-bcd"};
    for (int i = 0; i < 5; i++) check_method(dir, methods[i]);
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
    const char *dir = test_workdir("mpi-plan-fixture");
    snprintf(g_model, sizeof g_model, "%s/model", dir);
    snprintf(g_data, sizeof g_data, "%s/train.jsonl", dir);
    llama_config cfg = fixture_config(64, 96, 3, 4, 2, 211, 0, 0, 0);
    if (fixture_write_model(g_model, &cfg, BADAM_DTYPE_BF16, 1, 0.05f) ||
        fixture_write_tokenized_data(g_data, 16, 8, 40, 211, 2))
        return 1;
    RUN_TEST(test_plan_per_rank);
    return test_result();
}
