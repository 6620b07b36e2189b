/* Post-processors of tokenizer.json (Rust tokenizers' processors): the special tokens around one
 * sequence A or a pair (A, B), and the type id (segment) of every token.
 *
 *   TemplateProcessing  the "single" or "pair" template: pieces $A / $B (with their type_id)
 *                       and special tokens (their ids, with their type_id)
 *   BertProcessing      [CLS] A [SEP] (type 0)  B [SEP] (type 1)
 *   RobertaProcessing   <s> A </s>  </s> B </s>, every type id 0 (RoBERTa has no segments;
 *                       tokenizers.js gives the pair part type 1, Rust and transformers 0)
 *   ByteLevel           nothing (it only trims offsets, which badam does not report)
 *   Sequence            its processors; at most one of them may add tokens to a pair
 *
 * Before a processor runs, A's tokens have type 0 and B's type 1; without add_special the
 * special tokens are left out but the sequences' type ids are still the processor's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_get.h"
#include "text/tok_internal.h"

static void free_items(tok_post_item *items, size_t n) {
    for (size_t i = 0; i < n; i++) free(items[i].ids);
    free(items);
}

void tok_post_free(tok_post *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_children; i++) tok_post_free(p->children[i]);
    free(p->children);
    free_items(p->items, p->n_items);
    free_items(p->pair_items, p->n_pair_items);
    free(p);
}

static badam_status parse_cls_sep(const json_t *j, const char *field, int32_t *id, const char *file,
                                  const char *path, badam_error *err) {
    const json_t *a = json_object_get(j, field);
    const json_t *v = json_is_array(a) ? json_array_get(a, 1) : NULL;
    long long x;
    if (!json_int_in_range(v, 0, TOK_MAX_ID - 1, &x))
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: %s.%s: expected [\"token\", id] with an id in [0, %d]", file, path,
                          field, TOK_MAX_ID - 1);
    *id = (int32_t)x;
    return BADAM_OK;
}

/* A piece's optional type_id (0 when absent). */
static badam_status parse_type_id(const json_t *piece, int *type_id, const char *file,
                                  const char *where, badam_error *err) {
    const json_t *t = json_object_get(piece, "type_id");
    long long x = 0;
    if (t && !json_is_null(t) && !json_int_in_range(t, 0, 1 << 20, &x))
        return badam_fail(err, BADAM_E_FORMAT, "%s: %s.type_id: expected an integer >= 0", file,
                          where);
    *type_id = (int)x;
    return BADAM_OK;
}

/* The special token piece's ids, from the template's special_tokens map. */
static badam_status parse_special_ids(tok_post_item *item, const json_t *specials,
                                      const json_t *name, const char *file, const char *path,
                                      badam_error *err) {
    const json_t *def =
        json_object_getn(specials, json_string_value(name), json_string_length(name));
    const json_t *ids = def ? json_object_get(def, "ids") : NULL;
    if (!json_is_array(ids))
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: %s.special_tokens: no entry with ids for \"%s\"", file, path,
                          json_string_value(name));
    size_t m = (size_t)json_array_size(ids);
    item->ids = calloc(m ? m : 1, sizeof *item->ids);
    if (!item->ids) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    const json_t *v;
    size_t k;
    json_array_foreach(ids, k, v) {
        long long x;
        if (!json_int_in_range(v, 0, TOK_MAX_ID - 1, &x))
            return badam_fail(err, BADAM_E_FORMAT,
                              "%s: %s.special_tokens[\"%s\"].ids: expected integer ids in [0, %d]",
                              file, path, json_string_value(name), TOK_MAX_ID - 1);
        item->ids[item->n_ids++] = (int32_t)x;
    }
    return BADAM_OK;
}

/* One template ("single" or "pair") into *items / *n. */
static badam_status parse_pieces(const json_t *tmpl, const json_t *specials, const char *field,
                                 tok_post_item **items, size_t *n_items, const char *file,
                                 const char *path, badam_error *err) {
    if (!json_is_array(tmpl))
        return badam_fail(err, BADAM_E_FORMAT, "%s: %s.%s: expected an array", file, path, field);
    size_t n = (size_t)json_array_size(tmpl);
    *items = calloc(n ? n : 1, sizeof **items);
    if (!*items) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    const json_t *it;
    size_t index;
    badam_status st;
    json_array_foreach(tmpl, index, it) {
        tok_post_item *item = &(*items)[*n_items];
        size_t idx = (*n_items)++;
        char where[600];
        snprintf(where, sizeof where, "%s.%s[%zu]", path, field, idx);
        const json_t *sp = json_object_get(it, "SpecialToken");
        const json_t *seq = json_object_get(it, "Sequence");
        const json_t *piece = seq ? seq : sp;
        const json_t *name = piece ? json_object_get(piece, "id") : NULL;
        if (!json_is_string(name) ||
            (seq && strcmp(json_string_value(name), "A") && strcmp(json_string_value(name), "B")))
            return badam_fail(err, BADAM_E_FORMAT,
                              "%s: %s: expected {\"SpecialToken\": {\"id\": ...}} or "
                              "{\"Sequence\": {\"id\": \"A\" or \"B\"}}",
                              file, where);
        if ((st = parse_type_id(piece, &item->type_id, file, where, err))) return st;
        if (seq) {
            item->is_sequence = 1;
            item->seq = strcmp(json_string_value(name), "A") != 0;
        } else if ((st = parse_special_ids(item, specials, name, file, path, err))) {
            return st;
        }
    }
    return BADAM_OK;
}

