/* LoRA adapters on the Llama linears: attach, forward, backward, merge, PEFT save/load.
 *   y = W x + b + s B (A drop(x)),  s = alpha / r
 *   dB += s dy^T u  (u = A drop(x));  du = s dy B;  dA += du^T drop(x);  dx += drop'(du A) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/memory.h"
#include "io/files.h"
#include "io/json_get.h"
#include "io/json_write.h"
#include "io/safetensors.h"
#include "model/llama_internal.h"

/* Targets are masks of neutral roles (bit 1u << model_role, model_tags.h): the names below are
 * the roles', and an adapter goes on every layer weight whose tag has a targeted projection
 * role. The PEFT module names (q_proj, ...) are the names' "_proj" forms. */
static const char *const SHORT_NAME[MODEL_ROLE_COUNT] = {
    [MODEL_ROLE_Q] = "q_proj",       [MODEL_ROLE_K] = "k_proj",       [MODEL_ROLE_V] = "v_proj",
    [MODEL_ROLE_O] = "o_proj",       [MODEL_ROLE_GATE] = "gate_proj", [MODEL_ROLE_UP] = "up_proj",
    [MODEL_ROLE_DOWN] = "down_proj",
};

/* The same modules' names in the encoder family (bert_params.c: Hugging Face's BertLayer): the
 * PEFT target_modules an encoder's adapters are saved under, also accepted as targets. */
static const char *const ENCODER_NAME[MODEL_ROLE_COUNT] = {
    [MODEL_ROLE_Q] = "query",
    [MODEL_ROLE_K] = "key",
    [MODEL_ROLE_V] = "value",
    [MODEL_ROLE_O] = "attention.output.dense",
    [MODEL_ROLE_UP] = "intermediate.dense",
    [MODEL_ROLE_DOWN] = "output.dense",
};

/* Every projection role: the targets "all" selects and the only ones that may be adapted. */
static uint32_t projection_roles(void) {
    uint32_t mask = 0;
    for (int r = 0; r < MODEL_ROLE_COUNT; r++)
        if (model_role_is_projection(r)) mask |= 1u << r;
    return mask;
}

/* 1 when parameter p gets an adapter under `targets`: a layer weight (not a bias) of a targeted
 * projection role. */
static int lora_selects(const llama_param *p, uint32_t targets) {
    return p->layer >= 0 && p->ndim == 2 && !p->tag.bias && model_role_is_projection(p->tag.role) &&
           (targets & (1u << p->tag.role));
}

badam_status llama_lora_parse_targets(const char *list, uint32_t *targets, badam_error *err) {
    *targets = 0;
    if (!strcmp(list, "all")) {
        *targets = projection_roles();
        return BADAM_OK;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int k = 0; k < MODEL_ROLE_COUNT && !found; k++) {
            if (!SHORT_NAME[k]) continue;
            size_t n = strlen(tok);
            /* "q", "q_proj" or the encoder's "query" */
            if (!strcmp(tok, SHORT_NAME[k]) || (ENCODER_NAME[k] && !strcmp(tok, ENCODER_NAME[k])) ||
                (n + 5 == strlen(SHORT_NAME[k]) && !strncmp(tok, SHORT_NAME[k], n) &&
                 !strcmp(SHORT_NAME[k] + n, "_proj"))) {
                *targets |= 1u << k;
                found = 1;
            }
        }
        if (!found)
            return badam_fail(err, BADAM_E_INVALID,
                              "LoRA target '%s' is not one of q, k, v, o, gate, up, down (or an "
                              "encoder's query, key, value, attention.output.dense, "
                              "intermediate.dense, output.dense)",
                              tok);
    }
    if (!*targets) return badam_fail(err, BADAM_E_INVALID, "LoRA targets are empty");
    return BADAM_OK;
}

void llama_lora_module_name(const llama_model *m, int layer, llama_param_kind kind, char *out,
                            size_t size) {
    int i = llama_param_index(m, layer, kind);
    const char *name = i < 0 ? "?" : m->params[i].name, *dot = strrchr(name, '.');
    snprintf(out, size, "%.*s", (int)(dot ? dot - name : (ptrdiff_t)strlen(name)), name);
}

