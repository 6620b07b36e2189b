/* Helpers of the tokenizer parity tests, which read reference ids and texts from JSON written by
 * the tokenizers.js scripts under tests/tokenizer/. */
#ifndef BADAM_TESTS_TOK_REF_H
#define BADAM_TESTS_TOK_REF_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Decodes standard base64 text `in` (stops at the first '=' or the end; skips characters
 * outside the alphabet) into out, which must hold 3/4 of strlen(in) bytes; returns the bytes. */
size_t tok_ref_b64_decode(const char *in, unsigned char *out);

/* 1 when arr is a JSON array of exactly n integers equal to ids[0..n), else 0. */
int tok_ref_ids_equal(const json_t *arr, const int32_t *ids, size_t n);

/* Prints "    what (n): id id ..." to stderr, at most `most` ids (then " ..."). */
void tok_ref_print_ids(const char *what, const int32_t *ids, size_t n, size_t most);

#endif
