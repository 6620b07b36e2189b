/* Chat templates: a conversation -> token ids with a trained flag per token.
 *
 * A template is a few "elements" (prefix, system, separator, user, assistant), each a list of
 * pieces: literal text, the message content, and special tokens. Rendering follows LLaMA-Factory's
 * Template._encode: the text of an element is tokenized without special tokens (add_special = 0),
 * each element separately, and special tokens are inserted as their ids (tokenizer_token_to_id),
 * never spelled out as text for the tokenizer to find. A text run also ends at every special token
 * and at an explicit SPLIT, where the reference tokenizes the two sides in separate calls (which
 * matters for SentencePiece tokenizers, whose normalizer prepends "▁" to every call).
 *
 * Labels: the assistant element's content and its end token (EOS, <|eot_id|>, <|im_end|>) are
 * trained; everything else (prefix, system, user, template markup, the assistant header, and text
 * after the end token such as chatml's "\n") is not.
 *
 * Where user content itself contains a special-token string (e.g. "<|eot_id|>"), what it becomes is
 * the tokenizer's business: tokenizer_encode matches added tokens in text the way Hugging Face's
 * encode(..., add_special_tokens=False) does, which is also what LLaMA-Factory and
 * apply_chat_template produce. */
#include <stdlib.h>
#include <string.h>

#include "text/data_internal.h"
#include "text/template_internal.h"

// clang-format off
#define END              {P_END, NULL, 0}
#define TEXT(s)          {P_TEXT, s, 0}
#define CONTENT          {P_CONTENT, NULL, 0}
#define CONTENT_TRAINED  {P_CONTENT, NULL, 1}
#define TOKEN(s)         {P_TOKEN, s, 0}
#define TOKEN_TRAINED(s) {P_TOKEN, s, 1}
#define BOS              {P_BOS, NULL, 0}
#define EOS_TRAINED      {P_EOS, NULL, 1}
#define SPLIT            {P_SPLIT, NULL, 0}
#define GEN              {P_GEN, NULL, 0}
// clang-format on

/* default: the LLaMA-Factory template the reference BAdam experiments used (llmtuner
 * extras/template.py of mid-2023, register_template(name="default"); ../shared/data/README.md):
 *   pair 0: BOS + system + "\n" + "Human: {q}\nAssistant: "    then {response} + EOS
 *   pair t: "\n" + BOS + "Human: {q}\nAssistant: "             then {response} + EOS
 * system, separator, query and response are tokenized in separate calls, as there; without a system
 * text pair 0 is BOS + query. BOS is the tokenizer's bos_token (tokenizer_config.json), as there;
 * a tokenizer without one (Qwen) gets none. */
static const piece default_prefix[] = {BOS, END};
static const piece default_system[] = {CONTENT, SPLIT, TEXT("\n"), END};
static const piece default_separator[] = {TEXT("\n"), BOS, END};
static const piece default_user[] = {TEXT("Human: "), CONTENT, GEN, TEXT("\nAssistant: "), END};
static const piece default_assistant[] = {CONTENT_TRAINED, EOS_TRAINED, END};

/* alpaca: LLaMA-Factory's register_template(name="alpaca") (src/llamafactory/data/template.py):
 *   system "{system}" (default below), user "### Instruction:\n{q}\n\n### Response:\n",
 *   assistant "{response}" EOS "\n\n" (the "\n\n" untrained here; LLaMA-Factory trains it),
 * each element tokenized separately; plus the tokenizer's bos_token first, as LLaMA-Factory's 2023
 * alpaca template (and every Llama pre-training sequence) had. */
static const piece alpaca_prefix[] = {BOS, END};
static const piece alpaca_system[] = {CONTENT, END};
static const piece alpaca_user[] = {TEXT("### Instruction:\n"), CONTENT, GEN,
                                    TEXT("\n\n### Response:\n"), END};
static const piece alpaca_assistant[] = {CONTENT_TRAINED, EOS_TRAINED, SPLIT, TEXT("\n\n"), END};

