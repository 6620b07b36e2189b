/* The masked-LM head of an encoder (Hugging Face's RobertaLMHead; BertLMPredictionHead under
 * cls.predictions) on the positions that have a target (the masked ones):
 *   t = dense(x);  g = gelu(t);  h = LayerNorm(g);  logits = h E^T + bias   (E the word
 *   embedding: the decoder is tied to it)
 *   loss = sum over those positions of -log softmax(logits)[target]
 * and its backward, with dl = scale (softmax(logits) - onehot(target)):
 *   dE += dl^T h;  dbias += sum dl;  dh = dl E;  dg = LN'(dh);  dt = gelu'(t) dg;
 *   dWd += dt^T x;  dbd += sum dt;  dx = dt Wd   (scattered to the positions' rows of w->dres)
 * The positions go through in chunks of layout.mlm_rows, so the [chunk, V] logits stay small; the
 * head's gradients accumulate over the chunks and its grad_ready calls follow the last chunk (the
 * tied word embedding's follows the embeddings' backward, bert_backward.c). */
#include <string.h>

#include "model/bert_internal.h"

static int collect_rows(const llama_batch *b, int32_t *rows) {
    int M = 0;
    for (int i = 0; i < b->B * b->T; i++)
        if (b->targets[i] != LOSS_IGNORE_INDEX) rows[M++] = i;
    return M;
}

/* mt, mg, mh and the logits of the R hidden rows in w->mx. */
static void chunk_forward(const llama_model *m, bert_workspace *w, int R) {
    backend *be = w->base.be;
    int C = w->C, V = m->cfg.vocab_size;
    int d = bert_head_param(m, BERT_M_DENSE), ln = bert_head_param(m, BERT_M_LN);
    badam_dtype dt;
    const void *W = bert_matrix(m, NULL, d, &dt);
    BE(be, linear_forward, w->mt, w->mx, W, dt, bert_small(w, m, NULL, d + 1, 0), R, C, C,
       w->lin_scratch);
    BE(be, gelu_forward, w->mg, w->mt, (size_t)R * C);
    BE(be, layernorm_forward, w->mh, w->mmean, w->mrstd, w->mg, bert_small(w, m, NULL, ln, 0),
       bert_small(w, m, NULL, ln + 1, 1), R, C, m->cfg.layer_norm_eps);
    const void *E = bert_matrix(m, NULL, BERT_E_WORD, &dt);
    BE(be, linear_forward, w->mlogits, w->mh, E, dt,
       bert_small(w, m, NULL, bert_head_param(m, BERT_M_BIAS), 2), R, C, V, w->lin_scratch);
}

/* The backward of one chunk of R rows (positions rows[0..R)) from w->mdlogits. */
static void chunk_backward(const llama_model *m, bert_workspace *w, const llama_grad_plan *plan,
                           float **grads, int R, int need_dh, const int32_t *rows) {
    backend *be = w->base.be;
    const uint8_t *g = plan->need_grad;
    int C = w->C, V = m->cfg.vocab_size;
    int d = bert_head_param(m, BERT_M_DENSE), ln = bert_head_param(m, BERT_M_LN);
    int bias = bert_head_param(m, BERT_M_BIAS);
    int need_d = g[d] || g[d + 1], deeper = need_d || g[ln] || g[ln + 1] || need_dh;
    size_t RC = (size_t)R * C;
    badam_dtype edt, ddt;
    const void *E = bert_matrix(m, NULL, BERT_E_WORD, &edt);
    if (deeper) { /* dh = dl E before E's gradient (E may be updated once it is ready) */
        BE(be, zero, w->mdh, RC * sizeof(float));
        BE(be, linear_backward_input, w->mdh, w->mdlogits, E, edt, R, C, V, w->lin_scratch);
    }
    if (g[BERT_E_WORD] || g[bias])
        BE(be, linear_backward_weight, g[BERT_E_WORD] ? grads[BERT_E_WORD] : NULL,
           g[bias] ? grads[bias] : NULL, w->mdlogits, w->mh, edt, R, C, V, w->lin_scratch,
           w->layout.lin_scratch);
    if (!deeper) return;
    BE(be, zero, w->mdx, RC * sizeof(float));
    BE(be, layernorm_backward, w->mdx, g[ln] ? grads[ln] : NULL, g[ln + 1] ? grads[ln + 1] : NULL,
       w->mdh, w->mg, w->mmean, w->mrstd, bert_small(w, m, NULL, ln, 0), R, C);
    if (!need_d && !need_dh) return;
    BE(be, gelu_backward, w->mdx, w->mdx, w->mt, RC); /* mdx: dt */
    const void *W = bert_matrix(m, NULL, d, &ddt);
    if (need_dh) {
        BE(be, zero, w->mdh, RC * sizeof(float));
        BE(be, linear_backward_input, w->mdh, w->mdx, W, ddt, R, C, C, w->lin_scratch);
        for (int k = 0; k < R; k++)
            BE(be, copy, w->dres + (size_t)rows[k] * C, w->mdh + (size_t)k * C, sizeof(float) * C);
    }
    if (need_d)
        BE(be, linear_backward_weight, g[d] ? grads[d] : NULL, g[d + 1] ? grads[d + 1] : NULL,
           w->mdx, w->mx, ddt, R, C, C, w->lin_scratch, w->layout.lin_scratch);
}

