/* The method interface (src/optim/method.h) from the outside: two methods defined and registered
 * here, in the test, train through the same train_run loop as the built-in ones, without any
 * change to the trainer:
 *   toy-sgd:    plain SGD on every parameter, w -= lr * g (g = gradient sum / tokens);
 *   toy-search: a forward-only random search: perturb every weight by sigma * N(0, 1), compare
 *               the losses of the step's batch, keep the better weights.
 * On one example repeated (batch 1, no shuffle) SGD lowers the loss, and the search's step loss
 * never rises and ends lower than it started. The registry refuses a duplicate name and an
 * incomplete method. Their state is the run's backend memory: on the mprotect backend (every
 * backend allocation unreachable outside an op) they train to the CPU run's weights. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/train.h"
#include "base/memory.h"
#include "io/files.h"
#include "mprotect_backend.h"
#include "optim/method.h"
#include "testutil.h"
#include "train/trainer_internal.h"

/* ---------------------------------------------------------------- toy-sgd */

typedef struct toy_sgd {
    uint8_t *flags;
    float **grads; /* one buffer per parameter */
} toy_sgd;

static badam_status toy_sgd_sizes(const llama_model *m, const method_options *o, method_sizes *out,
                                  badam_error *err) {
    (void)o, (void)err;
    for (int i = 0; i < m->n_params; i++) {
        out->bytes[BADAM_MEM_GRADIENTS] += badam_alloc_size(m->params[i].numel * sizeof(float));
        out->trainable += m->params[i].numel;
    }
    return BADAM_OK;
}

static badam_status toy_sgd_create(method_state *s, badam_error *err) {
    if (s->m->dtype != BADAM_DTYPE_F32)
        return badam_fail(err, BADAM_E_UNSUPPORTED, "toy-sgd: fp32 weights only");
    s->priv = calloc(1, sizeof(toy_sgd));
    return s->priv ? BADAM_OK : badam_fail(err, BADAM_E_NOMEM, "toy-sgd");
}

/* The gradient buffers are the run's backend memory (s->be), touched only through its ops. */
static badam_status toy_sgd_allocate(method_state *s, badam_error *err) {
    toy_sgd *t = s->priv;
    int n = s->m->n_params;
    t->flags = calloc((size_t)n, 1);
    t->grads = calloc((size_t)n, sizeof *t->grads);
    if (!t->flags || !t->grads) return badam_fail(err, BADAM_E_NOMEM, "toy-sgd");
    for (int i = 0; i < n; i++) {
        t->flags[i] = 1;
        t->grads[i] = BE(s->be, alloc, BADAM_MEM_GRADIENTS, s->m->params[i].numel * sizeof(float));
        if (!t->grads[i]) return badam_fail(err, BADAM_E_NOMEM, "toy-sgd");
    }
    s->need_grad = t->flags, s->grads = t->grads;
    return BADAM_OK;
}

static void toy_sgd_zero(method_state *s) {
    toy_sgd *t = s->priv;
    for (int i = 0; i < s->m->n_params; i++)
        BE(s->be, zero, t->grads[i], s->m->params[i].numel * sizeof(float));
}

/* w -= lr * g / tokens (the backend's sgd_update, no decay), after the all-reduce; the norm
 * reported, no clipping */
static badam_status toy_sgd_update(method_state *s, const method_update_ctx *c, double *norm,
                                   badam_error *err) {
    toy_sgd *t = s->priv;
    double sum_sq = 0;
    for (int i = 0; i < s->m->n_params; i++) {
        const llama_param *p = &s->m->params[i];
        badam_status st = method_all_reduce_grad(s->be, c->comm, t->grads[i], p->numel, err);
        if (st) return st;
        sum_sq += BE(s->be, sum_squares, t->grads[i], p->numel);
    }
    float scale = c->tokens ? 1.0f / (float)c->tokens : 0.0f;
    *norm = sqrt(sum_sq) * scale;
    for (int i = 0; i < s->m->n_params; i++) {
        const llama_param *p = &s->m->params[i];
        BE(s->be, sgd_update, p->data, t->grads[i], p->numel, c->lr, scale, 0.0f, NULL,
           BADAM_DTYPE_F32);
    }
    return BADAM_OK;
}

