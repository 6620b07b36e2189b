/* The training loop shared by every method:
 *   for each optimizer step s: (block-wise methods) switch block when s % K == 0;
 *   accumulate gradients of grad_accum micro-batches (sums of token losses);
 *   g = sum / tokens; clip to the global norm; AdamW / SGD update of the trainable tensors,
 *   refreshing their bf16 copies; metrics; validation and checkpoints on schedule. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/memory.h"
#include "io/files.h"
#include "io/json_write.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/run_record.h"
#include "train/trainable.h"

#define PATH_BYTES 4096

typedef struct trainer {
    const train_config *cfg;
    llama_model *m;
    badam_tokenizer *tok;
    data_set *train, *val;
    data_stats data_stats, val_stats; /* what the --data and --val-data files kept */
    llama_folder_meta meta;           /* what saved folders declare (a chat template's end) */
    int32_t meta_eos[LLAMA_MAX_EOS + 2];
    char *chat_template;
    int has_meta;
    batcher *batches;
    block_partition part;
    int blockwise;
    trainable_set ts;
    llama_workspace *ws;
    llama_grad_plan plan;
    lr_schedule sched;
    adamw_hparams adam;
    int K, max_steps, step;
    float clip;
    metrics_log metrics;
    json_t *record; /* the run record checkpoints carry (run_record.h); NULL without checkpoints */
    /* LOMO: the update applied inside backward */
    float lomo_lr, lomo_scale;
    double lomo_sum_squares;
} trainer;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* LOMO: SGD on one parameter as soon as its gradient is complete, then the shared gradient
 * buffer is cleared for the next parameter. */
static void lomo_grad_ready(void *ctx, int idx) {
    trainer *t = ctx;
    const llama_model *m = t->m;
    llama_param *p = &m->params[idx];
    float *g = t->ts.grads[idx];
    t->lomo_sum_squares += grad_sum_squares(g, p->numel) * t->lomo_scale * t->lomo_scale;
    float wd = p->ndim == 2 ? t->cfg->weight_decay : 0.0f;
    if (m->dtype == BADAM_DTYPE_F32)
        sgd_update(p->data, g, p->numel, t->lomo_lr, t->lomo_scale, wd, NULL, m->dtype);
    else /* update in fp32 from the stored value, round back */
        sgd_update_stored(p->data, m->dtype, g, p->numel, t->lomo_lr, t->lomo_scale, wd);
    memset(g, 0, sizeof(float) * p->numel);
}

static badam_status load_data(trainer *t, badam_error *err) {
    const train_config *c = t->cfg;
    char path[PATH_BYTES];
    if (!io_path_join(path, sizeof path, c->model_dir, "tokenizer.json") && io_is_file(path)) {
        badam_status st = tokenizer_load(c->model_dir, &t->tok, err);
        if (st) return st;
    }
    data_options o = {c->format, c->template_name, c->system_prompt, c->seq_len};
    data_set *all = NULL;
    badam_status st = data_load(c->data_path, t->tok, &o, &all, err);
    if (st) return st;
    t->data_stats = all->stats;
    if (c->val_path) {
        t->train = all;
        st = data_load(c->val_path, t->tok, &o, &t->val, err);
        if (!st) t->val_stats = t->val->stats;
    } else if (c->val_size > 0) {
        st = data_split(all, c->val_size, c->seed, &t->train, &t->val, err);
        data_free(all);
    } else {
        t->train = all;
    }
    if (st) return st;
    batcher_options bo = {c->batch_size,      c->seq_len, c->shuffle,
                          c->group_by_length, c->pack,    c->seed};
    return batcher_create(t->train, &bo, &t->batches, err);
}

