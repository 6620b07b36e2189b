/* The BPE model of tokenizer.json (Rust tokenizers' models::bpe).
 *
 * A word is split into characters (the first keeps its form; later ones get
 * continuing_subword_prefix; the last gets end_of_word_suffix). Characters missing from the
 * vocabulary become their "<0xXX>" byte tokens (byte_fallback) or the unknown token (runs of
 * them fused into one when fuse_unk). Then, repeatedly, the adjacent pair with the lowest merge
 * rank is merged (the leftmost one among equal ranks) until no pair has a merge:
 *
 *   while some adjacent pair (x, y) is in merges: merge the (rank, position)-smallest pair
 *
 * done with a min-heap of candidate merges keyed (rank, position) over a linked list of symbols,
 * O(n log n) per word; stale heap entries are skipped when popped. With ignore_merges a word
 * that is itself in the vocabulary is one token. Results for words under 256 bytes are cached
 * in a table shared by all threads (direct-mapped slots under striped mutexes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_get.h"
#include "text/tok_internal.h"

typedef struct tok_symbol {
    int32_t id;
    int32_t prev, next;
    int alive;
} tok_symbol;

typedef struct tok_merge_cand {
    uint64_t key; /* rank << 32 | position: smaller pops first */
    int32_t new_id;
} tok_merge_cand;

/* ---------------------------------------------------------------- loading */

static badam_status bpe_str_field(const json_t *model, const char *field, char **out, size_t *len,
                                  const char *file, badam_error *err) {
    const char *s = NULL;
    size_t n = 0;
    badam_status st = tok_json_str(model, field, 0, &s, &n, file, "model", err);
    if (st || !s || !n) return st; /* "" means none (Qwen writes that) */
    *len = n;
    *out = tok_strndup(s, *len);
    return *out ? BADAM_OK : badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
}

static badam_status parse_merges(const json_t *merges, const char *file, tok_bpe *bpe,
                                 badam_error *err) {
    size_t n = (size_t)json_array_size(merges);
    badam_status st = tok_pairmap_init(&bpe->merges, n, err);
    if (st) return st;
    tok_buf tmp = {0};
    size_t rank = 0;
    const json_t *m;
    size_t index;
    json_array_foreach(merges, index, m) {
        const char *a, *b;
        size_t a_len, b_len;
        if (json_is_string(m)) {
            const char *s = json_string_value(m);
            size_t len = json_string_length(m);
            const char *sp = memchr(s, ' ', len);
            if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s))) {
                st = badam_fail(err, BADAM_E_FORMAT,
                                "%s: model.merges[%zu]: expected two tokens separated by one "
                                "space, got \"%s\"",
                                file, rank, s);
                break;
            }
            a = s;
            a_len = (size_t)(sp - s);
            b = sp + 1;
            b_len = len - a_len - 1;
        } else if (json_is_array(m) && json_array_size(m) == 2 &&
                   json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            a_len = json_string_length(json_array_get(m, 0));
            b_len = json_string_length(json_array_get(m, 1));
        } else {
            st =
                badam_fail(err, BADAM_E_FORMAT,
                           "%s: model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", file, rank);
            break;
        }
        int32_t ia = tok_strmap_get(&bpe->vocab, a, a_len);
        int32_t ib = tok_strmap_get(&bpe->vocab, b, b_len);
        if (ia < 0 || ib < 0) {
            st = badam_fail(err, BADAM_E_FORMAT,
                            "%s: model.merges[%zu]: token \"%.*s\" is not in the vocabulary", file,
                            rank, ia < 0 ? (int)a_len : (int)b_len, ia < 0 ? a : b);
            break;
        }
        const char *b_rest = b;
        size_t b_rest_len = b_len;
        if (bpe->prefix && b_len >= bpe->prefix_len && !memcmp(b, bpe->prefix, bpe->prefix_len)) {
            b_rest += bpe->prefix_len;
            b_rest_len -= bpe->prefix_len;
        }
        tmp.len = 0;
        if ((st = tok_buf_append(&tmp, a, a_len, err)) ||
            (st = tok_buf_append(&tmp, b_rest, b_rest_len, err)))
            break;
        int32_t inew = tok_strmap_get(&bpe->vocab, tmp.data, tmp.len);
        if (inew < 0) {
            st = badam_fail(err, BADAM_E_FORMAT,
                            "%s: model.merges[%zu]: merged token \"%.*s\" is not in the vocabulary",
                            file, rank, (int)tmp.len, tmp.data);
            break;
        }
        tok_pairmap_put(&bpe->merges, ia, ib, (int32_t)rank, inew);
        rank++;
    }
    tok_buf_free(&tmp);
    return st;
}

