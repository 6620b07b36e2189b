/* The run record (run_record.h): one table, one row per option that shapes the trajectory. To
 * record a new option, add its row; the checkpoint, --resume and the docs' list follow it. */
#include "train/run_record.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/file_hash.h"
#include "io/files.h"

typedef struct run_option run_option;
struct run_option {
    const char *name;                   /* the flag an error names */
    int (*applies)(const run_facts *f); /* NULL: every run; elsewhere recorded as null */
    json_t *(*value)(const run_facts *f, const run_option *o); /* how the value is written */
    size_t at;         /* offset of the field (in train_config, or run_facts for hashes) */
    const char *unset; /* string fields: the text written for NULL */
    void (*tell)(const json_t *was, const json_t *now, char *out,
                 size_t size); /* NULL: "was A, now B" */
};

/* ---------------------------------------------------------------- when an option applies */

static int blockwise(const run_facts *f) {
    return (f->method->uses & METHOD_USES_BLOCKS) && f->part;
}
static int uses_adam(const run_facts *f) {
    return (f->method->uses & METHOD_USES_ADAM) != 0;
}
static int lora(const run_facts *f) {
    return (f->method->uses & METHOD_USES_LORA) != 0;
}
static int ratio_mode(const run_facts *f) {
    return (f->method->uses & METHOD_USES_RATIO) != 0;
}
static int zeroth_order(const run_facts *f) {
    return (f->method->uses & METHOD_USES_ZO) != 0;
}
static int blocks_or_ratio(const run_facts *f) {
    return blockwise(f) || ratio_mode(f);
}
static int galore(const run_facts *f) {
    return (f->method->uses & METHOD_USES_GALORE) != 0;
}
static int adapter(const run_facts *f) {
    return (f->method->uses & METHOD_USES_ADAPTER) != 0;
}
static int by_epochs(const run_facts *f) {
    return f->cfg->max_steps == 0;
}
/* Options newer than the encoder path: recorded only when used, so earlier records stay as
 * they were. */
static int has_task(const run_facts *f) {
    return f->cfg->task != NULL;
}
static int has_warmup_ratio(const run_facts *f) {
    return f->cfg->warmup_ratio > 0;
}
static int recorded_when_unused(const run_option *o) {
    return o->applies != has_task && o->applies != has_warmup_ratio;
}
static int decays(const run_facts *f) {
    return f->cfg->schedule != LR_CONSTANT;
}
static int has_val_data(const run_facts *f) {
    return f->cfg->val_path != NULL;
}
static int split_val(const run_facts *f) {
    return f->cfg->val_path == NULL;
}
static int uses_template(const run_facts *f) {
    return f->cfg->format != DATA_FORMAT_TOKENIZED;
}
static int unpacked(const run_facts *f) {
    return !f->cfg->pack; /* packing ignores length grouping */
}

/* ---------------------------------------------------------------- how a value is written */

#define FIELD(type, f, o) (*(const type *)((const char *)(f)->cfg + (o)->at))

