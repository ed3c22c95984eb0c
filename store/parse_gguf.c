/* GGUF v2/v3 header parser: magic, version, counts, metadata key/values (every value type,
 * arrays included), tensor infos, alignment. Little-endian files only. Nothing is trusted. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "parse.h"

#define GGUF_MAX_KEY           65535
#define GGUF_MAX_ARRAY_DEPTH   4
#define GGUF_DEFAULT_ALIGNMENT 32

typedef struct cur {
    const unsigned char *b;
    size_t len;         /* bytes available in b */
    uint64_t file_size; /* bytes in the whole file */
    size_t pos;
    const char *path;
    int need_more; /* set when a read ran past len while len < file_size */
} cur;

static int need(cur *c, uint64_t n, const char *what) {
    if (n <= c->len - c->pos) return 0;
    if (c->len < c->file_size) c->need_more = 1;
    return vt_fail(VT_EFORMAT, "%s: GGUF truncated at byte %zu reading %s (%llu bytes needed)",
                   c->path, c->pos, what, (unsigned long long)n);
}

static uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int rd_u32(cur *c, uint32_t *v, const char *what) {
    int rc = need(c, 4, what);
    if (rc) return rc;
    *v = (uint32_t)le(c->b + c->pos, 4);
    c->pos += 4;
    return 0;
}

static int rd_u64(cur *c, uint64_t *v, const char *what) {
    int rc = need(c, 8, what);
    if (rc) return rc;
    *v = le(c->b + c->pos, 8);
    c->pos += 8;
    return 0;
}

/* A GGUF string (u64 length + bytes); *s points into the buffer (not NUL-terminated). */
static int rd_str(cur *c, const char **s, uint64_t *n, uint64_t max, const char *what) {
    int rc = rd_u64(c, n, what);
    if (rc) return rc;
    if (*n > max)
        return vt_fail(VT_EFORMAT, "%s: GGUF %s length %llu exceeds the cap of %llu", c->path, what,
                       (unsigned long long)*n, (unsigned long long)max);
    if ((rc = need(c, *n, what))) return rc;
    *s = (const char *)c->b + c->pos;
    c->pos += (size_t)*n;
    return 0;
}

