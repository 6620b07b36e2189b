/* The model interface: parameter tags alone drive partitions and LoRA targets (a table with the
 * Llama tags but other names and no Llama kinds partitions the same way, with names derived from
 * its own), the Llama partition names are the established ones, the architecture table finds
 * the family by model_type, and the batch built from a data batch carries its fields while the
 * Llama family refuses encoder batches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "badam/model.h"
#include "badam/optim.h"
#include "model_fixtures.h"

enum { C = 16, I = 24, L = 3, HQ = 2, HKV = 1, V = 31 };

/* An encoder-style name for a Llama parameter: the same tags under other names. */
static void rename_param(const llama_param *p, char *out, size_t size) {
    static const char *const SUFFIX[LLAMA_P_KIND_COUNT] = {
        [LLAMA_P_ATTN_NORM] = "attn_ln.gamma",
        [LLAMA_P_Q] = "attn.wq.w",
        [LLAMA_P_K] = "attn.wk.w",
        [LLAMA_P_V] = "attn.wv.w",
        [LLAMA_P_O] = "attn.wo.w",
        [LLAMA_P_Q_BIAS] = "attn.wq.b",
        [LLAMA_P_K_BIAS] = "attn.wk.b",
        [LLAMA_P_V_BIAS] = "attn.wv.b",
        [LLAMA_P_O_BIAS] = "attn.wo.b",
        [LLAMA_P_MLP_NORM] = "ffn_ln.gamma",
        [LLAMA_P_GATE] = "ffn.w_gate.w",
        [LLAMA_P_UP] = "ffn.w_in.w",
        [LLAMA_P_DOWN] = "ffn.w_out.w",
    };
    if (p->layer >= 0)
        snprintf(out, size, "enc.block.%d.%s", p->layer, SUFFIX[p->kind]);
    else if (p->kind == LLAMA_P_EMBED)
        snprintf(out, size, "enc.tok_emb.table");
    else if (p->kind == LLAMA_P_FINAL_NORM)
        snprintf(out, size, "enc.out_ln.gamma");
    else
        snprintf(out, size, "cls.proj.w");
}

/* A model container holding only a copy of m's parameter table, renamed, with every kind
 * invalidated and no config, no indices: what partitions and LoRA selection may read. */
static llama_model *fake_of(const llama_model *m) {
    llama_model *f = calloc(1, sizeof *f);
    f->params = calloc((size_t)m->n_params, sizeof *f->params);
    f->n_params = m->n_params;
    f->embed = f->final_norm = f->lm_head = -1;
    for (int i = 0; i < m->n_params; i++) {
        f->params[i] = m->params[i];
        rename_param(&m->params[i], f->params[i].name, sizeof f->params[i].name);
        f->params[i].kind = LLAMA_P_KIND_COUNT;
    }
    return f;
}

static void fake_free(llama_model *f) {
    free(f->params);
    free(f);
}

static int find_block(const block_partition *p, const char *name) {
    for (int b = 0; b < p->n_blocks; b++)
        if (!strcmp(p->block_name[b], name)) return b;
    return -1;
}

/* The Llama names of the established partitions (docs, run records and checkpoints use them). */
static void check_llama_names(const llama_model *m, partition_kind kind, const block_partition *p,
                              int tied) {
    if (kind == PARTITION_LAYER) {
        CHECK(p->n_blocks == L + 2);
        CHECK(!strcmp(p->block_name[0], "model.embed_tokens."));
        CHECK(!strcmp(p->block_name[1], "model.layers.0."));
        CHECK(!strcmp(p->block_name[L], "model.layers.2."));
        CHECK(!strcmp(p->block_name[L + 1], tied ? "model.norm." : "lm_head.,model.norm."));
    } else if (kind == PARTITION_MODULE) {
        CHECK(p->n_blocks == 2 * L + 2);
        CHECK(!strcmp(p->block_name[1], "model.layers.0.self_attn+input_layernorm"));
        CHECK(!strcmp(p->block_name[2], "model.layers.0.mlp+post_attention_layernorm"));
        CHECK(!strcmp(p->block_name[6], "model.layers.2.mlp+post_attention_layernorm"));
    } else {
        CHECK(p->n_blocks == 7 * L + 2);
        int q = find_block(p, "model.layers.1.self_attn.q_proj.");
        int g = find_block(p, "model.layers.1.mlp.gate_proj.");
        int o = find_block(p, "model.layers.1.self_attn.o_proj.");
        CHECK(q == 8 && g == 12 && o == 11);
        /* the attention norm and q's bias join q_proj; the MLP norm joins gate_proj */
        CHECK(p->block_of[llama_param_index(m, 1, LLAMA_P_ATTN_NORM)] == q);
        CHECK(p->block_of[llama_param_index(m, 1, LLAMA_P_Q_BIAS)] == q);
        CHECK(p->block_of[llama_param_index(m, 1, LLAMA_P_O_BIAS)] == o);
        CHECK(p->block_of[llama_param_index(m, 1, LLAMA_P_MLP_NORM)] == g);
    }
}

