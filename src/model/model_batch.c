/* The model batch of a text-layer batch: the one place a data_batch becomes a llama_batch. */
#include "badam/model.h"

void model_batch_from_data(const data_batch *db, llama_batch *out) {
    *out = (llama_batch){0};
    out->B = db->B, out->T = db->T;
    out->first_row = db->first_row;
    out->tokens = db->tokens;
    out->targets = db->targets;
    out->positions = db->positions;
    out->seg_start = db->seg_start;
    out->target_kind = MODEL_TARGETS_TOKEN;
}
