/* Memory accounting: for every method, the bytes allocated per category (peak) equal the memory
 * plan's prediction; BAdam's master + gradient + optimizer bytes are 14 x its largest block; and
 * no step after the first allocates; on a model large enough to show it, BAdam's peak RSS is below
 * Adam's by at least 80% of the predicted difference. Runs `badam train` as a separate process per
 * method. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "badam/train.h"
#include "base/memory.h"
#include "io/files.h"
#include "model_fixtures.h"

static const char *CATS[] = {"weights",   "master",      "gradients",
                             "optimizer", "activations", "workspace"};

static json_t *read_memory_json(const char *out) {
    char path[2048];
    snprintf(path, sizeof path, "%s/memory.json", out);
    json_t *j = NULL;
    badam_error err = {0};
    if (io_read_json(path, &j, &err)) fprintf(stderr, "%s\n", err.message);
    return j;
}

static double field(const json_t *j, const char *obj, const char *name) {
    const json_t *o = obj ? json_object_get(j, obj) : j;
    const json_t *v = o ? json_object_get(o, name) : NULL;
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static int train(const char *model, const char *data, const char *out, const char *method,
                 const char *extra) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "%s train --model %s --data %s --out %s --method %s --no-shuffle --quiet "
             "--no-checkpoint %s > %s.log 2>&1",
             getenv("BADAM_CLI"), model, data, out, method, extra, out);
    int rc = test_system(cmd);
    if (rc) fprintf(stderr, "badam train (%s) failed; see %s.log\n", method, out);
    return rc;
}

/* Checks that every step after the first made no allocation (metrics.jsonl "allocs"): buffers
 * are sized once, and a block switch upwards (ascending order) only re-points and releases. */
