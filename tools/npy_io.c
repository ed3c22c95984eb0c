/* .npy reading and writing for the CLI (see npy_io.h). The header is a Python dict literal; we
 * parse only the three keys numpy writes and never trust the shape beyond the file's size. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "npy_io.h"

#include "core/afile.h"

static const struct {
    const char *descr;
    vt_dtype dtype;
} npy_types[] = {
    {"f4", VT_DTYPE_F32}, {"f2", VT_DTYPE_F16}, {"f8", VT_DTYPE_F64}, {"i1", VT_DTYPE_I8},
    {"u1", VT_DTYPE_U8},  {"i2", VT_DTYPE_I16}, {"i4", VT_DTYPE_I32}, {"i8", VT_DTYPE_I64},
};

void vt_npy_free(vt_npy *a) {
    if (!a) return;
    vt_free(a->data);
    a->data = NULL;
}

/* Find 'key' in the header and return the text after the following ':' (or NULL). */
static const char *dict_value(const char *hdr, const char *key) {
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p) return NULL;
    p = strchr(p + strlen(pat), ':');
    if (!p) return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

static int parse_header(const char *path, const char *hdr, vt_npy *out) {
    const char *d = dict_value(hdr, "descr");
    if (!d || (*d != '\'' && *d != '"'))
        return vt_fail(VT_EFORMAT, "%s: .npy header has no 'descr'", path);
    char q = *d++;
    const char *e = strchr(d, q);
    if (!e || e - d < 2 || e - d > 8) return vt_fail(VT_EFORMAT, "%s: bad 'descr'", path);
    char descr[16];
    memcpy(descr, d, (size_t)(e - d));
    descr[e - d] = 0;
    if (descr[0] == '>')
        return vt_fail(VT_EUNSUPPORTED, "%s: big-endian dtype '%s' (convert with astype('<%s'))",
                       path, descr, descr + 1);
    const char *t = (descr[0] == '<' || descr[0] == '|' || descr[0] == '=') ? descr + 1 : descr;
    int found = 0;
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
        if (!strcmp(t, npy_types[i].descr)) out->dtype = npy_types[i].dtype, found = 1;
    if (!found) return vt_fail(VT_EUNSUPPORTED, "%s: dtype '%s' is not supported", path, descr);
    const char *f = dict_value(hdr, "fortran_order");
    if (!f) return vt_fail(VT_EFORMAT, "%s: .npy header has no 'fortran_order'", path);
    if (!strncmp(f, "True", 4))
        return vt_fail(VT_EUNSUPPORTED, "%s: Fortran-order array (save with np.ascontiguousarray)",
                       path);
    const char *s = dict_value(hdr, "shape");
    if (!s || *s != '(') return vt_fail(VT_EFORMAT, "%s: .npy header has no 'shape'", path);
    s++;
    out->ndim = 0;
    out->numel = 1;
    for (;;) {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        if (*s < '0' || *s > '9') return vt_fail(VT_EFORMAT, "%s: bad 'shape'", path);
        if (out->ndim == VT_MAX_DIMS)
            return vt_fail(VT_EUNSUPPORTED, "%s: more than %d dimensions", path, VT_MAX_DIMS);
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno) return vt_fail(VT_EFORMAT, "%s: bad 'shape'", path);
        out->dims[out->ndim++] = v;
        if (v && out->numel > UINT64_MAX / v)
            return vt_fail(VT_EFORMAT, "%s: shape overflows", path);
        out->numel *= v;
        s = end;
    }
    return 0;
}

