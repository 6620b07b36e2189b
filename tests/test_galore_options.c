/* --method galore's options: the method refuses what it cannot honour before anything trains
 * (a rank or update gap below 1, a scale that is not positive; per-layer updates inside backward
 * with gradient accumulation or a global-norm clip), and a resume with another --galore-rank or
 * --galore-update-gap is refused by the run record (its checkpoint's projectors and moments
 * belong to the first setting). A valid run trains, writes galore.safetensors and resumes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/train.h"
#include "io/files.h"
#include "model_fixtures.h"

enum { V = 64 };

static char g_model[1024], g_data[1024];

static void config(train_config *c, const char *out) {
    train_config_defaults(c);
    c->model_dir = g_model;
    c->data_path = g_data;
    c->out_dir = out;
    c->method = METHOD_GALORE;
    c->dtype = BADAM_DTYPE_F32;
    c->max_steps = 3, c->save_every = 1;
    c->seq_len = 32, c->batch_size = 2;
    c->lr = 1e-3f;
    c->galore_rank = 4, c->galore_update_gap = 2;
    c->log.fn = NULL;
}

/* train_run with cfg must fail with BADAM_E_INVALID and a message containing `says`. */
static void refused(const train_config *c, const char *says, const char *what) {
    train_report r;
    badam_error err = {0};
    badam_status st = train_run(c, &r, &err);
    CHECKF(st != BADAM_OK && strstr(err.message, says), "%s: status %d, message '%s'", what, st,
           err.message);
}

static void test_refusals(void) {
    train_config c;
    const char *out = test_workdir("galore-refused");
    config(&c, out);
    c.galore_rank = 0;
    refused(&c, "--galore-rank", "rank 0");
    config(&c, out);
    c.galore_update_gap = 0;
    refused(&c, "--galore-update-gap", "gap 0");
    config(&c, out);
    c.galore_scale = 0;
    refused(&c, "--galore-scale", "scale 0");
    config(&c, out);
    c.galore_per_layer = 1, c.clip = 0, c.grad_accum = 2;
    refused(&c, "cannot accumulate", "per-layer with accumulation");
    config(&c, out);
    c.galore_per_layer = 1, c.clip = 1;
    refused(&c, "cannot clip", "per-layer with a clip");
}

static void test_resume_checks_the_setting(void) {
    const char *out = test_workdir("galore-resume");
    train_config c;
    train_report r;
    badam_error err = {0};
    config(&c, out);
    c.stop_at_step = 2;
    CHECK_OK(train_run(&c, &r, &err), &err);
    CHECK(io_is_file(test_path_in(out, "checkpoint/galore.safetensors")));
    config(&c, out);
    c.resume = 1, c.galore_rank = 8;
    refused(&c, "--galore-rank", "resume with another rank");
    config(&c, out);
    c.resume = 1, c.galore_update_gap = 3;
    refused(&c, "--galore-update-gap", "resume with another gap");
    config(&c, out);
    c.resume = 1;
    CHECK_OK(train_run(&c, &r, &err), &err);
    CHECKF(r.steps == 3, "resumed run ended at step %d", r.steps);
}

int main(void) {
    const char *dir = test_workdir("galore-options");
    snprintf(g_model, sizeof g_model, "%s/model", dir);
    snprintf(g_data, sizeof g_data, "%s/train.jsonl", dir);
    llama_config cfg = fixture_config(32, 48, 2, 4, 2, V, 0, 0, 0);
    if (fixture_write_model(g_model, &cfg, BADAM_DTYPE_F32, 7, 0.05f) ||
        fixture_write_tokenized_data(g_data, 12, 8, 30, V, 3)) {
        fprintf(stderr, "fixtures could not be written\n");
        return 1;
    }
    RUN_TEST(test_refusals);
    RUN_TEST(test_resume_checks_the_setting);
    return test_result();
}