/* Input and output width of the adapted linear (layer l, kind): its weight is [out, in]. */
static void kind_dims(const llama_model *m, int l, llama_param_kind kind, int *in, int *out) {
    const llama_param *p = &m->params[llama_param_index(m, l, kind)];
    *out = (int)p->shape[0], *in = (int)p->shape[1];
}

/* splitmix64 (backend.h): the hash behind A's initialisation and the dropout masks. */
#define mix64 backend_mix64
#define unit_from backend_unit

void llama_lora_detach(llama_model *m) {
    llama_lora *lo = m->lora;
    if (!lo) return;
    int n = m->cfg.n_layers * LLAMA_P_KIND_COUNT;
    for (int i = 0; i < n; i++) {
        badam_free(lo->A[i]);
        badam_free(lo->B[i]);
        badam_free(lo->dA[i]);
        badam_free(lo->dB[i]);
    }
    free(lo->A);
    free(lo->B);
    free(lo->dA);
    free(lo->dB);
    free(lo);
    m->lora = NULL;
}

badam_status llama_lora_attach(llama_model *m, int rank, float alpha, float dropout,
                               uint32_t targets, uint64_t seed, badam_error *err) {
    if (m->lora) return badam_fail(err, BADAM_E_INVALID, "LoRA: adapters are already attached");
    if (rank <= 0 || rank > 4096 || !(alpha > 0) || !(dropout >= 0 && dropout < 1) || !targets ||
        (targets & ~projection_roles()))
        return badam_fail(err, BADAM_E_INVALID,
                          "LoRA: need rank in [1, 4096], alpha > 0, dropout in [0, 1) and targets "
                          "among q, k, v, o, gate, up, down (got rank %d, alpha %g, dropout %g)",
                          rank, alpha, dropout);
    llama_lora *lo = calloc(1, sizeof *lo);
    int n = m->cfg.n_layers * LLAMA_P_KIND_COUNT;
    if (lo) {
        lo->A = calloc((size_t)n, sizeof(float *));
        lo->B = calloc((size_t)n, sizeof(float *));
        lo->dA = calloc((size_t)n, sizeof(float *));
        lo->dB = calloc((size_t)n, sizeof(float *));
    }
    m->lora = lo;
    if (!lo || !lo->A || !lo->B || !lo->dA || !lo->dB) goto nomem;
    lo->rank = rank, lo->alpha = alpha, lo->dropout = dropout, lo->targets = targets;
    uint32_t present = 0; /* the targeted roles the model has (an encoder has no gate) */
    for (int pi = 0; pi < m->n_params; pi++) {
        const llama_param *p = &m->params[pi];
        if (!lora_selects(p, targets)) continue;
        /* adapter slot layer * MODEL_ROLE_COUNT + role (llama_adapter_index) */
        int i = p->layer * MODEL_ROLE_COUNT + p->tag.role;
        int out = (int)p->shape[0], in = (int)p->shape[1];
        lo->A[i] = badam_alloc_array_in(BADAM_MEM_MASTER, (size_t)rank * in, sizeof(float));
        lo->B[i] = badam_alloc_array_in(BADAM_MEM_MASTER, (size_t)out * rank, sizeof(float));
        lo->dA[i] = badam_alloc_array_in(BADAM_MEM_GRADIENTS, (size_t)rank * in, sizeof(float));
        lo->dB[i] = badam_alloc_array_in(BADAM_MEM_GRADIENTS, (size_t)out * rank, sizeof(float));
        if (!lo->A[i] || !lo->B[i] || !lo->dA[i] || !lo->dB[i]) goto nomem;
        /* PEFT: kaiming_uniform_(A, a=sqrt(5)) is U(-1/sqrt(in), 1/sqrt(in)); B = 0. */
        double bound = 1.0 / sqrt((double)in);
        for (size_t j = 0; j < (size_t)rank * in; j++) {
            uint64_t h = mix64(seed ^ mix64((uint64_t)i * 0x100000001B3ull + j));
            lo->A[i][j] = (float)((2.0 * unit_from(h) - 1.0) * bound);
        }
        lo->n_adapters++;
        lo->n_params += (size_t)rank * (in + out);
        present |= 1u << p->tag.role;
    }
    if (!present) {
        llama_lora_detach(m);
        return badam_fail(err, BADAM_E_INVALID,
                          "LoRA: no layer weight of the %s model matches the "
                          "targets",
                          m->cfg.model_type);
    }
    lo->targets = present;
    return BADAM_OK;
nomem:
    llama_lora_detach(m);
    return badam_fail(err, BADAM_E_NOMEM, "LoRA: out of memory for rank-%d adapters", rank);
}

