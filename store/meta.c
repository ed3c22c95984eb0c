/* Typed metadata values (GGUF encoding with a leading u32 type): decoding for the getters of
 * include/vtstore/meta.h. Values come from the store and are still checked: a value that does
 * not decode gives VT_EFORMAT, never a read past its end. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "vtstore/meta.h"

static uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static size_t scalar_size(uint32_t t) {
    switch (t) {
    case VT_META_U8:
    case VT_META_I8:
    case VT_META_BOOL:
        return 1;
    case VT_META_U16:
    case VT_META_I16:
        return 2;
    case VT_META_U32:
    case VT_META_I32:
    case VT_META_F32:
        return 4;
    case VT_META_U64:
    case VT_META_I64:
    case VT_META_F64:
        return 8;
    default:
        return 0;
    }
}

/* Length of the encoded value of type t at p (n bytes available), or 0 if malformed. */
static uint64_t value_len(const unsigned char *p, uint64_t n, uint32_t t, int depth) {
    size_t sz = scalar_size(t);
    if (sz) return sz <= n ? sz : 0;
    if (t == VT_META_STRING) {
        if (n < 8) return 0;
        uint64_t l = le(p, 8);
        return l <= n - 8 ? 8 + l : 0;
    }
    if (t != VT_META_ARRAY || depth > 4 || n < 12) return 0;
    uint32_t et = (uint32_t)le(p, 4);
    uint64_t count = le(p + 4, 8), off = 12;
    size_t esz = scalar_size(et);
    if (esz) return count <= (n - off) / esz ? off + count * esz : 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t l = value_len(p + off, n - off, et, depth + 1);
        if (!l) return 0;
        off += l;
    }
    return off;
}

int vt_meta_check(const void *val, size_t len) {
    const unsigned char *p = val;
    if (len < 4) return VT_EFORMAT;
    uint32_t t = (uint32_t)le(p, 4);
    uint64_t l = value_len(p + 4, len - 4, t, 0);
    return l && l == len - 4 ? 0 : VT_EFORMAT;
}

/* Fetch the value of key into a new buffer. */
static int fetch(vt_store *s, const char *key, unsigned char **out, size_t *len) {
    size_t n = 0;
    int rc = vt_store_get_meta(s, key, NULL, 0, &n); /* the size */
    if (rc) return rc;
    unsigned char *b = vt_malloc(n ? n : 1);
    if (!b) return vt_fail(-ENOMEM, "metadata '%s': out of memory", key);
    if ((rc = vt_store_get_meta(s, key, b, n, &n))) {
        vt_free(b);
        return rc;
    }
    if (vt_meta_check(b, n)) {
        vt_free(b);
        return vt_fail(VT_EFORMAT, "metadata '%s' is not a typed value", key);
    }
    *out = b;
    *len = n;
    return 0;
}

int vt_meta_get_type(vt_store *s, const char *key, uint32_t *type, uint32_t *elem_type) {
    unsigned char *b;
    size_t n;
    int rc = fetch(s, key, &b, &n);
    if (rc) return rc;
    *type = (uint32_t)le(b, 4);
    if (*type == VT_META_ARRAY && elem_type) *elem_type = (uint32_t)le(b + 4, 4);
    vt_free(b);
    return 0;
}

/* Scalar at p of type t as double (integers exactly up to 2^53) and as int64 where integral. */
static int scalar(const unsigned char *p, uint32_t t, double *d, int64_t *i, int *is_int) {
    uint64_t u = le(p, (int)scalar_size(t));
    *is_int = 1;
    switch (t) {
    case VT_META_U8:
    case VT_META_U16:
    case VT_META_U32:
    case VT_META_BOOL:
        *i = (int64_t)u;
        break;
    case VT_META_I8:
        *i = (int8_t)u;
        break;
    case VT_META_I16:
        *i = (int16_t)u;
        break;
    case VT_META_I32:
        *i = (int32_t)u;
        break;
    case VT_META_I64:
        *i = (int64_t)u;
        break;
    case VT_META_U64:
        if (u > INT64_MAX) return -ERANGE;
        *i = (int64_t)u;
        break;
    case VT_META_F32: {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        *d = f;
        *is_int = 0;
        return 0;
    }
    case VT_META_F64:
        memcpy(d, &u, 8);
        *is_int = 0;
        return 0;
    default:
        return VT_EFORMAT;
    }
    *d = (double)*i;
    return 0;
}

int vt_meta_get_u32(vt_store *s, const char *key, uint32_t *out) {
    unsigned char *b;
    size_t n;
    int rc = fetch(s, key, &b, &n);
    if (rc) return rc;
    double d;
    int64_t i = 0;
    int is_int;
    rc = scalar(b + 4, (uint32_t)le(b, 4), &d, &i, &is_int);
    if (!rc && !is_int) rc = VT_EFORMAT;
    if (!rc && (i < 0 || i > UINT32_MAX)) rc = -ERANGE;
    if (!rc)
        *out = (uint32_t)i;
    else
        vt_fail(rc, "metadata '%s' is not an integer in u32 range", key);
    vt_free(b);
    return rc;
}

/* a finite double beyond the float range (its conversion is undefined in C); infinities and
 * NaN convert as they are */
static int f32_out_of_range(double d) {
    return isfinite(d) && fabs(d) > (double)FLT_MAX;
}

