/* --resume refuses a run that is not the one that wrote the checkpoint: every option that shapes
 * the trajectory (K, block order, partition, seed, schedule, steps, batching, optimizer, clipping,
 * LoRA, dtype, data contents, template) changed on its own is refused, with an error that names
 * the option and both values and nothing else; a checkpoint of the older format (no run record)
 * is refused; optimizer tensors are stored under their tensor names. The rows of issue 12's
 * table come first. Runs are short (4 to 6 steps); a refused resume stops before training. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "io/files.h"
#include "io/json_write.h"
#include "io/safetensors.h"
#include "model_fixtures.h"

static char g_model[1100], g_text_model[1100], g_data[1100], g_text_data[1100];
static char g_dir[1024];

/* The first runs, by name: each writes a checkpoint the refusals below try to resume. */
typedef struct base_run {
    const char *name;
    const char *args; /* without --out */
} base_run;

static char g_args[8][1024];
static base_run g_bases[8];
static int g_n_bases;

/* Adds a first run on model and data with the shared settings and `args`. */
static void add_base(const char *name, const char *model, const char *data, const char *args) {
    char *to = g_args[g_n_bases];
    snprintf(to, sizeof g_args[0], "--model %s --data %s --seq-len 48 --batch-size 2 --lr 1e-3 %s",
             model, data, args);
    g_bases[g_n_bases] = (base_run){name, to};
    g_n_bases++;
}

static const char *base_args(const char *name) {
    for (int i = 0; i < g_n_bases; i++)
        if (!strcmp(g_bases[i].name, name)) return g_bases[i].args;
    return NULL;
}

static void out_dir(char *out, size_t size, const char *base) {
    snprintf(out, size, "%s/%s", g_dir, base);
}

/* Runs `badam train ARGS EXTRA --out OUT [--resume]` with its output in LOG; the exit status. */
static int train(const char *args, const char *extra, const char *out, int resume,
                 const char *log) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s train %s %s --out %s --quiet %s > %s 2>&1", getenv("BADAM_CLI"),
             args, extra, out, resume ? "--resume" : "", log);
    return test_system(cmd);
}

/* The last line of LOG that starts with "badam train: " (the error), or "" */
static void last_error(const char *log, char *line, size_t size) {
    char *text = NULL;
    size_t n = 0;
    badam_error err = {0};
    line[0] = 0;
    if (io_read_file(log, &text, &n, &err)) return;
    const char *at = NULL;
    for (const char *p = strstr(text, "badam train: "); p; p = strstr(p + 1, "badam train: "))
        at = p;
    if (at) {
        size_t len = strcspn(at, "\n");
        snprintf(line, size, "%.*s", (int)len, at);
    }
    free(text);
}

static int count(const char *s, const char *what) {
    int k = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what)) k++;
    return k;
}

/* Resuming base `base` with `extra` appended must fail, the error naming `told` (and `also`,
 * when not NULL) and no other option. */
static void check_refused(const char *base, const char *extra, const char *told, const char *also) {
    char out[1200], log[1300], line[2048];
    out_dir(out, sizeof out, base);
    snprintf(log, sizeof log, "%s.refused.log", out);
    int rc = train(base_args(base), extra, out, 1, log);
    last_error(log, line, sizeof line);
    CHECKF(rc != 0, "%s resumed with '%s' was accepted", base, extra);
    CHECKF(strstr(line, "cannot resume ") != NULL, "%s + '%s': no refusal: %s", base, extra, line);
    CHECKF(strstr(line, told) != NULL, "%s + '%s': the error does not say '%s': %s", base, extra,
           told, line);
    CHECKF(!also || strstr(line, also) != NULL, "%s + '%s': the error does not say '%s': %s", base,
           extra, also, line);
    int options = count(line, "; --") + 1;
    CHECKF(options == (also ? 2 : 1), "%s + '%s': the error names %d options: %s", base, extra,
           options, line);
}

typedef struct refusal {
    const char *base, *extra, *told, *also;
} refusal;

/* issue 12's table: each was accepted silently before. "asc": K = 3, ascending, seed 1, 6
 * steps; "rand": random order, seed 1; "prefix": two prefix blocks, checkpoint at step 4 (inside
 * the second visit). */
