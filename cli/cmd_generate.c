/* badam generate: text from a model folder with a KV cache, streamed to stdout as it is decoded;
 * one prompt (--prompt) or an interactive multi-turn chat (--chat, lines from stdin). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "badam/data.h"
#include "badam/generate.h"
#include "cli.h"
#include "options.h"
#include "train_options.h"

#define MAX_STOP_STRINGS 16
#define MAX_STOP_IDS 16

static const char *USAGE =
    "badam generate --model DIR (--prompt TEXT | --chat) [--template T] [options]";
static const char *DESCRIPTION =
    "Generates text with a Llama-family model (KV cache, CPU), printing it as it is decoded.\n"
    "Without --template the prompt is raw text (with BOS when the tokenizer adds one); with\n"
    "--template it is rendered as a user turn followed by the assistant header. Decoding is\n"
    "greedy by default (--temperature 0); --temperature > 0 samples, after --top-k and --top-p,\n"
    "from a generator seeded with --seed (same seed, same text). Generation ends at the model's\n"
    "EOS (config.json eos_token_id, the tokenizer's eos_token, the template's end-of-turn token),\n"
    "at a --stop string (not printed), or after --max-new-tokens.\n"
    "--chat reads one user message per line from stdin (a terminal or a pipe) and keeps the\n"
    "conversation (template 'default' unless --template); /reset starts over, /exit ends.\n"
    "LoRA adapters are merged into the model badam train saves; bottleneck adapters\n"
    "(--method adapter) are loaded beside the base with --adapter DIR.";

typedef struct stop_list {
    const char *s[MAX_STOP_STRINGS];
    int n;
} stop_list;

static int parse_stop(const char *v, void *target, char *why, size_t n) {
    stop_list *l = target;
    if (!*v) {
        snprintf(why, n, "a stop string must not be empty");
        return -1;
    }
    if (l->n == MAX_STOP_STRINGS) {
        snprintf(why, n, "at most %d stop strings", MAX_STOP_STRINGS);
        return -1;
    }
    l->s[l->n++] = v;
    return 0;
}

static void print_piece(void *ctx, const char *text, size_t len) {
    (void)ctx;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

typedef struct session {
    llama_model *m;
    badam_tokenizer *tok;
    llama_kv_cache *kv;
    generate_options go;
    const char *template_name, *system;
} session;

/* Renders the turns (ending with a user turn) for generation. */
static badam_status render(const session *s, const chat_turn *turns, size_t n, token_seq *seq,
                           badam_error *err) {
    return template_render(s->template_name, s->tok, turns, n, s->system, 1, seq, err);
}

static const char *stop_name(generate_stop st) {
    switch (st) {
    case GENERATE_STOP_EOS:
        return "end of text";
    case GENERATE_STOP_STRING:
        return "stop string";
    case GENERATE_STOP_MAX_TOKENS:
        return "max tokens";
    default:
        return "context full";
    }
}

static int run_chat(session *s) {
    int tty = isatty(STDIN_FILENO);
    chat_turn *turns = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t line_cap = 0;
    int rc = 0;
    badam_error err = {0};
    if (tty)
        fprintf(stderr, "chat with %s template '%s' (/reset, /exit; Ctrl-D ends)\n",
                s->m->cfg.model_type, s->template_name);
    for (;;) {
        if (tty) fputs("\n> ", stderr);
        ssize_t got = getline(&line, &line_cap, stdin);
        if (got < 0) break;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = '\0';
        if (!got) continue;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) {
            for (size_t i = 0; i < n; i++) free((char *)turns[i].content);
            n = 0;
            continue;
        }
        if (n + 2 > cap) {
            size_t nc = cap ? 2 * cap : 16;
            chat_turn *t = realloc(turns, nc * sizeof *t);
            if (!t) {
                fprintf(stderr, "badam generate: out of memory\n");
                rc = 1;
                break;
            }
            turns = t, cap = nc;
        }
        char *copy = strdup(line);
        if (!copy) {
            rc = 1;
            break;
        }
        turns[n++] = (chat_turn){CHAT_USER, copy, 0};
        token_seq seq = {0};
        badam_status st = render(s, turns, n, &seq, &err);
        /* Forget the oldest exchanges while the conversation does not fit the context. */
        size_t ctx = (size_t)llama_kv_cache_capacity(s->kv), reply = (size_t)s->go.max_new_tokens;
        if (reply > ctx / 2) reply = ctx / 2;
        while (!st && n > 1 && seq.len + reply > ctx) {
            free((char *)turns[0].content), free((char *)turns[1].content);
            memmove(turns, turns + 2, (n - 2) * sizeof *turns);
            n -= 2;
            token_seq_free(&seq);
            st = render(s, turns, n, &seq, &err);
        }
        generate_result r = {0};
        if (!st) st = generate_text(s->m, s->tok, s->kv, seq.ids, seq.len, &s->go, &r, &err);
        token_seq_free(&seq);
        if (st) {
            fprintf(stderr, "badam generate: %s\n", err.message);
            rc = 1;
            break;
        }
        fputc('\n', stdout);
        fflush(stdout);
        turns[n++] = (chat_turn){CHAT_ASSISTANT, r.text, r.text_len};
        r.text = NULL;
        generate_result_free(&r);
    }
    for (size_t i = 0; i < n; i++) free((char *)turns[i].content);
    free(turns);
    free(line);
    return rc;
}

