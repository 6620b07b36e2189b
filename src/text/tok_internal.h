/* Internal building blocks of the tokenizer (src/text/tokenizer.c): byte buffers, UTF-8
 * helpers, hash maps, the regex/literal pattern, and one struct per tokenizer.json component
 * family (normalizers, pre-tokenizers, the BPE model, added tokens, decoders, post-processors).
 *
 * Semantics follow the Rust `tokenizers` crate (what transformers uses); where tokenizers.js
 * differs from it, the difference is named next to the component. Every function that can fail
 * returns a badam_status and fills err; parse errors name the file and the JSON path. */
#ifndef BADAM_TEXT_TOK_INTERNAL_H
#define BADAM_TEXT_TOK_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "badam/status.h"

/* ---------------------------------------------------------------- id bounds */

/* Token ids read from tokenizer.json size the id tables (one entry per id up to the largest),
 * so they are checked before use: every id is below TOK_MAX_ID (2^24; real vocabularies have
 * at most a few hundred thousand tokens), and the largest id is below twice the number of
 * tokens that have ids plus TOK_ID_SLACK, so the tables grow with the file, never with one
 * number in it. */
#define TOK_MAX_ID (1 << 24)
#define TOK_ID_SLACK 65536

/* 0 when a table of max_id + 1 entries is too sparse for n_ids tokens (see above). */
static inline int tok_ids_dense_enough(int64_t max_id, size_t n_ids) {
    return max_id < 2 * (int64_t)n_ids + TOK_ID_SLACK;
}

/* ---------------------------------------------------------------- byte buffers and lists */

typedef struct tok_buf {
    char *data;
    size_t len, cap;
} tok_buf;

/* Both leave b->data non-NULL, even for 0 bytes: offsets into a buffer that was reserved or
 * appended to are never offsets from a null pointer (undefined behaviour, even + 0). */
badam_status tok_buf_reserve(tok_buf *b, size_t extra, badam_error *err);
badam_status tok_buf_append(tok_buf *b, const void *p, size_t n, badam_error *err);
void tok_buf_free(tok_buf *b);

/* A list of strings kept in one arena. `flag` is per-string metadata: for pre-tokenizer pieces,
 * 1 when the piece starts at offset 0 of the original input (Metaspace prepend_scheme "first");
 * for decoder token lists, 1 when the token is an added token. */
typedef struct tok_item {
    size_t off, len;
    int flag;
} tok_item;

typedef struct tok_list {
    tok_buf text;
    tok_item *items;
    size_t n, cap;
} tok_list;

badam_status tok_list_push(tok_list *l, const char *s, size_t n, int flag, badam_error *err);
/* Starts a new item at the end of the arena; bytes appended to l->text after it extend it. */
badam_status tok_list_begin(tok_list *l, int flag, badam_error *err);
void tok_list_end(tok_list *l); /* closes the item begun last: its length is the bytes since */
/* Item i's bytes (i < l->n: a list with items has an arena, pushed or begun). */
static inline const char *tok_list_str(const tok_list *l, size_t i) {
    return l->text.data + l->items[i].off;
}
void tok_list_clear(tok_list *l);
void tok_list_free(tok_list *l);

typedef struct tok_ids {
    int32_t *data;
    size_t n, cap;
} tok_ids;
/* Like tok_buf: data is non-NULL after either call, even when 0 ids were appended. */
badam_status tok_ids_push(tok_ids *v, int32_t id, badam_error *err);
badam_status tok_ids_append(tok_ids *v, const int32_t *ids, size_t n, badam_error *err);

/* A span of a string; `match` says whether it was matched by a pattern (or, for added-token
 * splits, the added-token index; -1 for text). */
typedef struct tok_span {
    size_t start, end;
    int match;
} tok_span;
typedef struct tok_spans {
    tok_span *data;
    size_t n, cap;
} tok_spans;
badam_status tok_spans_push(tok_spans *v, size_t start, size_t end, int match, badam_error *err);

/* ---------------------------------------------------------------- UTF-8 and Unicode */

