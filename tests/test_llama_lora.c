/* LoRA adapters: the adapted model equals the merged one (logits), adapter gradients equal
 * s B^T G and s G A^T for the merged weight gradient G, dropout gradients match finite
 * differences, FLOPs match the analytic count, and PEFT folders round-trip. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"
#include "model/llama_internal.h"
#include "model_fixtures.h"

enum { B = 2, T = 7, C = 32, I = 40, L = 2, HQ = 4, HKV = 2, V = 41, R = 4 };
#define ALPHA 8.0f

typedef struct fixture {
    llama_model *m;
    int32_t tokens[B * T], targets[B * T];
    llama_batch batch;
    int n_tok;
} fixture;

static int setup(fixture *f, uint32_t targets) {
    badam_error err = {0};
    llama_config cfg = fixture_config(C, I, L, HQ, HKV, V, 0, 1, 1);
    test_rng rng;
    test_rng_seed(&rng, 5);
    if (llama_model_create(&cfg, BADAM_DTYPE_F32, &f->m, &err)) return -1;
    fixture_randomize(f->m, &rng, 0.15f);
    if (llama_lora_attach(f->m, R, ALPHA, 0.0f, targets, 42, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    /* B starts at zero; make it nonzero so gradients of A are not trivially zero. */
    for (int i = 0; i < L * LLAMA_P_KIND_COUNT; i++)
        if (f->m->lora->B[i]) {
            int in, out;
            llama_param *p = &f->m->params[llama_param_index(
                f->m, i / LLAMA_P_KIND_COUNT, (llama_param_kind)(i % LLAMA_P_KIND_COUNT))];
            out = (int)p->shape[0], in = (int)p->shape[1];
            (void)in;
            test_fill_normal(&rng, f->m->lora->B[i], (size_t)out * R, 0.1f);
        }
    fixture_batch(&rng, B, T, V, 1, f->tokens, f->targets);
    f->batch = (llama_batch){.B = B, .T = T, .tokens = f->tokens, .targets = f->targets};
    f->n_tok = 0;
    for (int i = 0; i < B * T; i++) f->n_tok += f->targets[i] != -100;
    return 0;
}

/* A copy of f's base model with the adapters merged in (and none attached). */
static llama_model *merged_copy(const fixture *f) {
    badam_error err = {0};
    llama_model *mm = NULL;
    if (llama_model_create(&f->m->cfg, BADAM_DTYPE_F32, &mm, &err)) return NULL;
    memcpy(mm->storage, f->m->storage, f->m->storage_bytes);
    llama_lora *keep = f->m->lora;
    mm->lora = keep;
    llama_lora_merge(mm);
    mm->lora = NULL;
    return mm;
}

static float *logits(const llama_model *m, const llama_batch *batch) {
    badam_error err = {0};
    llama_workspace *ws = NULL;
    float *out = malloc(sizeof(float) * B * T * V);
    if (llama_workspace_create(m, B, T, &ws, &err) ||
        llama_forward_logits(m, ws, batch, out, &err)) {
        fprintf(stderr, "%s\n", err.message);
        test_failures++;
    }
    llama_workspace_free(ws);
    return out;
}

static void zero_adapter_grads(llama_model *m) {
    int in, out;
    for (int i = 0; i < L * LLAMA_P_KIND_COUNT; i++)
        if (m->lora->A[i]) {
            llama_param *p = &m->params[llama_param_index(
                m, i / LLAMA_P_KIND_COUNT, (llama_param_kind)(i % LLAMA_P_KIND_COUNT))];
            out = (int)p->shape[0], in = (int)p->shape[1];
            memset(m->lora->dA[i], 0, sizeof(float) * R * in);
            memset(m->lora->dB[i], 0, sizeof(float) * out * R);
        }
}

