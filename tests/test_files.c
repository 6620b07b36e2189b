/* io/files: whole-file reads, atomic writes and their failure paths, mkdir -p, strict UTF-8
 * (checked against an independent decoder over every 1-3 byte string), JSON parsing. */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/files.h"
#include "testutil.h"

/* ---- helpers ---- */

/* 1 when the file holds exactly these bytes. */
static int file_equals(const char *path, const void *data, size_t n) {
    char *got;
    size_t size;
    badam_error err;
    if (io_read_file(path, &got, &size, &err) != BADAM_OK) return 0;
    int same = size == n && memcmp(got, data, n) == 0;
    free(got);
    return same;
}

/* Number of entries of dir whose name contains ".tmp.". */
static int count_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static int contains(const char *haystack, const char *needle) {
    return strstr(haystack, needle) != NULL;
}

/* ---- UTF-8 ---- */

/* An independent oracle: decode each sequence to a code point, then check it is the shortest
 * encoding, not a surrogate, and at most U+10FFFF. */
static int ref_valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80)
            len = 1, cp = c, min = 0;
        else if ((c & 0xE0) == 0xC0)
            len = 2, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0)
            len = 3, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0)
            len = 4, cp = c & 0x07, min = 0x10000;
        else
            return 0;
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
        i += len;
    }
    return 1;
}

static void test_utf8_cases(void) {
    struct {
        const char *bytes;
        size_t n;
        int valid;
    } cases[] = {
        {"", 0, 1},
        {"plain ascii", 11, 1},
        {"a\0b", 3, 1},             /* NUL is a character */
        {"\xC3\xA9", 2, 1},         /* U+00E9 */
        {"\xE2\x82\xAC", 3, 1},     /* U+20AC */
        {"\xF0\x9F\x98\x80", 4, 1}, /* U+1F600 */
        {"\xF4\x8F\xBF\xBF", 4, 1}, /* U+10FFFF, the last code point */
        {"\xED\x9F\xBF", 3, 1},     /* U+D7FF, just below the surrogates */
        {"\xEE\x80\x80", 3, 1},     /* U+E000, just above */
        {"\xC0\x80", 2, 0},         /* overlong NUL */
        {"\xC0\xAE", 2, 0},         /* overlong '.' */
        {"\xC1\xBF", 2, 0},         /* overlong */
        {"\xE0\x80\x80", 3, 0},     /* overlong 3-byte */
        {"\xE0\x9F\xBF", 3, 0},     /* overlong U+07FF */
        {"\xF0\x8F\xBF\xBF", 4, 0}, /* overlong U+FFFF */
        {"\xED\xA0\x80", 3, 0},     /* U+D800 surrogate */
        {"\xED\xBF\xBF", 3, 0},     /* U+DFFF surrogate */
        {"\xF4\x90\x80\x80", 4, 0}, /* U+110000 */
        {"\xF5\x80\x80\x80", 4, 0}, /* lead byte beyond the range */
        {"\xFF", 1, 0},             /* never valid */
        {"\x80", 1, 0},             /* lone continuation */
        {"\xE2\x82", 2, 0},         /* truncated 3-byte */
        {"\xF0\x9F\x98", 3, 0},     /* truncated 4-byte */
        {"abc\xC3", 4, 0},          /* truncated at the end */
        {"\xC3"
         "A",
         2, 0},                         /* continuation missing */
        {"\xF8\x88\x80\x80\x80", 5, 0}, /* 5-byte form */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECKF(io_valid_utf8(cases[i].bytes, cases[i].n) == cases[i].valid, "case %zu", i);
        CHECKF(ref_valid_utf8((const unsigned char *)cases[i].bytes, cases[i].n) == cases[i].valid,
               "oracle disagrees on case %zu", i);
    }
}

/* Every string of 1, 2 and 3 bytes, and random 4-8 byte strings, against the oracle. */
static void test_utf8_exhaustive(void) {
    unsigned char s[8];
    long mismatches = 0;
    for (uint32_t v = 0; v < (1u << 24); v++) {
        s[0] = (unsigned char)(v >> 16);
        s[1] = (unsigned char)(v >> 8);
        s[2] = (unsigned char)v;
        for (size_t n = (v < 256 ? 1 : v < 65536 ? 2 : 3); n <= 3; n++) {
            const unsigned char *p = s + 3 - n;
            if (io_valid_utf8((const char *)p, n) != ref_valid_utf8(p, n)) mismatches++;
        }
    }
    test_rng rng;
    test_rng_seed(&rng, 7);
    static const unsigned char pick[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F,
                                         0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xED,
                                         0xEF, 0xF0, 0xF3, 0xF4, 0xF5, 0xFF};
    for (int it = 0; it < 2000000; it++) {
        size_t n = 4 + test_rng_u32(&rng) % 5;
        for (size_t k = 0; k < n; k++) s[k] = pick[test_rng_u32(&rng) % sizeof pick];
        if (io_valid_utf8((const char *)s, n) != ref_valid_utf8(s, n)) mismatches++;
    }
    CHECKF(mismatches == 0, "%ld disagreements with the reference decoder", mismatches);
}

