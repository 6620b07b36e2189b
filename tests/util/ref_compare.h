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

/* Runs cmd through the shell (test_system); a nonzero status is said on stderr and returned. */
int ref_run(const char *cmd);

/* The training references' inputs: the untied_pad_llama3 tiny model (make_tiny_model.py) in
 * WORK(model_work)/model and its 24-example fixture (make_train_fixture.py, seed 5) in
 * WORK(data_work); their paths go to model and fixture (NUL-terminated, truncated to the sizes).
 * Returns the commands' status (0: written). */
int ref_make_train_fixture(const char *model_work, const char *data_work, char *model,
                           size_t model_size, char *fixture, size_t fixture_size);

#endif
