/* Datasets: Alpaca, ShareGPT and pre-tokenized records -> token sequences with trained flags.
 *
 * The file is streamed record by record (dataset_scan.c); each record is parsed on its own, turned
 * into a conversation, rendered with the chat template, truncated to seq_len and kept or dropped.
 *
 * Record formats (the names LLaMA-Factory's converters use):
 *   Alpaca     {"instruction": str, "input": str?, "output": str, "system": str?,
 *               "history": [[query, response], ...]?}
 *              The user message is instruction + "\n" + input (just the non-empty one when the
 *              other is empty); history pairs come before it as earlier turns.
 *   ShareGPT   {"conversations": [{"from": "human"|"user"|"gpt"|"assistant"|"system",
 *               "value": str}, ...], "system": str?}; also "messages" with "role"/"content".
 *              An optional system message first, then alternating user/assistant messages; a final
 *              user message without a response is left out.
 *   Tokenized  {"input_ids": [int, ...], "labels": [int, ...]?} with labels aligned to input_ids
 *              as Hugging Face does (labels[i] is input_ids[i] or -100); without labels every
 *              token is trained.
 * A non-empty "system" field of a record wins over data_options.system_prompt, which wins over the
 * template's default system text (an empty option string means no system text).
 *
 * Truncation (seq_len > 0): chat records keep, pair by pair, the lengths LLaMA-Factory's
 * infer_seqlen gives (a short response is kept whole and the prompt gets the rest; a short prompt
 * is kept whole and the response gets the rest; otherwise both shrink in proportion), cutting the
 * prompt's start (so the user's last words and the assistant header stay next to the response)
 * and the response's end; pairs past the budget are dropped. LLaMA-Factory cuts the prompt's end
 * instead; we keep the tokens adjacent to what is trained. Pre-tokenized records keep their first
 * seq_len tokens. The first token of an example is never trained (nothing predicts it). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "io/files.h"
#include "io/json_get.h"
#include "text/data_internal.h"

void data_infer_seqlen(size_t source_len, size_t target_len, size_t cutoff_len, size_t *source_keep,
                       size_t *target_keep) {
    size_t max_target;
    if (target_len * 2 < cutoff_len)
        max_target = cutoff_len;
    else if (source_len * 2 < cutoff_len)
        max_target = cutoff_len - source_len;
    else
        max_target =
            (size_t)((double)cutoff_len * ((double)target_len / (double)(source_len + target_len)));
    size_t new_target = max_target < target_len ? max_target : target_len;
    size_t max_source = cutoff_len > new_target ? cutoff_len - new_target : 0;
    *source_keep = max_source < source_len ? max_source : source_len;
    *target_keep = new_target;
}

int data_truncate_pairs(token_seq *seq, const template_pair *pairs, size_t n_pairs,
                        size_t seq_len) {
    if (seq->len <= seq_len) return 0;
    size_t total = 0, read = 0, write = 0;
    for (size_t p = 0; p < n_pairs && total < seq_len; p++) {
        size_t sk, tk, s = pairs[p].source_len, t = pairs[p].target_len;
        data_infer_seqlen(s, t, seq_len - total, &sk, &tk);
        /* The prompt's last sk tokens, then the response's first tk (write <= read always). */
        memmove(seq->ids + write, seq->ids + read + s - sk, sk * sizeof *seq->ids);
        memmove(seq->trained + write, seq->trained + read + s - sk, sk);
        write += sk;
        memmove(seq->ids + write, seq->ids + read + s, tk * sizeof *seq->ids);
        memmove(seq->trained + write, seq->trained + read + s, tk);
        write += tk;
        total += sk + tk;
        read += s + t;
    }
    seq->len = write;
    return 1;
}

/* ---------------------------------------------------------------- records */

typedef struct record_ctx {
    const char *path;
    size_t index, line, byte; /* byte: the record's offset in the file */
    badam_error *err;
} record_ctx;