/* The model object's type (BPE or WordPiece), vocab, merges and dropout (none): *vocab and *merges.
 */
static badam_status check_model(const json_t *model, const char *file, const json_t **vocab,
                                const json_t **merges, badam_error *err) {
    if (!json_is_object(model))
        return badam_fail(err, BADAM_E_FORMAT, "%s: model: expected an object", file);
    const char *type = NULL;
    badam_status st = tok_json_str(model, "type", 0, &type, NULL, file, "model", err);
    if (st) return st;
    *vocab = json_object_get(model, "vocab");
    *merges = json_object_get(model, "merges");
    int wordpiece = tok_model_is_wordpiece(model);
    if (!wordpiece && (type ? strcmp(type, "BPE") != 0 : !*merges))
        return badam_fail(
            err, BADAM_E_UNSUPPORTED,
            "%s: model: unsupported model type '%s' (BPE and WordPiece are supported)", file,
            type ? type : (json_is_array(*vocab) ? "Unigram" : "WordLevel"));
    if (!json_is_object(*vocab))
        return badam_fail(err, BADAM_E_FORMAT, "%s: model.vocab: expected an object", file);
    if (wordpiece) return BADAM_OK;
    if (!json_is_array(*merges))
        return badam_fail(err, BADAM_E_FORMAT, "%s: model.merges: expected an array", file);
    const json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) &&
        !(json_is_number(dropout) && json_number_value(dropout) == 0))
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "%s: model.dropout: BPE dropout is not supported", file);
    return BADAM_OK;
}

/* The id -> token tables from the vocabulary map (each id used once). */
static badam_status index_ids(const char *file, tok_bpe *bpe, badam_error *err) {
    if (bpe->vocab_max < 0) return BADAM_OK;
    bpe->id_to_token = calloc((size_t)bpe->vocab_max + 1, sizeof *bpe->id_to_token);
    bpe->id_to_len = calloc((size_t)bpe->vocab_max + 1, sizeof *bpe->id_to_len);
    if (!bpe->id_to_token || !bpe->id_to_len)
        return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    for (size_t e = 0; e < bpe->vocab.n; e++) {
        const struct tok_strmap_entry *en = &bpe->vocab.entries[e];
        if (bpe->id_to_token[en->value])
            return badam_fail(err, BADAM_E_FORMAT,
                              "%s: model.vocab: id %d is used by two tokens (\"%s\" and \"%s\")",
                              file, en->value, bpe->id_to_token[en->value],
                              bpe->vocab.keys.data + en->off);
        bpe->id_to_token[en->value] = bpe->vocab.keys.data + en->off;
        bpe->id_to_len[en->value] = en->len;
    }
    return BADAM_OK;
}

/* model.vocab: token -> id map, the largest id, the id -> token tables and the byte tokens. */
static badam_status parse_vocab(const json_t *vocab, const char *file, tok_bpe *bpe,
                                badam_error *err) {
    size_t n_vocab = json_object_size(vocab);
    badam_status st = tok_strmap_init(&bpe->vocab, n_vocab, err);
    if (st) return st;
    bpe->vocab_max = -1;
    const char *key;
    size_t key_len;
    json_t *v;
    /* keys carry their length: a token may hold U+0000 ("\u0000") */
    json_object_keylen_foreach((json_t *)vocab, key, key_len, v) {
        long long id64;
        if (!json_int_in_range(v, 0, TOK_MAX_ID - 1, &id64))
            return badam_fail(err, BADAM_E_FORMAT,
                              "%s: model.vocab[\"%s\"]: expected an integer id in [0, %d]", file,
                              key, TOK_MAX_ID - 1);
        int32_t id = (int32_t)id64;
        if ((st = tok_strmap_put(&bpe->vocab, key, key_len, id, err))) return st;
        if (id > bpe->vocab_max) bpe->vocab_max = id;
    }
    if (!tok_ids_dense_enough(bpe->vocab_max, n_vocab))
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: model.vocab: the largest id is %d but there are only %zu tokens "
                          "(ids must be about 0 .. number of tokens - 1)",
                          file, bpe->vocab_max, n_vocab);
    if ((st = index_ids(file, bpe, err))) return st;
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        bpe->byte_ids[b] = tok_strmap_get(&bpe->vocab, name, 6);
    }
    return BADAM_OK;
}

