/* badam train over MPI: telling a process started by mpirun, and --nproc N, which starts the same
 * command under mpirun with N ranks. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train_mpi.h"

int cli_mpi_launched(void) {
    const char *keys[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"};
    for (int i = 0; i < 3; i++)
        if (getenv(keys[i]) && *getenv(keys[i])) return 1;
    return 0;
}

/* Is argv[i] the --nproc option (and, without '=', does it take argv[i + 1])? 0: no, 1: the
 * option with its value inline, 2: the option and the next argument. */
static int nproc_arg(const char *a) {
    if (!strcmp(a, "--nproc")) return 2;
    if (!strncmp(a, "--nproc=", 8)) return 1;
    return 0;
}

int cli_exec_mpirun(int argc, char **argv, int nproc) {
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) {
        perror("badam train: --nproc: /proc/self/exe");
        return 1;
    }
    exe[len] = '\0';
    char np[16];
    snprintf(np, sizeof np, "%d", nproc);
    /* one OpenMP thread pool per rank: the cores shared out, unless the user chose */
    if (!getenv("OMP_NUM_THREADS")) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        char threads[32];
        snprintf(threads, sizeof threads, "%ld", cores / nproc > 1 ? cores / nproc : 1);
        setenv("OMP_NUM_THREADS", threads, 1);
    }
    char **av = calloc((size_t)argc + 16, sizeof *av);
    if (!av) return 1;
    int n = 0;
    av[n++] = "mpirun";
    if (geteuid() == 0) av[n++] = "--allow-run-as-root"; /* Open MPI refuses root otherwise */
    /* more ranks than cores is allowed, and no rank is pinned to one core (its OpenMP threads
     * would share it) */
    av[n++] = "--oversubscribe";
    av[n++] = "--bind-to";
    av[n++] = "none";
    av[n++] = "-np";
    av[n++] = np;
    av[n++] = exe;
    av[n++] = "train";
    for (int i = 1; i < argc; i++) {
        int k = nproc_arg(argv[i]);
        if (k == 2) i++;
        if (!k) av[n++] = argv[i];
    }
    execvp("mpirun", av);
    perror("badam train: --nproc: cannot start mpirun (apt install openmpi-bin)");
    free(av);
    return 1;
}
