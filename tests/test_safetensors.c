/* Safetensors: bit-exact round trips, sharded folders and re-saves, a corpus of broken and
 * hostile files (each must fail with the right status and a message naming the file and the
 * tensor), random mutations (must never crash), and atomic-write failure handling. */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/files.h"
#include "io/safetensors.h"
#include "testutil.h"

/* ---- helpers ---- */

/* A safetensors file from a header string, with a given header length field (normally the
 * header's own length) and data_len bytes of data. */
static int write_st_raw(const char *path, uint64_t len_field, const char *header, size_t data_len) {
    size_t hn = strlen(header);
    size_t n = 8 + hn + data_len;
    unsigned char *buf = calloc(n, 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(len_field >> (8 * i));
    memcpy(buf + 8, header, hn);
    for (size_t i = 0; i < data_len; i++) buf[8 + hn + i] = (unsigned char)(i * 13 + 1);
    int rc = test_write_raw(path, buf, n);
    free(buf);
    return rc;
}

static int write_st(const char *path, const char *header, size_t data_len) {
    return write_st_raw(path, strlen(header), header, data_len);
}

static char *slurp(const char *path, size_t *n) {
    char *data = NULL;
    badam_error err;
    if (io_read_file(path, &data, n, &err) != BADAM_OK) return NULL;
    return data;
}

static int files_identical(const char *a, const char *b) {
    size_t na, nb;
    char *da = slurp(a, &na), *db = slurp(b, &nb);
    int same = da && db && na == nb && memcmp(da, db, na) == 0;
    free(da);
    free(db);
    return same;
}

static int count_matching(const char *dir, const char *needle) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, needle)) n++;
    closedir(d);
    return n;
}

static int contains(const char *haystack, const char *needle) {
    return strstr(haystack, needle) != NULL;
}

static size_t entry_nbytes(const st_entry *e) {
    size_t n = badam_dtype_size(e->dtype);
    for (int d = 0; d < e->ndim; d++) n *= (size_t)e->shape[d];
    return n;
}

/* Checks that t matches e exactly (dtype, shape, bytes). */
static void check_tensor_equals(const st_tensor *t, const st_entry *e) {
    CHECKF(t != NULL, "tensor '%s' not found", e->name);
    if (!t) return;
    CHECKF(!strcmp(t->name, e->name), "'%s' vs '%s'", t->name, e->name);
    CHECKF(t->dtype == e->dtype, "'%s': dtype", e->name);
    CHECKF(t->ndim == e->ndim, "'%s': ndim %d vs %d", e->name, t->ndim, e->ndim);
    size_t numel = 1;
    for (int d = 0; d < e->ndim && d < t->ndim; d++) {
        CHECKF(t->shape[d] == e->shape[d], "'%s': shape[%d]", e->name, d);
        numel *= (size_t)e->shape[d];
    }
    CHECKF(t->numel == numel, "'%s': numel %zu vs %zu", e->name, t->numel, numel);
    CHECKF(t->nbytes == entry_nbytes(e), "'%s': nbytes", e->name);
    if (t->nbytes == entry_nbytes(e) && t->nbytes)
        CHECKF(memcmp(t->data, e->data, t->nbytes) == 0, "'%s': bytes differ", e->name);
}

/* ---- round trip ---- */

#define N_RT 8

typedef struct rt_data {
    float f32[12], one[1], scalar[1];
    uint16_t bf16[30], f16[7], wide[5];
    st_entry entries[N_RT];
} rt_data;

/* Tensors of all three dtypes, including a scalar, zero-element tensors, and names that need
 * JSON escaping. Data includes NaN payloads, infinities, -0 and subnormals: bits must survive. */
static void make_rt(rt_data *r) {
    test_rng rng;
    test_rng_seed(&rng, 42);
    test_fill_normal(&rng, r->f32, 12, 1.0f);
    uint32_t nan_bits = 0x7fc01234u, neg_zero = 0x80000000u, sub = 0x00000003u;
    memcpy(&r->f32[0], &nan_bits, 4);
    memcpy(&r->f32[1], &neg_zero, 4);
    memcpy(&r->f32[2], &sub, 4);
    r->one[0] = 1.0f / 3.0f;
    r->scalar[0] = -7.25f;
    for (int i = 0; i < 30; i++) r->bf16[i] = (uint16_t)test_rng_u32(&rng);
    for (int i = 0; i < 7; i++) r->f16[i] = (uint16_t)test_rng_u32(&rng);
    r->f16[0] = 0x7c00; /* +inf */
    r->f16[1] = 0x7e01; /* NaN with payload */
    for (int i = 0; i < 5; i++) r->wide[i] = (uint16_t)(0x3c00 + i);
    st_entry e[N_RT] = {
        {"model.layers.0.mlp.weight", BADAM_DTYPE_F32, 2, {3, 4}, r->f32},
        {"emb\"ed\\ding.\xC3\xA9\t", BADAM_DTYPE_BF16, 3, {2, 3, 5}, r->bf16},
        {"a.f16", BADAM_DTYPE_F16, 1, {7}, r->f16},
        {"scalar", BADAM_DTYPE_F32, 0, {0}, r->scalar},
        {"empty.bf16", BADAM_DTYPE_BF16, 2, {0, 4}, NULL},
        {"empty.f16", BADAM_DTYPE_F16, 3, {3, 0, 2}, r->f16},
        {"one", BADAM_DTYPE_F32, 1, {1}, r->one},
        {"z.last", BADAM_DTYPE_F16, 4, {1, 5, 1, 1}, r->wide},
    };
    memcpy(r->entries, e, sizeof e);
}