int vt_meta_get_f32(vt_store *s, const char *key, float *out) {
    unsigned char *b;
    size_t n;
    int rc = fetch(s, key, &b, &n);
    if (rc) return rc;
    double d;
    int64_t i;
    int is_int;
    rc = scalar(b + 4, (uint32_t)le(b, 4), &d, &i, &is_int);
    if (rc)
        vt_fail(rc, "metadata '%s' is not a number", key);
    else if (f32_out_of_range(d))
        rc = vt_fail(-ERANGE, "metadata '%s' is %g: beyond the range of a 32-bit float", key, d);
    else
        *out = (float)d;
    vt_free(b);
    return rc;
}

int vt_meta_get_string(vt_store *s, const char *key, char *buf, size_t cap, size_t *len) {
    unsigned char *b;
    size_t n;
    int rc = fetch(s, key, &b, &n);
    if (rc) return rc;
    if (le(b, 4) != VT_META_STRING) {
        vt_free(b);
        return vt_fail(VT_EFORMAT, "metadata '%s' is not a string", key);
    }
    uint64_t l = le(b + 4, 8);
    if (len) *len = (size_t)l;
    if (!buf || cap <= l)
        rc = vt_fail(-ERANGE, "metadata '%s': string of %llu bytes does not fit", key,
                     (unsigned long long)l);
    else {
        memcpy(buf, b + 12, (size_t)l);
        buf[l] = 0;
    }
    vt_free(b);
    return rc;
}

int vt_meta_get_strings(vt_store *s, const char *key, vt_meta_strings **out) {
    unsigned char *b;
    size_t n;
    *out = NULL;
    int rc = fetch(s, key, &b, &n);
    if (rc) return rc;
    if (le(b, 4) != VT_META_ARRAY || le(b + 4, 4) != VT_META_STRING) {
        vt_free(b);
        return vt_fail(VT_EFORMAT, "metadata '%s' is not an array of strings", key);
    }
    uint64_t count = le(b + 8, 8);
    /* checked by fetch: count strings of >= 8 bytes each fit in n */
    size_t text = n - 16 - (size_t)count * 8 + (size_t)count; /* string bytes + NULs */
    size_t total =
        sizeof(vt_meta_strings) + (size_t)count * (sizeof(char *) + sizeof(uint64_t)) + text;
    unsigned char *m = vt_malloc(total);
    if (!m) {
        vt_free(b);
        return vt_fail(-ENOMEM, "metadata '%s': out of memory for %llu strings", key,
                       (unsigned long long)count);
    }
    vt_meta_strings *v = (vt_meta_strings *)m;
    const char **str = (const char **)(m + sizeof *v);
    uint64_t *lens = (uint64_t *)(str + count);
    char *t = (char *)(lens + count);
    const unsigned char *p = b + 16;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t l = le(p, 8);
        memcpy(t, p + 8, (size_t)l);
        t[l] = 0;
        str[i] = t;
        lens[i] = l;
        t += l + 1;
        p += 8 + l;
    }
    v->count = count;
    v->str = str;
    v->len = lens;
    vt_free(b);
    *out = v;
    return 0;
}

void vt_meta_strings_free(vt_meta_strings *v) {
    vt_free(v);
}

static int num_array(vt_store *s, const char *key, void **out, uint64_t *n, int as_i32) {
    unsigned char *b;
    size_t len;
    *out = NULL;
    *n = 0;
    int rc = fetch(s, key, &b, &len);
    if (rc) return rc;
    uint32_t et = (uint32_t)le(b + 4, 4);
    size_t esz = scalar_size(et);
    if (le(b, 4) != VT_META_ARRAY || !esz) {
        vt_free(b);
        return vt_fail(VT_EFORMAT, "metadata '%s' is not a numeric array", key);
    }
    uint64_t count = le(b + 8, 8);
    void *dst = vt_malloc(count ? (size_t)count * 4 : 4);
    if (!dst) {
        vt_free(b);
        return vt_fail(-ENOMEM, "metadata '%s': out of memory", key);
    }
    for (uint64_t i = 0; i < count && !rc; i++) {
        double d;
        int64_t iv = 0;
        int is_int;
        rc = scalar(b + 16 + i * esz, et, &d, &iv, &is_int);
        if (rc) break;
        if (as_i32) {
            if (!is_int || iv < INT32_MIN || iv > INT32_MAX)
                rc = vt_fail(-ERANGE, "metadata '%s'[%llu] is not an int32", key,
                             (unsigned long long)i);
            else
                ((int32_t *)dst)[i] = (int32_t)iv;
        } else if (f32_out_of_range(d)) {
            rc = vt_fail(-ERANGE, "metadata '%s'[%llu] is %g: beyond the range of a 32-bit float",
                         key, (unsigned long long)i, d);
        } else {
            ((float *)dst)[i] = (float)d;
        }
    }
    vt_free(b);
    if (rc) {
        vt_free(dst);
        return rc;
    }
    *out = dst;
    *n = count;
    return 0;
}

int vt_meta_get_f32_array(vt_store *s, const char *key, float **out, uint64_t *n) {
    return num_array(s, key, (void **)out, n, 0);
}

int vt_meta_get_i32_array(vt_store *s, const char *key, int32_t **out, uint64_t *n) {
    return num_array(s, key, (void **)out, n, 1);
}
