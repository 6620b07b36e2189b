/* The gradient plan: for BAdam-like, module-level, LoRA-like, head-only and embedding plans the
 * gradients that are computed equal the full backward's, the GEMM FLOPs actually performed equal
 * the analytic count (and a hand-derived one), and forward keeps no activations below the first
 * layer backward visits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/llama_internal.h"
#include "model_fixtures.h"

enum { B = 2, T = 9, C = 32, I = 48, L = 4, HQ = 4, HKV = 2, V = 53 };

typedef struct fixture {
    llama_model *m;
    llama_workspace *ws;
    int32_t tokens[B * T], targets[B * T];
    llama_batch batch;
    int n_tok;
    float **full; /* gradients of the full backward */
    uint8_t *flags;
} fixture;

static int setup(fixture *f, int tied) {
    badam_error err = {0};
    llama_config cfg = fixture_config(C, I, L, HQ, HKV, V, tied, 1, 1);
    if (llama_model_create(&cfg, BADAM_DTYPE_F32, &f->m, &err)) return -1;
    test_rng rng;
    test_rng_seed(&rng, 7 + tied);
    fixture_randomize(f->m, &rng, 0.15f);
    fixture_batch(&rng, B, T, V, 1, f->tokens, f->targets);
    f->batch = (llama_batch){.B = B, .T = T, .tokens = f->tokens, .targets = f->targets};
    f->n_tok = 0;
    for (int i = 0; i < B * T; i++) f->n_tok += f->targets[i] != -100;
    if (llama_workspace_create(f->m, B, T, &f->ws, &err)) return -1;
    f->flags = calloc((size_t)f->m->n_params, 1);
    memset(f->flags, 1, (size_t)f->m->n_params);
    llama_grad_plan plan;
    llama_plan_for_flags(f->m, f->flags, 0, &plan);
    f->full = fixture_grads_alloc(f->m);
    fixture_train_step(f->m, f->ws, &f->batch, &plan, f->full);
    return 0;
}

static void teardown(fixture *f) {
    fixture_grads_free(f->m, f->full);
    free(f->flags);
    llama_workspace_free(f->ws);
    llama_model_free(f->m);
}

static uint64_t gemm(uint64_t n, uint64_t in, uint64_t out) {
    return 2 * n * in * out;
}

/* Forward GEMM FLOPs of one layer, and (equal) the FLOPs of all its input gradients or all its
 * weight gradients. */
static uint64_t layer_flops(void) {
    uint64_t N = B * T, D = C / HQ;
    return gemm(N, C, HQ * D) + 2 * gemm(N, C, HKV * D) + gemm(N, HQ * D, C) + 2 * gemm(N, C, I) +
           gemm(N, I, C);
}

/* Runs a plan on a fresh workspace; checks gradients against the full backward, the FLOPs
 * against llama_plan_gemm_flops and `expected_flops` (when nonzero), and the kept layers. */
static void run_plan(fixture *f, const char *what, llama_grad_plan *plan, uint64_t expected_flops) {
    badam_error err = {0};
    llama_workspace *ws = NULL;
    CHECK_OK(llama_workspace_create(f->m, B, T, &ws, &err), &err);
    CHECK_OK(llama_plan_check(f->m, plan, &err), &err);
    float **grads = fixture_grads_alloc(f->m);
    /* Poison unflagged buffers: they must not be touched (they are not even passed). */
    for (int i = 0; i < f->m->n_params; i++)
        if (!plan->need_grad[i]) grads[i][0] = 12345.0f;
    llama_workspace_reset_counters(ws);
    badam_status st;
    float **view = calloc((size_t)f->m->n_params, sizeof *view);
    fixture_grads_view(f->m, grads, plan->need_grad, view);
    for (int i = 0; i < f->m->n_params; i++)
        if (view[i]) memset(view[i], 0, sizeof(float) * f->m->params[i].numel);
    double loss_sum;
    int counted;
    st = llama_forward(f->m, ws, &f->batch, plan, 1.0f / f->n_tok, view, &loss_sum, &counted, &err);
    int first = llama_plan_first_layer(f->m, plan);
    for (int l = 0; l < L && !st; l++) {
        CHECKF((ws->saved_input[l] != NULL) == (l >= first), "%s: layer %d input kept: %d", what, l,
               ws->saved_input[l] != NULL);
        CHECKF((ws->saved[l] != NULL) == (l >= first && !plan->recompute),
               "%s: layer %d activations kept: %d", what, l, ws->saved[l] != NULL);
    }
    if (!st) st = llama_backward(f->m, ws, &f->batch, plan, view, &err);
    free(view);
    if (st) {
        CHECKF(0, "%s: %s", what, err.message);
    } else {
        for (int i = 0; i < f->m->n_params; i++) {
            if (!plan->need_grad[i]) {
                CHECKF(grads[i][0] == 12345.0f, "%s: unflagged %s was written", what,
                       f->m->params[i].name);
                continue;
            }
            CHECK_CLOSE(grads[i], f->full[i], f->m->params[i].numel, 1e-6, 1e-5,
                        "%s: %s vs full backward", what, f->m->params[i].name);
        }
        llama_counters c = llama_workspace_counters(ws);
        uint64_t analytic = llama_plan_gemm_flops(f->m, plan, B, T, f->n_tok);
        CHECKF(c.gemm_flops == analytic, "%s: performed %llu GEMM FLOPs, analytic %llu", what,
               (unsigned long long)c.gemm_flops, (unsigned long long)analytic);
        if (expected_flops)
            CHECKF(c.gemm_flops == expected_flops, "%s: performed %llu GEMM FLOPs, by hand %llu",
                   what, (unsigned long long)c.gemm_flops, (unsigned long long)expected_flops);
    }
    fixture_grads_free(f->m, grads);
    llama_workspace_free(ws);
}

