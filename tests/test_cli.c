/* The badam command: inspect, plan, train on Alpaca data through the bundled tokenizer, and
 * clear errors with non-zero exits for bad flags, missing files, empty data and a diverging
 * loss; a failed run leaves an earlier good output folder intact. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "badam/data.h"
#include "io/files.h"
#include "model_fixtures.h"
#include "testutil.h"

static char g_out[2048];

/* Runs `badam ARGS` from the source folder, capturing its output; returns the exit status. */
static int badam(const char *args, char *output, size_t size) {
    return test_run_cli(g_out, NULL, args, output, size);
}

static char buf[1 << 16];

static void test_inspect_and_plan(void) {
    CHECK(badam("inspect models/tiny-random-llama", buf, sizeof buf) == 0);
    CHECK(strstr(buf, "total parameters: 218816") != NULL);
    CHECK(strstr(buf, "model.layers.3.mlp.down_proj.weight") != NULL);
    CHECK(badam("plan --model configs/llama-3-8b --method badam --seq-len 1024 --batch-size 1", buf,
                sizeof buf) == 0);
    CHECK(strstr(buf, "32 blocks") != NULL);
    CHECK(badam("inspect /nonexistent-folder", buf, sizeof buf) == 1);
    CHECK(strstr(buf, "/nonexistent-folder/config.json") != NULL);
    /* a method's plan that fails is refused before anything is printed (no partial JSON) */
    CHECK(badam("plan --model configs/llama-3-8b --galore-rank 0 --json", buf, sizeof buf) == 1);
    CHECKF(strstr(buf, "--galore-rank") && !strchr(buf, '{') && !strstr(buf, "weights"), "%s", buf);
}

/* A method without blocks (ratio mode keeps its period as the block) writes no block name:
 * every metrics line is valid JSON without "(null)". */
static void test_metrics_without_block_names(void) {
    char args[4096], path[4200];
    snprintf(args, sizeof args,
             "train --model models/tiny-random-llama --data data/demo/reverse_train.json --out "
             "%s/ratio --method badam-ratio --max-steps 2 --seq-len 32 --no-checkpoint --quiet",
             g_out);
    CHECK(badam(args, buf, sizeof buf) == 0);
    snprintf(path, sizeof path, "%s/ratio/metrics.jsonl", g_out);
    char *text = NULL;
    size_t n = 0;
    badam_error err = {0};
    CHECK(io_read_file(path, &text, &n, &err) == BADAM_OK);
    int lines = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        json_error_t jerr;
        json_t *j = json_loads(line, 0, &jerr);
        CHECKF(j != NULL, "metrics line not JSON: %s", line);
        CHECKF(!strstr(line, "(null)"), "%s", line);
        json_decref(j);
        lines++;
    }
    CHECK(lines >= 2);
    free(text);
}

/* --include-head on a tied model: the head block is model.norm alone, and plan and train say
 * so (and where the tied matrix trains); an untied model gets no note. */
static void test_tied_head_note(void) {
    CHECK(badam("plan --model configs/llama-3.2-1b --method badam --include-head", buf,
                sizeof buf) == 0);
    CHECKF(strstr(buf, "head block holds only model.norm") &&
               strstr(buf, "trains only with --include-embedding"),
           "%s", buf);
    CHECK(badam("plan --model configs/llama-3.2-1b --include-head --include-embedding", buf,
                sizeof buf) == 0);
    CHECKF(strstr(buf, "trains in the embedding block"), "%s", buf);
    CHECK(badam("plan --model configs/llama-3-8b --method badam --include-head", buf, sizeof buf) ==
          0);
    CHECKF(!strstr(buf, "model.norm"), "%s", buf);
    CHECK(badam("plan --model configs/llama-3.2-1b --method badam", buf, sizeof buf) == 0);
    CHECKF(!strstr(buf, "model.norm"), "%s", buf);

    char model[2200], data[2200], args[8192];
    snprintf(model, sizeof model, "%s/tied-model", g_out);
    snprintf(data, sizeof data, "%s/tied-data.jsonl", g_out);
    llama_config cfg = fixture_config(16, 32, 2, 2, 2, 40, 1, 0, 0);
    CHECK(fixture_write_model(model, &cfg, BADAM_DTYPE_F32, 3, 0.05f) == 0);
    CHECK(fixture_write_tokenized_data(data, 8, 6, 10, 40, 4) == 0);
    snprintf(args, sizeof args,
             "train --model %s --data %s --out %s/tied-out --include-head --max-steps 1 "
             "--batch-size 2 --seq-len 16 --no-checkpoint",
             model, data, g_out);
    CHECK(badam(args, buf, sizeof buf) == 0);
    CHECKF(strstr(buf, "note: lm_head is tied to the embedding: the head block holds only "
                       "model.norm"),
           "%s", buf);
}

