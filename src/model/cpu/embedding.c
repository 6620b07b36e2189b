/* Token embedding lookup and its gradient (ops.h states the math). Tokens must lie in [0, V);
 * the caller (the model layer) validates them, since these kernels do not know V. */
#include "model/cpu/ops.h"

void embedding_forward(float *out, const int32_t *tokens, int n, const void *table,
                       badam_dtype table_dtype, int C) {
    const char *base = (const char *)table;
    size_t row_bytes = (size_t)C * badam_dtype_size(table_dtype);
#pragma omp parallel for
    for (int i = 0; i < n; i++) {
        badam_convert(out + (size_t)i * C, BADAM_DTYPE_F32, base + (size_t)tokens[i] * row_bytes,
                      table_dtype, (size_t)C);
    }
}

/* Rows may repeat a token, so the scatter-add runs in row order (serially); it is n*C adds. */
void embedding_backward(float *dtable, const int32_t *tokens, int n, const float *dout, int C) {
    for (int i = 0; i < n; i++) {
        float *dst = dtable + (size_t)tokens[i] * C;
        const float *src = dout + (size_t)i * C;
        for (int j = 0; j < C; j++) dst[j] += src[j];
    }
}
