/* optimizer.safetensors is matched by tensor name: Adam moments saved for tensors (a, b) load
 * into a set that lists them as (b, a) with each tensor getting its own moments (matching by
 * index gave a's moments to b when the sizes agreed); a tensor the file lacks, one of another
 * size and a file with a tensor the set lacks are errors that name the tensor. */
#include <stdio.h>
#include <string.h>

#include "io/files.h"
#include "testutil.h"
#include "train/checkpoint.h"

enum { N = 8 };

static backend *cpu; /* the sets' backend: host memory, so m and v below can be its memory */

/* A set of two Adam tensors named n0, n1 whose moments live in m[2][N], v[2][N]. */
static void make_set(trainable_set *s, trainable t[2], const char *n0, const char *n1,
                     float m[2][N], float v[2][N]) {
    memset(s, 0, sizeof *s);
    s->be = cpu;
    memset(t, 0, 2 * sizeof *t);
    const char *names[2] = {n0, n1};
    for (int i = 0; i < 2; i++) {
        t[i].name = names[i];
        t[i].param = -1;
        t[i].numel = N;
        t[i].m = m[i], t[i].v = v[i];
    }
    s->t = t;
    s->n = s->cap = n1 ? 2 : 1;
}

static void test_matched_by_name(void) {
    const char *dir = test_workdir("checkpoint-names");
    float m[2][N], v[2][N], m2[2][N], v2[2][N];
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < N; k++) m[i][k] = (float)(10 * i + k), v[i][k] = (float)(100 * i + k);
    trainable_set s, s2;
    trainable t[2], t2[2];
    badam_error err = {0};
    make_set(&s, t, "model.layers.1.mlp.up_proj.weight", "model.layers.2.mlp.up_proj.weight", m, v);
    CHECK(checkpoint_write_optimizer(dir, &s, &err) == BADAM_OK);

    /* the same tensors listed in the other order */
    memset(m2, 0, sizeof m2), memset(v2, 0, sizeof v2);
    make_set(&s2, t2, "model.layers.2.mlp.up_proj.weight", "model.layers.1.mlp.up_proj.weight", m2,
             v2);
    CHECK(checkpoint_load_optimizer(dir, &s2, &err) == BADAM_OK);
    CHECK(!memcmp(m2[0], m[1], sizeof m[1]) && !memcmp(v2[0], v[1], sizeof v[1]));
    CHECK(!memcmp(m2[1], m[0], sizeof m[0]) && !memcmp(v2[1], v[0], sizeof v[0]));

    /* a tensor the file does not hold */
    make_set(&s2, t2, "model.layers.1.mlp.up_proj.weight", "model.layers.3.mlp.up_proj.weight", m2,
             v2);
    CHECK(checkpoint_load_optimizer(dir, &s2, &err) != BADAM_OK);
    CHECKF(strstr(err.message, "'model.layers.3.mlp.up_proj.weight.m'") &&
               strstr(err.message, "missing"),
           "%s", err.message);

    /* another size */
    make_set(&s2, t2, "model.layers.1.mlp.up_proj.weight", "model.layers.2.mlp.up_proj.weight", m2,
             v2);
    t2[1].numel = N - 1;
    CHECK(checkpoint_load_optimizer(dir, &s2, &err) != BADAM_OK);
    CHECKF(strstr(err.message, "'model.layers.2.mlp.up_proj.weight.m'") &&
               strstr(err.message, "another size"),
           "%s", err.message);

    /* the file holds a tensor this set does not have */
    make_set(&s2, t2, "model.layers.1.mlp.up_proj.weight", NULL, m2, v2);
    CHECK(checkpoint_load_optimizer(dir, &s2, &err) != BADAM_OK);
    CHECKF(strstr(err.message, "holds 4 tensors, this run expects 2"), "%s", err.message);
}

static void test_lora_parts(void) {
    trainable t = {0};
    t.name = "model.layers.0.self_attn.q_proj.weight";
    char key[256];
    checkpoint_tensor_key(&t, "m", key, sizeof key);
    CHECK(!strcmp(key, "model.layers.0.self_attn.q_proj.weight.m"));
    t.part = "lora_B";
    checkpoint_tensor_key(&t, "v", key, sizeof key);
    CHECK(!strcmp(key, "model.layers.0.self_attn.q_proj.weight.lora_B.v"));
}

int main(void) {
    badam_error err = {0};
    if (backend_cpu_create(&cpu, &err)) {
        fprintf(stderr, "CPU backend: %s\n", err.message);
        return 1;
    }
    RUN_TEST(test_matched_by_name);
    RUN_TEST(test_lora_parts);
    backend_destroy(cpu);
    return test_result();
}