static json_t *read_out_json(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_t *j = NULL;
    badam_error err = {0};
    if (io_read_json(path, &j, &err)) fprintf(stderr, "%s\n", err.message);
    return j;
}

/* eos_token_id of a JSON object as a list ("a, b"). */
static void eos_text(const json_t *j, char *out, size_t size) {
    const json_t *e = json_object_get(j, "eos_token_id"), *v;
    out[0] = '\0';
    if (json_is_number(e)) snprintf(out, size, "%d", (int)json_number_value(e));
    if (json_is_array(e))
        for (size_t i = 0; (v = json_array_get(e, i)) != NULL; i++)
            snprintf(out + strlen(out), size - strlen(out), "%s%d", out[0] ? ", " : "",
                     (int)json_number_value(v));
}

/* A base whose EOS is </s> fine-tuned with --template llama3 declares <|eot_id|>: config.json and
 * generation_config.json eos_token_id [</s>, <|eot_id|>] (other generation fields kept),
 * tokenizer_config.json eos_token <|eot_id|> and the template's chat_template; the checkpoint
 * folder too. With alpaca (responses end with EOS) only the chat_template changes. */
static void test_saved_folder_declares_end_of_turn(void) {
    char base[2200], args[8192], out[2400], ckpt[2500], want[256], got[256];
    snprintf(base, sizeof base, "%s/eot-base", g_out);
    badam_error err = {0};
    const char *src = test_source_path("models/tiny-random-llama");
    CHECK(src && io_make_dir(base, &err) == BADAM_OK);
    const char *files[] = {"config.json", "model.safetensors", "tokenizer.json",
                           "tokenizer_config.json"};
    for (int i = 0; src && i < 4; i++) {
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s/%s", src, files[i]);
        snprintf(b, sizeof b, "%s/%s", base, files[i]);
        CHECK(io_copy_file(a, b, &err) == BADAM_OK);
    }
    const char *gen = "{\"do_sample\": true, \"temperature\": 0.6, \"eos_token_id\": 257}";
    char path[4096];
    snprintf(path, sizeof path, "%s/generation_config.json", base);
    CHECK(io_write_file_atomic(path, gen, strlen(gen), &err) == BADAM_OK);
    badam_tokenizer *tok = NULL;
    CHECK_OK(tokenizer_load(base, &tok, &err), &err);
    int32_t eos = tokenizer_eos_id(tok), eot = tokenizer_token_to_id(tok, "<|eot_id|>");
    CHECK(eos == 257 && eot > 0);

    snprintf(out, sizeof out, "%s/eot-llama3", g_out);
    snprintf(args, sizeof args,
             "train --model %s --data data/demo/reverse_train.json --out %s --template llama3 "
             "--max-steps 2 --save-every 1 --batch-size 2 --seq-len 64 --quiet",
             base, out);
    CHECK(badam(args, buf, sizeof buf) == 0);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint", out);
    snprintf(want, sizeof want, "%d, %d", eos, eot);
    char *jinja = NULL;
    CHECK_OK(template_chat_jinja("llama3", tok, NULL, &jinja, &err), &err);
    const char *dirs[] = {out, ckpt};
    for (int d = 0; d < 2; d++) {
        json_t *cfg = read_out_json(dirs[d], "config.json");
        json_t *gc = read_out_json(dirs[d], "generation_config.json");
        json_t *tc = read_out_json(dirs[d], "tokenizer_config.json");
        eos_text(cfg, got, sizeof got);
        CHECKF(!strcmp(got, want), "%s config.json eos_token_id [%s], want [%s]", dirs[d], got,
               want);
        eos_text(gc, got, sizeof got);
        CHECKF(!strcmp(got, want), "%s generation_config.json eos_token_id [%s], want [%s]",
               dirs[d], got, want);
        const json_t *t = json_object_get(gc, "temperature");
        CHECK(json_is_true(json_object_get(gc, "do_sample")) && json_is_number(t) &&
              json_number_value(t) == 0.6);
        const json_t *e = json_object_get(tc, "eos_token"),
                     *ct = json_object_get(tc, "chat_template");
        CHECKF(json_is_string(e) && !strcmp(json_string_value(e), "<|eot_id|>"), "%s eos_token",
               dirs[d]);
        CHECKF(json_is_string(ct) && jinja && !strcmp(json_string_value(ct), jinja),
               "%s chat_template", dirs[d]);
        json_decref(cfg);
        json_decref(gc);
        json_decref(tc);
    }
    free(jinja);

    snprintf(out, sizeof out, "%s/eot-alpaca", g_out);
    snprintf(args, sizeof args,
             "train --model %s --data data/demo/reverse_train.json --out %s --template alpaca "
             "--max-steps 1 --no-checkpoint --batch-size 2 --seq-len 64 --quiet",
             base, out);
    CHECK(badam(args, buf, sizeof buf) == 0);
    json_t *gc = read_out_json(out, "generation_config.json");
    json_t *tc = read_out_json(out, "tokenizer_config.json");
    eos_text(gc, got, sizeof got);
    CHECKF(!strcmp(got, "257"), "alpaca generation_config eos_token_id [%s]", got);
    const json_t *e = json_object_get(tc, "eos_token");
    CHECK(json_is_string(e) && !strcmp(json_string_value(e), "</s>"));
    CHECK(json_is_string(json_object_get(tc, "chat_template")));
    json_decref(gc);
    json_decref(tc);

    /* --no-save: the run's records, no model */
    snprintf(out, sizeof out, "%s/no-save", g_out);
    snprintf(args, sizeof args,
             "train --model %s --data data/demo/reverse_train.json --out %s --template alpaca "
             "--max-steps 1 --no-checkpoint --no-save --batch-size 2 --seq-len 64 --quiet",
             base, out);
    CHECK(badam(args, buf, sizeof buf) == 0);
    snprintf(path, sizeof path, "%s/memory.json", out);
    CHECKF(io_is_file(path), "%s written", path);
    snprintf(path, sizeof path, "%s/metrics.jsonl", out);
    CHECKF(io_is_file(path), "%s written", path);
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    CHECKF(!io_is_file(path), "%s not written with --no-save", path);
    snprintf(path, sizeof path, "%s/config.json", out);
    CHECKF(!io_is_file(path), "%s not written with --no-save", path);
    tokenizer_free(tok);
}

