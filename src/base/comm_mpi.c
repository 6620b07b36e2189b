/* The MPI communicator (badam/comm.h): the ranks of MPI_COMM_WORLD, one process each. Built when
 * CMake finds MPI (BADAM_HAVE_MPI); comm_mpi_none.c says so otherwise.
 *
 * Every collective is the nonblocking MPI-3 one (MPI_Iallreduce, MPI_Ireduce_scatter_block,
 * MPI_Iallgather, MPI_Ibcast, MPI_Ibarrier) waited for with MPI_Test until a deadline (the
 * timeout), so a rank that died or hangs (SIGSTOP) turns into an error instead of a hang. To
 * name the lost rank, each rank tells every other one how far it got (a heartbeat: 2s when it
 * enters collective s, 2s + 1 when its part is done; small messages on a communicator of their
 * own); a rank that times out in collective s names the ranks it last heard below 2s + 1.
 *
 * Sums: MPI_SUM on MPI_FLOAT / MPI_DOUBLE. Open MPI's algorithms give every rank the same bits
 * (a reduction tree or ring whose result is then distributed; with 2 ranks a + b == b + a). Counts
 * above INT_MAX go in chunks (all-reduce, broadcast); reduce-scatter and all-gather refuse them. */
#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "badam/comm.h"

#define HEARTBEAT_TAG 7001
#define CHUNK ((size_t)1 << 30)

typedef struct mpi_ctx {
    MPI_Comm comm, hb; /* the collectives; the heartbeats */
    int rank, size;
    double timeout_s;
    uint64_t seq;        /* collectives this rank has entered */
    uint64_t *seen;      /* [size] the latest heartbeat heard from each rank */
    uint64_t *hb_buf;    /* [size] the heartbeat in flight to each rank */
    MPI_Request *hb_req; /* [size] its send (MPI_REQUEST_NULL: none) */
    int inited;          /* this communicator called MPI_Init_thread */
    badam_comm_stats stats;
} mpi_ctx;

/* Reads every heartbeat that has arrived into seen[]. */
static void drain_heartbeats(mpi_ctx *c) {
    for (;;) {
        int flag = 0;
        MPI_Status s;
        if (MPI_Iprobe(MPI_ANY_SOURCE, HEARTBEAT_TAG, c->hb, &flag, &s) != MPI_SUCCESS || !flag)
            return;
        uint64_t v = 0;
        MPI_Recv(&v, 1, MPI_UINT64_T, s.MPI_SOURCE, HEARTBEAT_TAG, c->hb, MPI_STATUS_IGNORE);
        if (v > c->seen[s.MPI_SOURCE]) c->seen[s.MPI_SOURCE] = v;
    }
}

/* Tells every peer heartbeat v (a peer whose previous heartbeat is still in flight is skipped;
 * it hears the next one). */
static void beat(mpi_ctx *c, uint64_t v) {
    c->seen[c->rank] = v;
    for (int r = 0; r < c->size; r++) {
        if (r == c->rank) continue;
        int done = 1;
        if (c->hb_req[r] != MPI_REQUEST_NULL) MPI_Test(&c->hb_req[r], &done, MPI_STATUS_IGNORE);
        if (!done) continue;
        c->hb_buf[r] = v;
        MPI_Isend(&c->hb_buf[r], 1, MPI_UINT64_T, r, HEARTBEAT_TAG, c->hb, &c->hb_req[r]);
    }
}

/* Enters collective seq + 1. */
static void enter(mpi_ctx *c) {
    c->seq++;
    beat(c, 2 * c->seq);
}

static badam_status mpi_failed(int rc, const char *what, mpi_ctx *c, badam_error *err) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, text, &len);
    return badam_fail(err, BADAM_E_IO, "MPI %s on rank %d of %d: %s", what, c->rank, c->size, text);
}

/* Waits for a collective's request until the timeout; then names the ranks that never reached
 * this collective (the lost ones). */
static badam_status wait_seq(mpi_ctx *c, MPI_Request *rq, int rc, const char *what, uint64_t seq,
                             badam_error *err);
static badam_status wait_for(mpi_ctx *c, MPI_Request *rq, int rc, const char *what,
                             badam_error *err) {
    return wait_seq(c, rq, rc, what, c->seq, err);
}

/* wait_for for collective `seq` (an asynchronous one may have been entered before later ones):
 * its completion heartbeat is 2 seq + 1 unless a later heartbeat has gone out already. */
