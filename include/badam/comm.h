/* The communicator: how the ranks of a multi-process run (data parallel) exchange numbers. The
 * trainer calls it wherever a multi-process run needs it (the loss and token counts of a step,
 * the gradients of the tensors a method trains and so the global gradient norm, and "rank 0
 * writes" for models, checkpoints, metrics and memory.json); a single process uses
 * badam_comm_single(), whose operations are identities. An MPI (or NCCL) communicator is one more
 * badam_comm_ops table with its context.
 *
 * Contract:
 *  - Every rank calls the collectives (everything but rank and size) in the same order with the
 *    same counts; a collective returns on a rank once that rank's part is done (and, for
 *    barrier, once every rank has entered it).
 *  - Buffers belong to the caller and are only read or written during the call; the
 *    communicator keeps no pointer to them. In-place calls are allowed where stated.
 *  - Sums are elementwise over ranks. The order in which ranks' values are added is the
 *    implementation's, but it must be the same on every rank, so every rank gets the same bits.
 *  - Errors are values (badam_status with a message), as everywhere in the library.
 * The single-process communicator is stateless: its context is NULL, and the ops table is a
 * constant, so any number of runs may share it. */
#ifndef BADAM_COMM_H
#define BADAM_COMM_H

#include <stddef.h>

#include "badam/status.h"

typedef struct badam_comm_ops {
    int (*rank)(void *ctx); /* this process's rank, 0 .. size - 1 */
    int (*size)(void *ctx); /* number of ranks, >= 1 */
    /* buf[i] = sum over ranks of buf[i], i < n; in place */
    badam_status (*all_reduce_sum_f32)(void *ctx, float *buf, size_t n, badam_error *err);
    badam_status (*all_reduce_sum_f64)(void *ctx, double *buf, size_t n, badam_error *err);
    /* send: size * n floats, chunk r = send[r*n .. r*n + n); recv[i] = sum over ranks of their
     * send chunk `rank`, i < n. recv may equal send (in place: the result is in send[0 .. n)). */
    badam_status (*reduce_scatter_sum_f32)(void *ctx, const float *send, float *recv, size_t n,
                                           badam_error *err);
    /* recv: size * n floats; recv[r*n + i] = send[i] of rank r. send may equal recv + rank*n. */
    badam_status (*all_gather_f32)(void *ctx, const float *send, float *recv, size_t n,
                                   badam_error *err);
    /* bytes of buf on root copied to buf on every rank */
    badam_status (*broadcast)(void *ctx, void *buf, size_t bytes, int root, badam_error *err);
    badam_status (*barrier)(void *ctx, badam_error *err);
    /* Optional (NULL: the calls below run the blocking all_reduce_sum_f32 at start).
     * all_reduce_start_f32: begins buf[i] = sum over ranks of buf[i], i < n, in place, and
     *   returns at once with *req (NULL: it is already done); buf is the communicator's until
     *   wait returns. The start counts as the collective's place in the order of collectives.
     * wait: completes req under the same timeout and error rules as a blocking collective, and
     *   frees it (every started request must be waited for, in any order). */
    badam_status (*all_reduce_start_f32)(void *ctx, float *buf, size_t n, void **req,
                                         badam_error *err);
    badam_status (*wait)(void *ctx, void *req, badam_error *err);
} badam_comm_ops;

typedef struct badam_comm {
    const badam_comm_ops *ops;
    void *ctx; /* the implementation's (an MPI communicator, ...); NULL for single */
} badam_comm;

/* The single-process communicator: rank 0 of 1, every collective an identity (reduce_scatter
 * and all_gather copy send to recv when they differ). */
badam_comm badam_comm_single(void);

/* Calls through c->ops (c NULL: the single-process communicator). */
int badam_comm_rank(const badam_comm *c);
int badam_comm_size(const badam_comm *c);
badam_status badam_comm_all_reduce_f32(const badam_comm *c, float *buf, size_t n, badam_error *err);
badam_status badam_comm_all_reduce_f64(const badam_comm *c, double *buf, size_t n,
                                       badam_error *err);
badam_status badam_comm_reduce_scatter_f32(const badam_comm *c, const float *send, float *recv,
                                           size_t n, badam_error *err);
badam_status badam_comm_all_gather_f32(const badam_comm *c, const float *send, float *recv,
                                       size_t n, badam_error *err);
badam_status badam_comm_broadcast(const badam_comm *c, void *buf, size_t bytes, int root,
                                  badam_error *err);
badam_status badam_comm_barrier(const badam_comm *c, badam_error *err);
/* The asynchronous all-reduce (ops all_reduce_start_f32 and wait above): start begins the in-place
 * sum of buf[0 .. n) over ranks and returns a request in *req (NULL when nothing is left to wait
 * for: one rank, or a communicator without the asynchronous ops, which reduces at once); wait
 * completes and frees it (req NULL: nothing to do). Between the two, buf must not be touched.
 * Sums have the same bits as badam_comm_all_reduce_f32 on the same values. */
badam_status badam_comm_all_reduce_start_f32(const badam_comm *c, float *buf, size_t n, void **req,
                                             badam_error *err);
badam_status badam_comm_wait(const badam_comm *c, void *req, badam_error *err);

/* The MPI communicator: the ranks of MPI_COMM_WORLD (a process started by mpirun), from
 * src/base/comm_mpi.c when the library was built with MPI (CMake found it).
 * badam_comm_mpi_available: 1 when built with MPI, else 0 (and create fails, saying so).
 * badam_comm_mpi_create: initialises MPI (MPI_Init_thread, funneled) unless the caller did, and
 *   returns the communicator in *out. timeout_s (> 0, seconds) bounds every collective: a rank
 *   that waits longer for the others fails with an error naming the ranks that never reached the
 *   collective (dead or hung), instead of hanging.
 * badam_comm_mpi_destroy: ends the communicator (and MPI, if create started it). failed != 0 on
 *   a run of several ranks: MPI_Abort ends every rank of the job (the others may be waiting in
 *   a collective) and does not return. A communicator that is not MPI's is left alone. */
int badam_comm_mpi_available(void);
/* What an MPI communicator has done so far on this rank (zeros for any other communicator):
 * reduce_bytes is the payload this rank handed to all-reduce, reduce-scatter (size * n floats)
 * and all-gather (its n floats); a ring all-reduce of P bytes sends 2 (N - 1) / N * P bytes per
 * rank. broadcast_bytes: the payload of broadcasts (the initial weights, the start-up check).
 * seconds: wall time from entering each collective to its end on this rank (waiting for the
 * others included). */
typedef struct badam_comm_stats {
    unsigned long long collectives;
    double reduce_bytes, broadcast_bytes, seconds;
    unsigned long long async_reduces; /* all-reduces begun by badam_comm_all_reduce_start_f32 */
} badam_comm_stats;
badam_comm_stats badam_comm_mpi_stats(const badam_comm *comm);
badam_status badam_comm_mpi_create(double timeout_s, badam_comm *out, badam_error *err);
void badam_comm_mpi_destroy(badam_comm *comm, int failed);

#endif
