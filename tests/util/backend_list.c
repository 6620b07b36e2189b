/* The backends under test (backend_list.h): one line each. */
#include "backend_list.h"

const test_backend_entry TEST_BACKENDS[] = {
    {"cpu", backend_cpu_create},
};
const int TEST_BACKEND_COUNT = (int)(sizeof TEST_BACKENDS / sizeof TEST_BACKENDS[0]);
