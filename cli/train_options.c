/* Enum-valued options of `badam train` and `badam plan` (train_options.h). */
#include "train_options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/train.h"

/* Copies a library error message into the parser's reason. */
static int reason(badam_status st, const badam_error *err, char *why, size_t n) {
    if (st) snprintf(why, n, "%s", err->message);
    return st ? -1 : 0;
}

int parse_method(const char *v, void *target, char *why, size_t n) {
    badam_error err;
    return reason(train_method_parse(v, target, &err), &err, why, n);
}

int parse_dtype(const char *v, void *target, char *why, size_t n) {
    badam_dtype *d = target;
    if (!strcmp(v, "bf16") || !strcmp(v, "bfloat16"))
        *d = BADAM_DTYPE_BF16;
    else if (!strcmp(v, "fp32") || !strcmp(v, "float32"))
        *d = BADAM_DTYPE_F32;
    else {
        snprintf(why, n, "'%s' is not bf16 or fp32", v);
        return -1;
    }
    return 0;
}

int parse_cpu_device(const char *v, void *target, char *why, size_t n) {
    (void)target;
    if (!strcmp(v, "cpu")) return 0;
    if (!strcmp(v, "cuda"))
        snprintf(why, n,
                 "cuda is not supported here yet: decoding (the KV cache, attention_decode) and "
                 "evaluation run on the CPU backend only; train with --device cuda and use the "
                 "saved folder here");
    else
        snprintf(why, n, "'%s' is not a device (cpu or cuda)", v);
    return -1;
}

int parse_switch_every(const char *v, void *target, char *why, size_t n) {
    int *k = target;
    if (!strcmp(v, "auto")) {
        *k = 0;
        return 0;
    }
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < 1 || x > 1000000000) {
        snprintf(why, n, "'%s' is not a positive number of steps or 'auto'", v);
        return -1;
    }
    *k = (int)x;
    return 0;
}

int parse_switch_mode(const char *v, void *target, char *why, size_t n) {
    badam_error err;
    return reason(block_order_parse(v, target, &err), &err, why, n);
}

int parse_mask_mode(const char *v, void *target, char *why, size_t n) {
    int *scatter = target;
    if (!strcmp(v, "adjacent") || !strcmp(v, "scatter")) {
        *scatter = !strcmp(v, "scatter");
        return 0;
    }
    snprintf(why, n, "'%s' is not a mask mode (adjacent or scatter)", v);
    return -1;
}

int parse_partition(const char *v, void *target, char *why, size_t n) {
    partition_options *p = target;
    if (strchr(v, '.')) {
        p->kind = PARTITION_PREFIXES;
        p->prefixes = v;
        return 0;
    }
    badam_error err;
    return reason(partition_parse_kind(v, &p->kind, &err), &err, why, n);
}

int parse_schedule(const char *v, void *target, char *why, size_t n) {
    badam_error err;
    return reason(lr_schedule_parse(v, target, &err), &err, why, n);
}

int parse_lora_targets(const char *v, void *target, char *why, size_t n) {
    badam_error err;
    return reason(llama_lora_parse_targets(v, target, &err), &err, why, n);
}

int parse_format(const char *v, void *target, char *why, size_t n) {
    data_format *f = target;
    const char *names[] = {"auto", "alpaca", "sharegpt", "tokenized"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(v, names[i])) {
            *f = (data_format)i;
            return 0;
        }
    snprintf(why, n, "'%s' is not auto, alpaca, sharegpt or tokenized", v);
    return -1;
}

int parse_megabytes(const char *v, void *target, char *why, size_t n) {
    char *end;
    double mb = strtod(v, &end);
    if (*end || !(mb >= 0) || mb > 1e9) {
        snprintf(why, n, "'%s' is not a size in MB", v);
        return -1;
    }
    *(size_t *)target = (size_t)(mb * 1048576.0);
    return 0;
}

int parse_u64(const char *v, void *target, char *why, size_t n) {
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || *v == '-') {
        snprintf(why, n, "'%s' is not a non-negative integer", v);
        return -1;
    }
    *(uint64_t *)target = x;
    return 0;
}