/* llama2: LLaMA-Factory's register_template(name="llama2") with Llama2Template, which is
 * meta-llama/Llama-2-7b-chat-hf's chat_template tokenized per message:
 *   BOS "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{q} [/INST]"  then {response} EOS
 *   BOS "[INST] {q} [/INST]"                                  then {response} EOS
 * (the system block only in the first user message; no default system, as in Llama 2's config). The
 * response is tokenized on its own, so SentencePiece's prepended "▁" gives the template's space
 * after [/INST]; the chat_template's content.strip() and its space before EOS are not applied. */
static const piece llama2_system_merge[] = {TEXT("<<SYS>>\n"), CONTENT, TEXT("\n<</SYS>>\n\n"),
                                            END};
static const piece llama2_user[] = {BOS, TEXT("[INST] "), CONTENT, TEXT(" [/INST]"), END};
static const piece llama2_assistant[] = {CONTENT_TRAINED, EOS_TRAINED, END};

/* llama3: LLaMA-Factory's register_template(name="llama3") = Meta-Llama-3-8B-Instruct's
 * chat_template without its | trim:
 *   <|begin_of_text|> [<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>]
 *   <|start_header_id|>user<|end_header_id|>\n\n{q}<|eot_id|>
 *   <|start_header_id|>assistant<|end_header_id|>\n\n   then {response}<|eot_id|>
 * No default system. <|eot_id|> ends each response and is trained. */
static const piece llama3_prefix[] = {TOKEN("<|begin_of_text|>"), END};
static const piece llama3_system[] = {TOKEN("<|start_header_id|>"),
                                      TEXT("system"),
                                      TOKEN("<|end_header_id|>"),
                                      TEXT("\n\n"),
                                      CONTENT,
                                      TOKEN("<|eot_id|>"),
                                      END};
static const piece llama3_user[] = {TOKEN("<|start_header_id|>"),
                                    TEXT("user"),
                                    TOKEN("<|end_header_id|>"),
                                    TEXT("\n\n"),
                                    CONTENT,
                                    TOKEN("<|eot_id|>"),
                                    GEN,
                                    TOKEN("<|start_header_id|>"),
                                    TEXT("assistant"),
                                    TOKEN("<|end_header_id|>"),
                                    TEXT("\n\n"),
                                    END};
static const piece llama3_assistant[] = {CONTENT_TRAINED, TOKEN_TRAINED("<|eot_id|>"), END};

/* chatml: Qwen2-7B-Instruct's chat_template (= LLaMA-Factory's "qwen" template with Qwen2's default
 * system; no BOS):
 *   <|im_start|>system\n{system}<|im_end|>\n      (default system "You are a helpful assistant.")
 *   <|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n   then {response}<|im_end|>\n
 * <|im_end|> ends each response and is trained; the "\n" after it is not. */
static const piece chatml_system[] = {TOKEN("<|im_start|>"), TEXT("system\n"), CONTENT,
                                      TOKEN("<|im_end|>"),   TEXT("\n"),       END};
static const piece chatml_user[] = {TOKEN("<|im_start|>"), TEXT("user\n"),      CONTENT,
                                    TOKEN("<|im_end|>"),   TEXT("\n"),          GEN,
                                    TOKEN("<|im_start|>"), TEXT("assistant\n"), END};
static const piece chatml_assistant[] = {CONTENT_TRAINED, TOKEN_TRAINED("<|im_end|>"), TEXT("\n"),
                                         END};

/* mistral: Mistral-7B-Instruct-v0.2's chat_template (bos_token once, then '[INST] ' + user +
 * ' [/INST]' and assistant + eos_token), each message tokenized on its own as LLaMA-Factory does:
 *   BOS "[INST] {q} [/INST]"  then {response} EOS,  later pairs "[INST] {q} [/INST]" (no BOS)
 * (SentencePiece's prepended "▁" puts a space between [/INST] and the response.) That template
 * rejects a system message; like LLaMA-Factory's mistral template we put it before the first user
 * message as "{system}\n\n". No default system. */
static const piece mistral_prefix[] = {BOS, END};
static const piece mistral_system_merge[] = {CONTENT, TEXT("\n\n"), END};
static const piece mistral_user[] = {TEXT("[INST] "), CONTENT, TEXT(" [/INST]"), END};
static const piece mistral_assistant[] = {CONTENT_TRAINED, EOS_TRAINED, END};

