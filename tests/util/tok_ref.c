/* Helpers of the tokenizer parity tests (tok_ref.h). */
#include "tok_ref.h"

#include <stdio.h>
#include <string.h>

size_t tok_ref_b64_decode(const char *in, unsigned char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (const char *p = in; *p && *p != '='; p++) {
        const char *k = strchr(tab, *p);
        if (!k) continue;
        acc = (acc << 6) | (uint32_t)(k - tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n;
}

int tok_ref_ids_equal(const json_t *arr, const int32_t *ids, size_t n) {
    if (!json_is_array(arr) || (size_t)json_array_size(arr) != n) return 0;
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v) {
        if (!json_is_integer(v) || json_integer_value(v) != ids[i]) return 0;
    }
    return 1;
}

void tok_ref_print_ids(const char *what, const int32_t *ids, size_t n, size_t most) {
    fprintf(stderr, "    %s (%zu):", what, n);
    for (size_t i = 0; i < n && i < most; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > most ? " ...\n" : "\n");
}
