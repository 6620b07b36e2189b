/* Hostile files (issue 14, item 5: found by coverage-guided fuzzing, fuzz/): each input here
 * crashed, hung, allocated gigabytes or hit undefined behaviour before its fix. The kinds:
 *   - a malformed dataset is an error naming the file and the byte offset, never a crash;
 *   - token ids in tokenizer.json are bounded (< 2^24, and dense: the id tables grow with the
 *     number of tokens, not with one number) and checked against each other;
 *   - doubles are range-checked before conversion to integers (run under UBSan with
 *     float-cast-overflow, which BADAM_SANITIZE enables), metrics.jsonl's included;
 *   - only regular files are opened: a FIFO named as a model, shard, tokenizer, config or data
 *     file is an error at once (each case runs in a child with an alarm, so a hang fails). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "badam/data.h"
#include "badam/llama.h"
#include "badam/tokenizer.h"
#include "io/files.h"
#include "io/json_get.h"
#include "io/safetensors.h"
#include "badam/report.h"
#include "testutil.h"

static int has(const char *s, const char *part) {
    return strstr(s, part) != NULL;
}

static const char *write_text(const char *dir, const char *name, const char *text) {
    const char *path = test_path_in(dir, name);
    if (test_write_raw(path, text, strlen(text)) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        test_failures++;
    }
    return path;
}

/* ---- datasets ---- */

static badam_tokenizer *tiny;

/* Loads text as a dataset: it must fail with a message naming the file and "byte <at>". */
static void expect_data_error(const char *dir, const char *name, const char *text, size_t at) {
    const char *path = write_text(dir, name, text);
    badam_error err = {0};
    data_set *ds = NULL;
    badam_status st = data_load(path, tiny, NULL, &ds, &err);
    char want[64];
    snprintf(want, sizeof want, "byte %zu", at);
    CHECKF(st != BADAM_OK && ds == NULL, "%s loaded", name);
    CHECKF(has(err.message, path), "%s: file not named: %s", name, err.message);
    CHECKF(has(err.message, want), "%s: no '%s' in: %s", name, want, err.message);
    data_free(ds);
}

static void test_dataset_malformed(void) {
    const char *dir = test_workdir("hostile_data");
    const char *ok = "{\"instruction\": \"a\", \"output\": \"b\"}";
    const size_t L = strlen(ok);
    char buf[512];
    /* the fuzzer's inputs: a store through a null pointer before the fix */
    expect_data_error(dir, "close_brace.json", "[}", 1);
    expect_data_error(dir, "comma.json", "[,", 1);
    snprintf(buf, sizeof buf, "%s\n]", ok);
    expect_data_error(dir, "close_bracket_lines.jsonl", buf, L + 1);
    expect_data_error(dir, "colon.json", "[:", 1);
    expect_data_error(dir, "bom_comma.json", "\xEF\xBB\xBF[ ,", 5);
    /* a value that cannot start JSON after a good record */
    snprintf(buf, sizeof buf, "[%s, }", ok);
    expect_data_error(dir, "after_record.json", buf, 1 + L + 2);
    snprintf(buf, sizeof buf, "[%s,,%s]", ok, ok);
    expect_data_error(dir, "double_comma.json", buf, 1 + L + 1);
    /* the other malformed shapes now say where too */
    snprintf(buf, sizeof buf, "[%s %s]", ok, ok);
    expect_data_error(dir, "no_comma.json", buf, 1 + L + 1);
    snprintf(buf, sizeof buf, "[%s,]", ok);
    expect_data_error(dir, "trailing.json", buf, 1 + L + 1);
    snprintf(buf, sizeof buf, "[%s", ok);
    expect_data_error(dir, "unclosed.json", buf, 1 + L);
    expect_data_error(dir, "unterminated.json", "[{\"instruction\": \"a", 19);
    expect_data_error(dir, "scalar.json", "  42", 2);
    snprintf(buf, sizeof buf, "[%s] x", ok);
    expect_data_error(dir, "after_array.json", buf, 1 + L + 2);
    /* inside a record: the parser's offset, made a file offset */
    snprintf(buf, sizeof buf, "%s\n{\"instruction\": \"a\" \"output\": \"b\"}\n", ok);
    expect_data_error(dir, "bad_record.jsonl", buf, L + 1 + 20);
    snprintf(buf, sizeof buf, "%s\n{\"instruction\": 7, \"output\": \"b\"}\n", ok);
    expect_data_error(dir, "bad_field.jsonl", buf, L + 1);
    snprintf(buf, sizeof buf, "%s\n{\"instruction\": \"\xC3\", \"output\": \"b\"}\n", ok);
    expect_data_error(dir, "bad_utf8.jsonl", buf, L + 1 + 17);
}

