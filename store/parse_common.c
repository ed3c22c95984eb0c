/* Helpers shared by the source-file parsers: ggml type table, shape arithmetic, range and name
 * checks, format detection. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

void vt_src_file_free(vt_src_file *f) {
    if (!f) return;
    for (uint32_t i = 0; i < f->n_kv; i++) {
        vt_free(f->kv[i].key);
        vt_free(f->kv[i].val);
    }
    vt_free(f->kv);
    vt_free(f->tensors);
    vt_free(f->path);
    memset(f, 0, sizeof *f);
}

static const struct {
    uint32_t ggml;
    const char *name;
    vt_dtype dtype;
    uint32_t fmt; /* block format or VT_FMT_COUNT */
    uint32_t elems, bytes;
} ggml_types[] = {
    {VT_GGML_F32, "f32", VT_DTYPE_F32, VT_FMT_COUNT, 1, 4},
    {VT_GGML_F16, "f16", VT_DTYPE_F16, VT_FMT_COUNT, 1, 2},
    {VT_GGML_Q4_0, "q4_0", VT_DTYPE_F32, VT_FMT_Q4_0, 32, 18},
    {VT_GGML_Q4_1, "q4_1", VT_DTYPE_F32, VT_FMT_Q4_1, 32, 20},
    {VT_GGML_Q8_0, "q8_0", VT_DTYPE_F32, VT_FMT_Q8_0, 32, 34},
    {VT_GGML_Q4_K, "q4_k", VT_DTYPE_F32, VT_FMT_Q4_K, 256, 144},
    {VT_GGML_Q6_K, "q6_k", VT_DTYPE_F32, VT_FMT_Q6_K, 256, 210},
    {VT_GGML_I8, "i8", VT_DTYPE_I8, VT_FMT_COUNT, 1, 1},
    {VT_GGML_I16, "i16", VT_DTYPE_I16, VT_FMT_COUNT, 1, 2},
    {VT_GGML_I32, "i32", VT_DTYPE_I32, VT_FMT_COUNT, 1, 4},
    {VT_GGML_I64, "i64", VT_DTYPE_I64, VT_FMT_COUNT, 1, 8},
    {VT_GGML_F64, "f64", VT_DTYPE_F64, VT_FMT_COUNT, 1, 8},
    {VT_GGML_BF16, "bf16", VT_DTYPE_BF16, VT_FMT_COUNT, 1, 2},
};
#define N_GGML (sizeof ggml_types / sizeof ggml_types[0])

int vt_ggml_type_info(uint32_t t, vt_dtype *dtype, uint32_t *block_fmt, uint32_t *block_elems,
                      uint32_t *block_bytes) {
    for (size_t i = 0; i < N_GGML; i++) {
        if (ggml_types[i].ggml != t) continue;
        if (dtype) *dtype = ggml_types[i].dtype;
        if (block_fmt) *block_fmt = ggml_types[i].fmt;
        if (block_elems) *block_elems = ggml_types[i].elems;
        if (block_bytes) *block_bytes = ggml_types[i].bytes;
        return 0;
    }
    return VT_EUNSUPPORTED;
}

const char *vt_ggml_type_name(uint32_t t) {
    for (size_t i = 0; i < N_GGML; i++)
        if (ggml_types[i].ggml == t) return ggml_types[i].name;
    return NULL;
}

uint32_t vt_ggml_type_of_format(uint32_t fmt) {
    switch (fmt) {
    case VT_FMT_F32:
        return VT_GGML_F32;
    case VT_FMT_F16:
        return VT_GGML_F16;
    case VT_FMT_BF16:
        return VT_GGML_BF16;
    case VT_FMT_Q8_0:
        return VT_GGML_Q8_0;
    case VT_FMT_Q4_0:
        return VT_GGML_Q4_0;
    case VT_FMT_Q4_1:
        return VT_GGML_Q4_1;
    case VT_FMT_Q4_K:
        return VT_GGML_Q4_K;
    case VT_FMT_Q6_K:
        return VT_GGML_Q6_K;
    default:
        return VT_GGML_NONE;
    }
}

uint32_t vt_ggml_type_of_dtype(vt_dtype t) {
    switch (t) {
    case VT_DTYPE_F32:
        return VT_GGML_F32;
    case VT_DTYPE_F16:
        return VT_GGML_F16;
    case VT_DTYPE_BF16:
        return VT_GGML_BF16;
    case VT_DTYPE_F64:
        return VT_GGML_F64;
    case VT_DTYPE_I8:
        return VT_GGML_I8;
    case VT_DTYPE_I16:
        return VT_GGML_I16;
    case VT_DTYPE_I32:
        return VT_GGML_I32;
    case VT_DTYPE_I64:
        return VT_GGML_I64;
    default:
        return VT_GGML_NONE;
    }
}

