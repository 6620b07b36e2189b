/* WiC records -> examples: {"word", "sentence1", "sentence2", "start1", "end1", "start2",
 * "end2", "label": bool, "idx"}. The spans are Python string offsets (code points, end
 * exclusive) of the target word in each sentence. A = word + ": " + sentence1 with the target
 * wrapped in '*', B = sentence2 with the target wrapped in '*'. */
#include <stdio.h>
#include <stdlib.h>

#include "text/task_internal.h"

/* Byte offset of code point `cp` in the UTF-8 text s[0..len) (len when cp is the number of code
 * points); 0 when cp is past the end. Continuation bytes are 10xxxxxx. */
static int code_point_byte(const char *s, size_t len, long long cp, size_t *byte) {
    long long seen = 0;
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xC0) == 0x80) continue;
        if (seen == cp) {
            *byte = i;
            return 1;
        }
        seen++;
    }
    if (seen == cp) {
        *byte = len;
        return 1;
    }
    return 0;
}

/* sentence<k> with its span start<k>..end<k> marked, into *out. */
static badam_status marked_sentence(const task_rec *r, const json_t *obj, int k, char **out) {
    char key_s[16], key_a[16], key_b[16];
    snprintf(key_s, sizeof key_s, "sentence%d", k);
    snprintf(key_a, sizeof key_a, "start%d", k);
    snprintf(key_b, sizeof key_b, "end%d", k);
    const char *s;
    size_t len;
    long long a = 0, e = 0;
    badam_status st;
    if ((st = task_get_string(r, obj, key_s, NULL, &s, &len)) ||
        (st = task_get_int(r, obj, key_a, NULL, 1, 0, 1LL << 40, &a, NULL)) ||
        (st = task_get_int(r, obj, key_b, NULL, 1, 0, 1LL << 40, &e, NULL)))
        return st;
    size_t b0 = 0, b1 = 0;
    if (e <= a) return task_rec_fail(r, key_b, "%lld is not after %s %lld", e, key_a, a);
    if (!code_point_byte(s, len, e, &b1))
        return task_rec_fail(r, key_b, "%lld is past the end of %s", e, key_s);
    code_point_byte(s, len, a, &b0); /* a < e, so it is inside */
    if (!(*out = task_mark_span(s, len, b0, b1, '*'))) return task_rec_nomem(r);
    return BADAM_OK;
}

badam_status task_read_wic(task_builder *b, const task_rec *r, const json_t *obj) {
    task_example ex = {.passage_idx = -1, .question_idx = -1};
    const char *word;
    size_t word_len;
    char *s1 = NULL;
    badam_status st;
    if ((st = task_get_string(r, obj, "word", NULL, &word, &word_len)) ||
        (st = marked_sentence(r, obj, 1, &s1)) || (st = marked_sentence(r, obj, 2, &ex.text_b)) ||
        (st = task_get_label(r, obj, "label", NULL, TASK_WIC, TASK_LABEL_BOOL, &ex.label)) ||
        (st = task_get_idx(r, obj, &ex.idx)))
        goto fail;
    if (!(ex.text_a = task_concat3(word, ": ", s1))) {
        st = task_rec_nomem(r);
        goto fail;
    }
    free(s1);
    return task_builder_add(b, r, &ex, 1);
fail:
    free(s1);
    task_example_free(&ex);
    return st;
}
