/* The shipped encoder models/tiny-roberta-base (scripts/pretrain_encoder.sh): a
 * RobertaForMaskedLM folder of at most 3 MB whose tokenizer loads, and whose masked-LM loss on
 * held-out sentences of its corpus's grammar (masked by badam/mlm.h) is below 0.8 of a uniform
 * guess over the vocabulary (the shipped model: 0.71; its random initialisation: 0.99), with at
 * least 10% of the masked tokens predicted right (shipped: 15%; random: 0). Skips when the folder
 * is absent. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/bert.h"
#include "badam/mlm.h"
#include "badam/model.h"
#include "badam/tokenizer.h"
#include "testutil.h"

static const char *const TEXT[] = {
    "The small cat sees the old dog in the garden. Anna runs quickly.",
    "It is true that the brave teacher helps the kind doctor at school.",
    "Three horses walk in the morning. My happy sister sings by the river.",
    "The quiet bird is followed by the clever fox near the house.",
    "Where is the green boat at night? The baker reads a book.",
    "The tall king watches the young queen on the hill and the boy laughs.",
};
#define N_TEXT (int)(sizeof TEXT / sizeof TEXT[0])
enum { T = 40 };

static void test_model(void) {
    const char *found = test_source_path("models/tiny-roberta-base");
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s", found ? found : "");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = found ? fopen(path, "rb") : NULL;
    if (!f) {
        fprintf(stderr, "skip: models/tiny-roberta-base is absent\n");
        return;
    }
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fclose(f);
    CHECKF(bytes > 0 && bytes <= 3 * 1024 * 1024, "model.safetensors is %ld bytes", bytes);
    badam_error err = {0};
    const model_arch *a = NULL;
    llama_model *m = NULL;
    badam_tokenizer *tok = NULL;
    mlm_masker *mk = NULL;
    llama_workspace *ws = NULL;
    CHECK_OK(model_arch_for_folder(dir, &a, &err), &err);
    CHECK_OK(a->load(dir, BADAM_DTYPE_F32, &m, &err), &err);
    CHECK_OK(tokenizer_load(dir, &tok, &err), &err);
    CHECK_OK(mlm_masker_create(tok, 0.4, 3, &mk, &err), &err); /* 0.4: more targets */
    CHECK_OK(a->workspace_create(m, N_TEXT, T, &ws, &err), &err);
    CHECK(m->cfg.encoder_head == LLAMA_HEAD_MLM);
    int32_t tokens[N_TEXT * T], inputs[N_TEXT * T], targets[N_TEXT * T], pred[N_TEXT * T];
    int32_t lengths[N_TEXT];
    int64_t units[N_TEXT];
    uint8_t pad[N_TEXT * T];
    for (int r = 0; r < N_TEXT; r++) {
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK_OK(tokenizer_encode(tok, TEXT[r], strlen(TEXT[r]), 1, &ids, &n, &err), &err);
        CHECK(n <= T);
        memcpy(tokens + r * T, ids, sizeof(int32_t) * n);
        lengths[r] = (int32_t)n, units[r] = r;
        free(ids);
    }
    data_batch db = {.B = N_TEXT, .T = T, .tokens = tokens, .lengths = lengths, .units = units};
    int masked = mlm_mask_batch(mk, &db, inputs, targets, pad);
    llama_batch b = {.B = N_TEXT, .T = T, .tokens = inputs, .targets = targets, .pad_mask = pad};
    b.target_kind = MODEL_TARGETS_MASKED;
    double sum = 0;
    int n = 0, right = 0;
    CHECK_OK(a->forward(m, ws, &b, NULL, 0.0f, NULL, &sum, &n, &err), &err);
    CHECK_OK(bert_mlm_predict(m, ws, &b, pred, &err), &err);
    for (int i = 0; i < N_TEXT * T; i++) right += targets[i] >= 0 && pred[i] == targets[i];
    double loss = n ? sum / n : INFINITY, uniform = log((double)m->cfg.vocab_size);
    CHECKF(n == masked && n >= 20 && loss < 0.8 * uniform && right * 10 >= n,
           "held-out masked LM: %d targets, loss %.3f (uniform %.3f), %d right", n, loss, uniform,
           right);
    a->workspace_free(ws);
    mlm_masker_free(mk);
    tokenizer_free(tok);
    a->free(m);
}

int main(void) {
    RUN_TEST(test_model);
    return test_result();
}
