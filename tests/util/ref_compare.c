/* Helpers of the PyTorch reference tests (ref_compare.h). */
#include "ref_compare.h"

#include <stdlib.h>

#include "testutil.h"

int ref_read_int_rows(const json_t *rows, int32_t **out, int *B, int *T) {
    *B = (int)json_array_size(rows);
    *T = *B ? (int)json_array_size(json_array_get(rows, 0)) : 0;
    *out = malloc(sizeof(int32_t) * (size_t)(*B) * (*T) + 4);
    int i = 0;
    const json_t *row, *v;
    size_t r, c;
    json_array_foreach(rows, r, row) {
        if ((int)json_array_size(row) != *T) return -1;
        json_array_foreach(row, c, v)(*out)[i++] = (int32_t)json_number_value(v);
    }
    return 0;
}

void ref_compare(const char *name, const char *what, const float *ours, const st_tensor *ref,
                 size_t n, double atol, double rtol) {
    if (!ref) {
        CHECKF(0, "%s: reference has no '%s'", name, what);
        return;
    }
    CHECKF(ref->numel == n, "%s: %s size %zu vs reference %zu", name, what, n, ref->numel);
    if (ref->numel == n)
        CHECK_CLOSE(ours, ref->data, n, atol, rtol, "%s: %s vs PyTorch", name, what);
}
