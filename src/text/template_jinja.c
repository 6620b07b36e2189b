/* A template's format as a Jinja chat_template, the string transformers' apply_chat_template
 * (and vLLM, llama.cpp) render, so that a folder fine-tuned with `--template T` describes the
 * format it was trained on.
 *
 * The Jinja is generated from the same piece tables template.c renders (template_internal.h), for
 * one tokenizer: the rendered text, tokenized as one string the way Hugging Face tokenizes it
 * (special tokens split out first, then the normalizer and pre-tokenizer on each stretch between
 * them), must give the ids template_render trains on. Two facts make that so:
 *   - special tokens are written as their strings (bos_token, eos_token and the template's markup
 *     tokens, by their literal text), and the tokenizer finds them again;
 *   - template.c tokenizes each text run in its own call. A tokenizer that prefixes every call
 *     (SentencePiece-style, e.g. Llama 2's "▁" prepended by the normalizer) prefixes each stretch
 *     after a special token too, but not a run that follows other text in the same stretch: there
 *     the Jinja writes the space itself. Whether a tokenizer prefixes is probed, not assumed.
 * Where two runs meet without a special token between them, whole-string tokenization can still
 * merge across the seam (a byte-level pre-tokenizer keeps " x" together where the runs were " "
 * and "x"); test_template_jinja checks every template with real tokenizers.
 *
 * Shape: an optional first system message (else the system text training used), then messages
 * alternating user/assistant (raise_exception otherwise); the assistant header after the last
 * user message only with add_generation_prompt. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/data.h"
#include "text/template_internal.h"

typedef struct jbuf {
    char *s;
    size_t len, cap;
    int failed;
} jbuf;

static void put(jbuf *b, const char *fmt, ...) {
    if (b->failed) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* A Jinja string literal: '...' with \\, \', \n, \r, \t escaped. */
static void put_literal(jbuf *b, const char *text) {
    put(b, "'");
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '\\':
            put(b, "\\\\");
            break;
        case '\'':
            put(b, "\\'");
            break;
        case '\n':
            put(b, "\\n");
            break;
        case '\r':
            put(b, "\\r");
            break;
        case '\t':
            put(b, "\\t");
            break;
        default:
            put(b, "%c", *p);
        }
    }
    put(b, "'");
}

typedef struct jctx {
    int prefixing;   /* the tokenizer prefixes each separately tokenized text */
    const char *bos; /* bos_token string, or NULL */
    const char *eos; /* eos_token string, or NULL */
} jctx;

/* A text run being collected: literal texts and the content expression, in order. */
typedef struct run {
    const piece *parts[16];
    int n;
    int trained;
    int continuing; /* the run began before a GEN marker: no new prefix */
} run;

static void put_run_expr(jbuf *b, const run *r, const char *content) {
    for (int i = 0; i < r->n; i++) {
        if (i) put(b, " + ");
        if (r->parts[i]->kind == P_TEXT)
            put_literal(b, r->parts[i]->text);
        else
            put(b, "%s", content);
    }
}

/* Emits the run (a separate tokenizer call in template.c) and empties it. */
static void flush_run(jbuf *b, const jctx *x, run *r, const char *content) {
    if (r->n == 0) return;
    if (!x->prefixing || r->continuing) {
        put(b, "{{ ");
        put_run_expr(b, r, content);
        put(b, " }}");
    } else {
        put(b, "{%%- set run = ");
        put_run_expr(b, r, content);
        put(b, " -%%}{%%- if run -%%}{%%- if not ns.seg -%%}{{ ' ' }}{%%- endif -%%}{{ run }}"
               "{%%- set ns.seg = false -%%}{%%- endif -%%}");
    }
    r->n = 0;
    r->continuing = 0;
}

static void put_special(jbuf *b, const jctx *x, const char *token) {
    put(b, "{{ ");
    put_literal(b, token);
    put(b, " }}");
    if (x->prefixing) put(b, "{%%- set ns.seg = true -%%}");
}

/* One element, as template.c's render_element renders it. `content` is the Jinja expression of
 * the message text; `gen` the condition under which the part after a GEN marker is rendered. */
static void put_element(jbuf *b, const jctx *x, const piece *pieces, const char *content,
                        const char *gen) {
    run r = {{0}, 0, 0, 0};
    int in_gen = 0;
    for (const piece *p = pieces; p && p->kind != P_END; p++) {
        switch (p->kind) {
        case P_TEXT:
        case P_CONTENT:
            if (p->kind == P_TEXT && !p->text[0]) break;
            if (r.n > 0 && r.trained != p->trained) flush_run(b, x, &r, content);
            r.trained = p->trained;
            if (r.n < (int)(sizeof r.parts / sizeof r.parts[0])) r.parts[r.n++] = p;
            break;
        case P_SPLIT:
            flush_run(b, x, &r, content);
            break;
        case P_GEN: {
            /* Text before the marker opens the run (it holds a literal: never empty); the rest
             * continues it inside the condition. */
            int open = r.n > 0;
            flush_run(b, x, &r, content);
            r.continuing = open;
            put(b, "{%%- if %s -%%}", gen);
            in_gen = 1;
            break;
        }
        case P_BOS:
            flush_run(b, x, &r, content);
            if (x->bos) put_special(b, x, x->bos);
            break;
        case P_EOS:
            flush_run(b, x, &r, content);
            if (x->eos) put_special(b, x, x->eos);
            break;
        case P_TOKEN:
            flush_run(b, x, &r, content);
            put_special(b, x, p->text);
            break;
        default:
            break;
        }
    }
    flush_run(b, x, &r, content);
    if (in_gen) put(b, "{%%- endif -%%}");
}

