/* Parsers of safetensors, GGUF and .npy headers: valid generated files parse to what was
 * written; hostile ones (truncated, lying offsets, overlaps, shape/byte mismatches, absurd
 * dims, huge lengths, duplicate names, unknown dtypes) fail cleanly with a message naming the
 * problem. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "gen.h"
#include "store/parse.h"
#include "vt_test.h"

#define EXPECT_FAIL(expr, substr)                                                                  \
    do {                                                                                           \
        int rc__ = (expr);                                                                         \
        CHECKF(rc__ != 0, "%s should fail", #expr);                                                \
        CHECKF(strstr(vt_last_error(), substr) != NULL, "%s: message '%s' lacks '%s'", #expr,      \
               vt_last_error(), substr);                                                           \
    } while (0)

static const char *st_names[] = {"F32", "F16", "BF16", "F64", "I8",  "U8",   "I16",
                                 "I32", "I64", "U16",  "U32", "U64", "BOOL", "F8_E4M3"};
static const size_t st_sizes[] = {4, 2, 2, 8, 1, 1, 2, 4, 8, 2, 4, 8, 1, 1};
static const vt_dtype st_types[] = {VT_DTYPE_F32,  VT_DTYPE_F16,     VT_DTYPE_BF16, VT_DTYPE_F64,
                                    VT_DTYPE_I8,   VT_DTYPE_U8,      VT_DTYPE_I16,  VT_DTYPE_I32,
                                    VT_DTYPE_I64,  VT_DTYPE_U16,     VT_DTYPE_U32,  VT_DTYPE_U64,
                                    VT_DTYPE_BOOL, VT_DTYPE_FP8_E4M3};

static int st_parse(const gbuf *b, vt_src_file *f) {
    return vt_parse_safetensors_mem(b->p, b->n, b->n, "t.safetensors", f);
}

static void test_safetensors_valid(void) {
    for (int iter = 0; iter < 50; iter++) {
        int n = 1 + (int)(vt_rand_u64() % 6);
        gen_st_tensor t[6];
        char names[6][32];
        void *data[6];
        int kind[6];
        for (int i = 0; i < n; i++) {
            memset(&t[i], 0, sizeof t[i]);
            snprintf(names[i], sizeof names[i], "blk.%d.w\\u00e9%d", i, (int)(vt_rand_u64() % 100));
            kind[i] = (int)(vt_rand_u64() % 14);
            t[i].name = names[i];
            t[i].dtype = st_names[kind[i]];
            t[i].ndim = (uint32_t)(vt_rand_u64() % 4);
            uint64_t numel = 1;
            for (uint32_t d = 0; d < t[i].ndim; d++) {
                t[i].dims[d] = vt_rand_u64() % 6;
                numel *= t[i].dims[d];
            }
            t[i].nbytes = numel * st_sizes[kind[i]];
            data[i] = malloc(t[i].nbytes + 1);
            for (uint64_t k = 0; k < t[i].nbytes; k++)
                ((unsigned char *)data[i])[k] = (unsigned char)vt_rand_u64();
            t[i].data = data[i];
        }
        gbuf b = {0};
        gen_safetensors(&b, t, n, "{\"format\":\"pt\",\"note\":\"a\\\"b\\u00e9\"}");
        vt_src_file f;
        int rc = st_parse(&b, &f);
        CHECKF(rc == 0, "valid safetensors: %s", vt_last_error());
        if (!rc) {
            CHECK(f.n_tensors == (uint32_t)n);
            CHECK(f.kind == VT_SRC_SAFETENSORS);
            CHECK(f.n_kv == 2);
            if (f.n_kv == 2) {
                CHECK(!strcmp(f.kv[1].key, "note"));
                CHECK(f.kv[1].type == VT_GGUF_STRING && f.kv[1].val_len == 8 + 5);
                CHECK(!memcmp(f.kv[1].val + 8, "a\"b\xc3\xa9", 5));
            }
            for (int i = 0; i < n && i < (int)f.n_tensors; i++) {
                vt_src_tensor *s = &f.tensors[i];
                char want[40];
                snprintf(want, sizeof want, "%s", names[i]);
                char *u = strstr(want, "\\u00e9");
                memcpy(u, "\xc3\xa9", 2);
                memmove(u + 2, u + 6, strlen(u + 6) + 1);
                CHECKF(!strcmp(s->desc.name, want), "name '%s' vs '%s'", s->desc.name, want);
                CHECK(s->desc.dtype == st_types[kind[i]]);
                CHECK(s->desc.ndim == t[i].ndim);
                for (uint32_t d = 0; d < t[i].ndim; d++) CHECK(s->desc.dims[d] == t[i].dims[d]);
                CHECK(s->nbytes == t[i].nbytes);
                CHECK(s->offset + s->nbytes <= b.n);
                CHECK(!memcmp(b.p + s->offset, data[i], t[i].nbytes));
                CHECK(s->block_fmt == VT_FMT_COUNT);
            }
            vt_src_file_free(&f);
        }
        for (int i = 0; i < n; i++) free(data[i]);
        gb_free(&b);
    }
}

static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void st_raw(gbuf *b, const char *json, size_t data_bytes) {
    size_t n = strlen(json);
    gb_u64(b, n);
    gb_put(b, json, n);
    for (size_t i = 0; i < data_bytes; i++) gb_u8(b, (uint8_t)i);
}

static void test_safetensors_hostile(void) {
    vt_src_file f;
    gbuf b = {0};
    gen_st_tensor t[2] = {{"a", "F32", 2, {2, 3}, NULL, 24, 0, 0, 0},
                          {"b", "F16", 1, {4}, NULL, 8, 0, 0, 0}};
    gen_safetensors(&b, t, 2, NULL);
    /* truncated data region: cut anywhere inside the data */
    for (int k = 1; k <= 32; k++)
        EXPECT_FAIL(vt_parse_safetensors_mem(b.p, b.n - (size_t)k, b.n - (size_t)k, "t.st", &f),
                    "data region");
    /* truncated header */
    EXPECT_FAIL(vt_parse_safetensors_mem(b.p, 20, 20, "t.st", &f), "runs past the end");
    EXPECT_FAIL(vt_parse_safetensors_mem(b.p, 5, 5, "t.st", &f), "truncated");
    /* huge header length */
    gbuf h = {0};
    gb_put(&h, b.p, b.n);
    put_u64(h.p, 1ull << 40);
    EXPECT_FAIL(st_parse(&h, &f), "exceeds");
    put_u64(h.p, UINT64_MAX);
    EXPECT_FAIL(st_parse(&h, &f), "exceeds");
    gb_free(&h);
    gb_free(&b);
    /* file name appears in messages */
    st_raw(&b, "{\"a\":{\"dtype\":\"F7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    EXPECT_FAIL(st_parse(&b, &f), "t.safetensors: tensor 'a': unknown dtype 'F7'");
    gb_free(&b);
    /* lying offsets past the end */
    st_raw(&b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 16);
    EXPECT_FAIL(st_parse(&b, &f), "past the end of the data region");
    gb_free(&b);
    /* overlap */
    st_raw(&b,
           "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
           16);
    EXPECT_FAIL(st_parse(&b, &f), "overlap");
    gb_free(&b);
    /* shape x dtype != byte count */
    st_raw(&b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16);
    EXPECT_FAIL(st_parse(&b, &f), "needs 12");
    gb_free(&b);
    /* absurd dims */
    st_raw(&b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2199023255553],\"data_offsets\":[0,16]}}", 16);
    EXPECT_FAIL(st_parse(&b, &f), "2^40");
    gb_free(&b);
    st_raw(&b,
           "{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],"
           "\"data_offsets\":[0,16]}}",
           16);
    EXPECT_FAIL(st_parse(&b, &f), "overflows");
    gb_free(&b);
    st_raw(&b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,16]}}", 16);
    EXPECT_FAIL(st_parse(&b, &f), "dimension 0");
    gb_free(&b);
    st_raw(&b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
           4);
    EXPECT_FAIL(st_parse(&b, &f), "dimensions");
    gb_free(&b);
    /* duplicate names */
    st_raw(&b,
           "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
           "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
           8);
    EXPECT_FAIL(st_parse(&b, &f), "duplicate tensor name 'a'");
    gb_free(&b);
    /* end < begin, offsets overflowing u64 */
    st_raw(&b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8);
    EXPECT_FAIL(st_parse(&b, &f), "end 4 < begin 8");
    gb_free(&b);
    st_raw(&b,
           "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}",
           8);
    EXPECT_FAIL(st_parse(&b, &f), "not unsigned integers");
    gb_free(&b);
    /* malformed JSON and structure */
    st_raw(&b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4);
    EXPECT_FAIL(st_parse(&b, &f), "invalid JSON");
    gb_free(&b);
    st_raw(&b, "[1,2]", 0);
    EXPECT_FAIL(st_parse(&b, &f), "not a JSON object");
    gb_free(&b);
    st_raw(&b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4);
    EXPECT_FAIL(st_parse(&b, &f), "data_offsets");
    gb_free(&b);
    st_raw(&b, "{\"__metadata__\":{\"k\":1}}", 0);
    EXPECT_FAIL(st_parse(&b, &f), "not a string");
    gb_free(&b);
    {
        char deep[400];
        size_t k = 0;
        deep[k++] = '{';
        memcpy(deep + k, "\"a\":", 4);
        k += 4;
        for (int i = 0; i < 100; i++) deep[k++] = '[';
        for (int i = 0; i < 100; i++) deep[k++] = ']';
        deep[k++] = '}';
        deep[k] = 0;
        st_raw(&b, deep, 0);
        EXPECT_FAIL(st_parse(&b, &f), "nesting");
        gb_free(&b);
    }
    st_raw(&b, "{\"a\\ud800\":{}}", 0);
    EXPECT_FAIL(st_parse(&b, &f), "surrogate");
    gb_free(&b);
    /* valid: empty header and zero-sized tensors at the same offset */
    st_raw(&b,
           "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[1,0],\"data_offsets\":[0,0]}}",
           0);
    CHECK_RC(st_parse(&b, &f));
    vt_src_file_free(&f);
    gb_free(&b);
}