static void check_steady_state_allocs(const char *out, const char *method) {
    char path[1200], line[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", out);
    FILE *f = fopen(path, "r");
    CHECKF(f != NULL, "%s: no metrics.jsonl", method);
    int steps = 0;
    while (f && fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        double step = field(j, NULL, "step"), allocs = field(j, NULL, "allocs");
        if (!isnan(allocs)) {
            steps++;
            if (step > 1)
                CHECKF(allocs == 0, "%s: step %.0f made %.0f allocations", method, step, allocs);
        }
        json_decref(j);
    }
    if (f) fclose(f);
    CHECKF(steps >= 4, "%s: %d steps in metrics.jsonl", method, steps);
}

/* Ratio mode (--update-ratio 0.1, embedding and head frozen): 18 bytes per masked entry (fp32
 * master, gradient, m, v and the int32 index) in master + optimizer, and gradients of the masked
 * entries plus one dense buffer per shape class (the largest matrix, the largest vector). MeZO:
 * one layer's fp32 copy and nothing else. Up to alignment. */
static void check_ratio_and_mezo_state(json_t *j, const llama_config *cfg, const char *method) {
    llama_model *m = NULL;
    badam_error err = {0};
    llama_model_describe(cfg, BADAM_DTYPE_BF16, &m, &err);
    size_t masked = 0, matrix = 0, vector = 0, layer = 0;
    for (int p = 0; m && p < m->n_params; p++) {
        const llama_param *q = &m->params[p];
        if (q->layer == 0) layer += q->numel;
        if (q->tag.role == MODEL_ROLE_EMBED || q->tag.role == MODEL_ROLE_HEAD) continue;
        masked += (size_t)((double)q->numel * (double)0.1f);
        size_t *slot = q->ndim == 2 ? &matrix : &vector;
        if (q->numel > *slot) *slot = q->numel;
    }
    double master = field(j, "predicted", "master"), grads = field(j, "predicted", "gradients"),
           opt = field(j, "predicted", "optimizer");
    if (!strcmp(method, "badam-ratio")) {
        CHECKF(master + opt >= 16.0 * masked && master + opt <= 16.0 * masked * 1.05 + 8192,
               "ratio: master + optimizer %.0f bytes vs 16 x %zu masked entries", master + opt,
               masked);
        double dense = 4.0 * (masked + matrix + vector);
        CHECKF(grads >= dense && grads <= dense * 1.05 + 8192,
               "ratio: gradients %.0f bytes vs 4 x (%zu masked + %zu + %zu dense)", grads, masked,
               matrix, vector);
    }
    if (!strcmp(method, "mezo"))
        CHECKF(master >= 4.0 * layer && master <= 4.0 * layer * 1.02 + 4096 && grads == 0 &&
                   opt == 0,
               "mezo: master %.0f (one layer: 4 x %zu), gradients %.0f, optimizer %.0f", master,
               layer, grads, opt);
    llama_model_free(m);
}

static void test_predicted_equals_allocated(void) {
    const char *dir = test_workdir("memory-small");
    char model[1024], data[1024];
    snprintf(model, sizeof model, "%s/model", dir);
    snprintf(data, sizeof data, "%s/train.jsonl", dir);
    llama_config cfg = fixture_config(64, 96, 3, 4, 2, 211, 0, 0, 0);
    if (fixture_write_model(model, &cfg, BADAM_DTYPE_BF16, 1, 0.05f) ||
        fixture_write_tokenized_data(data, 16, 8, 40, 211, 2)) {
        CHECK(0);
        return;
    }
    /* name, --method, its own options (galore: rank 8 of 64-wide matrices, projector refreshed
     * at steps 1 and 3; per-layer: one shared layer gradient); galore at 5 and 6, adam at 1 */
    const char *methods[][3] = {
        {"badam", "badam", ""},
        {"adam", "adam", ""},
        {"lora", "lora", ""},
        {"lomo", "lomo", ""},
        {"sgd-bcd", "sgd-bcd", ""},
        {"galore", "galore", "--galore-rank 8 --galore-update-gap 2"},
        {"galore-per-layer", "galore",
         "--galore-rank 8 --galore-update-gap 2 --galore-per-layer --clip 0"},
        {"adapter", "adapter", "--adapter-size 16"},
        {"badam-ratio", "badam-ratio", ""},
        {"mezo", "mezo", ""},
        {"mezo-lora", "mezo-lora", ""},
    };
    enum { N_METHODS = sizeof methods / sizeof methods[0] };
    double optimizer[N_METHODS], gradients[N_METHODS];
    /* ascending with K=1 visits every block, so the activation peak is the planned worst case */
    const char *common = "--max-steps 4 --switch-every 1 --switch-mode ascending --seq-len 48 "
                         "--batch-size 2 --lr 1e-4";
    for (int i = 0; i < N_METHODS; i++) {
        char out[1100], extra[1024];
        optimizer[i] = gradients[i] = NAN;
        snprintf(out, sizeof out, "%s/out-%s", dir, methods[i][0]);
        snprintf(extra, sizeof extra, "%s %s", common, methods[i][2]);
        if (train(model, data, out, methods[i][1], extra)) {
            CHECK(0);
            continue;
        }
        check_steady_state_allocs(out, methods[i][0]);
        json_t *j = read_memory_json(out);
        for (int c = 0; j && c < 6; c++) {
            double pred = field(j, "predicted", CATS[c]), meas = field(j, "measured_peak", CATS[c]);
            CHECKF(pred == meas, "%s: %s predicted %.0f bytes, allocated peak %.0f", methods[i][0],
                   CATS[c], pred, meas);
        }
        optimizer[i] = field(j, "predicted", "optimizer");
        gradients[i] = field(j, "predicted", "gradients");
        if (j && !strcmp(methods[i][0], "badam")) {
            /* 14 bytes per parameter of the largest block (one layer here), up to alignment: the
             * split master's 2 low bytes (its high bytes are the bf16 weight), the fp32 gradient
             * and the two fp32 moments. */
            llama_model *m = NULL;
            badam_error err = {0};
            llama_model_describe(&cfg, BADAM_DTYPE_BF16, &m, &err);
            size_t layer = 0;
            for (int p = 0; m && p < m->n_params; p++)
                if (m->params[p].layer == 0) layer += m->params[p].numel;
            double state = field(j, "predicted", "master") + field(j, "predicted", "gradients") +
                           field(j, "predicted", "optimizer");
            CHECKF(state >= 14.0 * layer && state <= 14.0 * layer * 1.02 + 4096,
                   "BAdam state %.0f bytes vs 14 x %zu block parameters", state, layer);
            llama_model_free(m);
        }
        if (j) check_ratio_and_mezo_state(j, &cfg, methods[i][1]);
        json_decref(j);
    }
    /* GaLore keeps low-rank moments (below Adam's full ones); per-layer, one layer matrix's
     * gradient instead of all of them (below GaLore's). */
    CHECKF(optimizer[5] < optimizer[1], "galore optimizer %.0f bytes, adam %.0f", optimizer[5],
           optimizer[1]);
    CHECKF(gradients[6] < gradients[5], "galore per-layer gradients %.0f bytes, galore %.0f",
           gradients[6], gradients[5]);
}

static void test_badam_rss_below_adam(void) {
#if defined(__SANITIZE_ADDRESS__)
    fprintf(stderr, "  (skipped under AddressSanitizer: its shadow memory distorts RSS)\n");
    return;
#endif
    const char *dir = test_workdir("memory-large");
    char model[1024], data[1024];
    snprintf(model, sizeof model, "%s/model", dir);
    snprintf(data, sizeof data, "%s/train.jsonl", dir);
    /* ~30M parameters: Adam's master low bits + gradient + moments are ~420 MB, BAdam's ~45 MB. */
    llama_config cfg = fixture_config(512, 1408, 8, 8, 4, 4000, 0, 0, 0);
    if (fixture_write_model(model, &cfg, BADAM_DTYPE_BF16, 3, 0.02f) ||
        fixture_write_tokenized_data(data, 8, 16, 32, 4000, 4)) {
        CHECK(0);
        return;
    }
    const char *extra = "--max-steps 2 --switch-every 1 --seq-len 32 --batch-size 1 --lr 1e-5";
    double rss[2] = {0, 0}, total[2] = {0, 0};
    const char *methods[2] = {"badam", "adam"};
    for (int i = 0; i < 2; i++) {
        char out[1100];
        snprintf(out, sizeof out, "%s/out-%s", dir, methods[i]);
        if (train(model, data, out, methods[i], extra)) {
            CHECK(0);
            return;
        }
        json_t *j = read_memory_json(out);
        rss[i] = field(j, NULL, "peak_rss");
        total[i] = field(j, "predicted", "total");
        json_decref(j);
    }
    double predicted_gap = total[1] - total[0], measured_gap = rss[1] - rss[0];
    fprintf(stderr,
            "  peak RSS: badam %.1f MiB, adam %.1f MiB; gap %.1f MiB measured, %.1f MiB "
            "predicted\n",
            rss[0] / 1048576, rss[1] / 1048576, measured_gap / 1048576, predicted_gap / 1048576);
    CHECKF(predicted_gap > 100e6, "the model is too small to show the gap (%.0f)", predicted_gap);
    CHECKF(measured_gap >= 0.8 * predicted_gap, "RSS gap %.0f < 80%% of the predicted %.0f",
           measured_gap, predicted_gap);
}

int main(void) {
    if (!getenv("BADAM_CLI")) {
        fprintf(stderr, "SKIP: BADAM_CLI is not set (run through ctest)\n");
        return TEST_SKIP_CODE;
    }
    RUN_TEST(test_predicted_equals_allocated);
    RUN_TEST(test_badam_rss_below_adam);
    return test_result();
}