static size_t scalar_size(uint32_t t) {
    switch (t) {
    case VT_GGUF_UINT8:
    case VT_GGUF_INT8:
    case VT_GGUF_BOOL:
        return 1;
    case VT_GGUF_UINT16:
    case VT_GGUF_INT16:
        return 2;
    case VT_GGUF_UINT32:
    case VT_GGUF_INT32:
    case VT_GGUF_FLOAT32:
        return 4;
    case VT_GGUF_UINT64:
    case VT_GGUF_INT64:
    case VT_GGUF_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

/* Skip over one value of type @p t, checking it. */
static int skip_value(cur *c, uint32_t t, int depth, const char *key) {
    size_t sz = scalar_size(t);
    if (sz) {
        int rc = need(c, sz, "metadata value");
        if (!rc) c->pos += sz;
        return rc;
    }
    if (t == VT_GGUF_STRING) {
        const char *s;
        uint64_t n;
        return rd_str(c, &s, &n, VT_PARSE_MAX_STRING, "string value");
    }
    if (t != VT_GGUF_ARRAY)
        return vt_fail(VT_EFORMAT, "%s: GGUF key '%s': unknown value type %u", c->path, key, t);
    if (depth >= GGUF_MAX_ARRAY_DEPTH)
        return vt_fail(VT_EFORMAT, "%s: GGUF key '%s': arrays nested deeper than %d", c->path, key,
                       GGUF_MAX_ARRAY_DEPTH);
    uint32_t et;
    uint64_t count;
    int rc = rd_u32(c, &et, "array element type");
    if (!rc) rc = rd_u64(c, &count, "array length");
    if (rc) return rc;
    size_t esz = scalar_size(et);
    /* every element takes at least esz (or 8 for strings, 12 for arrays) bytes */
    uint64_t min_el = esz ? esz : et == VT_GGUF_STRING ? 8 : et == VT_GGUF_ARRAY ? 12 : 0;
    if (!min_el)
        return vt_fail(VT_EFORMAT, "%s: GGUF key '%s': unknown array element type %u", c->path, key,
                       et);
    if (count > (c->file_size - c->pos) / min_el)
        return vt_fail(VT_EFORMAT,
                       "%s: GGUF key '%s': array of %llu elements cannot fit in the file", c->path,
                       key, (unsigned long long)count);
    if (esz) {
        if ((rc = need(c, count * esz, key))) return rc;
        c->pos += (size_t)(count * esz);
        return 0;
    }
    for (uint64_t i = 0; i < count; i++)
        if ((rc = skip_value(c, et, depth + 1, key))) return rc;
    return 0;
}

/* VT_EFORMAT unless s[0..n), just read (it ends at c->pos), is well-formed UTF-8 (names and keys
 * go into JSON output): "GGUF <what> <i> (at byte B): <noun> is not valid UTF-8 (byte X at offset
 * O of the <noun>, after '...')". */
static int check_utf8(const cur *c, const char *what, uint64_t i, const char *noun, const char *s,
                      uint64_t n) {
    size_t ok = vt_utf8_valid_len(s, (size_t)n);
    if (ok == n) return 0;
    return vt_fail(VT_EFORMAT,
                   "%s: GGUF %s %llu (at byte %zu): %s is not valid UTF-8 (byte 0x%02x at offset "
                   "%zu of the %s, after '%.*s')",
                   c->path, what, (unsigned long long)i, c->pos - (size_t)n, noun,
                   (unsigned char)s[ok], ok, noun, (int)(ok < 100 ? ok : 100), s);
}

static int parse_kvs(cur *c, vt_src_file *f, uint64_t n_kv) {
    for (uint64_t i = 0; i < n_kv; i++) {
        const char *k;
        uint64_t klen;
        uint32_t type;
        int rc = rd_str(c, &k, &klen, GGUF_MAX_KEY, "metadata key");
        if (rc) return rc;
        if (klen == 0 || memchr(k, 0, (size_t)klen))
            return vt_fail(VT_EFORMAT, "%s: GGUF metadata key %llu is empty or contains NUL",
                           c->path, (unsigned long long)i);
        if ((rc = check_utf8(c, "metadata key", i, "key", k, klen))) return rc;
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(klen < 100 ? klen : 100), k);
        if ((rc = rd_u32(c, &type, "metadata value type"))) return rc;
        size_t v0 = c->pos;
        if ((rc = skip_value(c, type, 0, key))) return rc;
        for (uint32_t j = 0; j < f->n_kv; j++)
            if (strlen(f->kv[j].key) == klen && !memcmp(f->kv[j].key, k, (size_t)klen))
                return vt_fail(VT_EFORMAT, "%s: GGUF duplicate metadata key '%s'", c->path, key);
        vt_src_kv *kv = &f->kv[f->n_kv];
        kv->key = vt_malloc((size_t)klen + 1);
        kv->val = vt_malloc(c->pos - v0);
        if (!kv->key || !kv->val) {
            vt_free(kv->key);
            vt_free(kv->val);
            kv->key = NULL;
            kv->val = NULL;
            return vt_fail(-ENOMEM, "%s: out of memory for GGUF metadata '%s'", c->path, key);
        }
        memcpy(kv->key, k, (size_t)klen);
        kv->key[klen] = 0;
        memcpy(kv->val, c->b + v0, c->pos - v0);
        kv->val_len = c->pos - v0;
        kv->type = type;
        f->n_kv++;
    }
    return 0;
}

static int parse_tensor_info(cur *c, vt_src_file *f, uint64_t i, uint64_t *rel_off) {
    vt_src_tensor *t = &f->tensors[i];
    const char *name;
    uint64_t nlen;
    int rc = rd_str(c, &name, &nlen, VT_MAX_NAME - 1, "tensor name");
    if (rc) return rc;
    if (nlen == 0 || memchr(name, 0, (size_t)nlen))
        return vt_fail(VT_EFORMAT, "%s: GGUF tensor %llu: empty name or name containing NUL",
                       c->path, (unsigned long long)i);
    if ((rc = check_utf8(c, "tensor", i, "name", name, nlen))) return rc;
    memcpy(t->desc.name, name, (size_t)nlen);
    t->desc.name[nlen] = 0;
    const char *tn = t->desc.name;
    uint32_t nd, type;
    if ((rc = rd_u32(c, &nd, "tensor n_dims"))) return rc;
    if (nd == 0 || nd > VT_MAX_DIMS)
        return vt_fail(VT_EFORMAT, "%s: tensor '%s': %u dimensions (expected 1..%d)", c->path, tn,
                       nd, VT_MAX_DIMS);
    uint64_t ne[VT_MAX_DIMS];
    for (uint32_t d = 0; d < nd; d++) {
        if ((rc = rd_u64(c, &ne[d], "tensor dimension"))) return rc;
        if (ne[d] > VT_PARSE_MAX_DIM)
            return vt_fail(VT_EFORMAT, "%s: tensor '%s': dimension ne[%u] = %llu exceeds 2^40",
                           c->path, tn, d, (unsigned long long)ne[d]);
    }
    if ((rc = rd_u32(c, &type, "tensor type")) || (rc = rd_u64(c, rel_off, "tensor offset")))
        return rc;
    uint32_t belems, bbytes;
    if (vt_ggml_type_info(type, &t->desc.dtype, &t->block_fmt, &belems, &bbytes))
        return vt_fail(VT_EUNSUPPORTED, "%s: unsupported ggml type %u for tensor '%s'", c->path,
                       type, tn);
    t->ggml_type = type;
    t->desc.ndim = nd;
    for (uint32_t d = 0; d < nd; d++) t->desc.dims[d] = ne[nd - 1 - d];
    uint64_t numel;
    if (vt_dims_product(ne, nd, &numel))
        return vt_fail(VT_EFORMAT, "%s: tensor '%s': shape overflows 64 bits", c->path, tn);
    if (ne[0] % belems)
        return vt_fail(VT_EFORMAT,
                       "%s: tensor '%s': row of %llu elements is not a whole number of %s blocks "
                       "(%u elements)",
                       c->path, tn, (unsigned long long)ne[0], vt_ggml_type_name(type), belems);
    if (numel / belems > UINT64_MAX / bbytes)
        return vt_fail(VT_EFORMAT, "%s: tensor '%s': byte size overflows 64 bits", c->path, tn);
    t->nbytes = numel / belems * bbytes;
    return 0;
}

static int parse_impl(cur *c, vt_src_file *f) {
    uint32_t magic, version;
    uint64_t n_tensors, n_kv;
    int rc = rd_u32(c, &magic, "magic");
    if (rc) return rc;
    if (magic != 0x46554747u)
        return vt_fail(VT_EFORMAT, "%s: not a GGUF file (bad magic)", c->path);
    if ((rc = rd_u32(c, &version, "version"))) return rc;
    if (version != 2 && version != 3)
        return vt_fail(VT_EUNSUPPORTED, "%s: GGUF version %u is not supported (2 and 3 are)",
                       c->path, version);
    if ((rc = rd_u64(c, &n_tensors, "tensor count")) || (rc = rd_u64(c, &n_kv, "kv count")))
        return rc;
    if (n_tensors > VT_PARSE_MAX_TENSORS)
        return vt_fail(VT_EFORMAT, "%s: GGUF claims %llu tensors (cap %u)", c->path,
                       (unsigned long long)n_tensors, VT_PARSE_MAX_TENSORS);
    if (n_kv > VT_PARSE_MAX_KV)
        return vt_fail(VT_EFORMAT, "%s: GGUF claims %llu metadata pairs (cap %u)", c->path,
                       (unsigned long long)n_kv, VT_PARSE_MAX_KV);
    /* each kv takes >= 13 bytes and each tensor info >= 29: refuse counts the file cannot hold */
    if (n_kv * 13 + n_tensors * 29 > c->file_size)
        return vt_fail(VT_EFORMAT,
                       "%s: GGUF claims %llu tensors and %llu metadata pairs, more "
                       "than a %llu-byte file can hold",
                       c->path, (unsigned long long)n_tensors, (unsigned long long)n_kv,
                       (unsigned long long)c->file_size);
    f->version = version;
    f->kv = vt_calloc(n_kv ? n_kv : 1, sizeof *f->kv);
    f->tensors = vt_calloc(n_tensors ? n_tensors : 1, sizeof *f->tensors);
    if (!f->kv || !f->tensors)
        return vt_fail(-ENOMEM, "%s: out of memory for the GGUF header", c->path);
    if ((rc = parse_kvs(c, f, n_kv))) return rc;
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (uint32_t j = 0; j < f->n_kv; j++) {
        if (strcmp(f->kv[j].key, "general.alignment")) continue;
        uint64_t a = f->kv[j].type == VT_GGUF_UINT32 ? le(f->kv[j].val, 4) : 0;
        if (a == 0 || (a & (a - 1)))
            return vt_fail(VT_EFORMAT,
                           "%s: general.alignment must be a u32 power of two (type %u, value %llu)",
                           c->path, f->kv[j].type, (unsigned long long)a);
        f->alignment = a;
    }
    uint64_t *rel = vt_malloc((n_tensors ? n_tensors : 1) * sizeof *rel);
    if (!rel) return vt_fail(-ENOMEM, "%s: out of memory for the GGUF header", c->path);
    for (uint64_t i = 0; i < n_tensors && !rc; i++) {
        rc = parse_tensor_info(c, f, i, &rel[i]);
        if (!rc) f->n_tensors++;
    }
    if (!rc) {
        uint64_t a = f->alignment;
        f->data_start = (c->pos + a - 1) / a * a;
        for (uint32_t i = 0; i < f->n_tensors && !rc; i++) {
            vt_src_tensor *t = &f->tensors[i];
            if (rel[i] % a)
                rc = vt_fail(VT_EFORMAT,
                             "%s: tensor '%s': offset %llu is not a multiple of the "
                             "alignment %llu",
                             c->path, t->desc.name, (unsigned long long)rel[i],
                             (unsigned long long)a);
            else if (rel[i] > c->file_size)
                rc = vt_fail(VT_EFORMAT,
                             "%s: tensor '%s': offset %llu lies past the end of the "
                             "%llu-byte file",
                             c->path, t->desc.name, (unsigned long long)rel[i],
                             (unsigned long long)c->file_size);
            else
                t->offset = f->data_start + rel[i];
        }
    }
    vt_free(rel);
    if (rc) return rc;
    if ((rc = vt_src_check_names(f))) return rc;
    return vt_src_check_ranges(f, f->data_start, c->file_size);
}

static int parse_buf(const void *buf, size_t len, uint64_t file_size, const char *path,
                     vt_src_file *out, int *need_more) {
    memset(out, 0, sizeof *out);
    if (!path) path = "<memory>";
    if (len > file_size) len = (size_t)file_size;
    cur c = {buf, len, file_size, 0, path, 0};
    out->kind = VT_SRC_GGUF;
    out->file_size = file_size;
    out->path = vt_strdup(path);
    int rc = out->path ? parse_impl(&c, out) : vt_fail(-ENOMEM, "%s: out of memory", path);
    if (rc) vt_src_file_free(out);
    if (need_more) *need_more = c.need_more;
    return rc;
}

int vt_parse_gguf_mem(const void *buf, size_t len, uint64_t file_size, const char *path,
                      vt_src_file *out) {
    return parse_buf(buf, len, file_size, path, out, NULL);
}

int vt_parse_gguf_fd(int fd, const char *path, vt_src_file *out) {
    memset(out, 0, sizeof *out);
    struct stat st;
    if (fstat(fd, &st)) return vt_fail(-errno, "%s: fstat failed", path);
    uint64_t size = (uint64_t)st.st_size;
    uint64_t cap = size < VT_PARSE_MAX_HEADER ? size : VT_PARSE_MAX_HEADER;
    uint64_t n = cap < (1u << 20) ? cap : (1u << 20);
    for (;;) {
        unsigned char *buf = vt_malloc(n ? (size_t)n : 1);
        if (!buf) return vt_fail(-ENOMEM, "%s: out of memory reading the GGUF header", path);
        int rc = vt_pread_full(fd, buf, (size_t)n, 0);
        if (rc) {
            vt_free(buf);
            return vt_fail(rc, "%s: reading the GGUF header: %s", path, vt_strerror(rc));
        }
        int more = 0;
        rc = parse_buf(buf, (size_t)n, size, path, out, &more);
        vt_free(buf);
        if (!rc || !more) return rc;
        if (n >= cap)
            return vt_fail(VT_EFORMAT, "%s: GGUF metadata larger than the %llu-byte cap", path,
                           (unsigned long long)VT_PARSE_MAX_HEADER);
        n = n * 4 < cap ? n * 4 : cap;
    }
}
