/* badam train over MPI (train_mpi.c). */
#ifndef BADAM_CLI_TRAIN_MPI_H
#define BADAM_CLI_TRAIN_MPI_H

/* 1 when this process was started by mpirun (Open MPI's or a PMI launcher's environment). */
int cli_mpi_launched(void);
/* Runs `mpirun -np nproc THIS_BINARY train ARGS` (ARGS: argv[1..] without --nproc) in place of
 * this process, with the flags Open MPI needs here: --allow-run-as-root as root,
 * --oversubscribe and --bind-to none; OMP_NUM_THREADS defaults to cores / nproc. Returns 1
 * (after a message) only when mpirun cannot be started. argv[0] is "train". */
int cli_exec_mpirun(int argc, char **argv, int nproc);

#endif