/* The fake table's names follow its own parameter names by the same rules. */
static void check_fake_names(partition_kind kind, const block_partition *p, int tied) {
    CHECK(!strcmp(p->block_name[0], "enc.tok_emb."));
    CHECK(!strcmp(p->block_name[p->n_blocks - 1], tied ? "enc.out_ln." : "cls.proj.,enc.out_ln."));
    if (kind == PARTITION_LAYER) CHECK(!strcmp(p->block_name[1], "enc.block.0."));
    if (kind == PARTITION_MODULE) {
        CHECK(!strcmp(p->block_name[1], "enc.block.0.attn+attn_ln"));
        CHECK(!strcmp(p->block_name[2], "enc.block.0.ffn+ffn_ln"));
    }
    if (kind == PARTITION_MATRIX) CHECK(!strcmp(p->block_name[1], "enc.block.0.attn.wq."));
}

static void test_tags_drive_partitions(void) {
    for (int tied = 0; tied < 2; tied++) {
        badam_error err = {0};
        llama_config cfg = fixture_config(C, I, L, HQ, HKV, V, tied, 1, 1);
        llama_model *m = NULL;
        CHECK_OK(llama_model_describe(&cfg, BADAM_DTYPE_F32, &m, &err), &err);
        llama_model *f = fake_of(m);
        for (int kind = PARTITION_LAYER; kind <= PARTITION_MATRIX; kind++) {
            partition_options o = {0};
            o.kind = (partition_kind)kind;
            o.include_embedding = o.include_head = 1;
            block_partition pl, pf;
            CHECK_OK(partition_build(m, &o, &pl, &err), &err);
            CHECK_OK(partition_build(f, &o, &pf, &err), &err);
            check_llama_names(m, o.kind, &pl, tied);
            check_fake_names(o.kind, &pf, tied);
            CHECK(pl.n_blocks == pf.n_blocks);
            for (int i = 0; i < m->n_params; i++) CHECK(pl.block_of[i] == pf.block_of[i]);
            for (int b = 0; b < pl.n_blocks && b < pf.n_blocks; b++)
                CHECK(pl.block_numel[b] == pf.block_numel[b]);
            partition_free(&pl);
            partition_free(&pf);
        }
        fake_free(f);
        llama_model_free(m);
    }
}

static void test_tags_drive_lora(void) {
    badam_error err = {0};
    uint32_t t = 0, all = 0;
    CHECK_OK(llama_lora_parse_targets("q,v_proj,down", &t, &err), &err);
    CHECK(t == ((1u << MODEL_ROLE_Q) | (1u << MODEL_ROLE_V) | (1u << MODEL_ROLE_DOWN)));
    CHECK_OK(llama_lora_parse_targets("all", &all, &err), &err);
    for (int r = 0; r < MODEL_ROLE_COUNT; r++)
        CHECK(!!(all & (1u << r)) == model_role_is_projection(r));
    CHECK(llama_lora_parse_targets("q,norm", &t, &err) == BADAM_E_INVALID);
    CHECK(strstr(err.message, "'norm'") != NULL);

    llama_config cfg = fixture_config(C, I, L, HQ, HKV, V, 0, 1, 1);
    llama_model *m = NULL;
    CHECK_OK(llama_model_create(&cfg, BADAM_DTYPE_F32, &m, &err), &err);
    uint32_t targets = (1u << MODEL_ROLE_K) | (1u << MODEL_ROLE_O) | (1u << MODEL_ROLE_UP);
    CHECK_OK(llama_lora_attach(m, 2, 4.0f, 0.0f, targets, 3, &err), &err);
    int adapters = 0;
    for (int i = 0; i < m->n_params; i++) {
        const llama_param *p = &m->params[i];
        int want =
            p->layer >= 0 && p->ndim == 2 && !p->tag.bias && (targets & (1u << p->tag.role)) != 0;
        int slot = p->layer * MODEL_ROLE_COUNT + p->tag.role;
        int has = p->layer >= 0 && !p->tag.bias && m->lora->A[slot] != NULL;
        CHECKF(want == has, "'%s': adapter %d, expected %d", p->name, has, want);
        adapters += want;
        if (want) {
            char module[128];
            llama_lora_module_name(m, p->layer, p->kind, module, sizeof module);
            CHECK(!strncmp(p->name, module, strlen(module)) &&
                  !strcmp(p->name + strlen(module), ".weight"));
        }
    }
    CHECK(adapters == 3 * L && m->lora->n_adapters == adapters);
    llama_model_free(m);
}