static void test_flags(void) {
    CHECK(badam("train --help", buf, sizeof buf) == 0);
    CHECK(strstr(buf, "--switch-every") && strstr(buf, "--lora-rank"));
    CHECK(badam("train --model x --data y --out z --no-such-flag", buf, sizeof buf) == 2);
    CHECK(strstr(buf, "unknown option '--no-such-flag'") != NULL);
    CHECK(badam("train --model x --data y --out z --lr fast", buf, sizeof buf) == 2);
    CHECK(strstr(buf, "--lr") != NULL);
    CHECK(badam("train --model x --data y --out z --method sgd", buf, sizeof buf) == 2);
    CHECK(strstr(buf, "unknown method 'sgd'") != NULL);
    CHECK(badam("frobnicate", buf, sizeof buf) == 2);
}

static void test_train_alpaca(void) {
    char args[8192];
    snprintf(args, sizeof args,
             "train --model models/tiny-random-llama --data data/demo/reverse_train.json "
             "--val-size 16 --out %s/alpaca --template alpaca --include-embedding --include-head "
             "--lr 1e-2 --max-steps 30 --switch-every 5 --batch-size 8 --seq-len 96 --quiet",
             g_out);
    CHECK(badam(args, buf, sizeof buf) == 0);
    CHECK(strstr(buf, "validation loss") != NULL);
    char path[2200];
    snprintf(path, sizeof path, "%s/alpaca/tokenizer.json", g_out);
    CHECKF(io_is_file(path), "the output folder lacks the tokenizer");
    snprintf(path, sizeof path, "%s/alpaca/metrics.jsonl", g_out);
    char *text = NULL;
    size_t n = 0;
    badam_error err = {0};
    CHECK(!io_read_file(path, &text, &n, &err));
    /* The loss falls: the first step's loss is above the last one's. */
    double first = 0, last = 0;
    const char *p = text ? strstr(text, "\"loss\": ") : NULL;
    if (p) first = strtod(p + 8, NULL);
    for (const char *q = p; q; q = strstr(q + 1, "\"loss\": ")) last = strtod(q + 8, NULL);
    CHECKF(first > 5.0 && last < first - 0.5, "loss %g -> %g", first, last);
    free(text);
    /* The output is a model folder badam reads back. */
    snprintf(args, sizeof args, "inspect %s/alpaca", g_out);
    CHECK(badam(args, buf, sizeof buf) == 0);
}