static void toy_sgd_free(method_state *s) {
    toy_sgd *t = s->priv;
    if (!t) return;
    for (int i = 0; t->grads && i < s->m->n_params; i++)
        if (t->grads[i]) BE(s->be, free, t->grads[i]);
    free(t->grads);
    free(t->flags);
    free(t);
    s->priv = NULL;
}

static const train_method_ops TOY_SGD = {
    .name = "toy-sgd",
    .sizes = toy_sgd_sizes,
    .create = toy_sgd_create,
    .allocate = toy_sgd_allocate,
    .zero_grads = toy_sgd_zero,
    .update = toy_sgd_update,
    .free = toy_sgd_free,
};

/* ---------------------------------------------------------------- toy-search */

typedef struct toy_search {
    float **saved; /* the weights before the perturbation (backend memory) */
    test_rng rng;
    int accepted;
} toy_search;

static badam_status search_sizes(const llama_model *m, const method_options *o, method_sizes *out,
                                 badam_error *err) {
    (void)o, (void)err;
    for (int i = 0; i < m->n_params; i++) {
        out->bytes[BADAM_MEM_MASTER] += badam_alloc_size(m->params[i].numel * sizeof(float));
        out->trainable += m->params[i].numel;
    }
    return BADAM_OK;
}

static badam_status search_create(method_state *s, badam_error *err) {
    if (s->m->dtype != BADAM_DTYPE_F32)
        return badam_fail(err, BADAM_E_UNSUPPORTED, "toy-search: fp32 weights only");
    toy_search *t = calloc(1, sizeof *t);
    if (!t) return badam_fail(err, BADAM_E_NOMEM, "toy-search");
    test_rng_seed(&t->rng, s->o.seed);
    s->priv = t;
    return BADAM_OK;
}

static badam_status search_allocate(method_state *s, badam_error *err) {
    toy_search *t = s->priv;
    t->saved = calloc((size_t)s->m->n_params, sizeof *t->saved);
    for (int i = 0; t->saved && i < s->m->n_params; i++) {
        t->saved[i] = BE(s->be, alloc, BADAM_MEM_MASTER, s->m->params[i].numel * 4);
        if (!t->saved[i]) return badam_fail(err, BADAM_E_NOMEM, "toy-search");
    }
    return t->saved ? BADAM_OK : badam_fail(err, BADAM_E_NOMEM, "toy-search");
}

/* L0 = loss(w); w' = w + lr * z; L1 = loss(w'); keep w' when L1 < L0, else w. Reports L0. */
static badam_status search_step(method_state *s, const method_step_ctx *c, method_step_result *out,
                                badam_error *err) {
    toy_search *t = s->priv;
    double l0, l1;
    long n0, n1;
    badam_status st = c->forward_loss(c->self, &l0, &n0, err);
    if (st) return st;
    for (int i = 0; i < s->m->n_params; i++) {
        const llama_param *p = &s->m->params[i];
        float *w = p->data;
        BE(s->be, upload, t->saved[i], w, p->numel * sizeof(float));
        for (size_t k = 0; k < p->numel; k++) w[k] += c->lr * test_rng_normal(&t->rng);
    }
    if ((st = c->forward_loss(c->self, &l1, &n1, err))) return st;
    if (l1 < l0)
        t->accepted++;
    else
        for (int i = 0; i < s->m->n_params; i++)
            BE(s->be, download, s->m->params[i].data, t->saved[i],
               s->m->params[i].numel * sizeof(float));
    out->loss_sum = l0, out->tokens = n0, out->grad_norm = NAN;
    return BADAM_OK;
}

static void search_free(method_state *s) {
    toy_search *t = s->priv;
    if (!t) return;
    for (int i = 0; t->saved && i < s->m->n_params; i++)
        if (t->saved[i]) BE(s->be, free, t->saved[i]);
    free(t->saved);
    free(t);
    s->priv = NULL;
}

static const train_method_ops TOY_SEARCH = {
    .name = "toy-search",
    .sizes = search_sizes,
    .create = search_create,
    .allocate = search_allocate,
    .step = search_step,
    .free = search_free,
};

/* ---------------------------------------------------------------- the runs */

static char g_data[1200];

/* One alpaca example, so every batch (batch size 1, no shuffle) is the same. */
static void write_data(void) {
    const char *dir = test_workdir("methods-toy-data");
    snprintf(g_data, sizeof g_data, "%s/one.json", dir);
    const char *json = "[{\"instruction\": \"Reverse the letters of the word.\", \"input\": "
                       "\"szyc\", \"output\": \"cyzs\"}]";
    CHECK(test_write_raw(g_data, json, strlen(json)) == 0);
}

