/* The trainer on a backend its caller makes (the library's own entry, train_run, makes a CPU
 * backend per run): tests run whole training steps on a test backend (tests/util/
 * mprotect_backend.h) through it. */
#ifndef BADAM_TRAIN_TRAINER_INTERNAL_H
#define BADAM_TRAIN_TRAINER_INTERNAL_H

#include "badam/train.h"
#include "model/backend.h"

/* train_run with the workspace and the method's state (optimizer pools, gradient buffers) on
 * `be`, which the caller owns and which must outlive the call. train_run is this on a fresh CPU
 * backend (backend_cpu_create), destroyed when the run ends. */
badam_status train_run_on_backend(const train_config *c, backend *be, train_report *r,
                                  badam_error *err);

/* With --device cuda: logs the run's device memory by category against the plan's (through
 * c->log; train_device.c). */
void train_log_device_memory(const train_config *c, const backend *be, const train_report *r);

/* BADAM_E_UNSUPPORTED, naming the method, for a method --device cuda cannot run (LoRA and
 * MeZO-LoRA: their adapters are host memory); BADAM_OK otherwise. */
badam_status train_device_refuse(const train_config *c, badam_error *err);

/* The model's weights on a CUDA backend (train_device.c; on any other backend these do
 * nothing and return BADAM_OK). keep: the weight storage (storage, storage_bytes) uploaded once
 * and used in place by every op (backend_cuda_keep_weights), unless BADAM_CUDA_RESIDENT=0 (then
 * ops stage weights per use, the first pass's way); called once the weights are final (loaded,
 * restored). sync: the host storage brought up to date before the host reads it (checkpoints,
 * the saved model). drop: the device copy released (before the model is freed). */
/* The CUDA backend for c's run with a pool sized from the memory plan (memory_plan_predict on
 * the model's config.json for the whole micro-batch) plus a margin (256 MiB + 1/16 of the plan,
 * plus the largest weight as fp32 under BADAM_GEMM=fp32; train_device.c); BADAM_CUDA_POOL_MB
 * set: that size instead. Errors: BADAM_E_NOMEM naming the pool, plan, margin and free sizes when
 * the GPU has less free memory; the plan's and backend_cuda_create's errors. */
badam_status train_device_create(const train_config *c, backend **be, badam_error *err);
badam_status train_device_keep_weights(backend *be, void *storage, size_t bytes, badam_error *err);
badam_status train_device_sync_weights(backend *be, badam_error *err);
void train_device_drop_weights(backend *be);

#endif
