/* .npy v1/v2/v3 header parser: magic, version, header length, and the Python dict literal
 * {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }. C order only. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "parse.h"

static const struct {
    const char *descr;
    vt_dtype dtype;
} npy_dtypes[] = {
    {"<f4", VT_DTYPE_F32}, {"<f2", VT_DTYPE_F16}, {"<f8", VT_DTYPE_F64},  {"|i1", VT_DTYPE_I8},
    {"|u1", VT_DTYPE_U8},  {"<i2", VT_DTYPE_I16}, {"<i4", VT_DTYPE_I32},  {"<i8", VT_DTYPE_I64},
    {"<u2", VT_DTYPE_U16}, {"<u4", VT_DTYPE_U32}, {"<u8", VT_DTYPE_U64},  {"|b1", VT_DTYPE_BOOL},
    {"<i1", VT_DTYPE_I8},  {"<u1", VT_DTYPE_U8},  {"<b1", VT_DTYPE_BOOL},
};

const char *vt_npy_descr(vt_dtype t) {
    for (size_t i = 0; i < 12; i++)
        if (npy_dtypes[i].dtype == t) return npy_dtypes[i].descr;
    return NULL;
}

typedef struct np {
    const char *s;
    size_t len, pos;
    const char *path;
} np;

static void ws(np *p) {
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n'))
        p->pos++;
}

static int bad(np *p, const char *what) {
    return vt_fail(VT_EFORMAT, "%s: npy header: %s at header byte %zu", p->path, what, p->pos);
}

static int eat(np *p, char c) {
    ws(p);
    if (p->pos >= p->len || p->s[p->pos] != c) {
        char m[32];
        snprintf(m, sizeof m, "expected '%c'", c);
        return bad(p, m);
    }
    p->pos++;
    return 0;
}

/* A quoted Python string (no escapes needed for the keys and descrs numpy writes). */
static int str(np *p, char *out, size_t cap) {
    ws(p);
    if (p->pos >= p->len || (p->s[p->pos] != '\'' && p->s[p->pos] != '"'))
        return bad(p, "expected a string");
    char q = p->s[p->pos++];
    size_t n = 0;
    while (p->pos < p->len && p->s[p->pos] != q) {
        if (p->s[p->pos] == '\\' || n + 1 >= cap) return bad(p, "unsupported or too long string");
        out[n++] = p->s[p->pos++];
    }
    if (p->pos >= p->len) return bad(p, "unterminated string");
    p->pos++;
    out[n] = 0;
    return 0;
}

static int shape(np *p, vt_tensor_desc *d) {
    int rc = eat(p, '(');
    if (rc) return rc;
    d->ndim = 0;
    for (;;) {
        ws(p);
        if (p->pos < p->len && p->s[p->pos] == ')') {
            p->pos++;
            return 0;
        }
        if (d->ndim == VT_MAX_DIMS) return bad(p, "more than 8 dimensions");
        uint64_t v = 0;
        size_t d0 = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
            v = v * 10 + (uint64_t)(p->s[p->pos++] - '0');
            if (v > VT_PARSE_MAX_DIM) return bad(p, "dimension exceeds 2^40");
        }
        if (p->pos == d0) return bad(p, "expected a dimension");
        if (p->pos < p->len && p->s[p->pos] == 'L') p->pos++;
        d->dims[d->ndim++] = v;
        ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',')
            p->pos++;
        else if (p->pos >= p->len || p->s[p->pos] != ')')
            return bad(p, "expected ',' or ')'");
    }
}

static int parse_dict(np *p, vt_src_tensor *t) {
    int rc = eat(p, '{'), have = 0;
    if (rc) return rc;
    for (;;) {
        ws(p);
        if (p->pos < p->len && p->s[p->pos] == '}') {
            p->pos++;
            break;
        }
        char key[32];
        if ((rc = str(p, key, sizeof key)) || (rc = eat(p, ':'))) return rc;
        ws(p);
        if (!strcmp(key, "descr")) {
            char d[16];
            if ((rc = str(p, d, sizeof d))) return rc;
            size_t k;
            for (k = 0; k < sizeof npy_dtypes / sizeof npy_dtypes[0]; k++)
                if (!strcmp(d, npy_dtypes[k].descr)) break;
            if (k == sizeof npy_dtypes / sizeof npy_dtypes[0])
                return vt_fail(VT_EUNSUPPORTED,
                               "%s: npy dtype '%s' is not supported (little-endian "
                               "f4 f2 f8 i1 u1 i2 i4 i8 u2 u4 u8 b1 are)",
                               p->path, d);
            t->desc.dtype = npy_dtypes[k].dtype;
            have |= 1;
        } else if (!strcmp(key, "fortran_order")) {
            if (p->len - p->pos >= 5 && !memcmp(p->s + p->pos, "False", 5))
                p->pos += 5;
            else if (p->len - p->pos >= 4 && !memcmp(p->s + p->pos, "True", 4))
                return vt_fail(VT_EUNSUPPORTED, "%s: npy arrays in Fortran order are not supported",
                               p->path);
            else
                return bad(p, "fortran_order is not True or False");
            have |= 2;
        } else if (!strcmp(key, "shape")) {
            if ((rc = shape(p, &t->desc))) return rc;
            have |= 4;
        } else {
            return vt_fail(VT_EFORMAT, "%s: npy header has an unexpected key '%s'", p->path, key);
        }
        ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',')
            p->pos++;
        else if (p->pos >= p->len || p->s[p->pos] != '}')
            return bad(p, "expected ',' or '}'");
    }
    if (have != 7)
        return vt_fail(VT_EFORMAT, "%s: npy header lacks %s", p->path,
                       !(have & 1)   ? "'descr'"
                       : !(have & 2) ? "'fortran_order'"
                                     : "'shape'");
    ws(p);
    if (p->pos != p->len) return bad(p, "trailing characters after the dict");
    return 0;
}