badam_status tok_bpe_parse(const json_t *model, const char *file, tok_bpe *bpe, badam_error *err) {
    memset(bpe, 0, sizeof *bpe);
    for (int i = 0; i < 256; i++) bpe->byte_ids[i] = -1;
    const json_t *vocab = NULL, *merges = NULL;
    badam_status st = check_model(model, file, &vocab, &merges, err);
    if (st) return st;
    if ((st = tok_json_bool(model, "byte_fallback", &bpe->byte_fallback, file, "model", err)) ||
        (st = tok_json_bool(model, "fuse_unk", &bpe->fuse_unk, file, "model", err)) ||
        (st = tok_json_bool(model, "ignore_merges", &bpe->ignore_merges, file, "model", err)))
        return st;
    size_t unk_len = 0;
    if ((st = bpe_str_field(model, "unk_token", &bpe->unk_token, &unk_len, file, err)) ||
        (st = bpe_str_field(model, "continuing_subword_prefix", &bpe->prefix, &bpe->prefix_len,
                            file, err)) ||
        (st =
             bpe_str_field(model, "end_of_word_suffix", &bpe->suffix, &bpe->suffix_len, file, err)))
        goto fail;
    if ((st = parse_vocab(vocab, file, bpe, err))) goto fail;
    if (tok_model_is_wordpiece(model)) {
        if ((st = tok_wordpiece_parse(model, file, bpe, err))) goto fail;
        return BADAM_OK;
    }
    if ((st = parse_merges(merges, file, bpe, err))) goto fail;

    bpe->cache = calloc(TOK_CACHE_SLOTS, sizeof *bpe->cache);
    if (!bpe->cache) {
        st = badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
        goto fail;
    }
    for (int i = 0; i < TOK_CACHE_LOCKS; i++) pthread_mutex_init(&bpe->cache_locks[i], NULL);
    bpe->cache_ready = 1;
    return BADAM_OK;
fail:
    tok_bpe_free(bpe);
    return st;
}

void tok_bpe_free(tok_bpe *bpe) {
    if (bpe->cache_ready) {
        for (int i = 0; i < TOK_CACHE_LOCKS; i++) pthread_mutex_destroy(&bpe->cache_locks[i]);
    }
    if (bpe->cache) {
        for (size_t i = 0; i < TOK_CACHE_SLOTS; i++) {
            free(bpe->cache[i].key);
            free(bpe->cache[i].ids);
        }
        free(bpe->cache);
    }
    tok_strmap_free(&bpe->vocab);
    tok_pairmap_free(&bpe->merges);
    free(bpe->id_to_token);
    free(bpe->id_to_len);
    free(bpe->unk_token);
    free(bpe->prefix);
    free(bpe->suffix);
    memset(bpe, 0, sizeof *bpe);
}

/* ---------------------------------------------------------------- cache */

static int cache_get(const tok_bpe *bpe, uint64_t h, const char *w, size_t n, tok_ids *out,
                     badam_status *st, badam_error *err) {
    size_t slot = (size_t)h & (TOK_CACHE_SLOTS - 1);
    pthread_mutex_t *lock = (pthread_mutex_t *)&bpe->cache_locks[slot % TOK_CACHE_LOCKS];
    int hit = 0;
    pthread_mutex_lock(lock);
    const tok_cache_entry *e = &bpe->cache[slot];
    if (e->key && e->hash == h && e->key_len == n && !memcmp(e->key, w, n)) {
        hit = 1;
        *st = tok_ids_append(out, e->ids, e->n_ids, err);
    }
    pthread_mutex_unlock(lock);
    return hit;
}

