/* The WordPiece model of tokenizer.json (Rust tokenizers' models::wordpiece), greedy
 * longest-match-first over one word w of c characters:
 *
 *   c > max_input_chars_per_word          -> [unk_token]
 *   start = 0; while start < |w|:
 *       end = the longest end such that piece = (start > 0 ? prefix : "") + w[start:end] is in
 *             the vocabulary (end shrinks one character at a time); none -> [unk_token] for the
 *             whole word
 *       emit piece; start = end
 *
 * prefix is continuing_subword_prefix ("##" by default), unk_token "[UNK]" and
 * max_input_chars_per_word 100 by default (the Rust defaults). The vocabulary is the model's
 * (added tokens are not looked up here). */
#include <stdlib.h>
#include <string.h>

#include "io/json_get.h"
#include "text/tok_internal.h"

int tok_model_is_wordpiece(const json_t *model) {
    const json_t *type = json_object_get(model, "type");
    if (json_is_string(type)) return !strcmp(json_string_value(type), "WordPiece");
    if (type && !json_is_null(type)) return 0;
    return json_is_object(json_object_get(model, "vocab")) && !json_object_get(model, "merges") &&
           json_object_get(model, "continuing_subword_prefix") &&
           json_object_get(model, "unk_token");
}

/* A default for a string field that is absent or null. */
static badam_status default_str(const json_t *model, const char *field, const char *def, char **out,
                                size_t *len, badam_error *err) {
    const json_t *v = json_object_get(model, field);
    if ((v && !json_is_null(v)) || *out) return BADAM_OK;
    *len = strlen(def);
    *out = tok_strndup(def, *len);
    return *out ? BADAM_OK : badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
}

badam_status tok_wordpiece_parse(const json_t *model, const char *file, tok_bpe *bpe,
                                 badam_error *err) {
    bpe->is_wordpiece = 1;
    bpe->max_chars = 100;
    size_t unk_len = 0;
    badam_status st;
    if ((st = default_str(model, "unk_token", "[UNK]", &bpe->unk_token, &unk_len, err)) ||
        (st = default_str(model, "continuing_subword_prefix", "##", &bpe->prefix, &bpe->prefix_len,
                          err)) ||
        (st = tok_json_int(model, "max_input_chars_per_word", &bpe->max_chars, file, "model", err)))
        return st;
    if (bpe->max_chars < 0)
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: model.max_input_chars_per_word: expected a count >= 0, got %d", file,
                          bpe->max_chars);
    if (!bpe->unk_token)
        return badam_fail(err, BADAM_E_FORMAT, "%s: model.unk_token: WordPiece needs one", file);
    return BADAM_OK;
}

static badam_status push_unk(const tok_bpe *wp, tok_ids *out, badam_error *err) {
    int32_t id = tok_strmap_get(&wp->vocab, wp->unk_token, strlen(wp->unk_token));
    if (id < 0)
        return badam_fail(err, BADAM_E_FORMAT,
                          "tokenizer: WordPiece unk_token \"%s\" is not in the vocabulary",
                          wp->unk_token);
    return tok_ids_push(out, id, err);
}

badam_status tok_wordpiece_encode_word(const tok_bpe *wp, const char *w, size_t n, tok_ids *out,
                                       tok_ctx *ctx, badam_error *err) {
    size_t chars = 0;
    for (size_t i = 0; i < n; i++) chars += ((unsigned char)w[i] & 0xC0) != 0x80;
    if (chars > (size_t)wp->max_chars) return push_unk(wp, out, err);
    size_t first = out->n;
    tok_buf *piece = &ctx->buf3;
    badam_status st;
    size_t start = 0;
    while (start < n) {
        size_t end = n;
        int32_t id = -1;
        while (start < end) {
            if (start == 0) {
                id = tok_strmap_get(&wp->vocab, w, end);
            } else {
                piece->len = 0;
                if ((wp->prefix_len &&
                     (st = tok_buf_append(piece, wp->prefix, wp->prefix_len, err))) ||
                    (st = tok_buf_append(piece, w + start, end - start, err)))
                    return st;
                id = tok_strmap_get(&wp->vocab, piece->data, piece->len);
            }
            if (id >= 0) break;
            do end--; /* back over one character (its continuation bytes, then its lead byte) */
            while (end > start && ((unsigned char)w[end] & 0xC0) == 0x80);
        }
        if (id < 0) {
            out->n = first;
            return push_unk(wp, out, err);
        }
        if ((st = tok_ids_push(out, id, err))) return st;
        start = end;
    }
    return BADAM_OK;
}

