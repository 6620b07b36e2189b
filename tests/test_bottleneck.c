/* Bottleneck adapters on the model (llama.h: llama_bottleneck_*): attached, they start as the
 * identity (logits equal the base model's bit for bit); with random values the KV-cache decode
 * gives the full forward's logits (the layer code is shared); a saved folder opened on a fresh
 * model gives the same logits bit for bit; a training step under a plan that trains them does the
 * GEMM work llama_plan_gemm_flops predicts, and fills every adapter's gradient while no base
 * parameter is flagged; attach and open refuse what they cannot honour (a
 * width above hidden_size, LoRA already attached, a LoRA folder, another model's adapters). The
 * gradients are checked against PyTorch in test_train_ref (--method adapter). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "badam/decode.h"
#include "badam/llama.h"
#include "io/files.h"
#include "model_fixtures.h"

enum { B = 2, T = 9, V = 50 };

static llama_model *make_model(void) {
    llama_config cfg = fixture_config(32, 40, 2, 4, 2, V, 0, 0, 0);
    llama_model *m = NULL;
    badam_error err = {0};
    if (llama_model_create(&cfg, BADAM_DTYPE_F32, &m, &err)) CHECKF(0, "%s", err.message);
    test_rng rng;
    test_rng_seed(&rng, 11);
    if (m) fixture_randomize(m, &rng, 0.2f);
    return m;
}

/* Logits [B*T, V] of the model on a fixed batch (a fresh workspace each time). */
static float *logits_of(const llama_model *m, const int32_t *tok) {
    llama_workspace *ws = NULL;
    badam_error err = {0};
    float *out = calloc((size_t)B * T * V, sizeof(float));
    llama_batch b = {.B = B, .T = T, .tokens = tok, .target_kind = MODEL_TARGETS_TOKEN};
    if (llama_workspace_create(m, B, T, &ws, &err) || llama_forward_logits(m, ws, &b, out, &err))
        CHECKF(0, "%s", err.message);
    llama_workspace_free(ws);
    return out;
}

static void randomize_adapters(llama_model *m) {
    test_rng rng;
    test_rng_seed(&rng, 5);
    llama_bottleneck *bn = m->bottleneck;
    for (int a = 0; a < bn->n_adapters; a++)
        test_fill_normal(&rng, bn->w[a], bn->per_adapter, 0.3f);
}

