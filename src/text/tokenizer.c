/* Hugging Face tokenizer.json: loading, encoding and decoding (see include/badam/tokenizer.h).
 *
 * encode(text):
 *   1. invalid UTF-8 -> U+FFFD (maximal subparts), so the rest sees valid text
 *   2. split out added tokens whose `normalized` is false (leftmost-longest)
 *   3. each piece between them: normalizer, then split out the normalized added tokens
 *   4. each remaining piece: pre-tokenizer -> words; each word: the model (BPE or WordPiece)
 *      -> ids
 *   5. add_special: the post-processor adds BOS/EOS (TemplateProcessing, ...: tok_post.c)
 * Text pairs, type ids and truncation: tok_pair.c (steps 1-4 per text, then tok_post.c).
 * decode(ids): ids -> token strings (special ones dropped on request) -> decoder chain ->
 *   concatenation -> tokenizer_config.json's clean_up_tokenization_spaces.
 *
 * All per-call state lives in a tok_ctx on the caller's stack; the only shared mutable state is
 * the BPE cache, which has its own locks. */
#define _GNU_SOURCE /* memmem */
#include "badam/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/files.h"
#include "io/json_get.h"
#include "text/data_internal.h"
#include "text/tok_internal.h"

struct badam_tokenizer {
    char *file; /* tokenizer.json path, for messages */
    tok_normalizer *normalizer;
    tok_pretok *pretok;
    tok_bpe bpe;
    tok_post *post;
    tok_decoder *decoder;
    tok_added *added;
    size_t n_added;
    tok_trie trie_raw, trie_norm;
    void *word_re; /* for single_word added tokens */
    tok_strmap added_map;
    int32_t vocab_size;
    const char **id_to_token;
    size_t *id_len; /* the tokens' lengths in bytes (a token may hold U+0000) */
    uint8_t *is_added, *is_special;
    int32_t bos, eos, pad;
    char *chat_template;
    int clean_up_spaces;
    char *eos_problem; /* tokenizer_config.json's eos_token is not a token: why (or NULL) */
};

/* ---------------------------------------------------------------- loading */

void tokenizer_free(badam_tokenizer *tok) {
    if (!tok) return;
    free(tok->eos_problem);
    tok_normalizer_free(tok->normalizer);
    tok_pretok_free(tok->pretok);
    tok_bpe_free(&tok->bpe);
    tok_post_free(tok->post);
    tok_decoder_free(tok->decoder);
    for (size_t i = 0; i < tok->n_added; i++) free(tok->added[i].content);
    free(tok->added);
    tok_trie_free(&tok->trie_raw);
    tok_trie_free(&tok->trie_norm);
    tok_regex_free(tok->word_re);
    tok_strmap_free(&tok->added_map);
    free(tok->id_to_token);
    free(tok->id_len);
    free(tok->is_added);
    free(tok->is_special);
    free(tok->chat_template);
    free(tok->file);
    free(tok);
}

static badam_status parse_added(badam_tokenizer *tok, const json_t *arr, badam_error *err) {
    const char *file = tok->file;
    if (!arr || json_is_null(arr)) return BADAM_OK;
    if (!json_is_array(arr))
        return badam_fail(err, BADAM_E_FORMAT, "%s: added_tokens: expected an array", file);
    size_t n = (size_t)json_array_size(arr);
    tok->added = calloc(n ? n : 1, sizeof *tok->added);
    if (!tok->added) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    const json_t *it;
    badam_status st;
    size_t index;
    json_array_foreach(arr, index, it) {
        char path[64];
        snprintf(path, sizeof path, "added_tokens[%zu]", tok->n_added);
        tok_added *a = &tok->added[tok->n_added];
        const char *content = NULL;
        size_t content_len = 0;
        int id = -1;
        if ((st = tok_json_str(it, "content", 1, &content, &content_len, file, path, err)))
            return st;
        if (!json_object_get(it, "id"))
            return badam_fail(err, BADAM_E_FORMAT, "%s: %s: missing field 'id'", file, path);
        if ((st = tok_json_int(it, "id", &id, file, path, err))) return st;
        if (id >= TOK_MAX_ID)
            return badam_fail(err, BADAM_E_FORMAT, "%s: %s.id: %d is not a token id in [0, %d]",
                              file, path, id, TOK_MAX_ID - 1);
        a->id = id;
        a->len = content_len;
        if (!(a->content = tok_strndup(content, a->len)))
            return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
        tok->n_added++;
        if ((st = tok_json_bool(it, "special", &a->special, file, path, err))) return st;
        a->normalized = !a->special;
        if ((st = tok_json_bool(it, "normalized", &a->normalized, file, path, err)) ||
            (st = tok_json_bool(it, "lstrip", &a->lstrip, file, path, err)) ||
            (st = tok_json_bool(it, "rstrip", &a->rstrip, file, path, err)) ||
            (st = tok_json_bool(it, "single_word", &a->single_word, file, path, err)))
            return st;
    }
    return BADAM_OK;
}

