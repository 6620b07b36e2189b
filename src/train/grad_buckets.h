/* Bucketed all-reduce of the trainable gradients, overlapping backward (data parallel, issue 16).
 *
 * During the last micro-batch of a step, the model tells (llama_grad_plan.grad_ready) when a
 * parameter's gradient is complete; if the parameter is one of the method's trainable tensors,
 * its bucket (that tensor's gradient, copied to the host) starts an asynchronous all-reduce
 * (badam_comm_all_reduce_start_f32) while backward goes on with the layers below. finish()
 * waits for every bucket in start order and copies the sums back, then reduces (blocking, in
 * trainable order) the trainables no callback announced (LoRA's adapters). The sums are those of
 * method_reduce_trainable_grads (the same per-tensor all-reduce of the same values), so the method
 * then skips its own reduction (method_update_ctx.grads_reduced).
 *
 * Every rank must announce the same parameters in the same order (they run the same plan on the
 * same model); the trainer arms the buckets only when every rank has rows in the last micro-batch.
 * A bucket is one tensor: the trainable pool's storage is contiguous per tensor, and backward
 * announces tensors one at a time. */
#ifndef BADAM_TRAIN_GRAD_BUCKETS_H
#define BADAM_TRAIN_GRAD_BUCKETS_H

#include "badam/comm.h"
#include "optim/trainable.h"

typedef struct grad_buckets grad_buckets;

/* An empty set on comm (not owned; must outlive it). */
badam_status grad_buckets_create(const badam_comm *comm, grad_buckets **out, badam_error *err);
void grad_buckets_free(grad_buckets *g);

/* Arms the buckets for the trainables of ts (not owned) for the micro-batch about to run. */
void grad_buckets_arm(grad_buckets *g, trainable_set *ts);
/* 1 while armed (between arm and finish). */
int grad_buckets_armed(const grad_buckets *g);
/* The gradient of model parameter `param` is complete: starts its bucket if it is a trainable
 * one not started yet. Errors are kept for finish (a callback returns none). */
void grad_buckets_ready(grad_buckets *g, int param);
/* Waits for every bucket, reduces what was not started, copies the sums into the gradients and
 * disarms. Errors: a failed start or wait (the communicator's message), out of memory, a
 * parameter announced twice. */
badam_status grad_buckets_finish(grad_buckets *g, badam_error *err);

#endif