static int dropping(const llama_lora *lo) {
    return lo->training && lo->dropout > 0;
}

/* The dropout mask key of one adapter in one micro-step; element j is dropped when
 * backend_dropout_unit(key, j) < p. */
static uint64_t dropout_key(const llama_lora *lo, int l, llama_param_kind kind) {
    return mix64(lo->dropout_seed ^ mix64(lo->dropout_step * 64 + (uint64_t)l * 16 + kind));
}

/* out[j] = keep(first + j) ? g[j] / (1 - p) : 0   (accumulate: out[j] += ...), g the [rows, in]
 * adapter input of the rows from token row first_token of the global micro-batch on: element j
 * has the mask index first_token * in + j, so a rank of a data-parallel run draws the mask that
 * one process draws for the same sequences (the index follows the global sequence index). */
static void apply_dropout(backend *be, float *out, const float *g, size_t n, size_t first_token,
                          int in, const llama_lora *lo, int l, llama_param_kind kind,
                          int accumulate) {
    BE(be, dropout, out, g, n, dropout_key(lo, l, kind), first_token * (size_t)in, lo->dropout,
       accumulate);
}

/* The adapter input of n rows: x itself, or a dropped-out copy in lora_x while training (lora_x
 * NULL: never dropped, as when decoding). */
static const float *adapter_input(const llama_model *m, backend *be, float *lora_x, int n,
                                  size_t first_token, int l, llama_param_kind kind, const float *x,
                                  int in) {
    if (!lora_x || !dropping(m->lora)) return x;
    apply_dropout(be, lora_x, x, (size_t)n * in, first_token, in, m->lora, l, kind, 0);
    return lora_x;
}

void llama_lora_forward(const llama_model *m, const layer_run *run, int l, llama_param_kind kind,
                        float *y, const float *x, float *u, int in, int out) {
    int a = llama_adapter_index(m, l, kind);
    if (a < 0) return;
    const llama_lora *lo = m->lora;
    int N = run->n, r = lo->rank;
    float scale = lo->alpha / (float)r;
    const float *xd = adapter_input(m, run->be, run->lora_x, N, run->first_token, l, kind, x, in);
    BE(run->be, gemm_f32, 0, 1, N, r, in, 1.0f, xd, in, lo->A[a], in, 0.0f, u, r);
    BE(run->be, gemm_f32, 0, 1, N, out, r, scale, u, r, lo->B[a], r, 1.0f, y, out);
}

void llama_lora_backward(const llama_model *m, llama_workspace *ws, int l, llama_param_kind kind,
                         const float *dy, const float *x, const float *u, float *dx, int train,
                         int in, int out) {
    int a = llama_adapter_index(m, l, kind);
    if (a < 0 || (!train && !dx)) return;
    const llama_lora *lo = m->lora;
    int N = ws->B * ws->T, r = lo->rank;
    size_t first = (size_t)ws->first_row * (size_t)ws->T;
    float scale = lo->alpha / (float)r, *du = ws->lora_du;
    backend *be = ws->be;
    BE(be, gemm_f32, 0, 0, N, r, out, scale, dy, out, lo->B[a], r, 0.0f, du, r);
    if (train) {
        BE(be, gemm_f32, 1, 0, out, r, N, scale, dy, out, u, r, 1.0f, lo->dB[a], r);
        const float *xd = adapter_input(m, be, ws->lora_x, N, first, l, kind, x, in);
        BE(be, gemm_f32, 1, 0, r, in, N, 1.0f, du, r, xd, in, 1.0f, lo->dA[a], in);
    }
    if (dx && !dropping(lo)) {
        BE(be, gemm_f32, 0, 0, N, in, r, 1.0f, du, r, lo->A[a], in, 1.0f, dx, in);
    } else if (dx) { /* the forward's mask, regenerated */
        BE(be, gemm_f32, 0, 0, N, in, r, 1.0f, du, r, lo->A[a], in, 0.0f, ws->lora_tmp, in);
        apply_dropout(be, dx, ws->lora_tmp, (size_t)N * in, first, in, lo, l, kind, 1);
    }
}