static const chat_template templates[] = {
    {"default",
     "A chat between a curious user and an artificial intelligence assistant. The assistant gives "
     "helpful, detailed, and polite answers to the user's questions.",
     default_prefix, default_system, NULL, default_separator, default_user, default_assistant},
    {"alpaca",
     "Below is an instruction that describes a task. Write a response that appropriately "
     "completes the request.\n\n",
     alpaca_prefix, alpaca_system, NULL, NULL, alpaca_user, alpaca_assistant},
    {"llama2", "", NULL, NULL, llama2_system_merge, NULL, llama2_user, llama2_assistant},
    {"llama3", "", llama3_prefix, llama3_system, NULL, NULL, llama3_user, llama3_assistant},
    {"chatml", "You are a helpful assistant.", NULL, chatml_system, NULL, NULL, chatml_user,
     chatml_assistant},
    {"mistral", "", mistral_prefix, NULL, mistral_system_merge, NULL, mistral_user,
     mistral_assistant},
};

const chat_template *template_find(const char *name) {
    for (size_t i = 0; i < sizeof templates / sizeof templates[0]; i++)
        if (!strcmp(templates[i].name, name)) return &templates[i];
    return NULL;
}

int template_known(const char *name) {
    return name && template_find(name) != NULL;
}

static int pieces_use_eos(const piece *p) {
    for (; p && p->kind != P_END; p++)
        if (p->kind == P_EOS) return 1;
    return 0;
}

int template_uses_eos(const char *name) {
    const chat_template *t = name ? template_find(name) : NULL;
    if (!t) return 0;
    const piece *parts[] = {t->prefix,    t->system, t->system_merge,
                            t->separator, t->user,   t->assistant};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (pieces_use_eos(parts[i])) return 1;
    return 0;
}

/* ---------------------------------------------------------------- rendering */

typedef struct render_ctx {
    const chat_template *tpl;
    const badam_tokenizer *tok;
    int32_t bos; /* -1: none */
    token_seq *out;
    char *buf; /* the pending text run */
    size_t len, cap;
    uint8_t run_trained;
    badam_error *err;
} render_ctx;

static badam_status buf_append(render_ctx *c, const char *s, size_t n) {
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 256;
        while (cap < c->len + n + 1) cap *= 2;
        char *b = realloc(c->buf, cap);
        if (!b) return badam_fail(c->err, BADAM_E_NOMEM, "template: out of memory");
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, s, n);
    c->len += n;
    c->buf[c->len] = '\0';
    return BADAM_OK;
}

/* Tokenizes the pending text run (without special tokens) and appends it. */
static badam_status flush_text(render_ctx *c) {
    if (c->len == 0) return BADAM_OK;
    int32_t *ids = NULL;
    size_t n = 0;
    badam_status st = tokenizer_encode(c->tok, c->buf, c->len, 0, &ids, &n, c->err);
    if (st == BADAM_OK) st = token_seq_append(c->out, ids, n, c->run_trained, c->err);
    free(ids);
    c->len = 0;
    return st;
}

static badam_status push_special(render_ctx *c, const piece *p) {
    int32_t id = -1;
    if (p->kind == P_BOS) {
        if (c->bos < 0) return BADAM_OK;
        id = c->bos;
    } else if (p->kind == P_EOS) {
        id = tokenizer_eos_id(c->tok);
        if (id < 0 && tokenizer_eos_problem(c->tok))
            return badam_fail(c->err, BADAM_E_UNSUPPORTED,
                              "%s (template '%s' ends each response with the EOS token)",
                              tokenizer_eos_problem(c->tok), c->tpl->name);
        if (id < 0)
            return badam_fail(c->err, BADAM_E_UNSUPPORTED,
                              "template '%s': the tokenizer has no EOS token to end responses with",
                              c->tpl->name);
    } else {
        id = tokenizer_token_to_id(c->tok, p->text);
        if (id < 0)
            return badam_fail(
                c->err, BADAM_E_UNSUPPORTED,
                "template '%s' needs the token '%s', which the tokenizer does not have",
                c->tpl->name, p->text);
    }
    return token_seq_push(c->out, id, p->trained, c->err);
}