static badam_status rec_fail(const record_ctx *r, badam_status st, const char *field,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* "<file>: record <i> (0-based, line <l>, byte <b>): field '<f>': <message>" */
static badam_status rec_fail(const record_ctx *r, badam_status st, const char *field,
                             const char *fmt, ...) {
    char msg[BADAM_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (field)
        return badam_fail(r->err, st,
                          "%s: record %zu (0-based, line %zu, byte %zu): field '%s': %s", r->path,
                          r->index, r->line, r->byte, field, msg);
    return badam_fail(r->err, st, "%s: record %zu (0-based, line %zu, byte %zu): %s", r->path,
                      r->index, r->line, r->byte, msg);
}

static const json_t *get_field(const json_t *obj, const char *name) {
    return json_field(obj, name);
}

/* A string of text: its bytes and their number (it may hold U+0000). */
typedef struct text_str {
    const char *s;
    size_t n;
} text_str;

static text_str str_of(const json_t *item) {
    return (text_str){json_string_value(item), json_string_length(item)};
}

/* 1 when the JSON string is exactly the C string name (no byte more or less). */
static int str_is(const json_t *item, const char *name) {
    size_t n = strlen(name);
    return json_string_length(item) == n && !memcmp(json_string_value(item), name, n);
}

/* A string field: out->s NULL when absent/null and optional. */
static badam_status get_string(const record_ctx *r, const json_t *obj, const char *name,
                               int required, text_str *out) {
    *out = (text_str){NULL, 0};
    const json_t *item = get_field(obj, name);
    if (!item) {
        if (!required) return BADAM_OK;
        return rec_fail(r, BADAM_E_FORMAT, name, "missing (required)");
    }
    if (!json_is_string(item))
        return rec_fail(r, BADAM_E_FORMAT, name, "expected a string, got %s", json_type_name(item));
    *out = str_of(item);
    return BADAM_OK;
}

/* Growable list of turns; the strings are owned by the JSON tree or by `owned`. */
typedef struct turn_list {
    chat_turn *t;
    size_t n, cap;
    char *owned[1];
} turn_list;

static badam_status turns_push(turn_list *l, chat_role role, text_str content, badam_error *err) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        chat_turn *t = realloc(l->t, cap * sizeof *t);
        if (!t) return badam_fail(err, BADAM_E_NOMEM, "dataset: out of memory");
        l->t = t;
        l->cap = cap;
    }
    /* the exact length, also 0 (a chat_turn's len 0 would mean strlen, which is 0 too) */
    l->t[l->n] = (chat_turn){role, content.s, content.n};
    l->n++;
    return BADAM_OK;
}

static data_format detect_format(const json_t *obj) {
    if (json_object_get(obj, "input_ids")) return DATA_FORMAT_TOKENIZED;
    if (json_object_get(obj, "conversations") || json_object_get(obj, "messages"))
        return DATA_FORMAT_SHAREGPT;
    if (json_object_get(obj, "instruction") || json_object_get(obj, "output"))
        return DATA_FORMAT_ALPACA;
    return DATA_FORMAT_AUTO;
}