static badam_status wait_seq(mpi_ctx *c, MPI_Request *rq, int rc, const char *what, uint64_t seq,
                             badam_error *err) {
    if (rc != MPI_SUCCESS) return mpi_failed(rc, what, c, err);
    double t0 = MPI_Wtime();
    for (unsigned long spin = 0;; spin++) {
        int done = 0;
        if ((rc = MPI_Test(rq, &done, MPI_STATUS_IGNORE)) != MPI_SUCCESS)
            return mpi_failed(rc, what, c, err);
        if (done) {
            if (2 * seq + 1 > c->seen[c->rank]) beat(c, 2 * seq + 1);
            c->stats.collectives++;
            c->stats.seconds += MPI_Wtime() - t0;
            return BADAM_OK;
        }
        if (spin < 256) continue;
        drain_heartbeats(c);
        if (MPI_Wtime() - t0 > c->timeout_s) break;
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
    char lost[256] = "";
    size_t used = 0;
    for (int r = 0; r < c->size && used < sizeof lost; r++)
        if (r != c->rank && c->seen[r] < 2 * seq + 1)
            used += (size_t)snprintf(lost + used, sizeof lost - used, "%s%d", used ? ", " : "", r);
    if (!used) /* every rank had done its part: this one was held up (stopped, swapped out) */
        return badam_fail(err, BADAM_E_IO,
                          "rank %d: collective %llu (%s) took longer than --comm-timeout (%.0f "
                          "s) although every other rank had done its part: this rank was held up",
                          c->rank, (unsigned long long)seq, what, c->timeout_s);
    return badam_fail(
        err, BADAM_E_IO,
        "rank %d: lost rank %s: it did not do its part of collective %llu (%s) within the "
        "%.0f s of --comm-timeout (dead or hung)",
        c->rank, lost, (unsigned long long)seq, what, c->timeout_s);
}

static int mpi_rank(void *ctx) {
    return ((mpi_ctx *)ctx)->rank;
}
static int mpi_size(void *ctx) {
    return ((mpi_ctx *)ctx)->size;
}

static badam_status all_reduce(mpi_ctx *c, void *buf, size_t n, MPI_Datatype t, size_t elem,
                               badam_error *err) {
    for (size_t at = 0; at < n; at += CHUNK) {
        size_t k = n - at < CHUNK ? n - at : CHUNK;
        MPI_Request rq;
        enter(c);
        c->stats.reduce_bytes += (double)(k * elem);
        int rc =
            MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + at * elem, (int)k, t, MPI_SUM, c->comm, &rq);
        badam_status st = wait_for(c, &rq, rc, "all-reduce", err);
        if (st) return st;
    }
    return BADAM_OK;
}
static badam_status mpi_reduce_f32(void *ctx, float *buf, size_t n, badam_error *err) {
    return all_reduce(ctx, buf, n, MPI_FLOAT, sizeof *buf, err);
}
static badam_status mpi_reduce_f64(void *ctx, double *buf, size_t n, badam_error *err) {
    return all_reduce(ctx, buf, n, MPI_DOUBLE, sizeof *buf, err);
}

static badam_status mpi_reduce_scatter(void *ctx, const float *send, float *recv, size_t n,
                                       badam_error *err) {
    mpi_ctx *c = ctx;
    if (n > INT_MAX)
        return badam_fail(err, BADAM_E_UNSUPPORTED, "MPI reduce-scatter: %zu floats per rank", n);
    MPI_Request rq;
    enter(c);
    c->stats.reduce_bytes += (double)c->size * (double)n * sizeof(float);
    int rc = send == recv
                 ? MPI_Ireduce_scatter_block(MPI_IN_PLACE, recv, (int)n, MPI_FLOAT, MPI_SUM,
                                             c->comm, &rq)
                 : MPI_Ireduce_scatter_block(send, recv, (int)n, MPI_FLOAT, MPI_SUM, c->comm, &rq);
    return wait_for(c, &rq, rc, "reduce-scatter", err);
}

static badam_status mpi_all_gather(void *ctx, const float *send, float *recv, size_t n,
                                   badam_error *err) {
    mpi_ctx *c = ctx;
    if (n > INT_MAX)
        return badam_fail(err, BADAM_E_UNSUPPORTED, "MPI all-gather: %zu floats per rank", n);
    MPI_Request rq;
    enter(c);
    c->stats.reduce_bytes += (double)n * sizeof(float);
    int rc = send == recv + (size_t)c->rank * n
                 ? MPI_Iallgather(MPI_IN_PLACE, 0, MPI_FLOAT, recv, (int)n, MPI_FLOAT, c->comm, &rq)
                 : MPI_Iallgather(send, (int)n, MPI_FLOAT, recv, (int)n, MPI_FLOAT, c->comm, &rq);
    return wait_for(c, &rq, rc, "all-gather", err);
}

static badam_status mpi_broadcast(void *ctx, void *buf, size_t bytes, int root, badam_error *err) {
    mpi_ctx *c = ctx;
    if (root < 0 || root >= c->size)
        return badam_fail(err, BADAM_E_INVALID, "broadcast: root %d of %d ranks", root, c->size);
    for (size_t at = 0; at < bytes; at += CHUNK) {
        size_t k = bytes - at < CHUNK ? bytes - at : CHUNK;
        MPI_Request rq;
        enter(c);
        c->stats.broadcast_bytes += (double)k;
        int rc = MPI_Ibcast((char *)buf + at, (int)k, MPI_BYTE, root, c->comm, &rq);
        badam_status st = wait_for(c, &rq, rc, "broadcast", err);
        if (st) return st;
    }
    return BADAM_OK;
}