static badam_status setup_model(trainer *t, const char *weights_dir, badam_error *err) {
    const train_config *c = t->cfg;
    badam_status st = llama_model_load(weights_dir, c->dtype, &t->m, err);
    if (st) return st;
    if (c->method == METHOD_LORA) {
        st = llama_lora_attach(t->m, c->lora_rank, c->lora_alpha, c->lora_dropout, c->lora_targets,
                               c->seed, err);
        if (st) return st;
        t->m->lora->dropout_seed = c->seed;
        /* a resumed run loads the checkpoint's adapter in restore(), once the run is checked */
        if (!c->resume && c->init_adapter && (st = llama_lora_load(t->m, c->init_adapter, err)))
            return st;
    }
    if (t->tok && tokenizer_vocab_size(t->tok) > t->m->cfg.vocab_size)
        return badam_fail(err, BADAM_E_SHAPE,
                          "%s: the tokenizer has %d tokens but config.json's vocab_size is %d",
                          c->model_dir, tokenizer_vocab_size(t->tok), t->m->cfg.vocab_size);
    return BADAM_OK;
}

static badam_status check_config(const train_config *c, badam_error *err) {
    if (!c->model_dir || !c->data_path || !c->out_dir)
        return badam_fail(err, BADAM_E_INVALID, "train: --model, --data and --out are required");
    if (c->batch_size < 1 || c->grad_accum < 1 || c->seq_len < 2 || c->max_steps < 0 ||
        c->epochs < 0 || (c->max_steps == 0 && c->epochs == 0))
        return badam_fail(err, BADAM_E_INVALID,
                          "train: need batch size >= 1, grad accumulation >= 1, seq len >= 2 and "
                          "a positive number of steps or epochs");
    if (!(c->lr >= 0) || !(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) ||
        !(c->eps > 0) || !(c->weight_decay >= 0) || c->warmup < 0 ||
        !(c->min_lr_ratio >= 0 && c->min_lr_ratio <= 1))
        return badam_fail(err, BADAM_E_INVALID,
                          "train: invalid optimizer settings (lr >= 0, betas in [0, 1), eps > 0, "
                          "weight decay >= 0, warmup >= 0, min lr ratio in [0, 1])");
    if (c->stop_at_step < 0 || (c->stop_at_step > 0 && c->no_checkpoint))
        return badam_fail(err, BADAM_E_INVALID,
                          "--stop-at-step needs a step >= 1 and checkpoints (it stops with one, "
                          "for --resume)");
    if (c->start_block < -1)
        return badam_fail(err, BADAM_E_INVALID, "--start-block %d: blocks count from 0",
                          c->start_block);
    if (c->method == METHOD_LOMO && c->grad_accum != 1)
        return badam_fail(err, BADAM_E_INVALID,
                          "train: --method lomo updates inside backward and cannot accumulate "
                          "gradients (use --grad-accum 1)");
    if (c->method == METHOD_LOMO && c->clip > 0)
        return badam_fail(err, BADAM_E_INVALID,
                          "train: --method lomo updates inside backward and cannot clip by the "
                          "global gradient norm (use --clip 0)");
    return BADAM_OK;
}

static void make_plan(trainer *t) {
    int lora = t->cfg->method == METHOD_LORA;
    llama_plan_for_flags(t->m, t->ts.flags, lora, &t->plan);
    t->plan.recompute = t->cfg->recompute;
    if (t->cfg->method == METHOD_LOMO) {
        t->plan.grad_ready = lomo_grad_ready;
        t->plan.grad_ready_ctx = t;
    }
}

/* Mean validation loss over the whole validation set (no gradients, dropout off). */
static badam_status validate(trainer *t, double *loss, long *tokens, badam_error *err) {
    *loss = NAN, *tokens = 0;
    if (!t->val || !t->val->n) return BADAM_OK;
    batcher_options bo = {t->cfg->batch_size, t->cfg->seq_len, 0, 0, 0, 0};
    batcher *vb = NULL;
    badam_status st = batcher_create(t->val, &bo, &vb, err);
    if (st) return st;
    if (t->m->lora) t->m->lora->training = 0;
    double sum = 0;
    size_t n_batches = batcher_batches_per_epoch(vb);
    for (size_t i = 0; i < n_batches && !st; i++) {
        data_batch db;
        batcher_next(vb, &db);
        llama_batch lb = {db.B, db.T, db.tokens, db.targets, db.positions, db.seg_start};
        double s = 0;
        int n = 0;
        st = llama_forward(t->m, t->ws, &lb, NULL, 1.0f, NULL, &s, &n, err);
        sum += s, *tokens += n;
    }
    batcher_free(vb);
    if (*tokens) *loss = sum / (double)*tokens;
    return st;
}