static json_t *text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *text(const char *fmt, ...) {
    char buf[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return json_string(buf);
}

static json_t *v_int(const run_facts *f, const run_option *o) {
    return text("%d", FIELD(int, f, o));
}
/* The shortest decimal that reads back as the same float (9 digits always do). */
static json_t *float_text(float x) {
    char buf[32];
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)x);
        if (strtof(buf, NULL) == x) break;
    }
    return json_string(buf);
}
static json_t *v_float(const run_facts *f, const run_option *o) {
    return float_text(FIELD(float, f, o));
}
static json_t *v_double(const run_facts *f, const run_option *o) {
    return text("%.17g", FIELD(double, f, o));
}
static json_t *v_u64(const run_facts *f, const run_option *o) {
    return text("%llu", (unsigned long long)FIELD(uint64_t, f, o));
}
static json_t *v_on(const run_facts *f, const run_option *o) {
    return json_string(FIELD(int, f, o) ? "on" : "off");
}
static json_t *v_off(const run_facts *f, const run_option *o) { /* --no-X for a field X */
    return json_string(FIELD(int, f, o) ? "off" : "on");
}
static json_t *v_str(const run_facts *f, const run_option *o) {
    const char *s = FIELD(char *, f, o); /* (const char *): FIELD adds the const */
    return json_string(s ? s : o->unset);
}
static json_t *v_sha256(const run_facts *f, const run_option *o) {
    const char *hex = (const char *)f + o->at;
    return hex[0] ? text("sha256:%s", hex) : json_null();
}
static json_t *v_method(const run_facts *f, const run_option *o) {
    (void)o;
    return json_string(f->method->name);
}
static json_t *v_dtype(const run_facts *f, const run_option *o) {
    (void)o;
    return json_string(f->cfg->dtype == BADAM_DTYPE_F32 ? "fp32" : "bf16");
}
static json_t *v_format(const run_facts *f, const run_option *o) {
    (void)o;
    static const char *const names[] = {"auto", "alpaca", "sharegpt", "tokenized"};
    return json_string(names[f->cfg->format]);
}
static json_t *v_schedule(const run_facts *f, const run_option *o) {
    (void)o;
    return json_string(lr_schedule_name(f->cfg->schedule));
}
static json_t *v_order(const run_facts *f, const run_option *o) {
    (void)o;
    return json_string(block_order_name(f->cfg->order));
}
static json_t *v_start_block(const run_facts *f, const run_option *o) {
    (void)o;
    return f->cfg->start_block < 0 ? json_string("default") : text("%d", f->cfg->start_block);
}
static json_t *v_switch_every(const run_facts *f, const run_option *o) {
    (void)o;
    return text("%d", f->switch_every);
}
static json_t *v_mask_mode(const run_facts *f, const run_option *o) {
    (void)o;
    return json_string(f->cfg->mask_scatter ? "scatter" : "adjacent");
}
static json_t *v_clip(const run_facts *f, const run_option *o) {
    (void)o;
    return float_text(f->clip);
}
static json_t *v_lora_targets(const run_facts *f, const run_option *o) {
    (void)o;
    char list[160] = "", name[160];
    for (int k = 0; k < LLAMA_P_KIND_COUNT; k++) {
        if (!(f->cfg->lora_targets & (1u << k))) continue;
        llama_lora_module_name(f->m, 0, (llama_param_kind)k, name, sizeof name);
        const char *last = strrchr(name, '.'), *kind = last ? last + 1 : name;
        if (strlen(list) + strlen(kind) + 2 > sizeof list) break;
        if (list[0]) strcat(list, ",");
        strcat(list, kind);
    }
    return json_string(list);
}
/* The tensor names of every block, block by block. */
static json_t *v_blocks(const run_facts *f, const run_option *o) {
    (void)o;
    json_t *blocks = json_array();
    for (int b = 0; blocks && b < f->part->n_blocks; b++) {
        json_t *names = json_array();
        for (int i = 0; names && i < f->m->n_params; i++)
            if (f->part->block_of[i] == b)
                json_array_append_new(names, json_string(f->m->params[i].name));
        json_array_append_new(blocks, names);
    }
    return blocks;
}
static json_t *v_always_active(const run_facts *f, const run_option *o) {
    (void)o;
    json_t *names = json_array();
    for (int i = 0; names && i < f->m->n_params; i++)
        if (f->part->always_active[i])
            json_array_append_new(names, json_string(f->m->params[i].name));
    return names;
}

/* ---------------------------------------------------------------- how a difference is told */

/* A value as an error shows it: strings as they are, null as "not used", arrays as
 * "[a, b, c, ... (n)]"; cut to fit. */
static void show(const json_t *v, char *out, size_t size) {
    if (!v || json_is_null(v)) {
        snprintf(out, size, "not used");
    } else if (json_is_string(v)) {
        size_t n = json_string_length(v);
        if (n > 72)
            snprintf(out, size, "\"%.60s...\" (%zu characters)", json_string_value(v), n);
        else
            snprintf(out, size, "%s", json_string_value(v));
    } else if (json_is_array(v)) {
        size_t n = json_array_size(v), k = 0, index;
        size_t at = (size_t)snprintf(out, size, "[");
        const json_t *x;
        json_array_foreach(v, index, x) {
            if (k == 3) {
                if (at < size) at += (size_t)snprintf(out + at, size - at, ", ... %zu in all", n);
                break;
            }
            char item[128];
            show(x, item, sizeof item);
            if (at < size) at += (size_t)snprintf(out + at, size - at, "%s%s", k ? ", " : "", item);
            k++;
        }
        if (at < size) snprintf(out + at, size - at, "]");
    } else {
        snprintf(out, size, "?");
    }
}

static void tell_plain(const char *name, const json_t *was, const json_t *now, char *out,
                       size_t size) {
    char a[256], b[256];
    show(was, a, sizeof a);
    show(now, b, sizeof b);
    snprintf(out, size, "%s was %s, now %s", name, a, b);
}

