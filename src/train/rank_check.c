/* Data parallel: the ranks of a run agree on what they run (rank_check.h). */
#include "train/rank_check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "badam/json.h"
#include "io/file_hash.h"

#define DIFF_BYTES 1024

/* What this rank runs: the run record, the binary's hash and the model's size. */
static json_t *facts_of(const json_t *record, size_t model_bytes) {
    json_t *o = record ? json_deep_copy(record) : json_object();
    if (!o) return NULL;
    char hex[65] = "unknown";
    badam_error ignored = {0};
    if (io_sha256_file("/proc/self/exe", hex, &ignored)) snprintf(hex, sizeof hex, "unknown");
    json_object_set_new(o, "badam binary (sha256)", json_string(hex));
    json_object_set_new(o, "model size (bytes)", json_integer((json_int_t)model_bytes));
    return o;
}

/* Appends "KEY: rank 0 has A, this rank B" to out for each key whose values differ. */
static void describe_differences(const json_t *rank0, const json_t *mine, int rank, char *out,
                                 size_t size) {
    size_t used = 0;
    const char *key;
    json_t *a;
    json_object_foreach((json_t *)rank0, key, a) {
        const json_t *b = json_object_get(mine, key);
        if (b && json_equal(a, b)) continue;
        char *sa = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY);
        char *sb = b ? json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (used < size)
            used +=
                (size_t)snprintf(out + used, size - used, "%s%s: rank 0 has %.60s, rank %d %.60s",
                                 used ? "; " : "", key, sa ? sa : "?", rank, sb ? sb : "nothing");
        free(sa);
        free(sb);
    }
    json_t *b;
    json_object_foreach((json_t *)mine, key, b) {
        if (json_object_get(rank0, key) || used >= size) continue;
        used += (size_t)snprintf(out + used, size - used, "%s%s: only rank %d has it",
                                 used ? "; " : "", key, rank);
    }
}

/* Rank 0's facts as JSON text, on every rank (*text malloc'ed). */
static badam_status share_rank0(const badam_comm *comm, const json_t *mine, char **text,
                                badam_error *err) {
    size_t len = 0;
    char *own = io_json_dump(mine, 0, &len);
    if (!own) return badam_fail(err, BADAM_E_NOMEM, "rank check: out of memory");
    uint64_t n = len;
    badam_status st = badam_comm_broadcast(comm, &n, sizeof n, 0, err);
    char *buf = st ? NULL : calloc(n + 1, 1);
    if (!st && !buf) st = badam_fail(err, BADAM_E_NOMEM, "rank check: out of memory");
    /* every rank starts from its own text (the broadcast overwrites it with rank 0's) */
    if (!st) memcpy(buf, own, n < len ? n : len);
    if (!st) st = badam_comm_broadcast(comm, buf, n, 0, err);
    free(own);
    if (st) {
        free(buf);
        return st;
    }
    *text = buf;
    return BADAM_OK;
}

badam_status rank_check_agree(const badam_comm *comm, const json_t *record, size_t model_bytes,
                              badam_error *err) {
    int size = badam_comm_size(comm), rank = badam_comm_rank(comm);
    if (size <= 1) return BADAM_OK;
    json_t *mine = facts_of(record, model_bytes), *rank0 = NULL;
    char *text = NULL, diff[DIFF_BYTES] = "";
    double *flags = calloc((size_t)size, sizeof *flags);
    badam_status st = mine && flags ? share_rank0(comm, mine, &text, err)
                                    : badam_fail(err, BADAM_E_NOMEM, "rank check: out of memory");
    if (!st) {
        json_error_t je;
        rank0 = json_loads(text, 0, &je);
        if (!rank0 || !json_is_object(rank0))
            snprintf(diff, sizeof diff, "unreadable facts");
        else
            describe_differences(rank0, mine, rank, diff, sizeof diff);
        flags[rank] = diff[0] ? 1 : 0;
        st = badam_comm_all_reduce_f64(comm, flags, (size_t)size, err);
    }
    int first = -1;
    for (int r = 0; !st && r < size && first < 0; r++)
        if (flags[r] != 0) first = r;
    /* every rank fails with the first differing rank's description */
    if (!st && first >= 0) st = badam_comm_broadcast(comm, diff, sizeof diff, first, err);
    if (!st && first >= 0) {
        diff[sizeof diff - 1] = '\0';
        st = badam_fail(err, BADAM_E_INVALID,
                        "rank %d does not run what rank 0 runs (binary, options or data): %s",
                        first, diff);
    }
    json_decref(mine);
    json_decref(rank0);
    free(text);
    free(flags);
    return st;
}