/* ---- tokenizer.json ids ---- */

/* Loads a tokenizer.json holding text: it must fail naming the file and `part`. */
static void expect_tok_error(const char *dir, const char *name, const char *text,
                             const char *part) {
    const char *path = write_text(dir, name, text);
    badam_error err = {0};
    badam_tokenizer *tok = NULL;
    badam_status st = tokenizer_load(path, &tok, &err);
    CHECKF(st != BADAM_OK && tok == NULL, "%s loaded (vocab size %d)", name,
           tok ? tokenizer_vocab_size(tok) : -1);
    CHECKF(has(err.message, path), "%s: file not named: %s", name, err.message);
    CHECKF(has(err.message, part), "%s: no '%s' in: %s", name, part, err.message);
    tokenizer_free(tok);
}

#define BPE_A "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[]}"

static void test_tokenizer_ids(void) {
    const char *dir = test_workdir("hostile_tok");
    /* the fuzzer's input: 8.4 GB and 74 s before the fix */
    expect_tok_error(dir, "huge_id.json",
                     "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":1073741823},\"merges\":[]}}",
                     "model.vocab");
    /* below 2^24 but sparse: one token cannot size a 16M-entry table */
    expect_tok_error(dir, "sparse_id.json",
                     "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":16777215},\"merges\":[]}}",
                     "largest id is 16777215");
    expect_tok_error(dir, "neg_id.json",
                     "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}}",
                     "model.vocab");
    expect_tok_error(dir, "frac_id.json",
                     "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0.5},\"merges\":[]}}",
                     "model.vocab");
    /* added tokens: 1e10 converted a double to int out of range (UBSan: float-cast-overflow) */
    expect_tok_error(dir, "added_1e10.json",
                     "{" BPE_A ",\"added_tokens\":[{\"id\":1e10,\"content\":\"x\"}]}",
                     "added_tokens[0]");
    expect_tok_error(dir, "added_1e300.json",
                     "{" BPE_A ",\"added_tokens\":[{\"id\":-1e300,\"content\":\"x\"}]}",
                     "added_tokens[0]");
    expect_tok_error(dir, "added_sparse.json",
                     "{" BPE_A ",\"added_tokens\":[{\"id\":16000000,\"content\":\"x\"}]}",
                     "largest token id is 16000000");
    expect_tok_error(dir, "added_big.json",
                     "{" BPE_A ",\"added_tokens\":[{\"id\":2147483647,\"content\":\"x\"}]}",
                     "added_tokens[0]");
    /* against each other: one id, two different added tokens */
    expect_tok_error(dir, "added_dup.json",
                     "{" BPE_A ",\"added_tokens\":[{\"id\":2,\"content\":\"x\"},"
                     "{\"id\":2,\"content\":\"y\"}]}",
                     "id 2 is already");
    /* post-processor ids: range-checked doubles, and names of tokens that exist */
    expect_tok_error(
        dir, "post_1e10.json",
        "{" BPE_A ",\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":["
        "{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\","
        "\"type_id\":0}}],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1e10],"
        "\"tokens\":[\"<s>\"]}}}}",
        "special_tokens");
    expect_tok_error(
        dir, "post_oov.json",
        "{" BPE_A ",\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":["
        "{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\","
        "\"type_id\":0}}],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[5],"
        "\"tokens\":[\"<s>\"]}}}}",
        "id 5 is not in the vocabulary");
    expect_tok_error(dir, "cls_1e10.json",
                     "{" BPE_A
                     ",\"post_processor\":{\"type\":\"BertProcessing\",\"cls\":[\"a\",1e10],"
                     "\"sep\":[\"b\",1]}}",
                     "post_processor.cls");
    expect_tok_error(dir, "sep_oov.json",
                     "{" BPE_A ",\"post_processor\":{\"type\":\"BertProcessing\",\"cls\":[\"a\",0],"
                     "\"sep\":[\"b\",7]}}",
                     "sep id 7");

    /* A dense vocabulary with added tokens after it still loads. */
    const char *good = write_text(dir, "good.json",
                                  "{" BPE_A ",\"added_tokens\":[{\"id\":2,\"content\":\"<s>\","
                                  "\"special\":true},{\"id\":2,\"content\":\"<s>\"}]}");
    badam_error err = {0};
    badam_tokenizer *tok = NULL;
    CHECK_OK(tokenizer_load(good, &tok, &err), &err);
    CHECK(tokenizer_vocab_size(tok) == 3);
    tokenizer_free(tok);
}

/* Every integer read through json_get_int / json_int_in_range is range-checked as a double. */
static void test_json_ints(void) {
    const char *text = "{\"a\": 1e10, \"b\": -1e300, \"c\": 2147483647, \"d\": 2147483648,"
                       " \"e\": -2147483648, \"f\": 1.5, \"g\": 7}";
    json_t *j = NULL;
    badam_error err = {0};
    CHECK_OK(io_parse_json(text, strlen(text), "ints.json", &j, &err), &err);
    int v = 0;
    CHECK(json_get_int(j, "a", 1, &v, "ints.json", &err) == BADAM_E_FORMAT);
    CHECK(has(err.message, "ints.json") && has(err.message, "'a'"));
    CHECK(json_get_int(j, "b", 1, &v, "ints.json", &err) == BADAM_E_FORMAT);
    CHECK(json_get_int(j, "c", 1, &v, "ints.json", &err) == BADAM_OK && v == 2147483647);
    CHECK(json_get_int(j, "d", 1, &v, "ints.json", &err) == BADAM_E_FORMAT);
    CHECK(json_get_int(j, "e", 1, &v, "ints.json", &err) == BADAM_OK && v == -2147483647 - 1);
    CHECK(json_get_int(j, "f", 1, &v, "ints.json", &err) == BADAM_E_FORMAT);
    long long x = -1;
    CHECK(json_int_in_range(json_object_get(j, "g"), 0, 7, &x) && x == 7);
    CHECK(!json_int_in_range(json_object_get(j, "g"), 0, 6, &x));
    CHECK(!json_int_in_range(json_object_get(j, "a"), 0, (1LL << 53), &x) || x == 10000000000LL);
    json_decref(j);
}

/* badam report reads metrics.jsonl: its step and block numbers are range-checked too. */
static void expect_report_error(const char *name, const char *line, const char *part) {
    const char *dir = test_workdir(name);
    write_text(dir, "metrics.jsonl", line);
    const char *runs[1] = {dir};
    report_options o = {.run_dirs = runs, .n_runs = 1, .out_path = test_path_in(dir, "r.html")};
    badam_error err = {0};
    badam_status st = report_write(&o, NULL, 0, &err);
    CHECKF(st != BADAM_OK, "%s: report written", name);
    CHECKF(has(err.message, "metrics.jsonl") && has(err.message, part), "%s: %s", name,
           err.message);
}

static void test_report_numbers(void) {
    expect_report_error("hostile_report_block",
                        "{\"step\": 1, \"loss\": 1.5, \"block\": 1e10, \"block_name\": \"x\"}\n",
                        "'block'");
    expect_report_error("hostile_report_step", "{\"step\": 1e300, \"loss\": 1.5}\n", "'step'");
}

/* ---- decoding nothing ---- */

static void test_decode_empty(void) {
    badam_error err = {0};
    char *text = NULL;
    size_t len = 99;
    CHECK_OK(tokenizer_decode(tiny, NULL, 0, 0, &text, &len, &err), &err);
    CHECK(text && text[0] == '\0' && len == 0);
    free(text);
    int32_t none[1] = {0};
    CHECK_OK(tokenizer_decode(tiny, none, 0, 1, &text, &len, &err), &err);
    CHECK(text && text[0] == '\0' && len == 0);
    free(text);
}

/* ---- FIFOs ---- */

/* Runs fn(path) in a child with a 5 s alarm; the child exits 0 when fn returned an error that
 * names the path and says it is not a regular file. */
static void expect_not_regular(const char *label, const char *path, const char *named,
                               badam_status (*fn)(const char *, badam_error *)) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(5);
        badam_error err = {0};
        badam_status st = fn(path, &err);
        int good = st != BADAM_OK && has(err.message, named) && has(err.message, "FIFO");
        if (!good) fprintf(stderr, "%s: status %d: %s\n", label, (int)st, err.message);
        _exit(good ? 0 : 1);
    }
    int ws = 0;
    CHECKF(pid > 0 && waitpid(pid, &ws, 0) == pid, "%s: fork/wait failed", label);
    CHECKF(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "%s: %s", label,
           WIFSIGNALED(ws) && WTERMSIG(ws) == SIGALRM ? "blocked on the FIFO (killed after 5 s)"
                                                      : "wrong result");
}