static uint64_t read_u64_le(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void test_round_trip(void) {
    const char *dir = test_workdir("st_round_trip");
    badam_error err;
    static rt_data r;
    make_rt(&r);
    const char *path = test_path_in(dir, "model.safetensors");
    CHECK_OK(st_write(path, r.entries, N_RT, &err), &err);

    st_file *f;
    CHECK_OK(st_open(path, &f, &err), &err);
    CHECK(f->n_tensors == N_RT);
    for (int i = 0; i < N_RT; i++)
        check_tensor_equals(st_find(f, r.entries[i].name), &r.entries[i]);
    for (size_t i = 1; i < f->n_tensors; i++)
        CHECK(strcmp(f->tensors[i - 1].name, f->tensors[i].name) < 0);
    CHECK(st_find(f, "missing") == NULL);
    CHECK(st_find(f, "") == NULL);

    /* The header: padded to 8, metadata first with format pt, offsets contiguous in order. */
    size_t n;
    unsigned char *raw = (unsigned char *)slurp(path, &n);
    CHECK(raw && n >= 8);
    uint64_t hlen = read_u64_le(raw);
    CHECK(hlen % 8 == 0 && 8 + hlen <= n);
    CHECK(!memcmp(raw + 8, "{\"__metadata__\":{\"format\":\"pt\"}", 31));
    for (uint64_t i = 0; i < hlen; i++) /* strict JSON: control characters escaped */
        CHECKF(raw[8 + i] >= 0x20, "raw control byte 0x%02x in the header", raw[8 + i]);
    CHECK(raw[8 + hlen - 1] == ' ' || raw[8 + hlen - 1] == '}');
    json_t *h;
    CHECK_OK(io_parse_json((char *)raw + 8, hlen, "header", &h, &err), &err);
    const json_t *meta = json_object_get(h, "__metadata__");
    CHECK(meta && !strcmp(json_string_value(json_object_get(meta, "format")), "pt"));
    void *it = json_object_iter(h); /* in file order */
    CHECK(it && !strcmp(json_object_iter_key(it), "__metadata__"));
    uint64_t expect_begin = 0;
    it = it ? json_object_iter_next(h, it) : NULL;
    for (int i = 0; i < N_RT; i++, it = it ? json_object_iter_next(h, it) : NULL) {
        CHECKF(it && !strcmp(json_object_iter_key(it), r.entries[i].name), "entry %d out of order",
               i);
        if (!it) break;
        const json_t *off = json_object_get(json_object_iter_value(it), "data_offsets");
        CHECK((uint64_t)json_integer_value(json_array_get(off, 0)) == expect_begin);
        expect_begin += entry_nbytes(&r.entries[i]);
        CHECK((uint64_t)json_integer_value(json_array_get(off, 1)) == expect_begin);
    }
    CHECK(8 + hlen + expect_begin == n);
    json_decref(h);
    free(raw);

    /* Writing the opened file back (data straight from the mapping) gives the same bytes. */
    st_entry again[N_RT];
    for (size_t i = 0; i < f->n_tensors; i++) {
        const st_tensor *t = st_find(f, r.entries[i].name);
        again[i] = (st_entry){t->name, t->dtype, t->ndim, {0}, t->data};
        memcpy(again[i].shape, t->shape, sizeof t->shape);
    }
    const char *path2 = test_path_in(dir, "again.safetensors");
    CHECK_OK(st_write(path2, again, N_RT, &err), &err);
    CHECK(files_identical(path, path2));
    /* Overwriting the very file that is mapped works too (new inode, old mapping intact). */
    CHECK_OK(st_write(path, again, N_RT, &err), &err);
    CHECK(files_identical(path, path2));
    st_close(f);

    /* No tensors at all: a header with only metadata and an empty data section. */
    const char *empty = test_path_in(dir, "empty.safetensors");
    CHECK_OK(st_write(empty, NULL, 0, &err), &err);
    CHECK_OK(st_open(empty, &f, &err), &err);
    CHECK(f->n_tensors == 0 && st_find(f, "x") == NULL);
    st_close(f);
    CHECK(count_matching(dir, ".tmp.") == 0);
}

/* Files written by other tools: padding, metadata, holes, zero-element tensors, no data. */
static void test_valid_variants(void) {
    const char *dir = test_workdir("st_valid");
    badam_error err;
    st_file *f;
    struct {
        const char *header;
        size_t data;
        size_t n_tensors;
    } cases[] = {
        {"{}", 0, 0},
        {"{}        ", 0, 0},
        {"{\"__metadata__\":{\"a\":\"b\",\"c\":\"\"}}", 0, 0},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}     ", 8, 1},
        {" {\"w\":{\"shape\":[2],\"data_offsets\":[0,8],\"dtype\":\"F32\",\"extra\":1}}", 8, 1},
        {"{\"z\":{\"dtype\":\"F16\",\"shape\":[0,9007199254740991],\"data_offsets\":[0,0]}}", 0, 1},
        /* a zero-byte tensor inside another's range shares no byte with it */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"BF16\",\"shape\":[0],\"data_offsets\":[4,4]}}",
         8, 2},
        /* unused bytes between tensors */
        {"{\"a\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[6,8]},"
         "\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,2]}}",
         10, 2},
        {"{\"s\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[0,2]}}", 2, 1},
        /* HF's I64 position_ids buffer (BERT / RoBERTa embeddings) is skipped */
        {"{\"e.position_ids\":{\"dtype\":\"I64\",\"shape\":[1,2],\"data_offsets\":[0,16]},"
         "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]}}",
         20, 1},
        {"{\"\\u00e9\\n\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = test_path_in(dir, "v.safetensors");
        CHECK(write_st(p, cases[i].header, cases[i].data) == 0);
        badam_status st = st_open(p, &f, &err);
        CHECKF(st == BADAM_OK, "valid case %zu rejected: %s", i, err.message);
        if (st != BADAM_OK) continue;
        CHECKF(f->n_tensors == cases[i].n_tensors, "case %zu: %zu tensors", i, f->n_tensors);
        st_close(f);
    }
    /* Names decoded from escapes are found by their decoded spelling. */
    CHECK_OK(st_open(test_path_in(dir, "v.safetensors"), &f, &err), &err);
    const st_tensor *t = st_find(f, "\xC3\xA9\n");
    CHECK(t && t->numel == 1 && t->nbytes == 4 && t->ndim == 1);
    st_close(f);
}

/* ---- hostile files ---- */

typedef struct bad_case {
    const char *label;
    const char *header;
    size_t data;
    badam_status expect;
    const char *mention; /* a tensor name (or other text) the message must contain, or NULL */
} bad_case;

#define T_(dtype, shape, offsets)                                                                  \
    "{\"dtype\":" dtype ",\"shape\":" shape ",\"data_offsets\":" offsets "}"