/* Decodes one code point of valid UTF-8 at s (n > 0 bytes left); returns its length. */
int tok_utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Encodes cp into out (4 bytes of room); returns its length. */
int tok_utf8_encode(uint32_t cp, char *out);
/* Length of the longest prefix of s that is valid UTF-8. */
size_t tok_utf8_valid_prefix(const char *s, size_t n);
/* Appends s to out, replacing each maximal invalid subsequence with U+FFFD (the WHATWG
 * Encoding Standard's decoder, which is also Rust's String::from_utf8_lossy and Node's
 * TextDecoder). */
badam_status tok_utf8_append_lossy(tok_buf *out, const char *s, size_t n, badam_error *err);

int tok_is_whitespace(uint32_t cp);  /* Unicode White_Space (Rust char::is_whitespace) */
int tok_is_numeric(uint32_t cp);     /* general category Nd, Nl or No (char::is_numeric) */
int tok_is_punctuation(uint32_t cp); /* ASCII punctuation or general category P* */

/* GPT-2's byte <-> printable-character map: bytes 33-126, 161-172 and 174-255 stand for
 * themselves; the other 68 bytes, in order, for U+0100..U+0143. */
static inline uint32_t tok_bytelevel_cp(uint8_t b) {
    if (b <= 32) return 256u + b;
    if (b >= 127 && b <= 160) return (uint32_t)b + 162u;
    if (b == 173) return 323u;
    return b;
}
/* Writes the UTF-8 of byte b's character (1 or 2 bytes) to out; returns its length. */
static inline int tok_bytelevel_encode(uint8_t b, char *out) {
    uint32_t cp = tok_bytelevel_cp(b);
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}
/* The byte a code point stands for, or -1. */
static inline int tok_bytelevel_byte(uint32_t cp) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255))
        return (int)cp;
    if (cp >= 256 && cp <= 288) return (int)(cp - 256);
    if (cp >= 289 && cp <= 322) return (int)(cp - 162);
    if (cp == 323) return 173;
    return -1;
}

/* ---------------------------------------------------------------- hash maps */

uint64_t tok_hash(const void *p, size_t n);

/* String -> int32 (vocabulary). Keys are copied into an arena owned by the map. */
typedef struct tok_strmap {
    uint32_t *slots; /* entry index + 1; 0 = empty */
    size_t mask;
    struct tok_strmap_entry {
        uint64_t hash;
        size_t off;
        uint32_t len;
        int32_t value;
    } * entries;
    size_t n, cap;
    tok_buf keys;
} tok_strmap;
badam_status tok_strmap_init(tok_strmap *m, size_t expected, badam_error *err);
/* Inserts or overwrites. */
badam_status tok_strmap_put(tok_strmap *m, const char *key, size_t len, int32_t value,
                            badam_error *err);
/* The value, or -1. */
int32_t tok_strmap_get(const tok_strmap *m, const char *key, size_t len);
void tok_strmap_free(tok_strmap *m);

/* (id, id) -> (rank, new id): the BPE merges. */
typedef struct tok_pairmap {
    uint64_t *keys; /* (a << 32 | b) + 1; 0 = empty */
    int32_t *rank, *new_id;
    size_t mask, n;
} tok_pairmap;
badam_status tok_pairmap_init(tok_pairmap *m, size_t expected, badam_error *err);
void tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t new_id);
/* 1 and (rank, new id) when the pair merges. */
int tok_pairmap_get(const tok_pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *new_id);
void tok_pairmap_free(tok_pairmap *m);

/* ---------------------------------------------------------------- per-call scratch */

/* Everything one encode/decode call mutates, so one tokenizer can be used from many threads. */
typedef struct tok_ctx {
    void *match_data; /* pcre2_match_data_8 *, created lazily */
    tok_spans spans, spans2;
    tok_buf buf1, buf2, buf3;
    tok_list lists[2];
    /* BPE word scratch */
    struct tok_symbol *symbols;
    size_t symbols_cap;
    struct tok_merge_cand *heap;
    size_t heap_cap;
    tok_ids word_ids;
} tok_ctx;
void tok_ctx_free(tok_ctx *ctx);

/* ---------------------------------------------------------------- patterns */