static badam_status open_data(const char *path, badam_error *err) {
    data_set *ds = NULL;
    badam_status st = data_load(path, tiny, NULL, &ds, err);
    data_free(ds);
    return st;
}
static badam_status open_tokenizer(const char *path, badam_error *err) {
    badam_tokenizer *tok = NULL;
    badam_status st = tokenizer_load(path, &tok, err);
    tokenizer_free(tok);
    return st;
}
static badam_status open_safetensors(const char *path, badam_error *err) {
    st_file *f = NULL;
    badam_status st = st_open(path, &f, err);
    st_close(f);
    return st;
}
static badam_status open_weights_dir(const char *path, badam_error *err) {
    st_set *set = NULL;
    badam_status st = st_set_open_dir(path, &set, err);
    st_set_close(set);
    return st;
}
static badam_status open_config(const char *path, badam_error *err) {
    llama_config cfg;
    return llama_config_load(path, &cfg, err);
}
static badam_status read_whole(const char *path, badam_error *err) {
    char *data = NULL;
    size_t n;
    badam_status st = io_read_file(path, &data, &n, err);
    free(data);
    return st;
}
static badam_status copy_to_tmp(const char *path, badam_error *err) {
    char dst[4200];
    snprintf(dst, sizeof dst, "%s.copy", path);
    return io_copy_file(path, dst, err);
}