static const bad_case bad_cases[] = {
    {"header not JSON", "this is not json", 0, BADAM_E_FORMAT, NULL},
    {"header JSON array", "[1,2,3]", 0, BADAM_E_FORMAT, NULL},
    {"header JSON string", "\"x\"", 0, BADAM_E_FORMAT, NULL},
    {"header truncated", "{\"w\":{\"dtype\":\"F32\"", 0, BADAM_E_FORMAT, NULL},
    {"trailing garbage", "{}  x", 0, BADAM_E_FORMAT, NULL},
    {"empty header", "", 4, BADAM_E_FORMAT, NULL},
    {"non-UTF-8 header", "{\"w\xff\xfe\":" T_("\"F32\"", "[1]", "[0,4]") "}", 4, BADAM_E_FORMAT,
     NULL},
    {"overlong in name", "{\"\xC0\xAE\xC0\xAE\":" T_("\"F32\"", "[1]", "[0,4]") "}", 4,
     BADAM_E_FORMAT, NULL},
    {"surrogate in name", "{\"w\xED\xA0\x80\":" T_("\"F32\"", "[1]", "[0,4]") "}", 4,
     BADAM_E_FORMAT, NULL},
    {"entry not object", "{\"model.norm.weight\": 3}", 0, BADAM_E_FORMAT, "model.norm.weight"},
    {"control bytes in name", "{\"w\\u001b[2J\": 3}", 0, BADAM_E_FORMAT, "'w?[2J'"},
    {"entry array", "{\"w.arr\": [1]}", 0, BADAM_E_FORMAT, "w.arr"},
    {"dtype missing", "{\"w.nodtype\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, BADAM_E_FORMAT,
     "w.nodtype"},
    {"shape missing", "{\"w.noshape\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
     BADAM_E_FORMAT, "w.noshape"},
    {"offsets missing", "{\"w.nooff\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, BADAM_E_FORMAT,
     "w.nooff"},
    {"dtype I64", "{\"w.i64\":" T_("\"I64\"", "[1]", "[0,8]") "}", 8, BADAM_E_UNSUPPORTED, "I64"},
    /* a position_ids buffer whose offsets do not span its shape is not skipped */
    {"position_ids span", "{\"e.position_ids\":" T_("\"I64\"", "[2]", "[0,8]") "}", 8,
     BADAM_E_UNSUPPORTED, "position_ids"},
    {"dtype F64", "{\"w.f64\":" T_("\"F64\"", "[1]", "[0,8]") "}", 8, BADAM_E_UNSUPPORTED, "w.f64"},
    {"dtype U8", "{\"w.u8\":" T_("\"U8\"", "[1]", "[0,1]") "}", 1, BADAM_E_UNSUPPORTED, "w.u8"},
    {"dtype lower case", "{\"w.lc\":" T_("\"f32\"", "[1]", "[0,4]") "}", 4, BADAM_E_UNSUPPORTED,
     "w.lc"},
    {"dtype number", "{\"w.dnum\":" T_("5", "[1]", "[0,4]") "}", 4, BADAM_E_FORMAT, "w.dnum"},
    {"dtype twice",
     "{\"w.dd\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     BADAM_E_FORMAT, "w.dd"},
    {"shape negative", "{\"w.neg\":" T_("\"F32\"", "[-1]", "[0,4]") "}", 4, BADAM_E_FORMAT,
     "w.neg"},
    {"shape fractional", "{\"w.frac\":" T_("\"F32\"", "[1.5]", "[0,4]") "}", 4, BADAM_E_FORMAT,
     "w.frac"},
    {"shape string", "{\"w.sstr\":" T_("\"F32\"", "[\"1\"]", "[0,4]") "}", 4, BADAM_E_FORMAT,
     "w.sstr"},
    {"shape not array", "{\"w.snum\":" T_("\"F32\"", "4", "[0,16]") "}", 16, BADAM_E_FORMAT,
     "w.snum"},
    {"shape 9 dims", "{\"w.nine\":" T_("\"F32\"", "[1,1,1,1,1,1,1,1,1]", "[0,4]") "}", 4,
     BADAM_E_FORMAT, "w.nine"},
    {"shape huge value", "{\"w.1e300\":" T_("\"F32\"", "[1e300]", "[0,4]") "}", 4, BADAM_E_FORMAT,
     "w.1e300"},
    {"shape above 2^53", "{\"w.big\":" T_("\"F32\"", "[0,18014398509481984]", "[0,0]") "}", 0,
     BADAM_E_FORMAT, "w.big"},
    {"shape product overflow",
     "{\"w.ovf\":" T_("\"F32\"", "[1099511627776,1099511627776]", "[0,4]") "}", 4, BADAM_E_FORMAT,
     "w.ovf"},
    {"byte size overflow", "{\"w.bovf\":" T_("\"F32\"", "[4611686018427387,1024]", "[0,4]") "}", 4,
     BADAM_E_FORMAT, "w.bovf"},
    {"offsets out of range", "{\"model.norm.weight\":" T_("\"F32\"", "[100]", "[0,400]") "}", 6,
     BADAM_E_FORMAT, "model.norm.weight"},
    {"offsets begin > end", "{\"w.rev\":" T_("\"F32\"", "[1]", "[8,4]") "}", 8, BADAM_E_FORMAT,
     "w.rev"},
    {"offsets 3 entries", "{\"w.three\":" T_("\"F32\"", "[1]", "[0,4,8]") "}", 8, BADAM_E_FORMAT,
     "w.three"},
    {"offsets 1 entry", "{\"w.one\":" T_("\"F32\"", "[0]", "[0]") "}", 0, BADAM_E_FORMAT, "w.one"},
    {"offsets negative", "{\"w.noff\":" T_("\"F32\"", "[1]", "[-4,0]") "}", 4, BADAM_E_FORMAT,
     "w.noff"},
    {"offsets fractional", "{\"w.foff\":" T_("\"F32\"", "[1]", "[0.5,4.5]") "}", 8, BADAM_E_FORMAT,
     "w.foff"},
    {"offsets strings", "{\"w.soff\":" T_("\"F32\"", "[1]", "[\"0\",\"4\"]") "}", 4, BADAM_E_FORMAT,
     "w.soff"},
    {"offsets object", "{\"w.ooff\":" T_("\"F32\"", "[1]", "{\"a\":0,\"b\":4}") "}", 4,
     BADAM_E_FORMAT, "w.ooff"},
    {"offsets above 2^53",
     "{\"w.hoff\":" T_("\"F32\"", "[1]",
                       "[18446744073709551612,"
                       "18446744073709551616]") "}",
     4, BADAM_E_FORMAT, "w.hoff"},
    {"offsets infinite", "{\"w.inf\":" T_("\"F32\"", "[1]", "[0,1e400]") "}", 4, BADAM_E_FORMAT,
     "w.inf"},
    {"length != numel*size", "{\"w.len\":" T_("\"F32\"", "[2]", "[0,4]") "}", 8, BADAM_E_SHAPE,
     "w.len"},
    {"length != numel*size bf16", "{\"w.bf\":" T_("\"BF16\"", "[2,2]", "[0,4]") "}", 8,
     BADAM_E_SHAPE, "w.bf"},
    {"overlapping tensors",
     "{\"t.first\":" T_("\"F32\"", "[2]", "[0,8]") ",\"t.second\":" T_("\"F32\"", "[2]",
                                                                       "[4,12]") "}",
     12, BADAM_E_FORMAT, "t.second"},
    {"same range twice",
     "{\"t.a\":" T_("\"F32\"", "[1]", "[0,4]") ",\"t.b\":" T_("\"F32\"", "[1]", "[0,4]") "}", 4,
     BADAM_E_FORMAT, "t.a"},
    {"contained overlap",
     "{\"t.big\":" T_("\"BF16\"", "[8]", "[0,16]") ",\"t.mid\":" T_(
         "\"BF16\"", "[1]", "[2,4]") ",\"t.end\":" T_("\"BF16\"", "[1]", "[14,16]") "}",
     16, BADAM_E_FORMAT, "t.big"},
    {"duplicate names",
     "{\"w.dup\":" T_("\"F32\"", "[1]", "[0,4]") ",\"w.dup\":" T_("\"F32\"", "[1]", "[4,8]") "}", 8,
     BADAM_E_FORMAT, "w.dup"},
    {"metadata non-string", "{\"__metadata__\":{\"format\":\"pt\",\"epoch\":3}}", 0, BADAM_E_FORMAT,
     "epoch"},
    {"metadata array", "{\"__metadata__\":[\"pt\"]}", 0, BADAM_E_FORMAT, "__metadata__"},
    {"metadata nested", "{\"__metadata__\":{\"a\":{\"b\":\"c\"}}}", 0, BADAM_E_FORMAT, NULL},
};

static void expect_open_fails(const char *path, badam_status expect, const char *mention,
                              const char *label) {
    st_file *f = (st_file *)1;
    badam_error err;
    badam_error_clear(&err);
    badam_status st = st_open(path, &f, &err);
    CHECKF(st == expect, "%s: status %s, expected %s (%s)", label, badam_status_name(st),
           badam_status_name(expect), err.message);
    CHECKF(f == NULL, "%s: output not cleared", label);
    if (st == BADAM_OK) {
        st_close(f);
        return;
    }
    CHECKF(contains(err.message, path), "%s: message lacks the path: '%s'", label, err.message);
    if (mention)
        CHECKF(contains(err.message, mention), "%s: message lacks '%s': '%s'", label, mention,
               err.message);
}

static void test_hostile_headers(void) {
    const char *dir = test_workdir("st_hostile");
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        char name[64];
        snprintf(name, sizeof name, "case%02zu.safetensors", i);
        const char *p = test_path_in(dir, name);
        CHECK(write_st(p, c->header, c->data) == 0);
        expect_open_fails(p, c->expect, c->mention, c->label);
    }
}