static badam_status alpaca_turns(const record_ctx *r, const json_t *obj, turn_list *l,
                                 text_str *system) {
    text_str instruction, input, output;
    badam_status st;
    if ((st = get_string(r, obj, "instruction", 1, &instruction)) != BADAM_OK ||
        (st = get_string(r, obj, "input", 0, &input)) != BADAM_OK ||
        (st = get_string(r, obj, "output", 1, &output)) != BADAM_OK ||
        (st = get_string(r, obj, "system", 0, system)) != BADAM_OK)
        return st;
    const json_t *history = get_field(obj, "history");
    if (history) {
        if (!json_is_array(history))
            return rec_fail(r, BADAM_E_FORMAT, "history",
                            "expected an array of [query, response] pairs, got %s",
                            json_type_name(history));
        size_t k;
        const json_t *pair;
        json_array_foreach(history, k, pair) {
            const json_t *q = json_is_array(pair) ? json_array_get(pair, 0) : NULL;
            const json_t *a = json_is_array(pair) ? json_array_get(pair, 1) : NULL;
            if (!json_is_array(pair) || json_array_size(pair) != 2 || !json_is_string(q) ||
                !json_is_string(a))
                return rec_fail(r, BADAM_E_FORMAT, "history",
                                "element %zu must be a [query, response] pair of strings, got %s",
                                k, json_type_name(pair));
            if ((st = turns_push(l, CHAT_USER, str_of(q), r->err)) != BADAM_OK ||
                (st = turns_push(l, CHAT_ASSISTANT, str_of(a), r->err)) != BADAM_OK)
                return st;
        }
    }
    /* instruction "\n" input, as LLaMA-Factory's alpaca converter joins the non-empty parts. */
    text_str query = instruction;
    if (input.n) {
        if (instruction.n) {
            size_t a = instruction.n, b = input.n;
            char *joined = malloc(a + b + 2);
            if (!joined) return badam_fail(r->err, BADAM_E_NOMEM, "dataset: out of memory");
            memcpy(joined, instruction.s, a);
            joined[a] = '\n';
            memcpy(joined + a + 1, input.s, b);
            joined[a + b + 1] = '\0';
            l->owned[0] = joined;
            query = (text_str){joined, a + b + 1};
        } else {
            query = input;
        }
    }
    if ((st = turns_push(l, CHAT_USER, query, r->err)) != BADAM_OK) return st;
    return turns_push(l, CHAT_ASSISTANT, output, r->err);
}

static badam_status sharegpt_turns(const record_ctx *r, const json_t *obj, turn_list *l,
                                   text_str *system) {
    badam_status st;
    if ((st = get_string(r, obj, "system", 0, system)) != BADAM_OK) return st;
    const char *field = "conversations", *role_key = "from", *text_key = "value";
    const json_t *conv = get_field(obj, field);
    if (!conv && get_field(obj, "messages")) {
        field = "messages";
        conv = get_field(obj, field);
    }
    if (!conv) return rec_fail(r, BADAM_E_FORMAT, field, "missing (required)");
    if (!json_is_array(conv))
        return rec_fail(r, BADAM_E_FORMAT, field, "expected an array of messages, got %s",
                        json_type_name(conv));
    size_t k;
    const json_t *m;
    json_array_foreach(conv, k, m) {
        if (!json_is_object(m))
            return rec_fail(r, BADAM_E_FORMAT, field, "message %zu: expected an object, got %s", k,
                            json_type_name(m));
        const json_t *role = get_field(m, "from"), *text = get_field(m, "value");
        role_key = "from";
        text_key = "value";
        if (!role && !text) {
            role_key = "role";
            text_key = "content";
            role = get_field(m, "role");
            text = get_field(m, "content");
        }
        if (!json_is_string(role))
            return rec_fail(r, BADAM_E_FORMAT, field, "message %zu: '%s' must be a string, got %s",
                            k, role_key, json_type_name(role));
        if (!json_is_string(text))
            return rec_fail(r, BADAM_E_FORMAT, field, "message %zu: '%s' must be a string, got %s",
                            k, text_key, json_type_name(text));
        const char *name = json_string_value(role); /* compared with its length: str_is */
        chat_role cr;
        if (str_is(role, "human") || str_is(role, "user"))
            cr = CHAT_USER;
        else if (str_is(role, "gpt") || str_is(role, "assistant"))
            cr = CHAT_ASSISTANT;
        else if (str_is(role, "system"))
            cr = CHAT_SYSTEM;
        else
            return rec_fail(r, BADAM_E_UNSUPPORTED, field,
                            "message %zu: role '%s' is not supported (human/user, gpt/assistant, "
                            "system)",
                            k, name);
        if (cr == CHAT_SYSTEM) {
            if (k != 0)
                return rec_fail(r, BADAM_E_FORMAT, field,
                                "message %zu: a system message may only come first", k);
            *system = str_of(text);
            continue;
        }
        size_t pos = l->n; /* 0, 1, ... among user/assistant messages */
        chat_role want = pos % 2 == 0 ? CHAT_USER : CHAT_ASSISTANT;
        if (cr != want)
            return rec_fail(r, BADAM_E_FORMAT, field,
                            "message %zu: expected %s message (user and assistant messages must "
                            "alternate, starting with the user), got '%s'",
                            k, want == CHAT_USER ? "a user" : "an assistant", name);
        if ((st = turns_push(l, cr, str_of(text), r->err)) != BADAM_OK) return st;
    }
    if (l->n % 2 == 1) l->n--; /* a final question without an answer teaches nothing */
    return BADAM_OK;
}