static void test_fifos(void) {
    const char *dir = test_workdir("hostile_fifo");
    const char *fifo = test_path_in(dir, "fifo");
    CHECK(mkfifo(fifo, 0600) == 0);
    expect_not_regular("dataset", fifo, fifo, open_data);
    expect_not_regular("tokenizer.json", fifo, fifo, open_tokenizer);
    expect_not_regular("safetensors", fifo, fifo, open_safetensors);
    expect_not_regular("config.json", fifo, fifo, open_config);
    expect_not_regular("io_read_file", fifo, fifo, read_whole);
    expect_not_regular("io_copy_file", fifo, fifo, copy_to_tmp);

    /* the fuzzer's case: a shard named in model.safetensors.index.json that is a FIFO */
    const char *model = test_path_in(dir, "model");
    CHECK(mkdir(model, 0700) == 0);
    write_text(model, "model.safetensors.index.json",
               "{\"metadata\": {}, \"weight_map\": {\"w\": \"model-00001-of-00001.safetensors\"}}");
    const char *shard = test_path_in(model, "model-00001-of-00001.safetensors");
    CHECK(mkfifo(shard, 0600) == 0);
    expect_not_regular("shard", model, "model-00001-of-00001.safetensors", open_weights_dir);

    /* a folder named as a tokenizer folder holding a FIFO tokenizer.json */
    const char *tokdir = test_path_in(dir, "tok");
    CHECK(mkdir(tokdir, 0700) == 0);
    CHECK(mkfifo(test_path_in(tokdir, "tokenizer.json"), 0600) == 0);
    expect_not_regular("tokenizer folder", tokdir, "tokenizer.json", open_tokenizer);

    /* an optional file that is a FIFO is an error naming it, not skipped as absent */
    const char *tok_json = test_source_path("tests/fixtures/data/tiny_tokenizer/tokenizer.json");
    char *json_text = NULL;
    size_t json_len = 0;
    badam_error err = {0};
    CHECK(tok_json && io_read_file(tok_json, &json_text, &json_len, &err) == BADAM_OK);
    const char *cfgdir = test_path_in(dir, "tok-config-fifo");
    CHECK(mkdir(cfgdir, 0700) == 0);
    CHECK(test_write_raw(test_path_in(cfgdir, "tokenizer.json"), json_text, json_len) == 0);
    CHECK(mkfifo(test_path_in(cfgdir, "tokenizer_config.json"), 0600) == 0);
    expect_not_regular("tokenizer_config.json", cfgdir, "tokenizer_config.json", open_tokenizer);
    free(json_text);
    const char *single = test_path_in(dir, "single");
    CHECK(mkdir(single, 0700) == 0);
    CHECK(mkfifo(test_path_in(single, "model.safetensors"), 0600) == 0);
    expect_not_regular("model.safetensors", single, "model.safetensors", open_weights_dir);
}

