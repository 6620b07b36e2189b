/* A Hugging Face folder's tensors checked against its config's parameter table (badam inspect),
 * without converting or loading any weight; the config and table come from the folder's model
 * family (model_arch_for_folder), so every family is inspected the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/llama.h"
#include "badam/model.h"
#include "io/safetensors.h"

void llama_folder_report_free(llama_folder_report *r) {
    if (!r) return;
    free(r->params);
    free(r->tensors);
    for (size_t i = 0; i < r->n_unknown; i++) free(r->unknown[i]);
    free(r->unknown);
    memset(r, 0, sizeof *r);
}

/* Records the folder's tensor names that are not parameters of the config. */
static badam_status collect_unknown(const st_set *set, llama_folder_report *r, badam_error *err) {
    r->unknown = calloc(set->n_index ? set->n_index : 1, sizeof *r->unknown);
    if (!r->unknown) return badam_fail(err, BADAM_E_NOMEM, "out of memory");
    for (size_t i = 0; i < set->n_index; i++) {
        int known = 0;
        for (int j = 0; j < r->n_params && !known; j++)
            known = !strcmp(r->params[j].name, set->index[i]->name);
        if (known) continue;
        if (!(r->unknown[r->n_unknown] = strdup(set->index[i]->name)))
            return badam_fail(err, BADAM_E_NOMEM, "out of memory");
        r->n_unknown++;
    }
    return BADAM_OK;
}

badam_status llama_folder_inspect(const char *dir, llama_folder_report *r, badam_error *err) {
    memset(r, 0, sizeof *r);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    st_set *set = NULL;
    const model_arch *arch = NULL;
    llama_model *m = NULL; /* the family's parameter table; r takes it */
    badam_status st = model_arch_for_folder(dir, &arch, err);
    if (!st) st = arch->config_load(path, &r->cfg, err);
    if (!st) st = arch->describe(&r->cfg, BADAM_DTYPE_F32, &m, err);
    if (!st) {
        r->params = m->params, r->n_params = m->n_params;
        m->params = NULL;
        arch->free(m);
    }
    if (!st) st = st_set_open_dir(dir, &set, err);
    if (!st) {
        r->tensors = calloc((size_t)r->n_params, sizeof *r->tensors);
        if (!r->tensors) st = badam_fail(err, BADAM_E_NOMEM, "out of memory");
    }
    for (int i = 0; !st && i < r->n_params; i++) {
        const llama_param *p = &r->params[i];
        const st_tensor *t = st_set_find(set, p->name, NULL);
        llama_folder_tensor *ft = &r->tensors[i];
        if (!t) {
            r->n_problems++;
            continue;
        }
        ft->found = 1;
        ft->stored_dtype = t->dtype;
        ft->stored_bytes = t->nbytes;
        ft->shape_ok = t->ndim == p->ndim && t->shape[0] == p->shape[0] &&
                       (p->ndim == 1 || t->shape[1] == p->shape[1]);
        r->n_problems += !ft->shape_ok;
        r->stored_bytes += t->nbytes;
    }
    if (!st) st = collect_unknown(set, r, err);
    st_set_close(set);
    if (st) llama_folder_report_free(r);
    return st;
}
