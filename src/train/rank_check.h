/* Data parallel: before a run of several ranks starts, every rank compares what it runs with rank
 * 0: the run record (run_record.h: every option that shapes the trajectory, and the SHA-256 of
 * the data files and tokenizer), the SHA-256 of its own binary (/proc/self/exe) and the size of
 * its model. */
#ifndef BADAM_TRAIN_RANK_CHECK_H
#define BADAM_TRAIN_RANK_CHECK_H

#include <jansson.h>

#include "badam/comm.h"

/* Collective (every rank calls it). BADAM_OK on one rank, or when every rank agrees with rank
 * 0; otherwise BADAM_E_INVALID on every rank, naming the first differing rank and each
 * difference ("--lr: rank 0 has "0.001", rank 1 "0.002""). record may be NULL (then the options
 * are not compared). */
badam_status rank_check_agree(const badam_comm *comm, const json_t *record, size_t model_bytes,
                              badam_error *err);

#endif
