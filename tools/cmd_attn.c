/* vtstore attn — run attention on .npy inputs, optionally with K/V quantized into a KV cache
 * format first, on the CPU or the GPU. Q [H, Nq, D], K and V [Hkv, Nk, D] (f32 or f16; f64 is
 * converted to f32); writes O [H, Nq, D] and optionally LSE [H, Nq]. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "npy_io.h"
#include "vtstore/attn.h"
#include "vtstore/device.h"
#include "vtstore/quant.h"

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: vtstore attn --q Q.npy --k K.npy --v V.npy -o OUT.npy [options]\n"
        "\n"
        "  O = softmax(scale * Q K^T + mask) V for Q [H, Nq, D] and K, V [Hkv, Nk, D]\n"
        "  (f32 or f16 .npy; H a multiple of Hkv for grouped-query attention).\n"
        "\n"
        "  --kv-format F   quantize K and V into F first: f32, f16, bf16, q8_0, int8, q4_0,\n"
        "                  nf4, nvfp4, mxfp4 (default: K/V as given, f32 or f16)\n"
        "  --causal        causal mask, bottom-right aligned: query i sees key j <= i + Nk - Nq\n"
        "  --scale S       softmax scale (default 1/sqrt(D))\n"
        "  --device D      cpu (default) or cuda (D must be 64 or 128)\n"
        "  --algo A        auto (default), flash, decode, naive, naive-f64 (naive: CPU only)\n"
        "  --lse FILE.npy  also write the log-sum-exp [H, Nq] (f32; -inf for rows that see\n"
        "                  no key)\n"
        "  --out-dtype T   f32 (default) or f16\n"
        "  --threads N     CPU threads (default: all)\n"
        "  -o FILE.npy     output O [H, Nq, D]\n");
}

/* |x| at or beyond which a double rounds to an infinite float: FLT_MAX plus half its ulp,
 * 2^128 - 2^103 (round to nearest even goes up from the midpoint: FLT_MAX's last bit is 1). */
#define F32_OVERFLOW 0x1.ffffffp127

/* Read a 3-D f32/f16 array (f64 converted to f32; a finite value beyond the f32 range is
 * refused, naming the file and its flat index). */
static int read_3d(const char *path, const char *what, vt_npy *a) {
    int rc = vt_npy_read(path, a);
    if (rc) {
        vt_cli_error("attn", rc, "cannot read %s", what);
        return rc;
    }
    if (a->ndim != 3) {
        fprintf(stderr, "vtstore attn: %s %s has %u dimensions, want 3 ([heads, tokens, dim])\n",
                what, path, a->ndim);
        return VT_ESHAPE;
    }
    if (a->dtype == VT_DTYPE_F64) {
        float *f = vt_malloc(a->numel ? a->numel * sizeof(float) : 1);
        if (!f) return -ENOMEM;
        for (uint64_t i = 0; i < a->numel; i++) {
            double x = ((double *)a->data)[i];
            if (isfinite(x) && fabs(x) >= F32_OVERFLOW) {
                fprintf(stderr,
                        "vtstore attn: %s %s: element %llu (flat index) is %g, outside the f32 "
                        "range the f64 input is converted to\n",
                        what, path, (unsigned long long)i, x);
                vt_free(f);
                return -ERANGE;
            }
            f[i] = (float)x;
        }
        vt_free(a->data);
        a->data = f;
        a->dtype = VT_DTYPE_F32;
    }
    if (a->dtype != VT_DTYPE_F32 && a->dtype != VT_DTYPE_F16) {
        fprintf(stderr, "vtstore attn: %s %s has dtype %s, want f32 or f16\n", what, path,
                vt_dtype_name(a->dtype));
        return VT_EUNSUPPORTED;
    }
    return 0;
}

/* Refuse a NaN or an infinity in @p a (f32 or f16), naming the file and the flat index: attention
 * has no meaningful result for it (an infinite Q gave a zero output). */
static int check_finite(const char *path, const char *what, const vt_npy *a) {
    for (uint64_t i = 0; i < a->numel; i++) {
        float x = a->dtype == VT_DTYPE_F32 ? ((const float *)a->data)[i]
                                           : vt_f16_to_f32(((const uint16_t *)a->data)[i]);
        if (!isfinite(x)) {
            fprintf(stderr, "vtstore attn: %s %s: element %llu (flat index) is %g, not finite\n",
                    what, path, (unsigned long long)i, (double)x);
            return VT_ENONFINITE;
        }
    }
    return 0;
}