int vt_npy_read(const char *path, vt_npy *out) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vt_fail(-errno, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    char *hdr = NULL;
    if (fstat(fd, &st) < 0) {
        rc = vt_fail(-errno, "%s: stat: %s", path, strerror(errno));
        goto done;
    }
    uint8_t pre[12];
    if ((uint64_t)st.st_size < 10 || (rc = vt_pread_full(fd, pre, 10, 0)) != 0 ||
        memcmp(pre, "\x93NUMPY", 6)) {
        rc = vt_fail(VT_EFORMAT, "%s: not a .npy file (bad magic)", path);
        goto done;
    }
    uint64_t hlen, hoff;
    if (pre[6] == 1) {
        hlen = pre[8] | (uint64_t)pre[9] << 8;
        hoff = 10;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if ((uint64_t)st.st_size < 12 || (rc = vt_pread_full(fd, pre, 12, 0)) != 0) {
            rc = vt_fail(VT_EFORMAT, "%s: truncated header", path);
            goto done;
        }
        hlen = pre[8] | (uint64_t)pre[9] << 8 | (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
        hoff = 12;
    } else {
        rc = vt_fail(VT_EUNSUPPORTED, "%s: .npy format version %u", path, pre[6]);
        goto done;
    }
    if (hoff + hlen > (uint64_t)st.st_size || hlen > (1u << 20)) {
        rc = vt_fail(VT_EFORMAT, "%s: header length %llu past the end of the file", path,
                     (unsigned long long)hlen);
        goto done;
    }
    hdr = vt_malloc(hlen + 1);
    if (!hdr) {
        rc = vt_fail(-ENOMEM, "%s: out of memory", path);
        goto done;
    }
    if ((rc = vt_pread_full(fd, hdr, hlen, hoff)) != 0) {
        rc = vt_fail(rc, "%s: reading the header", path);
        goto done;
    }
    hdr[hlen] = 0;
    if ((rc = parse_header(path, hdr, out)) != 0) goto done;
    size_t es = vt_dtype_size(out->dtype);
    uint64_t avail = (uint64_t)st.st_size - hoff - hlen;
    if (out->numel > avail / es) {
        rc = vt_fail(VT_EFORMAT, "%s: shape needs %llu bytes of data, the file has %llu", path,
                     (unsigned long long)(out->numel * es), (unsigned long long)avail);
        goto done;
    }
    out->data = vt_malloc(out->numel ? out->numel * es : 1);
    if (!out->data) {
        rc = vt_fail(-ENOMEM, "%s: out of memory for %llu bytes", path,
                     (unsigned long long)(out->numel * es));
        goto done;
    }
    if ((rc = vt_pread_full(fd, out->data, out->numel * es, hoff + hlen)) != 0) {
        rc = vt_fail(rc, "%s: reading the data", path);
        vt_npy_free(out);
    }
done:
    vt_free(hdr);
    close(fd);
    return rc;
}

int vt_npy_write(const char *path, vt_dtype dtype, uint32_t ndim, const uint64_t *dims,
                 const void *data) {
    const char *descr = NULL;
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
        if (npy_types[i].dtype == dtype) descr = npy_types[i].descr;
    if (!descr || ndim > VT_MAX_DIMS)
        return vt_fail(VT_EUNSUPPORTED, "%s: cannot write dtype %s as .npy", path,
                       vt_dtype_name(dtype));
    char hdr[512], shape[256] = "";
    size_t sl = 0;
    uint64_t numel = 1;
    for (uint32_t i = 0; i < ndim; i++) {
        sl += (size_t)snprintf(shape + sl, sizeof shape - sl, "%llu%s", (unsigned long long)dims[i],
                               ndim == 1      ? ","
                               : i + 1 < ndim ? ", "
                                              : "");
        numel *= dims[i];
    }
    int n = snprintf(hdr + 10, sizeof hdr - 10,
                     "{'descr': '%c%s', 'fortran_order': False, 'shape': (%s), }",
                     descr[0] == 'i' && descr[1] == '1' ? '|'
                     : descr[0] == 'u'                  ? '|'
                                                        : '<',
                     descr, shape);
    size_t total = 10 + (size_t)n + 1;
    size_t padded = (total + 63) / 64 * 64;
    memset(hdr + 10 + n, ' ', padded - total);
    hdr[padded - 1] = '\n';
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    hdr[8] = (char)((padded - 10) & 0xff);
    hdr[9] = (char)((padded - 10) >> 8);
    vt_afile f;
    int rc = vt_afile_open(&f, path);
    if (rc) return rc;
    size_t bytes = numel * vt_dtype_size(dtype);
    rc = vt_pwrite_full(f.fd, hdr, padded, 0);
    if (!rc && bytes) rc = vt_pwrite_full(f.fd, data, bytes, padded);
    if (rc) rc = vt_fail(rc, "%s: write failed: %s", path, vt_strerror(rc));
    if ((rc = vt_afile_close(&f, rc))) return rc;
    return 0;
}
