/* Hugging Face folders: save/load round trips (fp32, bf16, sharded), companion files copied,
 * config.json parsing for llama / mistral / qwen2, and broken folders rejected with errors that
 * name the file and the field or tensor. */
#include <stdlib.h>
#include <string.h>

#include "io/files.h"
#include "io/json_write.h"
#include "io/safetensors.h"
#include "model_fixtures.h"

static void write_text(const char *dir, const char *name, const char *text) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static int same_weights(const llama_model *a, const llama_model *b) {
    if (a->n_params != b->n_params || a->dtype != b->dtype) return 0;
    for (int i = 0; i < a->n_params; i++)
        if (memcmp(a->params[i].data, b->params[i].data,
                   a->params[i].numel * badam_dtype_size(a->dtype)))
            return 0;
    return 1;
}

static llama_model *random_model(badam_dtype dtype, int tied) {
    badam_error err = {0};
    llama_config cfg = fixture_config(32, 40, 2, 4, 2, 37, tied, 1, 1);
    llama_model *m = NULL;
    if (llama_model_create(&cfg, dtype, &m, &err)) return NULL;
    test_rng rng;
    test_rng_seed(&rng, 11);
    fixture_randomize(m, &rng, 0.2f);
    return m;
}

static void test_round_trips(void) {
    badam_error err = {0};
    const badam_dtype dtypes[] = {BADAM_DTYPE_F32, BADAM_DTYPE_BF16};
    for (int d = 0; d < 2; d++)
        for (int sharded = 0; sharded <= 1; sharded++) {
            llama_model *m = random_model(dtypes[d], d), *back = NULL;
            char name[64];
            snprintf(name, sizeof name, "io-roundtrip-%d-%d", d, sharded);
            const char *dir = test_workdir(name);
            CHECK_OK(llama_model_save(m, NULL, dir, sharded ? 4096 : 0, &err), &err);
            char path[2048];
            snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
            CHECK(io_is_file(path) == sharded);
            CHECK_OK(llama_model_load(dir, dtypes[d], &back, &err), &err);
            CHECKF(same_weights(m, back), "round trip dtype %d sharded %d not bit-exact", d,
                   sharded);
            CHECK(back->cfg.tie_word_embeddings == m->cfg.tie_word_embeddings);
            CHECK(back->cfg.n_kv_heads == 2 && back->cfg.qkv_bias == 1 && back->cfg.o_bias == 1);
            llama_model_free(back);
            llama_model_free(m);
        }
}

static void test_save_copies_companions_and_dtype(void) {
    badam_error err = {0};
    llama_model *m = random_model(BADAM_DTYPE_F32, 0), *bf = NULL;
    char src[1024], out[1024], path[2048];
    snprintf(src, sizeof src, "%s", test_workdir("io-src"));
    snprintf(out, sizeof out, "%s", test_workdir("io-out"));
    CHECK_OK(llama_model_save(m, NULL, src, 0, &err), &err);
    write_text(src, "tokenizer.json", "{\"model\": {\"type\": \"BPE\"}}");
    write_text(src, "tokenizer_config.json", "{\"chat_template\": \"x\"}");
    write_text(src, "generation_config.json", "{\"do_sample\": false}");
    CHECK_OK(llama_model_load(src, BADAM_DTYPE_BF16, &bf, &err), &err);
    CHECK_OK(llama_model_save(bf, src, out, 0, &err), &err);
    const char *names[] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", out, names[i]);
        CHECKF(io_is_file(path), "%s not copied", names[i]);
    }
    snprintf(path, sizeof path, "%s/config.json", out);
    json_t *cfg = NULL;
    CHECK_OK(io_read_json(path, &cfg, &err), &err);
    const json_t *dt = json_object_get(cfg, "torch_dtype");
    CHECK(json_is_string(dt) && !strcmp(json_string_value(dt), "bfloat16"));
    json_decref(cfg);
    st_set *set = NULL;
    CHECK_OK(st_set_open_dir(out, &set, &err), &err);
    const st_tensor *t = st_set_find(set, "model.norm.weight", NULL);
    CHECK(t && t->dtype == BADAM_DTYPE_BF16);
    st_set_close(set);
    llama_model_free(bf);
    llama_model_free(m);
}