/* Tries: special tokens first, then the others (Rust's order; it matters only for duplicates). */
static badam_status build_added_index(badam_tokenizer *tok, badam_error *err) {
    badam_status st;
    int any_single_word = 0;
    tok_ctx ctx = {0};
    tok_buf norm = {0};
    if ((st = tok_trie_init(&tok->trie_raw, err)) || (st = tok_trie_init(&tok->trie_norm, err)) ||
        (st = tok_strmap_init(&tok->added_map, tok->n_added, err)))
        goto done;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < tok->n_added; i++) {
            const tok_added *a = &tok->added[i];
            if (a->special != (pass == 0) || a->len == 0) continue;
            any_single_word |= a->single_word;
            if (!a->normalized) {
                st = tok_trie_add(&tok->trie_raw, a->content, a->len, (int32_t)i, err);
            } else if (tok->normalizer) {
                if (!(st = tok_normalizer_apply(tok->normalizer, a->content, a->len, &norm, &ctx,
                                                err)))
                    st = tok_trie_add(&tok->trie_norm, norm.data, norm.len, (int32_t)i, err);
            } else {
                st = tok_trie_add(&tok->trie_norm, a->content, a->len, (int32_t)i, err);
            }
            if (st) goto done;
        }
    }
    for (size_t i = 0; i < tok->n_added; i++)
        if ((st = tok_strmap_put(&tok->added_map, tok->added[i].content, tok->added[i].len,
                                 tok->added[i].id, err)))
            goto done;
    if (any_single_word)
        st = tok_regex_compile("[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]", "word",
                               &tok->word_re, err);
done:
    tok_buf_free(&norm);
    tok_ctx_free(&ctx);
    return st;
}

/* The ids the post-processor adds must name tokens (they reach the model's embedding). */
static badam_status check_post_ids(const badam_tokenizer *tok, const tok_post *p, const char *path,
                                   badam_error *err) {
    if (!p) return BADAM_OK;
    badam_status st = BADAM_OK;
    for (size_t i = 0; i < p->n_children && !st; i++)
        st = check_post_ids(tok, p->children[i], path, err);
    int32_t single[2] = {p->cls, p->sep};
    for (int k = 0; k < 2 && !st && p->kind == TOK_POST_CLS_SEP; k++)
        if (!tokenizer_id_to_token(tok, single[k]))
            st = badam_fail(err, BADAM_E_FORMAT,
                            "%s: %s: %s id %d is not in the vocabulary (%d ids)", tok->file, path,
                            k ? "sep" : "cls", single[k], tok->vocab_size);
    for (int pair = 0; pair < 2; pair++) {
        const tok_post_item *items = pair ? p->pair_items : p->items;
        size_t n_items = pair ? p->n_pair_items : p->n_items;
        for (size_t i = 0; i < n_items && !st; i++)
            for (size_t j = 0; j < items[i].n_ids && !st; j++)
                if (!tokenizer_id_to_token(tok, items[i].ids[j]))
                    st =
                        badam_fail(err, BADAM_E_FORMAT,
                                   "%s: %s.special_tokens: id %d is not in the vocabulary (%d ids)",
                                   tok->file, path, items[i].ids[j], tok->vocab_size);
    }
    return st;
}