static void test_hostile_lengths(void) {
    const char *dir = test_workdir("st_lengths");
    const char *p = test_path_in(dir, "empty.safetensors");
    CHECK(test_write_raw(p, "", 0) == 0);
    expect_open_fails(p, BADAM_E_FORMAT, NULL, "empty file");

    p = test_path_in(dir, "five.safetensors");
    CHECK(test_write_raw(p, "\x02\0\0\0\0", 5) == 0);
    expect_open_fails(p, BADAM_E_FORMAT, NULL, "5-byte file");

    p = test_path_in(dir, "huge.safetensors");
    CHECK(write_st_raw(p, 1ull << 63, "{}", 0) == 0);
    expect_open_fails(p, BADAM_E_FORMAT, NULL, "header length 2^63");

    p = test_path_in(dir, "all_ones.safetensors");
    CHECK(write_st_raw(p, UINT64_MAX, "{}", 0) == 0);
    expect_open_fails(p, BADAM_E_FORMAT, NULL, "header length 2^64-1");

    p = test_path_in(dir, "beyond.safetensors");
    CHECK(write_st_raw(p, 100, "{\"__metadata__\":{}}", 10) == 0);
    expect_open_fails(p, BADAM_E_FORMAT, "100", "header length > file");

    p = test_path_in(dir, "one_over.safetensors");
    CHECK(write_st_raw(p, 3, "{}", 0) == 0);
    expect_open_fails(p, BADAM_E_FORMAT, NULL, "header length one past the end");

    p = test_path_in(dir, "zero.safetensors");
    CHECK(write_st_raw(p, 0, "{}", 0) == 0);
    expect_open_fails(p, BADAM_E_FORMAT, NULL, "header length 0");

    /* A header length above the limit inside a (sparse) file that is large enough. */
    p = test_path_in(dir, "limit.safetensors");
    CHECK(write_st_raw(p, (uint64_t)ST_MAX_HEADER_BYTES + 1, "{}", 0) == 0);
    CHECK(truncate(p, (off_t)ST_MAX_HEADER_BYTES + 64) == 0);
    expect_open_fails(p, BADAM_E_FORMAT, "104857601", "header over the limit");
    unlink(p);

    /* Deep nesting must not exhaust the stack. */
    p = test_path_in(dir, "deep.safetensors");
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 64);
    size_t k = (size_t)sprintf(deep, "{\"__metadata__\":");
    for (size_t i = 0; i < depth; i++) deep[k++] = '[';
    for (size_t i = 0; i < depth; i++) deep[k++] = ']';
    deep[k++] = '}';
    deep[k] = '\0';
    CHECK(write_st(p, deep, 0) == 0);
    free(deep);
    expect_open_fails(p, BADAM_E_FORMAT, NULL, "deep nesting");

    p = test_path_in(dir, "missing.safetensors");
    expect_open_fails(p, BADAM_E_IO, NULL, "missing file");
    expect_open_fails(dir, BADAM_E_IO, NULL, "a folder");
}

/* Random byte flips, insertions and truncations of a valid file: st_open either accepts the
 * result (and every tensor lies inside the mapping) or fails with the path in the message. */