/* Writes a folder whose weights are m's minus `drop`, plus an extra tensor or a reshaped one. */
static void write_broken_weights(const llama_model *m, const char *dir, const char *drop,
                                 const char *extra, const char *transpose) {
    badam_error err = {0};
    st_entry *e = calloc((size_t)m->n_params + 1, sizeof *e);
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++) {
        const llama_param *p = &m->params[i];
        if (drop && !strcmp(drop, p->name)) continue;
        e[n] = (st_entry){p->name, m->dtype, p->ndim, {p->shape[0], p->shape[1]}, p->data};
        if (transpose && !strcmp(transpose, p->name)) {
            e[n].shape[0] = p->shape[1];
            e[n].shape[1] = p->shape[0];
        }
        n++;
    }
    if (extra) e[n++] = (st_entry){extra, m->dtype, 1, {4}, m->params[0].data};
    if (st_write_dir(dir, e, n, 0, &err)) fprintf(stderr, "%s\n", err.message);
    free(e);
}

static void expect_load_error(const char *dir, badam_status want, const char *needle1,
                              const char *needle2) {
    badam_error err = {0};
    llama_model *m = NULL;
    badam_status st = llama_model_load(dir, BADAM_DTYPE_F32, &m, &err);
    CHECKF(st == want, "%s: status %d, want %d (%s)", dir, st, want, err.message);
    CHECKF(needle1 && strstr(err.message, needle1), "message lacks '%s': %s", needle1, err.message);
    if (needle2)
        CHECKF(strstr(err.message, needle2), "message lacks '%s': %s", needle2, err.message);
    CHECK(m == NULL);
    llama_model_free(m);
}

static void test_broken_weights(void) {
    badam_error err = {0};
    llama_model *m = random_model(BADAM_DTYPE_F32, 0);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", test_workdir("io-missing"));
    CHECK_OK(llama_model_save(m, NULL, dir, 0, &err), &err);
    write_broken_weights(m, dir, "model.layers.1.mlp.up_proj.weight", NULL, NULL);
    expect_load_error(dir, BADAM_E_SHAPE, "model.layers.1.mlp.up_proj.weight", "missing");

    snprintf(dir, sizeof dir, "%s", test_workdir("io-unexpected"));
    CHECK_OK(llama_model_save(m, NULL, dir, 0, &err), &err);
    write_broken_weights(m, dir, NULL, "model.layers.0.mlp.extra.weight", NULL);
    expect_load_error(dir, BADAM_E_SHAPE, "model.layers.0.mlp.extra.weight", "model.safetensors");

    snprintf(dir, sizeof dir, "%s", test_workdir("io-shape"));
    CHECK_OK(llama_model_save(m, NULL, dir, 0, &err), &err);
    write_broken_weights(m, dir, NULL, NULL, "model.layers.0.mlp.down_proj.weight");
    expect_load_error(dir, BADAM_E_SHAPE, "model.layers.0.mlp.down_proj.weight", "[40, 32]");

    snprintf(dir, sizeof dir, "%s", test_workdir("io-no-weights"));
    CHECK_OK(llama_model_save(m, NULL, dir, 0, &err), &err);
    char path[2048];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    remove(path);
    expect_load_error(dir, BADAM_E_IO, "model.safetensors", NULL);
    llama_model_free(m);
}

/* A config.json with one line changed from a valid llama config. */
static void expect_config_error(const char *text, badam_status want, const char *field) {
    const char *dir = test_workdir("io-config");
    write_text(dir, "config.json", text);
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    llama_config cfg;
    badam_error err = {0};
    badam_status st = llama_config_load(path, &cfg, &err);
    CHECKF(st == want, "config %s: status %d, want %d (%s)", text, st, want, err.message);
    CHECKF(strstr(err.message, "config.json") != NULL, "message lacks the file: %s", err.message);
    if (field) CHECKF(strstr(err.message, field), "message lacks '%s': %s", field, err.message);
}

