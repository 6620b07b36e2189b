/* The training loop shared by every method (the method's ops, optim/method.h, do everything
 * that differs between methods):
 *   for each optimizer step s: the method's on_step_begin (a block switch);
 *   accumulate gradients of grad_accum micro-batches (sums of token losses; a method may take
 *   each gradient inside backward), or let a method that runs its own step run it;
 *   the method's update (all-reduce, g = sum / tokens, clip to the global norm, apply);
 *   metrics; validation and checkpoints on schedule. Where a multi-process run needs it, the
 *   communicator (badam/comm.h) sums losses and token counts over ranks and rank 0 writes.
 * A run has one backend (model/backend.h): train_run makes a CPU backend, train_run_on_backend
 * (trainer_internal.h) takes the caller's; the workspace and the method's state live on it. The
 * model is reached through its family's table (badam/model.h: forward, backward, plans), except
 * the workspace, built on the run's backend with llama_workspace_create_on (model_backend.h;
 * the table's workspace_create makes a backend of its own). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "badam/bert.h"
#include "badam/model.h"
#include "base/memory.h"
#include "io/files.h"
#include "io/json_write.h"
#include "train/checkpoint.h"
#include "train/encoder_data.h"
#include "train/grad_buckets.h"
#include "train/method_select.h"
#include "train/metrics.h"
#include "train/rank_check.h"
#include "train/rank_model.h"
#include "model/model_backend.h"
#include "train/run_record.h"
#include "badam/device.h"
#include "model/cuda/cuda_backend.h"
#include "train/shard.h"
#include "train/train_mlm.h"
#include "train/trainer_internal.h"

#define PATH_BYTES 4096

typedef struct trainer {
    const train_config *cfg;
    const train_method_ops *ops;
    method_options mo;
    method_state ms; /* ms.ops != NULL once created */
    backend *be;     /* the run's backend: the workspace and the method's state live on it */
    llama_model *m;
    const model_arch *arch; /* the model's family: forward, backward, plans, workspace */
    badam_tokenizer *tok;
    data_set *train, *val;
    encoder_data *enc; /* --task: an encoder on a task's files (encoder_data.h); NULL: LM data */
    data_stats data_stats, val_stats; /* what the --data and --val-data files kept */
    llama_folder_meta meta;           /* what saved folders declare (a chat template's end) */
    int32_t meta_eos[LLAMA_MAX_EOS + 2];
    char *chat_template;
    int has_meta;
    batcher *batches;
    llama_workspace *ws;
    llama_grad_plan plan;
    lr_schedule sched;
    int max_steps, step;
    int rank0; /* this process writes the run's files */
    metrics_log metrics;
    json_t *record; /* the run record checkpoints carry (run_record.h); NULL without checkpoints */
    method_micro_ctx micro; /* what grad_ready gets for the current micro-batch */
    shard_runtime *shard;   /* --shard-weights on N > 1 ranks (train/shard.h), else NULL */
    train_mlm *mlm;         /* --objective mlm: masks each batch (NULL otherwise) */
    char mlm_head[64];      /* --objective mlm: the masked-LM head, trained in every block */
    grad_buckets *buckets;  /* N > 1 ranks: gradients reduced inside backward, else NULL */
} trainer;

/* What one step adds up. */
typedef struct step_totals {
    double loss_sum, norm;
    long tokens, batch_tokens;
} step_totals;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- where the two data paths differ: instruction data (batcher) or a task (t->enc) */

static size_t n_examples(const trainer *t) {
    return t->enc ? t->enc->train->n : t->train->n;
}
static size_t batches_per_epoch(const trainer *t) {
    return t->enc ? task_batcher_batches_per_epoch(t->enc->batches)
                  : batcher_batches_per_epoch(t->batches);
}
static size_t smallest_batch(const trainer *t) {
    return t->enc ? task_batcher_smallest_batch(t->enc->batches)
                  : batcher_smallest_batch(t->batches);
}
static batcher_state data_state(const trainer *t) {
    batcher_state s;
    if (!t->enc) return batcher_get_state(t->batches);
    task_batcher_get_state(t->enc->batches, &s.epoch, &s.index);
    return s;
}
static badam_status set_data_state(trainer *t, batcher_state s, badam_error *err) {
    return t->enc ? task_batcher_set_state(t->enc->batches, s.epoch, s.index, err)
                  : batcher_set_state(t->batches, s, err);
}
/* The next training batch (db: B, T and n_targets). An encoder's dropout is on for a training
 * micro-batch, its masks keyed by `micro`, and off otherwise. */
static void next_batch(trainer *t, int dropout, uint64_t micro, data_batch *db, llama_batch *lb) {
    if (!t->enc) {
        batcher_next(t->batches, db);
        model_batch_from_data(db, lb);
        if (t->mlm) train_mlm_batch(t->mlm, db, lb); /* --objective mlm: masked in place */
        return;
    }
    memset(db, 0, sizeof *db);
    encoder_data_next(t->enc, lb, &db->n_targets);
    db->B = lb->B, db->T = lb->T;
    bert_workspace_set_dropout(t->ws, dropout, t->cfg->seed, micro);
}
/* An encoder's validation: loss and the task's metrics into metrics.jsonl and the log. */
static badam_status validate_task(trainer *t, double *loss, badam_error *err) {
    long n = 0;
    task_scores s;
    badam_status st = encoder_validate(t->enc, t->cfg->comm, t->m, t->ws, loss, &n, &s, err);
    if (!st && t->enc->val)
        encoder_report_eval(t->enc, &t->metrics, &t->cfg->log, t->step, *loss, n, &s);
    return st;
}