static badam_status parse_template(tok_post *p, const json_t *j, const char *file, const char *path,
                                   badam_error *err) {
    const json_t *specials = json_object_get(j, "special_tokens");
    badam_status st = parse_pieces(json_object_get(j, "single"), specials, "single", &p->items,
                                   &p->n_items, file, path, err);
    const json_t *pair = json_object_get(j, "pair");
    if (st || !pair || json_is_null(pair)) return st;
    p->has_pair = 1;
    return parse_pieces(pair, specials, "pair", &p->pair_items, &p->n_pair_items, file, path, err);
}

static badam_status parse_sequence(tok_post *p, const json_t *j, const char *file, const char *path,
                                   badam_error *err) {
    const json_t *arr = json_object_get(j, "processors");
    if (!json_is_array(arr))
        return badam_fail(err, BADAM_E_FORMAT, "%s: %s.processors: expected an array", file, path);
    size_t n = (size_t)json_array_size(arr);
    p->children = calloc(n ? n : 1, sizeof *p->children);
    if (!p->children) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    const json_t *c;
    size_t index;
    json_array_foreach(arr, index, c) {
        char sub[512];
        snprintf(sub, sizeof sub, "%s.processors[%zu]", path, p->n_children);
        badam_status st = tok_post_parse(c, file, sub, &p->children[p->n_children], err);
        if (st) return st;
        p->n_children++;
    }
    return BADAM_OK;
}

badam_status tok_post_parse(const json_t *j, const char *file, const char *path, tok_post **out,
                            badam_error *err) {
    *out = NULL;
    const char *type = NULL;
    badam_status st = tok_json_component_type(j, &type, file, path, err);
    if (st) return st;
    tok_post *p = calloc(1, sizeof *p);
    if (!p) return badam_fail(err, BADAM_E_NOMEM, "tokenizer: out of memory");
    if (!strcmp(type, "TemplateProcessing")) {
        p->kind = TOK_POST_TEMPLATE;
        st = parse_template(p, j, file, path, err);
    } else if (!strcmp(type, "ByteLevel")) {
        p->kind = TOK_POST_BYTE_LEVEL; /* only trims offsets, which we do not report */
    } else if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
        p->kind = TOK_POST_CLS_SEP;
        p->roberta = !strcmp(type, "RobertaProcessing");
        st = parse_cls_sep(j, "cls", &p->cls, file, path, err);
        if (!st) st = parse_cls_sep(j, "sep", &p->sep, file, path, err);
    } else if (!strcmp(type, "Sequence")) {
        p->kind = TOK_POST_SEQUENCE;
        st = parse_sequence(p, j, file, path, err);
    } else {
        st = badam_fail(err, BADAM_E_UNSUPPORTED, "%s: %s: unsupported post_processor type '%s'",
                        file, path, type);
    }
    if (st) {
        tok_post_free(p);
        return st;
    }
    *out = p;
    return BADAM_OK;
}

badam_status tok_post_apply(const tok_post *p, tok_ids *ids, badam_error *err) {
    badam_status st = BADAM_OK;
    switch (p->kind) {
    case TOK_POST_BYTE_LEVEL:
        return BADAM_OK;
    case TOK_POST_SEQUENCE:
        for (size_t i = 0; i < p->n_children && !st; i++)
            st = tok_post_apply(p->children[i], ids, err);
        return st;
    case TOK_POST_TEMPLATE:
    case TOK_POST_CLS_SEP: {
        tok_ids out = {0};
        if (p->kind == TOK_POST_CLS_SEP) {
            st = tok_ids_push(&out, p->cls, err);
            if (!st) st = tok_ids_append(&out, ids->data, ids->n, err);
            if (!st) st = tok_ids_push(&out, p->sep, err);
        } else {
            for (size_t i = 0; i < p->n_items && !st; i++) {
                const tok_post_item *it = &p->items[i];
                st = it->is_sequence ? tok_ids_append(&out, ids->data, ids->n, err)
                                     : tok_ids_append(&out, it->ids, it->n_ids, err);
            }
        }
        if (st) {
            free(out.data);
            return st;
        }
        free(ids->data);
        *ids = out;
        return BADAM_OK;
    }
    }
    return BADAM_OK;
}