int vt_dims_product(const uint64_t *dims, uint32_t n, uint64_t *out) {
    uint64_t p = 1;
    for (uint32_t i = 0; i < n; i++) {
        if (dims[i] && p > UINT64_MAX / dims[i]) return -EOVERFLOW;
        p *= dims[i];
    }
    *out = p;
    return 0;
}

static int cmp_off(const void *a, const void *b) {
    const vt_src_tensor *x = *(const vt_src_tensor *const *)a,
                        *y = *(const vt_src_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

int vt_src_check_ranges(vt_src_file *f, uint64_t lo, uint64_t hi) {
    for (uint32_t i = 0; i < f->n_tensors; i++) {
        const vt_src_tensor *t = &f->tensors[i];
        if (t->offset < lo || t->offset > hi || t->nbytes > hi - t->offset)
            return vt_fail(VT_EFORMAT,
                           "%s: tensor '%s': data [%llu, +%llu) lies outside the data region "
                           "[%llu, %llu) (file truncated or offsets lie)",
                           f->path, t->desc.name, (unsigned long long)t->offset,
                           (unsigned long long)t->nbytes, (unsigned long long)lo,
                           (unsigned long long)hi);
    }
    if (f->n_tensors < 2) return 0;
    const vt_src_tensor **v = vt_malloc(f->n_tensors * sizeof *v);
    if (!v) return vt_fail(-ENOMEM, "%s: out of memory checking tensor ranges", f->path);
    uint32_t n = 0;
    for (uint32_t i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].nbytes) v[n++] = &f->tensors[i];
    qsort(v, n, sizeof *v, cmp_off);
    int rc = 0;
    for (uint32_t i = 1; i < n; i++) {
        if (v[i]->offset < v[i - 1]->offset + v[i - 1]->nbytes) {
            rc =
                vt_fail(VT_EFORMAT, "%s: tensors '%s' [%llu, +%llu) and '%s' [%llu, +%llu) overlap",
                        f->path, v[i - 1]->desc.name, (unsigned long long)v[i - 1]->offset,
                        (unsigned long long)v[i - 1]->nbytes, v[i]->desc.name,
                        (unsigned long long)v[i]->offset, (unsigned long long)v[i]->nbytes);
            break;
        }
    }
    vt_free(v);
    return rc;
}

static int cmp_name(const void *a, const void *b) {
    const vt_src_tensor *x = *(const vt_src_tensor *const *)a,
                        *y = *(const vt_src_tensor *const *)b;
    return strcmp(x->desc.name, y->desc.name);
}

size_t vt_utf8_valid_len(const void *s, size_t n) {
    const unsigned char *b = s;
    size_t i = 0;
    while (i < n) {
        unsigned c = b[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF)
            len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0; /* overlong */
            if (c == 0xED) hi = 0x9F; /* U+D800..U+DFFF, surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90; /* overlong */
            if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
        } else
            return i; /* a continuation byte, C0/C1 (overlong) or F5..FF */
        if (n - i < len || b[i + 1] < lo || b[i + 1] > hi) return i;
        for (size_t k = 2; k < len; k++)
            if ((b[i + k] & 0xC0) != 0x80) return i;
        i += len;
    }
    return n;
}

int vt_src_check_names(vt_src_file *f) {
    for (uint32_t i = 0; i < f->n_tensors; i++) {
        const char *nm = f->tensors[i].desc.name;
        size_t n = strlen(nm), ok = vt_utf8_valid_len(nm, n);
        if (ok < n)
            return vt_fail(VT_EFORMAT,
                           "%s: tensor %u: name is not valid UTF-8 (byte 0x%02x at offset %zu of "
                           "the name, after '%.*s')",
                           f->path, i, (unsigned char)nm[ok], ok, (int)ok, nm);
    }
    if (f->n_tensors < 2) return 0;
    const vt_src_tensor **v = vt_malloc(f->n_tensors * sizeof *v);
    if (!v) return vt_fail(-ENOMEM, "%s: out of memory checking tensor names", f->path);
    for (uint32_t i = 0; i < f->n_tensors; i++) v[i] = &f->tensors[i];
    qsort(v, f->n_tensors, sizeof *v, cmp_name);
    int rc = 0;
    for (uint32_t i = 1; i < f->n_tensors; i++) {
        if (!strcmp(v[i]->desc.name, v[i - 1]->desc.name)) {
            rc = vt_fail(VT_EFORMAT, "%s: duplicate tensor name '%s'", f->path, v[i]->desc.name);
            break;
        }
    }
    vt_free(v);
    return rc;
}

vt_src_kind vt_src_detect(const void *head, size_t len) {
    const unsigned char *b = head;
    if (len >= 4 && !memcmp(b, "GGUF", 4)) return VT_SRC_GGUF;
    if (len >= 6 && !memcmp(b, "\x93NUMPY", 6)) return VT_SRC_NPY;
    if (len >= 9) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = (n << 8) | b[i];
        if (n >= 2 && n <= VT_PARSE_MAX_HEADER && b[8] == '{') return VT_SRC_SAFETENSORS;
    }
    return 0;
}