/* ---- JSON ---- */

static void test_parse_json(void) {
    badam_error err;
    json_t *j;
    const char *ok = "  {\"a\": [1, 2.5, \"x\"], \"b\": {\"c\": null}} \n\t ";
    CHECK_OK(io_parse_json(ok, strlen(ok), "ok.json", &j, &err), &err);
    CHECK(json_is_object(j));
    CHECK(json_array_size(json_object_get(j, "a")) == 3);
    json_decref(j);

    struct {
        const char *text;
        size_t n;
    } bad[] = {
        {"", 0},
        {"   \n", 4},
        {"{\"a\": }", 7},
        {"{\"a\": 1", 7},
        {"{} x", 4},
        {"{}{}", 4},
        {"[1,2]]", 6},
        {"{\"a\": 1}\0junk", 13},
        {"{\"a\xff\": 1}", 9},
        {"{\"\xED\xA0\x80\": 1}", 10},
        {"garbage", 7},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = (json_t *)1;
        badam_error_clear(&err);
        badam_status st = io_parse_json(bad[i].text, bad[i].n, "/some/dir/cfg.json", &j, &err);
        CHECKF(st == BADAM_E_FORMAT, "case %zu: status %d", i, (int)st);
        CHECKF(j == NULL, "case %zu: output not cleared", i);
        CHECKF(contains(err.message, "/some/dir/cfg.json"), "case %zu: '%s'", i, err.message);
    }
    /* The byte offset of a syntax error is reported. */
    const char *syntax = "{\"a\": 1, \"b\": @}";
    CHECK(io_parse_json(syntax, strlen(syntax), "s.json", &j, &err) == BADAM_E_FORMAT);
    CHECKF(contains(err.message, "byte 14"), "'%s'", err.message);

    /* Buffers without a terminating NUL must not be read past their end (ASan checks). */
    const char *texts[] = {"[1,2]", "[1,2", "{\"k\":\"v", "123", "\"abc", "{\"a\":12345"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        size_t n = strlen(texts[i]);
        char *buf = malloc(n);
        memcpy(buf, texts[i], n);
        badam_status st = io_parse_json(buf, n, "heap", &j, &err);
        CHECKF(st == (i == 0 || i == 3 ? BADAM_OK : BADAM_E_FORMAT), "heap case %zu", i);
        if (st == BADAM_OK) json_decref(j);
        free(buf);
    }
}

static void test_read_json(void) {
    const char *dir = test_workdir("files_json");
    badam_error err;
    json_t *j;
    const char *good = test_path_in(dir, "good.json");
    CHECK(test_write_raw(good, "{\"x\": 3}\n", 9) == 0);
    CHECK_OK(io_read_json(good, &j, &err), &err);
    CHECK(json_number_value(json_object_get(j, "x")) == 3.0);
    json_decref(j);

    const char *bad = test_path_in(dir, "bad.json");
    CHECK(test_write_raw(bad, "{\"x\": 3,}", 9) == 0);
    CHECK(io_read_json(bad, &j, &err) == BADAM_E_FORMAT);
    CHECKF(contains(err.message, bad), "'%s'", err.message);

    const char *missing = test_path_in(dir, "missing.json");
    CHECK(io_read_json(missing, &j, &err) == BADAM_E_IO);
    CHECKF(contains(err.message, missing), "'%s'", err.message);
}

/* ---- files ---- */

static void test_read_write(void) {
    const char *dir = test_workdir("files_rw");
    badam_error err;
    unsigned char data[10000];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 31 + 7);
    const char *p = test_path_in(dir, "blob.bin");
    CHECK_OK(io_write_file_atomic(p, data, sizeof data, &err), &err);
    char *got;
    size_t n;
    CHECK_OK(io_read_file(p, &got, &n, &err), &err);
    CHECK(n == sizeof data && memcmp(got, data, n) == 0);
    CHECK(got[n] == '\0');
    free(got);

    /* Overwrite with something shorter, then with nothing. */
    CHECK_OK(io_write_file_atomic(p, "short", 5, &err), &err);
    CHECK(file_equals(p, "short", 5));
    CHECK_OK(io_write_file_atomic(p, NULL, 0, &err), &err);
    CHECK(file_equals(p, "", 0));
    CHECK_OK(io_read_file(p, &got, &n, &err), &err);
    CHECK(n == 0 && got[0] == '\0');
    free(got);
    CHECK(count_temporaries(dir) == 0);

    CHECK(io_is_file(p) && !io_is_dir(p));
    CHECK(io_is_dir(dir) && !io_is_file(dir));
    CHECK(!io_is_file(test_path_in(dir, "nope")) && !io_is_dir(test_path_in(dir, "nope")));

    /* Reading a missing file or a folder fails with the path in the message. */
    const char *missing = test_path_in(dir, "missing");
    CHECK(io_read_file(missing, &got, &n, &err) == BADAM_E_IO);
    CHECKF(contains(err.message, missing), "'%s'", err.message);
    CHECK(io_read_file(dir, &got, &n, &err) == BADAM_E_IO);
    CHECKF(contains(err.message, dir), "'%s'", err.message);

    /* Copy. */
    const char *src = test_path_in(dir, "src.bin"), *dst = test_path_in(dir, "dst.bin");
    CHECK_OK(io_write_file_atomic(src, data, sizeof data, &err), &err);
    CHECK_OK(io_copy_file(src, dst, &err), &err);
    CHECK(file_equals(dst, data, sizeof data));
    CHECK(io_copy_file(missing, dst, &err) == BADAM_E_IO);
    CHECKF(contains(err.message, missing), "'%s'", err.message);
    CHECK(file_equals(dst, data, sizeof data));
    CHECK(count_temporaries(dir) == 0);
}

