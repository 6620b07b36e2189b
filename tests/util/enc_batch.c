#include "enc_batch.h"

#include <stdlib.h>
#include <string.h>

#include "badam/model.h"
#include "io/files.h"
#include "ref_compare.h"

int enc_batch_load(const char *path, enc_batch *b) {
    memset(b, 0, sizeof *b);
    json_t *json = NULL;
    badam_error err = {0};
    if (io_read_json(path, &json, &err)) return -1;
    int B2, T2,
        rc = ref_read_int_rows(json_object_get(json, "input_ids"), &b->tokens, &b->B, &b->T);
    int32_t *mask = NULL;
    rc = rc || ref_read_int_rows(json_object_get(json, "attention_mask"), &mask, &B2, &T2);
    if (!rc && json_object_get(json, "token_type_ids"))
        rc = ref_read_int_rows(json_object_get(json, "token_type_ids"), &b->types, &B2, &T2);
    const json_t *labels = json_object_get(json, "labels"), *v;
    b->per_token = json_is_array(json_array_get(labels, 0));
    if (b->per_token) {
        rc = rc || ref_read_int_rows(labels, &b->labels, &B2, &T2) || B2 != b->B || T2 != b->T;
        b->rows = b->B * b->T;
    } else {
        b->rows = (int)json_array_size(labels);
        b->labels = malloc(sizeof(int32_t) * (size_t)b->rows + 4);
        size_t i;
        json_array_foreach(labels, i, v) b->labels[i] = (int32_t)json_integer_value(v);
    }
    b->n_choices = (int)json_integer_value(json_object_get(json, "n_choices"));
    b->mask = malloc((size_t)b->B * b->T + 1);
    for (int k = 0; !rc && k < b->B * b->T; k++) b->mask[k] = (uint8_t)mask[k];
    free(mask);
    json_decref(json);
    return rc;
}

void enc_batch_free(enc_batch *b) {
    free(b->tokens), free(b->types), free(b->labels), free(b->mask);
}

llama_batch enc_batch_model(const enc_batch *b) {
    llama_batch lb = {.B = b->B, .T = b->T, .tokens = b->tokens, .targets = b->labels};
    lb.token_types = b->types, lb.pad_mask = b->mask;
    lb.target_kind = b->per_token   ? MODEL_TARGETS_MASKED
                     : b->n_choices ? MODEL_TARGETS_CHOICE
                                    : MODEL_TARGETS_SEQUENCE;
    lb.n_choices = b->n_choices;
    return lb;
}
