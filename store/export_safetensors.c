/* Export to safetensors: plain tensors in their own type, quantized ones dequantized, and the
 * "safetensors.*" string metadata back into __metadata__. */
#include <errno.h>
#include <string.h>

#include "export_internal.h"
#include "vtstore/meta.h"

typedef struct meta_ctx {
    exp_buf *h;
    int count;
} meta_ctx;

static int meta_cb(void *ctx, const char *key, const void *val, size_t len) {
    meta_ctx *c = ctx;
    const unsigned char *v = val;
    if (vt_meta_check(val, len) || v[0] != VT_META_STRING) return 0; /* strings only */
    if (c->count++) exp_put(c->h, ",", 1);
    const char *k = key + strlen("safetensors.");
    exp_json_str(c->h, k, strlen(k));
    exp_put(c->h, ":", 1);
    exp_json_str(c->h, (const char *)v + 12, len - 12);
    return 0;
}

static vt_dtype out_dtype(const vt_tensor_info *ti, vt_dtype deq) {
    vt_dtype dt;
    return exp_plain_dtype(ti, &dt) ? dt : deq;
}

int vt_export_safetensors(vt_store *s, const char *path, const vt_export_options *o) {
    vt_dtype deq;
    vt_tensor_info *v = NULL;
    uint64_t n = 0;
    int rc = exp_begin(s, path, o, VT_DTYPE_F32, &deq, &v, &n);
    if (rc) return rc;
    exp_buf h = {0};
    exp_put(&h, "{", 1);
    meta_ctx mc = {&h, 0};
    exp_put(&h, "\"__metadata__\":{", 16);
    rc = vt_store_meta_list(s, "safetensors.", meta_cb, &mc);
    exp_put(&h, "}", 1);
    uint64_t off = 0;
    for (uint64_t i = 0; i < n && !rc; i++) {
        vt_dtype dt = out_dtype(&v[i], deq);
        const char *dn = vt_safetensors_dtype_name(dt);
        if (!strcmp(v[i].name, "__metadata__")) { /* the header's own key: a duplicate */
            rc = vt_fail(VT_EUNSUPPORTED,
                         "tensor '__metadata__': safetensors reserves the name for the header's "
                         "metadata; leave it out with --pattern");
            break;
        }
        if (!dn) {
            rc = vt_fail(VT_EUNSUPPORTED, "tensor '%s': dtype %s has no safetensors name",
                         v[i].name, vt_dtype_name(dt));
            break;
        }
        uint64_t bytes = v[i].rows * v[i].cols * vt_dtype_size(dt);
        exp_put(&h, ",", 1);
        exp_json_str(&h, v[i].name, strlen(v[i].name));
        exp_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", dn);
        for (uint32_t d = 0; d < v[i].ndim; d++)
            exp_printf(&h, "%s%llu", d ? "," : "", (unsigned long long)v[i].dims[d]);
        exp_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                   (unsigned long long)(off + bytes));
        off += bytes;
    }
    exp_put(&h, "}", 1);
    while (!h.err && (h.n % 8)) exp_put(&h, " ", 1);
    if (!rc && h.err) rc = h.err;
    exp_out out;
    if (!rc && !(rc = exp_out_open(&out, path))) {
        unsigned char len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
        rc = exp_out_write(&out, len8, 8, 0);
        if (!rc) rc = exp_out_write(&out, h.p, h.n, 8);
        uint64_t pos = 8 + h.n;
        for (uint64_t i = 0; i < n && !rc; i++) {
            vt_dtype dt = out_dtype(&v[i], deq), pd;
            if (exp_plain_dtype(&v[i], &pd))
                rc = exp_write_stored(s, &v[i], out.fd, pos);
            else
                rc = exp_write_rows(s, &v[i], dt, 0, v[i].rows, out.fd, pos);
            pos += v[i].rows * v[i].cols * vt_dtype_size(dt);
        }
        rc = exp_out_close(&out, rc);
    }
    exp_buf_free(&h);
    vt_free(v);
    return rc;
}
