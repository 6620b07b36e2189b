/* The single-process communicator and the calls through a communicator (badam/comm.h). */
#include "badam/comm.h"

#include <string.h>

static int single_rank(void *ctx) {
    (void)ctx;
    return 0;
}
static int single_size(void *ctx) {
    (void)ctx;
    return 1;
}
/* one rank: the sum over ranks is the value itself */
static badam_status single_reduce_f32(void *ctx, float *buf, size_t n, badam_error *err) {
    (void)ctx, (void)buf, (void)n, (void)err;
    return BADAM_OK;
}
static badam_status single_reduce_f64(void *ctx, double *buf, size_t n, badam_error *err) {
    (void)ctx, (void)buf, (void)n, (void)err;
    return BADAM_OK;
}
/* one rank: its chunk 0 is the whole of send, and the gather is its own send */
static badam_status single_copy_f32(void *ctx, const float *send, float *recv, size_t n,
                                    badam_error *err) {
    (void)ctx, (void)err;
    if (send != recv && n) memmove(recv, send, n * sizeof *recv);
    return BADAM_OK;
}
static badam_status single_broadcast(void *ctx, void *buf, size_t bytes, int root,
                                     badam_error *err) {
    (void)ctx, (void)buf, (void)bytes;
    if (root != 0) return badam_fail(err, BADAM_E_INVALID, "broadcast: root %d of 1 rank", root);
    return BADAM_OK;
}
static badam_status single_barrier(void *ctx, badam_error *err) {
    (void)ctx, (void)err;
    return BADAM_OK;
}

static const badam_comm_ops SINGLE = {single_rank,
                                      single_size,
                                      single_reduce_f32,
                                      single_reduce_f64,
                                      single_copy_f32,
                                      single_copy_f32,
                                      single_broadcast,
                                      single_barrier,
                                      NULL,
                                      NULL};

badam_comm badam_comm_single(void) {
    badam_comm c = {&SINGLE, NULL};
    return c;
}

static badam_comm resolve(const badam_comm *c) {
    return c && c->ops ? *c : badam_comm_single();
}

int badam_comm_rank(const badam_comm *c) {
    badam_comm x = resolve(c);
    return x.ops->rank(x.ctx);
}
int badam_comm_size(const badam_comm *c) {
    badam_comm x = resolve(c);
    return x.ops->size(x.ctx);
}
badam_status badam_comm_all_reduce_f32(const badam_comm *c, float *buf, size_t n,
                                       badam_error *err) {
    badam_comm x = resolve(c);
    return x.ops->all_reduce_sum_f32(x.ctx, buf, n, err);
}
badam_status badam_comm_all_reduce_f64(const badam_comm *c, double *buf, size_t n,
                                       badam_error *err) {
    badam_comm x = resolve(c);
    return x.ops->all_reduce_sum_f64(x.ctx, buf, n, err);
}
badam_status badam_comm_reduce_scatter_f32(const badam_comm *c, const float *send, float *recv,
                                           size_t n, badam_error *err) {
    badam_comm x = resolve(c);
    return x.ops->reduce_scatter_sum_f32(x.ctx, send, recv, n, err);
}
badam_status badam_comm_all_gather_f32(const badam_comm *c, const float *send, float *recv,
                                       size_t n, badam_error *err) {
    badam_comm x = resolve(c);
    return x.ops->all_gather_f32(x.ctx, send, recv, n, err);
}
badam_status badam_comm_broadcast(const badam_comm *c, void *buf, size_t bytes, int root,
                                  badam_error *err) {
    badam_comm x = resolve(c);
    return x.ops->broadcast(x.ctx, buf, bytes, root, err);
}
badam_status badam_comm_barrier(const badam_comm *c, badam_error *err) {
    badam_comm x = resolve(c);
    return x.ops->barrier(x.ctx, err);
}

badam_status badam_comm_all_reduce_start_f32(const badam_comm *c, float *buf, size_t n, void **req,
                                             badam_error *err) {
    badam_comm x = resolve(c);
    *req = NULL;
    if (x.ops->all_reduce_start_f32 && x.ops->wait)
        return x.ops->all_reduce_start_f32(x.ctx, buf, n, req, err);
    return x.ops->all_reduce_sum_f32(x.ctx, buf, n, err);
}
badam_status badam_comm_wait(const badam_comm *c, void *req, badam_error *err) {
    badam_comm x = resolve(c);
    if (!req) return BADAM_OK;
    return x.ops->wait(x.ctx, req, err);
}
