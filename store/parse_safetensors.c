/* safetensors header parser: u64 little-endian header length, a JSON object of tensors
 * {"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
 * then the data region. Nothing in the header is trusted. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "parse.h"

static const struct {
    const char *name;
    vt_dtype dtype;
} st_dtypes[] = {
    {"F32", VT_DTYPE_F32},   {"F16", VT_DTYPE_F16},
    {"BF16", VT_DTYPE_BF16}, {"F64", VT_DTYPE_F64},
    {"I8", VT_DTYPE_I8},     {"U8", VT_DTYPE_U8},
    {"I16", VT_DTYPE_I16},   {"I32", VT_DTYPE_I32},
    {"I64", VT_DTYPE_I64},   {"U16", VT_DTYPE_U16},
    {"U32", VT_DTYPE_U32},   {"U64", VT_DTYPE_U64},
    {"BOOL", VT_DTYPE_BOOL}, {"F8_E4M3", VT_DTYPE_FP8_E4M3},
};

const char *vt_safetensors_dtype_name(vt_dtype t) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (st_dtypes[i].dtype == t) return st_dtypes[i].name;
    return NULL;
}

static uint64_t rd_u64(const unsigned char *b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static int add_meta(vt_src_file *f, const vt_json *j, uint32_t node) {
    const char *path = f->path;
    if (j->nodes[node].type != VT_JSON_OBJECT)
        return vt_fail(VT_EFORMAT, "%s: __metadata__ is not an object", path);
    uint32_t n = j->nodes[node].count;
    if (n > VT_PARSE_MAX_KV)
        return vt_fail(VT_EFORMAT, "%s: __metadata__ has %u entries (cap %u)", path, n,
                       VT_PARSE_MAX_KV);
    f->kv = vt_calloc(n ? n : 1, sizeof *f->kv);
    if (!f->kv) return vt_fail(-ENOMEM, "%s: out of memory", path);
    for (uint32_t c = j->nodes[node].child; c; c = j->nodes[c].next) {
        if (j->nodes[c].type != VT_JSON_STRING)
            return vt_fail(VT_EFORMAT, "%s: __metadata__ value of '%s' is not a string", path,
                           vt_json_key(j, c));
        vt_src_kv *kv = &f->kv[f->n_kv];
        uint64_t len = j->nodes[c].len;
        kv->key = vt_strdup(vt_json_key(j, c));
        kv->val = vt_malloc(8 + len);
        if (!kv->key || !kv->val) {
            vt_free(kv->key);
            vt_free(kv->val);
            kv->key = NULL;
            kv->val = NULL;
            return vt_fail(-ENOMEM, "%s: out of memory", path);
        }
        f->n_kv++;
        kv->type = VT_GGUF_STRING;
        kv->val_len = 8 + len;
        for (int i = 0; i < 8; i++) kv->val[i] = (uint8_t)(len >> (8 * i));
        memcpy(kv->val + 8, vt_json_str(j, c), len);
    }
    return 0;
}

static int parse_tensor(vt_src_file *f, const vt_json *j, uint32_t node, vt_src_tensor *t,
                        uint64_t data_len) {
    const char *path = f->path, *name = vt_json_key(j, node);
    size_t nlen = strlen(name);
    if (nlen == 0) return vt_fail(VT_EFORMAT, "%s: tensor with an empty name", path);
    if (nlen >= VT_MAX_NAME)
        return vt_fail(VT_EFORMAT, "%s: tensor name of %zu bytes is too long (max %d): '%.40s...'",
                       path, nlen, VT_MAX_NAME - 1, name);
    memcpy(t->desc.name, name, nlen + 1);
    t->ggml_type = VT_GGML_NONE;
    t->block_fmt = VT_FMT_COUNT;
    if (j->nodes[node].type != VT_JSON_OBJECT)
        return vt_fail(VT_EFORMAT, "%s: tensor '%s': entry is not an object", path, name);
    uint32_t dt = vt_json_get(j, node, "dtype"), sh = vt_json_get(j, node, "shape"),
             off = vt_json_get(j, node, "data_offsets");
    if (!dt || j->nodes[dt].type != VT_JSON_STRING)
        return vt_fail(VT_EFORMAT, "%s: tensor '%s': missing or non-string \"dtype\"", path, name);
    if (!sh || j->nodes[sh].type != VT_JSON_ARRAY)
        return vt_fail(VT_EFORMAT, "%s: tensor '%s': missing or non-array \"shape\"", path, name);
    if (!off || j->nodes[off].type != VT_JSON_ARRAY || j->nodes[off].count != 2)
        return vt_fail(VT_EFORMAT, "%s: tensor '%s': \"data_offsets\" is not [begin, end]", path,
                       name);
    const char *dts = vt_json_str(j, dt);
    size_t k;
    for (k = 0; k < sizeof st_dtypes / sizeof st_dtypes[0]; k++)
        if (!strcmp(dts, st_dtypes[k].name)) break;
    if (k == sizeof st_dtypes / sizeof st_dtypes[0])
        return vt_fail(VT_EFORMAT, "%s: tensor '%s': unknown dtype '%.32s'", path, name, dts);
    t->desc.dtype = st_dtypes[k].dtype;
    if (j->nodes[sh].count > VT_MAX_DIMS)
        return vt_fail(VT_EFORMAT, "%s: tensor '%s': %u dimensions (max %d)", path, name,
                       j->nodes[sh].count, VT_MAX_DIMS);
    t->desc.ndim = 0;
    for (uint32_t c = j->nodes[sh].child; c; c = j->nodes[c].next) {
        uint64_t d;
        if (vt_json_u64(j, c, &d) || d > VT_PARSE_MAX_DIM)
            return vt_fail(VT_EFORMAT,
                           "%s: tensor '%s': dimension %u is not an integer in [0, 2^40]", path,
                           name, t->desc.ndim);
        t->desc.dims[t->desc.ndim++] = d;
    }
    uint64_t numel, begin, end;
    if (vt_dims_product(t->desc.dims, t->desc.ndim, &numel) ||
        numel > UINT64_MAX / vt_dtype_size(t->desc.dtype))
        return vt_fail(VT_EFORMAT, "%s: tensor '%s': shape overflows 64 bits", path, name);
    uint32_t b = j->nodes[off].child, e = j->nodes[b].next;
    if (vt_json_u64(j, b, &begin) || vt_json_u64(j, e, &end))
        return vt_fail(VT_EFORMAT, "%s: tensor '%s': data_offsets are not unsigned integers", path,
                       name);
    if (end < begin)
        return vt_fail(VT_EFORMAT, "%s: tensor '%s': data_offsets end %llu < begin %llu", path,
                       name, (unsigned long long)end, (unsigned long long)begin);
    uint64_t want = numel * vt_dtype_size(t->desc.dtype);
    if (end - begin != want)
        return vt_fail(VT_EFORMAT,
                       "%s: tensor '%s': data_offsets span %llu bytes but shape x dtype needs %llu",
                       path, name, (unsigned long long)(end - begin), (unsigned long long)want);
    if (end > data_len)
        return vt_fail(VT_EFORMAT,
                       "%s: tensor '%s': data ends at %llu, past the end of the data region "
                       "(%llu bytes; file truncated?)",
                       path, name, (unsigned long long)end, (unsigned long long)data_len);
    t->offset = f->data_start + begin;
    t->nbytes = want;
    return 0;
}

int vt_parse_safetensors_mem(const void *buf, size_t len, uint64_t file_size, const char *path,
                             vt_src_file *out) {
    memset(out, 0, sizeof *out);
    const unsigned char *b = buf;
    if (!path) path = "<memory>";
    if (len > file_size) len = (size_t)file_size;
    if (len < 8)
        return vt_fail(VT_EFORMAT, "%s: truncated safetensors file (%zu bytes, no header length)",
                       path, len);
    uint64_t hlen = rd_u64(b);
    if (hlen > VT_PARSE_MAX_HEADER)
        return vt_fail(VT_EFORMAT, "%s: safetensors header length %llu exceeds the %llu-byte cap",
                       path, (unsigned long long)hlen, (unsigned long long)VT_PARSE_MAX_HEADER);
    if (hlen > file_size - 8)
        return vt_fail(VT_EFORMAT,
                       "%s: safetensors header length %llu runs past the end of the %llu-byte file",
                       path, (unsigned long long)hlen, (unsigned long long)file_size);
    if (hlen > len - 8)
        return vt_fail(VT_EFORMAT, "%s: safetensors header: only %zu of %llu bytes available", path,
                       len - 8, (unsigned long long)hlen);
    vt_json j;
    int rc = vt_json_parse((const char *)b + 8, (size_t)hlen, path, &j);
    if (rc) return rc;
    out->path = vt_strdup(path);
    if (!out->path) {
        rc = vt_fail(-ENOMEM, "%s: out of memory", path);
        goto done;
    }
    out->kind = VT_SRC_SAFETENSORS;
    out->file_size = file_size;
    out->alignment = 1;
    out->data_start = 8 + hlen;
    if (j.nodes[0].type != VT_JSON_OBJECT) {
        rc = vt_fail(VT_EFORMAT, "%s: safetensors header is not a JSON object", path);
        goto done;
    }
    uint32_t count = j.nodes[0].count;
    if (count > VT_PARSE_MAX_TENSORS) {
        rc = vt_fail(VT_EFORMAT, "%s: %u tensors (cap %u)", path, count, VT_PARSE_MAX_TENSORS);
        goto done;
    }
    out->tensors = vt_calloc(count ? count : 1, sizeof *out->tensors);
    if (!out->tensors) {
        rc = vt_fail(-ENOMEM, "%s: out of memory for %u tensors", path, count);
        goto done;
    }
    int seen_meta = 0;
    for (uint32_t c = j.nodes[0].child; c; c = j.nodes[c].next) {
        if (!strcmp(vt_json_key(&j, c), "__metadata__")) {
            if (seen_meta++) {
                rc = vt_fail(VT_EFORMAT, "%s: duplicate __metadata__", path);
                goto done;
            }
            if ((rc = add_meta(out, &j, c))) goto done;
            continue;
        }
        rc = parse_tensor(out, &j, c, &out->tensors[out->n_tensors], file_size - out->data_start);
        if (rc) goto done;
        out->n_tensors++;
    }
    if ((rc = vt_src_check_names(out))) goto done;
    rc = vt_src_check_ranges(out, out->data_start, file_size);
done:
    vt_json_free(&j);
    if (rc) vt_src_file_free(out);
    return rc;
}

int vt_parse_safetensors_fd(int fd, const char *path, vt_src_file *out) {
    memset(out, 0, sizeof *out);
    struct stat st;
    if (fstat(fd, &st)) return vt_fail(-errno, "%s: fstat failed", path);
    uint64_t size = (uint64_t)st.st_size;
    unsigned char head[8];
    if (size < 8)
        return vt_fail(VT_EFORMAT, "%s: truncated safetensors file (%llu bytes)", path,
                       (unsigned long long)size);
    int rc = vt_pread_full(fd, head, 8, 0);
    if (rc) return vt_fail(rc, "%s: reading the header length: %s", path, vt_strerror(rc));
    uint64_t hlen = rd_u64(head);
    if (hlen > VT_PARSE_MAX_HEADER || hlen > size - 8) /* let the parser word the error */
        return vt_parse_safetensors_mem(head, 8, size, path, out);
    unsigned char *buf = vt_malloc((size_t)hlen + 8);
    if (!buf)
        return vt_fail(-ENOMEM, "%s: out of memory for a %llu-byte header", path,
                       (unsigned long long)hlen);
    rc = vt_pread_full(fd, buf, (size_t)hlen + 8, 0);
    if (rc)
        rc = vt_fail(rc, "%s: reading the header: %s", path, vt_strerror(rc));
    else
        rc = vt_parse_safetensors_mem(buf, (size_t)hlen + 8, size, path, out);
    vt_free(buf);
    return rc;
}