/* The per-step losses of OUT/metrics.jsonl into loss[] (at most max); returns how many. */
static int read_losses(const char *out, double *loss, int max) {
    char *text = NULL;
    size_t size = 0;
    badam_error err = {0};
    if (io_read_file(test_path_in(out, "metrics.jsonl"), &text, &size, &err)) return 0;
    int n = 0;
    for (char *line = strtok(text, "\n"); line && n < max; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        const json_t *l = json_object_get(j, "loss");
        if (json_is_number(l)) loss[n++] = json_number_value(l);
        json_decref(j);
    }
    free(text);
    return n;
}

/* be NULL: train_run (its own CPU backend); else train_run_on_backend(be). */
static badam_status train_toy_on(backend *be, const train_method_registry *reg, const char *method,
                                 const char *out, float lr, int steps, int grad_accum,
                                 train_report *r, badam_error *err) {
    train_config c;
    train_config_defaults(&c);
    c.model_dir = test_source_path("models/tiny-random-llama");
    c.data_path = g_data;
    c.out_dir = out;
    c.methods = reg;
    c.method_name = method;
    c.dtype = BADAM_DTYPE_F32;
    c.template_name = "alpaca";
    c.system_prompt = "";
    c.batch_size = 1, c.seq_len = 64, c.max_steps = steps, c.lr = lr;
    c.schedule = LR_CONSTANT;
    c.shuffle = 0;
    c.grad_accum = grad_accum;
    return be ? train_run_on_backend(&c, be, r, err) : train_run(&c, r, err);
}

static badam_status train_toy(const train_method_registry *reg, const char *method, const char *out,
                              float lr, int steps, int grad_accum, train_report *r,
                              badam_error *err) {
    return train_toy_on(NULL, reg, method, out, lr, steps, grad_accum, r, err);
}

static void test_toy_sgd(const train_method_registry *reg) {
    const char *out = test_workdir("methods-toy-sgd");
    train_report r;
    badam_error err = {0};
    CHECK_OK(train_toy(reg, "toy-sgd", out, 0.05f, 8, 1, &r, &err), &err);
    double loss[16];
    int n = read_losses(out, loss, 16);
    CHECKF(n == 8, "toy-sgd: %d steps in metrics.jsonl", n);
    CHECKF(n == 8 && loss[7] < 0.9 * loss[0], "toy-sgd: loss %.4f -> %.4f", loss[0],
           n ? loss[n - 1] : NAN);
    /* the run ended like a built-in one: final model, checkpoint with the method's name */
    CHECK(io_is_file(test_path_in(out, "model.safetensors")));
    char *state = NULL;
    size_t size = 0;
    CHECK(!io_read_file(test_path_in(out, "checkpoint/trainer_state.json"), &state, &size, &err));
    CHECK(state && strstr(state, "\"toy-sgd\""));
    free(state);
}

static void test_toy_search(const train_method_registry *reg) {
    const char *out = test_workdir("methods-toy-search");
    train_report r;
    badam_error err = {0};
    CHECK_OK(train_toy(reg, "toy-search", out, 0.005f, 12, 1, &r, &err), &err);
    double loss[16];
    int n = read_losses(out, loss, 16);
    CHECKF(n == 12, "toy-search: %d steps in metrics.jsonl", n);
    for (int i = 1; i < n; i++)
        CHECKF(loss[i] <= loss[i - 1], "toy-search: the loss rose at step %d (%.6f -> %.6f)", i + 1,
               loss[i - 1], loss[i]);
    CHECKF(n == 12 && loss[11] < loss[0], "toy-search: loss %.6f -> %.6f, nothing kept", loss[0],
           n ? loss[n - 1] : NAN);
    /* it runs its own step on one batch: accumulation is refused */
    CHECK(train_toy(reg, "toy-search", test_workdir("methods-toy-accum"), 0.02f, 2, 2, &r, &err) ==
          BADAM_E_INVALID);
    CHECKF(strstr(err.message, "cannot accumulate"), "%s", err.message);
}

