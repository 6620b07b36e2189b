/* Comparing two training runs' outputs (run_compare.h). */
#include "run_compare.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>

#include "io/safetensors.h"
#include "testutil.h"

/* Every tensor of a and b (same names), max |a - b| <= tol * max |a|. */
void run_check_tensors(const char *what, const char *a, const char *b, double tol) {
    st_file *fa = NULL, *fb = NULL;
    badam_error err = {0};
    if (st_open(a, &fa, &err) || st_open(b, &fb, &err)) {
        CHECKF(0, "%s: %s", what, err.message);
        st_close(fa);
        return;
    }
    CHECKF(fa->n_tensors == fb->n_tensors, "%s: %zu vs %zu tensors", what, fa->n_tensors,
           fb->n_tensors);
    double worst = 0;
    for (size_t i = 0; i < fa->n_tensors; i++) {
        const st_tensor *x = &fa->tensors[i], *y = st_find(fb, x->name);
        if (!y || x->dtype != BADAM_DTYPE_F32 || y->numel != x->numel) {
            CHECKF(0, "%s: tensor %s missing or not fp32 in %s", what, x->name, b);
            continue;
        }
        const float *p = x->data, *q = y->data;
        double top = 0, diff = 0;
        for (size_t j = 0; j < x->numel; j++) {
            top = fmax(top, fabs(p[j]));
            diff = fmax(diff, fabs((double)p[j] - q[j]));
        }
        double rel = top > 0 ? diff / top : diff;
        worst = fmax(worst, rel);
        CHECKF(rel <= tol, "%s: %s differs by %.3g of its largest value", what, x->name, rel);
    }
    fprintf(stderr, "  %s: worst tensor %.3g of its largest value (%zu tensors)\n", what, worst,
            fa->n_tensors);
    st_close(fa);
    st_close(fb);
}

/* The losses and token counts of metrics.jsonl (step lines), up to max; returns the count. */
int run_read_curve(const char *dir, double *loss, long *tokens, int max) {
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[8192];
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *l = json_object_get(j, "loss"), *t = json_object_get(j, "tokens");
        if (l && t && json_object_get(j, "step")) {
            loss[n] = json_number_value(l);
            tokens[n++] = (long)json_integer_value(t);
        }
        json_decref(j);
    }
    fclose(f);
    return n;
}

void run_check_curves(const char *what, const char *a, const char *b, double tol) {
    double la[256], lb[256];
    long ta[256], tb[256];
    int na = run_read_curve(a, la, ta, 256), nb = run_read_curve(b, lb, tb, 256);
    CHECKF(na > 0 && na == nb, "%s: %d vs %d steps in metrics.jsonl", what, na, nb);
    for (int i = 0; i < na && i < nb; i++) {
        CHECKF(fabs(la[i] - lb[i]) <= tol * fabs(la[i]), "%s: step %d loss %.9g vs %.9g", what,
               i + 1, la[i], lb[i]);
        CHECKF(ta[i] == tb[i], "%s: step %d trained %ld vs %ld tokens", what, i + 1, ta[i], tb[i]);
    }
}
