/* Sampling and the text-level generation loop (generate.h): prompt -> KV cache -> one token at a
 * time, the output text streamed as it becomes final.
 *
 * Streaming: after each token the generated ids are decoded from the start (skip_special), and
 * the new suffix is passed on, except (1) a trailing U+FFFD, which a byte-level or byte-fallback
 * decoder produces for an incomplete UTF-8 character (Hugging Face's TextStreamer waits there
 * too), and (2) a trailing piece that could still become a stop string. Decoding the whole output
 * each step keeps SentencePiece's leading-space rule right; it costs O(n^2) token decodes, which
 * is small next to the model for the lengths people generate. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "badam/generate.h"

/* ---------------------------------------------------------------- sampling */

typedef struct scored {
    float v;
    int32_t i;
} scored;

struct sampler {
    sampler_options o;
    int V;
    uint64_t state;
    scored *cand;
};

/* splitmix64 (Steele, Lea, Flood 2014). */
static uint64_t rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t *state) {
    return (double)(rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

badam_status sampler_create(const sampler_options *o, int vocab_size, sampler **out,
                            badam_error *err) {
    *out = NULL;
    if (vocab_size <= 0)
        return badam_fail(err, BADAM_E_INVALID, "sampler: vocabulary size %d", vocab_size);
    if (!(o->temperature >= 0.0f) || o->top_k < 0 || !(o->top_p >= 0.0f && o->top_p <= 1.0f))
        return badam_fail(err, BADAM_E_INVALID,
                          "sampler: temperature %g must be >= 0, top_k %d >= 0 and top_p %g in "
                          "[0, 1]",
                          (double)o->temperature, o->top_k, (double)o->top_p);
    sampler *s = calloc(1, sizeof *s);
    if (s) s->cand = malloc((size_t)vocab_size * sizeof *s->cand);
    if (!s || !s->cand) {
        sampler_free(s);
        return badam_fail(err, BADAM_E_NOMEM, "sampler: out of memory");
    }
    s->o = *o;
    if (s->o.top_p == 0.0f) s->o.top_p = 1.0f; /* 0: off, so zeroed options mean greedy */
    s->V = vocab_size;
    s->state = o->seed;
    *out = s;
    return BADAM_OK;
}

void sampler_free(sampler *s) {
    if (!s) return;
    free(s->cand);
    free(s);
}

static int by_score_desc(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Sampling, with z = logits / temperature sorted in decreasing order (ties by index):
 *   keep z[0..k) (top_k), p_j = exp(z_j - z_0) / sum;  keep j while sum_{i<j} p_i < top_p;
 *   draw u ~ U[0, sum kept p) and return the first j with cumulative p > u. */
int32_t sampler_pick(sampler *s, const float *logits) {
    int V = s->V;
    if (s->o.temperature <= 0.0f) {
        int32_t best = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    float inv_t = 1.0f / s->o.temperature;
    for (int i = 0; i < V; i++) s->cand[i] = (scored){logits[i] * inv_t, i};
    int n = V;
    int sorted = (s->o.top_k > 0 && s->o.top_k < V) || s->o.top_p < 1.0f;
    if (sorted) qsort(s->cand, (size_t)V, sizeof *s->cand, by_score_desc);
    if (s->o.top_k > 0 && s->o.top_k < n) n = s->o.top_k;
    float mx = s->cand[0].v;
    if (!sorted)
        for (int i = 1; i < n; i++)
            if (s->cand[i].v > mx) mx = s->cand[i].v;
    double total = 0.0;
    for (int i = 0; i < n; i++) total += (s->cand[i].v = expf(s->cand[i].v - mx));
    if (s->o.top_p < 1.0f) {
        double cum = 0.0;
        int keep = 0;
        while (keep < n && cum < s->o.top_p * total) cum += s->cand[keep++].v;
        n = keep > 0 ? keep : 1;
        total = cum > 0.0 ? cum : s->cand[0].v;
    }
    double u = rng_uniform(&s->state) * total, cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += s->cand[i].v;
        if (u < cum) return s->cand[i].i;
    }
    return s->cand[n - 1].i;
}

/* ---------------------------------------------------------------- stop tokens */

static int add_id(int32_t *ids, int n, int cap, int32_t id) {
    if (id < 0) return n;
    for (int i = 0; i < n; i++)
        if (ids[i] == id) return n;
    if (n < cap) ids[n++] = id;
    return n;
}

int generate_stop_ids(const llama_model *m, const badam_tokenizer *tok, const char *template_name,
                      int32_t *ids, int cap) {
    int n = 0;
    for (int i = 0; i < m->cfg.n_eos; i++) n = add_id(ids, n, cap, m->cfg.eos_token_ids[i]);
    if (tok) n = add_id(ids, n, cap, tokenizer_eos_id(tok));
    if (tok && template_name) {
        if (!strcmp(template_name, "llama3"))
            n = add_id(ids, n, cap, tokenizer_token_to_id(tok, "<|eot_id|>"));
        else if (!strcmp(template_name, "chatml"))
            n = add_id(ids, n, cap, tokenizer_token_to_id(tok, "<|im_end|>"));
    }
    return n;
}

/* ---------------------------------------------------------------- generation */

void generate_result_free(generate_result *r) {
    if (!r) return;
    free(r->ids);
    free(r->text);
    memset(r, 0, sizeof *r);
}

static int is_stop_id(const generate_options *o, int32_t id) {
    for (int i = 0; i < o->n_stop_ids; i++)
        if (o->stop_ids[i] == id) return 1;
    return 0;
}

/* The earliest position of any stop string in text[0..len), or -1. */
static long find_stop(const generate_options *o, const char *text, size_t len) {
    long best = -1;
    for (int s = 0; s < o->n_stop_strings; s++) {
        size_t k = strlen(o->stop_strings[s]);
        if (!k || k > len) continue;
        for (size_t i = 0; i + k <= len && (best < 0 || (long)i < best); i++)
            if (!memcmp(text + i, o->stop_strings[s], k)) {
                best = (long)i;
                break;
            }
    }
    return best;
}

/* How much of text[0..len) may be shown now: without a trailing U+FFFD run (an incomplete
 * character) and without a suffix that is a proper prefix of a stop string. */
static size_t final_prefix(const generate_options *o, const char *text, size_t len) {
    while (len >= 3 && !memcmp(text + len - 3, "\xEF\xBF\xBD", 3)) len -= 3;
    size_t hold = 0;
    for (int s = 0; s < o->n_stop_strings; s++) {
        size_t k = strlen(o->stop_strings[s]);
        for (size_t j = k > 0 ? k - 1 : 0; j > hold; j--)
            if (j <= len && !memcmp(text + len - j, o->stop_strings[s], j)) {
                hold = j;
                break;
            }
    }
    return len - hold;
}

static void emit(const generate_options *o, const char *text, size_t from, size_t to,
                 size_t *printed) {
    if (to <= from) return;
    if (o->on_text) o->on_text(o->on_text_ctx, text + from, to - from);
    *printed = to;
}

badam_status generate_text(const llama_model *m, const badam_tokenizer *tok, llama_kv_cache *kv,
                           const int32_t *prompt, size_t n_prompt, const generate_options *o,
                           generate_result *r, badam_error *err) {
    memset(r, 0, sizeof *r);
    int cap = llama_kv_cache_capacity(kv), V = m->cfg.vocab_size;
    if (n_prompt == 0) return badam_fail(err, BADAM_E_INVALID, "the prompt is empty");
    if (n_prompt > (size_t)cap)
        return badam_fail(err, BADAM_E_INVALID,
                          "the prompt has %zu tokens, more than the context of %d", n_prompt, cap);
    if (o->max_new_tokens < 0)
        return badam_fail(err, BADAM_E_INVALID, "max_new_tokens %d < 0", o->max_new_tokens);
    /* Reuse the cached prefix; at least one prompt token is run to get the next logits. */
    const int32_t *held = llama_kv_cache_tokens(kv);
    size_t common = 0, len = (size_t)llama_kv_cache_length(kv);
    while (common < len && common < n_prompt && held[common] == prompt[common]) common++;
    if (common == n_prompt) common--;
    llama_kv_cache_truncate(kv, (int)common);

    float *logits = malloc((size_t)V * sizeof *logits);
    r->ids = malloc(((size_t)o->max_new_tokens + 1) * sizeof *r->ids);
    sampler *smp = NULL;
    badam_status st =
        !logits || !r->ids ? badam_fail(err, BADAM_E_NOMEM, "out of memory") : BADAM_OK;
    if (!st) st = sampler_create(&o->sampling, V, &smp, err);
    if (!st) st = llama_decode(m, kv, prompt + common, (int)(n_prompt - common), logits, 0, err);
    char *text = NULL;
    size_t text_len = 0, printed = 0;
    r->stop = GENERATE_STOP_MAX_TOKENS;
    for (int step = 0; !st && step < o->max_new_tokens; step++) {
        int32_t id = sampler_pick(smp, logits);
        if (is_stop_id(o, id)) {
            r->stop = GENERATE_STOP_EOS;
            break;
        }
        r->ids[r->n_ids++] = id;
        free(text);
        text = NULL;
        if ((st = tokenizer_decode(tok, r->ids, r->n_ids, 1, &text, &text_len, err))) break;
        long cut = find_stop(o, text, text_len);
        if (cut >= 0) {
            text_len = (size_t)cut;
            text[text_len] = '\0';
            r->stop = GENERATE_STOP_STRING;
            break;
        }
        size_t ready = final_prefix(o, text, text_len);
        if (ready > printed) emit(o, text, printed, ready, &printed);
        if (step + 1 == o->max_new_tokens) break;
        if (llama_kv_cache_length(kv) >= cap) {
            r->stop = GENERATE_STOP_CONTEXT;
            break;
        }
        st = llama_decode(m, kv, &id, 1, logits, 0, err);
    }
    if (!st && !text && !(text = calloc(1, 1)))
        st = badam_fail(err, BADAM_E_NOMEM, "out of memory");
    if (!st) {
        emit(o, text, printed, text_len, &printed);
        r->text = text;
        r->text_len = text_len;
    } else {
        free(text);
        generate_result_free(r);
    }
    sampler_free(smp);
    free(logits);
    return st;
}