void llama_lora_merge(llama_model *m) {
    const llama_lora *lo = m->lora;
    if (!lo) return;
    backend *be = NULL;
    if (backend_cpu_create(&be, NULL)) return; /* out of memory: nothing sensible to do */
    enum { ROWS = 64 };
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int k = 0; k < LLAMA_P_KIND_COUNT; k++) {
            int a = llama_adapter_index(m, l, (llama_param_kind)k);
            if (a < 0) continue;
            int in, out;
            kind_dims(m, l, (llama_param_kind)k, &in, &out);
            llama_param *p = &m->params[llama_param_index(m, l, (llama_param_kind)k)];
            size_t elem = badam_dtype_size(m->dtype);
            float *tile = malloc(sizeof(float) * ROWS * (size_t)in);
            if (!tile) continue; /* nothing sensible to do without 64 rows of scratch */
            float scale = lo->alpha / (float)lo->rank;
            for (int r0 = 0; r0 < out; r0 += ROWS) {
                int rows = out - r0 < ROWS ? out - r0 : ROWS;
                char *w = (char *)p->data + (size_t)r0 * in * elem;
                BE(be, convert, tile, BADAM_DTYPE_F32, w, m->dtype, (size_t)rows * in);
                BE(be, gemm_f32, 0, 0, rows, in, lo->rank, scale, lo->B[a] + (size_t)r0 * lo->rank,
                   lo->rank, lo->A[a], in, 1.0f, tile, in);
                BE(be, convert, w, m->dtype, tile, BADAM_DTYPE_F32, (size_t)rows * in);
            }
            free(tile);
        }
    backend_destroy(be);
}

static void tensor_name(const llama_model *m, int l, int k, const char *which, char *out,
                        size_t size) {
    char module[128];
    llama_lora_module_name(m, l, (llama_param_kind)k, module, sizeof module);
    snprintf(out, size, "base_model.model.%s.lora_%s.weight", module, which);
}

badam_status llama_lora_save(const llama_model *m, const char *dir, const char *base_model,
                             badam_error *err) {
    const llama_lora *lo = m->lora;
    if (!lo) return badam_fail(err, BADAM_E_INVALID, "LoRA: no adapters to save");
    badam_status st = io_make_dir(dir, err);
    if (st) return st;
    int n = 0;
    st_entry *e = calloc((size_t)lo->n_adapters * 2, sizeof *e);
    char(*names)[160] = calloc((size_t)lo->n_adapters * 2, sizeof *names);
    if (!e || !names) {
        free(e);
        free(names);
        return badam_fail(err, BADAM_E_NOMEM, "LoRA save: out of memory");
    }
    json_t *cfg = json_object(), *mods = json_array();
    int encoder = m->cfg.encoder_head != LLAMA_HEAD_NONE;
    for (int k = 0; k < LLAMA_P_KIND_COUNT; k++)
        if (lo->targets & (1u << k))
            json_array_append_new(mods, json_string((encoder ? ENCODER_NAME : SHORT_NAME)[k]));
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int k = 0; k < LLAMA_P_KIND_COUNT; k++) {
            int a = llama_adapter_index(m, l, (llama_param_kind)k), in, out;
            if (a < 0) continue;
            kind_dims(m, l, (llama_param_kind)k, &in, &out);
            tensor_name(m, l, k, "A", names[n], sizeof names[n]);
            e[n] = (st_entry){names[n], BADAM_DTYPE_F32, 2, {lo->rank, in}, lo->A[a]};
            n++;
            tensor_name(m, l, k, "B", names[n], sizeof names[n]);
            e[n] = (st_entry){names[n], BADAM_DTYPE_F32, 2, {out, lo->rank}, lo->B[a]};
            n++;
        }
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    st = st_write(path, e, (size_t)n, err);
    free(e);
    free(names);
    json_object_set_new(cfg, "peft_type", json_string("LORA"));
    json_object_set_new(cfg, "task_type", json_string(encoder ? "SEQ_CLS" : "CAUSAL_LM"));
    json_object_set_new(cfg, "r", json_integer(lo->rank));
    /* PEFT writes lora_alpha as an int (its type); a fractional alpha stays a real */
    json_object_set_new(cfg, "lora_alpha",
                        lo->alpha == floorf(lo->alpha) && fabsf(lo->alpha) < 16777216.0f
                            ? json_integer((json_int_t)lo->alpha)
                            : io_json_real_float(lo->alpha));
    json_object_set_new(cfg, "lora_dropout", io_json_real_float(lo->dropout));
    json_object_set_new(cfg, "target_modules", mods);
    json_object_set_new(cfg, "bias", json_string("none"));
    json_object_set_new(cfg, "fan_in_fan_out", json_boolean(0));
    json_object_set_new(cfg, "inference_mode", json_boolean(1));
    json_object_set_new(cfg, "base_model_name_or_path", json_string(base_model ? base_model : ""));
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    if (!st) st = io_json_write_file(path, cfg, 2, err);
    json_decref(cfg);
    return st;
}