static void test_identity_decode_and_roundtrip(void) {
    llama_model *m = make_model(), *fresh = make_model();
    if (!m || !fresh) return;
    int32_t tok[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (int32_t)((i * 7 + 3) % V);
    badam_error err = {0};
    float *base = logits_of(m, tok);
    CHECK_OK(llama_bottleneck_attach(m, 8, 42, &err), &err);
    float *ident = logits_of(m, tok);
    CHECKF(!memcmp(base, ident, sizeof(float) * B * T * V),
           "a freshly attached adapter changes the logits");
    randomize_adapters(m);
    float *adapted = logits_of(m, tok);
    test_closeness moved = test_close(adapted, base, (size_t)B * T * V, 0, 1e-3);
    CHECKF(moved.ratio > 1, "random adapters leave the logits within 1e-3 (%g)", moved.ratio);

    /* decode the first sequence token by token: the forward's rows */
    llama_kv_cache *kv = NULL;
    float *dec = calloc((size_t)T * V, sizeof(float));
    CHECK_OK(llama_kv_cache_create(m, T, 0, &kv, &err), &err);
    for (int t = 0; kv && t < T; t++)
        CHECK_OK(llama_decode(m, kv, &tok[t], 1, dec + (size_t)t * V, 0, &err), &err);
    CHECK_CLOSE(dec, adapted, (size_t)T * V, 1e-5, 1e-4, "decode vs forward with adapters");
    llama_kv_cache_free(kv);

    /* saved, opened on a fresh copy of the base: the same logits, bit for bit */
    const char *dir = test_workdir("bottleneck-folder");
    CHECK_OK(llama_bottleneck_save(m, dir, "base", &err), &err);
    CHECK_OK(llama_bottleneck_open(fresh, dir, &err), &err);
    float *reopened = logits_of(fresh, tok);
    CHECKF(!memcmp(reopened, adapted, sizeof(float) * B * T * V),
           "the reopened adapters give other logits");
    free(base), free(ident), free(adapted), free(dec), free(reopened);
    llama_model_free(m), llama_model_free(fresh);
}

static void test_training_step(void) {
    llama_model *m = make_model();
    if (!m) return;
    badam_error err = {0};
    CHECK_OK(llama_bottleneck_attach(m, 8, 42, &err), &err);
    randomize_adapters(m);
    int32_t tok[B * T], tgt[B * T];
    test_rng rng;
    test_rng_seed(&rng, 3);
    fixture_batch(&rng, B, T, V, 2, tok, tgt);
    llama_batch b = {
        .B = B, .T = T, .tokens = tok, .targets = tgt, .target_kind = MODEL_TARGETS_TOKEN};
    int n_tok = 0;
    for (int i = 0; i < B * T; i++) n_tok += tgt[i] != -100;
    uint8_t *flags = calloc((size_t)m->n_params, 1);
    llama_grad_plan plan;
    llama_plan_for_flags(m, flags, 1, &plan);
    CHECKF(llama_plan_first_layer(m, &plan) == 0, "the plan does not reach layer 0");
    llama_workspace *ws = NULL;
    CHECK_OK(llama_workspace_create(m, B, T, &ws, &err), &err);
    float **grads = fixture_grads_alloc(m);
    if (ws) {
        llama_workspace_reset_counters(ws);
        fixture_train_step(m, ws, &b, &plan, grads);
        uint64_t got = llama_workspace_counters(ws).gemm_flops;
        uint64_t want = llama_plan_gemm_flops(m, &plan, B, T, n_tok);
        CHECKF(got == want, "GEMM FLOPs %llu, predicted %llu", (unsigned long long)got,
               (unsigned long long)want);
        const llama_bottleneck *bn = m->bottleneck;
        for (int a = 0; a < bn->n_adapters; a++)
            for (int part = 0; part < 4; part++) {
                size_t n;
                const char *name;
                size_t off = llama_bottleneck_part(bn, m->cfg.hidden_size, part, &n, &name);
                double ss = 0;
                for (size_t j = 0; j < n; j++) ss += (double)bn->g[a][off + j] * bn->g[a][off + j];
                CHECKF(ss > 0, "adapter %d %s: no gradient", a, name);
            }
    }
    fixture_grads_free(m, grads);
    llama_workspace_free(ws);
    free(flags);
    llama_model_free(m);
}

static void test_refusals(void) {
    llama_model *m = make_model();
    if (!m) return;
    badam_error err = {0};
    CHECK(llama_bottleneck_attach(m, 33, 1, &err) == BADAM_E_INVALID); /* hidden_size 32 */
    CHECKF(strstr(err.message, "--adapter-size 33"), "%s", err.message);
    CHECK_OK(llama_lora_attach(m, 2, 4, 0, 1u << LLAMA_P_Q, 1, &err), &err);
    CHECK(llama_bottleneck_attach(m, 4, 1, &err) == BADAM_E_INVALID);
    llama_lora_detach(m);
    /* a LoRA folder is not a bottleneck folder */
    const char *dir = test_workdir("bottleneck-lora");
    CHECK_OK(llama_lora_attach(m, 2, 4, 0, 1u << LLAMA_P_Q, 1, &err), &err);
    CHECK_OK(llama_lora_save(m, dir, "base", &err), &err);
    llama_lora_detach(m);
    CHECK(llama_bottleneck_open(m, dir, &err) != BADAM_OK);
    CHECKF(strstr(err.message, "adapter_type"), "%s", err.message);
    CHECK(m->bottleneck == NULL);
    /* adapters of a model with another width */
    llama_config other = fixture_config(16, 40, 2, 4, 2, V, 0, 0, 0);
    llama_model *o = NULL;
    CHECK_OK(llama_model_create(&other, BADAM_DTYPE_F32, &o, &err), &err);
    const char *odir = test_workdir("bottleneck-other");
    CHECK_OK(llama_bottleneck_attach(o, 4, 1, &err), &err);
    CHECK_OK(llama_bottleneck_save(o, odir, "other", &err), &err);
    CHECK(llama_bottleneck_open(m, odir, &err) == BADAM_E_SHAPE);
    CHECKF(strstr(err.message, "hidden_size 16"), "%s", err.message);
    llama_model_free(o), llama_model_free(m);
}

int main(void) {
    RUN_TEST(test_identity_decode_and_roundtrip);
    RUN_TEST(test_training_step);
    RUN_TEST(test_refusals);
    return test_result();
}