static const refusal ISSUE_TABLE[] = {
    {"asc", "--switch-every 5", "--switch-every was 3, now 5", NULL},
    {"asc", "--switch-mode descending", "--switch-mode was ascending, now descending", NULL},
    {"rand", "--seed 2", "--seed was 1, now 2", NULL},
    {"prefix", "--partition 'model.layers.1.;model.layers.0.'",
     "--partition block 0 was [model.layers.0.input_layernorm.weight, "
     "model.layers.0.self_attn.q_proj.weight, model.layers.0.self_attn.q_proj.bias, ... 13 in "
     "all], now [model.layers.1.input_layernorm.weight",
     NULL},
    {"asc", "--partition module", "--partition was 4 blocks, now 8", NULL},
};

/* One changed option of every kind the checkpoint records. */
static const refusal EVERY_KIND[] = {
    {"asc", "--method sgd-bcd", "--method was badam, now sgd-bcd", NULL},
    {"asc", "--dtype fp32", "--dtype was bf16, now fp32", NULL},
    {"asc", "--start-block 2", "--start-block was default, now 2", NULL},
    {"asc", "--always-active model.norm.", "--always-active was [], now [model.norm.weight]", NULL},
    {"asc", "--include-embedding", "--include-embedding was off, now on",
     "--partition was 4 blocks, now 5"},
    {"asc", "--include-head", "--include-head was off, now on", "--partition was 4 blocks, now 5"},
    {"asc", "--lr 2e-3", "--lr was 0.001, now 0.002", NULL},
    {"asc", "--schedule linear", "--schedule was cosine, now linear", NULL},
    {"asc", "--warmup 2", "--warmup was 0, now 2", NULL},
    {"asc", "--min-lr-ratio 0.1", "--min-lr-ratio was 0, now 0.1", NULL},
    {"asc", "--max-steps 8", "--max-steps was 6, now 8", NULL},
    {"epochs", "--epochs 2", "--epochs was 1, now 2", NULL},
    {"asc", "--batch-size 3", "--batch-size was 2, now 3", NULL},
    {"asc", "--grad-accum 2", "--grad-accum was 1, now 2", NULL},
    {"asc", "--seq-len 40", "--seq-len was 48, now 40", NULL},
    {"asc", "--pack", "--pack was off, now on", NULL},
    {"asc", "--no-shuffle", "--no-shuffle was off, now on", NULL},
    {"asc", "--no-group-by-length", "--no-group-by-length was off, now on", NULL},
    {"asc", "--val-size 4", "--val-size was 0, now 4", NULL},
    {"asc", "--weight-decay 0.1", "--weight-decay was 0, now 0.1", NULL},
    {"asc", "--beta1 0.8", "--beta1 was 0.9, now 0.8", NULL},
    {"asc", "--beta2 0.99", "--beta2 was 0.999, now 0.99", NULL},
    {"asc", "--eps 1e-6", "--eps was 1e-08, now 1e-06", NULL},
    {"asc", "--clip 0.5", "--clip was 1, now 0.5", NULL},
    {"lora", "--lora-rank 8", "--lora-rank was 4, now 8", NULL},
    {"lora", "--lora-alpha 8", "--lora-alpha was 16, now 8", NULL},
    {"lora", "--lora-dropout 0.2", "--lora-dropout was 0.1, now 0.2", NULL},
    {"lora", "--lora-targets q,v",
     "--lora-targets was q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj, now "
     "q_proj,v_proj",
     NULL},
    {"text", "--template chatml", "--template was alpaca, now chatml", NULL},
    {"text", "--system 'Be brief.'", "--system was (the template's), now Be brief.", NULL},
};

static void run_bases(void) {
    char out[1200], log[1300];
    for (int i = 0; i < g_n_bases; i++) {
        out_dir(out, sizeof out, g_bases[i].name);
        snprintf(log, sizeof log, "%s.log", out);
        CHECKF(train(g_bases[i].args, "", out, 0, log) == 0, "base run %s failed (%s)",
               g_bases[i].name, log);
    }
}

