/* Exact resume: a run killed with SIGKILL after a checkpoint and resumed with --resume ends with
 * weights (and adapters) bit-identical to an uninterrupted run, for BAdam (bf16, random order,
 * killed inside a block visit) and LoRA with dropout, also when the resumed run changes options
 * that do not shape the trajectory. A checkpoint in the middle of being replaced (checkpoint
 * missing, checkpoint.old present) is resumed from too. Changed options that do shape it are
 * refused: test_resume_refused.c. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/files.h"
#include "model_fixtures.h"

static char g_model[1024], g_data[1024];

static int same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    badam_error err = {0};
    int same = !io_read_file(a, &x, &nx, &err) && !io_read_file(b, &y, &ny, &err) && nx == ny &&
               !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

static void build_cmd(char *cmd, size_t size, const char *out, const char *args, int resume) {
    snprintf(cmd, size,
             "%s train --model %s --data %s --out %s --quiet --seq-len 48 --batch-size 2 "
             "--save-every 5 %s %s >> %s.log 2>&1",
             getenv("BADAM_CLI"), g_model, g_data, out, args, resume ? "--resume" : "", out);
}

/* Starts a run, waits for its first checkpoint (step >= 5), then SIGKILLs it. Returns 0 when it
 * was killed mid-run. */
static int run_and_kill(const char *out, const char *args) {
    char cmd[8192], state[1200];
    build_cmd(cmd, sizeof cmd, out, args, 0);
    snprintf(state, sizeof state, "%s/checkpoint/trainer_state.json", out);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 60000; i++) { /* up to 60 s */
        if (io_is_file(state)) break;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) return -1; /* finished before the kill */
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    kill(-pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    return 0;
}

static void check_resume(const char *name, const char *args, const char *compare) {
    char base[1024], a[1100], b[1100], cmd[8192], fa[1300], fb[1300];
    snprintf(base, sizeof base, "%s", test_workdir(name));
    snprintf(a, sizeof a, "%s/uninterrupted", base);
    snprintf(b, sizeof b, "%s/killed", base);
    build_cmd(cmd, sizeof cmd, a, args, 0);
    if (test_system(cmd)) {
        CHECKF(0, "%s: the uninterrupted run failed (%s.log)", name, a);
        return;
    }
    if (run_and_kill(b, args)) {
        CHECKF(0, "%s: the run ended before it could be killed", name);
        return;
    }
    char state[1300];
    snprintf(state, sizeof state, "%s/model.safetensors", b);
    CHECKF(!io_is_file(state), "%s: the killed run got to its end", name);
    /* Options that do not shape the trajectory may differ on resume: the checkpoint schedule,
     * the validation schedule, --recompute, and the data file's path (same bytes). */
    char copy[1200], resumed[8192];
    snprintf(copy, sizeof copy, "%s/same-data.jsonl", base);
    snprintf(cmd, sizeof cmd, "cp %s %s", g_data, copy);
    CHECK(test_system(cmd) == 0);
    snprintf(resumed, sizeof resumed, "%s --save-every 7 --eval-every 9 --recompute --data %s",
             args, copy);
    build_cmd(cmd, sizeof cmd, b, resumed, 1);
    if (test_system(cmd)) {
        CHECKF(0, "%s: the resumed run failed (%s.log)", name, b);
        return;
    }
    snprintf(fa, sizeof fa, "%s/%s", a, compare);
    snprintf(fb, sizeof fb, "%s/%s", b, compare);
    CHECKF(same_file(fa, fb), "%s: %s differs between the uninterrupted and resumed runs", name,
           compare);
    snprintf(fa, sizeof fa, "%s/model.safetensors", a);
    snprintf(fb, sizeof fb, "%s/model.safetensors", b);
    CHECKF(same_file(fa, fb), "%s: final weights differ", name);
}

static void test_badam_bf16_random(void) {
    /* K = 3 with checkpoints every 5 steps: the kill lands inside a block visit. */
    check_resume("resume-badam", "--method badam --switch-every 3 --max-steps 200 --lr 1e-3",
                 "checkpoint/optimizer.safetensors");
}

static void test_lora_dropout(void) {
    check_resume("resume-lora",
                 "--method lora --lora-rank 4 --lora-dropout 0.1 --max-steps 150 --lr 1e-3 "
                 "--grad-accum 2",
                 "adapter/adapter_model.safetensors");
}

/* --stop-at-step pauses a run with a checkpoint (no final model); --resume of the same command
 * ends bit-identical to the uninterrupted run, for a method with state in the checkpoint (Adam),
 * one updating inside backward (LOMO), BAdam's ratio mode paused inside a mask period (its
 * masters and moments by tensor name, the masks regenerated) in both mask modes, and MeZO (no
 * state: z from the seed and the step), also on LoRA adapters (the checkpoint's adapter).
 * --stop-at-step without checkpoints is refused. */