static double trainable_grad_sum_squares(const trainable_set *ts) {
    double s = 0;
    for (int i = 0; i < ts->n; i++) s += grad_sum_squares(ts->t[i].grad, ts->t[i].numel);
    return s;
}

static void apply_update(trainer *t, float lr, float scale) {
    trainable_set *ts = &t->ts;
    ts->adam_step++;
    for (int i = 0; i < ts->n; i++) {
        trainable *x = &ts->t[i];
        float wd = x->decay ? t->cfg->weight_decay : 0.0f;
        if (x->master_lo && t->cfg->method == METHOD_SGD_BCD)
            sgd_update_split(x->weight, x->master_lo, x->grad, x->numel, lr, scale, wd);
        else if (x->master_lo)
            adamw_update_split(x->weight, x->master_lo, x->m, x->v, x->grad, x->numel, lr, scale,
                               wd, ts->adam_step, &t->adam);
        else if (t->cfg->method == METHOD_SGD_BCD)
            sgd_update(x->master, x->grad, x->numel, lr, scale, wd, x->weight, t->m->dtype);
        else
            adamw_update(x->master, x->m, x->v, x->grad, x->numel, lr, scale, wd, ts->adam_step,
                         &t->adam, x->weight, t->m->dtype);
    }
}

static badam_status save_checkpoint(trainer *t, badam_error *err) {
    checkpoint_state s = {t->step, t->ts.adam_step, t->ts.block, batcher_get_state(t->batches),
                          t->record};
    return checkpoint_save(t->cfg->out_dir, t->cfg->model_dir, t->m, &t->ts, &s,
                           t->cfg->max_shard_bytes, t->has_meta ? &t->meta : NULL, err);
}

/* The run record of this run (run_record.h), built when checkpoints are written or read. */
static badam_status make_record(trainer *t, badam_error *err) {
    run_facts f = {t->cfg, t->m, t->blockwise ? &t->part : NULL, t->K, t->clip, "", "", ""};
    badam_status st = run_facts_hash_files(&f, err);
    if (st) return st;
    t->record = run_record_build(&f);
    return t->record ? BADAM_OK : badam_fail(err, BADAM_E_NOMEM, "run record: out of memory");
}

/* Restores step, data position and optimizer state from OUT/checkpoint (weights and adapters
 * were loaded from it already; the run record was checked). */
static badam_status restore(trainer *t, const char *dir, const checkpoint_state *s,
                            badam_error *err) {
    char adapter[PATH_BYTES];
    badam_status st = BADAM_OK;
    if (t->m->lora) {
        if (io_path_join(adapter, sizeof adapter, dir, "adapter"))
            return badam_fail(err, BADAM_E_INVALID, "%s: path too long", dir);
        if ((st = llama_lora_load(t->m, adapter, err))) return st;
    }
    t->step = s->step;
    st = batcher_set_state(t->batches, s->data, err);
    if (st) return st;
    if (t->blockwise && s->block >= 0) trainable_activate_block(&t->ts, t->m, &t->part, s->block);
    t->ts.adam_step = s->adam_step;
    return checkpoint_load_optimizer(dir, &t->ts, err);
}

static int add_eos(int32_t *ids, int n, int32_t id) {
    if (id < 0) return n;
    for (int i = 0; i < n; i++)
        if (ids[i] == id) return n;
    ids[n] = id;
    return n + 1;
}

/* A model trained on chat data through a template stops where the template ends a response:
 * the saved folder's eos_token_id becomes [the base's EOS ids, the template's end-of-turn id],
 * its tokenizer's eos_token the end-of-turn token, and its chat_template the template's format
 * (template_chat_jinja). Pre-tokenized data names no template: the folder stays as it was. */