/* Mean loss under the adapters-only plan; gradients land in m->lora->dA/dB. */
static double lora_step(fixture *f, llama_workspace *ws, uint64_t *flops, uint64_t *analytic) {
    badam_error err = {0};
    uint8_t *none = calloc((size_t)f->m->n_params, 1);
    llama_grad_plan plan;
    llama_plan_for_flags(f->m, none, 1, &plan);
    float **grads = calloc((size_t)f->m->n_params, sizeof *grads);
    zero_adapter_grads(f->m);
    llama_workspace_reset_counters(ws);
    double loss = NAN;
    int n;
    if (llama_forward(f->m, ws, &f->batch, &plan, 1.0f / f->n_tok, grads, &loss, &n, &err) ||
        llama_backward(f->m, ws, &f->batch, &plan, grads, &err)) {
        fprintf(stderr, "%s\n", err.message);
        test_failures++;
    }
    if (flops) *flops = llama_workspace_counters(ws).gemm_flops;
    if (analytic) *analytic = llama_plan_gemm_flops(f->m, &plan, B, T, f->n_tok);
    free(grads);
    free(none);
    return loss / f->n_tok;
}

static void test_merged_equivalence_and_gradients(void) {
    fixture f;
    uint32_t all = 0;
    badam_error err = {0};
    CHECK_OK(llama_lora_parse_targets("q,k,v,o,gate,up,down", &all, &err), &err);
    if (setup(&f, all)) return;
    llama_model *mm = merged_copy(&f);
    float *la = logits(f.m, &f.batch), *lm = logits(mm, &f.batch);
    CHECK_CLOSE(la, lm, B * T * V, 1e-6, 1e-5, "adapted vs merged logits");
    free(la);
    free(lm);

    llama_workspace *ws = NULL;
    CHECK_OK(llama_workspace_create(f.m, B, T, &ws, &err), &err);
    uint64_t flops = 0, analytic = 0;
    lora_step(&f, ws, &flops, &analytic);
    CHECKF(flops == analytic, "LoRA GEMM FLOPs %llu, analytic %llu", (unsigned long long)flops,
           (unsigned long long)analytic);

    /* Full gradient G of the merged model; dA = s B^T G, dB = s G A^T. */
    uint8_t *flags = malloc((size_t)mm->n_params);
    memset(flags, 1, (size_t)mm->n_params);
    llama_grad_plan plan;
    llama_plan_for_flags(mm, flags, 0, &plan);
    float **G = fixture_grads_alloc(mm);
    llama_workspace *wsm = NULL;
    CHECK_OK(llama_workspace_create(mm, B, T, &wsm, &err), &err);
    fixture_train_step(mm, wsm, &f.batch, &plan, G);
    float s = ALPHA / R;
    for (int i = 0; i < L * LLAMA_P_KIND_COUNT; i++) {
        if (!f.m->lora->A[i]) continue;
        int pi = llama_param_index(mm, i / LLAMA_P_KIND_COUNT,
                                   (llama_param_kind)(i % LLAMA_P_KIND_COUNT));
        int out = (int)mm->params[pi].shape[0], in = (int)mm->params[pi].shape[1];
        const float *A = f.m->lora->A[i], *Bm = f.m->lora->B[i], *g = G[pi];
        float *dA = calloc((size_t)R * in, sizeof(float)),
              *dB = calloc((size_t)out * R, sizeof(float));
        for (int r = 0; r < R; r++)
            for (int c = 0; c < in; c++) {
                double acc = 0;
                for (int o = 0; o < out; o++) acc += (double)Bm[o * R + r] * g[(size_t)o * in + c];
                dA[r * in + c] = (float)(s * acc);
            }
        for (int o = 0; o < out; o++)
            for (int r = 0; r < R; r++) {
                double acc = 0;
                for (int c = 0; c < in; c++) acc += (double)g[(size_t)o * in + c] * A[r * in + c];
                dB[o * R + r] = (float)(s * acc);
            }
        CHECK_CLOSE(f.m->lora->dA[i], dA, (size_t)R * in, 1e-7, 1e-4, "%s adapter dA",
                    mm->params[pi].name);
        CHECK_CLOSE(f.m->lora->dB[i], dB, (size_t)out * R, 1e-7, 1e-4, "%s adapter dB",
                    mm->params[pi].name);
        free(dA);
        free(dB);
    }
    fixture_grads_free(mm, G);
    free(flags);
    llama_workspace_free(wsm);
    llama_workspace_free(ws);
    llama_model_free(mm);
    llama_model_free(f.m);
}