static void test_atomic_failures(void) {
    const char *dir = test_workdir("files_atomic");
    badam_error err;
    char missing_dir_path[4096];
    snprintf(missing_dir_path, sizeof missing_dir_path, "%s/no/such/dir/file.json", dir);
    CHECK(io_write_file_atomic(missing_dir_path, "x", 1, &err) == BADAM_E_IO);
    CHECKF(contains(err.message, missing_dir_path), "'%s'", err.message);

    /* The rename fails when the destination is a non-empty folder: temporary removed. */
    char target[4096];
    snprintf(target, sizeof target, "%s/occupied", dir);
    CHECK(mkdir(target, 0777) == 0);
    CHECK(test_write_raw(test_path_in(target, "inside"), "keep", 4) == 0);
    CHECK(io_write_file_atomic(target, "data", 4, &err) == BADAM_E_IO);
    CHECKF(contains(err.message, target), "'%s'", err.message);
    CHECK(io_is_dir(target) && file_equals(test_path_in(target, "inside"), "keep", 4));
    CHECK(count_temporaries(dir) == 0);

    /* A full disk, simulated with a file size limit (works as root too): every write is
     * checked, the original stays byte-identical, the temporary is removed. */
    const char *orig = test_path_in(dir, "orig.bin");
    CHECK(test_write_raw(orig, "original contents", 17) == 0);
    size_t big = 1 << 20;
    char *data = calloc(big, 1);
    struct rlimit old;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old;
    small.rlim_cur = 4096;
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    badam_status st = io_write_file_atomic(orig, data, big, &err);
    const char *src = test_path_in(dir, "big.bin");
    badam_status st_copy = BADAM_OK;
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    CHECK(test_write_raw(src, data, big) == 0);
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    st_copy = io_copy_file(src, orig, &err);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, old_handler);
    CHECKF(st == BADAM_E_IO, "status %d", (int)st);
    CHECKF(st_copy == BADAM_E_IO, "copy status %d", (int)st_copy);
    CHECKF(contains(err.message, orig), "'%s'", err.message);
    CHECK(file_equals(orig, "original contents", 17));
    CHECK(count_temporaries(dir) == 0);
    free(data);

    /* A read-only folder: cannot create the temporary. Root ignores permissions: skip then. */
    if (geteuid() != 0) {
        char ro[4096];
        snprintf(ro, sizeof ro, "%s/readonly", dir);
        CHECK(mkdir(ro, 0777) == 0);
        const char *kept = test_path_in(ro, "kept.json");
        CHECK(test_write_raw(kept, "{}", 2) == 0);
        CHECK(chmod(ro, 0555) == 0);
        CHECK(io_write_file_atomic(kept, "[1]", 3, &err) == BADAM_E_IO);
        CHECKF(contains(err.message, kept), "'%s'", err.message);
        CHECK(file_equals(kept, "{}", 2));
        CHECK(chmod(ro, 0777) == 0);
        CHECK(count_temporaries(ro) == 0);
    } else {
        fprintf(stderr, "note: running as root, read-only folder case skipped\n");
    }
}

static void test_make_dir(void) {
    const char *dir = test_workdir("files_mkdir");
    badam_error err;
    char nested[4096];
    snprintf(nested, sizeof nested, "%s/a/b//c/", dir);
    CHECK_OK(io_make_dir(nested, &err), &err);
    CHECK(io_is_dir(test_path_in(dir, "a/b/c")));
    CHECK_OK(io_make_dir(nested, &err), &err); /* already there */
    CHECK(test_write_raw(test_path_in(dir, "file"), "x", 1) == 0);
    char through[4096];
    snprintf(through, sizeof through, "%s/file/sub", dir);
    CHECK(io_make_dir(through, &err) == BADAM_E_IO);
    CHECKF(contains(err.message, through), "'%s'", err.message);
    CHECK(io_make_dir("", &err) == BADAM_E_INVALID);
}

int main(void) {
    RUN_TEST(test_utf8_cases);
    RUN_TEST(test_utf8_exhaustive);
    RUN_TEST(test_parse_json);
    RUN_TEST(test_read_json);
    RUN_TEST(test_read_write);
    RUN_TEST(test_atomic_failures);
    RUN_TEST(test_make_dir);
    return test_result();
}