static int to_f32(vt_npy *a) {
    if (a->dtype == VT_DTYPE_F32) return 0;
    float *f = vt_malloc(a->numel ? a->numel * sizeof(float) : 1);
    if (!f) return -ENOMEM;
    vt_f16_to_f32_row(a->data, f, a->numel);
    vt_free(a->data);
    a->data = f;
    a->dtype = VT_DTYPE_F32;
    return 0;
}

/* vt_quant_check of K or V (f32 or f16, [rows][D]) for the cache format: 0, or 1 after printing
 * the error naming the file. */
static int check_kv(uint32_t fmt, float ts, const vt_npy *a, const char *path, const char *what,
                    uint64_t rows, uint64_t D) {
    const float *x = a->data;
    float *tmp = NULL;
    if (a->dtype != VT_DTYPE_F32) {
        if (!(tmp = vt_malloc(a->numel ? a->numel * sizeof(float) : 1))) {
            vt_cli_error("attn", -ENOMEM, "checking %s %s", what, path);
            return 1;
        }
        vt_f16_to_f32_row(a->data, tmp, a->numel);
        x = tmp;
    }
    vt_quant_params p;
    vt_quant_params_init(&p);
    p.tensor_scale = ts > 0.0f ? ts : 1.0f;
    int rc = vt_quant_check(fmt, &p, x, rows, D);
    vt_free(tmp);
    if (rc) vt_cli_error("attn", rc, "%s %s (rows are head x token)", what, path);
    return rc != 0;
}

/* Device copy of n bytes (NULL data allowed for outputs). */
static int dev_copy(void **d, const void *h, size_t n) {
    int rc = vt_dev_malloc(d, n ? n : 16);
    if (!rc && h && n) rc = vt_dev_memcpy_h2d(*d, h, n, NULL);
    return rc;
}

int vt_cmd_attn(int argc, char **argv) {
    if (vt_cli_wants_help(argc, argv)) {
        usage(stdout);
        return VT_EXIT_OK;
    }
    const char *qp = NULL, *kp = NULL, *vp = NULL, *op = NULL, *lp = NULL, *fmt_s = NULL;
    const char *dev_s = "cpu", *algo_s = "auto", *odt_s = "f32";
    int causal = 0, threads = 0;
    float scale = 0.0f;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, var)                                                                             \
    if (!strcmp(a, name)) {                                                                        \
        if (!val) {                                                                                \
            fprintf(stderr, "vtstore attn: %s needs a value\n", name);                             \
            return VT_EXIT_USAGE;                                                                  \
        }                                                                                          \
        var = val;                                                                                 \
        i++;                                                                                       \
        continue;                                                                                  \
    }
        OPT("--q", qp)
        OPT("--k", kp)
        OPT("--v", vp)
        OPT("-o", op)
        OPT("--out", op)
        OPT("--lse", lp)
        OPT("--kv-format", fmt_s)
        OPT("--device", dev_s)
        OPT("--algo", algo_s)
        OPT("--out-dtype", odt_s)