static void cache_put(const tok_bpe *bpe, uint64_t h, const char *w, size_t n, const int32_t *ids,
                      size_t n_ids) {
    char *key = malloc(n ? n : 1);
    int32_t *copy = malloc((n_ids ? n_ids : 1) * sizeof *copy);
    if (!key || !copy) { /* a cache miss costs time, not correctness */
        free(key);
        free(copy);
        return;
    }
    memcpy(key, w, n);
    if (n_ids) memcpy(copy, ids, n_ids * sizeof *ids);
    size_t slot = (size_t)h & (TOK_CACHE_SLOTS - 1);
    pthread_mutex_t *lock = (pthread_mutex_t *)&bpe->cache_locks[slot % TOK_CACHE_LOCKS];
    tok_cache_entry *e = (tok_cache_entry *)&bpe->cache[slot];
    pthread_mutex_lock(lock);
    char *old_key = e->key;
    int32_t *old_ids = e->ids;
    e->hash = h;
    e->key = key;
    e->key_len = (uint32_t)n;
    e->ids = copy;
    e->n_ids = (uint32_t)n_ids;
    pthread_mutex_unlock(lock);
    free(old_key);
    free(old_ids);
}

/* ---------------------------------------------------------------- merging */

static void heap_push(tok_merge_cand *h, size_t *n, tok_merge_cand c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].key <= c.key) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static tok_merge_cand heap_pop(tok_merge_cand *h, size_t *n) {
    tok_merge_cand top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= *n) break;
        if (l + 1 < *n && h[l + 1].key < h[l].key) l++;
        if (h[l].key >= last.key) break;
        h[i] = h[l];
        i = l;
    }
    if (*n) h[i] = last;
    return top;
}

static badam_status ensure_scratch(tok_ctx *ctx, size_t n_symbols, badam_error *err) {
    if (n_symbols > ctx->symbols_cap) {
        size_t cap = n_symbols < 64 ? 64 : n_symbols * 2;
        tok_symbol *s = realloc(ctx->symbols, cap * sizeof *s);
        if (!s) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
        ctx->symbols = s;
        ctx->symbols_cap = cap;
    }
    /* each merge pushes at most 2 candidates; the initial fill n - 1 */
    size_t need = 3 * n_symbols + 4;
    if (need > ctx->heap_cap) {
        size_t cap = need + need / 2;
        tok_merge_cand *h = realloc(ctx->heap, cap * sizeof *h);
        if (!h) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
        ctx->heap = h;
        ctx->heap_cap = cap;
    }
    return BADAM_OK;
}

static void push_pair(const tok_bpe *bpe, tok_ctx *ctx, size_t *hn, int32_t pos) {
    tok_symbol *s = ctx->symbols;
    int32_t rank, new_id;
    if (tok_pairmap_get(&bpe->merges, s[pos].id, s[s[pos].next].id, &rank, &new_id))
        heap_push(ctx->heap, hn,
                  (tok_merge_cand){((uint64_t)(uint32_t)rank << 32) | (uint32_t)pos, new_id});
}