#define BASE                                                                                       \
    "\"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 2, "                  \
    "\"num_attention_heads\": 4, \"vocab_size\": 100"

static void test_config_parsing(void) {
    const char *dir = test_workdir("io-config-ok");
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    badam_error err = {0};
    llama_config c;
    write_text(dir, "config.json",
               "{\"model_type\": \"qwen2\", " BASE ", \"num_key_value_heads\": 2, "
               "\"tie_word_embeddings\": true, \"eos_token_id\": [5, 7], \"rope_theta\": 1e6}");
    CHECK_OK(llama_config_load(path, &c, &err), &err);
    CHECK(c.qkv_bias && !c.o_bias && c.tie_word_embeddings && c.n_kv_heads == 2);
    CHECK(c.head_dim == 16 && c.n_eos == 2 && c.eos_token_ids[1] == 7 && c.rope_theta == 1e6);
    write_text(dir, "config.json",
               "{\"model_type\": \"llama\", " BASE ", \"attention_bias\": true, \"head_dim\": 32, "
               "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 32.0, "
               "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
               "\"original_max_position_embeddings\": 8192}, \"bos_token_id\": 3}");
    CHECK_OK(llama_config_load(path, &c, &err), &err);
    CHECK(c.qkv_bias && c.o_bias && c.head_dim == 32 && c.rope_scaling == LLAMA_ROPE_LLAMA3);
    CHECK(c.rope_factor == 32.0 && c.rope_original_max_position_embeddings == 8192);
    CHECK(c.bos_token_id == 3 && c.n_kv_heads == 4);
    write_text(dir, "config.json",
               "{\"model_type\": \"mistral\", " BASE ", \"sliding_window\": 4096}");
    CHECK_OK(llama_config_load(path, &c, &err), &err);
    CHECK(c.sliding_window == 4096 && !c.qkv_bias && !c.tie_word_embeddings);
}

static void test_config_errors(void) {
    expect_config_error("{\"model_type\": \"llama\", " BASE, BADAM_E_FORMAT, NULL);
    expect_config_error("[1, 2]", BADAM_E_FORMAT, NULL);
    expect_config_error("{\"model_type\": \"llama\xff\", " BASE "}", BADAM_E_FORMAT, "UTF-8");
    expect_config_error("{\"model_type\": \"gpt2\", " BASE "}", BADAM_E_UNSUPPORTED, "model_type");
    expect_config_error("{\"model_type\": \"llama\", \"hidden_size\": 64}", BADAM_E_FORMAT,
                        "intermediate_size");
    expect_config_error("{\"model_type\": \"llama\", " BASE ", \"num_key_value_heads\": 3}",
                        BADAM_E_FORMAT, "num_key_value_heads");
    expect_config_error("{\"model_type\": \"llama\", \"hidden_size\": \"64\", "
                        "\"intermediate_size\": 1, \"num_hidden_layers\": 1, "
                        "\"num_attention_heads\": 1, \"vocab_size\": 1}",
                        BADAM_E_FORMAT, "hidden_size");
    expect_config_error("{\"model_type\": \"llama\", " BASE ", \"rope_scaling\": "
                        "{\"rope_type\": \"yarn\", \"factor\": 4.0}}",
                        BADAM_E_UNSUPPORTED, "yarn");
    expect_config_error("{\"model_type\": \"llama\", " BASE ", \"rope_scaling\": "
                        "{\"rope_type\": \"llama3\", \"factor\": 4.0}}",
                        BADAM_E_FORMAT, "low_freq_factor");
    expect_config_error("{\"model_type\": \"llama\", " BASE ", \"mlp_bias\": true}",
                        BADAM_E_UNSUPPORTED, "mlp_bias");
    expect_config_error("{\"model_type\": \"llama\", " BASE ", \"hidden_act\": \"gelu\"}",
                        BADAM_E_UNSUPPORTED, "hidden_act");
    expect_config_error("{\"model_type\": \"llama\", \"hidden_size\": 64, "
                        "\"intermediate_size\": 128, \"num_hidden_layers\": -2, "
                        "\"num_attention_heads\": 4, \"vocab_size\": 100}",
                        BADAM_E_FORMAT, "num_hidden_layers");
    expect_config_error("{\"model_type\": \"llama\", " BASE ", \"head_dim\": 15}", BADAM_E_FORMAT,
                        "head_dim");
    expect_config_error("{\"model_type\": \"llama\", \"hidden_size\": 64, "
                        "\"intermediate_size\": 128, \"num_hidden_layers\": 2, "
                        "\"num_attention_heads\": 4, \"vocab_size\": 1.5}",
                        BADAM_E_FORMAT, "vocab_size");
}