static badam_status load_data(trainer *t, badam_error *err) {
    const train_config *c = t->cfg;
    if (c->task) return encoder_data_open(c, &t->enc, err);
    const model_arch *arch = NULL;
    badam_error ignored;
    if (c->objective != TRAIN_OBJECTIVE_MLM &&
        !model_arch_for_folder(c->model_dir, &arch, &ignored) &&
        !(arch->target_kinds & (1u << MODEL_TARGETS_TOKEN)))
        return badam_fail(err, BADAM_E_INVALID,
                          "%s: the model is an encoder (%s): train it on a task with --task "
                          "(boolq, cb, copa, multirc, rte, wic, wsc), or pretrain a *ForMaskedLM "
                          "folder with --objective mlm",
                          c->model_dir, arch->family);
    char path[PATH_BYTES];
    /* rank 0 reads the model (the others may have no folder: rank_model.h); say so before the
     * data, whose errors would otherwise come first */
    if (badam_comm_rank(c->comm) == 0 &&
        !io_path_join(path, sizeof path, c->model_dir, "config.json") && !io_is_file(path))
        return badam_fail(err, BADAM_E_IO, "%s: cannot open (--model must be a model folder)",
                          path);
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
    batcher_options bo = {c->batch_size,
                          c->seq_len,
                          c->shuffle,
                          c->group_by_length,
                          c->pack,
                          c->seed,
                          badam_comm_rank(c->comm),
                          badam_comm_size(c->comm)};
    return batcher_create(t->train, &bo, &t->batches, err);
}

/* Data parallel: every rank starts from rank 0's weights (and LoRA or bottleneck adapters),
 * whatever its own files held. */
static badam_status broadcast_weights(trainer *t, badam_error *err) {
    const badam_comm *comm = t->cfg->comm;
    if (badam_comm_size(comm) <= 1) return BADAM_OK;
    badam_status st = badam_comm_broadcast(comm, t->m->storage, t->m->storage_bytes, 0, err);
    const llama_lora *lo = t->m->lora;
    /* the adapter slots as llama.h lays them out: [n_layers * LLAMA_P_KIND_COUNT], NULL where
     * a linear is not adapted */
    int slots = lo ? t->m->cfg.n_layers * LLAMA_P_KIND_COUNT : 0;
    for (int a = 0; a < slots && !st; a++) {
        if (!lo->A[a]) continue;
        const llama_param *p = &t->m->params[llama_param_index(
            t->m, a / LLAMA_P_KIND_COUNT, (llama_param_kind)(a % LLAMA_P_KIND_COUNT))];
        size_t out = (size_t)p->shape[0], in = (size_t)p->shape[1], r = (size_t)lo->rank;
        st = badam_comm_broadcast(comm, lo->A[a], r * in * sizeof(float), 0, err);
        if (!st) st = badam_comm_broadcast(comm, lo->B[a], out * r * sizeof(float), 0, err);
    }
    const llama_bottleneck *bn = t->m->bottleneck; /* bottleneck adapters: one block each */
    for (int a = 0; bn && a < bn->n_adapters && !st; a++)
        st = badam_comm_broadcast(comm, bn->w[a], bn->per_adapter * sizeof(float), 0, err);
    return st ? badam_error_prefix(err, "broadcasting rank 0's initial weights") : BADAM_OK;
}

static badam_status setup_model(trainer *t, const char *weights_dir, badam_error *err) {
    const train_config *c = t->cfg;
    /* decoders: ranks other than 0 take rank 0's config and weights (rank_model.h); encoders
     * (--task, --objective mlm) load through their family on every rank, and rank 0's broadcast
     * overwrites */
    badam_status st;
    if (c->task || c->objective == TRAIN_OBJECTIVE_MLM) {
        const model_arch *fam = NULL;
        st = model_arch_for_folder(weights_dir, &fam, err);
        if (!st && t->enc && t->enc->load_head) /* a masked-LM folder: the task's head, new */
            st = bert_model_load_as(weights_dir, c->dtype, (llama_encoder_head)t->enc->load_head,
                                    t->enc->load_labels, c->seed, &c->log, &t->m, err);
        else if (!st)
            st = fam->load(weights_dir, c->dtype, &t->m, err);
    } else {
        st = rank_model_load(c->comm, weights_dir, c->dtype, &t->m, err);
    }
    if (st) return st;
    if (!(t->arch = model_arch_find(t->m->cfg.model_type)))
        return badam_fail(err, BADAM_E_UNSUPPORTED, "%s: no model family serves model_type '%s'",
                          weights_dir, t->m->cfg.model_type);
    /* e.g. LoRA's adapters; a resumed run loads the checkpoint's parts in restore() */
    if (t->ops->prepare_model && (st = t->ops->prepare_model(t->m, &t->mo, c->resume, err)))
        return st;
    if (t->tok && tokenizer_vocab_size(t->tok) > t->m->cfg.vocab_size)
        return badam_fail(err, BADAM_E_SHAPE,
                          "%s: the tokenizer has %d tokens but config.json's vocab_size is %d",
                          c->model_dir, tokenizer_vocab_size(t->tok), t->m->cfg.vocab_size);
    return BADAM_OK;
}

