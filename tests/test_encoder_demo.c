/* The encoder demo task (data/demo/same_meaning_{train,val}.jsonl, scripts/make_encoder_demo.py):
 * both files load as RTE (task_load), with 2000 and 400 labelled pairs and a majority class of at
 * most 60%; the generator run again with its defaults rewrites them byte for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/tasks.h"
#include "testutil.h"

static void check_file(const char *name, size_t want) {
    char rel[256];
    snprintf(rel, sizeof rel, "data/demo/%s", name);
    const char *path = test_source_path(rel);
    task_set *set = NULL;
    badam_error err = {0};
    CHECK_OK(task_load(TASK_RTE, path, &set, &err), &err);
    if (!set) return;
    size_t major =
        set->label_counts[0] > set->label_counts[1] ? set->label_counts[0] : set->label_counts[1];
    CHECKF(set->n == want && set->labelled == want && major * 10 <= want * 6,
           "%s: %zu examples, %zu labelled, majority %zu", name, set->n, set->labelled, major);
    task_set_free(set);
}

static void test_files(void) {
    if (!test_source_path("data/demo")) {
        fprintf(stderr, "skip: BADAM_SOURCE_DIR is not set\n");
        return;
    }
    check_file("same_meaning_train.jsonl", 2000);
    check_file("same_meaning_val.jsonl", 400);
}

static void test_regenerates(void) {
    if (!test_source_path("data/demo")) return;
    char src[1100], cmd[4096];
    snprintf(src, sizeof src, "%s", test_source_path("."));
    const char *dir = test_workdir("encoder-demo");
    snprintf(
        cmd, sizeof cmd,
        "python3 %s/scripts/make_encoder_demo.py --out %s && cmp -s %s/same_meaning_train.jsonl "
        "%s/data/demo/same_meaning_train.jsonl && cmp -s %s/same_meaning_val.jsonl "
        "%s/data/demo/same_meaning_val.jsonl",
        src, dir, dir, src, dir, src);
    CHECKF(test_system(cmd) == 0, "the generator does not rewrite the shipped files: %s", cmd);
}

int main(void) {
    RUN_TEST(test_files);
    RUN_TEST(test_regenerates);
    return test_result();
}
