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

#endif