static badam_status check_config(const train_config *c, badam_error *err) {
    if (!c->model_dir || !c->data_path || !c->out_dir)
        return badam_fail(err, BADAM_E_INVALID, "--model, --data and --out are required");
    if (c->batch_size < 1 || c->grad_accum < 1 || c->seq_len < 2 || c->max_steps < 0 ||
        c->epochs < 0 || (c->max_steps == 0 && c->epochs == 0))
        return badam_fail(err, BADAM_E_INVALID,
                          "need batch size >= 1, grad accumulation >= 1, seq len >= 2 and "
                          "a positive number of steps or epochs");
    if (!(c->lr >= 0) || !(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) ||
        !(c->eps > 0) || !(c->weight_decay >= 0) || c->warmup < 0 ||
        !(c->min_lr_ratio >= 0 && c->min_lr_ratio <= 1))
        return badam_fail(err, BADAM_E_INVALID,
                          "invalid optimizer settings (lr >= 0, betas in [0, 1), eps > 0, "
                          "weight decay >= 0, warmup >= 0, min lr ratio in [0, 1])");
    if (c->stop_at_step < 0 || (c->stop_at_step > 0 && c->no_checkpoint))
        return badam_fail(err, BADAM_E_INVALID,
                          "--stop-at-step needs a step >= 1 and checkpoints (it stops with one, "
                          "for --resume)");
    if (!(c->max_seconds >= 0) || isinf(c->max_seconds))
        return badam_fail(err, BADAM_E_INVALID, "--max-seconds %g: need a time >= 0 seconds",
                          c->max_seconds);
    if (c->start_block < -1)
        return badam_fail(err, BADAM_E_INVALID, "--start-block %d: blocks count from 0",
                          c->start_block);
    int ranks = badam_comm_size(c->comm);
    if (c->batch_size % ranks)
        return badam_fail(err, BADAM_E_INVALID,
                          "--batch-size %d is not divisible by the %d ranks (it counts the "
                          "sequences of a micro-batch summed over ranks)",
                          c->batch_size, ranks);
    return BADAM_OK;
}

/* The chosen method and what it refuses. */
static badam_status check_method(trainer *t, badam_error *err) {
    const train_config *c = t->cfg;
    badam_status st = train_method_select(c, &t->ops, err);
    if (st) return st;
    train_method_options(c, &t->mo);
    if (t->ops->check && (st = t->ops->check(&t->mo, err))) return st;
    if (c->shard_weights && (st = shard_check_method(t->ops->name, err))) return st;
    if (c->shard_weights && (c->task || (c->device && strcmp(c->device, "cpu"))))
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "--shard-weights runs decoder models on the CPU backend only (not with "
                          "--task or --device %s)",
                          c->device ? c->device : "cpu");
    if (t->ops->step && c->grad_accum != 1)
        return badam_fail(err, BADAM_E_INVALID,
                          "--method %s runs its own step on one batch and cannot "
                          "accumulate gradients (use --grad-accum 1)",
                          t->ops->name);
    if (!t->ops->data_parallel && badam_comm_size(c->comm) > 1)
        return badam_fail(err, BADAM_E_UNSUPPORTED,
                          "--method %s does not run data parallel yet (%d ranks); run it "
                          "in one process",
                          t->ops->name, badam_comm_size(c->comm));
    return BADAM_OK;
}

/* The model calls this inside backward for each finished gradient (methods with grad_ready). */
static void grad_ready(void *ctx, int idx) {
    trainer *t = ctx;
    if (t->ops->grad_ready) t->ops->grad_ready(&t->ms, idx, &t->micro);
    if (grad_buckets_armed(t->buckets)) grad_buckets_ready(t->buckets, idx);
}

/* Data parallel without sharded weights, for the methods whose update starts with
 * method_reduce_trainable_grads and that take no gradient inside backward: their trainable
 * gradients are all-reduced in buckets overlapping backward (train/grad_buckets.h). */
static badam_status make_buckets(trainer *t, badam_error *err) {
    static const char *const names[] = {"badam", "adam", "lora", "sgd-bcd"};
    if (badam_comm_size(t->cfg->comm) <= 1 || t->shard || t->ops->grad_ready) return BADAM_OK;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(t->ops->name, names[i]))
            return grad_buckets_create(t->cfg->comm, &t->buckets, err);
    return BADAM_OK;
}

/* Arms the buckets for the last micro-batch of a step when every rank has rows in it (each rank
 * must announce the same gradients in the same order). */
static badam_status arm_buckets(trainer *t, int rows, badam_error *err) {
    double with_rows = rows > 0;
    badam_status st = badam_comm_all_reduce_f64(t->cfg->comm, &with_rows, 1, err);
    if (!st && with_rows == badam_comm_size(t->cfg->comm)) grad_buckets_arm(t->buckets, &t->ms.ts);
    return st;
}

/* The gradient plan for the tensors the method now trains (none: a method without gradients). */
static void make_plan(trainer *t) {
    if (!t->ms.need_grad) return;
    t->arch->plan_for_flags(t->m, t->ms.need_grad, t->ms.train_adapters, &t->plan);
    t->plan.recompute = t->cfg->recompute;
    if (t->ops->grad_ready || t->buckets) {
        t->plan.grad_ready = grad_ready;
        t->plan.grad_ready_ctx = t;
    }
}