static void load_config_text(const char *text, llama_config *c) {
    const char *dir = test_workdir("io-config-v5");
    write_text(dir, "config.json", text);
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    badam_error err = {0};
    memset(c, 0xa5, sizeof *c);
    CHECK_OK(llama_config_load(path, c, &err), &err);
}

static int same_config(const llama_config *a, const llama_config *b) {
    return !memcmp(a, b, sizeof *a);
}

/* transformers 5 writes RoPE settings only under rope_parameters (and "dtype" for
 * "torch_dtype"); each config below is read equal to its transformers 4 form. */
static void test_config_transformers5(void) {
    llama_config old4, new5;
    /* Llama 3: theta 500000, no scaling. */
    load_config_text("{\"model_type\": \"llama\", " BASE ", \"rope_theta\": 500000.0}", &old4);
    load_config_text("{\"model_type\": \"llama\", " BASE ", \"rope_parameters\": "
                     "{\"rope_theta\": 500000.0, \"rope_type\": \"default\"}, \"dtype\": "
                     "\"bfloat16\"}",
                     &new5);
    CHECK(new5.rope_theta == 500000.0 && new5.rope_scaling == LLAMA_ROPE_NONE);
    CHECK(same_config(&old4, &new5));
    /* Llama 3.1: llama3 scaling nested. */
    load_config_text("{\"model_type\": \"llama\", " BASE ", \"rope_theta\": 500000.0, "
                     "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
                     "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                     "\"original_max_position_embeddings\": 8192}}",
                     &old4);
    load_config_text("{\"model_type\": \"llama\", " BASE ", \"rope_parameters\": "
                     "{\"rope_theta\": 500000.0, \"rope_type\": \"llama3\", \"factor\": 8.0, "
                     "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                     "\"original_max_position_embeddings\": 8192}}",
                     &new5);
    CHECK(new5.rope_scaling == LLAMA_ROPE_LLAMA3 && new5.rope_factor == 8.0);
    CHECK(same_config(&old4, &new5));
    /* The legacy "type" key; original_max_position_embeddings from the top level, or
     * max_position_embeddings when absent (standardize_rope_params). */
    load_config_text("{\"model_type\": \"llama\", " BASE ", \"max_position_embeddings\": 512, "
                     "\"rope_parameters\": {\"type\": \"llama3\", \"factor\": 2.0, "
                     "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0}}",
                     &new5);
    CHECK(new5.rope_scaling == LLAMA_ROPE_LLAMA3 &&
          new5.rope_original_max_position_embeddings == 512);
    load_config_text("{\"model_type\": \"llama\", " BASE ", \"original_max_position_embeddings\": "
                     "256, \"rope_parameters\": {\"rope_type\": \"llama3\", \"factor\": 2.0, "
                     "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                     "\"original_max_position_embeddings\": 8192}}",
                     &new5);
    CHECK(new5.rope_original_max_position_embeddings == 256);
    /* Qwen2: rope_parameters, head_dim null, layer_types deciding the sliding window. */
    load_config_text("{\"model_type\": \"qwen2\", " BASE ", \"rope_theta\": 1000000.0, "
                     "\"use_sliding_window\": true, \"sliding_window\": 32, "
                     "\"max_window_layers\": 1}",
                     &old4);
    CHECK(old4.sliding_window == 32 && old4.rope_theta == 1e6);
    load_config_text("{\"model_type\": \"qwen2\", " BASE ", \"head_dim\": null, "
                     "\"rope_parameters\": {\"rope_theta\": 1000000.0, \"rope_type\": "
                     "\"default\"}, \"use_sliding_window\": true, \"sliding_window\": 32, "
                     "\"layer_types\": [\"full_attention\", \"sliding_attention\"]}",
                     &new5);
    CHECK(same_config(&old4, &new5));
    load_config_text("{\"model_type\": \"qwen2\", " BASE ", \"use_sliding_window\": true, "
                     "\"sliding_window\": 32, \"max_window_layers\": 2}",
                     &old4);
    CHECK(old4.sliding_window == 0); /* no layer i >= max_window_layers slides */
    load_config_text("{\"model_type\": \"qwen2\", " BASE ", \"use_sliding_window\": false, "
                     "\"sliding_window\": null, \"layer_types\": [\"full_attention\", "
                     "\"full_attention\"]}",
                     &new5);
    CHECK(new5.sliding_window == 0);
    /* Mistral; a RoPE dict per layer type that agrees. */
    load_config_text("{\"model_type\": \"mistral\", " BASE ", \"rope_theta\": 1000000.0, "
                     "\"sliding_window\": 4096}",
                     &old4);
    load_config_text("{\"model_type\": \"mistral\", " BASE ", \"sliding_window\": 4096, "
                     "\"rope_parameters\": {\"full_attention\": {\"rope_theta\": 1000000.0, "
                     "\"rope_type\": \"default\"}, \"sliding_attention\": {\"rope_theta\": "
                     "1000000.0}}}",
                     &new5);
    CHECK(same_config(&old4, &new5));
    /* A legacy rope_scaling wins over rope_parameters (transformers: rope_scaling or ...);
     * rope_theta inside the dict wins over the top level. */
    load_config_text("{\"model_type\": \"llama\", " BASE ", \"rope_theta\": 7.0, "
                     "\"rope_parameters\": {\"rope_theta\": 500000.0}, \"rope_scaling\": null}",
                     &new5);
    CHECK(new5.rope_theta == 500000.0);
}

