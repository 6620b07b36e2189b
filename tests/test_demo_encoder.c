/* The encoder demo in a reduced size (`badam demo --encoder --quick`: 10 steps a method): it runs
 * end to end from the masked-LM folder models/tiny-roberta-base (loaded with a new
 * classification head: train --task on a *ForMaskedLM folder), writes OUT/encoder_demo.md with
 * the majority baseline and a row per method, and each fine-tuned folder is saved as a
 * RobertaForSequenceClassification that `badam eval --task rte` scores; eval --task on the
 * masked-LM folder itself is refused (it has no head for the task). */
#include <stdlib.h>
#include <string.h>

#include "io/files.h"
#include "testutil.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

static void test_demo_encoder_quick(void) {
    char out[2048], cmd[8192], path[2100];
    const char *src = getenv("BADAM_SOURCE_DIR"), *cli = getenv("BADAM_CLI");
    snprintf(out, sizeof out, "%s", test_workdir("demo_encoder"));
    snprintf(cmd, sizeof cmd, "cd %s && %s demo --encoder --quick --out %s > %s/demo.log 2>&1", src,
             cli, out, out);
    CHECKF(test_system(cmd) == 0, "badam demo --encoder failed: see %s/demo.log", out);
    snprintf(path, sizeof path, "%s/encoder_demo.md", out);
    const char *md = slurp(path);
    CHECKF(md != NULL, "%s missing", path);
    if (!md) return;
    CHECK(strstr(md, "| majority class | - | 50.0% |") != NULL);
    CHECK(strstr(md, "| badam | 0.001 | ") != NULL);
    CHECK(strstr(md, "| adam | 0.001 | ") != NULL);
    snprintf(path, sizeof path, "%s/adam/config.json", out);
    md = slurp(path);
    CHECKF(md && strstr(md, "RobertaForSequenceClassification") && !strstr(md, "MaskedLM"),
           "%s does not name the new head", path);
    snprintf(cmd, sizeof cmd,
             "cd %s && %s eval --task rte --model %s/adam --data "
             "data/demo/same_meaning_val.jsonl > %s/eval.log 2>&1",
             src, cli, out, out);
    CHECKF(test_system(cmd) == 0, "eval of the fine-tuned folder failed: see %s/eval.log", out);
    snprintf(cmd, sizeof cmd,
             "cd %s && %s eval --task rte --model models/tiny-roberta-base --data "
             "data/demo/same_meaning_val.jsonl > %s/eval_mlm.log 2>&1",
             src, cli, out);
    CHECKF(test_system(cmd) != 0, "eval --task on a masked-LM folder was not refused");
}

int main(void) {
    if (!getenv("BADAM_CLI") || !getenv("BADAM_SOURCE_DIR")) {
        fprintf(stderr, "SKIP: run through ctest (BADAM_CLI, BADAM_SOURCE_DIR)\n");
        return TEST_SKIP_CODE;
    }
    RUN_TEST(test_demo_encoder_quick);
    return test_result();
}
