/* Bucketed all-reduce of the trainable gradients overlapping backward (grad_buckets.h). */
#include "train/grad_buckets.h"

#include <stdlib.h>
#include <string.h>

typedef struct bucket {
    int t;       /* trainable index */
    float *host; /* the gradient's copy being summed */
    void *req;   /* the communicator's request (NULL: done) */
} bucket;

struct grad_buckets {
    const badam_comm *comm;
    trainable_set *ts; /* NULL: not armed */
    bucket *b;         /* [ts->n] in start order */
    uint8_t *started;  /* [ts->n] */
    int n, cap;
    badam_status st; /* the first error inside backward */
    badam_error err;
};

badam_status grad_buckets_create(const badam_comm *comm, grad_buckets **out, badam_error *err) {
    *out = calloc(1, sizeof **out);
    if (!*out) return badam_fail(err, BADAM_E_NOMEM, "gradient buckets: out of memory");
    (*out)->comm = comm;
    return BADAM_OK;
}

/* Frees the buckets' host copies, except those of requests never completed (after an error:
 * the communicator may still write them, and the failed run ends the job, mpi_destroy's
 * MPI_Abort; such a copy and its request are left, not freed). */
static void drop_buckets(grad_buckets *g) {
    for (int i = 0; i < g->n; i++)
        if (!g->b[i].req) free(g->b[i].host);
    g->n = 0;
}

void grad_buckets_free(grad_buckets *g) {
    if (!g) return;
    drop_buckets(g);
    free(g->b);
    free(g->started);
    free(g);
}

void grad_buckets_arm(grad_buckets *g, trainable_set *ts) {
    drop_buckets(g);
    g->st = BADAM_OK;
    if (ts->n > g->cap) {
        bucket *b = realloc(g->b, (size_t)ts->n * sizeof *b);
        uint8_t *s = b ? realloc(g->started, (size_t)ts->n) : NULL;
        if (b) g->b = b;
        if (!s) {
            g->st = badam_fail(&g->err, BADAM_E_NOMEM, "gradient buckets: out of memory");
            g->ts = ts;
            return;
        }
        g->started = s, g->cap = ts->n;
    }
    if (ts->n) memset(g->started, 0, (size_t)ts->n);
    g->ts = ts;
}

int grad_buckets_armed(const grad_buckets *g) {
    return g && g->ts;
}

/* Copies trainable i's gradient to the host and starts its all-reduce (async 0: reduces it at
 * once, so the communicator's count of asynchronous all-reduces is the overlapped buckets). */
static badam_status start(grad_buckets *g, int i, int async, badam_error *err) {
    const trainable *tr = &g->ts->t[i];
    if (g->started[i])
        return badam_fail(err, BADAM_E_INVALID,
                          "gradient buckets: the gradient of %s was announced twice", tr->name);
    g->started[i] = 1;
    if (!tr->numel) return BADAM_OK;
    bucket *b = &g->b[g->n];
    b->t = i, b->req = NULL;
    b->host = malloc(tr->numel * sizeof *b->host);
    if (!b->host)
        return badam_fail(err, BADAM_E_NOMEM, "gradient buckets: out of memory (%s, %zu floats)",
                          tr->name, tr->numel);
    g->n++;
    BE(g->ts->be, download, b->host, tr->grad, tr->numel * sizeof *b->host);
    if (!async) return badam_comm_all_reduce_f32(g->comm, b->host, tr->numel, err);
    return badam_comm_all_reduce_start_f32(g->comm, b->host, tr->numel, &b->req, err);
}

void grad_buckets_ready(grad_buckets *g, int param) {
    if (!g->ts || g->st) return;
    for (int i = 0; i < g->ts->n; i++)
        if (g->ts->t[i].param == param) {
            g->st = start(g, i, 1, &g->err);
            return;
        }
}

badam_status grad_buckets_finish(grad_buckets *g, badam_error *err) {
    badam_status st = g->st;
    if (st) *err = g->err;
    /* in start order; the first error ends the waits (each wait may take the whole timeout, and
     * the failed run ends the job) */
    for (int k = 0; k < g->n && !st; k++) {
        bucket *b = &g->b[k];
        st = badam_comm_wait(g->comm, b->req, err);
        if (st) break;
        b->req = NULL;
        const trainable *tr = &g->ts->t[b->t];
        BE(g->ts->be, upload, tr->grad, b->host, tr->numel * sizeof *b->host);
    }
    /* then the rest, blocking, once no asynchronous one is pending (a rank's heartbeats then
     * say truly how far it got) */
    int first = g->n;
    for (int i = 0; g->ts && i < g->ts->n && !st; i++)
        if (!g->started[i]) st = start(g, i, 0, err);
    for (int k = first; k < g->n && !st; k++) {
        const trainable *tr = &g->ts->t[g->b[k].t];
        BE(g->ts->be, upload, tr->grad, g->b[k].host, tr->numel * sizeof *g->b[k].host);
    }
    drop_buckets(g);
    g->ts = NULL;
    return st;
}