static badam_status build_id_tables(badam_tokenizer *tok, badam_error *err) {
    int32_t max = tok->bpe.vocab_max;
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].id > max) max = tok->added[i].id;
    if (!tok_ids_dense_enough(max, tok->bpe.vocab.n + tok->n_added))
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: the largest token id is %d but the vocabulary and added_tokens hold "
                          "only %zu tokens (ids must be about 0 .. number of tokens - 1)",
                          tok->file, max, tok->bpe.vocab.n + tok->n_added);
    tok->vocab_size = max + 1;
    size_t n = (size_t)tok->vocab_size;
    tok->id_to_token = calloc(n ? n : 1, sizeof *tok->id_to_token);
    tok->id_len = calloc(n ? n : 1, sizeof *tok->id_len);
    tok->is_added = calloc(n ? n : 1, 1);
    tok->is_special = calloc(n ? n : 1, 1);
    if (!tok->id_to_token || !tok->id_len || !tok->is_added || !tok->is_special)
        return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    for (int32_t i = 0; i <= tok->bpe.vocab_max; i++) {
        tok->id_to_token[i] = tok->bpe.id_to_token[i];
        tok->id_len[i] = tok->bpe.id_to_len[i];
    }
    for (size_t i = 0; i < tok->n_added; i++) {
        const tok_added *a = &tok->added[i];
        if (tok->is_added[a->id] &&
            (tok->id_len[a->id] != a->len || memcmp(tok->id_to_token[a->id], a->content, a->len)))
            return badam_fail(err, BADAM_E_FORMAT,
                              "%s: added_tokens[%zu]: id %d is already the added token \"%s\"",
                              tok->file, i, a->id, tok->id_to_token[a->id]);
        tok->id_to_token[a->id] = a->content;
        tok->id_len[a->id] = a->len;
        tok->is_added[a->id] = 1;
        if (a->special) tok->is_special[a->id] = 1;
    }
    return BADAM_OK;
}

/* A special token of tokenizer_config.json: "text" or {"content": "text", ...}; NULL when
 * neither. */
static const json_t *config_token(const json_t *cfg, const char *field) {
    const json_t *v = json_object_get(cfg, field);
    if (json_is_string(v)) return v;
    if (json_is_object(v)) {
        const json_t *c = json_object_get(v, "content");
        if (json_is_string(c)) return c;
    }
    return NULL;
}

/* The id of a token given as a JSON string (its full length), or -1. */
static int32_t json_token_id(const badam_tokenizer *tok, const json_t *s) {
    return s ? tokenizer_token_to_id_n(tok, json_string_value(s), json_string_length(s)) : -1;
}

/* Records that eos_token (a JSON string) of the config at path is not a token. */
static badam_status note_eos_problem(badam_tokenizer *tok, const char *path, const json_t *name,
                                     badam_error *err) {
    const char *fmt = "%s: eos_token '%.*s' is not a token of %s";
    int len = (int)json_string_length(name);
    int n = snprintf(NULL, 0, fmt, path, len, json_string_value(name), tok->file);
    tok->eos_problem = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!tok->eos_problem) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    snprintf(tok->eos_problem, (size_t)n + 1, fmt, path, len, json_string_value(name), tok->file);
    return BADAM_OK;
}

const char *tokenizer_eos_problem(const badam_tokenizer *tok) {
    return tok ? tok->eos_problem : NULL;
}

static badam_status load_config(badam_tokenizer *tok, const char *path, badam_error *err) {
    json_t *cfg = NULL;
    badam_status st = io_read_json(path, &cfg, err);
    if (st) return st;
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        return badam_fail(err, BADAM_E_FORMAT, "%s: expected a JSON object", path);
    }
    const json_t *names[3] = {config_token(cfg, "bos_token"), config_token(cfg, "eos_token"),
                              config_token(cfg, "pad_token")};
    int32_t *ids[3] = {&tok->bos, &tok->eos, &tok->pad};
    for (int i = 0; i < 3; i++)
        if (names[i]) *ids[i] = json_token_id(tok, names[i]);
    if (names[1] && tok->eos < 0) /* kept for the message of a template that needs it */
        st = note_eos_problem(tok, path, names[1], err);
    if (st) {
        json_decref(cfg);
        return st;
    }
    const json_t *extra = json_object_get(cfg, "additional_special_tokens");
    const json_t *e;
    size_t index;
    if (json_is_array(extra)) {
        json_array_foreach(extra, index, e) {
            const json_t *s = json_is_string(e) ? e : NULL;
            const json_t *c = json_is_object(e) ? json_object_get(e, "content") : NULL;
            if (json_is_string(c)) s = c;
            int32_t id = json_token_id(tok, s);
            if (id >= 0) tok->is_special[id] = 1;
        }
    }
    const json_t *tmpl = json_object_get(cfg, "chat_template");
    const json_t *tmpl_s = NULL;
    if (json_is_string(tmpl)) {
        tmpl_s = tmpl;
    } else if (json_is_array(tmpl)) { /* [{"name": ..., "template": ...}]: "default", else first */
        json_array_foreach(tmpl, index, e) {
            const json_t *name = json_object_get(e, "name");
            const json_t *t = json_object_get(e, "template");
            if (!json_is_string(t)) continue;
            if (!tmpl_s || (json_is_string(name) && !strcmp(json_string_value(name), "default")))
                tmpl_s = t;
        }
    }
    /* The template is handed on as a C string: one holding U+0000 is refused, not cut short. */
    if (tmpl_s && !json_string_is_c(tmpl_s)) {
        json_decref(cfg);
        return badam_fail(err, BADAM_E_FORMAT, "%s: chat_template holds U+0000", path);
    }
    if (tmpl_s && !(tok->chat_template =
                        tok_strndup(json_string_value(tmpl_s), json_string_length(tmpl_s)))) {
        json_decref(cfg);
        return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    }
    /* tokenizers.js (and transformers before 4.45) clean up unless told not to */
    tok->clean_up_spaces = 1;
    const json_t *cu = json_object_get(cfg, "clean_up_tokenization_spaces");
    if (json_is_boolean(cu)) tok->clean_up_spaces = json_is_true(cu);
    json_decref(cfg);
    return BADAM_OK;
}