/* ---- GGUF ---- */

static void test_gguf_valid(void) {
    static const struct {
        uint32_t type, elems, bytes;
        uint32_t fmt;
    } ty[] = {{0, 1, 4, VT_FMT_COUNT},     {1, 1, 2, VT_FMT_COUNT},  {2, 32, 18, VT_FMT_Q4_0},
              {3, 32, 20, VT_FMT_Q4_1},    {8, 32, 34, VT_FMT_Q8_0}, {12, 256, 144, VT_FMT_Q4_K},
              {14, 256, 210, VT_FMT_Q6_K}, {30, 1, 2, VT_FMT_COUNT}};
    for (int iter = 0; iter < 40; iter++) {
        uint32_t version = 2 + (uint32_t)(iter & 1);
        uint64_t align = iter % 3 == 0 ? 64 : 32;
        gbuf kv = {0};
        uint64_t nkv = 0;
        const char *toks[] = {"<s>", "</s>", "hello", "\xc4\xa0world", ""};
        kv_string(&kv, "general.architecture", "llama"), nkv++;
        kv_u32(&kv, "llama.block_count", 30), nkv++;
        kv_f32(&kv, "llama.rope.freq_base", 10000.0f), nkv++;
        kv_str_array(&kv, "tokenizer.ggml.tokens", toks, 5), nkv++;
        if (align != 32) kv_u32(&kv, "general.alignment", (uint32_t)align), nkv++;
        /* every scalar type, and an array of u16 and a nested array */
        for (uint32_t st = 0; st <= 12; st++) {
            if (st == 8 || st == 9) continue;
            char k[32];
            snprintf(k, sizeof k, "test.scalar%u", st);
            gb_str(&kv, k);
            gb_u32(&kv, st);
            size_t sz = st <= 1 || st == 7 ? 1 : st <= 3 ? 2 : st <= 6 ? 4 : 8;
            gb_le(&kv, 1, (int)sz);
            nkv++;
        }
        gb_str(&kv, "test.arr_u16");
        gb_u32(&kv, 9);
        gb_u32(&kv, 2);
        gb_u64(&kv, 3);
        gb_le(&kv, 7, 2), gb_le(&kv, 8, 2), gb_le(&kv, 9, 2);
        nkv++;
        gb_str(&kv, "test.nested");
        gb_u32(&kv, 9);
        gb_u32(&kv, 9);
        gb_u64(&kv, 2);
        for (int a = 0; a < 2; a++) {
            gb_u32(&kv, 4);
            gb_u64(&kv, 1);
            gb_u32(&kv, (uint32_t)a);
        }
        nkv++;
        int n = 1 + (int)(vt_rand_u64() % 5);
        gen_gguf_tensor t[5];
        char names[5][32];
        void *data[5];
        int k[5];
        for (int i = 0; i < n; i++) {
            k[i] = (int)(vt_rand_u64() % 8);
            snprintf(names[i], sizeof names[i], "blk.%d.attn_q.weight", i);
            t[i].name = names[i];
            t[i].type = ty[k[i]].type;
            t[i].ndim = 1 + (uint32_t)(vt_rand_u64() % 3);
            t[i].ne[0] = ty[k[i]].elems * (1 + vt_rand_u64() % 3);
            uint64_t numel = t[i].ne[0];
            for (uint32_t d = 1; d < t[i].ndim; d++) {
                t[i].ne[d] = 1 + vt_rand_u64() % 4;
                numel *= t[i].ne[d];
            }
            t[i].nbytes = numel / ty[k[i]].elems * ty[k[i]].bytes;
            data[i] = malloc(t[i].nbytes);
            for (uint64_t j = 0; j < t[i].nbytes; j++)
                ((unsigned char *)data[i])[j] = (unsigned char)vt_rand_u64();
            t[i].data = data[i];
        }
        gbuf b = {0};
        gen_gguf(&b, version, &kv, nkv, t, n, align);
        vt_src_file f;
        int rc = vt_parse_gguf_mem(b.p, b.n, b.n, "m.gguf", &f);
        CHECKF(rc == 0, "valid gguf: %s", vt_last_error());
        uint64_t data_end = 0; /* bytes after it are only alignment padding */
        if (!rc) {
            CHECK(f.version == version && f.alignment == align);
            CHECK(f.n_kv == nkv && f.n_tensors == (uint32_t)n);
            CHECK(!strcmp(f.kv[3].key, "tokenizer.ggml.tokens") && f.kv[3].type == VT_GGUF_ARRAY);
            /* value bytes = u32 type, u64 count, strings */
            uint64_t want = 12;
            for (int s = 0; s < 5; s++) want += 8 + strlen(toks[s]);
            CHECK(f.kv[3].val_len == want);
            CHECK(f.kv[0].val_len == 8 + 5 && !memcmp(f.kv[0].val + 8, "llama", 5));
            for (int i = 0; i < n; i++) {
                vt_src_tensor *s = &f.tensors[i];
                CHECK(!strcmp(s->desc.name, names[i]));
                CHECK(s->desc.ndim == t[i].ndim);
                for (uint32_t d = 0; d < t[i].ndim; d++)
                    CHECK(s->desc.dims[d] == t[i].ne[t[i].ndim - 1 - d]);
                CHECK(s->ggml_type == t[i].type && s->block_fmt == ty[k[i]].fmt);
                CHECK(s->nbytes == t[i].nbytes && s->offset % align == 0);
                CHECK(!memcmp(b.p + s->offset, data[i], t[i].nbytes));
                if (s->offset + s->nbytes > data_end) data_end = s->offset + s->nbytes;
            }
            vt_src_file_free(&f);
        }
        /* every truncation of this valid file fails cleanly */
        for (int c = 0; c < 20; c++) {
            size_t cut = (size_t)(vt_rand_u64() % data_end);
            rc = vt_parse_gguf_mem(b.p, cut, cut, "m.gguf", &f);
            CHECKF(rc != 0, "truncated gguf at %zu of %zu parsed", cut, b.n);
            if (!rc) vt_src_file_free(&f);
        }
        for (int i = 0; i < n; i++) free(data[i]);
        gb_free(&b);
        gb_free(&kv);
    }
}