static void test_errors_keep_outputs(void) {
    char args[8192];
    /* Missing data file. */
    snprintf(args, sizeof args,
             "train --model models/tiny-random-llama --data %s/none.json --out %s/e1", g_out,
             g_out);
    CHECK(badam(args, buf, sizeof buf) == 1);
    CHECK(strstr(buf, "none.json") != NULL);
    /* Empty dataset. */
    char path[2200];
    snprintf(path, sizeof path, "%s/empty.json", g_out);
    FILE *f = fopen(path, "w");
    if (f) fputs("[]", f), fclose(f);
    snprintf(args, sizeof args, "train --model models/tiny-random-llama --data %s --out %s/e2",
             path, g_out);
    CHECK(badam(args, buf, sizeof buf) == 1);
    CHECK(strstr(buf, "empty.json") != NULL);
    /* A diverging run: a clear numeric error, and the earlier good output stays as it was. */
    snprintf(args, sizeof args,
             "train --model models/tiny-random-llama --data data/demo/reverse_train.json "
             "--out %s/alpaca --template alpaca --include-embedding --include-head --lr 1e30 "
             "--clip 0 --max-steps 20 --switch-every 1 --switch-mode ascending --batch-size 8 "
             "--seq-len 96 --quiet",
             g_out);
    char before[2200], *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    badam_error err = {0};
    snprintf(before, sizeof before, "%s/alpaca/model.safetensors", g_out);
    io_read_file(before, &a, &na, &err);
    CHECK(badam(args, buf, sizeof buf) == 1);
    CHECKF(strstr(buf, "not finite") != NULL, "%s", buf);
    io_read_file(before, &b, &nb, &err);
    CHECK(a && b && na == nb && !memcmp(a, b, na));
    free(a);
    free(b);
    /* Vocabulary mismatch: a tokenized example with an id beyond the vocabulary. */
    snprintf(path, sizeof path, "%s/bad_ids.jsonl", g_out);
    f = fopen(path, "w");
    if (f) fputs("{\"input_ids\": [1, 2, 99999], \"labels\": [-100, 2, 99999]}\n", f), fclose(f);
    snprintf(args, sizeof args,
             "train --model models/tiny-random-llama --data %s --out %s/e3 --max-steps 1", path,
             g_out);
    CHECK(badam(args, buf, sizeof buf) == 1);
    CHECKF(strstr(buf, "input_ids") && strstr(buf, "bad_ids.jsonl"), "%s", buf);
}