static void test_config_rope_errors(void) {
    expect_config_error("{\"model_type\": \"llama\", " BASE ", \"rope_parameters\": "
                        "{\"rope_theta\": 500000.0, \"rope_type\": \"yarn\", \"factor\": 4.0, "
                        "\"original_max_position_embeddings\": 4096}}",
                        BADAM_E_UNSUPPORTED, "rope_parameters.rope_type");
    expect_config_error("{\"model_type\": \"qwen2\", " BASE ", \"rope_parameters\": "
                        "{\"rope_type\": \"dynamic\", \"factor\": 2.0}}",
                        BADAM_E_UNSUPPORTED, "dynamic");
    expect_config_error("{\"model_type\": \"llama\", " BASE ", \"rope_scaling\": "
                        "{\"factor\": 4.0}}",
                        BADAM_E_FORMAT, "rope_scaling.factor");
    expect_config_error("{\"model_type\": \"mistral\", " BASE ", \"rope_parameters\": "
                        "{\"rope_theta\": 10000.0, \"factor\": 4.0}}",
                        BADAM_E_FORMAT, "rope_parameters.factor");
    expect_config_error("{\"model_type\": \"llama\", " BASE ", \"rope_parameters\": "
                        "{\"rope_type\": \"default\", \"factor\": 4.0}}",
                        BADAM_E_UNSUPPORTED, "rope_parameters.factor");
    expect_config_error("{\"model_type\": \"llama\", " BASE ", \"rope_parameters\": "
                        "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, "
                        "\"high_freq_factor\": 4.0, \"attention_factor\": 2.0}}",
                        BADAM_E_UNSUPPORTED, "rope_parameters.attention_factor");
    expect_config_error("{\"model_type\": \"llama\", " BASE ", \"rope_parameters\": "
                        "{\"rope_type\": \"llama3\", \"factor\": 8.0}}",
                        BADAM_E_FORMAT, "low_freq_factor");
    expect_config_error("{\"model_type\": \"llama\", " BASE ", \"partial_rotary_factor\": 0.5}",
                        BADAM_E_UNSUPPORTED, "partial_rotary_factor");
    expect_config_error("{\"model_type\": \"llama\", " BASE ", \"rope_parameters\": "
                        "{\"rope_theta\": 10000.0, \"partial_rotary_factor\": 0.5}}",
                        BADAM_E_UNSUPPORTED, "partial_rotary_factor");
    expect_config_error("{\"model_type\": \"llama\", " BASE ", \"rope_parameters\": "
                        "{\"full_attention\": {\"rope_theta\": 10000.0}, \"sliding_attention\": "
                        "{\"rope_theta\": 500000.0}}}",
                        BADAM_E_UNSUPPORTED, "rope_parameters.sliding_attention");
    expect_config_error("{\"model_type\": \"llama\", " BASE ", \"rope_parameters\": [1]}",
                        BADAM_E_FORMAT, "rope_parameters");
    expect_config_error("{\"model_type\": \"qwen2\", " BASE ", \"layer_types\": "
                        "[\"full_attention\"]}",
                        BADAM_E_FORMAT, "layer_types");
    expect_config_error("{\"model_type\": \"qwen2\", " BASE ", \"layer_types\": "
                        "[\"full_attention\", \"chunked_attention\"]}",
                        BADAM_E_UNSUPPORTED, "layer_types");
}

