/* Helpers of the PyTorch reference tests (ref_compare.h). */
#include "ref_compare.h"

#include <stdio.h>
#include <math.h>
#include <stdlib.h>

#include "testutil.h"

int ref_can_run(void) {
    if (!test_have_torch()) {
        fprintf(stderr, "SKIP: /usr/bin/python3 cannot import torch (apt install python3-torch)\n");
        return 0;
    }
    if (!test_source_path("tests/ref")) {
        fprintf(stderr, "SKIP: BADAM_SOURCE_DIR is not set\n");
        return 0;
    }
    return 1;
}

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

double ref_compare_files(const char *ours_path, const char *ref_path, const char *what, double atol,
                         double rtol, size_t *n_compared) {
    badam_error err = {0};
    st_file *a = NULL, *b = NULL;
    double worst = INFINITY;
    if (st_open(ours_path, &a, &err) || st_open(ref_path, &b, &err)) {
        fprintf(stderr, "%s: %s\n", what, err.message);
        st_close(a);
        return worst;
    }
    worst = 0;
    size_t n = 0;
    for (size_t i = 0; i < b->n_tensors; i++) {
        const st_tensor *r = &b->tensors[i], *o = st_find(a, r->name);
        if (!o || o->numel != r->numel) {
            fprintf(stderr, "%s: tensor %s missing or resized in ours\n", what, r->name);
            worst = INFINITY;
            continue;
        }
        float *x = malloc(sizeof(float) * r->numel), *y = malloc(sizeof(float) * r->numel);
        badam_convert(x, BADAM_DTYPE_F32, o->data, o->dtype, o->numel);
        badam_convert(y, BADAM_DTYPE_F32, r->data, r->dtype, r->numel);
        double e = test_close(x, y, r->numel, atol, rtol).ratio;
        if (!(e <= worst)) worst = e;
        n++;
        free(x);
        free(y);
    }
    st_close(a);
    st_close(b);
    if (n_compared) *n_compared = n;
    return worst;
}

int ref_run(const char *cmd) {
    int rc = test_system(cmd);
    if (rc != 0) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

int ref_make_train_fixture(const char *model_work, const char *data_work, char *model,
                           size_t model_size, char *fixture, size_t fixture_size) {
    snprintf(model, model_size, "%s/model", test_workdir(model_work));
    snprintf(fixture, fixture_size, "%s", test_workdir(data_work));
    char cmd[8192];
    const char *src = test_source_path("tests/ref");
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/make_tiny_model.py --out %s --preset untied_pad_llama3 && "
             "/usr/bin/python3 %s/make_train_fixture.py --out %s --n 24 --model %s --seed 5",
             src, model, src, fixture, model);
    return ref_run(cmd);
}