static void test_arch_table(void) {
    const char *types[] = {"llama", "mistral", "qwen2"};
    for (int i = 0; i < 3; i++) {
        const model_arch *a = model_arch_find(types[i]);
        CHECK(a && !strcmp(a->family, "llama") && a->forward == llama_forward &&
              a->decode == llama_decode && a->describe == llama_model_describe);
        CHECK(a && a->target_kinds == (1u << MODEL_TARGETS_TOKEN));
    }
    CHECK(model_arch_find("gpt2") == NULL && model_arch_find(NULL) == NULL);
    const model_arch *enc = model_arch_find("bert");
    CHECK(enc && enc == model_arch_find("roberta") && !strcmp(enc->family, "bert") &&
          enc->decode == NULL &&
          enc->target_kinds == (1u << MODEL_TARGETS_SEQUENCE | 1u << MODEL_TARGETS_CHOICE |
                                1u << MODEL_TARGETS_MASKED));
    int n = 0;
    const model_arch *const *all = model_arch_all(&n);
    CHECK(n >= 1 && all[0] == model_arch_find("llama"));

    char dir[] = "/tmp/badam_arch_XXXXXX", path[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/config.json", dir);
    const char *gpt2 = "{\"model_type\": \"gpt2\"}";
    CHECK(test_write_raw(path, gpt2, strlen(gpt2)) == 0);
    const model_arch *a = NULL;
    badam_error err = {0};
    CHECK(model_arch_for_folder(dir, &a, &err) == BADAM_E_UNSUPPORTED && a == NULL);
    CHECK(strstr(err.message, "'gpt2'") &&
          strstr(err.message, "llama, mistral, qwen2, bert, roberta") &&
          strstr(err.message, "model_type"));
    const char *qwen = "{\"model_type\": \"qwen2\"}";
    CHECK(test_write_raw(path, qwen, strlen(qwen)) == 0);
    CHECK_OK(model_arch_for_folder(dir, &a, &err), &err);
    CHECK(a == model_arch_find("llama"));
    remove(path);
    rmdir(dir);
}

static void test_batch(void) {
    int32_t tok[6] = {1, 2, 3, 4, 5, 6}, tgt[6] = {2, 3, -100, 5, 6, -100};
    int32_t pos[6] = {0, 1, 2, 0, 1, 2}, seg[6] = {0};
    data_batch db = {2, 3, tok, tgt, pos, seg, 4, 0, NULL, NULL, 0};
    llama_batch b;
    memset(&b, 0x5a, sizeof b);
    model_batch_from_data(&db, &b);
    CHECK(b.B == 2 && b.T == 3 && b.tokens == tok && b.targets == tgt && b.positions == pos &&
          b.seg_start == seg);
    CHECK(b.token_types == NULL && b.pad_mask == NULL && b.target_kind == MODEL_TARGETS_TOKEN &&
          b.n_choices == 0);

    badam_error err = {0};
    llama_config cfg = fixture_config(C, I, L, HQ, HKV, V, 0, 0, 0);
    llama_model *m = NULL;
    llama_workspace *ws = NULL;
    CHECK_OK(llama_model_create(&cfg, BADAM_DTYPE_F32, &m, &err), &err);
    CHECK_OK(llama_workspace_create(m, 2, 3, &ws, &err), &err);
    double loss;
    int n;
    CHECK_OK(llama_forward(m, ws, &b, NULL, 1.0f, NULL, &loss, &n, &err), &err);
    CHECK(n == 4);
    llama_batch seq = b;
    int32_t cls[2] = {0, 1};
    seq.targets = cls, seq.target_kind = MODEL_TARGETS_SEQUENCE;
    CHECK(llama_forward(m, ws, &seq, NULL, 1.0f, NULL, &loss, &n, &err) == BADAM_E_UNSUPPORTED);
    CHECK(strstr(err.message, "target_kind per sequence") != NULL);
    seq.target_kind = MODEL_TARGETS_CHOICE, seq.n_choices = 2;
    CHECK(llama_forward(m, ws, &seq, NULL, 1.0f, NULL, &loss, &n, &err) == BADAM_E_UNSUPPORTED);
    CHECK(strstr(err.message, "per group of choices") != NULL);
    llama_batch typed = b;
    typed.token_types = pos;
    CHECK(llama_forward(m, ws, &typed, NULL, 1.0f, NULL, &loss, &n, &err) == BADAM_E_UNSUPPORTED);
    CHECK(strstr(err.message, "token_types") != NULL);
    uint8_t mask[6] = {1, 1, 1, 1, 1, 0};
    llama_batch masked = b;
    masked.pad_mask = mask;
    CHECK(llama_forward_logits(m, ws, &masked, NULL, &err) == BADAM_E_UNSUPPORTED);
    CHECK(strstr(err.message, "pad_mask") != NULL);
    llama_workspace_free(ws);
    llama_model_free(m);
}

int main(void) {
    RUN_TEST(test_tags_drive_partitions);
    RUN_TEST(test_tags_drive_lora);
    RUN_TEST(test_arch_table);
    RUN_TEST(test_batch);
    return test_result();
}