/* Reads adapter_config.json's rank and targets. */
static badam_status read_adapter_config(const char *dir, int *rank, uint32_t *targets,
                                        badam_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_t *cfg = NULL;
    badam_status st = io_read_json(path, &cfg, err);
    if (st) return st;
    st = json_get_int(cfg, "r", 1, rank, path, err);
    const json_t *mods = json_object_get(cfg, "target_modules"), *item;
    *targets = 0;
    if (!st && !json_is_array(mods))
        st = badam_fail(err, BADAM_E_FORMAT, "%s: field 'target_modules' must be a list", path);
    size_t index;
    json_array_foreach(mods, index, item) {
        if (st) break;
        uint32_t one;
        if (!json_string_is_c(item) || llama_lora_parse_targets(json_string_value(item), &one, err))
            st = badam_fail(err, BADAM_E_UNSUPPORTED,
                            "%s: field 'target_modules' has an entry that is not one of q_proj, "
                            "k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj",
                            path);
        else
            *targets |= one;
    }
    json_decref(cfg);
    return st;
}

badam_status llama_lora_load(llama_model *m, const char *dir, badam_error *err) {
    llama_lora *lo = m->lora;
    if (!lo) return badam_fail(err, BADAM_E_INVALID, "LoRA load: no adapters attached");
    int rank = 0;
    uint32_t targets = 0;
    badam_status st = read_adapter_config(dir, &rank, &targets, err);
    if (st) return st;
    if (rank != lo->rank || targets != lo->targets)
        return badam_fail(err, BADAM_E_SHAPE,
                          "%s/adapter_config.json: rank %d and target_modules do not match the "
                          "adapters being trained (rank %d)",
                          dir, rank, lo->rank);
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    st_file *f = NULL;
    if ((st = st_open(path, &f, err))) return st;
    size_t used = 0;
    for (int l = 0; l < m->cfg.n_layers && !st; l++)
        for (int k = 0; k < LLAMA_P_KIND_COUNT && !st; k++) {
            int a = llama_adapter_index(m, l, (llama_param_kind)k), in, out;
            if (a < 0) continue;
            kind_dims(m, l, (llama_param_kind)k, &in, &out);
            for (int which = 0; which < 2 && !st; which++) {
                char name[160];
                tensor_name(m, l, k, which ? "B" : "A", name, sizeof name);
                const st_tensor *t = st_find(f, name);
                int64_t rows = which ? out : rank, cols = which ? rank : in;
                if (!t)
                    st = badam_fail(err, BADAM_E_SHAPE, "%s: tensor '%s' is missing", path, name);
                else if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
                    st = badam_fail(err, BADAM_E_SHAPE,
                                    "%s: tensor '%s' should have shape [%lld, %lld]", path, name,
                                    (long long)rows, (long long)cols);
                else
                    badam_convert(which ? lo->B[a] : lo->A[a], BADAM_DTYPE_F32, t->data, t->dtype,
                                  t->numel);
                used++;
            }
        }
    if (!st && used != f->n_tensors)
        st = badam_fail(err, BADAM_E_SHAPE, "%s: holds %zu tensors, expected %zu", path,
                        f->n_tensors, used);
    st_close(f);
    return st;
}