static int run_prompt(session *s, const char *prompt, int verbose) {
    badam_error err = {0};
    token_seq seq = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    badam_status st;
    if (s->template_name) {
        chat_turn turn = {CHAT_USER, prompt, 0};
        st = render(s, &turn, 1, &seq, &err);
        ids = seq.ids, n = seq.len;
    } else {
        st = tokenizer_encode(s->tok, prompt, strlen(prompt), 1, &ids, &n, &err);
    }
    generate_result r = {0};
    if (!st) st = generate_text(s->m, s->tok, s->kv, ids, n, &s->go, &r, &err);
    if (s->template_name)
        token_seq_free(&seq);
    else
        free(ids);
    if (st) {
        fprintf(stderr, "badam generate: %s\n", err.message);
        return 1;
    }
    fputc('\n', stdout);
    if (verbose)
        fprintf(stderr, "[%zu prompt tokens, %zu generated, stopped: %s]\n", n, r.n_ids,
                stop_name(r.stop));
    generate_result_free(&r);
    return 0;
}

/* The command line of `badam generate`. */
typedef struct generate_args {
    const char *model, *prompt, *template_name, *system, *adapter;
    int chat, max_new, top_k, context, verbose;
    float temperature, top_p;
    uint64_t seed;
    badam_dtype dtype;
    stop_list stops;
} generate_args;

/* The values of x in their ranges, named by the user's flags: 0, or 2 after a message. */
static int check_args(const generate_args *x) {
    if (!x->model || (!x->prompt == !x->chat)) {
        fprintf(stderr, "badam generate: %s (see --help)\n",
                !x->model ? "--model is required" : "give exactly one of --prompt and --chat");
        return 2;
    }
    if (x->template_name && !template_known(x->template_name)) {
        fprintf(stderr,
                "badam generate: --template: unknown template '%s' (default, alpaca, llama2, "
                "llama3, chatml, mistral)\n",
                x->template_name);
        return 2;
    }
    if (x->max_new < 1 || x->temperature < 0.0f || x->top_k < 0 ||
        !(x->top_p > 0.0f && x->top_p <= 1.0f) || x->context < 0) {
        fprintf(stderr, "badam generate: %s\n",
                x->max_new < 1          ? "--max-new-tokens must be >= 1"
                : x->temperature < 0.0f ? "--temperature must be >= 0"
                : x->top_k < 0          ? "--top-k must be >= 0"
                : x->context < 0        ? "--context must be >= 1"
                                        : "--top-p must be in (0, 1]");
        return 2;
    }
    return 0;
}

