/* tests/import/gen.h — builders of small safetensors, GGUF and .npy files in memory for the
 * import tests (valid ones, and hostile ones by editing fields before or after building). */
#ifndef VT_TEST_IMPORT_GEN_H
#define VT_TEST_IMPORT_GEN_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct gbuf {
    unsigned char *p;
    size_t n, cap;
} gbuf;

static inline void gb_put(gbuf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static inline void gb_u8(gbuf *b, uint8_t v) {
    gb_put(b, &v, 1);
}
static inline void gb_le(gbuf *b, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) gb_u8(b, (uint8_t)(v >> (8 * i)));
}
static inline void gb_u32(gbuf *b, uint32_t v) {
    gb_le(b, v, 4);
}
static inline void gb_u64(gbuf *b, uint64_t v) {
    gb_le(b, v, 8);
}
static inline void gb_str(gbuf *b, const char *s) { /* GGUF string */
    gb_u64(b, strlen(s));
    gb_put(b, s, strlen(s));
}
static inline void gb_printf(gbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void gb_printf(gbuf *b, const char *fmt, ...) {
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    gb_put(b, tmp, (size_t)n);
}
static inline void gb_pad(gbuf *b, size_t align) {
    while (b->n % align) gb_u8(b, 0);
}
static inline void gb_free(gbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

static inline int gb_write_file(const gbuf *b, const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(b->p, 1, b->n, f);
    return fclose(f) || w != b->n ? -1 : 0;
}

/* ---- safetensors ---- */

typedef struct gen_st_tensor {
    const char *name;
    const char *dtype; /* "F16" ... */
    uint32_t ndim;
    uint64_t dims[8];
    const void *data; /* [nbytes] or NULL (zeros) */
    uint64_t nbytes;
    /* hostile overrides: when set, written instead of the true offsets */
    int lie;
    uint64_t begin, end;
} gen_st_tensor;

/* Build a safetensors file; data of tensor i follows tensor i-1. @p meta: NULL or a JSON
 * object text for "__metadata__". */
static inline void gen_safetensors(gbuf *out, const gen_st_tensor *t, int n, const char *meta) {
    gbuf h = {0};
    uint64_t off = 0;
    gb_printf(&h, "{");
    if (meta) gb_printf(&h, "\"__metadata__\":%s%s", meta, n ? "," : "");
    for (int i = 0; i < n; i++) {
        gb_printf(&h, "\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i].name, t[i].dtype);
        for (uint32_t d = 0; d < t[i].ndim; d++)
            gb_printf(&h, "%s%llu", d ? "," : "", (unsigned long long)t[i].dims[d]);
        uint64_t b = t[i].lie ? t[i].begin : off, e = t[i].lie ? t[i].end : off + t[i].nbytes;
        gb_printf(&h, "],\"data_offsets\":[%llu,%llu]}%s", (unsigned long long)b,
                  (unsigned long long)e, i + 1 < n ? "," : "");
        off += t[i].nbytes;
    }
    gb_printf(&h, "}");
    while (h.n % 8) gb_u8(&h, ' ');
    gb_u64(out, h.n);
    gb_put(out, h.p, h.n);
    for (int i = 0; i < n; i++) {
        if (t[i].data)
            gb_put(out, t[i].data, t[i].nbytes);
        else
            for (uint64_t k = 0; k < t[i].nbytes; k++) gb_u8(out, 0);
    }
    gb_free(&h);
}

/* ---- GGUF ---- */

typedef struct gen_gguf_tensor {
    const char *name;
    uint32_t ndim;
    uint64_t ne[4]; /* ne[0] innermost */
    uint32_t type;  /* ggml type */
    const void *data;
    uint64_t nbytes;
} gen_gguf_tensor;

/* Write GGUF header + kv (already encoded in @p kv, n_kv pairs) + tensors with data aligned to
 * @p align (32 unless general.alignment is among the kvs). */
static inline void gen_gguf(gbuf *out, uint32_t version, const gbuf *kv, uint64_t n_kv,
                            const gen_gguf_tensor *t, int n, uint64_t align) {
    gb_put(out, "GGUF", 4);
    gb_u32(out, version);
    gb_u64(out, (uint64_t)n);
    gb_u64(out, n_kv);
    if (kv) gb_put(out, kv->p, kv->n);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        gb_str(out, t[i].name);
        gb_u32(out, t[i].ndim);
        for (uint32_t d = 0; d < t[i].ndim; d++) gb_u64(out, t[i].ne[d]);
        gb_u32(out, t[i].type);
        gb_u64(out, off);
        off += (t[i].nbytes + align - 1) / align * align;
    }
    gb_pad(out, align);
    for (int i = 0; i < n; i++) {
        gb_put(out, t[i].data, t[i].nbytes);
        gb_pad(out, align);
    }
}

/* kv encoders (key + type + value) */
static inline void kv_u32(gbuf *b, const char *k, uint32_t v) {
    gb_str(b, k);
    gb_u32(b, 4);
    gb_u32(b, v);
}
static inline void kv_f32(gbuf *b, const char *k, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    gb_str(b, k);
    gb_u32(b, 6);
    gb_u32(b, u);
}
static inline void kv_string(gbuf *b, const char *k, const char *v) {
    gb_str(b, k);
    gb_u32(b, 8);
    gb_str(b, v);
}
static inline void kv_str_array(gbuf *b, const char *k, const char *const *v, uint64_t n) {
    gb_str(b, k);
    gb_u32(b, 9);
    gb_u32(b, 8);
    gb_u64(b, n);
    for (uint64_t i = 0; i < n; i++) gb_str(b, v[i]);
}

/* ---- npy ---- */

static inline void gen_npy(gbuf *out, int major, const char *descr, const uint64_t *dims,
                           uint32_t ndim, const void *data, uint64_t nbytes) {
    gbuf h = {0};
    gb_printf(&h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (uint32_t d = 0; d < ndim; d++) gb_printf(&h, "%llu, ", (unsigned long long)dims[d]);
    gb_printf(&h, "), }");
    size_t pre = major == 1 ? 10 : 12;
    while ((pre + h.n + 1) % 64) gb_u8(&h, ' ');
    gb_u8(&h, '\n');
    gb_put(out, "\x93NUMPY", 6);
    gb_u8(out, (uint8_t)major);
    gb_u8(out, 0);
    gb_le(out, h.n, major == 1 ? 2 : 4);
    gb_put(out, h.p, h.n);
    gb_put(out, data, nbytes);
    gb_free(&h);
}

#endif