/* Renders one element: its text runs tokenized in one call each (content and literal text of the
 * same trained flag together), special tokens as ids. */
static badam_status render_element(render_ctx *c, const piece *pieces, const char *content,
                                   size_t content_len) {
    badam_status st = BADAM_OK;
    for (const piece *p = pieces; p && p->kind != P_END; p++) {
        switch (p->kind) {
        case P_TEXT:
        case P_CONTENT: {
            const char *s = p->kind == P_TEXT ? p->text : (content ? content : "");
            size_t n = p->kind == P_TEXT ? strlen(s) : (content ? content_len : 0);
            if (n == 0) break;
            if (c->len > 0 && c->run_trained != p->trained && (st = flush_text(c)) != BADAM_OK)
                return st;
            c->run_trained = p->trained;
            if ((st = buf_append(c, s, n)) != BADAM_OK) return st;
            break;
        }
        case P_SPLIT:
            if ((st = flush_text(c)) != BADAM_OK) return st;
            break;
        case P_GEN: /* marks the assistant header for template_jinja.c */
            break;
        default:
            if ((st = flush_text(c)) != BADAM_OK) return st;
            if ((st = push_special(c, p)) != BADAM_OK) return st;
            break;
        }
    }
    return flush_text(c);
}

/* Renders text-only pieces (a merged system block, content_len bytes of content), followed by
 * tail_len bytes of tail, into a malloc'd buffer of *len bytes (plus a NUL). */
static char *render_text(const piece *pieces, const char *content, size_t content_len,
                         const char *tail, size_t tail_len, size_t *len) {
    size_t n = tail_len;
    for (const piece *p = pieces; p->kind != P_END; p++)
        n += p->kind == P_TEXT ? strlen(p->text) : content_len;
    char *s = malloc(n + 1);
    if (!s) return NULL;
    size_t at = 0;
    for (const piece *p = pieces; p->kind != P_END; p++) {
        const char *src = p->kind == P_TEXT ? p->text : content;
        size_t k = p->kind == P_TEXT ? strlen(p->text) : content_len;
        memcpy(s + at, src, k);
        at += k;
    }
    memcpy(s + at, tail, tail_len);
    s[n] = '\0';
    *len = n;
    return s;
}

/* A turn's content length: len, or strlen for a C-string turn (len 0). */
static size_t turn_len(const chat_turn *t) {
    return !t->content ? 0 : t->len ? t->len : strlen(t->content);
}

/* The role with its indefinite article ("an assistant"). */
static const char *role_phrase(chat_role r) {
    return r == CHAT_SYSTEM ? "a system" : r == CHAT_USER ? "a user" : "an assistant";
}

/* The turns from `first` on alternate user, assistant, and end as add_generation_prompt needs:
 * with a user turn when set, with a response when not. */
static badam_status check_turns(const chat_template *tpl, const chat_turn *turns, size_t n_turns,
                                size_t first, int add_generation_prompt, badam_error *err) {
    if (n_turns <= first)
        return badam_fail(err, BADAM_E_INVALID, "template '%s': the conversation has no user turn",
                          tpl->name);
    for (size_t i = first; i < n_turns; i++) {
        chat_role want = (i - first) % 2 == 0 ? CHAT_USER : CHAT_ASSISTANT;
        if (turns[i].role != want)
            return badam_fail(
                err, BADAM_E_INVALID,
                "template '%s': turn %zu is %s turn where %s turn belongs "
                "(turns must alternate user, assistant after an optional system turn)",
                tpl->name, i, role_phrase(turns[i].role), role_phrase(want));
    }
    size_t k = n_turns - first;
    if (add_generation_prompt && k % 2 == 0)
        return badam_fail(err, BADAM_E_INVALID,
                          "template '%s': a generation prompt needs the conversation to end with a "
                          "user turn",
                          tpl->name);
    if (!add_generation_prompt && k % 2 == 1)
        return badam_fail(err, BADAM_E_INVALID,
                          "template '%s': the conversation ends with a user turn that has no "
                          "response",
                          tpl->name);
    return BADAM_OK;
}