int32_t tok_post_special(const tok_post *p, int after) {
    if (!p) return -1;
    if (p->kind == TOK_POST_SEQUENCE) {
        for (size_t i = 0; i < p->n_children; i++) {
            int32_t id = tok_post_special(p->children[i], after);
            if (id >= 0) return id;
        }
        return -1;
    }
    if (p->kind == TOK_POST_CLS_SEP) return after ? p->sep : p->cls;
    if (p->kind != TOK_POST_TEMPLATE) return -1;
    int seen = 0;
    for (size_t i = 0; i < p->n_items; i++) {
        if (p->items[i].is_sequence) {
            seen = 1;
            continue;
        }
        if (seen == after && p->items[i].n_ids) return p->items[i].ids[0];
    }
    return -1;
}

size_t tok_post_added(const tok_post *p, int pair) {
    if (!p) return 0;
    size_t n = 0;
    switch (p->kind) {
    case TOK_POST_BYTE_LEVEL:
        return 0;
    case TOK_POST_SEQUENCE:
        for (size_t i = 0; i < p->n_children; i++) n += tok_post_added(p->children[i], pair);
        return n;
    case TOK_POST_CLS_SEP:
        return pair ? (p->roberta ? 4 : 3) : 2;
    case TOK_POST_TEMPLATE: {
        const tok_post_item *items = pair ? p->pair_items : p->items;
        size_t n_items = pair ? p->n_pair_items : p->n_items;
        for (size_t i = 0; i < n_items; i++) n += items[i].is_sequence ? 0 : items[i].n_ids;
        return n;
    }
    }
    return 0;
}

/* Appends n ids and n copies of type id t. */
static badam_status put(tok_ids *ids, tok_ids *types, const int32_t *src, size_t n, int32_t t,
                        badam_error *err) {
    badam_status st = tok_ids_append(ids, src, n, err);
    for (size_t i = 0; i < n && !st; i++) st = tok_ids_push(types, t, err);
    return st;
}

static badam_status encode_template(const tok_post *p, const tok_ids *a, const tok_ids *b,
                                    int add_special, tok_ids *ids, tok_ids *types,
                                    badam_error *err) {
    if (b && !p->has_pair)
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "tokenizer: the TemplateProcessing post_processor has no pair template");
    const tok_post_item *items = b ? p->pair_items : p->items;
    size_t n_items = b ? p->n_pair_items : p->n_items;
    badam_status st = BADAM_OK;
    for (size_t i = 0; i < n_items && !st; i++) {
        const tok_post_item *it = &items[i];
        if (it->is_sequence) {
            const tok_ids *s = it->seq ? b : a;
            if (!s)
                return badam_fail(err, BADAM_E_FORMAT,
                                  "tokenizer: the single template of the post_processor uses $B");
            st = put(ids, types, s->data, s->n, it->type_id, err);
        } else if (add_special) {
            st = put(ids, types, it->ids, it->n_ids, it->type_id, err);
        }
    }
    return st;
}

static badam_status encode_cls_sep(const tok_post *p, const tok_ids *a, const tok_ids *b,
                                   int add_special, tok_ids *ids, tok_ids *types,
                                   badam_error *err) {
    int32_t tb = p->roberta ? 0 : 1; /* B's type id */
    badam_status st = BADAM_OK;
    if (add_special) st = put(ids, types, &p->cls, 1, 0, err);
    if (!st) st = put(ids, types, a->data, a->n, 0, err);
    if (!st && add_special) st = put(ids, types, &p->sep, 1, 0, err);
    if (!b || st) return st;
    if (add_special && p->roberta) st = put(ids, types, &p->sep, 1, tb, err);
    if (!st) st = put(ids, types, b->data, b->n, tb, err);
    if (!st && add_special) st = put(ids, types, &p->sep, 1, tb, err);
    return st;
}

badam_status tok_post_encode(const tok_post *p, const tok_ids *a, const tok_ids *b, int add_special,
                             tok_ids *ids, tok_ids *types, badam_error *err) {
    const tok_post *active = NULL; /* a Sequence's one processor that adds tokens */
    if (p && p->kind == TOK_POST_SEQUENCE) {
        for (size_t i = 0; i < p->n_children; i++) {
            if (p->children[i]->kind == TOK_POST_BYTE_LEVEL) continue;
            if (active)
                return badam_fail(err, BADAM_E_UNSUPPORTED,
                                  "tokenizer: a Sequence post_processor with more than one "
                                  "processor that adds tokens");
            active = p->children[i];
        }
        return tok_post_encode(active, a, b, add_special, ids, types, err);
    }
    if (p && p->kind == TOK_POST_TEMPLATE)
        return encode_template(p, a, b, add_special, ids, types, err);
    if (p && p->kind == TOK_POST_CLS_SEP)
        return encode_cls_sep(p, a, b, add_special, ids, types, err);
    badam_status st = put(ids, types, a->data, a->n, 0, err);
    if (!st && b) st = put(ids, types, b->data, b->n, 1, err);
    return st;
}
