/* A checkpoint that cannot be written (a full disk, simulated with RLIMIT_FSIZE, effective for
 * root too) says what is true: "the previous one is intact" only when there is a previous one,
 * and then that one is still there; before the first checkpoint, that there is none. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "io/files.h"
#include "model_fixtures.h"
#include "train/checkpoint.h"

static badam_status save_limited(const char *out, const llama_model *m, int step, rlim_t limit,
                                 badam_error *err) {
    checkpoint_state s;
    memset(&s, 0, sizeof s);
    s.step = step;
    s.block = -1;
    s.run = json_object(); /* a run record (run_record.h) with the method only */
    json_object_set_new(s.run, "--method", json_string("adam"));
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    void (*handler)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    if (limit) lim.rlim_cur = limit;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    badam_status st = checkpoint_save(out, NULL, m, NULL, &s, 0, NULL, err);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, handler);
    json_decref(s.run);
    return st;
}

static void test_full_disk_messages(void) {
    const char *out = test_workdir("ckpt_full_disk");
    llama_config cfg = fixture_config(16, 32, 1, 2, 2, 64, 0, 0, 0);
    llama_model *m = NULL;
    badam_error err = {0};
    CHECK_OK(llama_model_create(&cfg, BADAM_DTYPE_F32, &m, &err), &err);

    /* No checkpoint yet. */
    badam_status st = save_limited(out, m, 5, 1024, &err);
    CHECKF(st == BADAM_E_IO, "status %s: %s", badam_status_name(st), err.message);
    CHECKF(strstr(err.message, "no earlier checkpoint") && !strstr(err.message, "intact"), "%s",
           err.message);

    /* With one written, a failed save keeps it and says so. */
    CHECK_OK(save_limited(out, m, 10, 0, &err), &err);
    st = save_limited(out, m, 20, 1024, &err);
    CHECKF(st == BADAM_E_IO, "status %s: %s", badam_status_name(st), err.message);
    CHECKF(strstr(err.message, "the previous one is intact"), "%s", err.message);
    char dir[4096];
    checkpoint_state s;
    CHECK_OK(checkpoint_find(out, dir, sizeof dir, &err), &err);
    CHECK_OK(checkpoint_read_state(dir, &s, &err), &err);
    CHECK(s.step == 10);
    json_decref(s.run);
    llama_model_free(m);
}

int main(void) {
    RUN_TEST(test_full_disk_messages);
    return test_result();
}
