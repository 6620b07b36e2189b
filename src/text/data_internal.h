/* Internals of the instruction-data layer shared by template.c, dataset*.c, batcher.c and
 * token_seq.c: growable token sequences, the seeded PRNG, the streaming JSON record scanner, and
 * template rendering into (prompt, response) pairs for truncation. */
#ifndef BADAM_TEXT_DATA_INTERNAL_H
#define BADAM_TEXT_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "badam/data.h"

/* ---------------------------------------------------------------- token sequences */

badam_status token_seq_reserve(token_seq *s, size_t n, badam_error *err);
badam_status token_seq_push(token_seq *s, int32_t id, int trained, badam_error *err);
badam_status token_seq_append(token_seq *s, const int32_t *ids, size_t n, int trained,
                              badam_error *err);
size_t token_seq_trained_count(const token_seq *s);

/* ---------------------------------------------------------------- tokenizer and templates */

/* Why the tokenizer has no EOS although tokenizer_config.json names one ("FILE: eos_token 'X'
 * is not a token of TOKENIZER.json"), or NULL (tokenizer.c). */
const char *tokenizer_eos_problem(const badam_tokenizer *tok);
/* 1 when the template (by name) ends responses with the tokenizer's EOS token (template.c). */
int template_uses_eos(const char *name);

/* ---------------------------------------------------------------- PRNG */

/* splitmix64 (Steele, Lea, Flood 2014; the seeding generator of xoshiro): state += golden gamma,
 * then two xor-shift-multiply rounds. Every shuffle in this layer draws from it, so a (seed,
 * epoch) pair fixes an order exactly across runs and machines. */
static inline uint64_t data_rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A generator state for stream `stream` (e.g. the epoch) of `seed`. */
static inline uint64_t data_rng_seed(uint64_t seed, uint64_t stream) {
    uint64_t s = seed;
    uint64_t a = data_rng_next(&s);
    s = a ^ (stream * 0xD1B54A32D192ED03ull);
    (void)data_rng_next(&s);
    return s;
}

/* Uniform integer in [0, n), n >= 1, without modulo bias (rejection of the short last range). */
static inline uint64_t data_rng_below(uint64_t *state, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = data_rng_next(state);
    while (x >= limit);
    return x % n;
}

/* Fisher-Yates shuffle (Durstenfeld): for i = n-1 .. 1, swap a[i] with a[j], j uniform in [0, i].
 */
void data_shuffle(size_t *a, size_t n, uint64_t *state);

/* ---------------------------------------------------------------- record scanner */

/* Streams the top-level records of a JSON array file ("[{...}, {...}]") or a JSON-lines file
 * (values separated by whitespace, normally one per line), never holding more than one record in
 * memory. It only finds each record's byte range (honouring strings and escapes); the caller parses
 * the record. A record longer than DATA_MAX_RECORD_BYTES is an error. Only regular files are
 * opened (io_open_regular). Every error names the file and a byte offset. */
#define DATA_MAX_RECORD_BYTES ((size_t)16 << 20)

typedef struct data_scanner data_scanner;

badam_status data_scanner_open(const char *path, data_scanner **out, badam_error *err);
/* The next record's text (valid until the next call) and its 1-based starting line; *text is NULL
 * at the end of the file. Errors name the file and the record index. */
badam_status data_scanner_next(data_scanner *sc, const char **text, size_t *len, size_t *line,
                               badam_error *err);
/* Byte offset (0-based, in the file) of the first byte of the record last returned. */
size_t data_scanner_record_offset(const data_scanner *sc);
/* 1 when the file is a JSON array, 0 for JSON lines (known after open). */
int data_scanner_is_array(const data_scanner *sc);
void data_scanner_close(data_scanner *sc);

/* ---------------------------------------------------------------- templates */

/* One (prompt, response) pair of a rendered conversation: the rendered sequence is the
 * concatenation, over the pairs, of source_len prompt tokens then target_len response tokens
 * (target_len is 0 for a final generation prompt). */
typedef struct template_pair {
    size_t source_len, target_len;
} template_pair;

/* template_render that also reports the pairs (*pairs malloc'd, *n_pairs of them); the system
 * text, when not NULL, is system_len bytes (it may hold U+0000, as a dataset's strings may). */
badam_status template_render_pairs(const char *name, const badam_tokenizer *tok,
                                   const chat_turn *turns, size_t n_turns, const char *system,
                                   size_t system_len, int add_generation_prompt, token_seq *out,
                                   template_pair **pairs, size_t *n_pairs, badam_error *err);

/* LLaMA-Factory's infer_seqlen (src/llamafactory/data/processor/processor_utils.py): how many
 * of source_len prompt and target_len response tokens to keep within cutoff_len. */
void data_infer_seqlen(size_t source_len, size_t target_len, size_t cutoff_len, size_t *source_keep,
                       size_t *target_keep);

/* Truncates a rendered sequence to at most seq_len tokens, pair by pair as LLaMA-Factory does:
 * each pair gets infer_seqlen(source, target, budget left); a prompt keeps its last tokens (the
 * start is cut), a response its first tokens (the end is cut); pairs past the budget are dropped.
 * Returns 1 when anything was cut. */
int data_truncate_pairs(token_seq *seq, const template_pair *pairs, size_t n_pairs, size_t seq_len);

#endif
