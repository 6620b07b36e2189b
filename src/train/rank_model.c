/* Data parallel: rank 0 loads the model, the other ranks build it from rank 0's config
 * (rank_model.h). */
#include "train/rank_model.h"

#include <stdio.h>
#include <string.h>

badam_status rank_model_load(const badam_comm *comm, const char *dir, badam_dtype dtype,
                             llama_model **out, badam_error *err) {
    *out = NULL;
    if (badam_comm_size(comm) <= 1) return llama_model_load(dir, dtype, out, err);
    llama_config cfg;
    memset(&cfg, 0, sizeof cfg);
    badam_status st = BADAM_OK;
    if (badam_comm_rank(comm) == 0) {
        st = llama_model_load(dir, dtype, out, err);
        if (st) return st;
        cfg = (*out)->cfg;
    } else {
        /* the broadcast overwrites it with rank 0's; a rank's own config.json, when it has a
         * readable one, is only its starting value (as with rank_check's facts) */
        char path[4096];
        badam_error ignored = {0};
        snprintf(path, sizeof path, "%s/config.json", dir);
        if (llama_config_load(path, &cfg, &ignored)) memset(&cfg, 0, sizeof cfg);
    }
    /* llama_config is plain data (no pointers): its bytes are the config on every rank */
    st = badam_comm_broadcast(comm, &cfg, sizeof cfg, 0, err);
    if (!st && badam_comm_rank(comm) != 0) {
        st = llama_model_create(&cfg, dtype, out, err);
        if (!st) memset((*out)->storage, 0, (*out)->storage_bytes);
    }
    if (st) {
        llama_model_free(*out);
        *out = NULL;
        return badam_error_prefix(err, "the model from rank 0's config (%s)", dir);
    }
    return BADAM_OK;
}