int vt_parse_npy_mem(const void *buf, size_t len, uint64_t file_size, const char *path,
                     const char *name, vt_src_file *out) {
    memset(out, 0, sizeof *out);
    const unsigned char *b = buf;
    if (!path) path = "<memory>";
    if (len > file_size) len = (size_t)file_size;
    if (len < 10 || memcmp(b, "\x93NUMPY", 6))
        return vt_fail(VT_EFORMAT, "%s: not a .npy file (bad magic or truncated)", path);
    uint32_t major = b[6];
    uint64_t hlen, pre;
    if (major == 1) {
        hlen = (uint64_t)b[8] | (uint64_t)b[9] << 8;
        pre = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return vt_fail(VT_EFORMAT, "%s: truncated .npy header", path);
        hlen = (uint64_t)b[8] | (uint64_t)b[9] << 8 | (uint64_t)b[10] << 16 | (uint64_t)b[11] << 24;
        pre = 12;
    } else {
        return vt_fail(VT_EUNSUPPORTED, "%s: .npy version %u.%u is not supported", path, major,
                       b[7]);
    }
    if (hlen > VT_PARSE_MAX_HEADER)
        return vt_fail(VT_EFORMAT, "%s: .npy header length %llu exceeds the cap", path,
                       (unsigned long long)hlen);
    if (pre + hlen > len)
        return vt_fail(VT_EFORMAT, "%s: .npy header of %llu bytes is truncated (%zu available)",
                       path, (unsigned long long)hlen, len - (size_t)pre);
    const char *base = name;
    char nbuf[VT_MAX_NAME];
    if (!base) {
        const char *sl = strrchr(path, '/');
        base = sl ? sl + 1 : path;
        size_t n = strlen(base);
        if (n > 4 && !strcmp(base + n - 4, ".npy")) n -= 4;
        if (n == 0 || n >= VT_MAX_NAME)
            return vt_fail(VT_EFORMAT, "%s: cannot name the tensor after the file", path);
        memcpy(nbuf, base, n);
        nbuf[n] = 0;
        base = nbuf;
    } else if (!*base || strlen(base) >= VT_MAX_NAME) {
        return vt_fail(-EINVAL, "%s: tensor name is empty or too long", path);
    }
    out->path = vt_strdup(path);
    out->tensors = vt_calloc(1, sizeof *out->tensors);
    if (!out->path || !out->tensors) {
        vt_src_file_free(out);
        return vt_fail(-ENOMEM, "%s: out of memory", path);
    }
    out->kind = VT_SRC_NPY;
    out->file_size = file_size;
    out->version = major;
    out->alignment = 1;
    out->data_start = pre + hlen;
    vt_src_tensor *t = out->tensors;
    strcpy(t->desc.name, base);
    t->ggml_type = VT_GGML_NONE;
    t->block_fmt = VT_FMT_COUNT;
    np p = {(const char *)b + pre, (size_t)hlen, 0, path};
    int rc = parse_dict(&p, t);
    uint64_t numel;
    if (!rc && (vt_dims_product(t->desc.dims, t->desc.ndim, &numel) ||
                numel > UINT64_MAX / vt_dtype_size(t->desc.dtype)))
        rc = vt_fail(VT_EFORMAT, "%s: npy shape overflows 64 bits", path);
    if (!rc) {
        t->offset = out->data_start;
        t->nbytes = numel * vt_dtype_size(t->desc.dtype);
        if (file_size - out->data_start != t->nbytes)
            rc = vt_fail(VT_EFORMAT,
                         "%s: npy data is %llu bytes but shape x dtype needs %llu (truncated or "
                         "lying header)",
                         path, (unsigned long long)(file_size - out->data_start),
                         (unsigned long long)t->nbytes);
    }
    if (!rc)
        out->n_tensors = 1;
    else
        vt_src_file_free(out);
    return rc;
}

int vt_parse_npy_fd(int fd, const char *path, const char *name, vt_src_file *out) {
    memset(out, 0, sizeof *out);
    struct stat st;
    if (fstat(fd, &st)) return vt_fail(-errno, "%s: fstat failed", path);
    uint64_t size = (uint64_t)st.st_size;
    unsigned char head[12];
    size_t n = size < 12 ? (size_t)size : 12;
    int rc = vt_pread_full(fd, head, n, 0);
    if (rc) return vt_fail(rc, "%s: reading the npy header: %s", path, vt_strerror(rc));
    if (n < 12 || memcmp(head, "\x93NUMPY", 6))
        return vt_parse_npy_mem(head, n, size, path, name, out);
    uint64_t hlen = head[6] == 1 ? ((uint64_t)head[8] | (uint64_t)head[9] << 8) + 10
                                 : ((uint64_t)head[8] | (uint64_t)head[9] << 8 |
                                    (uint64_t)head[10] << 16 | (uint64_t)head[11] << 24) +
                                       12;
    if (hlen > VT_PARSE_MAX_HEADER || hlen > size)
        return vt_parse_npy_mem(head, n, size, path, name, out);
    unsigned char *buf = vt_malloc((size_t)hlen);
    if (!buf) return vt_fail(-ENOMEM, "%s: out of memory", path);
    rc = vt_pread_full(fd, buf, (size_t)hlen, 0);
    if (rc)
        rc = vt_fail(rc, "%s: reading the npy header: %s", path, vt_strerror(rc));
    else
        rc = vt_parse_npy_mem(buf, (size_t)hlen, size, path, name, out);
    vt_free(buf);
    return rc;
}
