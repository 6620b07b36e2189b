/* Learning-rate schedules over optimizer steps (Hugging Face LambdaLR semantics). */
#include <math.h>
#include <string.h>

#include "badam/optim.h"

float lr_at(const lr_schedule *s, int step) {
    if (step < s->warmup) return s->lr * (float)step / (float)(s->warmup > 1 ? s->warmup : 1);
    if (s->kind == LR_CONSTANT) return s->lr;
    int span = s->total - s->warmup;
    double p = (double)(step - s->warmup) / (double)(span > 1 ? span : 1);
    if (p > 1.0) p = 1.0;
    double shape = s->kind == LR_COSINE ? 0.5 * (1.0 + cos(M_PI * p)) : 1.0 - p;
    return (float)(s->lr * (s->min_ratio + (1.0 - s->min_ratio) * shape));
}

static const char *const NAMES[] = {"constant", "cosine", "linear"};

badam_status lr_schedule_parse(const char *name, lr_schedule_kind *kind, badam_error *err) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, NAMES[i])) {
            *kind = (lr_schedule_kind)i;
            return BADAM_OK;
        }
    return badam_fail(err, BADAM_E_INVALID,
                      "unknown schedule '%s' (choose constant, cosine or linear)", name);
}

const char *lr_schedule_name(lr_schedule_kind kind) {
    return NAMES[kind];
}