/* A folder where a model file belongs is an error naming the file (not "no weights"). */
static void test_folders_as_files(void) {
    const char *dir = test_workdir("hostile_folders");
    const char *model = test_path_in(dir, "model");
    CHECK(mkdir(model, 0700) == 0);
    CHECK(mkdir(test_path_in(model, "model.safetensors"), 0700) == 0);
    badam_error err = {0};
    CHECKF(open_weights_dir(model, &err) != BADAM_OK &&
               has(err.message, "model.safetensors: is a directory"),
           "%s", err.message);
    const char *tokdir = test_path_in(dir, "tok");
    CHECK(mkdir(tokdir, 0700) == 0);
    const char *tok_json = test_source_path("tests/fixtures/data/tiny_tokenizer/tokenizer.json");
    char *text = NULL;
    size_t n = 0;
    CHECK(tok_json && io_read_file(tok_json, &text, &n, &err) == BADAM_OK);
    CHECK(test_write_raw(test_path_in(tokdir, "tokenizer.json"), text, n) == 0);
    free(text);
    CHECK(mkdir(test_path_in(tokdir, "tokenizer_config.json"), 0700) == 0);
    CHECKF(open_tokenizer(tokdir, &err) != BADAM_OK &&
               has(err.message, "tokenizer_config.json: is a directory"),
           "%s", err.message);
}

/* An eos_token the tokenizer does not have is reported against tokenizer_config.json and the
 * token, not against the first record of the data. */
static void test_eos_token_unresolved(void) {
    const char *dir = test_workdir("hostile_eos");
    const char *tok_json = test_source_path("tests/fixtures/data/tiny_tokenizer/tokenizer.json");
    char *text = NULL;
    size_t n = 0;
    badam_error err = {0};
    CHECK(tok_json && io_read_file(tok_json, &text, &n, &err) == BADAM_OK);
    CHECK(test_write_raw(test_path_in(dir, "tokenizer.json"), text, n) == 0);
    free(text);
    write_text(dir, "tokenizer_config.json", "{\"eos_token\": \"<|no-such-end|>\"}");
    badam_tokenizer *tok = NULL;
    CHECK(tokenizer_load(dir, &tok, &err) == BADAM_OK); /* not needed to encode text */
    const char *data =
        write_text(dir, "data.json", "[{\"instruction\": \"hi\", \"output\": \"yo\"}]");
    data_options o = {DATA_FORMAT_AUTO, "alpaca", NULL, 64};
    data_set *ds = NULL;
    CHECK(tok && data_load(data, tok, &o, &ds, &err) != BADAM_OK);
    CHECKF(has(err.message, "tokenizer_config.json: eos_token '<|no-such-end|>' is not a token") &&
               !has(err.message, "record"),
           "%s", err.message);
    data_free(ds);
    tokenizer_free(tok);
}

/* A config.json field of the wrong type names the file, the field and the expected type. */
static void test_config_types(void) {
    const char *dir = test_workdir("hostile_config");
    const char *path = write_text(dir, "config.json",
                                  "{\"model_type\": \"llama\", \"hidden_size\": \"768\", "
                                  "\"intermediate_size\": 64, \"num_hidden_layers\": 1, "
                                  "\"num_attention_heads\": 2, \"vocab_size\": 32}");
    llama_config cfg;
    badam_error err = {0};
    CHECK(llama_config_load(path, &cfg, &err) != BADAM_OK);
    CHECKF(has(err.message, "config.json") && has(err.message, "'hidden_size'") &&
               has(err.message, "must be an integer, got a string"),
           "%s", err.message);
}

int main(void) {
    const char *tiny_path = test_source_path("tests/fixtures/data/tiny_tokenizer");
    badam_error err = {0};
    if (!tiny_path || tokenizer_load(tiny_path, &tiny, &err) != BADAM_OK) {
        fprintf(stderr, "cannot load the tiny tokenizer fixture: %s\n", err.message);
        return 1;
    }
    RUN_TEST(test_dataset_malformed);
    RUN_TEST(test_tokenizer_ids);
    RUN_TEST(test_json_ints);
    RUN_TEST(test_report_numbers);
    RUN_TEST(test_decode_empty);
    RUN_TEST(test_fifos);
    RUN_TEST(test_folders_as_files);
    RUN_TEST(test_eos_token_unresolved);
    RUN_TEST(test_config_types);
    tokenizer_free(tiny);
    return test_result();
}
