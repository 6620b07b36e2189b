/* Data parallel without the weight files on the other ranks (2 ranks, 1 OpenMP thread each):
 * rank 1 pointed at a model folder that has only config.json (no model.safetensors), at an empty
 * one, or at one whose weights differ from rank 0's, trains exactly as the normal 2-rank run (every
 * byte of the saved model equal), for BAdam and for LoRA (whose adapters rank 0 also broadcasts):
 * rank 0's weights, broadcast, are what every rank trains. Rank 1 never opens its weight files nor
 * its config.json (rank 0's parsed config is broadcast); the folders without them would fail to
 * load. Skips (77, with the reason) when the library was built without MPI or mpirun is missing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "badam/comm.h"
#include "model_fixtures.h"

static char g_dir[1024], g_model[1100], g_data[1100], g_mpirun[2048];

/* `badam train` on 2 ranks, rank 1 with --model rank1_model (NULL: the same folder as rank 0);
 * 0 on success. */
static int train2(const char *out, const char *rank1_model, const char *args) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 %s -np 2 sh -c 'exec %s train --model $([ $OMPI_COMM_WORLD_RANK = "
             "1 ] && echo %s || echo %s) --data %s --out %s --quiet --dtype fp32 --seq-len 48 "
             "--batch-size 4 %s' > %s.log 2>&1",
             g_mpirun, getenv("BADAM_CLI"), rank1_model ? rank1_model : g_model, g_model, g_data,
             out, args, out);
    int rc = test_system(cmd);
    if (rc) fprintf(stderr, "%s failed (%s.log)\n", out, out);
    return rc;
}

/* 1 when files a and b hold the same bytes. */
static int same_bytes(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb, ca = 0, cb = 0;
    while (same && (ca = fgetc(fa)) != EOF) {
        cb = fgetc(fb);
        same = (ca == cb);
    }
    if (same) same = (fgetc(fb) == EOF);
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

/* The normal 2-rank run against rank 1 without weight files (config.json only, or nothing) and
 * rank 1 with other weights. */
static void check_method(const char *name, const char *args, const char *file) {
    char base[1200], out[1300], a[1400], b[1400], bare[1200], empty[1200], other[1200];
    snprintf(base, sizeof base, "%s/%s", g_dir, name);
    snprintf(bare, sizeof bare, "%s/config-only", g_dir);
    snprintf(empty, sizeof empty, "%s/empty", g_dir);
    snprintf(other, sizeof other, "%s/other-weights", g_dir);
    if (train2(base, NULL, args)) {
        CHECKF(0, "%s: the normal 2-rank run failed", name);
        return;
    }
    snprintf(a, sizeof a, "%s/%s", base, file);
    const char *rank1[3] = {bare, empty, other}, *tag[3] = {"bare", "empty", "other"};
    for (int i = 0; i < 3; i++) {
        snprintf(out, sizeof out, "%s-%s", base, tag[i]);
        if (train2(out, rank1[i], args)) {
            CHECKF(0, "%s: rank 1 with --model %s: the run failed (%s.log)", name, rank1[i], out);
            continue;
        }
        snprintf(b, sizeof b, "%s/%s", out, file);
        CHECKF(same_bytes(a, b), "%s: rank 1 with --model %s: %s differs from the normal run's",
               name, rank1[i], file);
    }
}

static void test_weightless_rank(void) {
    check_method("badam", "--method badam --switch-every 2 --max-steps 6 --lr 1e-4 --clip 0.5",
                 "model.safetensors");
    check_method("lora", "--method lora --lora-rank 4 --max-steps 4 --lr 1e-2",
                 "adapter/adapter_model.safetensors");
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
    snprintf(g_dir, sizeof g_dir, "%s", test_workdir("mpi-files"));
    snprintf(g_model, sizeof g_model, "%s/model", g_dir);
    snprintf(g_data, sizeof g_data, "%s/train.jsonl", g_dir);
    char bare[1200], other[1200], cmd[8192];
    snprintf(bare, sizeof bare, "%s/config-only", g_dir);
    snprintf(other, sizeof other, "%s/other-weights", g_dir);
    llama_config cfg = fixture_config(64, 128, 4, 4, 2, 300, 0, 0, 0);
    if (fixture_write_model(g_model, &cfg, BADAM_DTYPE_F32, 9, 0.05f) ||
        fixture_write_model(other, &cfg, BADAM_DTYPE_F32, 10, 0.05f) ||
        fixture_write_tokenized_data(g_data, 32, 8, 40, 300, 10))
        return 1;
    snprintf(cmd, sizeof cmd, "mkdir -p %s %s/empty && cp %s/config.json %s/", bare, g_dir, g_model,
             bare);
    if (test_system(cmd)) return 1;
    /* Under the sanitizers: see test_mpi.c (the full unwinder for Open MPI's frames). */
    const char *asan = getenv("ASAN_OPTIONS");
    if (asan) {
        static char opts[2048];
        snprintf(opts, sizeof opts, "%s%sfast_unwind_on_malloc=0", asan, *asan ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
    }
    snprintf(g_mpirun, sizeof g_mpirun, "%s %s --oversubscribe --bind-to none", mpirun,
             geteuid() == 0 ? "--allow-run-as-root" : "");
    RUN_TEST(test_weightless_rank);
    return test_result();
}
