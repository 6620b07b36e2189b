/* bf16 weight storage: the forward with bf16 weights equals an fp32 forward on the same
 * bf16-rounded weights (compute is fp32 in both), and is within bf16 tolerance of the fp32 model;
 * gradients likewise. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_fixtures.h"

enum { B = 2, T = 11, C = 64, I = 96, L = 3, HQ = 8, HKV = 2, V = 211 };

/* Copies every parameter of src into dst (dtype converted). */
static void copy_weights(llama_model *dst, const llama_model *src) {
    for (int i = 0; i < src->n_params; i++) {
        const llama_param *p = &src->params[i];
        float *tmp = malloc(sizeof(float) * p->numel);
        badam_convert(tmp, BADAM_DTYPE_F32, p->data, src->dtype, p->numel);
        badam_convert(dst->params[i].data, dst->dtype, tmp, BADAM_DTYPE_F32, p->numel);
        free(tmp);
    }
}

static float *logits_of(llama_model *m, const llama_batch *batch) {
    badam_error err = {0};
    llama_workspace *ws = NULL;
    float *logits = malloc(sizeof(float) * B * T * V);
    if (llama_workspace_create(m, B, T, &ws, &err) ||
        llama_forward_logits(m, ws, batch, logits, &err)) {
        fprintf(stderr, "%s\n", err.message);
        test_failures++;
    }
    llama_workspace_free(ws);
    return logits;
}

static void test_bf16_logits_and_grads(void) {
    badam_error err = {0};
    llama_config cfg = fixture_config(C, I, L, HQ, HKV, V, 0, 1, 0);
    llama_model *f32 = NULL, *bf16 = NULL, *rounded = NULL;
    CHECK_OK(llama_model_create(&cfg, BADAM_DTYPE_F32, &f32, &err), &err);
    CHECK_OK(llama_model_create(&cfg, BADAM_DTYPE_BF16, &bf16, &err), &err);
    CHECK_OK(llama_model_create(&cfg, BADAM_DTYPE_F32, &rounded, &err), &err);
    test_rng rng;
    test_rng_seed(&rng, 3);
    fixture_randomize(f32, &rng, 0.1f);
    copy_weights(bf16, f32);
    copy_weights(rounded, bf16);
    int32_t tokens[B * T], targets[B * T];
    fixture_batch(&rng, B, T, V, 1, tokens, targets);
    llama_batch batch = {.B = B, .T = T, .tokens = tokens, .targets = targets};

    /* With the portable fp32 GEMM (BADAM_GEMM=fp32) bf16 storage changes nothing but the stored
     * values; with the native bf16 GEMM (activations rounded to bf16 too) the result stays within
     * bf16 tolerance of the fp32 model. */
    setenv("BADAM_GEMM", "fp32", 1);
    float *l32 = logits_of(f32, &batch), *l16 = logits_of(bf16, &batch);
    float *lr = logits_of(rounded, &batch);
    unsetenv("BADAM_GEMM");
    float *lnative = logits_of(bf16, &batch);
    size_t nl = (size_t)B * T * V;
    CHECK_CLOSE(l16, lr, nl, 1e-6, 1e-5, "bf16 storage vs fp32 storage of the same values");
    CHECK_CLOSE(l16, l32, nl, 1e-4, 3e-2, "bf16 vs fp32 model (bf16 tolerance)");
    CHECK_CLOSE(lnative, l32, nl, 1e-4, 3e-2, "native bf16 GEMM vs fp32 model (bf16 tolerance)");
    /* ...and rounding the weights to bf16 did change the logits (the comparison can fail) */
    double moved = test_close(l16, l32, nl, 0, 1e-5).ratio;
    CHECKF(moved > 1.0, "bf16 weights changed the logits by only %.3g x 1e-5 of their scale",
           moved);
    free(lnative);

    uint8_t *all = malloc((size_t)f32->n_params);
    memset(all, 1, (size_t)f32->n_params);
    llama_grad_plan plan;
    llama_plan_for_flags(f32, all, 0, &plan);
    float **g32 = fixture_grads_alloc(f32), **g16 = fixture_grads_alloc(bf16);
    llama_workspace *ws32 = NULL, *ws16 = NULL;
    CHECK_OK(llama_workspace_create(f32, B, T, &ws32, &err), &err);
    CHECK_OK(llama_workspace_create(bf16, B, T, &ws16, &err), &err);
    double loss32 = fixture_train_step(f32, ws32, &batch, &plan, g32); /* native path for bf16 */
    double loss16 = fixture_train_step(bf16, ws16, &batch, &plan, g16);
    CHECK_NEAR(loss16, loss32, 1e-6, 1e-2, "loss, bf16 vs fp32 weights");
    for (int i = 0; i < f32->n_params; i++) {
        CHECK_CLOSE(g16[i], g32[i], f32->params[i].numel, 1e-6, 0.1, "%s gradient bf16 vs fp32",
                    f32->params[i].name);
    }
    fixture_grads_free(f32, g32);
    fixture_grads_free(bf16, g16);
    llama_workspace_free(ws32);
    llama_workspace_free(ws16);
    free(all);
    free(l32);
    free(l16);
    free(lr);
    llama_model_free(f32);
    llama_model_free(bf16);
    llama_model_free(rounded);
}

static void test_bf16_rounding(void) {
    /* Round to nearest even at the bf16 boundary, NaN stays NaN, inf stays inf. */
    CHECK(badam_f32_to_bf16(1.0f) == 0x3f80);
    uint32_t bits = 0x3f808000u; /* exactly half way: ties to even (0x3f80) */
    float f;
    memcpy(&f, &bits, 4);
    CHECK(badam_f32_to_bf16(f) == 0x3f80);
    bits = 0x3f818000u; /* half way above an odd mantissa: rounds up to 0x3f82 */
    memcpy(&f, &bits, 4);
    CHECK(badam_f32_to_bf16(f) == 0x3f82);
    CHECK(isnan(badam_bf16_to_f32(badam_f32_to_bf16(NAN))));
    CHECK(isinf(badam_bf16_to_f32(badam_f32_to_bf16(INFINITY))));
    CHECK(badam_f16_to_f32(badam_f32_to_f16(0.333251953125f)) == 0.333251953125f);
    CHECK(badam_f16_to_f32(0x3c00) == 1.0f);
    CHECK(badam_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(badam_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
}

int main(void) {
    RUN_TEST(test_bf16_rounding);
    RUN_TEST(test_bf16_logits_and_grads);
    return test_result();
}