/* Output holds every part (a NULL-terminated list). */
static int has_all(const char *out, const char *const *parts) {
    for (; *parts; parts++)
        if (!strstr(out, *parts)) return 0;
    return 1;
}

/* Options that contradict each other are refused naming both; an option another makes pointless
 * is a warning; each numeric setting out of range is named with its value. */
static void test_option_conflicts(void) {
    static const struct {
        const char *args;
        const char *parts[3];
    } refused[] = {
        {"--no-checkpoint --save-every 3", {"--no-checkpoint", "--save-every", NULL}},
        {"--val-data v.json --val-size 4", {"--val-data", "--val-size", NULL}},
        {"--init-adapter a --method adam", {"--init-adapter", "--method lora", NULL}},
        {"--lr -1", {"--lr -1", ">= 0", NULL}},
        {"--beta1 1.5", {"--beta1 1.5", "[0, 1)", NULL}},
        {"--beta2 1", {"--beta2 1", "[0, 1)", NULL}},
        {"--eps 0", {"--eps 0", "> 0", NULL}},
        {"--min-lr-ratio 2", {"--min-lr-ratio 2", "[0, 1]", NULL}},
        {"--seq-len 1", {"--seq-len 1", ">= 2", NULL}},
        {"--epochs 0", {"--epochs 0", "--max-steps", NULL}},
    };
    char args[8192];
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        snprintf(args, sizeof args, "train --model x --data y --out %s/conflict %s", g_out,
                 refused[i].args);
        int rc = badam(args, buf, sizeof buf);
        CHECKF(rc == 2 && has_all(buf, refused[i].parts), "%s: rc %d: %s", refused[i].args, rc,
               buf);
    }
    /* ignored options: warnings, and the run goes on (to the missing model here) */
    snprintf(args, sizeof args,
             "train --model %s/no-model --data y --out %s/conflict --method adam --switch-every 3 "
             "--include-head --lora-rank 4 --galore-rank 4 --epochs 2 --max-steps 1 --eval-every 2 "
             "--pack "
             "--no-group-by-length",
             g_out, g_out);
    CHECK(badam(args, buf, sizeof buf) == 1);
    const char *warned[] = {"warning: --switch-every is ignored with --method adam",
                            "warning: --include-head is ignored with --method adam",
                            "warning: --lora-rank is ignored with --method adam",
                            "warning: --galore-rank is ignored with --method adam",
                            "warning: --epochs is ignored",
                            "warning: --eval-every is ignored",
                            "warning: --no-group-by-length is ignored with --pack",
                            "cannot open",
                            NULL};
    CHECKF(has_all(buf, warned), "%s", buf);
    /* options that are used draw no warning */
    snprintf(args, sizeof args,
             "train --model %s/no-model --data y --out %s/conflict --method lora --lora-rank 4 "
             "--max-steps 1",
             g_out, g_out);
    CHECK(badam(args, buf, sizeof buf) == 1);
    CHECKF(!strstr(buf, "warning"), "%s", buf);
    snprintf(args, sizeof args,
             "train --model %s/no-model --data y --out %s/conflict --method lora --resume "
             "--init-adapter a",
             g_out, g_out);
    CHECK(badam(args, buf, sizeof buf) == 1);
    CHECKF(strstr(buf, "warning: --init-adapter is ignored with --resume"), "%s", buf);
    CHECK(badam("generate --model x --prompt hi --top-k 5", buf, sizeof buf) == 1);
    CHECKF(strstr(buf, "warning: --top-k is ignored with --temperature 0"), "%s", buf);
    CHECK(badam("eval --model x --data y --show 2", buf, sizeof buf) == 1);
    CHECKF(strstr(buf, "warning: --show is ignored without --exact-match"), "%s", buf);
}