/* Gathers the hidden rows (and, with targets, their targets) of positions rows[0..n). */
static void gather_chunk(bert_workspace *w, const llama_batch *b, const int32_t *rows, int n) {
    int C = w->C;
    for (int k = 0; k < n; k++) {
        BE(w->base.be, copy, w->mx + (size_t)k * C, w->x_final + (size_t)rows[k] * C,
           sizeof(float) * C);
        w->mhost[k] = b->targets[rows[k]];
    }
    BE(w->base.be, upload, w->mtargets, w->mhost, sizeof(int32_t) * (size_t)n);
}

double bert_mlm_head(const llama_model *m, bert_workspace *w, const llama_batch *b,
                     const llama_grad_plan *plan, float **grads, float grad_scale, int need_dh,
                     int *n_rows) {
    backend *be = w->base.be;
    int M = collect_rows(b, w->mrows), R = w->layout.mlm_rows, V = m->cfg.vocab_size;
    double loss = 0;
    *n_rows = 0;
    if (plan && need_dh)
        BE(be, zero, w->dres, sizeof(float) * (size_t)w->base.B * w->base.T * w->C);
    for (int r0 = 0; r0 < M; r0 += R) {
        int n = M - r0 < R ? M - r0 : R, counted = 0;
        gather_chunk(w, b, w->mrows + r0, n);
        chunk_forward(m, w, n);
        loss += BE(be, class_loss, plan ? w->mdlogits : NULL, w->mlogits, w->mtargets, n, V,
                   grad_scale, &counted);
        *n_rows += counted;
        if (plan) chunk_backward(m, w, plan, grads, n, need_dh, w->mrows + r0);
    }
    for (int j = 0; plan && plan->grad_ready && j < BERT_N_MLM; j++) {
        int idx = bert_head_param(m, j);
        if (plan->need_grad[idx]) plan->grad_ready(plan->grad_ready_ctx, idx);
    }
    return loss;
}

void bert_mlm_argmax(const llama_model *m, bert_workspace *w, const llama_batch *b, int32_t *pred,
                     float *host) {
    int M = collect_rows(b, w->mrows), R = w->layout.mlm_rows, V = m->cfg.vocab_size;
    for (int i = 0; i < b->B * b->T; i++) pred[i] = -1;
    for (int r0 = 0; r0 < M; r0 += R) {
        int n = M - r0 < R ? M - r0 : R;
        gather_chunk(w, b, w->mrows + r0, n);
        chunk_forward(m, w, n);
        BE(w->base.be, download, host, w->mlogits, sizeof(float) * (size_t)n * V);
        for (int k = 0; k < n; k++) {
            const float *lg = host + (size_t)k * V;
            int best = 0;
            for (int v = 1; v < V; v++)
                if (lg[v] > lg[best]) best = v;
            pred[w->mrows[r0 + k]] = best;
        }
    }
}