static void test_mutations(void) {
    const char *dir = test_workdir("st_mutations");
    badam_error err;
    static rt_data r;
    make_rt(&r);
    const char *good = test_path_in(dir, "good.safetensors");
    CHECK_OK(st_write(good, r.entries, N_RT, &err), &err);
    size_t n;
    unsigned char *orig = (unsigned char *)slurp(good, &n);
    unsigned char *buf = malloc(n + 16);
    static const char tokens[] = "{}[],:\"0123456789-.eE \\u";
    test_rng rng;
    test_rng_seed(&rng, 1234);
    const char *p = test_path_in(dir, "mutant.safetensors");
    int accepted = 0, rejected = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(buf, orig, n);
        size_t len = n;
        int edits = 1 + (int)(test_rng_u32(&rng) % 3);
        for (int e = 0; e < edits && len > 0; e++) {
            uint32_t kind = test_rng_u32(&rng) % 4;
            size_t at = test_rng_u32(&rng) % len;
            if (kind == 0)
                buf[at] = (unsigned char)test_rng_u32(&rng);
            else if (kind == 1 && at >= 8)
                buf[at] = (unsigned char)tokens[test_rng_u32(&rng) % (sizeof tokens - 1)];
            else if (kind == 2)
                len = at;
            else if (at < 8)
                buf[at] ^= (unsigned char)(1u << (test_rng_u32(&rng) % 8));
        }
        CHECK(test_write_raw(p, buf, len) == 0);
        st_file *f;
        badam_status st = st_open(p, &f, &err);
        if (st == BADAM_OK) {
            accepted++;
            for (size_t i = 0; i < f->n_tensors; i++) {
                const st_tensor *t = &f->tensors[i];
                const char *lo = (const char *)f->map, *hi = lo + f->map_size;
                CHECK((const char *)t->data >= lo && (const char *)t->data + t->nbytes <= hi);
                volatile unsigned char sum = 0;
                for (size_t b = 0; b < t->nbytes; b++) sum ^= ((const unsigned char *)t->data)[b];
                (void)sum;
            }
            st_close(f);
        } else {
            rejected++;
            CHECKF(contains(err.message, p), "mutation %d: '%s'", it, err.message);
        }
    }
    CHECK(rejected > 0);
    fprintf(stderr, "  mutations: %d accepted, %d rejected\n", accepted, rejected);
    free(buf);
    free(orig);
}

/* ---- writer argument checks and atomicity ---- */

static void test_write_rejects(void) {
    const char *dir = test_workdir("st_write_rejects");
    badam_error err;
    float x[4] = {1, 2, 3, 4};
    const char *path = test_path_in(dir, "model.safetensors");
    st_entry good[2] = {{"a", BADAM_DTYPE_F32, 1, {4}, x}, {"b", BADAM_DTYPE_F32, 1, {2}, x}};
    CHECK_OK(st_write(path, good, 2, &err), &err);
    size_t n0;
    char *before = slurp(path, &n0);

    struct {
        const char *label;
        st_entry e[2];
        const char *mention;
    } bad[] = {
        {"duplicate names",
         {{"a", BADAM_DTYPE_F32, 1, {4}, x}, {"a", BADAM_DTYPE_F32, 1, {1}, x}},
         "'a'"},
        {"unknown dtype",
         {{"a", (badam_dtype)7, 1, {4}, x}, {"b", BADAM_DTYPE_F32, 1, {1}, x}},
         "'a'"},
        {"negative dim",
         {{"a", BADAM_DTYPE_F32, 1, {4}, x}, {"b.neg", BADAM_DTYPE_F32, 2, {2, -1}, x}},
         "b.neg"},
        {"ndim 9",
         {{"a", BADAM_DTYPE_F32, 1, {4}, x}, {"b.nine", BADAM_DTYPE_F32, 9, {1}, x}},
         "b.nine"},
        {"ndim -1",
         {{"a.m", BADAM_DTYPE_F32, -1, {4}, x}, {"b", BADAM_DTYPE_F32, 1, {1}, x}},
         "a.m"},
        {"overflow",
         {{"a.o", BADAM_DTYPE_F32, 3, {1 << 30, 1 << 30, 1 << 30}, x},
          {"b", BADAM_DTYPE_F32, 1, {1}, x}},
         "a.o"},
        {"metadata name",
         {{"__metadata__", BADAM_DTYPE_F32, 1, {1}, x}, {"b", BADAM_DTYPE_F32, 0, {0}, x}},
         "__metadata__"},
        {"NULL data",
         {{"a", BADAM_DTYPE_F32, 1, {4}, x}, {"b.null", BADAM_DTYPE_F32, 1, {1}, NULL}},
         "b.null"},
        {"NULL name",
         {{"a", BADAM_DTYPE_F32, 1, {4}, x}, {NULL, BADAM_DTYPE_F32, 1, {1}, x}},
         NULL},
        {"bad UTF-8 name",
         {{"a\xC0\x80", BADAM_DTYPE_F32, 1, {4}, x}, {"b", BADAM_DTYPE_F32, 1, {1}, x}},
         NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        badam_error_clear(&err);
        badam_status st = st_write(path, bad[i].e, 2, &err);
        CHECKF(st == BADAM_E_INVALID, "%s: status %s", bad[i].label, badam_status_name(st));
        CHECKF(contains(err.message, path), "%s: '%s'", bad[i].label, err.message);
        if (bad[i].mention)
            CHECKF(contains(err.message, bad[i].mention), "%s: '%s'", bad[i].label, err.message);
        size_t n1;
        char *after = slurp(path, &n1);
        CHECKF(after && n1 == n0 && !memcmp(before, after, n0), "%s: original changed",
               bad[i].label);
        free(after);
    }
    free(before);
    CHECK(count_matching(dir, ".tmp.") == 0);

    char nowhere[4096];
    snprintf(nowhere, sizeof nowhere, "%s/no/such/dir/model.safetensors", dir);
    CHECK(st_write(nowhere, good, 2, &err) == BADAM_E_IO);
    CHECKF(contains(err.message, nowhere), "'%s'", err.message);
}

/* A full disk, simulated with RLIMIT_FSIZE (effective for root too). */
typedef struct fsize_guard {
    struct rlimit old;
    void (*handler)(int);
} fsize_guard;

static void fsize_limit(fsize_guard *g, rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &g->old);
    g->handler = signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = g->old;
    lim.rlim_cur = bytes;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
}

static void fsize_restore(fsize_guard *g) {
    CHECK(setrlimit(RLIMIT_FSIZE, &g->old) == 0);
    signal(SIGXFSZ, g->handler);
}