static void flag_layer_kinds(fixture *f, uint8_t *flags, int l, llama_param_kind lo,
                             llama_param_kind hi) {
    for (int k = lo; k <= (int)hi; k++) {
        int idx = llama_param_index(f->m, l, (llama_param_kind)k);
        if (idx >= 0) flags[idx] = 1;
    }
}

static void test_full_plan_flops(void) {
    fixture f;
    if (setup(&f, 0)) return;
    llama_grad_plan plan;
    llama_plan_for_flags(f.m, f.flags, 0, &plan);
    uint64_t head = gemm(f.n_tok, C, V);
    /* forward + full backward: every layer twice more (inputs, weights); head: dh and dW. */
    run_plan(&f, "full", &plan, 3 * L * layer_flops() + 3 * head);
    plan.recompute = 1;
    run_plan(&f, "full+recompute", &plan, 4 * L * layer_flops() + 3 * head);
    teardown(&f);
}

static void test_badam_layer_plans(void) {
    fixture f;
    if (setup(&f, 1)) return;
    uint8_t *flags = calloc((size_t)f.m->n_params, 1);
    uint64_t head = gemm(f.n_tok, C, V), full = 3 * L * layer_flops() + 3 * head;
    for (int l = 0; l < L; l++) {
        memset(flags, 0, (size_t)f.m->n_params);
        flag_layer_kinds(&f, flags, l, LLAMA_P_ATTN_NORM, LLAMA_P_DOWN);
        llama_grad_plan plan;
        llama_plan_for_flags(f.m, flags, 0, &plan);
        CHECK(plan.lowest_input_grad_layer == l + 1);
        CHECK(llama_plan_first_layer(f.m, &plan) == l);
        /* forward; head dh; layers above l: input gradients only; layer l: weights and the
         * inputs inside it (its norms are trained), but no dx below it. */
        uint64_t expect =
            L * layer_flops() + 2 * head + (L - 1 - l) * layer_flops() + 2 * layer_flops();
        char what[64];
        snprintf(what, sizeof what, "badam layer %d", l);
        run_plan(&f, what, &plan, expect);
        CHECK(expect < full);
        plan.recompute = 1;
        snprintf(what, sizeof what, "badam layer %d recompute", l);
        run_plan(&f, what, &plan, expect + (L - l) * layer_flops());
    }
    free(flags);
    teardown(&f);
}

static void test_module_plans(void) {
    fixture f;
    if (setup(&f, 0)) return;
    uint8_t *flags = calloc((size_t)f.m->n_params, 1);
    llama_grad_plan plan;
    const llama_param_kind ranges[][2] = {
        {LLAMA_P_MLP_NORM, LLAMA_P_DOWN}, /* MLP block only */
        {LLAMA_P_ATTN_NORM, LLAMA_P_O_BIAS},
        {LLAMA_P_DOWN, LLAMA_P_DOWN}, /* one matrix */
        {LLAMA_P_O, LLAMA_P_O},
        {LLAMA_P_Q_BIAS, LLAMA_P_Q_BIAS},
        {LLAMA_P_MLP_NORM, LLAMA_P_MLP_NORM},
    };
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        memset(flags, 0, (size_t)f.m->n_params);
        flag_layer_kinds(&f, flags, 1, ranges[r][0], ranges[r][1]);
        llama_plan_for_flags(f.m, flags, 0, &plan);
        char what[64];
        snprintf(what, sizeof what, "module plan %zu", r);
        run_plan(&f, what, &plan, 0);
    }
    /* MLP of layer 1 only: backward above is input-only; in layer 1 only down's input and
     * gate/up weight+input GEMMs; nothing of its attention. */
    memset(flags, 0, (size_t)f.m->n_params);
    flag_layer_kinds(&f, flags, 1, LLAMA_P_GATE, LLAMA_P_DOWN);
    llama_plan_for_flags(f.m, flags, 0, &plan);
    uint64_t N = B * T, head = gemm(f.n_tok, C, V);
    uint64_t expect = L * layer_flops() + 2 * head + (L - 2) * layer_flops() + gemm(N, I, C) +
                      gemm(N, I, C) + 2 * gemm(N, C, I);
    run_plan(&f, "mlp matrices of layer 1", &plan, expect);
    free(flags);
    teardown(&f);
}

