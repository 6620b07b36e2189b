/* Streaming record scanner for JSON-array and JSON-lines files.
 *
 * The file is read in 64 KiB chunks; each top-level record (an element of the outer array, or a
 * whitespace-separated value of a JSON-lines file) is copied into a buffer of its own and handed to
 * the caller, which parses it with Jansson. The scanner tracks only bracket depth, strings and
 * escapes, which is all it needs to find where a record ends; everything else about the record's
 * syntax is Jansson's job. Memory stays at one record (at most DATA_MAX_RECORD_BYTES).
 *
 * Every error names the file and the byte offset (0-based, counted from the first byte of the
 * file, byte order mark included) where the problem was found, plus the line for people. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/files.h"
#include "text/data_internal.h"

#define SCAN_CHUNK ((size_t)1 << 16)

struct data_scanner {
    FILE *f;
    char *path;
    unsigned char *in; /* read buffer */
    size_t in_pos, in_len;
    int pushback; /* -2: none */
    char *rec;    /* the current record */
    size_t rec_len, rec_cap;
    int is_array;
    int done;
    size_t index;   /* index of the next record */
    size_t line;    /* 1-based line of the next byte */
    size_t pos;     /* 0-based byte offset of the next byte */
    size_t rec_pos; /* byte offset of the current record's first byte */
};

static int sc_getc(data_scanner *sc) {
    int c;
    if (sc->pushback != -2) {
        c = sc->pushback;
        sc->pushback = -2;
    } else {
        if (sc->in_pos == sc->in_len) {
            sc->in_len = fread(sc->in, 1, SCAN_CHUNK, sc->f);
            sc->in_pos = 0;
            if (sc->in_len == 0) return EOF;
        }
        c = sc->in[sc->in_pos++];
    }
    if (c == '\n') sc->line++;
    sc->pos++;
    return c;
}

static void sc_ungetc(data_scanner *sc, int c) {
    if (c == EOF) return;
    if (c == '\n') sc->line--;
    sc->pos--;
    sc->pushback = c;
}

static int is_space(int c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int sc_skip_space(data_scanner *sc) {
    int c;
    do c = sc_getc(sc);
    while (c != EOF && is_space(c));
    return c;
}

/* A printable description of a byte for error messages. */
static const char *describe(int c, char buf[16]) {
    if (c == EOF) return "end of file";
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02x", (unsigned)c);
    return buf;
}

badam_status data_scanner_open(const char *path, data_scanner **out, badam_error *err) {
    *out = NULL;
    data_scanner *sc = calloc(1, sizeof *sc);
    if (!sc) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", path);
    sc->pushback = -2;
    sc->line = 1;
    sc->path = strdup(path);
    sc->in = malloc(SCAN_CHUNK);
    sc->rec_cap = 4096; /* never NULL: even an empty record has its terminator */
    sc->rec = malloc(sc->rec_cap);
    if (!sc->path || !sc->in || !sc->rec) {
        data_scanner_close(sc);
        return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", path);
    }
    int fd;
    badam_status ost = io_open_regular(path, &fd, NULL, err);
    if (ost != BADAM_OK) {
        data_scanner_close(sc);
        return ost;
    }
    sc->f = fdopen(fd, "rb");
    if (!sc->f) {
        int e = errno;
        close(fd);
        data_scanner_close(sc);
        return badam_fail(err, BADAM_E_IO, "%s: cannot open: %s", path, strerror(e));
    }
    int c = sc_getc(sc);
    if (c == 0xEF) { /* UTF-8 byte order mark */
        int c2 = sc_getc(sc), c3 = sc_getc(sc);
        if (c2 != 0xBB || c3 != 0xBF) {
            data_scanner_close(sc);
            return badam_fail(err, BADAM_E_FORMAT,
                              "%s: byte 0: not a JSON or JSON-lines file (an incomplete UTF-8 "
                              "byte order mark)",
                              path);
        }
        c = sc_getc(sc);
    }
    sc_ungetc(sc, c);
    c = sc_skip_space(sc);
    if (ferror(sc->f)) {
        data_scanner_close(sc);
        return badam_fail(err, BADAM_E_IO, "%s: read error", path);
    }
    if (c == EOF) {
        data_scanner_close(sc);
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: empty file (expected a JSON array of records or JSON lines)", path);
    }
    if (c == '[') {
        sc->is_array = 1;
    } else if (c == '{') {
        sc_ungetc(sc, c);
    } else {
        char d[16];
        badam_status st = badam_fail(err, BADAM_E_FORMAT,
                                     "%s: byte %zu (line %zu): expected a JSON array ('[') or JSON "
                                     "lines (one '{' object per line), found %s",
                                     path, sc->pos - 1, sc->line, describe(c, d));
        data_scanner_close(sc);
        return st;
    }
    *out = sc;
    return BADAM_OK;
}

int data_scanner_is_array(const data_scanner *sc) {
    return sc->is_array;
}

void data_scanner_close(data_scanner *sc) {
    if (!sc) return;
    if (sc->f) fclose(sc->f);
    free(sc->path);
    free(sc->in);
    free(sc->rec);
    free(sc);
}

static badam_status rec_put(data_scanner *sc, int c, badam_error *err) {
    if (sc->rec_len + 2 > sc->rec_cap) {
        if (sc->rec_len + 1 > DATA_MAX_RECORD_BYTES)
            return badam_fail(err, BADAM_E_FORMAT,
                              "%s: record %zu (0-based, byte %zu) is larger than %zu MB; records "
                              "that big are not supported (is the file one huge record?)",
                              sc->path, sc->index, sc->rec_pos, DATA_MAX_RECORD_BYTES >> 20);
        size_t cap = sc->rec_cap * 2;
        if (cap > DATA_MAX_RECORD_BYTES + 2) cap = DATA_MAX_RECORD_BYTES + 2;
        char *r = realloc(sc->rec, cap);
        if (!r) return badam_fail(err, BADAM_E_NOMEM, "%s: out of memory", sc->path);
        sc->rec = r;
        sc->rec_cap = cap;
    }
    sc->rec[sc->rec_len++] = (char)c;
    return BADAM_OK;
}

/* 1 when c can start a JSON value: an object, array, string, number, true, false or null. */
static int starts_value(int c) {
    return c == '{' || c == '[' || c == '"' || c == '-' || (c >= '0' && c <= '9') || c == 't' ||
           c == 'f' || c == 'n';
}

/* Copies one JSON value starting with byte c (read at sc->pos - 1) into sc->rec. */
static badam_status scan_value(data_scanner *sc, int c, size_t start_line, badam_error *err) {
    badam_status st;
    char d[16];
    sc->rec_len = 0;
    sc->rec_pos = sc->pos - 1;
    if (!starts_value(c))
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: byte %zu (line %zu): malformed JSON at record %zu (0-based): "
                          "expected a record, found %s",
                          sc->path, sc->rec_pos, start_line, sc->index, describe(c, d));
    if (c == '{' || c == '[' || c == '"') {
        int depth = 0, in_string = 0, escape = 0;
        for (;;) {
            if ((st = rec_put(sc, c, err)) != BADAM_OK) return st;
            if (in_string) {
                if (escape)
                    escape = 0;
                else if (c == '\\')
                    escape = 1;
                else if (c == '"')
                    in_string = 0;
            } else if (c == '"') {
                in_string = 1;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                depth--;
            }
            if (depth == 0 && !in_string) break;
            c = sc_getc(sc);
            if (c == EOF)
                return badam_fail(
                    err, BADAM_E_FORMAT,
                    "%s: byte %zu: record %zu (0-based, line %zu, byte %zu): malformed JSON: the "
                    "file ends inside the record (%s)",
                    sc->path, sc->pos, sc->index, start_line, sc->rec_pos,
                    in_string ? "unterminated string" : "unclosed '{' or '['");
        }
    } else {
        /* A scalar (never a valid record, but let the caller say so with the record's index). */
        while (c != EOF && !is_space(c) && c != ',' && c != ']' && c != '}') {
            if ((st = rec_put(sc, c, err)) != BADAM_OK) return st;
            c = sc_getc(sc);
        }
        sc_ungetc(sc, c);
    }
    sc->rec[sc->rec_len] = '\0';
    return BADAM_OK;
}

