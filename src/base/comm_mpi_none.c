/* Built without MPI (CMake found none): the MPI communicator (badam/comm.h) is unavailable. */
#include "badam/comm.h"

int badam_comm_mpi_available(void) {
    return 0;
}

badam_status badam_comm_mpi_create(double timeout_s, badam_comm *out, badam_error *err) {
    (void)timeout_s;
    *out = badam_comm_single();
    return badam_fail(err, BADAM_E_UNSUPPORTED,
                      "this badam was built without MPI (install libopenmpi-dev and rebuild)");
}

badam_comm_stats badam_comm_mpi_stats(const badam_comm *comm) {
    (void)comm;
    badam_comm_stats s = {0, 0, 0, 0, 0};
    return s;
}

void badam_comm_mpi_destroy(badam_comm *comm, int failed) {
    (void)comm, (void)failed;
}