static void test_pause(void) {
    const char *methods[] = {
        "--method adam --max-steps 12 --lr 1e-3",
        "--method lomo --max-steps 12 --lr 1e-2 --clip 0",
        "--method badam-ratio --switch-every 3 --update-ratio 0.3 --max-steps 12 --lr 1e-3",
        "--method badam-ratio --switch-every 5 --mask-mode scatter --max-steps 12 --lr 1e-3",
        "--method mezo --mezo-eps 1e-2 --max-steps 12 --lr 1e-4 --clip 0",
        "--method mezo-lora --mezo-eps 1e-2 --lora-rank 4 --max-steps 12 --lr 1e-3 --clip 0"};
    const char *names[] = {"pause-adam",          "pause-lomo", "pause-ratio",
                           "pause-ratio-scatter", "pause-mezo", "pause-mezo-lora"};
    for (int i = 0; i < 6; i++) {
        char base[1024], a[1100], b[1100], cmd[8192], args[512], fa[1300], fb[1300];
        snprintf(base, sizeof base, "%s", test_workdir(names[i]));
        snprintf(a, sizeof a, "%s/uninterrupted", base);
        snprintf(b, sizeof b, "%s/paused", base);
        build_cmd(cmd, sizeof cmd, a, methods[i], 0);
        CHECK(test_system(cmd) == 0);
        snprintf(args, sizeof args, "%s --stop-at-step 7", methods[i]);
        build_cmd(cmd, sizeof cmd, b, args, 0);
        CHECK(test_system(cmd) == 0);
        snprintf(fb, sizeof fb, "%s/model.safetensors", b);
        CHECKF(!io_is_file(fb), "%s: a paused run wrote the final model", methods[i]);
        snprintf(fb, sizeof fb, "%s/checkpoint/trainer_state.json", b);
        CHECKF(io_is_file(fb), "%s: a paused run left no checkpoint", methods[i]);
        build_cmd(cmd, sizeof cmd, b, methods[i], 1);
        CHECK(test_system(cmd) == 0);
        snprintf(fa, sizeof fa, "%s/model.safetensors", a);
        snprintf(fb, sizeof fb, "%s/model.safetensors", b);
        CHECKF(same_file(fa, fb), "%s: paused and resumed weights differ", methods[i]);
    }
    char cmd[8192], out[1100], file[1300];
    snprintf(out, sizeof out, "%s/refused", test_workdir("pause-refused"));
    build_cmd(cmd, sizeof cmd, out, "--max-steps 4 --stop-at-step 2 --no-checkpoint", 0);
    CHECK(test_system(cmd) != 0);
    /* A pause point the checkpoint has passed, and a run that is complete, are refused on
     * --resume, and the complete run's files stay as they were. */
    const char *args = "--method adam --max-steps 6 --lr 1e-3";
    char paused[1300];
    snprintf(paused, sizeof paused, "%s --stop-at-step 4", args);
    build_cmd(cmd, sizeof cmd, out, paused, 0);
    CHECK(test_system(cmd) == 0);
    snprintf(paused, sizeof paused, "%s --stop-at-step 3", args);
    build_cmd(cmd, sizeof cmd, out, paused, 1);
    CHECK(test_system(cmd) != 0);
    build_cmd(cmd, sizeof cmd, out, args, 1);
    CHECK(test_system(cmd) == 0);
    snprintf(file, sizeof file, "%s/memory.json", out);
    char *before = NULL, *after = NULL;
    size_t nb = 0, na = 0;
    badam_error err = {0};
    CHECK(io_read_file(file, &before, &nb, &err) == BADAM_OK);
    build_cmd(cmd, sizeof cmd, out, args, 1);
    CHECK(test_system(cmd) != 0);
    CHECK(io_read_file(file, &after, &na, &err) == BADAM_OK);
    CHECKF(before && after && na == nb && !memcmp(before, after, nb),
           "resuming a complete run rewrote its memory.json");
    free(before), free(after);
    /* --start-block beyond the partition (4 layer blocks) is refused */
    build_cmd(cmd, sizeof cmd, out, "--max-steps 2 --start-block 4", 0);
    CHECK(test_system(cmd) != 0);
    build_cmd(cmd, sizeof cmd, out, "--max-steps 2 --start-block -2", 0);
    CHECK(test_system(cmd) != 0);
}

static void test_resume_from_old_checkpoint(void) {
    /* A crash between the two renames of a checkpoint swap leaves only checkpoint.old. */
    char base[1024], out[1100], cmd[8192], from[1200], to[1200];
    snprintf(base, sizeof base, "%s", test_workdir("resume-old"));
    snprintf(out, sizeof out, "%s/run", base);
    const char *args = "--method badam --switch-every 2 --max-steps 10 --lr 1e-3";
    char paused[512];
    snprintf(paused, sizeof paused, "%s --stop-at-step 6", args);
    build_cmd(cmd, sizeof cmd, out, paused, 0);
    CHECK(test_system(cmd) == 0);
    snprintf(from, sizeof from, "%s/checkpoint", out);
    snprintf(to, sizeof to, "%s/checkpoint.old", out);
    CHECK(rename(from, to) == 0);
    build_cmd(cmd, sizeof cmd, out, args, 1);
    CHECK(test_system(cmd) == 0);
    snprintf(from, sizeof from, "%s/checkpoint/trainer_state.json", out);
    CHECK(io_is_file(from));
    /* Resuming with another method is refused with a clear message. */
    build_cmd(cmd, sizeof cmd, out, "--method adam --max-steps 14", 1);
    CHECK(test_system(cmd) != 0);
}

int main(void) {
    if (!getenv("BADAM_CLI")) {
        fprintf(stderr, "SKIP: BADAM_CLI is not set (run through ctest)\n");
        return TEST_SKIP_CODE;
    }
    const char *dir = test_workdir("resume-fixture");
    snprintf(g_model, sizeof g_model, "%s/model", dir);
    snprintf(g_data, sizeof g_data, "%s/train.jsonl", dir);
    llama_config cfg = fixture_config(64, 128, 4, 4, 2, 300, 0, 1, 1);
    if (fixture_write_model(g_model, &cfg, BADAM_DTYPE_BF16, 9, 0.05f) ||
        fixture_write_tokenized_data(g_data, 40, 8, 40, 300, 10))
        return 1;
    RUN_TEST(test_pause);
    RUN_TEST(test_badam_bf16_random);
    RUN_TEST(test_lora_dropout);
    RUN_TEST(test_resume_from_old_checkpoint);
    return test_result();
}