static void gguf_head(gbuf *b, uint32_t version, uint64_t nt, uint64_t nkv) {
    gb_put(b, "GGUF", 4);
    gb_u32(b, version);
    gb_u64(b, nt);
    gb_u64(b, nkv);
}

static int gguf_parse(const gbuf *b, vt_src_file *f) {
    return vt_parse_gguf_mem(b->p, b->n, b->n, "m.gguf", f);
}

/* one tensor info + data region; @p off, @p type, @p ne0 chosen by the caller */
static void gguf_one(gbuf *b, const char *name, uint32_t type, uint64_t ne0, uint64_t ne1,
                     uint64_t off, size_t data) {
    gb_str(b, name);
    gb_u32(b, 2);
    gb_u64(b, ne0);
    gb_u64(b, ne1);
    gb_u32(b, type);
    gb_u64(b, off);
    gb_pad(b, 32);
    for (size_t i = 0; i < data; i++) gb_u8(b, 0);
}

static void test_gguf_hostile(void) {
    vt_src_file f;
    gbuf b = {0};
    gb_put(&b, "GGUX", 4);
    gb_u32(&b, 3);
    gb_u64(&b, 0), gb_u64(&b, 0);
    EXPECT_FAIL(gguf_parse(&b, &f), "bad magic");
    gb_free(&b);
    gguf_head(&b, 1, 0, 0);
    EXPECT_FAIL(gguf_parse(&b, &f), "version 1");
    gb_free(&b);
    gguf_head(&b, 4, 0, 0);
    EXPECT_FAIL(gguf_parse(&b, &f), "version 4");
    gb_free(&b);
    gguf_head(&b, 3, 1ull << 40, 0);
    EXPECT_FAIL(gguf_parse(&b, &f), "tensors (cap");
    gb_free(&b);
    gguf_head(&b, 3, 0, UINT64_MAX);
    EXPECT_FAIL(gguf_parse(&b, &f), "metadata pairs (cap");
    gb_free(&b);
    gguf_head(&b, 3, 1000, 1000);
    EXPECT_FAIL(gguf_parse(&b, &f), "more than a");
    gb_free(&b);
    /* string length lies */
    gguf_head(&b, 3, 0, 1);
    gb_u64(&b, 1ull << 62);
    EXPECT_FAIL(gguf_parse(&b, &f), "metadata key length");
    gb_free(&b);
    gguf_head(&b, 3, 0, 1);
    gb_str(&b, "k");
    gb_u32(&b, 8);
    gb_u64(&b, 1000);
    gb_put(&b, "abc", 3);
    EXPECT_FAIL(gguf_parse(&b, &f), "truncated");
    gb_free(&b);
    /* array count lies */
    gguf_head(&b, 3, 0, 1);
    gb_str(&b, "tokenizer.ggml.tokens");
    gb_u32(&b, 9);
    gb_u32(&b, 8);
    gb_u64(&b, 1ull << 60);
    EXPECT_FAIL(gguf_parse(&b, &f), "cannot fit");
    gb_free(&b);
    /* unknown kv type, unknown array element type */
    gguf_head(&b, 3, 0, 1);
    gb_str(&b, "k");
    gb_u32(&b, 13);
    EXPECT_FAIL(gguf_parse(&b, &f), "unknown value type 13");
    gb_free(&b);
    gguf_head(&b, 3, 0, 1);
    gb_str(&b, "k");
    gb_u32(&b, 9);
    gb_u32(&b, 77);
    gb_u64(&b, 1);
    EXPECT_FAIL(gguf_parse(&b, &f), "unknown array element type 77");
    gb_free(&b);
    /* duplicate key */
    gguf_head(&b, 3, 0, 2);
    kv_u32(&b, "a.b", 1);
    kv_u32(&b, "a.b", 2);
    EXPECT_FAIL(gguf_parse(&b, &f), "duplicate metadata key 'a.b'");
    gb_free(&b);
    /* bad alignment */
    gguf_head(&b, 3, 0, 1);
    kv_u32(&b, "general.alignment", 48);
    EXPECT_FAIL(gguf_parse(&b, &f), "power of two");
    gb_free(&b);
    /* unsupported ggml type */
    gguf_head(&b, 3, 1, 0);
    gguf_one(&b, "blk.0.ffn_up.weight", 10, 256, 1, 0, 84);
    EXPECT_FAIL(gguf_parse(&b, &f), "unsupported ggml type 10 for tensor 'blk.0.ffn_up.weight'");
    gb_free(&b);
    /* row not a whole number of blocks */
    gguf_head(&b, 3, 1, 0);
    gguf_one(&b, "w", 8, 33, 1, 0, 68);
    EXPECT_FAIL(gguf_parse(&b, &f), "not a whole number of q8_0 blocks");
    gb_free(&b);
    /* misaligned offset, offset past end, truncated data, absurd dims */
    gguf_head(&b, 3, 1, 0);
    gguf_one(&b, "w", 0, 4, 2, 8, 64);
    EXPECT_FAIL(gguf_parse(&b, &f), "not a multiple of the alignment");
    gb_free(&b);
    gguf_head(&b, 3, 1, 0);
    gguf_one(&b, "w", 0, 4, 2, 1ull << 50, 64);
    EXPECT_FAIL(gguf_parse(&b, &f), "past the end");
    gb_free(&b);
    gguf_head(&b, 3, 1, 0);
    gguf_one(&b, "w", 0, 4, 2, 0, 16);
    EXPECT_FAIL(gguf_parse(&b, &f), "outside the data region");
    gb_free(&b);
    gguf_head(&b, 3, 1, 0);
    gguf_one(&b, "w", 0, 1ull << 41, 2, 0, 16);
    EXPECT_FAIL(gguf_parse(&b, &f), "exceeds 2^40");
    gb_free(&b);
    gguf_head(&b, 3, 1, 0);
    gb_str(&b, "w");
    gb_u32(&b, 4);
    for (int d = 0; d < 4; d++) gb_u64(&b, 1ull << 40);
    gb_u32(&b, 0);
    gb_u64(&b, 0);
    EXPECT_FAIL(gguf_parse(&b, &f), "overflows");
    gb_free(&b);
    gguf_head(&b, 3, 1, 0);
    gb_str(&b, "w");
    gb_u32(&b, 9);
    EXPECT_FAIL(gguf_parse(&b, &f), "9 dimensions");
    gb_free(&b);
    /* overlapping tensors and duplicate names */
    {
        float z[32] = {0};
        gen_gguf_tensor t[2] = {{"x", 1, {8}, 0, z, 32}, {"y", 1, {8}, 0, z, 32}};
        gen_gguf(&b, 3, NULL, 0, t, 2, 32);
        CHECK_RC(gguf_parse(&b, &f));
        vt_src_file_free(&f);
        /* second tensor's offset field: patch it to 0 (= first tensor's) */
        size_t pos = 24 + (8 + 1 + 4 + 8 + 4 + 8) + (8 + 1 + 4 + 8 + 4);
        put_u64(b.p + pos, 0);
        EXPECT_FAIL(gguf_parse(&b, &f), "overlap");
        gb_free(&b);
        t[1].name = "x";
        gen_gguf(&b, 3, NULL, 0, t, 2, 32);
        EXPECT_FAIL(gguf_parse(&b, &f), "duplicate tensor name 'x'");
        gb_free(&b);
    }
}