static badam_status make_folder_meta(trainer *t, badam_error *err) {
    const train_config *c = t->cfg;
    if (!t->tok || t->train->format == DATA_FORMAT_TOKENIZED) return BADAM_OK;
    llama_folder_meta *meta = &t->meta;
    memset(meta, 0, sizeof *meta);
    int n = 0;
    for (int i = 0; i < t->m->cfg.n_eos; i++)
        n = add_eos(t->meta_eos, n, t->m->cfg.eos_token_ids[i]);
    n = add_eos(t->meta_eos, n, tokenizer_eos_id(t->tok));
    const char *eot = template_end_of_turn(c->template_name);
    int32_t eot_id = eot ? tokenizer_token_to_id(t->tok, eot) : -1;
    n = add_eos(t->meta_eos, n, eot_id);
    meta->eos_ids = t->meta_eos;
    meta->n_eos = n;
    meta->bos_id = t->m->cfg.bos_token_id >= 0 ? t->m->cfg.bos_token_id : tokenizer_bos_id(t->tok);
    if (eot_id >= 0) meta->eos_token = eot;
    badam_status st =
        template_chat_jinja(c->template_name, t->tok, c->system_prompt, &t->chat_template, err);
    if (st) return st;
    meta->chat_template = t->chat_template;
    t->has_meta = 1;
    return BADAM_OK;
}

static void free_trainer(trainer *t) {
    json_decref(t->record);
    free(t->chat_template);
    metrics_close(&t->metrics);
    trainable_free(&t->ts);
    if (t->blockwise) partition_free(&t->part);
    llama_workspace_free(t->ws);
    batcher_free(t->batches);
    data_free(t->train);
    data_free(t->val);
    tokenizer_free(t->tok);
    llama_model_free(t->m);
}

static badam_status write_memory_json(const trainer *t, const train_report *r, badam_error *err) {
    json_t *j = json_object(), *pred = io_json_add_object(j, "predicted"),
           *meas = io_json_add_object(j, "measured_peak");
    for (int c = 1; c < BADAM_MEM_CATEGORY_COUNT; c++) {
        json_object_set_new(pred, badam_mem_category_name(c),
                            json_integer((json_int_t)r->predicted.bytes[c]));
        json_object_set_new(meas, badam_mem_category_name(c),
                            json_integer((json_int_t)r->measured[c]));
    }
    json_object_set_new(pred, "total", json_integer((json_int_t)r->predicted.total));
    json_object_set_new(j, "peak_rss", json_integer((json_int_t)r->peak_rss));
    json_object_set_new(j, "params", json_integer((json_int_t)r->predicted.params));
    json_object_set_new(j, "trainable_params", json_integer((json_int_t)r->predicted.trainable));
    json_object_set_new(j, "method", json_string(train_method_name(t->cfg->method)));
    char path[PATH_BYTES];
    io_path_join(path, sizeof path, t->cfg->out_dir, "memory.json");
    badam_status st = io_json_write_file(path, j, 2, err);
    json_decref(j);
    return st;
}

static badam_status save_final(trainer *t, badam_error *err) {
    const train_config *c = t->cfg;
    if (t->m->lora) {
        char dir[PATH_BYTES];
        io_path_join(dir, sizeof dir, c->out_dir, "adapter");
        badam_status st = llama_lora_save(t->m, dir, c->model_dir, err);
        if (st) return st;
        llama_lora_merge(t->m); /* OUT/ itself gets the merged weights */
    }
    return llama_model_save_meta(t->m, c->model_dir, c->out_dir, c->max_shard_bytes,
                                 t->has_meta ? &t->meta : NULL, err);
}