static badam_status tokenized_example(const record_ctx *r, const json_t *obj,
                                      const badam_tokenizer *tok, token_seq *seq) {
    const json_t *ids = get_field(obj, "input_ids"), *labels = get_field(obj, "labels");
    if (!ids) return rec_fail(r, BADAM_E_FORMAT, "input_ids", "missing (required)");
    if (!json_is_array(ids))
        return rec_fail(r, BADAM_E_FORMAT, "input_ids", "expected an array of token ids, got %s",
                        json_type_name(ids));
    if (labels && !json_is_array(labels))
        return rec_fail(r, BADAM_E_FORMAT, "labels", "expected an array of token ids, got %s",
                        json_type_name(labels));
    size_t n = json_array_size(ids);
    if (labels && json_array_size(labels) != n)
        return rec_fail(r, BADAM_E_FORMAT, "labels", "has %zu entries but input_ids has %zu",
                        json_array_size(labels), n);
    long long vocab = tok ? tokenizer_vocab_size(tok) : 2147483647LL;
    badam_status st = token_seq_reserve(seq, n, r->err);
    if (st != BADAM_OK) return st;
    size_t i;
    const json_t *x;
    json_array_foreach(ids, i, x) {
        long long v;
        if (!json_int_in_range(x, 0, vocab - 1, &v))
            return rec_fail(r, BADAM_E_FORMAT, "input_ids",
                            "entry %zu must be a token id in [0, %lld), got %s", i, vocab,
                            json_is_number(x) ? "an out-of-range number" : json_type_name(x));
        int trained = 1;
        if (labels) {
            const json_t *lab = json_array_get(labels, i);
            long long lv;
            if (!json_int_in_range(lab, -100, vocab - 1, &lv) || (lv != -100 && lv != v))
                return rec_fail(r, BADAM_E_FORMAT, "labels",
                                "entry %zu must be -100 or equal input_ids[%zu] = %lld (labels "
                                "aligned with input_ids, as Hugging Face stores them)",
                                i, i, v);
            trained = lv != -100;
        }
        seq->ids[seq->len] = (int32_t)v;
        seq->trained[seq->len] = (uint8_t)trained;
        seq->len++;
    }
    return BADAM_OK;
}

/* ---------------------------------------------------------------- loading */

static badam_status add_example(data_set *ds, size_t *cap, token_seq *seq, badam_error *err) {
    if (ds->n == *cap) {
        size_t c = *cap ? *cap * 2 : 256;
        token_seq *e = realloc(ds->examples, c * sizeof *e);
        if (!e) return badam_fail(err, BADAM_E_NOMEM, "dataset: out of memory");
        ds->examples = e;
        *cap = c;
    }
    /* Shrink to fit: a dataset holds many sequences. */
    if (seq->cap > seq->len && seq->len > 0) {
        int32_t *ids = realloc(seq->ids, seq->len * sizeof *ids);
        if (ids) seq->ids = ids;
        uint8_t *tr = realloc(seq->trained, seq->len);
        if (tr) seq->trained = tr;
        if (ids && tr) seq->cap = seq->len;
    }
    ds->examples[ds->n++] = *seq;
    memset(seq, 0, sizeof *seq);
    return BADAM_OK;
}