static void test_issue_table(void) {
    for (size_t i = 0; i < sizeof ISSUE_TABLE / sizeof ISSUE_TABLE[0]; i++) {
        const refusal *r = &ISSUE_TABLE[i];
        check_refused(r->base, r->extra, r->told, r->also);
    }
}

static void test_every_kind(void) {
    for (size_t i = 0; i < sizeof EVERY_KIND / sizeof EVERY_KIND[0]; i++) {
        const refusal *r = &EVERY_KIND[i];
        check_refused(r->base, r->extra, r->told, r->also);
    }
}

/* The data, validation data and tokenizer are compared by content (SHA-256), not path. */
static void test_file_contents(void) {
    char copy[1200], cmd[4096], extra[1400];
    /* the same bytes under another path: the record matches (the run, 6 of 6 steps, is then
     * refused only as complete, which train checks after the record) */
    snprintf(copy, sizeof copy, "%s/same.jsonl", g_dir);
    snprintf(cmd, sizeof cmd, "cp %s %s", g_data, copy);
    CHECK(test_system(cmd) == 0);
    snprintf(extra, sizeof extra, "--data %s --save-every 2 --eval-every 1 --shard-size 1", copy);
    char out[1200], log[1300];
    out_dir(out, sizeof out, "asc");
    snprintf(log, sizeof log, "%s.same.log", out);
    int rc = train(base_args("asc"), extra, out, 1, log);
    char said[1024];
    last_error(log, said, sizeof said);
    CHECKF(rc != 0 && strstr(said, "the run is complete") && !strstr(said, " was "),
           "resume with the same data under another path and other --save-every, --eval-every, "
           "--shard-size: the record should match (%s: %s)",
           log, said);
    /* one record more: refused */
    snprintf(cmd, sizeof cmd, "head -n 1 %s >> %s", g_data, copy);
    CHECK(test_system(cmd) == 0);
    snprintf(extra, sizeof extra, "--data %s", copy);
    check_refused("asc", extra, "--data was sha256:", NULL);
    snprintf(extra, sizeof extra, "--val-data %s", copy);
    check_refused("val", extra, "--val-data was sha256:", NULL);
    /* another tokenizer.json (one byte more) */
    snprintf(cmd, sizeof cmd, "cp -r %s %s/text-model-2 && echo >> %s/text-model-2/tokenizer.json",
             g_text_model, g_dir, g_dir);
    CHECK(test_system(cmd) == 0);
    snprintf(extra, sizeof extra, "--model %s/text-model-2", g_dir);
    check_refused("text", extra, "--model tokenizer.json was sha256:", NULL);
}

/* optimizer.safetensors names its tensors after the model's (BAdam's active block: layer
 * tensors' master_lo, m, v); trainer_state.json lists them. */
static void test_optimizer_names(void) {
    char path[1400];
    out_dir(path, sizeof path, "asc");
    strcat(path, "/checkpoint/optimizer.safetensors");
    st_file *f = NULL;
    badam_error err = {0};
    if (st_open(path, &f, &err)) {
        CHECKF(0, "%s", err.message);
        return;
    }
    /* 6 steps ascending with K = 3: block 1 (layer 1) is active */
    CHECK(st_find(f, "model.layers.1.mlp.up_proj.weight.m") != NULL);
    CHECK(st_find(f, "model.layers.1.mlp.up_proj.weight.v") != NULL);
    CHECK(st_find(f, "model.layers.1.mlp.up_proj.weight.master_lo") != NULL);
    CHECK(st_find(f, "model.layers.0.mlp.up_proj.weight.m") == NULL);
    for (size_t i = 0; i < f->n_tensors; i++)
        CHECKF(!strncmp(f->tensors[i].name, "model.layers.1.", 15), "unexpected tensor %s",
               f->tensors[i].name);
    st_close(f);
    out_dir(path, sizeof path, "lora");
    strcat(path, "/checkpoint/optimizer.safetensors");
    if (st_open(path, &f, &err)) {
        CHECKF(0, "%s", err.message);
        return;
    }
    CHECK(st_find(f, "model.layers.0.self_attn.q_proj.weight.lora_A.m") != NULL);
    CHECK(st_find(f, "model.layers.3.mlp.down_proj.weight.lora_B.v") != NULL);
    st_close(f);
}