/* Reads and checks the command line into x: 0, 1 after --help, 2 after an error message. */
static int parse_args(int argc, char **argv, generate_args *x) {
    const cli_option opts[] = {
        {"adapter", OPT_STRING, &x->adapter, "DIR",
         "bottleneck adapters to apply (OUT/adapter of badam train --method adapter)", 0},
        {"model", OPT_STRING, &x->model, "DIR", "Hugging Face model folder (with tokenizer.json)",
         0},
        {"prompt", OPT_STRING, &x->prompt, "TEXT", "the prompt (one generation)", 0},
        {"chat", OPT_FLAG, &x->chat, NULL, "interactive chat: one user message per stdin line", 0},
        {"template", OPT_STRING, &x->template_name, "T",
         "chat template: default, alpaca, llama2, llama3, chatml, mistral", 0},
        {"system", OPT_STRING, &x->system, "TEXT", "system prompt (with a template)", 0},
        {"max-new-tokens", OPT_INT, &x->max_new, "N", "tokens to generate at most (256)", 0},
        {"temperature", OPT_FLOAT, &x->temperature, "X", "0: greedy (default); > 0: sample", 0},
        {"top-k", OPT_INT, &x->top_k, "K", "sample among the K most likely tokens (0: all)", 0},
        {"top-p", OPT_FLOAT, &x->top_p, "P", "nucleus: smallest set with probability >= P (1: all)",
         0},
        {"seed", OPT_CUSTOM, &x->seed, "S", "sampling seed (0)", parse_u64},
        {"stop", OPT_CUSTOM, &x->stops, "STRING", "stop at this text (repeatable)", parse_stop},
        {"context", OPT_INT, &x->context, "N",
         "KV cache length (default: max_position_embeddings, at most 4096)", 0},
        {"dtype", OPT_CUSTOM, &x->dtype, "T", "weights in memory: bf16 (default) or fp32",
         parse_dtype},
        {"device", OPT_CUSTOM, NULL, "D", "cpu only (cuda is refused: not supported yet)",
         parse_cpu_device},
        {"verbose", OPT_FLAG, &x->verbose, NULL, "print token counts and why generation stopped",
         0},
        {0},
    };
    unsigned char given[sizeof opts / sizeof opts[0]] = {0};
    int rc = cli_parse_given("badam generate", USAGE, DESCRIPTION, opts, argc, argv, given);
    if (rc || (rc = check_args(x))) return rc;
    if (cli_given(opts, given, "system") && !x->template_name && !x->chat)
        cli_warn("badam generate", "--system is ignored without --template or --chat (the "
                                   "prompt is raw text)");
    const char *sampling[] = {"top-k", "top-p", "seed"};
    for (int i = 0; i < 3 && x->temperature == 0.0f; i++)
        if (cli_given(opts, given, sampling[i]))
            cli_warn("badam generate", "--%s is ignored with --temperature 0 (greedy decoding)",
                     sampling[i]);
    if (x->chat && !x->template_name) x->template_name = "default";
    return 0;
}

/* Loads the model and tokenizer of x and makes the KV cache and decoding options of s: 0, or 1
 * after a message (what was made is in s, for the caller to free). */
static int open_session(const generate_args *x, session *s, int32_t *stop_ids) {
    badam_error err = {0};
    if (llama_model_load(x->model, x->dtype, &s->m, &err) ||
        (x->adapter && llama_bottleneck_open(s->m, x->adapter, &err)) ||
        tokenizer_load(x->model, &s->tok, &err)) {
        fprintf(stderr, "badam generate: %s\n", err.message);
        return 1;
    }
    int max_pos = s->m->cfg.max_position_embeddings;
    int len = x->context ? x->context : (max_pos < 4096 ? max_pos : 4096);
    if (len > max_pos) len = max_pos;
    if (llama_kv_cache_create(s->m, len, 0, &s->kv, &err)) {
        fprintf(stderr, "badam generate: %s\n", err.message);
        return 1;
    }
    s->template_name = x->template_name, s->system = x->system;
    s->go.max_new_tokens = x->max_new;
    s->go.sampling = (sampler_options){x->temperature, x->top_k, x->top_p, x->seed};
    s->go.stop_ids = stop_ids;
    s->go.n_stop_ids = generate_stop_ids(s->m, s->tok, x->template_name, stop_ids, MAX_STOP_IDS);
    s->go.stop_strings = x->stops.s, s->go.n_stop_strings = x->stops.n;
    s->go.on_text = print_piece;
    return 0;
}

int cmd_generate(int argc, char **argv) {
    generate_args x = {.max_new = 256, .top_p = 1.0f, .dtype = BADAM_DTYPE_BF16};
    int rc = parse_args(argc, argv, &x);
    if (rc) return rc == 1 ? 0 : 2;
    session s = {0};
    int32_t stop_ids[MAX_STOP_IDS];
    rc = open_session(&x, &s, stop_ids);
    if (!rc) rc = x.chat ? run_chat(&s) : run_prompt(&s, x.prompt, x.verbose);
    llama_kv_cache_free(s.kv);
    tokenizer_free(s.tok);
    llama_model_free(s.m);
    return rc;
}
