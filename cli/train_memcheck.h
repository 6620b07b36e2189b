/* The memory check of `badam train` and `badam plan`: the run's memory plan (badam/train.h,
 * memory_plan_predict, from config.json) against the memory the machine has available now
 * (badam_mem_available: MemAvailable), so a run that cannot fit is refused with both numbers
 * instead of being killed by the kernel part-way. */
#ifndef BADAM_CLI_TRAIN_MEMCHECK_H
#define BADAM_CLI_TRAIN_MEMCHECK_H

#include <stddef.h>

#include "badam/train.h"

/* The message of a plan of `planned` bytes (times `processes` on this machine) that does not fit
 * in `available` bytes, into buf: 1 when it does not fit, 0 (buf empty) when it fits or the
 * available memory is unknown (0). */
int memcheck_message(size_t planned, int processes, size_t available, char *buf, size_t size);

/* `badam train`'s check (unless ignored): 0 to go on, 2 after a message naming the planned and
 * available bytes and --ignore-memory-check. A config or plan that cannot be made is left to the
 * run to report (0). rows: the sequences of a micro-batch on one process; processes: the ranks
 * sharing this machine. */
int memcheck_train(const train_config *c, int rows, int processes);

#endif
