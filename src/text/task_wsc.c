/* WSC records -> examples: {"text", "target": {"span1_index", "span1_text", "span2_index",
 * "span2_text"}, "label": bool, "idx"}. A span's index counts words of the text split on
 * whitespace (Python's text.split(), ASCII whitespace here); its text may cover several words.
 * The example is one segment: the text with span1 (the candidate referent) wrapped in '*' and
 * span2 (the pronoun) wrapped in '#', e.g. "*Bob* paid for Charlie 's college education ... #He#
 * is very hurt.", everything else byte for byte as in the file.
 *
 * Matching: the span's words must equal the text's words from the index on, ASCII case ignored,
 * where the last text word may go on with punctuation ("him," for "him": the mark closes after
 * "him"). A few official records are off by one or two words (WSC val idx 42 puts "it" at the
 * word before it); when the words at the index do not match, the nearest index within two words
 * that matches is used (counted in task_set.spans_shifted), and none is an error. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_get.h"
#include "text/task_internal.h"

#define MAX_SHIFT 2

static int is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The words of s[0..len): starts[i] and ends[i] (byte offsets), *n of them; NULL on OOM. */
typedef struct words {
    size_t *start, *end;
    size_t n;
} words;

static int split_words(const char *s, size_t len, words *w) {
    w->n = 0;
    w->start = malloc((len / 2 + 1) * sizeof *w->start);
    w->end = malloc((len / 2 + 1) * sizeof *w->end);
    if (!w->start || !w->end) return 0;
    for (size_t i = 0; i < len;) {
        while (i < len && is_ws(s[i])) i++;
        if (i == len) break;
        w->start[w->n] = i;
        while (i < len && !is_ws(s[i])) i++;
        w->end[w->n++] = i;
    }
    return 1;
}

static void free_words(words *w) {
    free(w->start);
    free(w->end);
}

/* 1 when text word t (bytes [t0, t1)) matches span word p (bytes [p0, p1)): equal ignoring ASCII
 * case, or, when `last`, p is a prefix of t followed by a byte that is not a letter or digit. */
static int word_matches(const char *text, size_t t0, size_t t1, const char *span, size_t p0,
                        size_t p1, int last) {
    size_t n = p1 - p0;
    if (t1 - t0 < n) return 0;
    for (size_t k = 0; k < n; k++)
        if (tolower((unsigned char)text[t0 + k]) != tolower((unsigned char)span[p0 + k])) return 0;
    if (t1 - t0 == n) return 1;
    return last && !isalnum((unsigned char)text[t0 + n]);
}

/* Where the span's words sit in the text when they start at word `at`: bytes [*b0, *b1). */
static int span_at(const char *text, const words *tw, const char *span, const words *sw,
                   long long at, size_t *b0, size_t *b1) {
    if (at < 0 || (size_t)at + sw->n > tw->n) return 0;
    for (size_t k = 0; k < sw->n; k++) {
        size_t i = (size_t)at + k;
        if (!word_matches(text, tw->start[i], tw->end[i], span, sw->start[k], sw->end[k],
                          k + 1 == sw->n))
            return 0;
    }
    size_t last = (size_t)at + sw->n - 1;
    *b0 = tw->start[at];
    *b1 = tw->start[last] + (sw->end[sw->n - 1] - sw->start[sw->n - 1]);
    return 1;
}