/* A `pattern` of tokenizer.json: {"String": "..."} (literal) or {"Regex": "..."} (Oniguruma
 * syntax, compiled with PCRE2 after rewriting \s \d \w \h \b to Oniguruma's meanings). */
typedef struct tok_pattern {
    int is_regex;
    char *literal;
    size_t literal_len;
    void *code; /* pcre2_code_8 * */
} tok_pattern;

/* Compiles a regex in Oniguruma syntax (as Rust tokenizers does); `what` names it in errors. */
badam_status tok_regex_compile(const char *onig, const char *what, void **code, badam_error *err);
/* The same for a pattern of onig_len bytes (from JSON: it may hold U+0000). */
badam_status tok_regex_compile_n(const char *onig, size_t onig_len, const char *what, void **code,
                                 badam_error *err);
void tok_regex_free(void *code);
badam_status tok_pattern_parse(const json_t *j, const char *file, const char *path,
                               tok_pattern *out, badam_error *err);
void tok_pattern_free(tok_pattern *p);
/* Appends the matches of p in s (non-overlapping, left to right; regex iteration as Rust's onig
 * find_iter: an empty match right after the previous match is skipped) with match = 1. */
badam_status tok_regex_find(const void *code, const char *s, size_t n, tok_spans *out, tok_ctx *ctx,
                            badam_error *err);
badam_status tok_pattern_find(const tok_pattern *p, const char *s, size_t n, tok_spans *out,
                              tok_ctx *ctx, badam_error *err);
/* Rust's Pattern::find_matches: spans covering all of s, each flagged match (1) or not (0). */
badam_status tok_pattern_segments(const tok_pattern *p, const char *s, size_t n, tok_spans *out,
                                  tok_ctx *ctx, badam_error *err);
/* Replaces every match of p in s with content, appending to out. */
badam_status tok_pattern_replace(const tok_pattern *p, const char *s, size_t n, const char *content,
                                 size_t content_len, tok_buf *out, tok_ctx *ctx, badam_error *err);

/* ---------------------------------------------------------------- normalizers */

typedef enum tok_norm_kind {
    TOK_NORM_SEQUENCE,
    TOK_NORM_PREPEND,
    TOK_NORM_REPLACE,
    TOK_NORM_NFC,
    TOK_NORM_NFD,
    TOK_NORM_NFKC,
    TOK_NORM_NFKD,
    TOK_NORM_LOWERCASE,
    TOK_NORM_STRIP,
    TOK_NORM_STRIP_ACCENTS,
    TOK_NORM_BYTE_LEVEL,
    TOK_NORM_BERT,
} tok_norm_kind;

typedef struct tok_normalizer {
    tok_norm_kind kind;
    struct tok_normalizer **children;
    size_t n_children;
    char *content; /* Prepend's prepend, Replace's content */
    size_t content_len;
    tok_pattern pattern;
    int strip_left, strip_right;
    /* BertNormalizer: strip_accents is -1 for null (then it follows lowercase) */
    int clean_text, handle_chinese_chars, strip_accents, lowercase;
} tok_normalizer;

badam_status tok_normalizer_parse(const json_t *j, const char *file, const char *path,
                                  tok_normalizer **out, badam_error *err);
/* Normalizes s into out (out is cleared first). */
badam_status tok_normalizer_apply(const tok_normalizer *nm, const char *s, size_t n, tok_buf *out,
                                  tok_ctx *ctx, badam_error *err);
void tok_normalizer_free(tok_normalizer *nm);
/* BertNormalizer (src/text/tok_bert_norm.c): parses its fields into nm / normalizes s into out. */
badam_status tok_bert_norm_parse(const json_t *j, const char *file, const char *path,
                                 tok_normalizer *nm, badam_error *err);
badam_status tok_bert_norm_apply(const tok_normalizer *nm, const char *s, size_t n, tok_buf *out,
                                 badam_error *err);