/* Mean validation loss over the whole validation set (no gradients, dropout off). Data
 * parallel: each rank takes its rows of each batch and the sums are added over ranks. */
static badam_status validate(trainer *t, double *loss, long *tokens, badam_error *err) {
    *loss = NAN, *tokens = 0;
    if (!t->val || !t->val->n) return BADAM_OK;
    const badam_comm *comm = t->cfg->comm;
    batcher_options bo = {t->cfg->batch_size,    t->cfg->seq_len,      0, 0, 0, 0,
                          badam_comm_rank(comm), badam_comm_size(comm)};
    batcher *vb = NULL;
    badam_status st = batcher_create(t->val, &bo, &vb, err);
    if (st) return st;
    if (t->ops->train_mode) t->ops->train_mode(&t->ms, 0, 0);
    double sum = 0;
    size_t n_batches = batcher_batches_per_epoch(vb);
    for (size_t i = 0; i < n_batches && !st; i++) {
        data_batch db;
        batcher_next(vb, &db);
        llama_batch lb;
        model_batch_from_data(&db, &lb);
        if (t->mlm) train_mlm_batch(t->mlm, &db, &lb);
        double s = 0;
        int n = 0;
        if (lb.B) st = t->arch->forward(t->m, t->ws, &lb, NULL, 1.0f, NULL, &s, &n, err);
        sum += s, *tokens += n;
    }
    batcher_free(vb);
    if (!st && badam_comm_size(comm) > 1) {
        double sums[2] = {sum, (double)*tokens};
        st = badam_comm_all_reduce_f64(comm, sums, 2, err);
        sum = sums[0], *tokens = (long)sums[1];
    }
    if (*tokens) *loss = sum / (double)*tokens;
    return st;
}

static badam_status save_checkpoint_here(void *self, badam_error *err) {
    trainer *t = self;
    if (!t->rank0) return BADAM_OK;
    badam_status st = train_device_sync_weights(t->be, err); /* resident weights (cuda) */
    if (st) return st;
    checkpoint_state s = {t->step, t->ms.ts.adam_step, t->ms.block, data_state(t), t->record};
    return checkpoint_save(t->cfg->out_dir, t->cfg->model_dir, t->m, &t->ms, &s,
                           t->cfg->max_shard_bytes, t->has_meta ? &t->meta : NULL, err);
}

/* Sharded weights: rank 0 writes, streaming one layer at a time that every rank gathers. */
static badam_status save_checkpoint(trainer *t, badam_error *err) {
    if (t->shard) return shard_runtime_save(t->shard, save_checkpoint_here, t, err);
    return save_checkpoint_here(t, err);
}

/* The run record of this run (run_record.h), built when checkpoints are written or read. */
static badam_status make_record(trainer *t, badam_error *err) {
    run_facts f = {t->cfg, t->m, t->ops, t->ms.part, t->ms.K, t->ms.clip, "", "", ""};
    badam_status st = run_facts_hash_files(&f, err);
    if (st) return st;
    t->record = run_record_build(&f);
    return t->record ? BADAM_OK : badam_fail(err, BADAM_E_NOMEM, "run record: out of memory");
}

/* Restores step, data position and the method's state from OUT/checkpoint (the weights were
 * loaded from it already; the run record was checked). */
static badam_status restore(trainer *t, const char *dir, const checkpoint_state *s,
                            badam_error *err) {
    t->step = s->step;
    badam_status st = set_data_state(t, s->data, err);
    if (st) return st;
    method_resume r = {s->block, s->adam_step, t->cfg->model_dir};
    return t->ops->load_parts ? t->ops->load_parts(&t->ms, dir, &r, err) : BADAM_OK;
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
    json_object_set_new(j, "method", json_string(t->ops->name));
    char path[PATH_BYTES];
    io_path_join(path, sizeof path, t->cfg->out_dir, "memory.json");
    badam_status st = io_json_write_file(path, j, 2, err);
    json_decref(j);
    return st;
}

static void free_trainer(trainer *t) {
    train_device_drop_weights(t->be); /* before the model's storage goes */
    json_decref(t->record);
    free(t->chat_template);
    metrics_close(&t->metrics);
    if (t->ms.ops) method_free(&t->ms);
    if (t->ws) t->arch->workspace_free(t->ws);
    batcher_free(t->batches);
    encoder_data_free(t->enc);
    data_free(t->train);
    data_free(t->val);
    tokenizer_free(t->tok);
    llama_model_free(t->m);
    shard_runtime_free(t->shard); /* after the model: its parameters pointed into it */
    train_mlm_free(t->mlm);
    grad_buckets_free(t->buckets);
}

/* OUT/: the method's own files (LoRA: adapter/, then the merge), then the model (rank 0). */
static badam_status save_final_here(void *self, badam_error *err) {
    trainer *t = self;
    const train_config *c = t->cfg;
    if (!t->rank0) return BADAM_OK;
    badam_status st = train_device_sync_weights(t->be, err); /* resident weights (cuda) */
    if (st) return st;
    if (t->ops->save_final && (st = t->ops->save_final(&t->ms, c->out_dir, c->model_dir, err)))
        return st;
    if (t->enc) return t->arch->save(t->m, c->model_dir, c->out_dir, c->max_shard_bytes, err);
    return llama_model_save_meta(t->m, c->model_dir, c->out_dir, c->max_shard_bytes,
                                 t->has_meta ? &t->meta : NULL, err);
}