/* An option that expects a value and is followed by another option (--help included) says its
 * value is missing, instead of taking the option as the value. */
static void test_missing_value(void) {
    static const struct {
        const char *args, *part;
    } cases[] = {
        {"tokenize --data --help", "--data needs a value"},
        {"tokenize --data x.json --model --seq-len 4", "--model needs a value"},
        {"tokenize --data", "--data needs a value"},
        {"tokenize --model --text hi", "--model needs a value"},
        {"train --model m --data --help", "--data needs a value (FILE)"},
        {"train --model m --out --data y", "--out needs a value (DIR)"},
        {"eval --model --data y", "--model needs a value"},
        {"generate --model m --prompt --verbose", "--prompt needs a value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = badam(cases[i].args, buf, sizeof buf);
        CHECKF(rc == 2 && strstr(buf, cases[i].part), "%s: rc %d: %s", cases[i].args, rc, buf);
    }
    /* a value that only looks like an option is given with '=' */
    CHECK(badam("train --model m --data=--help --out o --lr -1", buf, sizeof buf) == 2);
    CHECKF(strstr(buf, "--lr -1"), "%s", buf);
}

/* eval --show prints a text holding U+0000 whole, the NUL escaped. */
static void test_eval_show_nul(void) {
    char data[2200], args[8192];
    snprintf(data, sizeof data, "%s/nul.json", g_out);
    const char *text = "[{\"instruction\": \"Write the words in capital letters.\", \"input\": "
                       "\"ab\", \"output\": \"A\\u0000B\"}]";
    CHECK(test_write_raw(data, text, strlen(text)) == 0);
    snprintf(args, sizeof args,
             "eval --model models/tiny-llama-base --data %s --template alpaca --system \"\" "
             "--exact-match --show 1 --max-new-tokens 2",
             data);
    CHECK(badam(args, buf, sizeof buf) == 0);
    CHECKF(strstr(buf, "reference: A\\u0000B\n"), "%s", buf);
}

/* A folder named generation_config.json in the model folder is an error naming it, not a file
 * silently left out of the saved model. */
static void test_companion_not_regular(void) {
    char model[2200], args[8192], cmd[8192];
    snprintf(model, sizeof model, "%s/gen-dir-model", g_out);
    const char *src = test_source_path("models/tiny-random-llama");
    CHECK(src != NULL);
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s && mkdir %s/generation_config.json", model,
             src ? src : "", model, model);
    CHECK(test_system(cmd) == 0);
    snprintf(args, sizeof args,
             "train --model %s --data data/demo/reverse_train.json --out %s/gen-dir-out "
             "--template alpaca --max-steps 1 --batch-size 2 --seq-len 32 --no-checkpoint --quiet",
             model, g_out);
    CHECK(badam(args, buf, sizeof buf) == 1);
    CHECKF(strstr(buf, "generation_config.json: is a directory"), "%s", buf);
}

int main(void) {
    if (!getenv("BADAM_CLI") || !getenv("BADAM_SOURCE_DIR")) {
        fprintf(stderr, "SKIP: run through ctest (BADAM_CLI, BADAM_SOURCE_DIR)\n");
        return TEST_SKIP_CODE;
    }
    snprintf(g_out, sizeof g_out, "%s", test_workdir("cli"));
    RUN_TEST(test_inspect_and_plan);
    RUN_TEST(test_tied_head_note);
    RUN_TEST(test_saved_folder_declares_end_of_turn);
    RUN_TEST(test_flags);
    RUN_TEST(test_train_alpaca);
    RUN_TEST(test_errors_keep_outputs);
    RUN_TEST(test_option_conflicts);
    RUN_TEST(test_missing_value);
    RUN_TEST(test_eval_show_nul);
    RUN_TEST(test_companion_not_regular);
    RUN_TEST(test_metrics_without_block_names);
    return test_result();
}