/* ---- npy ---- */

static void test_npy(void) {
    static const struct {
        const char *descr;
        vt_dtype t;
        size_t sz;
    } d[] = {{"<f4", VT_DTYPE_F32, 4}, {"<f2", VT_DTYPE_F16, 2}, {"<f8", VT_DTYPE_F64, 8},
             {"|i1", VT_DTYPE_I8, 1},  {"|u1", VT_DTYPE_U8, 1},  {"<i4", VT_DTYPE_I32, 4},
             {"<i8", VT_DTYPE_I64, 8}};
    vt_src_file f;
    for (int iter = 0; iter < 30; iter++) {
        int k = (int)(vt_rand_u64() % 7), major = 1 + (int)(vt_rand_u64() % 3);
        uint64_t dims[3];
        uint32_t nd = (uint32_t)(vt_rand_u64() % 4);
        uint64_t numel = 1;
        for (uint32_t i = 0; i < nd; i++) numel *= (dims[i] = vt_rand_u64() % 5);
        unsigned char data[8 * 64];
        for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)vt_rand_u64();
        gbuf b = {0};
        gen_npy(&b, major, d[k].descr, dims, nd, data, numel * d[k].sz);
        int rc = vt_parse_npy_mem(b.p, b.n, b.n, "dir/x.npy", NULL, &f);
        CHECKF(rc == 0, "valid npy: %s", vt_last_error());
        if (!rc) {
            CHECK(f.n_tensors == 1 && !strcmp(f.tensors[0].desc.name, "x"));
            CHECK(f.tensors[0].desc.dtype == d[k].t && f.tensors[0].desc.ndim == nd);
            for (uint32_t i = 0; i < nd; i++) CHECK(f.tensors[0].desc.dims[i] == dims[i]);
            CHECK(f.tensors[0].nbytes == numel * d[k].sz);
            CHECK(!memcmp(b.p + f.tensors[0].offset, data, numel * d[k].sz));
            vt_src_file_free(&f);
        }
        /* truncating the data fails */
        if (numel) {
            EXPECT_FAIL(vt_parse_npy_mem(b.p, b.n - 1, b.n - 1, "x.npy", NULL, &f), "truncated");
        }
        gb_free(&b);
    }
    gbuf b = {0};
    uint64_t dims[1] = {2};
    float v[2] = {1, 2};
    gen_npy(&b, 1, ">f4", dims, 1, v, 8);
    EXPECT_FAIL(vt_parse_npy_mem(b.p, b.n, b.n, "x.npy", NULL, &f), "'>f4' is not supported");
    gb_free(&b);
    gen_npy(&b, 1, "<f4", dims, 1, v, 8);
    char *fo = memmem(b.p, b.n, "False", 5);
    memcpy(fo, "True ", 5);
    EXPECT_FAIL(vt_parse_npy_mem(b.p, b.n, b.n, "x.npy", NULL, &f), "Fortran");
    memcpy(fo, "Nope ", 5);
    EXPECT_FAIL(vt_parse_npy_mem(b.p, b.n, b.n, "x.npy", NULL, &f), "fortran_order");
    gb_free(&b);
    gen_npy(&b, 1, "<f4", dims, 1, v, 8);
    b.p[6] = 9;
    EXPECT_FAIL(vt_parse_npy_mem(b.p, b.n, b.n, "x.npy", NULL, &f), "version 9");
    b.p[6] = 1;
    b.p[8] = 0xff, b.p[9] = 0xff;
    EXPECT_FAIL(vt_parse_npy_mem(b.p, b.n, b.n, "x.npy", NULL, &f), "truncated");
    gb_free(&b);
    gen_npy(&b, 1, "<f4", dims, 1, v, 8);
    gb_u8(&b, 0); /* extra byte: header lies about size */
    EXPECT_FAIL(vt_parse_npy_mem(b.p, b.n, b.n, "x.npy", NULL, &f), "needs 8");
    gb_free(&b);
    uint64_t big[2] = {1ull << 40, 1ull << 40};
    gen_npy(&b, 1, "<f4", big, 2, v, 8);
    EXPECT_FAIL(vt_parse_npy_mem(b.p, b.n, b.n, "x.npy", NULL, &f), "overflows");
    gb_free(&b);
}