#undef OPT
        if (!strcmp(a, "--causal")) {
            causal = 1;
            continue;
        }
        if ((!strcmp(a, "--scale") || !strcmp(a, "--threads")) && val) {
            char *end;
            double x = strtod(val, &end);
            if (*end || end == val || !(x >= 0) || isinf(x) ||
                (a[2] == 't' && (x > 4096 || x != floor(x)))) {
                fprintf(stderr, "vtstore attn: bad value for %s: '%s'\n", a, val);
                return VT_EXIT_USAGE;
            }
            /* the scale is a float, and 0 means the default: a value that rounds to 0 (or to a
             * subnormal) or to infinity would silently be another scale */
            if (a[2] == 's' && x > 0 && (x >= F32_OVERFLOW || (float)x < FLT_MIN)) {
                fprintf(stderr,
                        "vtstore attn: bad value for --scale: '%s' is outside the range of a "
                        "normal f32 (%g .. %g; 0 means 1/sqrt(D))\n",
                        val, (double)FLT_MIN, (double)FLT_MAX);
                return VT_EXIT_USAGE;
            }
            if (a[2] == 's')
                scale = (float)x;
            else
                threads = (int)x;
            i++;
            continue;
        }
        fprintf(stderr, "vtstore attn: unknown or incomplete option '%s'\n", a);
        usage(stderr);
        return VT_EXIT_USAGE;
    }
    if (!qp || !kp || !vp || !op) {
        fprintf(stderr, "vtstore attn: --q, --k, --v and -o are required\n");
        usage(stderr);
        return VT_EXIT_USAGE;
    }
    int on_gpu = !strcmp(dev_s, "cuda") || !strcmp(dev_s, "gpu");
    if (!on_gpu && strcmp(dev_s, "cpu")) {
        fprintf(stderr, "vtstore attn: --device must be cpu or cuda, not '%s'\n", dev_s);
        return VT_EXIT_USAGE;
    }
    vt_attn_algo algo;
    if (!strcmp(algo_s, "auto"))
        algo = VT_ATTN_AUTO;
    else if (!strcmp(algo_s, "flash"))
        algo = VT_ATTN_FLASH;
    else if (!strcmp(algo_s, "decode"))
        algo = VT_ATTN_DECODE;
    else if (!strcmp(algo_s, "naive"))
        algo = VT_ATTN_NAIVE;
    else if (!strcmp(algo_s, "naive-f64"))
        algo = VT_ATTN_NAIVE_F64;
    else {
        fprintf(stderr, "vtstore attn: unknown --algo '%s'\n", algo_s);
        return VT_EXIT_USAGE;
    }
    vt_dtype odt;
    if (vt_dtype_from_name(odt_s, &odt) || (odt != VT_DTYPE_F32 && odt != VT_DTYPE_F16)) {
        fprintf(stderr, "vtstore attn: --out-dtype must be f32 or f16, not '%s'\n", odt_s);
        return VT_EXIT_USAGE;
    }
    uint32_t fmt = 0;
    if (fmt_s && (vt_format_from_name(fmt_s, &fmt) || !vt_attn_kv_format_ok(fmt))) {
        fprintf(stderr,
                "vtstore attn: --kv-format '%s' is not a K/V format (f32, f16, bf16, q8_0, int8, "
                "q4_0, nf4, nvfp4, mxfp4)\n",
                fmt_s);
        return VT_EXIT_USAGE;
    }

    int ret = VT_EXIT_ERROR, rc;
    vt_npy q = {0}, k = {0}, v = {0};
    vt_kv_cache *cache = NULL;
    void *dq = NULL, *dk = NULL, *dv = NULL, *dout = NULL, *dlse = NULL, *dws = NULL, *out = NULL;
    float *lse = NULL;
    if (read_3d(qp, "Q", &q) || check_finite(qp, "Q", &q) || read_3d(kp, "K", &k) ||
        read_3d(vp, "V", &v))
        goto done;
    uint64_t H = q.dims[0], nq = q.dims[1], D = q.dims[2], Hkv = k.dims[0], nk = k.dims[1];
    if (memcmp(k.dims, v.dims, sizeof k.dims) || k.dims[2] != D) {
        fprintf(stderr,
                "vtstore attn: shapes disagree: Q %s [%llu, %llu, %llu], K %s [%llu, %llu, %llu], "
                "V %s [%llu, %llu, %llu] (K and V must match and share D with Q)\n",
                qp, (unsigned long long)H, (unsigned long long)nq, (unsigned long long)D, kp,
                (unsigned long long)k.dims[0], (unsigned long long)k.dims[1],
                (unsigned long long)k.dims[2], vp, (unsigned long long)v.dims[0],
                (unsigned long long)v.dims[1], (unsigned long long)v.dims[2]);
        goto done;
    }
    if (!H || !Hkv || !D || !nq || H % Hkv || H > UINT32_MAX || D > UINT32_MAX) {
        fprintf(stderr,
                "vtstore attn: Q has %llu heads, K/V %llu: need H a positive multiple of "
                "Hkv and nonzero Nq, D\n",
                (unsigned long long)H, (unsigned long long)Hkv);
        goto done;
    }
    if (k.dtype != v.dtype && (to_f32(&k) || to_f32(&v))) goto done;
    if (!fmt_s) fmt = k.dtype == VT_DTYPE_F16 ? VT_FMT_F16 : VT_FMT_F32;

    vt_kv_cache_config cc = {.location = on_gpu ? VT_LOC_DEVICE : VT_LOC_HOST,
                             .format = fmt,
                             .n_kv_heads = (uint32_t)Hkv,
                             .head_dim = (uint32_t)D,
                             .capacity = nk ? nk : 1};
    if (fmt == VT_FMT_NVFP4) { /* global scale from the amax of K and V */
        vt_quant_params qp2;
        vt_quant_params_init(&qp2);
        if (to_f32(&k) || to_f32(&v)) goto done;
        if ((rc = vt_quant_observe(fmt, &qp2, k.data, k.numel)) ||
            (rc = vt_quant_observe(fmt, &qp2, v.data, v.numel))) {
            vt_cli_error("attn", rc, "K/V of %s, %s", kp, vp);
            goto done;
        }
        cc.tensor_scale = qp2.tensor_scale;
    }
    if ((rc = vt_kv_cache_create(&cc, &cache))) {
        vt_cli_error("attn", rc, "cannot create the %s K/V cache", fmt_s ? fmt_s : "plain");
        goto done;
    }
    size_t kvb = k.numel * vt_dtype_size(k.dtype), qb = q.numel * vt_dtype_size(q.dtype);
    size_t ob = q.numel * vt_dtype_size(odt), lb = H * nq * sizeof(float);
    const void *ksrc = k.data, *vsrc = v.data;
    /* the device append cannot refuse a value (it stores NaN, Inf or a saturated code): check K
     * and V here as the host cache's append does */
    if (on_gpu && nk &&
        (check_kv(fmt, cc.tensor_scale, &k, kp, "K", Hkv * nk, D) ||
         check_kv(fmt, cc.tensor_scale, &v, vp, "V", Hkv * nk, D)))
        goto done;
    if (on_gpu) {
        if ((rc = dev_copy(&dk, k.data, kvb)) || (rc = dev_copy(&dv, v.data, kvb)) ||
            (rc = dev_copy(&dq, q.data, qb)) || (rc = dev_copy(&dout, NULL, ob)) ||
            (lp && (rc = dev_copy(&dlse, NULL, lb)))) {
            vt_cli_error("attn", rc, "device buffers");
            goto done;
        }
        ksrc = dk, vsrc = dv;
    }
    if (nk && (rc = vt_kv_cache_append(cache, ksrc, vsrc, k.dtype, nk, NULL))) {
        vt_cli_error("attn", rc, "quantizing K %s / V %s", kp, vp);
        goto done;
    }
    out = vt_malloc(ob ? ob : 1);
    lse = lp ? vt_malloc(lb) : NULL;
    if (!out || (lp && !lse)) {
        vt_cli_error("attn", -ENOMEM, "output buffers");
        goto done;
    }
    vt_attn_params p;
    vt_attn_params_init(&p);
    p.q = on_gpu ? dq : q.data;
    p.q_dtype = q.dtype;
    vt_kv_cache_view(cache, &p.kv);
    p.n_heads = (uint32_t)H;
    p.n_q = nq;
    p.causal = causal;
    p.scale = scale;
    p.o = on_gpu ? dout : out;
    p.o_dtype = odt;
    p.lse = on_gpu ? dlse : lse;
    p.algo = algo;
    p.nthreads = threads;
    if (on_gpu) { /* the split-KV decode's workspace (0 bytes: none needed) */
        p.workspace_bytes = vt_attn_workspace_bytes(&p);
        if ((rc = vt_dev_malloc(&dws, p.workspace_bytes))) {
            vt_cli_error("attn", rc, "device workspace");
            goto done;
        }
        p.workspace = dws;
    }
    double t0 = vt_now();
    rc = vt_attn_forward(&p);
    if (!rc && on_gpu) rc = vt_dev_sync(NULL);
    double t1 = vt_now();
    if (rc) {
        vt_cli_error("attn", rc, "Q %s, K %s, V %s", qp, kp, vp);
        goto done;
    }
    if (on_gpu &&
        ((rc = vt_dev_memcpy_d2h(out, dout, ob, NULL)) ||
         (lp && (rc = vt_dev_memcpy_d2h(lse, dlse, lb, NULL))) || (rc = vt_dev_sync(NULL)))) {
        vt_cli_error("attn", rc, "copying results from the device");
        goto done;
    }
    uint64_t odims[3] = {H, nq, D}, ldims[2] = {H, nq};
    if ((rc = vt_npy_write(op, odt, 3, odims, out)) ||
        (lp && (rc = vt_npy_write(lp, VT_DTYPE_F32, 2, ldims, lse)))) {
        vt_cli_error("attn", rc, "writing the output");
        goto done;
    }
    char fb[32];
    printf("attn: H %llu Hkv %llu Nq %llu Nk %llu D %llu kv %s %s %s: %.3f ms (%.2f GFLOP/s)\n",
           (unsigned long long)H, (unsigned long long)Hkv, (unsigned long long)nq,
           (unsigned long long)nk, (unsigned long long)D, vt_format_name(fmt, fb, sizeof fb),
           causal ? "causal" : "full", on_gpu ? "cuda" : "cpu", (t1 - t0) * 1e3,
           vt_attn_flops(&p) / (t1 - t0) / 1e9);
    ret = VT_EXIT_OK;
done:
    vt_kv_cache_destroy(cache);
    vt_dev_free(dq), vt_dev_free(dk), vt_dev_free(dv), vt_dev_free(dout), vt_dev_free(dlse);
    vt_dev_free(dws);
    vt_free(out);
    vt_free(lse);
    vt_npy_free(&q), vt_npy_free(&k), vt_npy_free(&v);
    return ret;
}