static void test_write_full_disk(void) {
    const char *dir = test_workdir("st_full_disk");
    badam_error err;
    size_t big_n = 1 << 18;
    float *big = calloc(big_n, sizeof *big);
    float small[3] = {1, 2, 3};
    const char *path = test_path_in(dir, "model.safetensors");
    st_entry old_entries[1] = {{"w", BADAM_DTYPE_F32, 1, {3}, small}};
    CHECK_OK(st_write(path, old_entries, 1, &err), &err);
    const char *copy = test_path_in(dir, "copy");
    CHECK_OK(io_copy_file(path, copy, &err), &err);

    st_entry new_entries[2] = {{"w", BADAM_DTYPE_F32, 1, {3}, small},
                               {"big", BADAM_DTYPE_F32, 1, {(int64_t)big_n}, big}};
    fsize_guard g;
    fsize_limit(&g, 64 * 1024);
    badam_status st = st_write(path, new_entries, 2, &err);
    fsize_restore(&g);
    CHECKF(st == BADAM_E_IO, "status %s", badam_status_name(st));
    CHECKF(contains(err.message, path), "'%s'", err.message);
    CHECK(files_identical(path, copy));
    CHECK(count_matching(dir, ".tmp.") == 0);

    /* A folder save that fails half way: the old single file still opens with the old data,
     * and no new shard is left behind. */
    char mdir[4096];
    snprintf(mdir, sizeof mdir, "%s/model", dir);
    st_entry dir_old[1] = {{"w", BADAM_DTYPE_F32, 1, {3}, small}};
    CHECK_OK(st_write_dir(mdir, dir_old, 1, 0, &err), &err);
    st_entry shards[3] = {{"a", BADAM_DTYPE_F32, 1, {1024}, big},
                          {"b", BADAM_DTYPE_F32, 1, {(int64_t)big_n}, big},
                          {"c", BADAM_DTYPE_F32, 1, {1024}, big}};
    fsize_limit(&g, 64 * 1024);
    st = st_write_dir(mdir, shards, 3, 8192, &err);
    fsize_restore(&g);
    CHECKF(st == BADAM_E_IO, "status %s", badam_status_name(st));
    CHECK(count_matching(mdir, "-of-") == 0);
    CHECK(count_matching(mdir, ".tmp.") == 0);
    CHECK(!io_is_file(test_path_in(mdir, "model.safetensors.index.json")));
    st_set *set;
    CHECK_OK(st_set_open_dir(mdir, &set, &err), &err);
    CHECK(set->n_index == 1);
    check_tensor_equals(st_set_find(set, "w", NULL), &dir_old[0]);
    st_set_close(set);
    free(big);
}

/* ---- folders ---- */

#define N_SH 10

static void check_set(const char *dir, const st_entry *e, size_t n, size_t expect_files) {
    badam_error err;
    st_set *set;
    CHECK_OK(st_set_open_dir(dir, &set, &err), &err);
    CHECKF(set->n_files == expect_files, "%zu files, expected %zu", set->n_files, expect_files);
    CHECK(set->n_index == n);
    for (size_t i = 0; i < n; i++) {
        const st_file *file = NULL;
        const st_tensor *t = st_set_find(set, e[i].name, &file);
        check_tensor_equals(t, &e[i]);
        CHECK(file && st_find(file, e[i].name) == t);
    }
    CHECK(st_set_find(set, "nope", NULL) == NULL);
    for (size_t i = 1; i < set->n_index; i++)
        CHECK(strcmp(set->index[i - 1]->name, set->index[i]->name) < 0);
    st_set_close(set);
}

static void test_sharded(void) {
    const char *dir = test_workdir("st_sharded");
    badam_error err;
    static float data[N_SH][64];
    test_rng rng;
    test_rng_seed(&rng, 9);
    char names[N_SH][32];
    st_entry e[N_SH];
    for (int i = 0; i < N_SH; i++) {
        test_fill_normal(&rng, data[i], 64, 1.0f);
        snprintf(names[i], sizeof names[i], "layers.%d.w", (i * 7) % N_SH);
        e[i] = (st_entry){
            names[i], i % 3 == 0 ? BADAM_DTYPE_F32 : BADAM_DTYPE_BF16, 2, {4, 16}, data[i]};
        if (e[i].dtype != BADAM_DTYPE_F32) e[i].shape[1] = 32; /* same 256 bytes */
    }
    CHECK(test_write_raw(test_path_in(dir, "notes.txt"), "keep me", 7) == 0);

    /* 256 bytes per tensor, at most 700 per shard: 2 tensors each, 5 shards. */
    CHECK_OK(st_write_dir(dir, e, N_SH, 700, &err), &err);
    for (int s = 1; s <= 5; s++) {
        char name[64];
        snprintf(name, sizeof name, "model-%05d-of-00005.safetensors", s);
        CHECKF(io_is_file(test_path_in(dir, name)), "%s missing", name);
    }
    CHECK(!io_is_file(test_path_in(dir, "model.safetensors")));
    json_t *index;
    CHECK_OK(io_read_json(test_path_in(dir, "model.safetensors.index.json"), &index, &err), &err);
    const json_t *meta = json_object_get(index, "metadata");
    CHECK(meta && json_number_value(json_object_get(meta, "total_size")) == N_SH * 256.0);
    const json_t *map = json_object_get(index, "weight_map");
    CHECK(json_object_size(map) == N_SH);
    const json_t *first = json_object_get(map, names[0]);
    CHECK(first && !strcmp(json_string_value(first), "model-00001-of-00005.safetensors"));
    const json_t *last = json_object_get(map, names[N_SH - 1]);
    CHECK(last && !strcmp(json_string_value(last), "model-00005-of-00005.safetensors"));
    json_decref(index);
    check_set(dir, e, N_SH, 5);

    /* Re-saved as one file: the shards and the index go. */
    CHECK_OK(st_write_dir(dir, e, N_SH, 0, &err), &err);
    CHECK(io_is_file(test_path_in(dir, "model.safetensors")));
    CHECK(!io_is_file(test_path_in(dir, "model.safetensors.index.json")));
    CHECK(count_matching(dir, "-of-") == 0);
    check_set(dir, e, N_SH, 1);

    /* Everything fits in the limit: still one file. */
    CHECK_OK(st_write_dir(dir, e, N_SH, N_SH * 256, &err), &err);
    check_set(dir, e, N_SH, 1);

    /* Sharded again (3 shards), then with another count (4): only the latest shards remain. */
    CHECK_OK(st_write_dir(dir, e, N_SH, 1024, &err), &err);
    CHECK(!io_is_file(test_path_in(dir, "model.safetensors")));
    CHECK(count_matching(dir, "-of-00003.safetensors") == 3);
    check_set(dir, e, N_SH, 3);
    CHECK_OK(st_write_dir(dir, e, N_SH, 768, &err), &err);
    CHECK(count_matching(dir, "-of-00003.safetensors") == 0);
    CHECK(count_matching(dir, "-of-00004.safetensors") == 4);
    check_set(dir, e, N_SH, 4);
    CHECK(count_matching(dir, ".tmp.") == 0);
    CHECK(io_is_file(test_path_in(dir, "notes.txt")));

    /* A tensor larger than the limit gets a shard of its own; zero-byte tensors do not start
     * a new shard. */
    static uint16_t wide[600];
    st_entry mixed[4] = {{"m.small1", BADAM_DTYPE_BF16, 1, {50}, wide},
                         {"m.huge", BADAM_DTYPE_BF16, 1, {600}, wide},
                         {"m.empty", BADAM_DTYPE_F32, 1, {0}, NULL},
                         {"m.small2", BADAM_DTYPE_BF16, 1, {50}, wide}};
    char mdir[4096];
    snprintf(mdir, sizeof mdir, "%s/mixed", dir);
    CHECK_OK(st_write_dir(mdir, mixed, 4, 500, &err), &err);
    CHECK(count_matching(mdir, "-of-00003.safetensors") == 3);
    check_set(mdir, mixed, 4, 3);
    st_set *set;
    CHECK_OK(st_set_open_dir(mdir, &set, &err), &err);
    const st_file *f_huge, *f_empty;
    st_set_find(set, "m.huge", &f_huge);
    st_set_find(set, "m.empty", &f_empty);
    CHECK(f_huge && f_empty && f_huge == f_empty && contains(f_huge->path, "model-00002-of-00003"));
    st_set_close(set);

    /* A save with invalid entries changes nothing. */
    st_entry dup[2] = {e[0], e[0]};
    CHECK(st_write_dir(dir, dup, 2, 0, &err) == BADAM_E_INVALID);
    check_set(dir, e, N_SH, 4);
}