/* Pieces of the normalizers that BertNormalizer reuses (src/text/tok_normalizer.c). */
badam_status tok_norm_nfd(const char *s, size_t n, tok_buf *out, badam_error *err);
badam_status tok_norm_lowercase(const char *s, size_t n, tok_buf *out, badam_error *err);
badam_status tok_norm_strip_accents(const char *s, size_t n, tok_buf *out, badam_error *err);

/* ---------------------------------------------------------------- pre-tokenizers */

typedef enum tok_behavior {
    TOK_REMOVED,
    TOK_ISOLATED,
    TOK_MERGED_WITH_PREVIOUS,
    TOK_MERGED_WITH_NEXT,
    TOK_CONTIGUOUS,
} tok_behavior;

typedef enum tok_pre_kind {
    TOK_PRE_SEQUENCE,
    TOK_PRE_SPLIT,
    TOK_PRE_BYTE_LEVEL,
    TOK_PRE_METASPACE,
    TOK_PRE_DIGITS,
    TOK_PRE_WHITESPACE,
    TOK_PRE_WHITESPACE_SPLIT,
    TOK_PRE_PUNCTUATION,
    TOK_PRE_BERT,
    TOK_PRE_CHAR_DELIMITER,
} tok_pre_kind;

typedef enum tok_prepend_scheme {
    TOK_PREPEND_ALWAYS,
    TOK_PREPEND_FIRST,
    TOK_PREPEND_NEVER
} tok_prepend_scheme;

typedef struct tok_pretok {
    tok_pre_kind kind;
    struct tok_pretok **children;
    size_t n_children;
    tok_pattern pattern; /* Split; Whitespace and ByteLevel keep their regex here */
    tok_behavior behavior;
    int invert;
    int add_prefix_space, use_regex; /* ByteLevel */
    char replacement[8];             /* Metaspace (UTF-8 of one char) */
    size_t replacement_len;
    uint32_t replacement_cp;
    tok_prepend_scheme prepend_scheme;
    int split;
    int individual_digits;
    uint32_t delimiter; /* CharDelimiterSplit */
} tok_pretok;

badam_status tok_pretok_parse(const json_t *j, const char *file, const char *path, tok_pretok **out,
                              badam_error *err);
/* Pre-tokenizes every piece of *in; the result is left in *in (the lists are swapped). */
badam_status tok_pretok_apply(const tok_pretok *p, tok_list **in, tok_list **spare, tok_ctx *ctx,
                              badam_error *err);
void tok_pretok_free(tok_pretok *p);
/* Applies a split behavior to segments (Rust's NormalizedString::split); appends the kept
 * pieces of s to out, the first inheriting at_start when it begins at offset 0. */
badam_status tok_split_apply(const char *s, const tok_spans *segs, tok_behavior behavior,
                             int at_start, tok_list *out, badam_error *err);

/* ---------------------------------------------------------------- models: BPE and WordPiece */

#define TOK_CACHE_SLOTS 16384
#define TOK_CACHE_LOCKS 64
#define TOK_CACHE_MAX_KEY 256

typedef struct tok_cache_entry {
    uint64_t hash;
    char *key;
    uint32_t key_len;
    int32_t *ids;
    uint32_t n_ids;
} tok_cache_entry;

/* The model of tokenizer.json. BPE, or WordPiece (is_wordpiece: vocab, unk_token, prefix =
 * continuing_subword_prefix and max_chars = max_input_chars_per_word are used; no merges). */
typedef struct tok_bpe {
    int is_wordpiece;
    int max_chars;
    tok_strmap vocab;
    int32_t vocab_max;   /* largest id in vocab */
    char **id_to_token;  /* vocab_max + 1 entries (NULL for holes); point into vocab's arena */
    uint32_t *id_to_len; /* their lengths (a token may hold U+0000) */
    tok_pairmap merges;
    int byte_fallback;
    int32_t byte_ids[256]; /* "<0xXX>" ids, -1 when missing */
    char *unk_token;
    int fuse_unk, ignore_merges;
    char *prefix, *suffix; /* continuing_subword_prefix, end_of_word_suffix (NULL = none) */
    size_t prefix_len, suffix_len;
    tok_cache_entry *cache;
    pthread_mutex_t cache_locks[TOK_CACHE_LOCKS];
    int cache_ready;
} tok_bpe;

