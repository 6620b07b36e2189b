/* Every built-in method trains through train_run on a backend that keeps its memory out of reach
 * between its calls (tests/util/mprotect_backend.h: each allocation PROT_NONE while no op runs),
 * so nothing - trainer, method, optimizer state, checkpoint code - reads or writes backend
 * memory except through the backend's ops: such an access would die of SIGSEGV here.
 *
 * For badam, adam, lora (dropout on), lomo, sgd-bcd, badam-ratio, mezo, mezo-lora, galore (rank
 * 4, projector every 2 steps; also per-layer, updating inside backward) and adapter (bottleneck
 * width 8), with bf16 and with fp32 weights, two optimizer steps (block-wise methods switch block
 * at the second, K = 1) with a checkpoint after each (optimizer state downloaded and written), run
 * (a) on the plain CPU backend (train_run), (b) on the mprotect backend (train_run_on_backend), and
 * (c) on the mprotect backend paused after step 1 and resumed (optimizer state read back and
 * uploaded). Checked:
 *   - (b) and (c) end with the CPU run's final weights, LoRA adapter and optimizer checkpoint,
 *     byte for byte, and (b) with its per-step metrics (loss, lr, gradient norm, block, tokens)
 *     and final loss;
 *   - the protection was on: ops ran through it, regions were opened and closed again, no
 *     mprotect call failed, and every region was given back at the end;
 *   - the optimizer state lived there: allocations in the master (bf16 split masters), gradients
 *     (all but LoRA and adapter, whose gradients are the adapters' own, host memory) and
 *     optimizer (Adam moments) categories exactly where the method keeps them, and for every
 *     memory category the bytes allocated on the mprotect backend plus those still allocated on
 *     the host equal the CPU run's accounting.
 * Not covered: model weights and LoRA and bottleneck adapters, host memory the ops read and write
 * in place. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"
#include "model_fixtures.h"
#include "mprotect_backend.h"
#include "train/trainer_internal.h"

enum { V = 64, STEPS = 2 };

static char g_model[1024], g_data[1024];

typedef struct method_case {
    const char *method;
    badam_dtype dtype;
    int master, grads, moments; /* backend allocations expected in these categories */
    int forward_only;           /* MeZO: no activations kept, no optimizer state to checkpoint */
    int per_layer;              /* galore: --galore-per-layer (and --clip 0) */
} method_case;

static void config(train_config *c, const method_case *k, const char *out) {
    train_config_defaults(c);
    c->model_dir = g_model;
    c->data_path = g_data;
    c->out_dir = out;
    c->method_name = k->method;
    c->dtype = k->dtype;
    c->max_steps = STEPS;
    c->switch_every = 1;
    c->order = BLOCK_ORDER_ASCENDING;
    c->save_every = 1;
    c->seq_len = 32, c->batch_size = 2;
    c->lr = 1e-3f, c->weight_decay = 0.01f;
    c->lora_rank = 4, c->lora_dropout = 0.1f;
    if (!strcmp(k->method, "mezo-lora")) c->lora_dropout = 0; /* two forwards of one function */
    c->galore_rank = 4, c->galore_update_gap = 2;
    c->adapter_size = 8;
    c->galore_per_layer = k->per_layer;
    if (k->per_layer) c->clip = 0;
}

static int same_file(const char *a_dir, const char *b_dir, const char *name) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    badam_error err = {0};
    int same = !io_read_file(test_path_in(a_dir, name), &x, &nx, &err) &&
               !io_read_file(test_path_in(b_dir, name), &y, &ny, &err) && nx == ny &&
               !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

/* metrics.jsonl with each line cut before its timings ("tokens_per_s" on): what must agree. */
static char *metrics_without_timings(const char *out) {
    char *text = NULL;
    size_t size = 0;
    badam_error err = {0};
    if (io_read_file(test_path_in(out, "metrics.jsonl"), &text, &size, &err)) return NULL;
    char *kept = calloc(size + 1, 1);
    size_t n = 0;
    for (char *line = strtok(text, "\n"); kept && line; line = strtok(NULL, "\n")) {
        char *cut = strstr(line, "\"tokens_per_s\"");
        size_t len = cut ? (size_t)(cut - line) : strlen(line);
        memcpy(kept + n, line, len);
        n += len;
        kept[n++] = '\n';
    }
    free(text);
    return kept;
}