/* Finds target.span<k> in the text: bytes [*b0, *b1). */
static badam_status find_span(task_builder *b, const task_rec *r, const json_t *target, int k,
                              const char *text, const words *tw, size_t *b0, size_t *b1) {
    char key_i[16], key_t[16], shown_i[32], shown_t[32];
    snprintf(key_i, sizeof key_i, "span%d_index", k);
    snprintf(key_t, sizeof key_t, "span%d_text", k);
    snprintf(shown_i, sizeof shown_i, "target.%s", key_i);
    snprintf(shown_t, sizeof shown_t, "target.%s", key_t);
    long long at = 0;
    const char *span;
    size_t span_len;
    badam_status st;
    if ((st = task_get_int(r, target, key_i, shown_i, 1, 0, 1LL << 40, &at, NULL)) ||
        (st = task_get_string(r, target, key_t, shown_t, &span, &span_len)))
        return st;
    words sw = {0};
    if (!split_words(span, span_len, &sw)) {
        free_words(&sw);
        return task_rec_nomem(r);
    }
    if (sw.n == 0) {
        free_words(&sw);
        return task_rec_fail(r, shown_t, "empty span");
    }
    int found = 0;
    for (int d = 0; d <= MAX_SHIFT && !found; d++) {
        found = span_at(text, tw, span, &sw, at - d, b0, b1);
        if (!found && d) found = span_at(text, tw, span, &sw, at + d, b0, b1);
        if (found && d) b->set->spans_shifted++;
    }
    free_words(&sw);
    if (!found) {
        const char *w = (size_t)at < tw->n ? text + tw->start[at] : "";
        int wl = (size_t)at < tw->n ? (int)(tw->end[at] - tw->start[at]) : 0;
        return task_rec_fail(r, shown_i,
                             "'%.100s' is not at word %lld ('%.*s') nor within %d words of it",
                             span, at, wl < 100 ? wl : 100, w, MAX_SHIFT);
    }
    return BADAM_OK;
}

/* text with [a0, a1) wrapped in '*' and [c0, c1) wrapped in '#'; the four marks are inserted in
 * position order (a closing mark before an opening one at the same byte). */
static char *mark_both(const char *text, size_t len, size_t a0, size_t a1, size_t c0, size_t c1) {
    struct mark {
        size_t at;
        int closing;
        char c;
    } m[4] = {{a0, 0, '*'}, {a1, 1, '*'}, {c0, 0, '#'}, {c1, 1, '#'}};
    for (int i = 1; i < 4; i++)
        for (int j = i; j > 0 && (m[j].at < m[j - 1].at ||
                                  (m[j].at == m[j - 1].at && m[j].closing > m[j - 1].closing));
             j--) {
            struct mark t = m[j];
            m[j] = m[j - 1];
            m[j - 1] = t;
        }
    char *out = malloc(len + 5);
    if (!out) return NULL;
    size_t o = 0, from = 0;
    for (int i = 0; i < 4; i++) {
        memcpy(out + o, text + from, m[i].at - from);
        o += m[i].at - from;
        from = m[i].at;
        out[o++] = m[i].c;
    }
    memcpy(out + o, text + from, len - from);
    out[o + len - from] = '\0';
    return out;
}

badam_status task_read_wsc(task_builder *b, const task_rec *r, const json_t *obj) {
    task_example ex = {.passage_idx = -1, .question_idx = -1};
    const char *text;
    size_t len;
    const json_t *target = json_field(obj, "target");
    badam_status st;
    if ((st = task_get_string(r, obj, "text", NULL, &text, &len))) return st;
    if (!target) return task_rec_fail(r, "target", "missing");
    if (!json_is_object(target))
        return task_rec_fail(r, "target", "expected an object, got %s", json_type_name(target));
    words tw = {0};
    size_t a0 = 0, a1 = 0, c0 = 0, c1 = 0;
    if (!split_words(text, len, &tw)) {
        st = task_rec_nomem(r);
    } else if (!(st = find_span(b, r, target, 1, text, &tw, &a0, &a1)) &&
               !(st = find_span(b, r, target, 2, text, &tw, &c0, &c1)) &&
               !(st =
                     task_get_label(r, obj, "label", NULL, TASK_WSC, TASK_LABEL_BOOL, &ex.label)) &&
               !(st = task_get_idx(r, obj, &ex.idx)) &&
               !(ex.text_a = mark_both(text, len, a0, a1, c0, c1))) {
        st = task_rec_nomem(r);
    }
    free_words(&tw);
    if (st) {
        task_example_free(&ex);
        return st;
    }
    return task_builder_add(b, r, &ex, 1);
}