/* fd entry points, including a GGUF whose metadata is larger than the first read */
static void test_fd(void) {
    char dir[4096], path[4200];
    vt_test_tmpdir("test_parse", dir, sizeof dir);
    gbuf kv = {0};
    uint64_t ntok = 120000;
    const char **toks = malloc(ntok * sizeof *toks);
    static char tokbuf[120000][12];
    for (uint64_t i = 0; i < ntok; i++) {
        snprintf(tokbuf[i], sizeof tokbuf[i], "tok%llu", (unsigned long long)i);
        toks[i] = tokbuf[i];
    }
    kv_str_array(&kv, "tokenizer.ggml.tokens", toks, ntok);
    float w[64];
    for (int i = 0; i < 64; i++) w[i] = vt_rand_normal();
    gen_gguf_tensor t = {"token_embd.weight", 2, {16, 4}, 0, w, sizeof w};
    gbuf b = {0};
    gen_gguf(&b, 3, &kv, 1, &t, 1, 32);
    CHECK(b.n > (1u << 20));
    snprintf(path, sizeof path, "%s/big.gguf", dir);
    CHECK(gb_write_file(&b, path) == 0);
    int fd = open(path, O_RDONLY);
    vt_src_file f;
    int rc = vt_parse_gguf_fd(fd, path, &f);
    CHECKF(rc == 0, "gguf fd: %s", vt_last_error());
    if (!rc) {
        CHECK(f.n_tensors == 1 && f.tensors[0].desc.dims[0] == 4 &&
              f.tensors[0].desc.dims[1] == 16);
        uint64_t want = 12;
        for (uint64_t k = 0; k < ntok; k++) want += 8 + strlen(toks[k]);
        CHECK(f.n_kv == 1 && f.kv[0].val_len == want);
        CHECK(!memcmp(f.kv[0].val + f.kv[0].val_len - 9, "tok119999", 9));
        vt_src_file_free(&f);
    }
    /* an injected read error is reported, not a crash */
    vt_fault_arm(VT_FAULT_READ, 1, -EIO);
    EXPECT_FAIL(vt_parse_gguf_fd(fd, path, &f), "reading the GGUF header");
    vt_fault_disarm();
    close(fd);
    gb_free(&b);
    gb_free(&kv);
    free(toks);

    gen_st_tensor st = {"a", "F32", 1, {16}, w, 64, 0, 0, 0};
    gen_safetensors(&b, &st, 1, NULL);
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    CHECK(gb_write_file(&b, path) == 0);
    fd = open(path, O_RDONLY);
    rc = vt_parse_safetensors_fd(fd, path, &f);
    CHECKF(rc == 0, "safetensors fd: %s", vt_last_error());
    if (!rc) {
        CHECK(f.n_tensors == 1 && vt_src_detect(b.p, b.n) == VT_SRC_SAFETENSORS);
        vt_src_file_free(&f);
    }
    close(fd);
    gb_free(&b);
    uint64_t dims[2] = {4, 16};
    gen_npy(&b, 2, "<f4", dims, 2, w, sizeof w);
    snprintf(path, sizeof path, "%s/w.npy", dir);
    CHECK(gb_write_file(&b, path) == 0);
    fd = open(path, O_RDONLY);
    rc = vt_parse_npy_fd(fd, path, "emb", &f);
    CHECKF(rc == 0, "npy fd: %s", vt_last_error());
    if (!rc) {
        CHECK(!strcmp(f.tensors[0].desc.name, "emb") && vt_src_detect(b.p, b.n) == VT_SRC_NPY);
        vt_src_file_free(&f);
    }
    close(fd);
    gb_free(&b);
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "cannot clean %s\n", dir);
}

int main(void) {
    vt_test_seed();
    test_safetensors_valid();
    test_safetensors_hostile();
    test_gguf_valid();
    test_gguf_hostile();
    test_npy();
    test_fd();
    return vt_test_done("test_parse");
}