/* One optimizer step: gradients of grad_accum micro-batches, then the update. */
static badam_status train_step(trainer *t, step_metrics *sm, badam_error *err) {
    const train_config *c = t->cfg;
    double t0 = now_s();
    uint64_t allocs0 = badam_alloc_count();
    sm->switch_s = 0;
    int starts = 0;
    int visit = t->blockwise ? block_visit_of_step(t->step, t->K, c->reference_compat, &starts) : 0;
    if (t->blockwise && starts) {
        int block =
            block_for_visit(c->order, t->part.n_blocks, c->start_block, c->seed, (uint64_t)visit);
        trainable_activate_block(&t->ts, t->m, &t->part, block);
        make_plan(t);
        sm->switch_s = now_s() - t0;
    }
    float lr = lr_at(&t->sched, t->step);
    trainable_zero_grads(&t->ts);
    double loss_sum = 0;
    long tokens = 0, batch_tokens = 0;
    sm->forward_s = sm->backward_s = 0;
    t->lomo_sum_squares = 0;
    for (int a = 0; a < c->grad_accum; a++) {
        data_batch db;
        batcher_next(t->batches, &db);
        llama_batch lb = {db.B, db.T, db.tokens, db.targets, db.positions, db.seg_start};
        if (t->m->lora) {
            t->m->lora->training = 1;
            t->m->lora->dropout_step = (uint64_t)t->step * c->grad_accum + a;
        }
        t->lomo_lr = lr;
        t->lomo_scale = db.n_targets ? 1.0f / db.n_targets : 0.0f;
        double f0 = now_s(), s = 0;
        int n = 0;
        badam_status st = llama_forward(t->m, t->ws, &lb, &t->plan, 1.0f, t->ts.grads, &s, &n, err);
        double f1 = now_s();
        if (!st && !isfinite(s))
            st = badam_fail(err, BADAM_E_NUMERIC,
                            "step %d: the loss is not finite (%g); lower --lr or check the data",
                            t->step + 1, s);
        if (!st) st = llama_backward(t->m, t->ws, &lb, &t->plan, t->ts.grads, err);
        sm->forward_s += f1 - f0, sm->backward_s += now_s() - f1;
        if (st) return st;
        loss_sum += s, tokens += n, batch_tokens += (long)db.B * db.T;
    }
    double u0 = now_s(), norm;
    if (c->method == METHOD_LOMO) {
        norm = sqrt(t->lomo_sum_squares);
    } else {
        float scale = tokens ? 1.0f / (float)tokens : 0.0f;
        norm = sqrt(trainable_grad_sum_squares(&t->ts)) * scale;
        if (!isfinite(norm))
            return badam_fail(err, BADAM_E_NUMERIC,
                              "step %d: the gradient norm is not finite; lower --lr or check "
                              "the data",
                              t->step + 1);
        if (t->clip > 0 && norm > 0) {
            double coef = t->clip / (norm + 1e-6);
            if (coef < 1) scale = (float)(scale * coef);
        }
        apply_update(t, lr, scale);
    }
    sm->update_s = now_s() - u0;
    t->step++;
    sm->step = t->step;
    sm->loss = tokens ? loss_sum / tokens : 0;
    sm->lr = lr, sm->grad_norm = norm;
    sm->block = t->blockwise ? t->ts.block : -1;
    sm->block_name = t->blockwise ? t->part.block_name[t->ts.block] : NULL;
    sm->tokens = tokens, sm->batch_tokens = batch_tokens;
    sm->step_s = now_s() - t0;
    sm->tokens_per_s = batch_tokens / (sm->step_s > 0 ? sm->step_s : 1e-9);
    sm->allocs = badam_alloc_count() - allocs0;
    return BADAM_OK;
}

