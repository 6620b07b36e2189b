/* The communicator (badam/comm.h): the single-process implementation is rank 0 of 1 and every
 * collective an identity (bit for bit, in place or not); NULL stands for it. A communicator of
 * one's own is called through its table: a counting one run under train_run shows the trainer
 * sums the step's loss and tokens and the gradients of the trained tensors through it, and one
 * that says "rank 1" gets no file written (rank 0 writes). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "badam/comm.h"
#include "badam/train.h"
#include "io/files.h"
#include "testutil.h"

static void test_single(void) {
    badam_comm c = badam_comm_single();
    badam_error err = {0};
    CHECK(badam_comm_rank(&c) == 0 && badam_comm_size(&c) == 1);
    CHECK(badam_comm_rank(NULL) == 0 && badam_comm_size(NULL) == 1);
    float x[5] = {1.5f, -0.0f, NAN, 3e38f, 1e-45f}, keep[5];
    memcpy(keep, x, sizeof x);
    CHECK(badam_comm_all_reduce_f32(&c, x, 5, &err) == BADAM_OK);
    CHECK(!memcmp(x, keep, sizeof x)); /* bits, NaN and -0 included */
    double d[3] = {0.1, -2.5, 1e300}, dkeep[3];
    memcpy(dkeep, d, sizeof d);
    CHECK(badam_comm_all_reduce_f64(NULL, d, 3, &err) == BADAM_OK);
    CHECK(!memcmp(d, dkeep, sizeof d));
    float out[5] = {0};
    CHECK(badam_comm_reduce_scatter_f32(&c, x, out, 5, &err) == BADAM_OK);
    CHECK(!memcmp(out, keep, sizeof out));
    memset(out, 0, sizeof out);
    CHECK(badam_comm_all_gather_f32(&c, x, out, 5, &err) == BADAM_OK);
    CHECK(!memcmp(out, keep, sizeof out));
    CHECK(badam_comm_reduce_scatter_f32(&c, x, x, 5, &err) == BADAM_OK); /* in place */
    CHECK(!memcmp(x, keep, sizeof x));
    char msg[8] = "hello";
    CHECK(badam_comm_broadcast(&c, msg, sizeof msg, 0, &err) == BADAM_OK && !strcmp(msg, "hello"));
    CHECK(badam_comm_broadcast(&c, msg, sizeof msg, 1, &err) == BADAM_E_INVALID);
    CHECKF(strstr(err.message, "root 1"), "%s", err.message);
    CHECK(badam_comm_barrier(&c, &err) == BADAM_OK);
}

/* ---------------------------------------------------------------- a communicator of our own */

typedef struct counting {
    int rank;
    long f32_calls, f64_calls, barriers;
    size_t f32_values;
} counting;

static int c_rank(void *ctx) {
    return ((counting *)ctx)->rank;
}
static int c_size(void *ctx) {
    (void)ctx;
    return 2;
}
/* a second rank that contributes zeros: the sums are the values themselves */
static badam_status c_f32(void *ctx, float *buf, size_t n, badam_error *err) {
    (void)buf, (void)err;
    counting *c = ctx;
    c->f32_calls++, c->f32_values += n;
    return BADAM_OK;
}
static badam_status c_f64(void *ctx, double *buf, size_t n, badam_error *err) {
    (void)buf, (void)n, (void)err;
    ((counting *)ctx)->f64_calls++;
    return BADAM_OK;
}
static badam_status c_rs(void *ctx, const float *s, float *r, size_t n, badam_error *err) {
    (void)ctx, (void)s, (void)r, (void)n;
    return badam_fail(err, BADAM_E_UNSUPPORTED, "not used");
}
static badam_status c_bcast(void *ctx, void *buf, size_t bytes, int root, badam_error *err) {
    (void)ctx, (void)buf, (void)bytes, (void)root, (void)err;
    return BADAM_OK;
}
static badam_status c_barrier(void *ctx, badam_error *err) {
    (void)err;
    ((counting *)ctx)->barriers++;
    return BADAM_OK;
}
static const badam_comm_ops COUNTING = {
    c_rank, c_size,  c_f32,     c_f64, c_rs,
    c_rs,   c_bcast, c_barrier, NULL,  NULL}; /* no asynchronous all-reduce */

static badam_status train_adam(const char *out, const badam_comm *comm, train_report *r,
                               badam_error *err) {
    char model[2048], data[2048]; /* test_source_path reuses one buffer */
    snprintf(model, sizeof model, "%s", test_source_path("models/tiny-random-llama"));
    snprintf(data, sizeof data, "%s", test_source_path("data/demo/reverse_train.json"));
    train_config c;
    train_config_defaults(&c);
    c.model_dir = model;
    c.data_path = data;
    c.out_dir = out;
    c.method = METHOD_ADAM;
    c.dtype = BADAM_DTYPE_F32;
    c.template_name = "alpaca";
    c.system_prompt = "";
    c.batch_size = 2, c.seq_len = 64, c.max_steps = 3, c.lr = 1e-3f;
    c.comm = comm;
    return train_run(&c, r, err);
}

static void test_trainer_calls(void) {
    counting n = {0};
    badam_comm comm = {&COUNTING, &n};
    train_report r;
    badam_error err = {0};
    const char *out = test_workdir("comm-rank0");
    CHECK_OK(train_adam(out, &comm, &r, &err), &err);
    CHECK(r.steps == 3);
    /* every step: the loss and token sums (f64); every parameter's gradient (f32) */
    CHECKF(n.f64_calls >= 3, "%ld f64 all-reduces", n.f64_calls);
    CHECKF(n.f32_calls > 0 && n.f32_calls % 3 == 0, "%ld f32 all-reduces", n.f32_calls);
    CHECKF(n.f32_values == 3 * r.predicted.params, "%zu gradient values for %zu parameters x 3",
           n.f32_values, r.predicted.params);
    CHECK(io_is_file(test_path_in(out, "model.safetensors")));
    CHECK(io_is_file(test_path_in(out, "metrics.jsonl")));

    /* rank 1 trains the same steps and writes nothing */
    counting one = {1, 0, 0, 0, 0};
    badam_comm comm1 = {&COUNTING, &one};
    out = test_workdir("comm-rank1");
    CHECK_OK(train_adam(out, &comm1, &r, &err), &err);
    CHECK(r.steps == 3 && one.f32_values == n.f32_values);
    CHECK(!io_is_file(test_path_in(out, "model.safetensors")));
    CHECK(!io_is_file(test_path_in(out, "metrics.jsonl")));
    CHECK(!io_is_file(test_path_in(out, "memory.json")));
    CHECK(!io_is_dir(test_path_in(out, "checkpoint")));
}

int main(void) {
    RUN_TEST(test_single);
    if (test_source_path("models/tiny-random-llama")) RUN_TEST(test_trainer_calls);
    return test_result();
}
