/* Helpers of the tests that compare a model against a PyTorch reference (tests/ref/bert_ref.py,
 * llama_ref.py): batches read from the reference's JSON, tensors checked against its safetensors
 * output. */
#ifndef BADAM_TESTS_REF_COMPARE_H
#define BADAM_TESTS_REF_COMPARE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "io/safetensors.h"

/* 1 when /usr/bin/python3 imports torch and BADAM_SOURCE_DIR is set (tests/ref is found);
 * otherwise prints the SKIP reason to stderr and returns 0 (the test then exits TEST_SKIP_CODE). */
int ref_can_run(void);

/* Reads a JSON array of B rows of T numbers each into a new row-major int32 array *out (malloc,
 * the caller frees it; allocated even when B = 0). Returns -1 when a row's length differs from
 * the first's (*out is still set, partly filled), else 0. */
int ref_read_int_rows(const json_t *rows, int32_t **out, int *B, int *T);

/* CHECK that ref exists, has n elements, and |ours - ref| <= atol + rtol * max|ref|
 * (CHECK_CLOSE); failures name `name` (the case) and `what` (the tensor). */
void ref_compare(const char *name, const char *what, const float *ours, const st_tensor *ref,
                 size_t n, double atol, double rtol);

/* Every tensor of the safetensors file ref_path against the one of the same name in ours_path:
 * the worst test_close ratio (|a - b| over atol + rtol * max|b| of the tensor; <= 1 is within
 * tolerance), INFINITY when a file cannot be read or a tensor is missing or resized in ours
 * (said on stderr, prefixed by `what`). *n_compared (may be NULL) receives the tensors compared
 * when both files open. */
double ref_compare_files(const char *ours_path, const char *ref_path, const char *what, double atol,
                         double rtol, size_t *n_compared);

#endif
