/* The method registry (method.h): the built-in methods, and a caller-owned table that starts
 * with them. A new built-in method: its file in src/optim/methods/ and one line in BUILTIN. */
#include <string.h>

#include "optim/method.h"
#include "optim/methods/methods.h"

/* In train_method order (include/badam/train.h): the CLI's --method names. */
static const train_method_ops *const BUILTIN[TRAIN_METHOD_BUILTIN_COUNT] = {
    &method_badam,       &method_adam, &method_lora,      &method_lomo,   &method_sgd_bcd,
    &method_badam_ratio, &method_mezo, &method_mezo_lora, &method_galore, &method_adapter,
};

const train_method_ops *train_method_builtin(int index) {
    return index >= 0 && index < TRAIN_METHOD_BUILTIN_COUNT ? BUILTIN[index] : NULL;
}

void train_method_registry_init(train_method_registry *r) {
    memset(r, 0, sizeof *r);
    for (int i = 0; i < TRAIN_METHOD_BUILTIN_COUNT; i++) r->ops[r->n++] = BUILTIN[i];
}

badam_status train_method_register(train_method_registry *r, const train_method_ops *ops,
                                   badam_error *err) {
    if (!ops || !ops->name || !ops->sizes || !ops->create || !ops->allocate ||
        (!ops->update && !ops->step))
        return badam_fail(err, BADAM_E_INVALID,
                          "train_method_register: a method needs a name, the sizes, create and "
                          "allocate operations, and update or step");
    if (train_method_find(r, ops->name))
        return badam_fail(err, BADAM_E_INVALID, "train_method_register: '%s' is registered already",
                          ops->name);
    if (r->n == TRAIN_METHOD_REGISTRY_MAX)
        return badam_fail(err, BADAM_E_INVALID,
                          "train_method_register: '%s': the registry holds %d methods at most",
                          ops->name, TRAIN_METHOD_REGISTRY_MAX);
    r->ops[r->n++] = ops;
    return BADAM_OK;
}

const train_method_ops *train_method_find(const train_method_registry *r, const char *name) {
    if (!r) {
        for (int i = 0; i < TRAIN_METHOD_BUILTIN_COUNT; i++)
            if (!strcmp(BUILTIN[i]->name, name)) return BUILTIN[i];
        return NULL;
    }
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->ops[i]->name, name)) return r->ops[i];
    return NULL;
}
