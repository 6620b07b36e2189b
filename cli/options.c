/* Command-line option parsing (options.h). */
#include "options.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void cli_print_help(FILE *out, const char *usage_line, const char *description,
                    const cli_option *opts) {
    fprintf(out, "usage: %s\n\n%s\n\noptions:\n", usage_line, description);
    for (const cli_option *o = opts; o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        fprintf(out, "  %-28s %s\n", left, o->help);
    }
    fprintf(out, "  %-28s %s\n", "-h, --help", "show this help");
}

/* Levenshtein distance between a[0..la) and b, capped at 9. */
static int edit_distance(const char *a, size_t la, const char *b) {
    size_t lb = strlen(b);
    if (la > 40 || lb > 40) return 9;
    int prev[41], cur[41];
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(int) * (lb + 1));
    }
    return prev[lb] > 9 ? 9 : prev[lb];
}

/* The option closest to a misspelt name, or NULL when nothing is close. */
static const cli_option *closest(const cli_option *opts, const char *name, size_t len) {
    const cli_option *best = NULL;
    int best_d = 3;
    for (const cli_option *o = opts; o->name; o++) {
        int d = edit_distance(name, len, o->name);
        if (d < best_d || (!best && strncmp(o->name, name, len) == 0 && len >= 3))
            best = o, best_d = d;
    }
    return best;
}

static int parse_value(const cli_option *o, const char *v, char *why, size_t n) {
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case OPT_STRING:
        *(const char **)o->target = v;
        return 0;
    case OPT_INT: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < -2147483647L || x > 2147483647L) break;
        *(int *)o->target = (int)x;
        return 0;
    }
    case OPT_FLOAT:
    case OPT_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x)) break;
        if (o->type == OPT_FLOAT)
            *(float *)o->target = (float)x;
        else
            *(double *)o->target = x;
        return 0;
    }
    case OPT_CUSTOM:
        return o->parse(v, o->target, why, n);
    default:
        break;
    }
    snprintf(why, n, "'%s' is not a valid %s", v, o->type == OPT_INT ? "integer" : "number");
    return -1;
}

/* The option of opts that argument a names ("--name" or "--name=value"), or NULL. */
static const cli_option *find_option(const cli_option *opts, const char *a) {
    if (strncmp(a, "--", 2) != 0) return NULL;
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const cli_option *o = opts;
    while (o->name && (strlen(o->name) != len || strncmp(o->name, name, len) != 0)) o++;
    return o->name ? o : NULL;
}

/* Whether argument a is itself an option of the command (or its help), so that it cannot be
 * the value of the option before it. */
static int is_option(const cli_option *opts, const char *a) {
    return !strcmp(a, "-h") || !strcmp(a, "--help") || find_option(opts, a);
}

int cli_parse(const char *command, const char *usage_line, const char *description,
              const cli_option *opts, int argc, char **argv) {
    return cli_parse_given(command, usage_line, description, opts, argc, argv, NULL);
}

int cli_given(const cli_option *opts, const unsigned char *given, const char *name) {
    for (const cli_option *o = opts; o->name; o++)
        if (!strcmp(o->name, name)) return given[o - opts];
    return 0;
}

int cli_parse_given(const char *command, const char *usage_line, const char *description,
                    const cli_option *opts, int argc, char **argv, unsigned char *given) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cli_print_help(stdout, usage_line, description, opts);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", command, a);
            return 2;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const cli_option *o = find_option(opts, a);
        if (!o) {
            const cli_option *near = closest(opts, name, len);
            if (near)
                fprintf(stderr, "%s: unknown option '--%.*s'; did you mean --%s? (see --help)\n",
                        command, (int)len, name, near->name);
            else
                fprintf(stderr, "%s: unknown option '--%.*s' (see --help)\n", command, (int)len,
                        name);
            return 2;
        }
        if (given) given[o - opts] = 1;
        if (o->type == OPT_FLAG) {
            if (eq) {
                fprintf(stderr, "%s: --%s takes no value\n", command, o->name);
                return 2;
            }
            *(int *)o->target = 1;
            continue;
        }
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value) {
            fprintf(stderr, "%s: --%s needs a value (%s)\n", command, o->name, o->metavar);
            return 2;
        }
        if (!eq && is_option(opts, value)) {
            fprintf(stderr,
                    "%s: --%s needs a value (%s), but the next argument is the option '%s' "
                    "(write --%s=%s to use it as the value)\n",
                    command, o->name, o->metavar, value, o->name, value);
            return 2;
        }
        char why[256] = "";
        if (parse_value(o, value, why, sizeof why)) {
            fprintf(stderr, "%s: --%s: %s\n", command, o->name, why);
            return 2;
        }
    }
    return 0;
}
