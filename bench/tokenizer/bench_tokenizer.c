/* Encode throughput of badam's tokenizer: encodes every line of a text file (no special tokens)
 * and prints MB/s, the token count and a checksum of the ids (to compare with bench.mjs).
 *
 *   bench_tokenizer MODEL_DIR TEXT_FILE [THREADS]
 *
 * One warm-up pass over the first tenth of the lines, then one timed pass over all of them;
 * with THREADS > 1 the lines are split into contiguous blocks, one per thread. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "badam/tokenizer.h"
#include "io/files.h"

typedef struct line {
    const char *s;
    size_t n;
} line;

typedef struct work {
    const badam_tokenizer *tok;
    const line *lines;
    size_t begin, end;
    uint64_t tokens, checksum;
    int failed;
} work;

static void *encode_block(void *arg) {
    work *w = arg;
    for (size_t i = w->begin; i < w->end; i++) {
        int32_t *ids;
        size_t n;
        badam_error err;
        if (tokenizer_encode(w->tok, w->lines[i].s, w->lines[i].n, 0, &ids, &n, &err)) {
            fprintf(stderr, "encode failed: %s\n", err.message);
            w->failed = 1;
            return NULL;
        }
        for (size_t k = 0; k < n; k++)
            w->checksum = (w->checksum * 31 + (uint32_t)ids[k]) % 1000000007ull;
        w->tokens += n;
        free(ids);
    }
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_tokenizer MODEL_DIR TEXT_FILE [THREADS]\n");
        return 2;
    }
    int threads = argc > 3 ? atoi(argv[3]) : 1;
    if (threads < 1 || threads > 64) threads = 1;
    badam_error err;
    badam_tokenizer *tok;
    double t0 = now();
    if (tokenizer_load(argv[1], &tok, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    double load_s = now() - t0;
    char *text;
    size_t size;
    if (io_read_file(argv[2], &text, &size, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    size_t n_lines = 0, cap = 1024;
    line *lines = malloc(cap * sizeof *lines);
    for (char *p = text, *end = text + size; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n_lines == cap) lines = realloc(lines, (cap *= 2) * sizeof *lines);
        lines[n_lines++] = (line){p, n};
        p += n + 1;
    }
    work warm = {tok, lines, 0, n_lines / 10, 0, 0, 0};
    encode_block(&warm);
    pthread_t th[64];
    work w[64];
    t0 = now();
    for (int t = 0; t < threads; t++) {
        w[t] = (work){tok, lines, n_lines * t / threads, n_lines * (t + 1) / threads, 0, 0, 0};
        pthread_create(&th[t], NULL, encode_block, &w[t]);
    }
    uint64_t tokens = 0, checksum = 0;
    int failed = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        tokens += w[t].tokens;
        failed |= w[t].failed;
    }
    double s = now() - t0;
    /* the checksum of the whole id stream, recomputed in one order */
    work all = {tok, lines, 0, n_lines, 0, 0, 0};
    if (threads == 1)
        all = w[0];
    else
        encode_block(&all);
    checksum = all.checksum;
    printf("badam      %-8s threads=%d  %7.2f MB/s  (%zu bytes, %zu lines, %llu tokens, checksum "
           "%llu, "
           "%.3f s; load %.2f s)\n",
           argv[1], threads, size / s / 1e6, size, n_lines, (unsigned long long)tokens,
           (unsigned long long)checksum, s, load_s);
    free(lines);
    free(text);
    tokenizer_free(tok);
    return failed;
}