static void test_lora_like_plan(void) {
    fixture f;
    if (setup(&f, 0)) return;
    uint8_t *flags = calloc((size_t)f.m->n_params, 1);
    llama_grad_plan plan = {.need_grad = flags, .lowest_input_grad_layer = 0};
    uint64_t head = gemm(f.n_tok, C, V);
    /* No base weight gradients; input gradients through every layer and the head. */
    run_plan(&f, "lora-like", &plan, L * layer_flops() + 2 * head + L * layer_flops());
    free(flags);
    teardown(&f);
}

static void test_head_and_embedding_plans(void) {
    for (int tied = 0; tied <= 1; tied++) {
        fixture f;
        if (setup(&f, tied)) return;
        uint8_t *flags = calloc((size_t)f.m->n_params, 1);
        llama_grad_plan plan;
        uint64_t head = gemm(f.n_tok, C, V), fwd = L * layer_flops() + head;
        if (!tied) {
            flags[f.m->lm_head] = 1;
            llama_plan_for_flags(f.m, flags, 0, &plan);
            CHECK(plan.lowest_input_grad_layer == L);
            run_plan(&f, "lm_head only", &plan, fwd + head);
            flags[f.m->lm_head] = 0;
        }
        flags[f.m->final_norm] = 1;
        llama_plan_for_flags(f.m, flags, 0, &plan);
        run_plan(&f, "final norm only", &plan, fwd + head);
        flags[f.m->final_norm] = 0;
        flags[f.m->embed] = 1;
        llama_plan_for_flags(f.m, flags, 0, &plan);
        CHECK(plan.lowest_input_grad_layer == 0);
        run_plan(&f, tied ? "tied embedding" : "embedding", &plan,
                 fwd + head * (tied ? 2 : 1) + L * layer_flops());
        free(flags);
        teardown(&f);
    }
}

static void test_inconsistent_plans_rejected(void) {
    fixture f;
    if (setup(&f, 0)) return;
    badam_error err = {0};
    uint8_t *flags = calloc((size_t)f.m->n_params, 1);
    flags[llama_param_index(f.m, 0, LLAMA_P_Q)] = 1;
    llama_grad_plan plan = {.need_grad = flags,
                            .lowest_input_grad_layer =
                                2}; /* layer 0 flagged, but backward stops at layer 1 */
    CHECK(llama_plan_check(f.m, &plan, &err) == BADAM_E_INVALID);
    CHECK(strstr(err.message, "model.layers.0.self_attn.q_proj.weight") != NULL);
    plan.lowest_input_grad_layer = L + 1;
    CHECK(llama_plan_check(f.m, &plan, &err) == BADAM_E_INVALID);
    memset(flags, 0, (size_t)f.m->n_params);
    flags[f.m->embed] = 1;
    plan.lowest_input_grad_layer = 1;
    CHECK(llama_plan_check(f.m, &plan, &err) == BADAM_E_INVALID);
    /* A flagged parameter without a buffer is refused. */
    plan.lowest_input_grad_layer = 0;
    float **none = calloc((size_t)f.m->n_params, sizeof *none);
    double loss;
    int n;
    CHECK(llama_forward(f.m, f.ws, &f.batch, &plan, 1.0f, none, &loss, &n, &err) ==
          BADAM_E_INVALID);
    CHECK(strstr(err.message, "model.embed_tokens.weight") != NULL);
    /* Backward without a matching forward is refused. */
    CHECK(llama_backward(f.m, f.ws, &f.batch, &plan, none, &err) == BADAM_E_INVALID);
    free(none);
    free(flags);
    teardown(&f);
}

static void test_bad_batch_rejected(void) {
    fixture f;
    if (setup(&f, 0)) return;
    badam_error err = {0};
    int32_t tokens[B * T], targets[B * T];
    memcpy(tokens, f.tokens, sizeof tokens);
    memcpy(targets, f.targets, sizeof targets);
    llama_batch bad = {.B = B, .T = T, .tokens = tokens, .targets = targets};
    double loss;
    int n;
    tokens[5] = V;
    CHECK(llama_forward(f.m, f.ws, &bad, NULL, 1.0f, NULL, &loss, &n, &err) == BADAM_E_SHAPE);
    CHECK(strstr(err.message, "token id") != NULL);
    tokens[5] = 0;
    targets[3] = -1;
    CHECK(llama_forward(f.m, f.ws, &bad, NULL, 1.0f, NULL, &loss, &n, &err) == BADAM_E_SHAPE);
    bad.T = T + 1;
    CHECK(llama_forward(f.m, f.ws, &bad, NULL, 1.0f, NULL, &loss, &n, &err) == BADAM_E_SHAPE);
    teardown(&f);
}

int main(void) {
    RUN_TEST(test_full_plan_flops);
    RUN_TEST(test_badam_layer_plans);
    RUN_TEST(test_module_plans);
    RUN_TEST(test_lora_like_plan);
    RUN_TEST(test_head_and_embedding_plans);
    RUN_TEST(test_inconsistent_plans_rejected);
    RUN_TEST(test_bad_batch_rejected);
    return test_result();
}
