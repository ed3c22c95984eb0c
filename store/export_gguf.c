/* Export to GGUF v3: GGUF-native stored formats keep their bytes, others are dequantized;
 * "gguf.*" metadata goes back as key/values (general.* first). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "export_internal.h"
#include "vtstore/meta.h"

typedef struct kv_ctx {
    exp_buf *b;
    uint64_t count;
    int general; /* pass 1: gguf.general.* only; pass 2: the rest */
    uint64_t alignment;
} kv_ctx;

static int kv_cb(void *ctx, const char *key, const void *val, size_t len) {
    kv_ctx *c = ctx;
    const char *k = key + 5; /* after "gguf." */
    int is_general = !strncmp(k, "general.", 8);
    if (is_general != c->general) return 0;
    if (vt_meta_check(val, len)) {
        vt_log(VT_LOG_WARN, "metadata '%s' is not a typed value; not exported", key);
        return 0;
    }
    const unsigned char *v = val;
    if (!strcmp(k, "general.alignment")) {
        uint64_t a = v[0] == VT_META_U32 ? (uint64_t)v[4] | (uint64_t)v[5] << 8 |
                                               (uint64_t)v[6] << 16 | (uint64_t)v[7] << 24
                                         : 0;
        if (!a || (a & (a - 1))) return 0; /* keep the default rather than write a bad one */
        c->alignment = a;
    }
    exp_le(c->b, strlen(k), 8);
    exp_put(c->b, k, strlen(k));
    exp_put(c->b, val, len); /* u32 type + GGUF value: exactly GGUF's kv layout */
    c->count++;
    return 0;
}

typedef struct gguf_t {
    uint32_t type;
    int keep;     /* write the stored bytes */
    vt_dtype deq; /* else dequantize to this */
    uint64_t bytes;
} gguf_t;

/* ggml's readers (gguf.cpp: name.length() >= GGML_MAX_NAME, 64) refuse longer names */
#define GGUF_MAX_NAME 63

static int plan(const vt_tensor_info *ti, vt_dtype deq, gguf_t *g) {
    memset(g, 0, sizeof *g);
    if (ti->ndim > 4)
        return vt_fail(VT_EUNSUPPORTED, "tensor '%s': %u dimensions (GGUF has at most 4)", ti->name,
                       ti->ndim);
    size_t nl = strlen(ti->name);
    if (nl > GGUF_MAX_NAME)
        return vt_fail(VT_EUNSUPPORTED,
                       "tensor '%s': name of %zu bytes (GGUF tensor names are shorter than 64 "
                       "bytes: ggml's GGML_MAX_NAME); leave it out with --pattern",
                       ti->name, nl);
    uint32_t t, be = 0;
    if (ti->format == VT_STORE_FMT_RAW) {
        t = vt_ggml_type_of_dtype(ti->src_dtype);
        /* fp8, a float GGUF has no type for, is dequantized below as quantized formats are */
        if (t == VT_GGML_NONE && ti->src_dtype != VT_DTYPE_FP8_E4M3)
            return vt_fail(VT_EUNSUPPORTED, "tensor '%s': GGUF has no type for %s", ti->name,
                           vt_dtype_name(ti->src_dtype));
        be = 1;
    } else {
        t = vt_ggml_type_of_format(ti->format);
        if (t != VT_GGML_NONE) vt_ggml_type_info(t, NULL, NULL, &be, NULL);
    }
    if (t != VT_GGML_NONE && ti->cols % be == 0) {
        g->type = t;
        g->keep = 1;
        g->bytes = ti->raw_bytes;
        return 0;
    }
    g->type = vt_ggml_type_of_dtype(deq);
    g->deq = deq;
    g->bytes = ti->rows * ti->cols * vt_dtype_size(deq);
    return 0;
}

int vt_export_gguf(vt_store *s, const char *path, const vt_export_options *o) {
    vt_dtype deq;
    vt_tensor_info *v = NULL;
    uint64_t n = 0;
    int rc = exp_begin(s, path, o, VT_DTYPE_F16, &deq, &v, &n);
    if (rc) return rc;
    gguf_t *g = vt_calloc(n ? n : 1, sizeof *g);
    if (!g) rc = vt_fail(-ENOMEM, "%s: out of memory", path);
    for (uint64_t i = 0; i < n && !rc; i++) rc = plan(&v[i], deq, &g[i]);
    exp_buf kv = {0}, h = {0};
    kv_ctx kc = {&kv, 0, 1, 32};
    if (!rc) rc = vt_store_meta_list(s, "gguf.", kv_cb, &kc);
    kc.general = 0;
    if (!rc) rc = vt_store_meta_list(s, "gguf.", kv_cb, &kc);
    uint64_t a = kc.alignment;
    exp_put(&h, "GGUF", 4);
    exp_le(&h, 3, 4);
    exp_le(&h, n, 8);
    exp_le(&h, kc.count, 8);
    if (!kv.err && kv.n) exp_put(&h, kv.p, kv.n);
    uint64_t off = 0;
    for (uint64_t i = 0; i < n && !rc; i++) {
        size_t nl = strlen(v[i].name);
        exp_le(&h, nl, 8);
        exp_put(&h, v[i].name, nl);
        uint32_t nd = v[i].ndim ? v[i].ndim : 1;
        exp_le(&h, nd, 4);
        for (uint32_t d = 0; d < nd; d++) exp_le(&h, v[i].ndim ? v[i].dims[nd - 1 - d] : 1, 8);
        exp_le(&h, g[i].type, 4);
        exp_le(&h, off, 8);
        off += (g[i].bytes + a - 1) / a * a;
    }
    if (!rc && (kv.err || h.err)) rc = kv.err ? kv.err : h.err;
    exp_out out;
    if (!rc && !(rc = exp_out_open(&out, path))) {
        uint64_t data0 = (h.n + a - 1) / a * a;
        rc = exp_out_write(&out, h.p, h.n, 0);
        uint64_t pos = data0;
        for (uint64_t i = 0; i < n && !rc; i++) {
            if (g[i].keep)
                rc = exp_write_stored(s, &v[i], out.fd, pos);
            else
                rc = exp_write_rows(s, &v[i], g[i].deq, 0, v[i].rows, out.fd, pos);
            pos += (g[i].bytes + a - 1) / a * a;
        }
        /* the file ends at the padded end of the last tensor, as ggml writes it */
        if (!rc && ftruncate(out.fd, (off_t)pos)) rc = vt_fail(-errno, "%s: truncate failed", path);
        rc = exp_out_close(&out, rc);
    }
    exp_buf_free(&kv);
    exp_buf_free(&h);
    vt_free(g);
    vt_free(v);
    return rc;
}