/* ---- hostile folders ---- */

static void expect_set_fails(const char *dir, badam_status expect, const char *m1, const char *m2,
                             const char *label) {
    st_set *set = (st_set *)1;
    badam_error err;
    badam_error_clear(&err);
    badam_status st = st_set_open_dir(dir, &set, &err);
    CHECKF(st == expect, "%s: status %s, expected %s (%s)", label, badam_status_name(st),
           badam_status_name(expect), err.message);
    CHECKF(set == NULL, "%s: output not cleared", label);
    if (st == BADAM_OK) {
        st_set_close(set);
        return;
    }
    if (m1) CHECKF(contains(err.message, m1), "%s: lacks '%s': '%s'", label, m1, err.message);
    if (m2) CHECKF(contains(err.message, m2), "%s: lacks '%s': '%s'", label, m2, err.message);
}

/* st_write_fetch's fetch: a copy that counts its calls and the largest chunk it was asked for. */
typedef struct fetch_log {
    size_t calls, largest;
} fetch_log;
static badam_status counting_fetch(void *ctx, void *host, const void *src, size_t bytes,
                                   badam_error *err) {
    (void)err;
    fetch_log *l = ctx;
    l->calls++;
    if (bytes > l->largest) l->largest = bytes;
    memcpy(host, src, bytes);
    return BADAM_OK;
}

/* st_write_fetch writes the file st_write writes, taking a tensor larger than ST_FETCH_CHUNK in
 * chunks of at most ST_FETCH_CHUNK bytes. */
static void test_write_fetch(void) {
    const char *dir = test_workdir("st-fetch");
    size_t big = ST_FETCH_CHUNK / 4 + 1000; /* floats: two chunks */
    float *a = malloc(big * sizeof *a), b[3] = {1.5f, -2.0f, 3.25f};
    for (size_t i = 0; a && i < big; i++) a[i] = (float)i * 0.5f;
    st_entry e[2] = {{"big", BADAM_DTYPE_F32, 1, {(int64_t)big}, a},
                     {"small", BADAM_DTYPE_F32, 1, {3}, b}};
    char *plain = test_path_in(dir, "plain.safetensors"),
         *fetched = test_path_in(dir, "fetched.safetensors");
    badam_error err = {0};
    fetch_log log = {0, 0};
    CHECK_OK(st_write(plain, e, 2, &err), &err);
    CHECK_OK(st_write_fetch(fetched, e, 2, counting_fetch, &log, &err), &err);
    CHECKF(log.calls == 3 && log.largest == ST_FETCH_CHUNK, "fetch: %zu calls, largest %zu bytes",
           log.calls, log.largest);
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    CHECK(!io_read_file(plain, &x, &nx, &err) && !io_read_file(fetched, &y, &ny, &err));
    CHECK(x && y && nx == ny && !memcmp(x, y, nx));
    free(x), free(y), free(a);
}

/* The files a/name and b/name hold the same bytes. */
static void check_same_bytes(const char *a, const char *b, const char *name) {
    char pa[2048], pb[2048], *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    badam_error err = {0};
    snprintf(pa, sizeof pa, "%s/%s", a, name);
    snprintf(pb, sizeof pb, "%s/%s", b, name);
    CHECKF(!io_read_file(pa, &x, &nx, &err) && !io_read_file(pb, &y, &ny, &err), "%s", err.message);
    CHECKF(x && y && nx == ny && !memcmp(x, y, nx), "%s and %s differ", pa, pb);
    free(x), free(y);
}

/* st_write_dir_fetch writes the folder st_write_dir writes, single file and sharded, every
 * tensor's bytes through fetch. */
static void test_write_dir_fetch(void) {
    const char *root = test_workdir("st-dir-fetch");
    float x[30];
    for (int i = 0; i < 30; i++) x[i] = (float)i - 7.5f;
    st_entry e[3] = {{"a", BADAM_DTYPE_F32, 1, {10}, x},
                     {"b", BADAM_DTYPE_F32, 2, {2, 5}, x + 10},
                     {"c", BADAM_DTYPE_F32, 1, {10}, x + 20}};
    const size_t limits[2] = {0, 64}; /* one file; three shards of 40 bytes */
    for (int k = 0; k < 2; k++) {
        char plain[1024], fetched[1024];
        snprintf(plain, sizeof plain, "%s/plain%d", root, k);
        snprintf(fetched, sizeof fetched, "%s/fetched%d", root, k);
        badam_error err = {0};
        fetch_log log = {0, 0};
        CHECK_OK(st_write_dir(plain, e, 3, limits[k], &err), &err);
        CHECK_OK(st_write_dir_fetch(fetched, e, 3, limits[k], counting_fetch, &log, &err), &err);
        CHECKF(log.calls == 3, "fetch: %zu calls", log.calls);
        if (k == 0) {
            check_same_bytes(plain, fetched, "model.safetensors");
            continue;
        }
        check_same_bytes(plain, fetched, "model.safetensors.index.json");
        for (int s = 1; s <= 3; s++) {
            char name[64];
            snprintf(name, sizeof name, "model-%05d-of-00003.safetensors", s);
            check_same_bytes(plain, fetched, name);
        }
    }
}