/* ---------------------------------------------------------------- decoder */

/* The WordPiece decoder (Rust decoders::wordpiece), per token t_i:
 *
 *   i > 0 and t_i starts with prefix: t_i minus the prefix;  i > 0 otherwise: " " + t_i
 *   cleanup: then these replacements, in order, in the token: " ." -> ".", " ?" -> "?",
 *            " !" -> "!", " ," -> ",", " ' " -> "'", " n't" -> "n't", " 'm" -> "'m",
 *            " do not" -> " don't", " 's" -> "'s", " 've" -> "'ve", " 're" -> "'re"
 *
 * (tokenizers.js has no " do not" rule; a token holding it must have a space inside.) */
badam_status tok_wordpiece_decoder_parse(const json_t *j, const char *file, const char *path,
                                         tok_decoder *d, badam_error *err) {
    const char *s = "##";
    d->content_len = 2;
    d->cleanup = 1;
    badam_status st;
    if ((st = tok_json_str(j, "prefix", 0, &s, &d->content_len, file, path, err)) ||
        (st = tok_json_bool(j, "cleanup", &d->cleanup, file, path, err)))
        return st;
    if (!(d->content = tok_strndup(s, d->content_len)))
        return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    return BADAM_OK;
}

/* Replaces every occurrence of from with to in b (left to right, non-overlapping). */
static badam_status replace_all(tok_buf *b, const char *from, const char *to, tok_buf *tmp,
                                badam_error *err) {
    size_t fl = strlen(from), tl = strlen(to);
    if (b->len < fl) return BADAM_OK;
    tmp->len = 0;
    badam_status st = BADAM_OK;
    size_t i = 0;
    while (i < b->len && !st) {
        if (b->len - i >= fl && !memcmp(b->data + i, from, fl)) {
            st = tok_buf_append(tmp, to, tl, err);
            i += fl;
        } else {
            st = tok_buf_append(tmp, b->data + i, 1, err);
            i++;
        }
    }
    tok_buf t = *b;
    *b = *tmp;
    *tmp = t;
    return st;
}

badam_status tok_wordpiece_decode(const tok_decoder *d, const tok_list *in, tok_list *out,
                                  badam_error *err) {
    static const char *const rules[][2] = {
        {" .", "."},   {" ?", "?"},     {" !", "!"},     {" ,", ","},
        {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},   {" do not", " don't"},
        {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
    };
    tok_buf tok = {0}, tmp = {0};
    badam_status st = BADAM_OK;
    for (size_t i = 0; i < in->n && !st; i++) {
        const char *t = tok_list_str(in, i);
        size_t n = in->items[i].len;
        tok.len = 0;
        if (i > 0 && n >= d->content_len && !memcmp(t, d->content, d->content_len)) {
            st = tok_buf_append(&tok, t + d->content_len, n - d->content_len, err);
        } else {
            if (i > 0) st = tok_buf_append(&tok, " ", 1, err);
            if (!st) st = tok_buf_append(&tok, t, n, err);
        }
        for (size_t r = 0; d->cleanup && r < sizeof rules / sizeof rules[0] && !st; r++)
            st = replace_all(&tok, rules[r][0], rules[r][1], &tmp, err);
        if (!st) st = tok_list_push(out, tok.data, tok.len, in->items[i].flag, err);
    }
    tok_buf_free(&tok);
    tok_buf_free(&tmp);
    return st;
}