/* Text-only pieces as one Jinja expression (the merged system block). */
static void put_text_expr(jbuf *b, const piece *pieces, const char *content) {
    int n = 0;
    for (const piece *p = pieces; p && p->kind != P_END; p++, n++) {
        if (n) put(b, " + ");
        if (p->kind == P_TEXT)
            put_literal(b, p->text);
        else
            put(b, "%s", content);
    }
    if (!n) put(b, "''");
}

/* 1 when tokenizing "a" and "\n" separately differs from tokenizing "a\n": each call gains a
 * prefix (SentencePiece's "▁"). */
static int tokenizer_prefixes_calls(const badam_tokenizer *tok) {
    int32_t *a = NULL, *nl = NULL, *both = NULL;
    size_t na = 0, nn = 0, nb = 0;
    badam_error err;
    int differs = 0;
    if (tokenizer_encode(tok, "a", 1, 0, &a, &na, &err) == BADAM_OK &&
        tokenizer_encode(tok, "\n", 1, 0, &nl, &nn, &err) == BADAM_OK &&
        tokenizer_encode(tok, "a\n", 2, 0, &both, &nb, &err) == BADAM_OK)
        differs = na + nn != nb || memcmp(a, both, na * sizeof *a) != 0 ||
                  memcmp(nl, both + na, nn * sizeof *nl) != 0;
    free(a);
    free(nl);
    free(both);
    return differs;
}

const char *template_end_of_turn(const char *name) {
    const chat_template *tpl = template_find(name ? name : "default");
    if (!tpl) return NULL;
    for (const piece *p = tpl->assistant; p->kind != P_END; p++)
        if (p->trained && p->kind == P_TOKEN) return p->text;
    return NULL;
}

badam_status template_chat_jinja(const char *name, const badam_tokenizer *tok, const char *system,
                                 char **out, badam_error *err) {
    *out = NULL;
    const chat_template *tpl = template_find(name ? name : "default");
    if (!tpl) return badam_fail(err, BADAM_E_INVALID, "unknown template '%s'", name);
    jctx x = {tokenizer_prefixes_calls(tok), NULL, NULL};
    int32_t bos = tokenizer_bos_id(tok), eos = tokenizer_eos_id(tok);
    if (bos >= 0) x.bos = tokenizer_id_to_token(tok, bos);
    if (eos >= 0) x.eos = tokenizer_id_to_token(tok, eos);
    jbuf b = {0};
    const char *msg = "message['content']";
    const char *gen = "not loop.last or add_generation_prompt";
    put(&b,
        "{%%- if messages and messages[0]['role'] == 'system' -%%}"
        "{%%- set system = messages[0]['content'] -%%}{%%- set loop_messages = messages[1:] -%%}"
        "{%%- else -%%}{%%- set system = ");
    put_literal(&b, system ? system : tpl->default_system);
    put(&b, " -%%}{%%- set loop_messages = messages -%%}{%%- endif -%%}");
    if (x.prefixing) put(&b, "{%%- set ns = namespace(seg=true) -%%}");
    put(&b, "{%%- for message in loop_messages -%%}"
            "{%%- if message['role'] not in ['user', 'assistant'] or (message['role'] == 'user') "
            "!= (loop.index0 %% 2 == 0) -%%}{{ raise_exception('Conversation roles must be an "
            "optional system message, then user and assistant messages alternating, starting "
            "with the user') }}{%%- endif -%%}"
            "{%%- if message['role'] == 'user' -%%}{%%- if loop.first -%%}");
    put_element(&b, &x, tpl->prefix, msg, gen);
    if (tpl->system) {
        put(&b, "{%%- if system -%%}");
        put_element(&b, &x, tpl->system, "system", gen);
        put(&b, "{%%- endif -%%}");
    }
    if (tpl->system_merge) {
        put(&b, "{%%- if system -%%}{%%- set content = ");
        put_text_expr(&b, tpl->system_merge, "system");
        put(&b, " + message['content'] -%%}{%%- else -%%}{%%- set content = message['content'] "
                "-%%}{%%- endif -%%}");
        put_element(&b, &x, tpl->user, "content", gen);
    } else {
        put_element(&b, &x, tpl->user, msg, gen);
    }
    put(&b, "{%%- else -%%}");
    put_element(&b, &x, tpl->separator, msg, gen);
    put_element(&b, &x, tpl->user, msg, gen);
    put(&b, "{%%- endif -%%}{%%- else -%%}");
    put_element(&b, &x, tpl->assistant, msg, gen);
    put(&b, "{%%- endif -%%}{%%- endfor -%%}");
    if (b.failed) {
        free(b.s);
        return badam_fail(err, BADAM_E_NOMEM, "template '%s': out of memory", tpl->name);
    }
    *out = b.s;
    return BADAM_OK;
}