/* Partitions: the first block whose tensors differ. */
static void tell_blocks(const json_t *was, const json_t *now, char *out, size_t size) {
    if (!json_is_array(was) || !json_is_array(now)) {
        tell_plain("--partition", was, now, out, size);
        return;
    }
    int nw = (int)json_array_size(was), nn = (int)json_array_size(now), b = 0;
    while (b < nw && b < nn && json_equal(json_array_get(was, b), json_array_get(now, b))) b++;
    char a[256] = "none", c[256] = "none";
    if (b < nw) show(json_array_get(was, b), a, sizeof a);
    if (b < nn) show(json_array_get(now, b), c, sizeof c);
    if (nw != nn)
        snprintf(out, size, "--partition was %d blocks, now %d; block %d was %s, now %s", nw, nn, b,
                 a, c);
    else
        snprintf(out, size, "--partition block %d was %s, now %s", b, a, c);
}

/* ---------------------------------------------------------------- the table */

#define CFG(x) offsetof(train_config, x)
#define FACT(x) offsetof(run_facts, x)

static const run_option OPTIONS[] = {
    {"--method", NULL, v_method, 0, NULL, NULL},
    {"--dtype", NULL, v_dtype, 0, NULL, NULL},
    {"--data", NULL, v_sha256, FACT(data_sha256), NULL, NULL},
    {"--val-data", has_val_data, v_sha256, FACT(val_sha256), NULL, NULL},
    {"--val-size", split_val, v_double, CFG(val_size), NULL, NULL},
    {"--model tokenizer.json", NULL, v_sha256, FACT(tokenizer_sha256), NULL, NULL},
    {"--format", NULL, v_format, 0, NULL, NULL},
    {"--template", uses_template, v_str, CFG(template_name), "default", NULL},
    {"--system", uses_template, v_str, CFG(system_prompt), "(the template's)", NULL},
    {"--seq-len", NULL, v_int, CFG(seq_len), NULL, NULL},
    {"--batch-size", NULL, v_int, CFG(batch_size), NULL, NULL},
    {"--grad-accum", NULL, v_int, CFG(grad_accum), NULL, NULL},
    {"--pack", NULL, v_on, CFG(pack), NULL, NULL},
    {"--no-shuffle", NULL, v_off, CFG(shuffle), NULL, NULL},
    {"--no-group-by-length", unpacked, v_off, CFG(group_by_length), NULL, NULL},
    {"--seed", NULL, v_u64, CFG(seed), NULL, NULL},
    {"--epochs", by_epochs, v_int, CFG(epochs), NULL, NULL},
    {"--max-steps", NULL, v_int, CFG(max_steps), NULL, NULL},
    {"--lr", NULL, v_float, CFG(lr), NULL, NULL},
    {"--schedule", NULL, v_schedule, 0, NULL, NULL},
    {"--warmup", NULL, v_int, CFG(warmup), NULL, NULL},
    {"--min-lr-ratio", decays, v_float, CFG(min_lr_ratio), NULL, NULL},
    {"--weight-decay", NULL, v_float, CFG(weight_decay), NULL, NULL},
    {"--beta1", uses_adam, v_float, CFG(beta1), NULL, NULL},
    {"--beta2", uses_adam, v_float, CFG(beta2), NULL, NULL},
    {"--eps", uses_adam, v_float, CFG(eps), NULL, NULL},
    {"--clip", NULL, v_clip, 0, NULL, NULL},
    {"--switch-every", blocks_or_ratio, v_switch_every, 0, NULL, NULL},
    {"--switch-mode", blockwise, v_order, 0, NULL, NULL},
    {"--start-block", blockwise, v_start_block, 0, NULL, NULL},
    {"--partition", blockwise, v_blocks, 0, NULL, tell_blocks},
    {"--always-active", blockwise, v_always_active, 0, NULL, NULL},
    {"--include-embedding", blocks_or_ratio, v_on, CFG(partition.include_embedding), NULL, NULL},
    {"--include-head", blocks_or_ratio, v_on, CFG(partition.include_head), NULL, NULL},
    {"--reference-compat", blockwise, v_on, CFG(reference_compat), NULL, NULL},
    {"--lora-rank", lora, v_int, CFG(lora_rank), NULL, NULL},
    {"--lora-alpha", lora, v_float, CFG(lora_alpha), NULL, NULL},
    {"--lora-dropout", lora, v_float, CFG(lora_dropout), NULL, NULL},
    {"--lora-targets", lora, v_lora_targets, 0, NULL, NULL},
    {"--update-ratio", ratio_mode, v_float, CFG(update_ratio), NULL, NULL},
    {"--mask-mode", ratio_mode, v_mask_mode, 0, NULL, NULL},
    {"--mezo-eps", zeroth_order, v_float, CFG(mezo_eps), NULL, NULL},
    {"--mezo-samples", zeroth_order, v_int, CFG(mezo_samples), NULL, NULL},
    {"--galore-rank", galore, v_int, CFG(galore_rank), NULL, NULL},
    {"--galore-update-gap", galore, v_int, CFG(galore_update_gap), NULL, NULL},
    {"--galore-scale", galore, v_float, CFG(galore_scale), NULL, NULL},
    {"--galore-per-layer", galore, v_on, CFG(galore_per_layer), NULL, NULL},
    {"--adapter-size", adapter, v_int, CFG(adapter_size), NULL, NULL},
    {"--task", has_task, v_str, CFG(task), NULL, NULL},
    {"--warmup-ratio", has_warmup_ratio, v_float, CFG(warmup_ratio), NULL, NULL},
};
#define N_OPTIONS (sizeof OPTIONS / sizeof OPTIONS[0])

