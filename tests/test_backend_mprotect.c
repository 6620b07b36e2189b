/* The model reaches tensor memory only through its backend: llama_forward, llama_backward and
 * llama_forward_logits run on a workspace built on the mprotect backend (tests/util/
 * mprotect_backend.h: every backend allocation PROT_NONE between ops) and give the plain CPU
 * backend's results bit for bit (loss, every parameter gradient, LoRA adapter gradients, logits,
 * FLOP counters), with the full gradient plan, with recompute, with bf16 weights, with a packed
 * batch and with LoRA adapters (dropout on). A deliberate read or write of a workspace buffer
 * outside an op kills a forked child with SIGSEGV, so the protection is really on.
 *
 * Covered: every buffer of the workspace (activations, gradient temporaries, scratch, RoPE
 * tables, the batch's uploaded index arrays). Not covered (host memory read in place today):
 * model weights, LoRA adapters and their gradients, the caller's gradient buffers (here; in
 * training they are the method's backend memory: test_train_mprotect.c), and the KV
 * cache of llama_decode, which owns a CPU backend of its own (llama_kv_cache_create takes no
 * backend). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/llama_internal.h"
#include "model_fixtures.h"
#include "mprotect_backend.h"

enum { B = 2, T = 9, C = 32, I = 40, L = 2, HQ = 4, HKV = 2, V = 41, R = 4 };
#define ALL_PROJECTIONS                                                                            \
    ((1u << LLAMA_P_Q) | (1u << LLAMA_P_K) | (1u << LLAMA_P_V) | (1u << LLAMA_P_O) |               \
     (1u << LLAMA_P_GATE) | (1u << LLAMA_P_UP) | (1u << LLAMA_P_DOWN))

typedef struct setup {
    badam_dtype dtype;
    int recompute, lora, packed;
    const char *name;
} setup;

/* What one run produces (host copies). */
typedef struct result {
    double loss;
    int n_tokens;
    float **grads;
    float **dA, **dB; /* [L * LLAMA_P_KIND_COUNT] copies of the adapter gradients, or NULL */
    float *logits;    /* [B*T, V] */
    llama_counters counters;
} result;

static llama_model *make_model(const setup *s) {
    badam_error err = {0};
    llama_config cfg = fixture_config(C, I, L, HQ, HKV, V, 0, 1, 1);
    llama_model *m = NULL;
    test_rng rng;
    test_rng_seed(&rng, 11);
    if (llama_model_create(&cfg, s->dtype, &m, &err)) return NULL;
    fixture_randomize(m, &rng, 0.15f);
    if (s->lora) {
        if (llama_lora_attach(m, R, 8.0f, 0.1f, ALL_PROJECTIONS, 42, &err)) {
            llama_model_free(m);
            return NULL;
        }
        for (int i = 0; i < L * LLAMA_P_KIND_COUNT; i++) /* B starts at zero */
            if (m->lora->B[i]) {
                const llama_param *p = &m->params[llama_param_index(
                    m, i / LLAMA_P_KIND_COUNT, (llama_param_kind)(i % LLAMA_P_KIND_COUNT))];
                test_fill_normal(&rng, m->lora->B[i], (size_t)p->shape[0] * R, 0.1f);
            }
        m->lora->training = 1, m->lora->dropout_seed = 7, m->lora->dropout_step = 3;
    }
    return m;
}

/* The batch of a setup: right-padded, or packed (positions restart in each of 2-3 examples). */
static void make_batch(const setup *s, int32_t *tokens, int32_t *targets, int32_t *pos,
                       int32_t *seg, llama_batch *batch) {
    test_rng rng;
    test_rng_seed(&rng, 5);
    fixture_batch(&rng, B, T, V, !s->packed, tokens, targets);
    *batch = (llama_batch){.B = B, .T = T, .tokens = tokens, .targets = targets};
    if (!s->packed) return;
    static const int starts[B][3] = {{0, 4, 7}, {0, 5, 9}};
    for (int b = 0; b < B; b++)
        for (int t = 0, e = 0; t < T; t++) {
            while (e < 2 && t >= starts[b][e + 1]) e++;
            seg[b * T + t] = starts[b][e], pos[b * T + t] = t - starts[b][e];
        }
    batch->positions = pos, batch->seg_start = seg;
}

static float **copy_adapter_grads(const llama_model *m, float **src) {
    float **out = calloc(L * LLAMA_P_KIND_COUNT, sizeof *out);
    for (int i = 0; i < L * LLAMA_P_KIND_COUNT; i++)
        if (src[i]) {
            const llama_param *p = &m->params[llama_param_index(
                m, i / LLAMA_P_KIND_COUNT, (llama_param_kind)(i % LLAMA_P_KIND_COUNT))];
            size_t n = (size_t)R * (src == m->lora->dA ? (size_t)p->shape[1] : (size_t)p->shape[0]);
            out[i] = malloc(n * sizeof(float));
            memcpy(out[i], src[i], n * sizeof(float));
            memset(src[i], 0, n * sizeof(float)); /* the next run starts from zero too */
        }
    return out;
}

