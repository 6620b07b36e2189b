/* The backends test_backend_ops checks against the reference backend. A new backend adds one
 * line to BACKENDS in backend_list.c (its create function); a backend the machine cannot run
 * returns an error from create and is skipped with the message. */
#ifndef BADAM_TEST_BACKEND_LIST_H
#define BADAM_TEST_BACKEND_LIST_H

#include "model/backend.h"

typedef struct test_backend_entry {
    const char *name;
    badam_status (*create)(backend **out, badam_error *err);
} test_backend_entry;

extern const test_backend_entry TEST_BACKENDS[];
extern const int TEST_BACKEND_COUNT;

#endif