/* ---------------------------------------------------------------- build, hash, check */

json_t *run_record_build(const run_facts *f) {
    json_t *j = json_object();
    for (size_t i = 0; j && i < N_OPTIONS; i++) {
        const run_option *o = &OPTIONS[i];
        int used = !o->applies || o->applies(f);
        if (!used && !recorded_when_unused(o)) continue;
        json_t *v = used ? o->value(f, o) : json_null();
        if (!v || json_object_set_new(j, o->name, v) != 0) { /* which releases v */
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

badam_status run_facts_hash_files(run_facts *f, badam_error *err) {
    const train_config *c = f->cfg;
    f->data_sha256[0] = f->val_sha256[0] = f->tokenizer_sha256[0] = 0;
    badam_status st = io_sha256_file(c->data_path, f->data_sha256, err);
    if (!st && c->val_path) st = io_sha256_file(c->val_path, f->val_sha256, err);
    char path[4096];
    if (!st && !io_path_join(path, sizeof path, c->model_dir, "tokenizer.json") && io_is_file(path))
        st = io_sha256_file(path, f->tokenizer_sha256, err);
    return st;
}

/* Appends "; " and a difference to the list. */
static void add(char *list, size_t size, const char *item) {
    size_t at = strlen(list);
    if (at < size) snprintf(list + at, size - at, "%s%s", at ? "; " : "", item);
}

badam_status run_record_check(const json_t *saved, const json_t *now, const char *dir,
                              badam_error *err) {
    char list[BADAM_ERROR_MESSAGE_MAX] = "", item[700];
    /* An option that applies to one run only (null in the other) differs because of another
     * option (--method, --max-steps, --val-data, ...): told only when nothing else differs.
     * Another method changes everything that follows from it: told alone. */
    const json_t *method_was = json_object_get(saved, OPTIONS[0].name);
    int method_differs = !json_equal(method_was, json_object_get(now, OPTIONS[0].name));
    int n_both = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < N_OPTIONS; i++) {
            const run_option *o = &OPTIONS[i];
            const json_t *a = json_object_get(saved, o->name);
            const json_t *b = json_object_get(now, o->name);
            int one_sided = a && (json_is_null(a) != json_is_null(b));
            if (method_differs && i > 0 && a) continue;
            if (pass != one_sided || (pass == 1 && n_both)) continue;
            if (!a && (!b || json_is_null(b))) continue; /* newer than the record, unused */
            if (!a) {
                snprintf(item, sizeof item, "%s is not recorded", o->name);
            } else if (!json_equal(a, b)) {
                if (o->tell)
                    o->tell(a, b, item, sizeof item);
                else
                    tell_plain(o->name, a, b, item, sizeof item);
            } else {
                continue;
            }
            add(list, sizeof list, item);
            n_both += pass == 0;
        }
    }
    const char *key;
    size_t key_len;
    json_t *x;
    json_object_keylen_foreach((json_t *)saved, key, key_len, x) {
        if (json_object_getn(now, key, key_len)) continue;
        snprintf(item, sizeof item, "it records %s, which this badam does not know", key);
        add(list, sizeof list, item);
    }
    if (!list[0]) return BADAM_OK;
    return badam_fail(err, BADAM_E_INVALID, "cannot resume %s: %s", dir, list);
}