/* A checkpoint written before the run record (no "format", no "run") is refused, clearly. */
static void test_older_format(void) {
    char out[1200], path[1400], log[1300], line[2048];
    out_dir(out, sizeof out, "old");
    snprintf(path, sizeof path, "%s/checkpoint/trainer_state.json", out);
    json_t *j = NULL;
    badam_error err = {0};
    if (io_read_json(path, &j, &err)) {
        CHECKF(0, "%s", err.message);
        return;
    }
    json_object_del(j, "format");
    json_object_del(j, "run");
    json_object_set_new(j, "method", json_string("badam"));
    json_object_set_new(j, "seed", json_string("42"));
    char *text = io_json_dump(j, 2, NULL);
    json_decref(j);
    CHECK(text && !io_write_file_atomic(path, text, strlen(text), &err));
    free(text);
    snprintf(log, sizeof log, "%s.refused.log", out);
    CHECK(train(base_args("old"), "", out, 1, log) != 0);
    last_error(log, line, sizeof line);
    CHECKF(strstr(line, "written by an older badam (format 1)") != NULL, "%s", line);
}

int main(void) {
    if (!getenv("BADAM_CLI")) {
        fprintf(stderr, "SKIP: BADAM_CLI is not set (run through ctest)\n");
        return TEST_SKIP_CODE;
    }
    const char *src = test_source_path("tests/fixtures/data");
    if (!src) {
        fprintf(stderr, "SKIP: BADAM_SOURCE_DIR is not set (run through ctest)\n");
        return TEST_SKIP_CODE;
    }
    char fixtures[1024];
    snprintf(fixtures, sizeof fixtures, "%s", src);
    snprintf(g_dir, sizeof g_dir, "%s", test_workdir("resume-refused"));
    snprintf(g_model, sizeof g_model, "%s/model", g_dir);
    snprintf(g_text_model, sizeof g_text_model, "%s/text-model", g_dir);
    snprintf(g_data, sizeof g_data, "%s/train.jsonl", g_dir);
    snprintf(g_text_data, sizeof g_text_data, "%s/alpaca.jsonl", fixtures);
    llama_config cfg = fixture_config(64, 128, 4, 4, 2, 300, 0, 1, 1);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cp %s/tiny_tokenizer/tokenizer.json %s/tiny_tokenizer/tokenizer_config.json %s/",
             fixtures, fixtures, g_text_model);
    if (fixture_write_model(g_model, &cfg, BADAM_DTYPE_BF16, 9, 0.05f) ||
        fixture_write_model(g_text_model, &cfg, BADAM_DTYPE_BF16, 9, 0.05f) || test_system(cmd) ||
        fixture_write_tokenized_data(g_data, 24, 8, 40, 300, 10))
        return 1;
    char val[1400];
    snprintf(val, sizeof val, "--switch-every 3 --max-steps 4 --val-data %s", g_data);
    add_base("asc", g_model, g_data,
             "--switch-every 3 --switch-mode ascending --seed 1 --max-steps 6");
    add_base("rand", g_model, g_data,
             "--switch-every 3 --switch-mode random --seed 1 --max-steps 6");
    add_base("prefix", g_model, g_data,
             "--switch-every 3 --partition 'model.layers.0.;model.layers.1.' --max-steps 4");
    add_base("epochs", g_model, g_data, "--switch-every 3 --epochs 1");
    add_base("lora", g_model, g_data,
             "--method lora --lora-rank 4 --lora-dropout 0.1 --max-steps 4");
    add_base("val", g_model, g_data, val);
    add_base("text", g_text_model, g_text_data, "--switch-every 3 --max-steps 4 --template alpaca");
    add_base("old", g_model, g_data, "--switch-every 3 --max-steps 4");
    RUN_TEST(run_bases);
    RUN_TEST(test_issue_table);
    RUN_TEST(test_every_kind);
    RUN_TEST(test_file_contents);
    RUN_TEST(test_optimizer_names);
    RUN_TEST(test_older_format);
    return test_result();
}