/* Sums n values over the ranks (loss sums and token counts). */
static badam_status sum_over_ranks(trainer *t, double *x, size_t n, badam_error *err) {
    return badam_comm_all_reduce_f64(t->cfg->comm, x, n, err);
}

/* grad_accum micro-batches of forward and backward; gradients accumulate in the method's
 * buffers (or go to its grad_ready inside backward). */
static badam_status accumulate(trainer *t, float lr, step_metrics *sm, step_totals *tot,
                               badam_error *err) {
    const train_config *c = t->cfg;
    for (int a = 0; a < c->grad_accum; a++) {
        data_batch db;
        llama_batch lb;
        next_batch(t, 1, (uint64_t)t->step * c->grad_accum + a, &db, &lb);
        if (t->ops->train_mode)
            t->ops->train_mode(&t->ms, 1, (uint64_t)t->step * c->grad_accum + a);
        badam_status st = BADAM_OK;
        if (t->ops->grad_ready) { /* the update inside backward scales by the global count */
            double targets = db.n_targets;
            if ((st = sum_over_ranks(t, &targets, 1, err))) return st;
            long n_targets = (long)targets;
            t->micro = (method_micro_ctx){lr, n_targets ? 1.0f / n_targets : 0.0f, c->comm};
        }
        if (t->buckets && a == c->grad_accum - 1 && (st = arm_buckets(t, lb.B, err))) return st;
        if (!lb.B) continue; /* data parallel: no row of this global batch is this rank's */
        double f0 = now_s(), s = 0;
        int n = 0;
        st = t->arch->forward(t->m, t->ws, &lb, &t->plan, 1.0f, t->ms.grads, &s, &n, err);
        double f1 = now_s();
        if (!st && !isfinite(s))
            st = badam_fail(err, BADAM_E_NUMERIC,
                            "step %d: the loss is not finite (%g); lower --lr or check the data",
                            t->step + 1, s);
        if (!st) st = t->arch->backward(t->m, t->ws, &lb, &t->plan, t->ms.grads, err);
        sm->forward_s += f1 - f0, sm->backward_s += now_s() - f1;
        if (st) return st;
        tot->loss_sum += s, tot->tokens += n, tot->batch_tokens += (long)db.B * db.T;
    }
    return BADAM_OK;
}

/* A step with gradients: the micro-batches, the sums over ranks, the method's update. */
static badam_status gradient_step(trainer *t, float lr, step_metrics *sm, step_totals *tot,
                                  badam_error *err) {
    if (t->ops->zero_grads) t->ops->zero_grads(&t->ms);
    badam_status st = accumulate(t, lr, sm, tot, err);
    int reduced = !st && grad_buckets_armed(t->buckets);
    if (reduced) st = grad_buckets_finish(t->buckets, err);
    double sums[3] = {tot->loss_sum, (double)tot->tokens, (double)tot->batch_tokens};
    if (!st) st = sum_over_ranks(t, sums, badam_comm_size(t->cfg->comm) > 1 ? 3 : 2, err);
    if (st) return st;
    tot->loss_sum = sums[0], tot->tokens = (long)sums[1], tot->batch_tokens = (long)sums[2];
    double u0 = now_s();
    method_update_ctx u = {t->step, lr, tot->tokens, t->cfg->comm, reduced};
    st = t->ops->update(&t->ms, &u, &tot->norm, err);
    sm->update_s = now_s() - u0;
    return st;
}

/* method_step_ctx.forward_loss: the loss of the step's batch, no gradients, no dropout; the
 * seconds its forward passes took (the step's forward time, not its update time). */
typedef struct forward_ctx {
    trainer *t;
    const llama_batch *batch;
    double seconds;
} forward_ctx;

static badam_status forward_loss(void *self, double *loss_sum, long *tokens, badam_error *err) {
    forward_ctx *f = self;
    trainer *t = f->t;
    if (t->ops->train_mode) t->ops->train_mode(&t->ms, 0, 0);
    double s = 0, f0 = now_s();
    int n = 0;
    badam_status st = t->arch->forward(t->m, t->ws, f->batch, NULL, 1.0f, NULL, &s, &n, err);
    f->seconds += now_s() - f0;
    double sums[2] = {s, (double)n};
    if (!st) st = sum_over_ranks(t, sums, 2, err);
    *loss_sum = sums[0], *tokens = (long)sums[1];
    return st;
}

/* A method that runs its own step (forward-only): one batch, its loss function, the method. */
static badam_status own_step(trainer *t, float lr, step_metrics *sm, step_totals *tot,
                             badam_error *err) {
    data_batch db;
    llama_batch lb;
    next_batch(t, 0, 0, &db, &lb);
    forward_ctx f = {t, &lb, 0};
    method_step_ctx c = {t->step, lr, &lb, t->cfg->comm, forward_loss, &f, t->ws};
    method_step_result res = {0, 0, NAN};
    double u0 = now_s();
    badam_status st = t->ops->step(&t->ms, &c, &res, err);
    sm->forward_s = f.seconds; /* the forward passes; the rest of the step is the update */
    sm->update_s = now_s() - u0 - f.seconds;
    if (!st && !isfinite(res.loss_sum))
        st = badam_fail(err, BADAM_E_NUMERIC,
                        "step %d: the loss is not finite (%g); lower --lr or check the data",
                        t->step + 1, res.loss_sum);
    tot->loss_sum = res.loss_sum, tot->tokens = res.tokens, tot->norm = res.grad_norm;
    tot->batch_tokens = (long)db.B * db.T;
    return st;
}

