/* Helpers of the tests that compare a model against a PyTorch reference (tests/ref/bert_ref.py,
 * llama_ref.py): batches read from the reference's JSON, tensors checked against its safetensors
 * output. */
#ifndef BADAM_TESTS_REF_COMPARE_H
#define BADAM_TESTS_REF_COMPARE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "io/safetensors.h"

/* Reads a JSON array of B rows of T numbers each into a new row-major int32 array *out (malloc,
 * the caller frees it; allocated even when B = 0). Returns -1 when a row's length differs from
 * the first's (*out is still set, partly filled), else 0. */
int ref_read_int_rows(const json_t *rows, int32_t **out, int *B, int *T);

/* CHECK that ref exists, has n elements, and |ours - ref| <= atol + rtol * max|ref|
 * (CHECK_CLOSE); failures name `name` (the case) and `what` (the tensor). */
void ref_compare(const char *name, const char *what, const float *ours, const st_tensor *ref,
                 size_t n, double atol, double rtol);

#endif