static badam_status mpi_barrier(void *ctx, badam_error *err) {
    mpi_ctx *c = ctx;
    MPI_Request rq;
    enter(c);
    return wait_for(c, &rq, MPI_Ibarrier(c->comm, &rq), "barrier", err);
}

/* An asynchronous all-reduce (all_reduce_start_f32 .. wait): its MPI request and the number of
 * the collective it is, for the heartbeats and the error naming a lost rank. */
typedef struct async_req {
    MPI_Request rq;
    uint64_t seq;
} async_req;

/* MPI_Iallreduce, returned unfinished; counts above CHUNK are reduced at once (blocking, in
 * chunks) and return no request. */
static badam_status mpi_reduce_start(void *ctx, float *buf, size_t n, void **req,
                                     badam_error *err) {
    mpi_ctx *c = ctx;
    *req = NULL;
    if (n > CHUNK) return all_reduce(c, buf, n, MPI_FLOAT, sizeof *buf, err);
    async_req *a = malloc(sizeof *a);
    if (!a) return badam_fail(err, BADAM_E_NOMEM, "MPI all-reduce: out of memory");
    /* no heartbeat on entry: a later collective's entry heartbeat must not tell the others that
     * this one is done (its completion heartbeat, in wait, does; waits go in start order) */
    a->seq = ++c->seq;
    c->stats.reduce_bytes += (double)(n * sizeof *buf);
    c->stats.async_reduces++;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, c->comm, &a->rq);
    if (rc != MPI_SUCCESS) {
        free(a);
        return mpi_failed(rc, "all-reduce", c, err);
    }
    *req = a;
    return BADAM_OK;
}

static badam_status mpi_wait(void *ctx, void *req, badam_error *err) {
    async_req *a = req;
    badam_status st = wait_seq(ctx, &a->rq, MPI_SUCCESS, "all-reduce", a->seq, err);
    free(a);
    return st;
}

static const badam_comm_ops MPI_OPS = {
    mpi_rank,       mpi_size,      mpi_reduce_f32, mpi_reduce_f64,   mpi_reduce_scatter,
    mpi_all_gather, mpi_broadcast, mpi_barrier,    mpi_reduce_start, mpi_wait};

int badam_comm_mpi_available(void) {
    return 1;
}

badam_comm_stats badam_comm_mpi_stats(const badam_comm *comm) {
    badam_comm_stats s = {0, 0, 0, 0, 0};
    if (comm && comm->ops == &MPI_OPS) s = ((const mpi_ctx *)comm->ctx)->stats;
    return s;
}

static void free_ctx(mpi_ctx *c) {
    free(c->seen);
    free(c->hb_buf);
    free(c->hb_req);
    free(c);
}

badam_status badam_comm_mpi_create(double timeout_s, badam_comm *out, badam_error *err) {
    *out = badam_comm_single();
    if (!(timeout_s > 0))
        return badam_fail(err, BADAM_E_INVALID, "--comm-timeout %g: must be > 0 seconds",
                          timeout_s);
    mpi_ctx *c = calloc(1, sizeof *c);
    if (!c) return badam_fail(err, BADAM_E_NOMEM, "MPI communicator: out of memory");
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        /* OpenMP threads never call MPI: only the main thread does */
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            free(c);
            return badam_fail(err, BADAM_E_IO, "MPI_Init_thread failed");
        }
        c->inited = 1;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_dup(MPI_COMM_WORLD, &c->comm);
    MPI_Comm_dup(MPI_COMM_WORLD, &c->hb);
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(c->hb, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    c->timeout_s = timeout_s;
    c->seen = calloc((size_t)c->size, sizeof *c->seen);
    c->hb_buf = calloc((size_t)c->size, sizeof *c->hb_buf);
    c->hb_req = malloc((size_t)c->size * sizeof *c->hb_req);
    if (!c->seen || !c->hb_buf || !c->hb_req) {
        free_ctx(c);
        return badam_fail(err, BADAM_E_NOMEM, "MPI communicator: out of memory");
    }
    for (int r = 0; r < c->size; r++) c->hb_req[r] = MPI_REQUEST_NULL;
    out->ops = &MPI_OPS;
    out->ctx = c;
    return BADAM_OK;
}

void badam_comm_mpi_destroy(badam_comm *comm, int failed) {
    if (!comm || comm->ops != &MPI_OPS) return;
    mpi_ctx *c = comm->ctx;
    /* a failed rank of several: the others may wait in a collective or be stopped; MPI_Abort
     * ends the whole job (and does not return) */
    if (failed && c->size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
    /* a clean end: every heartbeat sent, then read, so none is left in flight */
    for (int r = 0; r < c->size; r++)
        if (c->hb_req[r] != MPI_REQUEST_NULL) MPI_Wait(&c->hb_req[r], MPI_STATUS_IGNORE);
    MPI_Barrier(c->comm);
    drain_heartbeats(c);
    MPI_Barrier(c->comm);
    MPI_Comm_free(&c->hb);
    MPI_Comm_free(&c->comm);
    int inited = c->inited;
    free_ctx(c);
    *comm = badam_comm_single();
    if (inited) MPI_Finalize();
}