/* One optimizer step: the method's step start (a block switch remakes the plan), then a
 * gradient step or the method's own, then the step's metrics. */
static badam_status train_step(trainer *t, step_metrics *sm, badam_error *err) {
    double t0 = now_s();
    uint64_t allocs0 = badam_alloc_count();
    sm->switch_s = 0;
    if (t->ops->on_step_begin && t->ops->on_step_begin(&t->ms, t->step)) {
        if (t->shard) { /* the new block's layer whole, then its masters built again from it */
            badam_status st = shard_runtime_switch(t->shard, t->ms.need_grad, err);
            if (st) return st;
            t->ops->on_step_begin(&t->ms, t->step);
        }
        make_plan(t);
        sm->switch_s = now_s() - t0;
    }
    float lr = lr_at(&t->sched, t->step);
    step_totals tot = {0, 0, 0, 0};
    sm->forward_s = sm->backward_s = 0;
    badam_status st =
        t->ops->step ? own_step(t, lr, sm, &tot, err) : gradient_step(t, lr, sm, &tot, err);
    if (st) return st;
    t->step++;
    sm->step = t->step;
    sm->loss = tot.tokens ? tot.loss_sum / tot.tokens : 0;
    sm->lr = lr, sm->grad_norm = tot.norm;
    sm->block = t->ms.block;
    sm->block_name = t->ms.part && t->ms.block >= 0 ? t->ms.part->block_name[t->ms.block] : NULL;
    sm->tokens = tot.tokens, sm->batch_tokens = tot.batch_tokens;
    sm->step_s = now_s() - t0;
    sm->tokens_per_s = tot.batch_tokens / (sm->step_s > 0 ? sm->step_s : 1e-9);
    sm->allocs = badam_alloc_count() - allocs0;
    return BADAM_OK;
}

/* The run's summary, through the caller's logger (train_config.log). */
static void print_plan(const trainer *t, const memory_plan *p) {
    const train_config *c = t->cfg;
    const badam_logger *lg = &c->log;
    badam_logf(lg, BADAM_LOG_INFO,
               "badam train: %s on %s, %zu parameters (%zu trainable at a time)", t->ops->name,
               c->model_dir, p->params, p->trainable);
    if (t->ops->describe) t->ops->describe(&t->ms, lg);
    if (c->shard_weights)
        badam_logf(lg, BADAM_LOG_INFO, "  %s",
                   t->shard ? "weights: each rank keeps 1/N of every layer (--shard-weights)"
                            : "weights whole: --shard-weights on one rank has nothing to shard");
    char line[512];
    size_t used = (size_t)snprintf(line, sizeof line, "  memory plan:");
    for (int cat = 1; cat < BADAM_MEM_CATEGORY_COUNT && used < sizeof line; cat++)
        used += (size_t)snprintf(line + used, sizeof line - used, " %s %.1f MiB%s",
                                 badam_mem_category_name(cat), p->bytes[cat] / 1048576.0,
                                 cat + 1 < BADAM_MEM_CATEGORY_COUNT ? "," : "");
    badam_logf(lg, BADAM_LOG_INFO, "%s", line);
    if (t->enc) encoder_data_describe(t->enc, lg);
    if (!t->enc) data_stats_describe(&t->data_stats, line, sizeof line);
    if (!t->enc) badam_logf(lg, BADAM_LOG_INFO, "  data: %s", line);
    if (c->val_path && !t->enc) {
        data_stats_describe(&t->val_stats, line, sizeof line);
        badam_logf(lg, BADAM_LOG_INFO, "  validation data: %s", line);
    }
    badam_logf(lg, BADAM_LOG_INFO, "  %zu training examples, %d steps", n_examples(t),
               t->max_steps);
}

/* Data parallel: a rank may get no sequence of an epoch's short last batch. A gradient step
 * then adds nothing on that rank; a method that communicates inside backward or runs its own
 * step needs rows on every rank, so that case is refused before the run starts. */
static badam_status check_shards(trainer *t, badam_error *err) {
    int ranks = badam_comm_size(t->cfg->comm);
    size_t smallest = smallest_batch(t);
    if (ranks <= 1 || smallest >= (size_t)ranks || (!t->ops->grad_ready && !t->ops->step))
        return BADAM_OK;
    return badam_fail(err, BADAM_E_INVALID,
                      "--method %s on %d ranks: the last batch of an epoch has %zu sequences, "
                      "so a rank would get none; change the number of examples or --batch-size",
                      t->ops->name, ranks, smallest);
}

