/* One line describing what a dataset kept of its file (data_stats_describe). */
#include <stdio.h>

#include "badam/data.h"

void data_stats_describe(const data_stats *s, char *buf, size_t size) {
    snprintf(buf, size,
             "%zu of %zu records kept, %zu dropped (no trained token within the sequence length), "
             "%zu truncated",
             s->examples, s->records, s->dropped_empty, s->truncated);
}