/* The run's summary, through the caller's logger (train_config.log). */
static void print_plan(const trainer *t, const memory_plan *p) {
    const train_config *c = t->cfg;
    const badam_logger *lg = &c->log;
    badam_logf(lg, BADAM_LOG_INFO,
               "badam train: %s on %s, %zu parameters (%zu trainable at a time)",
               train_method_name(c->method), c->model_dir, p->params, p->trainable);
    if (t->blockwise)
        badam_logf(lg, BADAM_LOG_INFO, "  %d blocks (%s order), switch every %d steps",
                   t->part.n_blocks, block_order_name(c->order), t->K);
    const char *note = t->blockwise ? partition_tied_head_note(&t->m->cfg, &c->partition) : NULL;
    if (note) badam_logf(lg, BADAM_LOG_INFO, "  note: %s", note);
    char line[512];
    size_t used = (size_t)snprintf(line, sizeof line, "  memory plan:");
    for (int cat = 1; cat < BADAM_MEM_CATEGORY_COUNT && used < sizeof line; cat++)
        used += (size_t)snprintf(line + used, sizeof line - used, " %s %.1f MiB%s",
                                 badam_mem_category_name(cat), p->bytes[cat] / 1048576.0,
                                 cat + 1 < BADAM_MEM_CATEGORY_COUNT ? "," : "");
    badam_logf(lg, BADAM_LOG_INFO, "%s", line);
    data_stats_describe(&t->data_stats, line, sizeof line);
    badam_logf(lg, BADAM_LOG_INFO, "  data: %s", line);
    if (c->val_path) {
        data_stats_describe(&t->val_stats, line, sizeof line);
        badam_logf(lg, BADAM_LOG_INFO, "  validation data: %s", line);
    }
    badam_logf(lg, BADAM_LOG_INFO, "  %zu training examples, %d steps", t->train->n, t->max_steps);
}