badam_status data_scanner_next(data_scanner *sc, const char **text, size_t *len, size_t *line,
                               badam_error *err) {
    *text = NULL;
    *len = 0;
    *line = 0;
    if (sc->done) return BADAM_OK;
    char d[16];
    int c;
    if (sc->is_array) {
        c = sc_skip_space(sc);
        if (sc->index > 0) {
            if (c == ']') goto array_end;
            if (c == EOF)
                return badam_fail(err, BADAM_E_FORMAT,
                                  "%s: byte %zu: malformed JSON: the file ends after record %zu "
                                  "(0-based) without the array's closing ']'",
                                  sc->path, sc->pos, sc->index - 1);
            if (c != ',')
                return badam_fail(
                    err, BADAM_E_FORMAT,
                    "%s: byte %zu (line %zu): malformed JSON after record %zu (0-based): expected "
                    "',' or ']', found %s",
                    sc->path, sc->pos - 1, sc->line, sc->index - 1, describe(c, d));
            c = sc_skip_space(sc);
            if (c == ']')
                return badam_fail(err, BADAM_E_FORMAT,
                                  "%s: byte %zu (line %zu): malformed JSON at record %zu "
                                  "(0-based): a ',' before ']' (trailing comma)",
                                  sc->path, sc->pos - 1, sc->line, sc->index);
        } else if (c == ']') {
            goto array_end;
        }
        if (c == EOF)
            return badam_fail(err, BADAM_E_FORMAT,
                              "%s: byte %zu: malformed JSON at record %zu (0-based): the file "
                              "ends before the array's ']'",
                              sc->path, sc->pos, sc->index);
    } else {
        c = sc_skip_space(sc);
        if (c == EOF) {
            sc->done = 1;
            return ferror(sc->f) ? badam_fail(err, BADAM_E_IO, "%s: read error", sc->path)
                                 : BADAM_OK;
        }
    }
    size_t start_line = sc->line;
    badam_status st = scan_value(sc, c, start_line, err);
    if (st != BADAM_OK) return st;
    if (ferror(sc->f)) return badam_fail(err, BADAM_E_IO, "%s: read error", sc->path);
    *text = sc->rec;
    *len = sc->rec_len;
    *line = start_line;
    sc->index++;
    return BADAM_OK;

array_end:
    sc->done = 1;
    c = sc_skip_space(sc);
    if (c != EOF)
        return badam_fail(err, BADAM_E_FORMAT,
                          "%s: byte %zu (line %zu): unexpected %s after the closing ']' of the "
                          "array",
                          sc->path, sc->pos - 1, sc->line, describe(c, d));
    return BADAM_OK;
}

size_t data_scanner_record_offset(const data_scanner *sc) {
    return sc->rec_pos;
}