static void test_dropout_finite_differences(void) {
    fixture f;
    uint32_t t = (1u << LLAMA_P_Q) | (1u << LLAMA_P_DOWN);
    if (setup(&f, t)) return;
    badam_error err = {0};
    f.m->lora->dropout = 0.3f;
    f.m->lora->training = 1;
    f.m->lora->dropout_seed = 99;
    f.m->lora->dropout_step = 3;
    llama_workspace *ws = NULL;
    CHECK_OK(llama_workspace_create(f.m, B, T, &ws, &err), &err);
    lora_step(&f, ws, NULL, NULL);
    int kinds[2] = {LLAMA_P_Q, LLAMA_P_DOWN};
    for (int k = 0; k < 2; k++) {
        int i = 1 * LLAMA_P_KIND_COUNT + kinds[k]; /* layer 1 */
        float *A = f.m->lora->A[i], *Bm = f.m->lora->B[i];
        float gA = f.m->lora->dA[i][3], gB = f.m->lora->dB[i][5];
        const float h = 1e-2f;
        float *targets[2] = {&A[3], &Bm[5]};
        float analytic[2] = {gA, gB};
        for (int w = 0; w < 2; w++) {
            float keep = *targets[w];
            *targets[w] = keep + h;
            double lp = lora_step(&f, ws, NULL, NULL);
            *targets[w] = keep - h;
            double lm = lora_step(&f, ws, NULL, NULL);
            *targets[w] = keep;
            double fd = (lp - lm) / (2 * h);
            CHECKF(fabs(fd - analytic[w]) < 2e-3 + 2e-2 * fabs(fd),
                   "dropout adapter kind %d %s: fd %.6g vs analytic %.6g", kinds[k], w ? "B" : "A",
                   fd, analytic[w]);
        }
    }
    /* The mask is used: a different step changes the loss. */
    double l1 = lora_step(&f, ws, NULL, NULL);
    f.m->lora->dropout_step = 4;
    double l2 = lora_step(&f, ws, NULL, NULL);
    CHECK(l1 != l2);
    llama_workspace_free(ws);
    llama_model_free(f.m);
}

static void test_peft_round_trip(void) {
    fixture f;
    uint32_t t = (1u << LLAMA_P_Q) | (1u << LLAMA_P_V) | (1u << LLAMA_P_UP);
    if (setup(&f, t)) return;
    badam_error err = {0};
    const char *dir = test_workdir("lora-peft");
    CHECK_OK(llama_lora_save(f.m, dir, "base", &err), &err);
    llama_model *m2 = NULL;
    CHECK_OK(llama_model_create(&f.m->cfg, BADAM_DTYPE_F32, &m2, &err), &err);
    CHECK_OK(llama_lora_attach(m2, R, ALPHA, 0.0f, t, 7, &err), &err);
    CHECK_OK(llama_lora_load(m2, dir, &err), &err);
    for (int i = 0; i < L * LLAMA_P_KIND_COUNT; i++) {
        if (!f.m->lora->A[i]) continue;
        int pi = llama_param_index(m2, i / LLAMA_P_KIND_COUNT,
                                   (llama_param_kind)(i % LLAMA_P_KIND_COUNT));
        int out = (int)m2->params[pi].shape[0], in = (int)m2->params[pi].shape[1];
        CHECK(!memcmp(f.m->lora->A[i], m2->lora->A[i], sizeof(float) * R * in));
        CHECK(!memcmp(f.m->lora->B[i], m2->lora->B[i], sizeof(float) * out * R));
    }
    char path[2048];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_t *cfg = NULL;
    CHECK_OK(io_read_json(path, &cfg, &err), &err);
    CHECK((int)json_number_value(json_object_get(cfg, "r")) == R);
    CHECK(!strcmp(json_string_value(json_object_get(cfg, "peft_type")), "LORA"));
    json_decref(cfg);
    /* A model with other targets refuses the folder. */
    llama_lora_detach(m2);
    CHECK_OK(llama_lora_attach(m2, R, ALPHA, 0.0f, t | (1u << LLAMA_P_O), 7, &err), &err);
    CHECK(llama_lora_load(m2, dir, &err) == BADAM_E_SHAPE);
    uint32_t bad;
    CHECK(llama_lora_parse_targets("q,zz", &bad, &err) == BADAM_E_INVALID);
    CHECK(strstr(err.message, "zz") != NULL);
    llama_model_free(m2);
    llama_model_free(f.m);
}

int main(void) {
    RUN_TEST(test_merged_equivalence_and_gradients);
    RUN_TEST(test_dropout_finite_differences);
    RUN_TEST(test_peft_round_trip);
    return test_result();
}
