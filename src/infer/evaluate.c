/* Evaluation (evaluate.h):
 *   loss = sum over trained tokens of -log softmax(logits)[target] / n_tokens,  ppl = exp(loss)
 *   exact match = #{examples: trim(greedy(prompt)) == trim(reference)} / #{examples scored} */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "badam/evaluate.h"
#include "badam/generate.h"
#include "badam/model.h"

static badam_status eval_loss(const llama_model *m, const data_set *ds, int batch_size,
                              eval_result *r, badam_error *err) {
    size_t longest = 0;
    for (size_t i = 0; i < ds->n; i++)
        if (ds->examples[i].len > longest) longest = ds->examples[i].len;
    if (longest > (size_t)m->cfg.max_position_embeddings)
        return badam_fail(err, BADAM_E_INVALID,
                          "an example has %zu tokens, more than max_position_embeddings %d "
                          "(lower --seq-len)",
                          longest, m->cfg.max_position_embeddings);
    batcher_options bo = {0};
    bo.batch_size = batch_size;
    bo.seq_len = (int)longest;
    const model_arch *arch = model_arch_find(m->cfg.model_type);
    if (!arch)
        return badam_fail(err, BADAM_E_UNSUPPORTED, "no model family serves model_type '%s'",
                          m->cfg.model_type);
    batcher *b = NULL;
    llama_workspace *ws = NULL;
    badam_status st = batcher_create(ds, &bo, &b, err);
    if (!st) st = arch->workspace_create(m, batch_size, (int)longest, &ws, err);
    double total = 0.0;
    size_t n_tokens = 0;
    for (size_t k = 0; !st && k < batcher_batches_per_epoch(b); k++) {
        data_batch db;
        batcher_next(b, &db);
        llama_batch lb;
        model_batch_from_data(&db, &lb);
        double loss_sum = 0.0;
        int n = 0;
        st = arch->forward(m, ws, &lb, NULL, 0.0f, NULL, &loss_sum, &n, err);
        total += loss_sum;
        n_tokens += (size_t)n;
    }
    if (ws) arch->workspace_free(ws);
    batcher_free(b);
    if (st) return st;
    r->n_tokens = n_tokens;
    r->loss = n_tokens ? total / (double)n_tokens : 0.0;
    r->perplexity = exp(r->loss);
    return BADAM_OK;
}

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Equal after trimming ASCII whitespace at both ends. */
static int same_trimmed(const char *a, size_t na, const char *b, size_t nb) {
    while (na && is_space(*a)) a++, na--;
    while (na && is_space(a[na - 1])) na--;
    while (nb && is_space(*b)) b++, nb--;
    while (nb && is_space(b[nb - 1])) nb--;
    return na == nb && !memcmp(a, b, na);
}

/* The last run of trained tokens [*s, *e) of an example; 0 when it has none or no prompt. */
static int last_response(const token_seq *x, size_t *s, size_t *e) {
    size_t end = x->len;
    while (end > 0 && !x->trained[end - 1]) end--;
    if (!end) return 0;
    size_t start = end;
    while (start > 0 && x->trained[start - 1]) start--;
    *s = start, *e = end;
    return start > 0;
}

static badam_status eval_exact_match(const llama_model *m, const badam_tokenizer *tok,
                                     const data_set *ds, const eval_options *o, eval_result *r,
                                     badam_error *err) {
    size_t longest = 0, s, e;
    for (size_t i = 0; i < ds->n; i++)
        if (last_response(&ds->examples[i], &s, &e) && s > longest) longest = s;
    size_t cap = longest + (size_t)o->max_new_tokens;
    if (cap > (size_t)m->cfg.max_position_embeddings) cap = (size_t)m->cfg.max_position_embeddings;
    if (!longest) return BADAM_OK;
    llama_kv_cache *kv = NULL;
    badam_status st = llama_kv_cache_create(m, (int)cap, 0, &kv, err);
    generate_options go = {0};
    go.max_new_tokens = o->max_new_tokens;
    go.sampling.top_p = 1.0f; /* greedy: temperature 0 */
    go.stop_ids = o->stop_ids, go.n_stop_ids = o->n_stop_ids;
    for (size_t i = 0; !st && i < ds->n; i++) {
        const token_seq *x = &ds->examples[i];
        if (!last_response(x, &s, &e) || s > cap) continue;
        char *ref = NULL;
        size_t ref_len = 0;
        generate_result g = {0};
        st = tokenizer_decode(tok, x->ids + s, e - s, 1, &ref, &ref_len, err);
        if (!st) st = generate_text(m, tok, kv, x->ids, s, &go, &g, err);
        if (!st) {
            int ok = same_trimmed(g.text, g.text_len, ref, ref_len);
            r->em_count++;
            r->em_correct += (size_t)ok;
            if (o->on_example)
                o->on_example(o->on_example_ctx, i, ref, ref_len, g.text, g.text_len, ok);
        } else {
            badam_error_prefix(err, "example %zu", i);
        }
        generate_result_free(&g);
        free(ref);
    }
    llama_kv_cache_free(kv);
    r->em_accuracy = r->em_count ? (double)r->em_correct / (double)r->em_count : 0.0;
    return st;
}

badam_status evaluate(const llama_model *m, const badam_tokenizer *tok, const data_set *ds,
                      const eval_options *o, eval_result *r, badam_error *err) {
    memset(r, 0, sizeof *r);
    if (!ds || !ds->n) return badam_fail(err, BADAM_E_INVALID, "the dataset is empty");
    if (o->batch_size < 1)
        return badam_fail(err, BADAM_E_INVALID, "batch size %d < 1", o->batch_size);
    if (o->exact_match && (!tok || o->max_new_tokens < 1))
        return badam_fail(err, BADAM_E_INVALID,
                          "exact match needs a tokenizer and max_new_tokens >= 1");
    r->n_examples = ds->n;
    badam_status st = eval_loss(m, ds, o->batch_size, r, err);
    if (!st && o->exact_match) st = eval_exact_match(m, tok, ds, o, r, err);
    return st;
}