badam_status tok_bpe_parse(const json_t *model, const char *file, tok_bpe *bpe, badam_error *err);
/* 1 when model (a tokenizer.json model object) is WordPiece: "type": "WordPiece", or, in the
 * older layout without "type", a vocabulary object with continuing_subword_prefix and unk_token
 * but no merges (the rule of tokenizers.js; Rust tries BPE, then WordPiece). */
int tok_model_is_wordpiece(const json_t *model);
/* WordPiece's fields (src/text/tok_wordpiece.c), after the vocabulary was read into bpe. */
badam_status tok_wordpiece_parse(const json_t *model, const char *file, tok_bpe *bpe,
                                 badam_error *err);
/* WordPiece on one word (greedy longest-match-first; unk_token for the whole word when a part
 * has no match or the word has more than max_chars characters), appending ids. */
badam_status tok_wordpiece_encode_word(const tok_bpe *wp, const char *w, size_t n, tok_ids *out,
                                       tok_ctx *ctx, badam_error *err);
/* Encodes one pre-token (a "word"), appending ids. */
badam_status tok_bpe_encode_word(const tok_bpe *bpe, const char *w, size_t n, tok_ids *out,
                                 tok_ctx *ctx, badam_error *err);
void tok_bpe_free(tok_bpe *bpe);

/* ---------------------------------------------------------------- added tokens */

typedef struct tok_added {
    char *content;
    size_t len;
    int32_t id;
    int special, normalized, lstrip, rstrip, single_word;
} tok_added;

/* A byte trie over added-token contents: leftmost-longest matching. */
typedef struct tok_trie {
    struct tok_trie_node {
        int32_t child, sibling; /* first child, next sibling; -1 = none */
        int32_t token;          /* index into the added-token array, -1 = none */
        uint8_t byte;
    } * nodes;
    size_t n, cap;
    int32_t root_child[256]; /* children of the root, by first byte */
} tok_trie;

badam_status tok_trie_init(tok_trie *t, badam_error *err);
badam_status tok_trie_add(tok_trie *t, const char *s, size_t n, int32_t token, badam_error *err);
void tok_trie_free(tok_trie *t);
/* Rust's AddedVocabulary::find_matches: spans covering s; match = added-token index or -1. */
/* word_re: a compiled one-character regex for Rust's \w, needed when a token is single_word. */
badam_status tok_added_split(const tok_trie *t, const tok_added *tokens, const void *word_re,
                             const char *s, size_t n, tok_spans *out, tok_ctx *ctx,
                             badam_error *err);

/* ---------------------------------------------------------------- decoders */

typedef enum tok_dec_kind {
    TOK_DEC_SEQUENCE,
    TOK_DEC_BYTE_LEVEL,
    TOK_DEC_REPLACE,
    TOK_DEC_BYTE_FALLBACK,
    TOK_DEC_FUSE,
    TOK_DEC_STRIP,
    TOK_DEC_METASPACE,
    TOK_DEC_BPE,
    TOK_DEC_WORDPIECE,
} tok_dec_kind;

typedef struct tok_decoder {
    tok_dec_kind kind;
    struct tok_decoder **children;
    size_t n_children;
    tok_pattern pattern; /* Replace */
    char *content;       /* Replace's content; BPEDecoder's suffix; WordPiece's prefix */
    size_t content_len;
    uint32_t strip_cp; /* Strip's content char */
    int strip_start, strip_stop;
    uint32_t replacement_cp; /* Metaspace */
    tok_prepend_scheme prepend_scheme;
    int cleanup; /* WordPiece (its prefix is in content) */
} tok_decoder;

badam_status tok_decoder_parse(const json_t *j, const char *file, const char *path,
                               tok_decoder **out, badam_error *err);
/* Runs the decoder chain over the token strings in *in; the result is left in *in. */
badam_status tok_decoder_apply(const tok_decoder *d, tok_list **in, tok_list **spare, tok_ctx *ctx,
                               badam_error *err);