/* The checkpoint to resume from (c->resume), the data, the model and the method's structure. */
static badam_status open_run(trainer *t, char *ckpt, size_t size, checkpoint_state *cs,
                             badam_error *err) {
    const train_config *c = t->cfg;
    badam_status st = io_make_dir(c->out_dir, err);
    if (st) return st;
    if (c->resume && ((st = checkpoint_find(c->out_dir, ckpt, size, err)) ||
                      (st = checkpoint_read_state(ckpt, cs, err))))
        return st;
    if (!st) st = load_data(t, err);
    if (!st) t->mo.n_examples = n_examples(t);
    /* BAdam on an encoder: the head is trained in every block (the paper's SuperGLUE setup) */
    if (!st && t->enc && !c->partition.always_active)
        t->mo.partition.always_active = t->enc->head_prefixes;
    if (!st) st = setup_model(t, c->resume ? ckpt : c->model_dir, err);
    /* masked-LM pretraining: the head is trained in every block, as the memory plan counts */
    if (!st && c->objective == TRAIN_OBJECTIVE_MLM && !c->partition.always_active &&
        t->m->cfg.encoder_head != LLAMA_HEAD_NONE)
        t->mo.partition.always_active =
            encoder_head_prefixes(&t->m->cfg, t->mlm_head, sizeof t->mlm_head);
    if (!st)
        st =
            train_mlm_open(c, t->tok, t->m, c->batch_size / badam_comm_size(c->comm), &t->mlm, err);
    if (!st) st = make_folder_meta(t, err);
    if (!st) st = method_create(&t->ms, t->ops, t->m, t->be, &t->mo, err);
    return st;
}

/* The run's length and schedule, and (with checkpoints) its record; a resumed run must be the
 * run that wrote the checkpoint: every option that shapes the trajectory is compared before
 * anything is allocated for training. */
static badam_status settle_run(trainer *t, const char *ckpt, checkpoint_state *cs,
                               badam_error *err) {
    const train_config *c = t->cfg;
    size_t per_epoch = batches_per_epoch(t);
    t->max_steps =
        c->max_steps
            ? c->max_steps
            : (int)((per_epoch * (size_t)c->epochs + c->grad_accum - 1) / (size_t)c->grad_accum);
    int warmup =
        c->warmup_ratio > 0 ? (int)ceil((double)c->warmup_ratio * t->max_steps) : c->warmup;
    t->sched = (lr_schedule){c->schedule, c->lr, warmup, t->max_steps, c->min_lr_ratio};
    badam_status st = BADAM_OK;
    int ranks = badam_comm_size(c->comm);
    if (c->resume || !c->no_checkpoint || ranks > 1) st = make_record(t, err);
    /* data parallel: the same binary, options and data everywhere, then rank 0's weights */
    if (!st && ranks > 1) st = rank_check_agree(c->comm, t->record, t->m->storage_bytes, err);
    if (!st) st = broadcast_weights(t, err);
    if (!st) st = check_shards(t, err);
    if (!st && c->resume) st = run_record_check(cs->run, t->record, ckpt, err);
    json_decref(cs->run);
    cs->run = NULL;
    /* Nothing to resume, or a pause point already passed: say so rather than rewrite the run's
     * records with an empty one. */
    if (!st && c->resume && cs->step >= t->max_steps)
        st = badam_fail(err, BADAM_E_INVALID,
                        "%s: the run is complete (step %d of %d); its model is in %s", ckpt,
                        cs->step, t->max_steps, c->out_dir);
    if (!st && c->resume && c->stop_at_step > 0 && c->stop_at_step <= cs->step)
        st = badam_fail(err, BADAM_E_INVALID,
                        "--stop-at-step %d is not after the checkpoint's step %d (%s)",
                        c->stop_at_step, cs->step, ckpt);
    return st;
}

/* The memory plan, the method's state and the workspace; a resumed run's state back. A rank of
 * N holds at most batch_size / N rows of a batch (check_config: N divides it). */
static badam_status allocate_run(trainer *t, train_report *r, const char *ckpt,
                                 const checkpoint_state *cs, badam_error *err) {
    const train_config *c = t->cfg;
    int ranks = badam_comm_size(c->comm);
    int rows = t->enc ? task_batcher_max_rows(t->enc->batches) : c->batch_size / ranks;
    int shard = c->shard_weights && ranks > 1;
    badam_status st =
        shard ? memory_plan_predict_ranks(&t->m->cfg, c, ranks, 1, &r->predicted, err)
              : memory_plan_predict(&t->m->cfg, c, rows, c->seq_len, &r->predicted, err);
    if (!st) st = t->ops->allocate(&t->ms, err);
    if (!st)
        st = !strcmp(t->arch->family, "llama")
                 ? llama_workspace_create_on(t->m, rows, c->seq_len, t->be, &t->ws, err)
                 : t->arch->workspace_create(t->m, rows, c->seq_len, &t->ws, err);
    if (!st && c->resume) st = restore(t, ckpt, cs, err);
    if (!st && shard) { /* every rank holds rank 0's whole model: keep the shards only */
        st = shard_runtime_create(t->m, t->ws, c->comm, &t->ms.ts, &t->shard, err);
        badam_mem_reset_peaks(); /* the load is not sharded: peaks count from here */
    }
    if (!st && !t->enc)
        st = train_device_keep_weights(t->be, t->m->storage, t->m->storage_bytes, err);
    if (!st) st = make_buckets(t, err);
    if (!st && t->rank0) st = metrics_open(&t->metrics, c->out_dir, c->resume ? t->step : -1, err);
    return st;
}