static badam_status load_json(badam_tokenizer *tok, const json_t *root, badam_error *err) {
    const char *file = tok->file;
    badam_status st;
    if (!json_is_object(root))
        return badam_fail(err, BADAM_E_FORMAT, "%s: expected a JSON object", file);
    const json_t *model = json_object_get(root, "model");
    if (!model) return badam_fail(err, BADAM_E_FORMAT, "%s: missing field 'model'", file);
    const json_t *j;
    if ((j = json_object_get(root, "normalizer")) && !json_is_null(j))
        if ((st = tok_normalizer_parse(j, file, "normalizer", &tok->normalizer, err))) return st;
    if ((j = json_object_get(root, "pre_tokenizer")) && !json_is_null(j))
        if ((st = tok_pretok_parse(j, file, "pre_tokenizer", &tok->pretok, err))) return st;
    if ((st = tok_bpe_parse(model, file, &tok->bpe, err))) return st;
    if ((j = json_object_get(root, "post_processor")) && !json_is_null(j))
        if ((st = tok_post_parse(j, file, "post_processor", &tok->post, err))) return st;
    if ((j = json_object_get(root, "decoder")) && !json_is_null(j))
        if ((st = tok_decoder_parse(j, file, "decoder", &tok->decoder, err))) return st;
    if ((st = parse_added(tok, json_object_get(root, "added_tokens"), err))) return st;
    if ((st = build_added_index(tok, err))) return st;
    if ((st = build_id_tables(tok, err))) return st;
    return check_post_ids(tok, tok->post, "post_processor", err);
}