/* The files a run leaves that must be the CPU run's, byte for byte. */
static void compare_outputs(const method_case *k, const char *what, const char *cpu,
                            const char *other) {
    const char *files[] = {"model.safetensors", "checkpoint/optimizer.safetensors",
                           "checkpoint/model.safetensors", "adapter/adapter_model.safetensors",
                           "checkpoint/galore.safetensors"};
    for (int i = 0; i < 5; i++) {
        if (!io_is_file(test_path_in(cpu, files[i]))) {
            CHECKF(i == 3 || (i == 1 && k->forward_only) || (i == 4 && strcmp(k->method, "galore")),
                   "%s %s: the CPU run wrote no %s", k->method, badam_dtype_name(k->dtype),
                   files[i]);
            continue;
        }
        CHECKF(same_file(cpu, other, files[i]), "%s %s: %s: %s differs from the CPU run's",
               k->method, badam_dtype_name(k->dtype), what, files[i]);
    }
}

/* The protection was on and held the method's state (see the file comment). */
static void check_stats(const method_case *k, const mprotect_stats *s, const train_report *cpu,
                        const train_report *mp) {
    const char *name = k->method, *dt = badam_dtype_name(k->dtype);
    CHECKF(s->ops > 100 && s->opened > s->ops && s->closed >= s->opened && s->failures == 0,
           "%s %s: ops %llu opened %llu closed %llu failures %llu", name, dt,
           (unsigned long long)s->ops, (unsigned long long)s->opened, (unsigned long long)s->closed,
           (unsigned long long)s->failures);
    CHECKF(s->live == 0, "%s %s: %zu regions live after the run", name, dt, s->live);
    CHECKF(!s->allocs[BADAM_MEM_MASTER] == !k->master &&
               !s->allocs[BADAM_MEM_GRADIENTS] == !k->grads &&
               !s->allocs[BADAM_MEM_OPTIMIZER] == !k->moments,
           "%s %s: backend allocations master %llu gradients %llu optimizer %llu", name, dt,
           (unsigned long long)s->allocs[BADAM_MEM_MASTER],
           (unsigned long long)s->allocs[BADAM_MEM_GRADIENTS],
           (unsigned long long)s->allocs[BADAM_MEM_OPTIMIZER]);
    CHECKF(s->allocs[k->forward_only ? BADAM_MEM_WORKSPACE : BADAM_MEM_ACTIVATIONS] > 0,
           "%s %s: the workspace is not on the backend", name, dt);
    for (int c = BADAM_MEM_MASTER; c < BADAM_MEM_CATEGORY_COUNT; c++)
        CHECKF(s->peak[c] + mp->measured[c] == cpu->measured[c],
               "%s %s: %s: %zu bytes on the mprotect backend + %zu on the host, the CPU run %zu",
               name, dt, badam_mem_category_name(c), s->peak[c], mp->measured[c], cpu->measured[c]);
}

/* train_run_on_backend on a fresh mprotect backend; its stats in *s. */
static badam_status run_mprotect(const train_config *c, train_report *r, mprotect_stats *s,
                                 badam_error *err) {
    backend *be = NULL;
    badam_status st = mprotect_backend_create(&be, err);
    if (st) return st;
    st = train_run_on_backend(c, be, r, err);
    *s = mprotect_backend_stats(be);
    backend_destroy(be);
    return st;
}

