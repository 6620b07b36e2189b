/* The chat templates' tables, shared by template.c (rendering to ids) and template_jinja.c
 * (the same format as a Jinja chat_template). */
#ifndef BADAM_TEXT_TEMPLATE_INTERNAL_H
#define BADAM_TEXT_TEMPLATE_INTERNAL_H

#include <stdint.h>

typedef enum piece_kind {
    P_END = 0,
    P_TEXT,    /* literal text */
    P_CONTENT, /* the message text */
    P_TOKEN,   /* a special token by its string, inserted as its id */
    P_BOS,     /* the tokenizer's bos_token (LLaMA-Factory's {"bos_token"}); nothing without one */
    P_EOS,     /* the tokenizer's EOS (required when used) */
    P_SPLIT,   /* ends the text run: the text on either side is tokenized in separate calls */
    P_GEN,     /* no-op when rendering; starts the assistant header (the generation prompt) */
} piece_kind;

typedef struct piece {
    piece_kind kind;
    const char *text;
    uint8_t trained;
} piece;

typedef struct chat_template {
    const char *name;
    const char *default_system;
    const piece *prefix;       /* start of the first pair */
    const piece *system;       /* an element of the first pair, when the system text is non-empty */
    const piece *system_merge; /* or: rendered as text and put before the first user message */
    const piece *separator;    /* start of every pair after the first */
    const piece *user;         /* a user message and the assistant header after it */
    const piece *assistant;    /* a response, its end token, and untrained text after that */
} chat_template;

/* The template of a name, or NULL. */
const chat_template *template_find(const char *name);

#endif