/* Initial symbols of the word into ctx->word_ids (ids; unknown/byte handling done). */
static badam_status word_symbols(const tok_bpe *bpe, const char *w, size_t n, tok_ctx *ctx,
                                 badam_error *err) {
    tok_ids *ids = &ctx->word_ids;
    ids->n = 0;
    tok_buf *tmp = &ctx->buf3;
    int32_t pending_unk = -1; /* an unknown symbol not yet emitted (for fuse_unk) */
    badam_status st;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = (size_t)tok_utf8_decode(w + i, n - i, &cp);
        int first = i == 0, last = i + len == n;
        const char *s = w + i;
        size_t s_len = len;
        if ((!first && bpe->prefix) || (last && bpe->suffix)) {
            tmp->len = 0;
            if (!first && bpe->prefix &&
                (st = tok_buf_append(tmp, bpe->prefix, bpe->prefix_len, err)))
                return st;
            if ((st = tok_buf_append(tmp, s, len, err))) return st;
            if (last && bpe->suffix &&
                (st = tok_buf_append(tmp, bpe->suffix, bpe->suffix_len, err)))
                return st;
            s = tmp->data;
            s_len = tmp->len;
        }
        i += len;
        int32_t id = tok_strmap_get(&bpe->vocab, s, s_len);
        if (id >= 0) {
            if (pending_unk >= 0) {
                if ((st = tok_ids_push(ids, pending_unk, err))) return st;
                pending_unk = -1;
            }
            if ((st = tok_ids_push(ids, id, err))) return st;
            continue;
        }
        if (bpe->byte_fallback) {
            int all = 1;
            for (size_t k = 0; k < s_len; k++)
                if (bpe->byte_ids[(uint8_t)s[k]] < 0) all = 0;
            if (all) {
                /* Rust emits byte tokens without flushing a pending unknown first */
                for (size_t k = 0; k < s_len; k++)
                    if ((st = tok_ids_push(ids, bpe->byte_ids[(uint8_t)s[k]], err))) return st;
                continue;
            }
        }
        if (bpe->unk_token) {
            int32_t unk = tok_strmap_get(&bpe->vocab, bpe->unk_token, strlen(bpe->unk_token));
            if (unk < 0)
                return badam_fail(err, BADAM_E_FORMAT,
                                  "tokenizer: model.unk_token \"%s\" is not in the vocabulary",
                                  bpe->unk_token);
            if (pending_unk >= 0 && !bpe->fuse_unk)
                if ((st = tok_ids_push(ids, pending_unk, err))) return st;
            pending_unk = unk;
        }
    }
    if (pending_unk >= 0) return tok_ids_push(ids, pending_unk, err);
    return BADAM_OK;
}

badam_status tok_bpe_encode_word(const tok_bpe *bpe, const char *w, size_t n, tok_ids *out,
                                 tok_ctx *ctx, badam_error *err) {
    if (n == 0) return BADAM_OK;
    if (bpe->ignore_merges) {
        int32_t id = tok_strmap_get(&bpe->vocab, w, n);
        if (id >= 0) return tok_ids_push(out, id, err);
    }
    badam_status st = BADAM_OK;
    uint64_t h = 0;
    int cacheable = n < TOK_CACHE_MAX_KEY;
    if (cacheable) {
        h = tok_hash(w, n);
        if (cache_get(bpe, h, w, n, out, &st, err)) return st;
    }
    if ((st = word_symbols(bpe, w, n, ctx, err))) return st;
    size_t ns = ctx->word_ids.n;
    if ((st = ensure_scratch(ctx, ns, err))) return st;
    tok_symbol *s = ctx->symbols;
    for (size_t i = 0; i < ns; i++)
        s[i] = (tok_symbol){ctx->word_ids.data[i], (int32_t)i - 1, i + 1 < ns ? (int32_t)i + 1 : -1,
                            1};
    size_t hn = 0;
    for (size_t i = 0; i + 1 < ns; i++) push_pair(bpe, ctx, &hn, (int32_t)i);
    while (hn) {
        tok_merge_cand c = heap_pop(ctx->heap, &hn);
        int32_t pos = (int32_t)(c.key & 0xFFFFFFFFu);
        if (!s[pos].alive || s[pos].next < 0) continue;
        int32_t nx = s[pos].next, rank, new_id;
        if (!tok_pairmap_get(&bpe->merges, s[pos].id, s[nx].id, &rank, &new_id) ||
            new_id != c.new_id)
            continue; /* stale */
        s[pos].id = new_id;
        s[nx].alive = 0;
        s[pos].next = s[nx].next;
        if (s[nx].next >= 0) s[s[nx].next].prev = pos;
        if (s[pos].prev >= 0) push_pair(bpe, ctx, &hn, s[pos].prev);
        if (s[pos].next >= 0) push_pair(bpe, ctx, &hn, pos);
    }
    size_t start = out->n;
    for (int32_t i = ns ? 0 : -1; i >= 0; i = s[i].next)
        if ((st = tok_ids_push(out, s[i].id, err))) return st;
    /* a word may give no ids at all (no vocabulary entry, no unk): nothing to offset into */
    if (cacheable)
        cache_put(bpe, h, w, n, out->n > start ? out->data + start : NULL, out->n - start);
    return BADAM_OK;
}