static void test_hostile_index(void) {
    const char *root = test_workdir("st_hostile_index");
    badam_error err;
    float x[2] = {1, 2};
    st_entry s1[2] = {{"t.a", BADAM_DTYPE_F32, 1, {1}, x}, {"t.b", BADAM_DTYPE_F32, 1, {1}, x}};
    st_entry s2[1] = {{"t.c", BADAM_DTYPE_F32, 1, {2}, x}};
    char dir[2048], index[4096];
    snprintf(dir, sizeof dir, "%s/m", root);
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir);
    CHECK(io_make_dir(dir, &err) == BADAM_OK);

    expect_set_fails(dir, BADAM_E_IO, dir, "model.safetensors", "empty folder");

    CHECK_OK(st_write(test_path_in(dir, "s1.safetensors"), s1, 2, &err), &err);
    CHECK_OK(st_write(test_path_in(dir, "s2.safetensors"), s2, 1, &err), &err);

    struct {
        const char *label;
        const char *json;
        badam_status expect;
        const char *m1, *m2;
    } cases[] = {
        {"index not JSON", "{\"weight_map\": {", BADAM_E_FORMAT, index, NULL},
        {"index array", "[]", BADAM_E_FORMAT, index, NULL},
        {"weight_map missing", "{\"metadata\": {}}", BADAM_E_FORMAT, index, "weight_map"},
        {"weight_map array", "{\"weight_map\": []}", BADAM_E_FORMAT, index, "weight_map"},
        {"weight_map empty", "{\"weight_map\": {}}", BADAM_E_FORMAT, index, "weight_map"},
        {"shard not string", "{\"weight_map\": {\"t.a\": 1}}", BADAM_E_FORMAT, index, "t.a"},
        {"shard ../",
         "{\"weight_map\": {\"t.a\": \"../m/s1.safetensors\", \"t.b\": \"s1.safetensors\"}}",
         BADAM_E_FORMAT, index, "../m/s1.safetensors"},
        {"shard absolute", "{\"weight_map\": {\"t.a\": \"/etc/passwd\"}}", BADAM_E_FORMAT, index,
         "/etc/passwd"},
        {"shard ..", "{\"weight_map\": {\"t.a\": \"..\"}}", BADAM_E_FORMAT, index, "t.a"},
        {"shard empty name", "{\"weight_map\": {\"t.a\": \"\"}}", BADAM_E_FORMAT, index, "t.a"},
        {"shard missing", "{\"weight_map\": {\"t.a\": \"gone.safetensors\"}}", BADAM_E_IO,
         "gone.safetensors", NULL},
        {"listed tensor missing",
         "{\"weight_map\": {\"t.a\": \"s1.safetensors\", \"t.b\": \"s1.safetensors\", "
         "\"t.c\": \"s2.safetensors\", \"t.zz\": \"s2.safetensors\"}}",
         BADAM_E_FORMAT, "t.zz", "s2.safetensors"},
        {"shard tensor not listed",
         "{\"weight_map\": {\"t.a\": \"s1.safetensors\", \"t.c\": \"s2.safetensors\"}}",
         BADAM_E_FORMAT, "t.b", "s1.safetensors"},
        {"listed under the wrong shard",
         "{\"weight_map\": {\"t.a\": \"s1.safetensors\", \"t.b\": \"s2.safetensors\", "
         "\"t.c\": \"s2.safetensors\"}}",
         BADAM_E_FORMAT, "t.b", "s2.safetensors"},
        {"listed twice",
         "{\"weight_map\": {\"t.a\": \"s1.safetensors\", \"t.b\": \"s1.safetensors\", "
         "\"t.a\": \"s1.safetensors\", \"t.c\": \"s2.safetensors\"}}",
         BADAM_E_FORMAT, "t.a", index},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(test_write_raw(index, cases[i].json, strlen(cases[i].json)) == 0);
        expect_set_fails(dir, cases[i].expect, cases[i].m1, cases[i].m2, cases[i].label);
    }

    /* A good index over the same shards opens. */
    const char *good = "{\"metadata\": {\"total_size\": 16}, \"weight_map\": {\"t.a\": "
                       "\"s1.safetensors\", \"t.b\": \"s1.safetensors\", \"t.c\": "
                       "\"s2.safetensors\"}}";
    CHECK(test_write_raw(index, good, strlen(good)) == 0);
    st_entry all[3] = {s1[0], s1[1], s2[0]};
    check_set(dir, all, 3, 2);

    /* A broken shard is reported with its own path. */
    CHECK(write_st(test_path_in(dir, "s2.safetensors"),
                   "{\"t.c\":" T_("\"I64\"", "[1]", "[0,8]") "}", 8) == 0);
    expect_set_fails(dir, BADAM_E_UNSUPPORTED, "s2.safetensors", "t.c", "broken shard");

    /* Two shards holding the same tensor (one name in the index cannot cover both). */
    st_entry two[2] = {s1[0], s2[0]};
    CHECK_OK(st_write(test_path_in(dir, "s2.safetensors"), two, 2, &err), &err);
    CHECK(test_write_raw(index, good, strlen(good)) == 0);
    expect_set_fails(dir, BADAM_E_FORMAT, "t.a", "s2.safetensors", "tensor in two shards");

    /* The single-file layout with a broken file. */
    char single[4096];
    snprintf(single, sizeof single, "%s/single", root);
    CHECK(io_make_dir(single, &err) == BADAM_OK);
    CHECK(test_write_raw(test_path_in(single, "model.safetensors"), "\x01\0\0", 3) == 0);
    expect_set_fails(single, BADAM_E_FORMAT, "model.safetensors", NULL, "broken single file");
}

int main(void) {
    RUN_TEST(test_round_trip);
    RUN_TEST(test_valid_variants);
    RUN_TEST(test_hostile_headers);
    RUN_TEST(test_hostile_lengths);
    RUN_TEST(test_mutations);
    RUN_TEST(test_write_rejects);
    RUN_TEST(test_write_full_disk);
    RUN_TEST(test_sharded);
    RUN_TEST(test_hostile_index);
    RUN_TEST(test_write_fetch);
    RUN_TEST(test_write_dir_fetch);
    return test_result();
}