static const char *format_name(data_format f) {
    switch (f) {
    case DATA_FORMAT_ALPACA:
        return "Alpaca";
    case DATA_FORMAT_SHAREGPT:
        return "ShareGPT";
    case DATA_FORMAT_TOKENIZED:
        return "tokenized";
    default:
        return "auto";
    }
}

/* One record -> *seq (empty when the record holds no conversation). */
static badam_status record_to_example(const record_ctx *r, const json_t *obj, data_format format,
                                      const badam_tokenizer *tok, const data_options *o,
                                      token_seq *seq, int *truncated) {
    *truncated = 0;
    badam_status st;
    if (format == DATA_FORMAT_TOKENIZED) {
        if ((st = tokenized_example(r, obj, tok, seq)) != BADAM_OK) return st;
        if (o->seq_len > 0 && seq->len > (size_t)o->seq_len) {
            seq->len = (size_t)o->seq_len;
            *truncated = 1;
        }
        return BADAM_OK;
    }
    turn_list l = {0};
    text_str system = {NULL, 0};
    st = format == DATA_FORMAT_ALPACA ? alpaca_turns(r, obj, &l, &system)
                                      : sharegpt_turns(r, obj, &l, &system);
    if (st == BADAM_OK && l.n > 0) {
        if (!system.n && o->system_prompt)
            system = (text_str){o->system_prompt, strlen(o->system_prompt)};
        else if (!system.n)
            system = (text_str){NULL, 0}; /* the template's default */
        template_pair *pairs = NULL;
        size_t n_pairs = 0;
        st = template_render_pairs(o->template_name, tok, l.t, l.n, system.s, system.n, 0, seq,
                                   &pairs, &n_pairs, r->err);
        if (st != BADAM_OK)
            badam_error_prefix(r->err, "%s: record %zu (0-based, line %zu, byte %zu)", r->path,
                               r->index, r->line, r->byte);
        else if (o->seq_len > 0)
            *truncated = data_truncate_pairs(seq, pairs, n_pairs, (size_t)o->seq_len);
        free(pairs);
    }
    free(l.t);
    free(l.owned[0]);
    return st;
}

/* One record's text as a JSON object (*obj, the caller's), after the checks that do not depend
 * on its fields: UTF-8, JSON, an object, a known format (*format, detected from the first record
 * when auto), and a tokenizer able to render it. */
static badam_status parse_record(const record_ctx *r, const char *text, size_t len,
                                 data_format *format, const badam_tokenizer *tok,
                                 const data_options *o, json_t **obj) {
    *obj = NULL;
    if (!io_valid_utf8(text, len))
        return rec_fail(r, BADAM_E_FORMAT, NULL, "invalid UTF-8 at byte %zu of the file",
                        r->byte + io_utf8_error_offset(text, len));
    io_json_error je;
    json_t *j = io_json_loadb(text, len, 0, &je);
    if (!j)
        return rec_fail(r, BADAM_E_FORMAT, NULL,
                        "malformed JSON at byte %zu of the file (byte %zu of the record): %s",
                        r->byte + je.offset, je.offset, je.text);
    badam_status st = BADAM_OK;
    if (!json_is_object(j)) {
        st = rec_fail(r, BADAM_E_FORMAT, NULL, "expected a JSON object, got %s", json_type_name(j));
    } else if (*format == DATA_FORMAT_AUTO && (*format = detect_format(j)) == DATA_FORMAT_AUTO) {
        st = rec_fail(r, BADAM_E_FORMAT, NULL,
                      "unknown record format: expected 'instruction'/'output' (Alpaca), "
                      "'conversations' or 'messages' (ShareGPT), or 'input_ids' (tokenized)");
    } else if (*format != DATA_FORMAT_TOKENIZED && !tok) {
        st =
            rec_fail(r, BADAM_E_INVALID, NULL, "%s records need a tokenizer", format_name(*format));
    } else if (*format != DATA_FORMAT_TOKENIZED && tokenizer_eos_id(tok) < 0 &&
               tokenizer_eos_problem(tok) && template_uses_eos(o->template_name)) {
        /* the tokenizer's fault, not the record's */
        st = badam_fail(r->err, BADAM_E_UNSUPPORTED,
                        "%s (template '%s' ends each response with the EOS token)",
                        tokenizer_eos_problem(tok), o->template_name);
    }
    if (st) {
        json_decref(j);
        return st;
    }
    *obj = j;
    return BADAM_OK;
}

