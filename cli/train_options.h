/* Options shared by `badam train` and `badam plan`: parsers for enum-valued flags. */
#ifndef BADAM_CLI_TRAIN_OPTIONS_H
#define BADAM_CLI_TRAIN_OPTIONS_H

#include <stddef.h>

int parse_method(const char *v, void *target, char *why, size_t n);
int parse_dtype(const char *v, void *target, char *why, size_t n);
/* --device of commands that run on the CPU only (generate, eval): cpu is accepted, cuda refused
 * with a message saying what is not supported there; target is unused (may be NULL). */
int parse_cpu_device(const char *v, void *target, char *why, size_t n);
int parse_switch_every(const char *v, void *target, char *why, size_t n);
int parse_switch_mode(const char *v, void *target, char *why, size_t n);
/* --mask-mode adjacent|scatter into an int (1: scatter). */
int parse_mask_mode(const char *v, void *target, char *why, size_t n);
/* "layer", "module", "matrix", or a block list of prefixes: into a partition_options. */
int parse_partition(const char *v, void *target, char *why, size_t n);
int parse_schedule(const char *v, void *target, char *why, size_t n);
int parse_lora_targets(const char *v, void *target, char *why, size_t n);
int parse_format(const char *v, void *target, char *why, size_t n);
int parse_u64(const char *v, void *target, char *why, size_t n);
int parse_megabytes(const char *v, void *target, char *why, size_t n);

#endif