/* The saved config names the weights' dtype under the key its source used. */
static void test_save_dtype_key(void) {
    badam_error err = {0};
    llama_model *m = random_model(BADAM_DTYPE_F32, 0), *bf = NULL;
    char src[1024], out[1024], path[2048];
    snprintf(src, sizeof src, "%s", test_workdir("io-dtype-src"));
    snprintf(out, sizeof out, "%s", test_workdir("io-dtype-out"));
    CHECK_OK(llama_model_save(m, NULL, src, 0, &err), &err);
    snprintf(path, sizeof path, "%s/config.json", src);
    json_t *cfg = NULL;
    CHECK_OK(io_read_json(path, &cfg, &err), &err);
    json_object_del(cfg, "torch_dtype");
    json_object_set_new(cfg, "dtype", json_string("float32"));
    char *text = io_json_dump(cfg, 2, NULL);
    json_decref(cfg);
    write_text(src, "config.json", text);
    free(text);
    CHECK_OK(llama_model_load(src, BADAM_DTYPE_BF16, &bf, &err), &err);
    CHECK_OK(llama_model_save(bf, src, out, 0, &err), &err);
    snprintf(path, sizeof path, "%s/config.json", out);
    CHECK_OK(io_read_json(path, &cfg, &err), &err);
    const json_t *dt = json_object_get(cfg, "dtype");
    CHECK(json_is_string(dt) && !strcmp(json_string_value(dt), "bfloat16"));
    CHECK(!json_object_get(cfg, "torch_dtype"));
    json_decref(cfg);
    llama_model_free(bf);
    llama_model_free(m);
}

static void test_layer_count_mismatch(void) {
    badam_error err = {0};
    llama_model *m = random_model(BADAM_DTYPE_F32, 1);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", test_workdir("io-layers"));
    CHECK_OK(llama_model_save(m, NULL, dir, 0, &err), &err);
    write_text(dir, "config.json",
               "{\"model_type\": \"llama\", \"hidden_size\": 32, \"intermediate_size\": 40, "
               "\"num_hidden_layers\": 3, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, "
               "\"vocab_size\": 37, \"attention_bias\": true, \"tie_word_embeddings\": true}");
    expect_load_error(dir, BADAM_E_SHAPE, "model.layers.2.", "missing");
    llama_model_free(m);
}

int main(void) {
    RUN_TEST(test_round_trips);
    RUN_TEST(test_save_copies_companions_and_dtype);
    RUN_TEST(test_broken_weights);
    RUN_TEST(test_config_parsing);
    RUN_TEST(test_config_errors);
    RUN_TEST(test_config_transformers5);
    RUN_TEST(test_config_rope_errors);
    RUN_TEST(test_save_dtype_key);
    RUN_TEST(test_layer_count_mismatch);
    return test_result();
}