void tok_decoder_free(tok_decoder *d);
/* The WordPiece decoder (src/text/tok_wordpiece.c): its fields, and one decode step over in. */
badam_status tok_wordpiece_decoder_parse(const json_t *j, const char *file, const char *path,
                                         tok_decoder *d, badam_error *err);
badam_status tok_wordpiece_decode(const tok_decoder *d, const tok_list *in, tok_list *out,
                                  badam_error *err);

/* ---------------------------------------------------------------- post-processors */

typedef enum tok_post_kind {
    TOK_POST_TEMPLATE,
    TOK_POST_BYTE_LEVEL,
    TOK_POST_SEQUENCE,
    TOK_POST_CLS_SEP, /* BertProcessing [CLS] A [SEP] B [SEP]; RobertaProcessing (roberta = 1)
                         <s> A </s></s> B </s> */
} tok_post_kind;

/* One piece of a TemplateProcessing template: a sequence (seq 0 = A, 1 = B) or special-token
 * ids, with the type id its tokens get. */
typedef struct tok_post_item {
    int is_sequence, seq, type_id;
    int32_t *ids;
    size_t n_ids;
} tok_post_item;

typedef struct tok_post {
    tok_post_kind kind;
    struct tok_post **children;
    size_t n_children;
    tok_post_item *items, *pair_items; /* the "single" and "pair" templates */
    size_t n_items, n_pair_items;
    int has_pair;
    int32_t cls, sep;
    int roberta;
} tok_post;

badam_status tok_post_parse(const json_t *j, const char *file, const char *path, tok_post **out,
                            badam_error *err);
void tok_post_free(tok_post *p);
/* Rewrites ids (a single sequence) with the special tokens the post-processor adds. */
badam_status tok_post_apply(const tok_post *p, tok_ids *ids, badam_error *err);
/* The first special token before (after = 0) or after (1) the sequence: BOS / EOS fallback. */
int32_t tok_post_special(const tok_post *p, int after);
/* The number of special tokens the post-processor adds to a single sequence or a pair (Rust's
 * PostProcessor::added_tokens). */
size_t tok_post_added(const tok_post *p, int pair);
/* The post-processor on sequence a and, when b is not NULL, the pair (a, b): ids and their type
 * ids appended to *ids and *types (Rust's process_encodings: a has type 0 and b type 1 before
 * it runs; with add_special 0 only the sequences' type ids change). p may be NULL. */
badam_status tok_post_encode(const tok_post *p, const tok_ids *a, const tok_ids *b, int add_special,
                             tok_ids *ids, tok_ids *types, badam_error *err);

/* ---------------------------------------------------------------- the tokenizer (tokenizer.c) */

struct badam_tokenizer;
/* Steps 1-4 of tokenizer_encode (no post-processor): appends the ids of text to *ids. */
badam_status tok_encode_text(const struct badam_tokenizer *tok, const char *text, size_t len,
                             tok_ids *ids, badam_error *err);
/* The tokenizer's post-processor, or NULL. */
const tok_post *tok_tokenizer_post(const struct badam_tokenizer *tok);

/* ---------------------------------------------------------------- JSON helpers */

/* Optional string/bool/int fields of a component object (absent or null: *out unchanged). A
 * string's length goes to *len; with len NULL the string is a name used as a C string, and one
 * holding U+0000 is an error (it would compare equal to its prefix). */
badam_status tok_json_str(const json_t *obj, const char *field, int required, const char **out,
                          size_t *len, const char *file, const char *path, badam_error *err);
badam_status tok_json_bool(const json_t *obj, const char *field, int *out, const char *file,
                           const char *path, badam_error *err);
badam_status tok_json_int(const json_t *obj, const char *field, int *out, const char *file,
                          const char *path, badam_error *err);
/* A tokenizer.json component: checks j is an object and reads its required "type". */
badam_status tok_json_component_type(const json_t *j, const char **type, const char *file,
                                     const char *path, badam_error *err);
/* A string holding exactly one character (Metaspace replacement, Strip content, ...). */
badam_status tok_json_char(const json_t *obj, const char *field, uint32_t *cp, const char *file,
                           const char *path, badam_error *err);
char *tok_strndup(const char *s, size_t n);

#endif
