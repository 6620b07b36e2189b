/* The memory check of `badam train` and `badam plan` (train_memcheck.h). */
#include "train_memcheck.h"

#include <stdio.h>

#include "badam/memory.h"
#include "badam/model.h"
#include "cli.h"

int memcheck_message(size_t planned, int processes, size_t available, char *buf, size_t size) {
    buf[0] = '\0';
    double need = (double)planned * (processes > 1 ? processes : 1);
    if (!available || need <= (double)available) return 0;
    char a[32], b[32], per[64] = "";
    if (processes > 1) snprintf(per, sizeof per, " (%d processes on this machine)", processes);
    cli_human_bytes(a, (unsigned long long)need);
    cli_human_bytes(b, available);
    snprintf(buf, size,
             "the memory plan needs %s (%.0f bytes)%s, more than the %s (%zu bytes) this machine "
             "has available now (MemAvailable)",
             a, need, per, b, available);
    return 1;
}

int memcheck_train(const train_config *c, int rows, int processes) {
    char path[4096], msg[512];
    snprintf(path, sizeof path, "%s/config.json", c->model_dir);
    badam_error err = {0};
    llama_config mc;
    const model_arch *arch = NULL;
    memory_plan p;
    if (model_arch_for_folder(c->model_dir, &arch, &err) || arch->config_load(path, &mc, &err) ||
        memory_plan_predict(&mc, c, rows, c->seq_len, &p, &err))
        return 0; /* the run reports it, with its context */
    if (!memcheck_message(p.total, processes, badam_mem_available(), msg, sizeof msg)) return 0;
    fprintf(stderr,
            "badam train: %s: lower --batch-size or --seq-len, or give --ignore-memory-check to "
            "run anyway (badam plan shows the plan by category)\n",
            msg);
    return 2;
}
