/* badam compare: per-run option values. Every option of `badam train` may be given once for
 * all runs (--lr 2e-3) or per run as NAME=VALUE items (--lr lora=3e-3,adam=3e-4,2e-3): NAME is a
 * run's name (lora@3e-3) or its method (lora; the run's own name wins), and an item without
 * NAME is the value of the runs that no item names. A run that no item names and that has no
 * such default does not get the option. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare_args.h"

#include "badam/train.h"

/* Whether key names a run of the list, a run's method or a built-in method (an item for a
 * method that no run uses is ignored: one option list serves several comparisons). */
static int key_known(const compare_names *names, const char *key, size_t len) {
    for (int i = 0; i < names->n; i++)
        if ((strlen(names->run[i]) == len && !strncmp(names->run[i], key, len)) ||
            (strlen(names->method[i]) == len && !strncmp(names->method[i], key, len)))
            return 1;
    char name[64];
    train_method m;
    badam_error err;
    snprintf(name, sizeof name, "%.*s", (int)len, key);
    return len < sizeof name && train_method_parse(name, &m, &err) == BADAM_OK;
}

/* Whether some NAME=VALUE item of value names a run or a method (the per-run form). */
static int per_run_form(const compare_names *names, const char *value) {
    for (const char *p = value; *p;) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        if (eq && key_known(names, p, (size_t)(eq - p))) return 1;
        p += n + (p[n] == ',');
    }
    return 0;
}

/* The item of value for key (exact) into out: 1 found, 0 not. */
static int find_item(const char *value, const char *key, char *out, size_t size) {
    size_t klen = strlen(key);
    for (const char *p = value; *p;) {
        size_t n = strcspn(p, ",");
        if (n > klen && p[klen] == '=' && !strncmp(p, key, klen)) {
            snprintf(out, size, "%.*s", (int)(n - klen - 1), p + klen + 1);
            return 1;
        }
        p += n + (p[n] == ',');
    }
    return 0;
}

/* Checks the items of a per-run value: every NAME names a run or method, at most one default
 * item. 0, or -1 after a message. */
static int check_items(const compare_names *names, const char *option, const char *value) {
    int defaults = 0;
    for (const char *p = value; *p;) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        if (!eq) {
            defaults++;
        } else if (!key_known(names, p, (size_t)(eq - p))) {
            fprintf(stderr,
                    "badam compare: --%s: '%.*s' names no run of --methods and no "
                    "method\n",
                    option, (int)(eq - p), p);
            return -1;
        }
        p += n + (p[n] == ',');
    }
    if (defaults > 1) {
        fprintf(stderr, "badam compare: --%s '%s': more than one value without a METHOD= name\n",
                option, value);
        return -1;
    }
    return 0;
}

int compare_resolve(const compare_names *names, int run, const char *option, const char *value,
                    char *out, size_t size, int *per_run) {
    *per_run = 0;
    if (!per_run_form(names, value)) {
        snprintf(out, size, "%s", value);
        return 1;
    }
    if (check_items(names, option, value)) return -1;
    *per_run = 1;
    if (find_item(value, names->run[run], out, size)) return 1;
    if (find_item(value, names->method[run], out, size)) return 1;
    for (const char *p = value; *p;) { /* the default item */
        size_t n = strcspn(p, ",");
        if (!memchr(p, '=', n)) {
            snprintf(out, size, "%.*s", (int)n, p);
            return 1;
        }
        p += n + (p[n] == ',');
    }
    return 0;
}

/* The item of the flag list value for key: 1 on, 0 off, -1 not named, -2 a bad value. */
static int flag_item(const char *value, const char *key) {
    size_t klen = strlen(key);
    for (const char *p = value; *p;) {
        size_t n = strcspn(p, ",");
        if (n == klen && !strncmp(p, key, klen)) return 1;
        if (n == klen + 2 && p[klen] == '=' && !strncmp(p, key, klen))
            return p[klen + 1] == '1' ? 1 : p[klen + 1] == '0' ? 0 : -2;
        if (n > klen && p[klen] == '=' && !strncmp(p, key, klen)) return -2;
        p += n + (p[n] == ',');
    }
    return -1;
}

int compare_flag_for(const compare_names *names, int run, const char *option, const char *value) {
    for (const char *p = value; *p;) {
        size_t n = strcspn(p, ","), key = strcspn(p, ",=");
        if (!key_known(names, p, key)) {
            fprintf(stderr,
                    "badam compare: --%s '%s': '%.*s' names no run of --methods and no method "
                    "(a flag takes a list of runs or methods: --%s galore,lora@2=1)\n",
                    option, value, (int)key, p, option);
            return -1;
        }
        p += n + (p[n] == ',');
    }
    int got = flag_item(value, names->run[run]);
    if (got == -1) got = flag_item(value, names->method[run]);
    if (got == -2) {
        fprintf(stderr, "badam compare: --%s '%s': NAME=VALUE takes 1 (on) or 0 (off)\n", option,
                value);
        return -1;
    }
    return got == 1;
}

int compare_parse_methods(const char *list, compare_names *names) {
    names->n = 0;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (names->n == COMPARE_NAMES_MAX || n == 0 || n >= sizeof names->run[0]) {
            fprintf(stderr, "badam compare: --methods '%s': %s\n", list,
                    n == 0                          ? "an empty name"
                    : names->n == COMPARE_NAMES_MAX ? "too many runs"
                                                    : "a name is too long");
            return -1;
        }
        char *r = names->run[names->n];
        snprintf(r, sizeof names->run[0], "%.*s", (int)n, p);
        for (const char *c = r; *c; c++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@+-",
                        *c)) {
                fprintf(stderr,
                        "badam compare: --methods: run name '%s' may hold letters, "
                        "digits and _ . @ + - only (it names a folder)\n",
                        r);
                return -1;
            }
        size_t mlen = strcspn(r, "@");
        memcpy(names->method[names->n], r, mlen);
        names->method[names->n][mlen] = '\0';
        for (int i = 0; i < names->n; i++)
            if (!strcmp(names->run[i], r)) {
                fprintf(stderr,
                        "badam compare: --methods: '%s' twice: give runs of one method "
                        "distinct names (lora@3e-3,lora@1e-3)\n",
                        r);
                return -1;
            }
        names->n++;
        p += n + (p[n] == ',');
    }
    if (!names->n) {
        fprintf(stderr, "badam compare: --methods is empty\n");
        return -1;
    }
    return 0;
}
