/* badam train's output folder, around the run:
 * - a new run (not --resume) into an OUT that holds a previous run's adapter/, checkpoint/ or
 *   checkpoint.old/ which this run would not write again (its method writes no adapter, or
 *   --no-save, --no-checkpoint) is refused, naming them; with --overwrite they are set aside in
 *   OUT/.replaced-by-run-PID/ (renames) and removed when the run succeeds, moved back when it
 *   fails, so OUT never ends with both runs' files mixed;
 * - a failed run removes OUT when this run created it and it is still empty (rmdir: never a
 *   folder that existed before, never one holding files). */
#ifndef BADAM_CLI_TRAIN_OUT_H
#define BADAM_CLI_TRAIN_OUT_H

#include "badam/train.h"
#include "cli.h"

enum { TRAIN_OUT_ENTRIES = 3, TRAIN_OUT_PATH = 4096 };

typedef struct train_out {
    char dir[TRAIN_OUT_PATH];
    char aside[TRAIN_OUT_PATH + 64]; /* the folder the stale entries were moved to, or "" */
    int existed;                     /* OUT was there before the run */
    int stale[TRAIN_OUT_ENTRIES], moved[TRAIN_OUT_ENTRIES], any_stale;
} train_out;

/* Before the run (rank 0): 0 to go on, 2 after a refusal message, 1 after an error moving the
 * stale entries aside (nothing left moved). */
int train_out_prepare(const train_config *c, int overwrite, train_out *o);
/* After the run: ok 1 removes the set-aside entries, ok 0 moves them back and removes an empty
 * OUT this run created. Problems are warnings. */
void train_out_finish(train_out *o, int ok);

#endif