/* Counts a rendered record and keeps it when it has a trained token. */
static badam_status keep_example(data_set *ds, size_t *cap, token_seq *seq, int truncated,
                                 badam_error *err) {
    ds->stats.records++;
    if (seq->len > 0) seq->trained[0] = 0; /* nothing predicts the first token */
    size_t trained = seq->len ? token_seq_trained_count(seq) : 0;
    if (trained == 0) {
        ds->stats.dropped_empty++;
        return BADAM_OK;
    }
    ds->stats.truncated += truncated != 0;
    ds->stats.tokens += seq->len;
    ds->stats.trained_tokens += trained;
    return add_example(ds, cap, seq, err);
}

/* The error of a file that gave no example. */
static badam_status no_examples(const char *path, const data_set *ds, int is_array, int seq_len,
                                badam_error *err) {
    if (ds->stats.records == 0)
        return badam_fail(err, BADAM_E_FORMAT, "%s: no records (%s)", path,
                          is_array ? "empty JSON array" : "no JSON lines");
    if (seq_len > 0)
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: no usable examples: all %zu records were dropped (no trainable "
                          "token after truncation to %d tokens)",
                          path, ds->stats.records, seq_len);
    return badam_fail(err, BADAM_E_FORMAT,
                      "%s: no usable examples: none of the %zu records has a trainable token", path,
                      ds->stats.records);
}

badam_status data_load(const char *path, const badam_tokenizer *tok, const data_options *opts,
                       data_set **out, badam_error *err) {
    *out = NULL;
    data_options o = {0};
    if (opts) o = *opts;
    if (!o.template_name) o.template_name = "default";
    if (!template_known(o.template_name))
        return badam_fail(err, BADAM_E_INVALID,
                          "unknown template '%s' (known: default, alpaca, llama2, llama3, chatml, "
                          "mistral)",
                          o.template_name);
    data_scanner *sc = NULL;
    badam_status st = data_scanner_open(path, &sc, err);
    if (st != BADAM_OK) return st;
    data_set *ds = calloc(1, sizeof *ds);
    if (!ds) {
        data_scanner_close(sc);
        return badam_fail(err, BADAM_E_NOMEM, "dataset: out of memory");
    }
    size_t cap = 0;
    data_format format = o.format;
    token_seq seq = {0};
    for (;;) {
        const char *text;
        size_t len;
        record_ctx r = {.path = path, .err = err};
        r.index = ds->stats.records;
        if ((st = data_scanner_next(sc, &text, &len, &r.line, err)) != BADAM_OK) break;
        if (!text) break;
        r.byte = data_scanner_record_offset(sc);
        json_t *obj = NULL;
        if ((st = parse_record(&r, text, len, &format, tok, &o, &obj))) break;
        int truncated = 0;
        seq.len = 0;
        st = record_to_example(&r, obj, format, tok, &o, &seq, &truncated);
        json_decref(obj);
        if (st || (st = keep_example(ds, &cap, &seq, truncated, err))) break;
    }
    token_seq_free(&seq);
    int is_array = data_scanner_is_array(sc);
    data_scanner_close(sc);
    if (st == BADAM_OK && ds->n == 0) st = no_examples(path, ds, is_array, o.seq_len, err);
    if (st != BADAM_OK) {
        data_free(ds);
        return st;
    }
    ds->stats.examples = ds->n;
    ds->format = format;
    *out = ds;
    return BADAM_OK;
}
