/* Comparing two training runs' outputs (tests of data parallel and sharded runs). */
#ifndef BADAM_TEST_RUN_COMPARE_H
#define BADAM_TEST_RUN_COMPARE_H

/* Every fp32 tensor of the safetensors files a and b (same names): max |a - b| <= tol * max |a|,
 * as CHECKs; prints the worst ratio. */
void run_check_tensors(const char *what, const char *a, const char *b, double tol);

/* The losses and token counts of DIR/metrics.jsonl's step lines, up to max; the count, -1 when
 * the file cannot be opened. */
int run_read_curve(const char *dir, double *loss, long *tokens, int max);

/* Run folders a and b have the same number of steps, losses within tol relative and the same
 * token counts, as CHECKs. */
void run_check_curves(const char *what, const char *a, const char *b, double tol);

#endif