/* Steps until the end or the pause point, with metrics, validation and checkpoints. */
static badam_status run_steps(trainer *t, train_report *r, int stop_at, double start,
                              badam_error *err) {
    const train_config *c = t->cfg;
    badam_status st = BADAM_OK;
    double first = now_s(); /* the time limit counts from the first step */
    while (!st && t->step < t->max_steps && t->step != stop_at) {
        step_metrics sm;
        memset(&sm, 0, sizeof sm);
        sm.max_steps = t->max_steps;
        st = train_step(t, &sm, err);
        if (st) break;
        double now = now_s();
        sm.elapsed_s = now - start;
        double over = c->max_seconds > 0 && now - first >= c->max_seconds;
        /* data parallel: the ranks stop together (any rank's clock past the limit) */
        if (c->max_seconds > 0 && badam_comm_size(c->comm) > 1 &&
            (st = badam_comm_all_reduce_f64(c->comm, &over, 1, err)))
            break;
        if (over > 0 && t->step < t->max_steps) sm.stop = "max_seconds", r->time_limited = 1;
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
        if (c->eval_every > 0 && t->step % c->eval_every == 0 && t->step < t->max_steps &&
            !sm.stop) {
            long vt;
            if (t->enc)
                st = validate_task(t, &r->val_loss, err);
            else if (!(st = validate(t, &r->val_loss, &vt, err)))
                metrics_write_eval(&t->metrics, t->step, r->val_loss, vt);
        }
        if (!st && !c->no_checkpoint && c->save_every > 0 && t->step % c->save_every == 0 &&
            t->step < t->max_steps && !sm.stop)
            st = save_checkpoint(t, err);
        if (sm.stop) break; /* finish_run validates and saves as at the end */
    }
    if (c->progress) badam_logf(&c->log, BADAM_LOG_PROGRESS_END, "%s", "");
    return st;
}

/* The end of a run: validation, the last checkpoint, memory.json and OUT/ (rank 0 writes). */
static badam_status finish_run(trainer *t, train_report *r, double start, badam_error *err) {
    const train_config *c = t->cfg;
    long vt = 0;
    badam_status st =
        t->enc ? validate_task(t, &r->val_loss, err) : validate(t, &r->val_loss, &vt, err);
    if (!st && vt) metrics_write_eval(&t->metrics, t->step, r->val_loss, vt);
    if (!st && !c->no_checkpoint) st = save_checkpoint(t, err);
    r->steps = t->step;
    r->seconds = now_s() - start;
    r->peak_rss = badam_peak_rss();
    for (int cat = 0; cat < BADAM_MEM_CATEGORY_COUNT; cat++) r->measured[cat] = badam_mem_peak(cat);
    if (!st && t->rank0) st = write_memory_json(t, r, err);
    if (!st && !c->no_save)
        st = t->shard ? shard_runtime_save(t->shard, save_final_here, t, err)
                      : save_final_here(t, err);
    return st;
}

badam_status train_run_on_backend(const train_config *c, backend *be, train_report *r,
                                  badam_error *err) {
    memset(r, 0, sizeof *r);
    r->val_loss = NAN;
    trainer tr, *t = &tr;
    memset(t, 0, sizeof *t);
    t->cfg = c;
    t->be = be;
    t->rank0 = badam_comm_rank(c->comm) == 0;
    badam_status st = check_config(c, err);
    if (!st) st = check_method(t, err);
    if (st) return st;
    double start = now_s();
    badam_mem_reset_peaks(); /* the report's measured peaks are this run's */

    char ckpt[PATH_BYTES] = "";
    checkpoint_state cs = {0};
    st = open_run(t, ckpt, sizeof ckpt, &cs, err);
    if (!st) st = settle_run(t, ckpt, &cs, err);
    json_decref(cs.run);
    if (!st) st = allocate_run(t, r, ckpt, &cs, err);
    if (st) {
        free_trainer(t);
        return st;
    }
    print_plan(t, &r->predicted);
    make_plan(t); /* a block-wise method remakes it at each switch */

    int stop_at = c->stop_at_step > 0 && c->stop_at_step < t->max_steps ? c->stop_at_step : -1;
    st = run_steps(t, r, stop_at, start, err);
    if (!st && t->step == stop_at) { /* a pause: the checkpoint is the result, --resume goes on */
        st = save_checkpoint(t, err);
        r->steps = t->step;
        r->stopped = 1;
        r->seconds = now_s() - start;
        r->peak_rss = badam_peak_rss();
    } else if (!st) {
        st = finish_run(t, r, start, err);
    }
    free_trainer(t);
    return st;
}

badam_status train_run(const train_config *c, train_report *r, badam_error *err) {
    backend *be = NULL;
    int cuda = c->device && !strcmp(c->device, "cuda");
    badam_status st = cuda ? train_device_refuse(c, err) : BADAM_OK;
    if (!st) st = badam_device_check(c->device, err);
    if (!st) st = cuda ? train_device_create(c, &be, err) : backend_cpu_create(&be, err);
    if (st) {
        memset(r, 0, sizeof *r);
        r->val_loss = NAN;
        return st;
    }
    st = train_run_on_backend(c, be, r, err);
    if (cuda && !st) st = backend_cuda_status(be, err); /* an op's error (cuda_backend.h) */
    if (cuda && !st) train_log_device_memory(c, be, r);
    backend_destroy(be);
    return st;
}
