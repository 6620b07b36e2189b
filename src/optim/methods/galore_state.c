/* GaLore's checkpoint part (galore_internal.h): galore.safetensors beside optimizer.safetensors. */
#include <stdio.h>
#include <stdlib.h>

#include "io/files.h"
#include "io/safetensors.h"
#include "optim/methods/galore_internal.h"

#define KEY_BYTES 512

/* The tensors of projected matrix x, in file order (at most 4): key suffix, dtype, numel, data. */
typedef struct gpart {
    const char *what;
    badam_dtype dtype;
    size_t numel;
    void *data;
} gpart;

static int gparts(const method_state *s, const gproj *x, gpart out[4]) {
    const llama_param *p = &s->m->params[x->param];
    size_t pn = (size_t)x->k * (size_t)(x->rows >= x->cols ? x->cols : x->rows);
    int n = 0;
    out[n++] = (gpart){"galore.P", BADAM_DTYPE_F32, pn, x->P};
    out[n++] = (gpart){"galore.m", BADAM_DTYPE_F32, x->low, x->m};
    out[n++] = (gpart){"galore.v", BADAM_DTYPE_F32, x->low, x->v};
    if (x->master_lo)
        out[n++] = (gpart){"master_lo", BADAM_DTYPE_BF16, p->numel, x->master_lo};
    else if (x->master != p->data)
        out[n++] = (gpart){"master", BADAM_DTYPE_F32, p->numel, x->master};
    return n;
}

static badam_status download_chunk(void *ctx, void *host, const void *src, size_t bytes,
                                   badam_error *err) {
    (void)err;
    backend *be = ctx;
    BE(be, download, host, src, bytes);
    return BADAM_OK;
}

static badam_status galore_write(const method_state *s, const char *path, badam_error *err) {
    const galore *g = s->priv;
    st_entry *e = calloc((size_t)g->n * 4 + 1, sizeof *e);
    char(*names)[KEY_BYTES] = calloc((size_t)g->n * 4 + 1, sizeof *names);
    if (!e || !names) {
        free(e), free(names);
        return badam_fail(err, BADAM_E_NOMEM, "checkpoint: out of memory");
    }
    size_t n = 0;
    for (int j = 0; j < g->n; j++) {
        gpart parts[4];
        int np = gparts(s, &g->p[j], parts);
        for (int k = 0; k < np; k++, n++) {
            snprintf(names[n], KEY_BYTES, "%s.%s", s->m->params[g->p[j].param].name, parts[k].what);
            e[n] =
                (st_entry){names[n], parts[k].dtype, 1, {(int64_t)parts[k].numel}, parts[k].data};
        }
    }
    badam_status st = st_write_fetch(path, e, n, download_chunk, s->be, err);
    free(e), free(names);
    return st;
}

badam_status galore_save_parts(const method_state *s, const char *dir, const char *base_model,
                               badam_error *err) {
    badam_status st = method_save_trainables(s, dir, base_model, err);
    char path[4096];
    io_path_join(path, sizeof path, dir, "galore.safetensors");
    return st ? st : galore_write(s, path, err);
}

/* Each tensor of every projected matrix from the mapped file into its backend memory; the file
 * must hold nothing else. */
static badam_status galore_read(method_state *s, const char *path, badam_error *err) {
    galore *g = s->priv;
    st_file *f = NULL;
    badam_status st = st_open(path, &f, err);
    if (st) return st;
    size_t used = 0;
    for (int j = 0; j < g->n && !st; j++) {
        gpart parts[4];
        int np = gparts(s, &g->p[j], parts);
        for (int k = 0; k < np && !st; k++, used++) {
            char name[KEY_BYTES];
            snprintf(name, sizeof name, "%s.%s", s->m->params[g->p[j].param].name, parts[k].what);
            st = checkpoint_upload_tensor(f, path, name, parts[k].dtype, parts[k].numel,
                                          parts[k].data, s->be, " (--galore-rank?)", err);
        }
    }
    if (!st) st = checkpoint_check_count(f, path, used, err);
    st_close(f);
    return st;
}

badam_status galore_load_parts(method_state *s, const char *dir, const method_resume *r,
                               badam_error *err) {
    badam_status st = method_load_trainables(s, dir, r, err);
    char path[4096];
    io_path_join(path, sizeof path, dir, "galore.safetensors");
    return st ? st : galore_read(s, path, err);
}