badam_status train_run(const train_config *c, train_report *r, badam_error *err) {
    memset(r, 0, sizeof *r);
    r->val_loss = NAN;
    badam_status st = check_config(c, err);
    if (st) return st;
    trainer tr, *t = &tr;
    memset(t, 0, sizeof *t);
    t->cfg = c;
    t->blockwise = c->method == METHOD_BADAM || c->method == METHOD_SGD_BCD;
    double start = now_s();
    badam_mem_reset_peaks(); /* the report's measured peaks are this run's */
    if ((st = io_make_dir(c->out_dir, err))) return st;

    char ckpt[PATH_BYTES] = "";
    checkpoint_state cs = {0};
    if (c->resume) {
        if ((st = checkpoint_find(c->out_dir, ckpt, sizeof ckpt, err)) ||
            (st = checkpoint_read_state(ckpt, &cs, err)))
            return st;
    }
    if (!st) st = load_data(t, err);
    if (!st) st = setup_model(t, c->resume ? ckpt : c->model_dir, err);
    if (!st) st = make_folder_meta(t, err);
    if (!st && t->blockwise) st = partition_build(t->m, &c->partition, &t->part, err);
    if (!st && t->blockwise && c->start_block >= t->part.n_blocks)
        st = badam_fail(err, BADAM_E_INVALID,
                        "train: --start-block %d: the partition has %d blocks (0 to %d)",
                        c->start_block, t->part.n_blocks, t->part.n_blocks - 1);
    if (st) {
        json_decref(cs.run);
        free_trainer(t);
        return st;
    }
    size_t per_epoch = batcher_batches_per_epoch(t->batches);
    t->max_steps =
        c->max_steps
            ? c->max_steps
            : (int)((per_epoch * (size_t)c->epochs + c->grad_accum - 1) / (size_t)c->grad_accum);
    t->K = c->switch_every > 0 ? c->switch_every
                               : block_switch_every_auto(t->train->n, c->batch_size * c->grad_accum,
                                                         t->blockwise ? t->part.n_blocks : 1);
    t->clip = c->clip >= 0 ? c->clip : (c->method == METHOD_LOMO ? 0.0f : 1.0f);
    t->sched = (lr_schedule){c->schedule, c->lr, c->warmup, t->max_steps, c->min_lr_ratio};
    t->adam = (adamw_hparams){c->beta1, c->beta2, c->eps};
    /* A resumed run must be the run that wrote the checkpoint: every option that shapes the
     * trajectory is compared before anything is allocated for training. */
    if (c->resume || !c->no_checkpoint) st = make_record(t, err);
    if (!st && c->resume) st = run_record_check(cs.run, t->record, ckpt, err);
    json_decref(cs.run);
    cs.run = NULL;
    /* Nothing to resume, or a pause point already passed: say so rather than rewrite the run's
     * records with an empty one. */
    if (!st && c->resume && cs.step >= t->max_steps)
        st = badam_fail(err, BADAM_E_INVALID,
                        "%s: the run is complete (step %d of %d); its model is in %s", ckpt,
                        cs.step, t->max_steps, c->out_dir);
    if (!st && c->resume && c->stop_at_step > 0 && c->stop_at_step <= cs.step)
        st = badam_fail(err, BADAM_E_INVALID,
                        "train: --stop-at-step %d is not after the checkpoint's step %d (%s)",
                        c->stop_at_step, cs.step, ckpt);

    if (!st) st = memory_plan_predict(&t->m->cfg, c, c->batch_size, c->seq_len, &r->predicted, err);
    if (!st) st = trainable_create(&t->ts, t->m, c->method, &t->part, err);
    if (!st) t->ts.decay_all_but_biases = t->blockwise && c->reference_compat;
    if (!st) st = llama_workspace_create(t->m, c->batch_size, c->seq_len, &t->ws, err);
    if (!st && c->resume) st = restore(t, ckpt, &cs, err);
    if (!st) st = metrics_open(&t->metrics, c->out_dir, c->resume ? t->step : -1, err);
    if (st) {
        free_trainer(t);
        return st;
    }
    print_plan(t, &r->predicted);
    /* Block-wise methods make their plan at each switch; a run resumed inside a block visit
     * continues with the restored block. */
    if (!t->blockwise || t->ts.block >= 0) make_plan(t);

    int stop_at = c->stop_at_step > 0 && c->stop_at_step < t->max_steps ? c->stop_at_step : -1;
    while (!st && t->step < t->max_steps && t->step != stop_at) {
        step_metrics sm;
        memset(&sm, 0, sizeof sm);
        sm.max_steps = t->max_steps;
        st = train_step(t, &sm, err);
        if (st) break;
        sm.elapsed_s = now_s() - start;
        sm.rss = badam_current_rss();
        metrics_write_step(&t->metrics, &sm);
        if (c->progress) {
            char line[256];
            metrics_progress(line, sizeof line, &sm);
            badam_logf(&c->log, BADAM_LOG_PROGRESS, "%s", line);
        }
        r->forward_s += sm.forward_s, r->backward_s += sm.backward_s;
        r->update_s += sm.update_s, r->switch_s += sm.switch_s;
        r->tokens += (size_t)sm.batch_tokens;
        r->final_loss = sm.loss;
        if (c->eval_every > 0 && t->step % c->eval_every == 0 && t->step < t->max_steps) {
            long vt;
            if (!(st = validate(t, &r->val_loss, &vt, err)))
                metrics_write_eval(&t->metrics, t->step, r->val_loss, vt);
        }
        if (!st && !c->no_checkpoint && c->save_every > 0 && t->step % c->save_every == 0 &&
            t->step < t->max_steps)
            st = save_checkpoint(t, err);
    }
    if (c->progress) badam_logf(&c->log, BADAM_LOG_PROGRESS_END, "%s", "");
    if (!st && t->step == stop_at) { /* a pause: the checkpoint is the result, --resume goes on */
        st = save_checkpoint(t, err);
        r->steps = t->step;
        r->stopped = 1;
        r->seconds = now_s() - start;
        r->peak_rss = badam_peak_rss();
        free_trainer(t);
        return st;
    }
    long vt = 0;
    if (!st) st = validate(t, &r->val_loss, &vt, err);
    if (!st && vt) metrics_write_eval(&t->metrics, t->step, r->val_loss, vt);
    if (!st && !c->no_checkpoint) st = save_checkpoint(t, err);
    r->steps = t->step;
    r->seconds = now_s() - start;
    r->peak_rss = badam_peak_rss();
    for (int cat = 0; cat < BADAM_MEM_CATEGORY_COUNT; cat++) r->measured[cat] = badam_mem_peak(cat);
    if (!st) st = write_memory_json(t, r, err);
    if (!st) st = save_final(t, err);
    free_trainer(t);
    return st;
}