badam_status tokenizer_load(const char *path, badam_tokenizer **out, badam_error *err) {
    *out = NULL;
    char json_path[4096], config_path[4096];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    int have_config = 0;
    if (io_is_dir(path)) {
        snprintf(json_path, sizeof json_path, "%s/tokenizer.json", path);
        snprintf(config_path, sizeof config_path, "%s/tokenizer_config.json", path);
        if (access(json_path, F_OK) != 0) /* present but not a regular file: read says why */
            return badam_fail(err, BADAM_E_IO, "%s: no tokenizer.json in this folder", path);
        badam_status cst = io_optional_file(config_path, &have_config, err);
        if (cst) return cst;
    } else {
        snprintf(json_path, sizeof json_path, "%s", path);
        if (!strcmp(base, "tokenizer.json")) {
            snprintf(config_path, sizeof config_path, "%.*s/tokenizer_config.json",
                     slash ? (int)(slash - path) : 1, slash ? path : ".");
            badam_status cst = io_optional_file(config_path, &have_config, err);
            if (cst) return cst;
        }
    }
    badam_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    tok->bos = tok->eos = tok->pad = -1;
    tok->file = tok_strndup(json_path, strlen(json_path));
    if (!tok->file) {
        free(tok);
        return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    }
    json_t *root = NULL;
    badam_status st = io_read_json(json_path, &root, err);
    if (!st) st = load_json(tok, root, err);
    json_decref(root);
    if (!st) {
        tok->bos = tok_post_special(tok->post, 0);
        tok->eos = tok_post_special(tok->post, 1);
        if (have_config) st = load_config(tok, config_path, err);
    }
    if (st) {
        tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return BADAM_OK;
}

/* ---------------------------------------------------------------- encoding */

/* The model (BPE or WordPiece) on one word. */
static badam_status encode_word(const badam_tokenizer *tok, const char *w, size_t n, tok_ids *ids,
                                tok_ctx *ctx, badam_error *err) {
    if (tok->bpe.is_wordpiece) return tok_wordpiece_encode_word(&tok->bpe, w, n, ids, ctx, err);
    return tok_bpe_encode_word(&tok->bpe, w, n, ids, ctx, err);
}

static badam_status encode_piece(const badam_tokenizer *tok, const char *s, size_t n, int at_start,
                                 tok_ids *ids, tok_ctx *ctx, badam_error *err) {
    badam_status st;
    if (!tok->pretok) return encode_word(tok, s, n, ids, ctx, err);
    tok_list *in = &ctx->lists[0], *spare = &ctx->lists[1];
    tok_list_clear(in);
    if ((st = tok_list_push(in, s, n, at_start, err))) return st;
    if ((st = tok_pretok_apply(tok->pretok, &in, &spare, ctx, err))) return st;
    for (size_t i = 0; i < in->n; i++)
        if ((st = encode_word(tok, tok_list_str(in, i), in->items[i].len, ids, ctx, err)))
            return st;
    return BADAM_OK;
}

static badam_status encode_ids(const badam_tokenizer *tok, const char *text, size_t len,
                               tok_ids *ids, tok_ctx *ctx, badam_error *err) {
    badam_status st = BADAM_OK;
    tok_spans raw = {0}, norm = {0};
    if (tok_utf8_valid_prefix(text, len) != len) {
        if ((st = tok_utf8_append_lossy(&ctx->buf1, text, len, err))) return st;
        text = ctx->buf1.data;
        len = ctx->buf1.len;
    }
    st = tok_added_split(&tok->trie_raw, tok->added, tok->word_re, text, len, &raw, ctx, err);
    for (size_t i = 0; i < raw.n && !st; i++) {
        const tok_span *r = &raw.data[i];
        if (r->match >= 0) {
            st = tok_ids_push(ids, tok->added[r->match].id, err);
            continue;
        }
        const char *s = text + r->start;
        size_t n = r->end - r->start;
        if (n == 0) continue;
        if (tok->normalizer) {
            if ((st = tok_normalizer_apply(tok->normalizer, s, n, &ctx->buf2, ctx, err))) break;
            s = ctx->buf2.data;
            n = ctx->buf2.len;
            if (n == 0) continue;
        }
        if ((st =
                 tok_added_split(&tok->trie_norm, tok->added, tok->word_re, s, n, &norm, ctx, err)))
            break;
        for (size_t k = 0; k < norm.n && !st; k++) {
            const tok_span *m = &norm.data[k];
            if (m->match >= 0)
                st = tok_ids_push(ids, tok->added[m->match].id, err);
            else if (m->end > m->start)
                st = encode_piece(tok, s + m->start, m->end - m->start,
                                  r->start == 0 && m->start == 0, ids, ctx, err);
        }
    }
    free(raw.data);
    free(norm.data);
    return st;
}

badam_status tokenizer_encode(const badam_tokenizer *tok, const char *text, size_t len,
                              int add_special, int32_t **ids_out, size_t *n_out, badam_error *err) {
    *ids_out = NULL;
    *n_out = 0;
    if (!tok || (!text && len))
        return badam_fail(err, BADAM_E_INVALID, "tokenizer_encode: NULL argument");
    tok_ctx ctx = {0};
    tok_ids ids = {0};
    badam_status st = encode_ids(tok, text ? text : "", len, &ids, &ctx, err);
    if (!st && add_special && tok->post) st = tok_post_apply(tok->post, &ids, err);
    tok_ctx_free(&ctx);
    if (st) {
        free(ids.data);
        return st;
    }
    if (!ids.data && !(ids.data = malloc(sizeof *ids.data))) /* never hand back NULL on success */
        return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    *ids_out = ids.data;
    *n_out = ids.n;
    return BADAM_OK;
}

badam_status tok_encode_text(const badam_tokenizer *tok, const char *text, size_t len, tok_ids *ids,
                             badam_error *err) {
    tok_ctx ctx = {0};
    badam_status st = encode_ids(tok, text ? text : "", len, ids, &ctx, err);
    tok_ctx_free(&ctx);
    return st;
}

const tok_post *tok_tokenizer_post(const badam_tokenizer *tok) {
    return tok->post;
}

/* ---------------------------------------------------------------- decoding */

/* transformers' clean_up_tokenization: these replacements, in this order. */
static badam_status clean_up(tok_buf *b, badam_error *err) {
    static const char *const rules[][2] = {
        {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
        {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
    };
    if (b->len == 0) return BADAM_OK;
    tok_buf out = {0};
    badam_status st = BADAM_OK;
    for (size_t r = 0; r < sizeof rules / sizeof rules[0] && !st; r++) {
        const char *from = rules[r][0], *to = rules[r][1];
        size_t fl = strlen(from), tl = strlen(to);
        if (!memmem(b->data, b->len, from, fl)) continue;
        out.len = 0;
        size_t i = 0;
        while (i < b->len && !st) {
            const char *hit = memmem(b->data + i, b->len - i, from, fl);
            size_t at = hit ? (size_t)(hit - b->data) : b->len;
            st = tok_buf_append(&out, b->data + i, at - i, err);
            if (!st && hit) st = tok_buf_append(&out, to, tl, err);
            i = hit ? at + fl : b->len;
        }
        tok_buf t = *b;
        *b = out;
        out = t;
    }
    tok_buf_free(&out);
    return st;
}

badam_status tokenizer_decode(const badam_tokenizer *tok, const int32_t *ids, size_t n_ids,
                              int skip_special, char **text, size_t *len_out, badam_error *err) {
    *text = NULL;
    if (len_out) *len_out = 0;
    if (!tok || (!ids && n_ids))
        return badam_fail(err, BADAM_E_INVALID, "tokenizer_decode: NULL argument");
    tok_ctx ctx = {0};
    tok_list *in = &ctx.lists[0], *spare = &ctx.lists[1];
    tok_buf out = {0};
    badam_status st = BADAM_OK;
    /* ids outside the vocabulary are skipped, as Rust's decode does */
    for (size_t i = 0; i < n_ids && !st; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= tok->vocab_size || !tok->id_to_token[id]) continue;
        if (skip_special && tok->is_special[id]) continue;
        st = tok_list_push(in, tok->id_to_token[id], tok->id_len[id], tok->is_added[id], err);
    }
    if (!st && tok->decoder) st = tok_decoder_apply(tok->decoder, &in, &spare, &ctx, err);
    for (size_t i = 0; i < in->n && !st; i++) {
        if (!tok->decoder && i > 0) st = tok_buf_append(&out, " ", 1, err);
        if (!st) st = tok_buf_append(&out, tok_list_str(in, i), in->items[i].len, err);
    }
    if (!st && tok->clean_up_spaces) st = clean_up(&out, err);
    if (!st) st = tok_buf_append(&out, "", 1, err);
    tok_ctx_free(&ctx);
    if (st) {
        tok_buf_free(&out);
        return st;
    }
    *text = out.data;
    if (len_out) *len_out = out.len - 1;
    return BADAM_OK;
}

/* ---------------------------------------------------------------- accessors */

int tokenizer_vocab_size(const badam_tokenizer *tok) {
    return tok->vocab_size;
}

const char *tokenizer_id_to_token(const badam_tokenizer *tok, int32_t id) {
    if (id < 0 || id >= tok->vocab_size) return NULL;
    return tok->id_to_token[id];
}

const char *tokenizer_id_to_token_n(const badam_tokenizer *tok, int32_t id, size_t *len) {
    if (id < 0 || id >= tok->vocab_size || !tok->id_to_token[id]) return NULL;
    *len = tok->id_len[id];
    return tok->id_to_token[id];
}

int32_t tokenizer_token_to_id_n(const badam_tokenizer *tok, const char *token, size_t n) {
    int32_t id = tok_strmap_get(&tok->added_map, token, n);
    return id >= 0 ? id : tok_strmap_get(&tok->bpe.vocab, token, n);
}

int32_t tokenizer_token_to_id(const badam_tokenizer *tok, const char *token) {
    return tokenizer_token_to_id_n(tok, token, strlen(token));
}

int tokenizer_is_special(const badam_tokenizer *tok, int32_t id) {
    return id >= 0 && id < tok->vocab_size && tok->is_special[id];
}

int32_t tokenizer_bos_id(const badam_tokenizer *tok) {
    return tok->bos;
}
int32_t tokenizer_eos_id(const badam_tokenizer *tok) {
    return tok->eos;
}
int32_t tokenizer_pad_id(const badam_tokenizer *tok) {
    return tok->pad;
}
const char *tokenizer_chat_template(const badam_tokenizer *tok) {
    return tok->chat_template;
}