static int same_weights(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    badam_error err = {0};
    int same = !io_read_file(test_path_in(a, "model.safetensors"), &x, &nx, &err) &&
               !io_read_file(test_path_in(b, "model.safetensors"), &y, &ny, &err) && nx == ny &&
               !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

/* Both toys keep their state in the run's backend memory and train on the mprotect backend
 * (tests/util/mprotect_backend.h: a direct access would fault) to the CPU run's weights. */
static void test_toys_on_mprotect(const train_method_registry *reg) {
    const char *names[2] = {"toy-sgd", "toy-search"};
    const badam_mem_category state[2] = {BADAM_MEM_GRADIENTS, BADAM_MEM_MASTER};
    for (int i = 0; i < 2; i++) {
        char cpu[1024], prot[1024];
        snprintf(cpu, sizeof cpu, "%s", test_workdir(i ? "toy-search-cpu" : "toy-sgd-cpu"));
        snprintf(prot, sizeof prot, "%s", test_workdir(i ? "toy-search-mp" : "toy-sgd-mp"));
        train_report r;
        badam_error err = {0};
        backend *mp = NULL;
        CHECK_OK(train_toy(reg, names[i], cpu, 0.01f, 3, 1, &r, &err), &err);
        CHECK_OK(mprotect_backend_create(&mp, &err), &err);
        if (!mp) continue;
        CHECK_OK(train_toy_on(mp, reg, names[i], prot, 0.01f, 3, 1, &r, &err), &err);
        mprotect_stats st = mprotect_backend_stats(mp);
        CHECKF(st.ops > 0 && st.failures == 0 && st.live == 0 && st.allocs[state[i]] > 0,
               "%s: ops %llu failures %llu live %zu state allocations %llu", names[i],
               (unsigned long long)st.ops, (unsigned long long)st.failures, st.live,
               (unsigned long long)st.allocs[state[i]]);
        CHECKF(same_weights(cpu, prot), "%s: the mprotect run's weights differ from the CPU run's",
               names[i]);
        backend_destroy(mp);
    }
}

static void test_registry(train_method_registry *reg) {
    badam_error err = {0};
    CHECK(train_method_register(reg, &TOY_SGD, &err) == BADAM_E_INVALID);
    CHECKF(strstr(err.message, "'toy-sgd' is registered already"), "%s", err.message);
    train_method_ops incomplete = {.name = "incomplete", .sizes = toy_sgd_sizes};
    CHECK(train_method_register(reg, &incomplete, &err) == BADAM_E_INVALID);
    CHECK(train_method_find(reg, "incomplete") == NULL);
    CHECK(train_method_find(reg, "toy-search") == &TOY_SEARCH);
    CHECK(train_method_find(reg, "badam") == train_method_builtin(0));
    CHECK(train_method_find(NULL, "toy-sgd") == NULL); /* the built-in table is not changed */
    /* an unknown name is an error of train_run, before anything is written */
    train_report r;
    CHECK(train_toy(reg, "no-such-method", test_workdir("methods-toy-unknown"), 0.1f, 1, 1, &r,
                    &err) == BADAM_E_INVALID);
    CHECKF(strstr(err.message, "unknown method 'no-such-method'"), "%s", err.message);
}

int main(void) {
    if (!test_source_path("models/tiny-random-llama")) {
        fprintf(stderr, "BADAM_SOURCE_DIR is not set\n");
        return 1;
    }
    write_data();
    train_method_registry reg;
    train_method_registry_init(&reg);
    badam_error err = {0};
    CHECKF(train_method_register(&reg, &TOY_SGD, &err) == BADAM_OK, "%s", err.message);
    CHECKF(train_method_register(&reg, &TOY_SEARCH, &err) == BADAM_OK, "%s", err.message);
    test_toy_sgd(&reg);
    fprintf(stderr, "%s test_toy_sgd\n", test_failures ? "FAIL" : "ok  ");
    int before = test_failures;
    test_toy_search(&reg);
    fprintf(stderr, "%s test_toy_search\n", test_failures > before ? "FAIL" : "ok  ");
    before = test_failures;
    test_registry(&reg);
    fprintf(stderr, "%s test_registry\n", test_failures > before ? "FAIL" : "ok  ");
    before = test_failures;
    test_toys_on_mprotect(&reg);
    fprintf(stderr, "%s test_toys_on_mprotect\n", test_failures > before ? "FAIL" : "ok  ");
    return test_result();
}