/* The source part of pair p: the prefix and the system block (first pair) or the separator, then
 * the user message (with a merged system block before it, for such templates). */
static badam_status render_user(render_ctx *c, size_t p, const chat_turn *user, const char *sys,
                                size_t sys_len) {
    const chat_template *tpl = c->tpl;
    const char *content = user->content ? user->content : "";
    size_t content_len = turn_len(user);
    char *merged = NULL;
    badam_status st;
    if (p == 0) {
        st = render_element(c, tpl->prefix, NULL, 0);
        if (st == BADAM_OK && sys_len && tpl->system)
            st = render_element(c, tpl->system, sys, sys_len);
        if (st == BADAM_OK && sys_len && tpl->system_merge) {
            merged =
                render_text(tpl->system_merge, sys, sys_len, content, content_len, &content_len);
            if (!merged) return badam_fail(c->err, BADAM_E_NOMEM, "template: out of memory");
            content = merged;
        }
    } else {
        st = render_element(c, tpl->separator, NULL, 0);
    }
    if (st == BADAM_OK) st = render_element(c, tpl->user, content, content_len);
    free(merged);
    return st;
}

badam_status template_render_pairs(const char *name, const badam_tokenizer *tok,
                                   const chat_turn *turns, size_t n_turns, const char *system,
                                   size_t system_len, int add_generation_prompt, token_seq *out,
                                   template_pair **pairs, size_t *n_pairs, badam_error *err) {
    *pairs = NULL;
    *n_pairs = 0;
    const chat_template *tpl = template_find(name ? name : "default");
    if (!tpl)
        return badam_fail(err, BADAM_E_INVALID,
                          "unknown template '%s' (known: default, alpaca, llama2, llama3, chatml, "
                          "mistral)",
                          name);
    if (!tok) return badam_fail(err, BADAM_E_INVALID, "template '%s': no tokenizer", tpl->name);

    /* Shape: [system] user assistant user assistant ... [user, with add_generation_prompt]. */
    size_t first = 0;
    const char *sys = system ? system : tpl->default_system;
    size_t sys_len = system ? system_len : strlen(tpl->default_system);
    if (n_turns > 0 && turns[0].role == CHAT_SYSTEM) {
        sys = turns[0].content ? turns[0].content : "";
        sys_len = turn_len(&turns[0]);
        first = 1;
    }
    badam_status st = check_turns(tpl, turns, n_turns, first, add_generation_prompt, err);
    if (st) return st;

    size_t np = (n_turns - first + 1) / 2;
    template_pair *pp = calloc(np, sizeof *pp);
    if (!pp) return badam_fail(err, BADAM_E_NOMEM, "template: out of memory");
    render_ctx c = {.tpl = tpl, .tok = tok, .bos = tokenizer_bos_id(tok), .out = out, .err = err};
    size_t start_len = out->len;
    for (size_t p = 0; p < np && st == BADAM_OK; p++) {
        size_t begin = out->len;
        st = render_user(&c, p, &turns[first + 2 * p], sys, sys_len);
        size_t mid = out->len;
        pp[p].source_len = mid - begin;
        if (st == BADAM_OK && first + 2 * p + 1 < n_turns)
            st = render_element(&c, tpl->assistant, turns[first + 2 * p + 1].content,
                                turn_len(&turns[first + 2 * p + 1]));
        pp[p].target_len = out->len - mid;
    }
    free(c.buf);
    if (st != BADAM_OK) {
        out->len = start_len;
        free(pp);
        return st;
    }
    *pairs = pp;
    *n_pairs = np;
    return BADAM_OK;
}

badam_status template_render(const char *name, const badam_tokenizer *tok, const chat_turn *turns,
                             size_t n_turns, const char *system, int add_generation_prompt,
                             token_seq *out, badam_error *err) {
    template_pair *pairs = NULL;
    size_t n_pairs = 0;
    badam_status st =
        template_render_pairs(name, tok, turns, n_turns, system, system ? strlen(system) : 0,
                              add_generation_prompt, out, &pairs, &n_pairs, err);
    free(pairs);
    return st;
}