static void check_method(const method_case *k) {
    const char *dt = badam_dtype_name(k->dtype);
    char base[1024], cpu[1100], prot[1100], resumed[1100];
    snprintf(base, sizeof base, "train-mprotect-%s%s-%s", k->method, k->per_layer ? "-pl" : "", dt);
    snprintf(base, sizeof base, "%s", test_workdir(base)); /* emptied */
    snprintf(cpu, sizeof cpu, "%s/cpu", base);
    snprintf(prot, sizeof prot, "%s/mprotect", base);
    snprintf(resumed, sizeof resumed, "%s/resumed", base);
    fprintf(stderr, "  %s%s %s\n", k->method, k->per_layer ? " per-layer" : "",
            dt); /* a fault below dies after this line */
    train_config c;
    train_report r_cpu, r_mp, r_res;
    mprotect_stats s;
    badam_error err = {0};
    config(&c, k, cpu);
    CHECK_OK(train_run(&c, &r_cpu, &err), &err);
    config(&c, k, prot);
    CHECK_OK(run_mprotect(&c, &r_mp, &s, &err), &err);
    CHECKF(r_mp.steps == STEPS && !memcmp(&r_mp.final_loss, &r_cpu.final_loss, sizeof(double)),
           "%s %s: %d steps, final loss %.17g (CPU %.17g)", k->method, dt, r_mp.steps,
           r_mp.final_loss, r_cpu.final_loss);
    compare_outputs(k, "mprotect", cpu, prot);
    char *m_cpu = metrics_without_timings(cpu), *m_mp = metrics_without_timings(prot);
    CHECKF(m_cpu && m_mp && !strcmp(m_cpu, m_mp), "%s %s: metrics differ:\n%s---\n%s", k->method,
           dt, m_cpu ? m_cpu : "", m_mp ? m_mp : "");
    free(m_cpu), free(m_mp);
    check_stats(k, &s, &r_cpu, &r_mp);

    /* paused after step 1 (checkpoint written), resumed (checkpoint read back) */
    config(&c, k, resumed);
    c.stop_at_step = 1;
    CHECK_OK(run_mprotect(&c, &r_res, &s, &err), &err);
    CHECKF(r_res.stopped && r_res.steps == 1, "%s %s: the pause did not stop at step 1", k->method,
           dt);
    c.stop_at_step = 0, c.resume = 1;
    CHECK_OK(run_mprotect(&c, &r_res, &s, &err), &err);
    CHECKF(s.failures == 0 && s.live == 0 && s.ops > 0, "%s %s: resumed run's backend", k->method,
           dt);
    CHECKF(!memcmp(&r_res.final_loss, &r_cpu.final_loss, sizeof(double)),
           "%s %s: resumed final loss %.17g (CPU %.17g)", k->method, dt, r_res.final_loss,
           r_cpu.final_loss);
    compare_outputs(k, "resumed", cpu, resumed);
}

static void test_every_method_on_mprotect(void) {
    static const method_case cases[] = {
        {"badam", BADAM_DTYPE_BF16, 1, 1, 1, 0, 0},
        {"badam", BADAM_DTYPE_F32, 0, 1, 1, 0, 0},
        {"adam", BADAM_DTYPE_BF16, 1, 1, 1, 0, 0},
        {"adam", BADAM_DTYPE_F32, 0, 1, 1, 0, 0},
        {"lora", BADAM_DTYPE_BF16, 0, 0, 1, 0, 0},
        {"lora", BADAM_DTYPE_F32, 0, 0, 1, 0, 0},
        {"lomo", BADAM_DTYPE_BF16, 0, 1, 0, 0, 0},
        {"lomo", BADAM_DTYPE_F32, 0, 1, 0, 0, 0},
        {"sgd-bcd", BADAM_DTYPE_BF16, 1, 1, 0, 0, 0},
        {"sgd-bcd", BADAM_DTYPE_F32, 0, 1, 0, 0, 0},
        /* ratio mode: fp32 masters of the masked entries whatever the weights; MeZO: one
         * layer's perturbed fp32 copy, no gradients, no state */
        {"badam-ratio", BADAM_DTYPE_BF16, 1, 1, 1, 0, 0},
        {"badam-ratio", BADAM_DTYPE_F32, 1, 1, 1, 0, 0},
        {"mezo", BADAM_DTYPE_BF16, 1, 0, 0, 1, 0},
        {"mezo", BADAM_DTYPE_F32, 1, 0, 0, 1, 0},
        {"mezo-lora", BADAM_DTYPE_BF16, 1, 0, 0, 1, 0},
        {"mezo-lora", BADAM_DTYPE_F32, 1, 0, 0, 1, 0},
        /* galore: fp32 masters with bf16 weights; the last field: per-layer */
        {"galore", BADAM_DTYPE_BF16, 1, 1, 1, 0, 0},
        {"galore", BADAM_DTYPE_F32, 0, 1, 1, 0, 0},
        {"galore", BADAM_DTYPE_BF16, 1, 1, 1, 0, 1},
        {"galore", BADAM_DTYPE_F32, 0, 1, 1, 0, 1},
        {"adapter", BADAM_DTYPE_BF16, 0, 0, 1, 0, 0},
        {"adapter", BADAM_DTYPE_F32, 0, 0, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_method(&cases[i]);
}

int main(void) {
    const char *dir = test_workdir("train-mprotect");
    snprintf(g_model, sizeof g_model, "%s/model", dir);
    snprintf(g_data, sizeof g_data, "%s/train.jsonl", dir);
    llama_config cfg = fixture_config(32, 48, 2, 4, 2, V, 0, 0, 0);
    if (fixture_write_model(g_model, &cfg, BADAM_DTYPE_F32, 7, 0.05f) ||
        fixture_write_tokenized_data(g_data, 12, 8, 30, V, 3)) {
        fprintf(stderr, "fixtures could not be written\n");
        return 1;
    }
    RUN_TEST(test_every_method_on_mprotect);
    return test_result();
}