/* A deliberate access of `p` outside any op, in a forked child: returns the child's wait status. */
static int touch_in_child(volatile float *p, int write) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL; /* no sanitizer report: die of the fault itself */
        sigaction(SIGSEGV, &sa, NULL);
        if (write)
            *p = 1.0f;
        else
            (void)*p;
        _exit(0);
    }
    int status = -1;
    if (pid > 0) waitpid(pid, &status, 0);
    return status;
}

static int died_of_segv(int status) {
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

/* The protection is on: workspace buffers are mprotect-backend regions, and reading or writing
 * one between ops faults, while host memory (a weight) reads fine in the same way. */
static void check_faults(const llama_model *m, llama_workspace *ws) {
    CHECK(mprotect_backend_owns(ws->be, ws->x_final) && mprotect_backend_owns(ws->be, ws->dresid));
    CHECK(mprotect_backend_owns(ws->be, ws->tokens) && mprotect_backend_owns(ws->be, ws->cos_t));
    int st = touch_in_child(ws->x_final, 0);
    CHECKF(died_of_segv(st), "reading x_final outside an op: wait status %#x", st);
    st = touch_in_child(ws->dresid, 1);
    CHECKF(died_of_segv(st), "writing dresid outside an op: wait status %#x", st);
    st = touch_in_child((float *)m->params[0].data, 0);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reading host memory: wait status %#x", st);
}

/* forward + backward (full plan) and forward_logits on a workspace on `be` (NULL: the workspace's
 * own CPU backend). */
static int run(llama_model *m, const setup *s, const llama_batch *batch, backend *be, result *r) {
    badam_error err = {0};
    llama_workspace *ws = NULL;
    badam_status st = be ? llama_workspace_create_on(m, B, T, be, &ws, &err)
                         : llama_workspace_create(m, B, T, &ws, &err);
    if (st) {
        fprintf(stderr, "%s: workspace: %s\n", s->name, err.message);
        return -1;
    }
    uint8_t *flags = malloc((size_t)m->n_params);
    memset(flags, 1, (size_t)m->n_params);
    llama_grad_plan plan;
    llama_plan_for_flags(m, flags, s->lora, &plan);
    plan.recompute = s->recompute;
    r->grads = fixture_grads_alloc(m);
    r->loss = fixture_train_step(m, ws, batch, &plan, r->grads);
    r->n_tokens = 0;
    for (int i = 0; i < B * T; i++) r->n_tokens += batch->targets[i] != -100;
    r->counters = llama_workspace_counters(ws);
    r->dA = s->lora ? copy_adapter_grads(m, m->lora->dA) : NULL;
    r->dB = s->lora ? copy_adapter_grads(m, m->lora->dB) : NULL;
    if (be) check_faults(m, ws); /* between ops, after a backward */
    r->logits = malloc(sizeof(float) * B * T * V);
    st = llama_forward_logits(m, ws, batch, r->logits, &err);
    if (st) fprintf(stderr, "%s: logits: %s\n", s->name, err.message);
    if (be) check_faults(m, ws);
    llama_workspace_free(ws);
    free(flags);
    return st ? -1 : 0;
}

static void free_result(const llama_model *m, result *r) {
    fixture_grads_free(m, r->grads);
    for (int k = 0; k < 2; k++) {
        float **g = k ? r->dB : r->dA;
        if (!g) continue;
        for (int i = 0; i < L * LLAMA_P_KIND_COUNT; i++) free(g[i]);
        free(g);
    }
    free(r->logits);
}

static int same(const void *a, const void *b, size_t bytes) {
    return !memcmp(a, b, bytes);
}

static void compare(const llama_model *m, const setup *s, const result *a, const result *b) {
    CHECKF(same(&a->loss, &b->loss, sizeof a->loss), "%s: loss %.17g vs %.17g", s->name, a->loss,
           b->loss);
    int bad = 0;
    for (int i = 0; i < m->n_params; i++)
        bad += !same(a->grads[i], b->grads[i], sizeof(float) * m->params[i].numel);
    CHECKF(!bad, "%s: %d parameter gradients differ", s->name, bad);
    CHECKF(same(a->logits, b->logits, sizeof(float) * B * T * V), "%s: logits differ", s->name);
    CHECKF(a->counters.gemm_flops == b->counters.gemm_flops &&
               a->counters.attention_flops == b->counters.attention_flops,
           "%s: FLOP counters differ", s->name);
    if (!s->lora) return;
    bad = 0;
    for (int i = 0; i < L * LLAMA_P_KIND_COUNT; i++)
        if (a->dA[i]) {
            const llama_param *p = &m->params[llama_param_index(
                m, i / LLAMA_P_KIND_COUNT, (llama_param_kind)(i % LLAMA_P_KIND_COUNT))];
            bad += !same(a->dA[i], b->dA[i], sizeof(float) * R * (size_t)p->shape[1]);
            bad += !same(a->dB[i], b->dB[i], sizeof(float) * R * (size_t)p->shape[0]);
        }
    CHECKF(!bad, "%s: %d adapter gradients differ", s->name, bad);
}

static void check_setup(const setup *s) {
    llama_model *m = make_model(s);
    CHECKF(m != NULL, "%s: model", s->name);
    if (!m) return;
    int32_t tokens[B * T], targets[B * T], pos[B * T], seg[B * T];
    llama_batch batch;
    make_batch(s, tokens, targets, pos, seg, &batch);
    badam_error err = {0};
    backend *mp = NULL;
    result cpu, prot;
    memset(&cpu, 0, sizeof cpu), memset(&prot, 0, sizeof prot);
    CHECK_OK(mprotect_backend_create(&mp, &err), &err);
    int ok = !run(m, s, &batch, NULL, &cpu) && !run(m, s, &batch, mp, &prot);
    CHECKF(ok, "%s: a run failed", s->name);
    if (ok) compare(m, s, &cpu, &prot);
    mprotect_stats st = mprotect_backend_stats(mp);
    /* it was really on: every op opened and closed the regions, and the workspace gave all of
     * its memory back */
    CHECKF(st.ops > 100 && st.opened > st.ops && st.closed >= st.opened && st.failures == 0,
           "%s: ops %llu opened %llu closed %llu failures %llu", s->name,
           (unsigned long long)st.ops, (unsigned long long)st.opened, (unsigned long long)st.closed,
           (unsigned long long)st.failures);
    CHECKF(st.live == 0, "%s: %zu regions still live after the workspace was freed", s->name,
           st.live);
    fprintf(stderr, "%s: %llu ops, %llu regions opened and closed again\n", s->name,
            (unsigned long long)st.ops, (unsigned long long)st.opened);
    backend_destroy(mp);
    free_result(m, &cpu), free_result(m, &prot);
    llama_model_free(m);
}

static void test_model_on_mprotect_backend(void) {
    static const setup setups[] = {
        {BADAM_DTYPE_F32, 0, 0, 0, "fp32 full plan"},
        {BADAM_DTYPE_F32, 1, 0, 0, "fp32 recompute"},
        {BADAM_DTYPE_BF16, 0, 0, 1, "bf16 packed"},
        {BADAM_DTYPE_BF16, 1, 0, 0, "bf16 recompute"},
        {BADAM_DTYPE_F32, 0, 1, 0, "fp32 LoRA (dropout)"},
        {BADAM_DTYPE_F32, 1, 1, 1, "fp32 LoRA recompute packed"},
    };
    for (size_t i = 0; i < sizeof setups / sizeof setups[0]; i++) check_setup(&setups[i]);
}

/* The optimizer ops leave host memory alone and keep theirs protected: one AdamW step on the
 * mprotect backend, the state then unreadable outside an op. */
static void test_optimizer_state_protected(void) {
    badam_error err = {0};
    backend *mp = NULL;
    CHECK_OK(mprotect_backend_create(&mp, &err), &err);
    enum { N = 1000 };
    float host[N];
    for (int i = 0; i < N; i++) host[i] = (float)i / N;
    float *p = BE(mp, alloc, BADAM_MEM_MASTER, sizeof host);
    float *m = BE(mp, alloc, BADAM_MEM_OPTIMIZER, sizeof host);
    float *v = BE(mp, alloc, BADAM_MEM_OPTIMIZER, sizeof host);
    float *g = BE(mp, alloc, BADAM_MEM_GRADIENTS, sizeof host);
    BE(mp, upload, p, host, sizeof host), BE(mp, upload, g, host, sizeof host);
    uint16_t weight[N]; /* the bf16 copy, host memory (as model weights are today) */
    adamw_step_args a = {1e-3f, 1.0f, 0.0f, 0.9f, 0.999f, 1e-8f, 1};
    BE(mp, adamw_update, p, m, v, g, N, &a, weight, BADAM_DTYPE_BF16);
    double ss = BE(mp, sum_squares, g, N);
    CHECK(ss > 300.0 && ss < 340.0); /* sum (i/N)^2 ~ N/3 */
    float back[N];
    BE(mp, download, back, p, sizeof back);
    CHECK(back[N - 1] < host[N - 1] && badam_bf16_to_f32(weight[N - 1]) < host[N - 1]);
    int st = touch_in_child(m, 0);
    CHECKF(died_of_segv(st), "reading Adam state outside an op: wait status %#x", st);
    BE(mp, free, p), BE(mp, free, m), BE(mp, free, v), BE(mp, free, g);
    CHECK(mprotect_backend_stats(mp).live == 0 && mprotect_backend_stats(mp).failures == 0);
    backend_destroy(mp);
}

int main(void) {
    RUN_TEST(test_model_on_mprotect_backend);
    RUN_TEST(test_optimizer_state_protected);
    return test_result();
}
