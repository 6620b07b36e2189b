/* SuperGLUE task names, folder names and label names (include/badam/tasks.h). Label order is the
 * Hugging Face `super_glue` datasets' (ClassLabel names of each configuration). */
#include <stddef.h>
#include <strings.h>

#include "badam/tasks.h"

typedef struct task_info {
    const char *name, *dir;
    int n_labels;
    const char *labels[TASK_MAX_LABELS];
} task_info;

static const task_info TASKS[TASK_KIND_COUNT] = {
    [TASK_BOOLQ] = {"boolq", "BoolQ", 2, {"false", "true"}},
    [TASK_CB] = {"cb", "CB", 3, {"entailment", "contradiction", "neutral"}},
    [TASK_COPA] = {"copa", "COPA", 2, {"choice1", "choice2"}},
    [TASK_MULTIRC] = {"multirc", "MultiRC", 2, {"false", "true"}},
    [TASK_RTE] = {"rte", "RTE", 2, {"entailment", "not_entailment"}},
    [TASK_WIC] = {"wic", "WiC", 2, {"false", "true"}},
    [TASK_WSC] = {"wsc", "WSC", 2, {"false", "true"}},
};

static const task_info *info(task_kind kind) {
    return (unsigned)kind < TASK_KIND_COUNT ? &TASKS[kind] : NULL;
}

badam_status task_kind_parse(const char *name, task_kind *out, badam_error *err) {
    for (int k = 0; name && k < TASK_KIND_COUNT; k++) {
        if (strcasecmp(name, TASKS[k].name) == 0) {
            *out = (task_kind)k;
            return BADAM_OK;
        }
    }
    return badam_fail(err, BADAM_E_INVALID,
                      "unknown task '%s' (known: boolq, cb, copa, multirc, rte, wic, wsc)",
                      name ? name : "(null)");
}

const char *task_kind_name(task_kind kind) {
    return info(kind) ? info(kind)->name : "unknown";
}

const char *task_dir_name(task_kind kind) {
    return info(kind) ? info(kind)->dir : "unknown";
}

int task_num_labels(task_kind kind) {
    return info(kind) ? info(kind)->n_labels : 0;
}

const char *task_label_name(task_kind kind, int label) {
    const task_info *t = info(kind);
    if (!t || label < 0 || label >= t->n_labels) return NULL;
    return t->labels[label];
}

int task_is_multiple_choice(task_kind kind) {
    return kind == TASK_COPA;
}
