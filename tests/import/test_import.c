/* Import round trips: safetensors (f32/f16/bf16 bit-exact, ints as-is, quantized equal to the
 * reference quantizer and within bound), GGUF blocks byte-identical through the store and
 * through GGUF export, metadata (tokens) retrievable, .npy and multi-file index; hostile and
 * failing imports leave the store unchanged. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gen.h"
#include "store/parse.h"
#include "store/store_testutil.h"
#include "vt_test.h"
#include "vtstore/import.h"
#include "vtstore/meta.h"

static char dir[4096];

static void pathf(char *out, const char *name) {
    snprintf(out, 4300, "%s/%s", dir, name);
}

static vt_store *open_store(const char *name) {
    char p[4300];
    pathf(p, name);
    vt_store *s = NULL;
    int rc = vt_store_open(p, VT_STORE_RDWR | VT_STORE_CREATE, NULL, &s);
    CHECKF(rc == 0, "open %s: %s", p, vt_last_error());
    return s;
}

static uint64_t count_cb_n;
static int count_cb(void *ctx, const vt_tensor_info *ti) {
    (void)ctx;
    (void)ti;
    count_cb_n++;
    return 0;
}
static uint64_t count_tensors(vt_store *s) {
    count_cb_n = 0;
    vt_store_list(s, NULL, count_cb, NULL);
    return count_cb_n;
}

/* ---- safetensors ---- */

#define R 96
#define C 80

static float src32[R * C], emb32[R * C], norm32[C];
static uint16_t src16[R * C], srcbf[R * C];
static int64_t ids[6];

static void make_safetensors(const char *name) {
    for (int i = 0; i < R * C; i++) {
        src32[i] = vt_rand_normal();
        emb32[i] = vt_rand_normal() * 0.02f;
        src16[i] = vt_f32_to_f16(vt_rand_normal());
        srcbf[i] = vt_f32_to_bf16(vt_rand_normal());
    }
    for (int i = 0; i < C; i++) norm32[i] = 1.0f + 0.1f * vt_rand_normal();
    for (int i = 0; i < 6; i++) ids[i] = (int64_t)vt_rand_u64();
    gen_st_tensor t[6] = {
        {"model.layers.0.mlp.up_proj.weight", "F32", 2, {R, C}, src32, sizeof src32, 0, 0, 0},
        {"model.layers.1.self_attn.q_proj.weight", "F16", 2, {R, C}, src16, sizeof src16, 0, 0, 0},
        {"model.layers.2.self_attn.k_proj.weight",
         "BF16",
         3,
         {2, R / 2, C},
         srcbf,
         sizeof srcbf,
         0,
         0,
         0},
        {"model.layers.0.input_layernorm.weight", "F32", 1, {C}, norm32, sizeof norm32, 0, 0, 0},
        {"model.embed_tokens.weight", "F32", 2, {R, C}, emb32, sizeof emb32, 0, 0, 0},
        {"position_ids", "I64", 2, {2, 3}, ids, sizeof ids, 0, 0, 0},
    };
    gbuf b = {0};
    gen_safetensors(&b, t, 6, "{\"format\":\"pt\"}");
    char p[4300];
    pathf(p, name);
    CHECK(gb_write_file(&b, p) == 0);
    gb_free(&b);
}

static void check_exact(vt_store *s, const char *name, vt_dtype dt, const void *src, size_t n) {
    float *got = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
    vt_convert_to_f32(dt, src, want, n);
    vt_tensor_info ti;
    int rc = vt_store_stat(s, name, &ti);
    CHECKF(rc == 0, "stat %s: %s", name, vt_last_error());
    if (!rc) {
        CHECK_RC(vt_store_read_rows(s, name, 0, ti.rows, VT_DTYPE_F32, got, n * sizeof(float)));
        CHECKF(!memcmp(got, want, n * sizeof(float)), "%s not bit-exact", name);
        CHECKF(isinf(ti.metrics.sqnr_db), "%s: exact copy sqnr %g", name, ti.metrics.sqnr_db);
    }
    free(got);
    free(want);
}

static void test_safetensors_keep(void) {
    make_safetensors("m.safetensors");
    char p[4300];
    pathf(p, "config.json");
    FILE *f = fopen(p, "w");
    fputs("{\"hidden_size\": 80, \"model_type\": \"llama\"}", f);
    fclose(f);
    /* kept beside config.json: generation_config.json (run's stop ids) and
     * tokenizer_config.json; one that is not JSON is left out with a warning */
    pathf(p, "generation_config.json");
    f = fopen(p, "w");
    fputs("{\"eos_token_id\": [7, 9]}", f);
    fclose(f);
    pathf(p, "tokenizer_config.json");
    f = fopen(p, "w");
    fputs("{\"add_bos_token\": true", f); /* truncated: not JSON */
    fclose(f);
    vt_store *s = open_store("keep.vts");
    if (!s) return;
    vt_import_summary sum;
    pathf(p, "m.safetensors");
    int rc = vt_import_file(s, p, NULL, &sum);
    CHECKF(rc == 0, "import: %s", vt_last_error());
    CHECK(sum.tensors == 6 && sum.kept == 6 && sum.quantized == 0 && sum.files == 1);
    CHECK(sum.bytes_in ==
          sizeof src32 + sizeof src16 + sizeof srcbf + sizeof norm32 + sizeof emb32 + sizeof ids);
    check_exact(s, "model.layers.0.mlp.up_proj.weight", VT_DTYPE_F32, src32, R * C);
    check_exact(s, "model.layers.1.self_attn.q_proj.weight", VT_DTYPE_F16, src16, R * C);
    check_exact(s, "model.layers.2.self_attn.k_proj.weight", VT_DTYPE_BF16, srcbf, R * C);
    check_exact(s, "model.layers.0.input_layernorm.weight", VT_DTYPE_F32, norm32, C);
    vt_tensor_info ti;
    CHECK_RC(vt_store_stat(s, "position_ids", &ti));
    CHECK(ti.format == VT_STORE_FMT_RAW && ti.src_dtype == VT_DTYPE_I64);
    int64_t got[6];
    CHECK_RC(vt_store_read_tensor_raw(s, "position_ids", got, sizeof got));
    CHECK(!memcmp(got, ids, sizeof ids));
    CHECK_RC(vt_store_stat(s, "model.layers.2.self_attn.k_proj.weight", &ti));
    CHECK(ti.format == VT_FMT_BF16 && ti.ndim == 3 && ti.dims[0] == 2 && ti.rows == R &&
          ti.cols == C);
    char str[256];
    CHECK_RC(vt_meta_get_string(s, "safetensors.format", str, sizeof str, NULL));
    CHECK(!strcmp(str, "pt"));
    CHECK_RC(vt_meta_get_string(s, "config.json", str, sizeof str, NULL));
    CHECK(strstr(str, "\"hidden_size\": 80") != NULL);
    CHECK_RC(vt_meta_get_string(s, "generation_config.json", str, sizeof str, NULL));
    CHECK(!strcmp(str, "{\"eos_token_id\": [7, 9]}"));
    CHECK(vt_meta_get_string(s, "tokenizer_config.json", str, sizeof str, NULL) == VT_ENOTFOUND);

    /* export to safetensors: every tensor's bytes equal the source's */
    pathf(p, "back.safetensors");
    rc = vt_export_safetensors(s, p, NULL);
    CHECKF(rc == 0, "export: %s", vt_last_error());
    int fd = open(p, O_RDONLY);
    vt_src_file back;
    rc = vt_parse_safetensors_fd(fd, p, &back);
    CHECKF(rc == 0, "parse export: %s", vt_last_error());
    if (!rc) {
        CHECK(back.n_tensors == 6);
        CHECK(back.n_kv == 1 && !strcmp(back.kv[0].key, "format"));
        for (uint32_t i = 0; i < back.n_tensors; i++) {
            const vt_src_tensor *t = &back.tensors[i];
            const void *want = !strcmp(t->desc.name, "position_ids") ? (const void *)ids
                               : strstr(t->desc.name, "up_proj")     ? (const void *)src32
                               : strstr(t->desc.name, "q_proj")      ? (const void *)src16
                               : strstr(t->desc.name, "k_proj")      ? (const void *)srcbf
                               : strstr(t->desc.name, "norm")        ? (const void *)norm32
                                                                     : (const void *)emb32;
            void *buf = malloc(t->nbytes + 1);
            CHECK(vt_pread_full(fd, buf, t->nbytes, t->offset) == 0);
            CHECKF(!memcmp(buf, want, t->nbytes), "exported %s differs", t->desc.name);
            free(buf);
        }
        vt_src_file_free(&back);
    }
    close(fd);
    /* a name that is not UTF-8 (import refuses them; older stores may hold one, here through
     * the writer): export refuses it, naming the byte, rather than write a header that is not
     * JSON, and writes no file */
    {
        vt_store_writer *w;
        CHECK_RC(vt_store_writer_begin(s, &w));
        const float four[4] = {1, 2, 3, 4};
        CHECK_RC(tu_put_f32(w, "bad\xff.weight", four, 4));
        CHECK_RC(vt_store_writer_commit(w));
        pathf(p, "bad_name.safetensors");
        rc = vt_export_safetensors(s, p, NULL);
        CHECKF(rc == -EILSEQ && strstr(vt_last_error(), "\"bad...\" is not valid UTF-8 (byte 0xff "
                                                        "at offset 3)"),
               "export of a non-UTF-8 name: %d %s", rc, vt_last_error());
        CHECK(access(p, F_OK) != 0);
    }
    vt_store_close(s);
}

static void test_safetensors_quant(void) {
    vt_store *s = open_store("quant.vts");
    if (!s) return;
    char p[4300];
    pathf(p, "m.safetensors");
    vt_import_options o;
    vt_import_options_init(&o);
    o.format = VT_FMT_NF4;
    vt_import_rule rules[2] = {{"*embed*", VT_FMT_Q8_0}, {"*k_proj*", VT_IMPORT_KEEP}};
    o.rules = rules;
    o.n_rules = 2;
    o.nthreads = 2;
    vt_import_summary sum;
    int rc = vt_import_file(s, p, &o, &sum);
    CHECKF(rc == 0, "import: %s", vt_last_error());
    CHECK(sum.quantized == 3 && sum.kept == 3);
    struct {
        const char *name;
        uint32_t fmt;
        const float *x;
        double min_sqnr;
    } q[3] = {{"model.layers.0.mlp.up_proj.weight", VT_FMT_NF4, src32, 19.0},
              {"model.layers.1.self_attn.q_proj.weight", VT_FMT_NF4, NULL, 19.0},
              {"model.embed_tokens.weight", VT_FMT_Q8_0, emb32, 40.0}};
    static float x16[R * C];
    vt_f16_to_f32_row(src16, x16, R * C);
    q[1].x = x16;
    for (int i = 0; i < 3; i++) {
        vt_tensor_info ti;
        CHECK_RC(vt_store_stat(s, q[i].name, &ti));
        CHECK(ti.format == q[i].fmt);
        /* stored bytes equal the reference quantizer's, metrics equal an independent measure */
        uint64_t nb = vt_quant_bytes(q[i].fmt, R, C);
        void *ref = malloc(nb), *got = malloc(nb);
        float *y = malloc(sizeof(float) * R * C);
        CHECK_RC(vt_quantize_ref(q[i].fmt, NULL, q[i].x, R, C, ref));
        CHECK_RC(vt_store_read_tensor_raw(s, q[i].name, got, nb));
        CHECKF(!memcmp(ref, got, nb), "%s: stored blocks differ from the reference", q[i].name);
        CHECK_RC(vt_store_read_rows(s, q[i].name, 0, R, VT_DTYPE_F32, y, sizeof(float) * R * C));
        vt_metrics m;
        CHECK_RC(vt_metrics_compute(q[i].x, y, R * C, &m));
        CHECKF(fabs(m.sqnr_db - ti.metrics.sqnr_db) < 1e-4 * fabs(m.sqnr_db),
               "%s: stored sqnr %g vs measured %g", q[i].name, ti.metrics.sqnr_db, m.sqnr_db);
        CHECKF(fabs(m.cosine - ti.metrics.cosine) < 1e-6, "%s: cosine", q[i].name);
        CHECKF(fabs(m.max_err - ti.metrics.max_err) <= 1e-6 * m.max_err, "%s: max err", q[i].name);
        CHECKF(ti.metrics.sqnr_db > q[i].min_sqnr, "%s: sqnr %g", q[i].name, ti.metrics.sqnr_db);
        free(ref);
        free(got);
        free(y);
    }
    vt_tensor_info ti;
    CHECK_RC(vt_store_stat(s, "model.layers.0.input_layernorm.weight", &ti));
    CHECK(ti.format == VT_FMT_F32);
    CHECK_RC(vt_store_stat(s, "model.layers.2.self_attn.k_proj.weight", &ti));
    CHECK(ti.format == VT_FMT_BF16);

    /* awq without statistics is refused and changes nothing */
    uint64_t before = count_tensors(s);
    vt_import_rule awq = {"*", VT_FMT_AWQ_INT4};
    o.rules = &awq;
    o.n_rules = 1;
    rc = vt_import_file(s, p, &o, &sum);
    CHECK(rc == -EINVAL && strstr(vt_last_error(), "awq-stats") != NULL);
    CHECK(count_tensors(s) == before);
    CHECK_RC(vt_store_stat(s, "model.layers.0.mlp.up_proj.weight", &ti));
    CHECK(ti.format == VT_FMT_NF4);
    /* with statistics it works */
    float act[C];
    for (int i = 0; i < C; i++) act[i] = fabsf(vt_rand_normal()) + 0.1f;
    gbuf b = {0};
    uint64_t d1 = C;
    gen_npy(&b, 1, "<f4", &d1, 1, act, sizeof act);
    char ap[4300];
    pathf(ap, "act.npy");
    CHECK(gb_write_file(&b, ap) == 0);
    gb_free(&b);
    vt_import_rule awq2 = {"*up_proj*", VT_FMT_AWQ_INT4};
    o.rules = &awq2;
    o.awq_stats_path = ap;
    rc = vt_import_file(s, p, &o, &sum);
    CHECKF(rc == 0, "awq import: %s", vt_last_error());
    CHECK_RC(vt_store_stat(s, "model.layers.0.mlp.up_proj.weight", &ti));
    CHECK(ti.format == VT_FMT_AWQ_INT4 && ti.aux_bytes == C * 4 && ti.metrics.sqnr_db > 15);
    vt_store_close(s);
}

/* ---- GGUF ---- */

static void test_gguf(void) {
    /* q8_0 [4 x 64], q4_k [2 x 256], q4_0 [3 x 32] with valid f16 scales; f32 norm [64] */
    static unsigned char q8[4 * 2 * 34], qk[2 * 144], q40[3 * 18];
    static float nrm[64];
    for (size_t i = 0; i < sizeof q8; i++) q8[i] = (unsigned char)vt_rand_u64();
    for (size_t i = 0; i < sizeof qk; i++) qk[i] = (unsigned char)vt_rand_u64();
    for (size_t i = 0; i < sizeof q40; i++) q40[i] = (unsigned char)vt_rand_u64();
    for (int b = 0; b < 8; b++) {
        uint16_t d = vt_f32_to_f16(0.01f);
        memcpy(q8 + 34 * b, &d, 2);
    }
    for (int b = 0; b < 2; b++) {
        uint16_t d = vt_f32_to_f16(0.01f);
        memcpy(qk + 144 * b, &d, 2);
        memcpy(qk + 144 * b + 2, &d, 2);
    }
    for (int b = 0; b < 3; b++) {
        uint16_t d = vt_f32_to_f16(0.02f);
        memcpy(q40 + 18 * b, &d, 2);
    }
    for (int i = 0; i < 64; i++) nrm[i] = vt_rand_normal();
    gbuf kv = {0};
    const char *toks[] = {"<s>", "</s>", "\xc4\xa0the", "a\"b", "x"};
    kv_string(&kv, "general.architecture", "llama");
    kv_u32(&kv, "llama.block_count", 2);
    kv_f32(&kv, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    kv_str_array(&kv, "tokenizer.ggml.tokens", toks, 5);
    double big = 1e300; /* an f64 value no float holds */
    uint64_t bigb;
    memcpy(&bigb, &big, 8);
    gb_str(&kv, "llama.rope.freq_base");
    gb_u32(&kv, 12); /* GGUF FLOAT64 */
    gb_u64(&kv, bigb);
    gen_gguf_tensor t[4] = {{"blk.0.attn_q.weight", 2, {64, 4}, 8, q8, sizeof q8},
                            {"blk.1.ffn_down.weight", 2, {256, 2}, 12, qk, sizeof qk},
                            {"token_embd.weight", 2, {32, 3}, 2, q40, sizeof q40},
                            {"output_norm.weight", 1, {64}, 0, nrm, sizeof nrm}};
    gbuf b = {0};
    gen_gguf(&b, 3, &kv, 5, t, 4, 32);
    char p[4300], p2[4300];
    pathf(p, "m.gguf");
    CHECK(gb_write_file(&b, p) == 0);
    gb_free(&b);
    gb_free(&kv);
    vt_store *s = open_store("gguf.vts");
    if (!s) return;
    vt_import_options o;
    vt_import_options_init(&o);
    o.format = VT_FMT_NF4; /* must not touch GGUF blocks */
    vt_import_summary sum;
    int rc = vt_import_file(s, p, &o, &sum);
    CHECKF(rc == 0, "gguf import: %s", vt_last_error());
    CHECK(sum.kept == 4);
    const void *want[4] = {q8, qk, q40, nrm};
    uint32_t fmts[4] = {VT_FMT_Q8_0, VT_FMT_Q4_K, VT_FMT_Q4_0, VT_FMT_F32};
    for (int i = 0; i < 4; i++) {
        vt_tensor_info ti;
        CHECK_RC(vt_store_stat(s, t[i].name, &ti));
        CHECK(ti.format == fmts[i]);
        CHECK(ti.ndim == t[i].ndim && ti.dims[ti.ndim - 1] == t[i].ne[0]);
        void *got = malloc(t[i].nbytes);
        CHECK_RC(vt_store_read_tensor_raw(s, t[i].name, got, t[i].nbytes));
        CHECKF(!memcmp(got, want[i], t[i].nbytes), "%s: blocks not byte-identical", t[i].name);
        free(got);
    }
    uint32_t u;
    float fv;
    CHECK_RC(vt_meta_get_u32(s, "gguf.llama.block_count", &u));
    CHECK(u == 2);
    CHECK_RC(vt_meta_get_f32(s, "gguf.llama.attention.layer_norm_rms_epsilon", &fv));
    CHECK(fv == 1e-5f);
    fv = 7.0f; /* beyond float: an error naming the key, not an undefined conversion */
    CHECK(vt_meta_get_f32(s, "gguf.llama.rope.freq_base", &fv) == -ERANGE && fv == 7.0f);
    CHECK(strstr(vt_last_error(), "gguf.llama.rope.freq_base") != NULL);
    vt_meta_strings *ms = NULL;
    CHECK_RC(vt_meta_get_strings(s, "gguf.tokenizer.ggml.tokens", &ms));
    if (ms) {
        CHECK(ms->count == 5);
        for (int i = 0; i < 5 && i < (int)ms->count; i++) CHECK(!strcmp(ms->str[i], toks[i]));
        vt_meta_strings_free(ms);
    }
    CHECK(vt_meta_get_u32(s, "gguf.general.architecture", &u) == VT_EFORMAT);

    /* GGUF export keeps the blocks byte for byte and the metadata */
    pathf(p2, "back.gguf");
    rc = vt_export_gguf(s, p2, NULL);
    CHECKF(rc == 0, "gguf export: %s", vt_last_error());
    int fd = open(p2, O_RDONLY);
    vt_src_file f;
    rc = vt_parse_gguf_fd(fd, p2, &f);
    CHECKF(rc == 0, "parse exported gguf: %s", vt_last_error());
    if (!rc) {
        CHECK(f.n_tensors == 4 && f.n_kv == 5);
        CHECK(!strcmp(f.kv[0].key, "general.architecture"));
        for (uint32_t i = 0; i < f.n_tensors; i++)
            for (int k = 0; k < 4; k++) {
                if (strcmp(f.tensors[i].desc.name, t[k].name)) continue;
                CHECK(f.tensors[i].ggml_type == t[k].type && f.tensors[i].nbytes == t[k].nbytes);
                void *got = malloc(t[k].nbytes);
                CHECK(vt_pread_full(fd, got, t[k].nbytes, f.tensors[i].offset) == 0);
                CHECKF(!memcmp(got, want[k], t[k].nbytes), "exported %s differs", t[k].name);
                free(got);
            }
        vt_src_file_free(&f);
    }
    close(fd);
    /* requantize: q8_0 blocks become nf4 */
    o.requantize = 1;
    CHECK_RC(vt_import_file(s, p, &o, &sum));
    vt_tensor_info ti;
    CHECK_RC(vt_store_stat(s, "blk.0.attn_q.weight", &ti));
    CHECK(ti.format == VT_FMT_NF4 && ti.metrics.sqnr_db > 15);
    vt_store_close(s);
}

/* ---- hostile and failing imports leave the store unchanged ---- */

static void test_unchanged(void) {
    vt_store *s = open_store("keep.vts"); /* holds the 6 tensors of test_safetensors_keep */
    if (!s) return;
    vt_store_totals t0, t1;
    CHECK_RC(vt_store_get_totals(s, &t0));
    char p[4300];
    struct {
        const char *json;
        size_t data;
        const char *msg;
    } bad[] = {
        {"{\"model.layers.0.mlp.up_proj.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":"
         "[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         16, "overlap"},
        {"{\"model.layers.0.mlp.up_proj.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":"
         "[0,16]}}",
         8, "past the end"},
        {"{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gbuf b = {0};
        gb_u64(&b, strlen(bad[i].json));
        gb_put(&b, bad[i].json, strlen(bad[i].json));
        for (size_t k = 0; k < bad[i].data; k++) gb_u8(&b, 0);
        pathf(p, "bad.safetensors");
        CHECK(gb_write_file(&b, p) == 0);
        gb_free(&b);
        int rc = vt_import_file(s, p, NULL, NULL);
        CHECKF(rc != 0 && strstr(vt_last_error(), bad[i].msg) &&
                   strstr(vt_last_error(), "bad.safetensors"),
               "case %zu: rc %d '%s'", i, rc, vt_last_error());
    }
    /* A tensor to be quantized with a value its format cannot take: a NaN, or a finite value
     * beyond the format's range (f16 stored Inf from 65520 on). The error names the tensor (and
     * the row and column), nothing is committed. */
    float x[4 * 64];
    for (int i = 0; i < 4 * 64; i++) x[i] = vt_rand_normal();
    static const struct {
        const char *name;
        float v;
        int at;
        uint32_t fmt;
        int rc;
        const char *msg;
    } bv[] = {{"nan.weight", NAN, 200, VT_FMT_Q4_0, VT_ENONFINITE, "non-finite"},
              /* nvfp4 observes the tensor first: its NaN named by an index within a slice */
              {"nanv.weight", NAN, 64 + 17, VT_FMT_NVFP4, VT_ENONFINITE,
               "non-finite value nan at tensor row 1, column 17"},
              {"big.weight", -1e5f, 64 + 17, VT_FMT_F16, -ERANGE,
               "row 1, column 17 is out of the format's range"}};
    vt_import_options o;
    vt_import_options_init(&o);
    int rc;
    for (size_t i = 0; i < sizeof bv / sizeof bv[0]; i++) {
        float xb[4 * 64];
        memcpy(xb, x, sizeof x);
        xb[bv[i].at] = bv[i].v;
        gen_st_tensor nt[2] = {{"ok.weight", "F32", 2, {4, 64}, x, sizeof x, 0, 0, 0},
                               {bv[i].name, "F32", 2, {4, 64}, xb, sizeof xb, 0, 0, 0}};
        gbuf b = {0};
        gen_safetensors(&b, nt, 2, NULL);
        pathf(p, "bad_value.safetensors");
        CHECK(gb_write_file(&b, p) == 0);
        gb_free(&b);
        o.format = bv[i].fmt;
        rc = vt_import_file(s, p, &o, NULL);
        CHECKF(rc == bv[i].rc && strstr(vt_last_error(), bv[i].name) &&
                   strstr(vt_last_error(), bv[i].msg),
               "%s: %d %s", bv[i].name, rc, vt_last_error());
        CHECK(vt_store_stat(s, bv[i].name, &(vt_tensor_info){0}) == VT_ENOTFOUND);
    }
    o.format = VT_FMT_Q4_0;
    /* an injected read error in the middle of the data */
    pathf(p, "m.safetensors");
    vt_fault_arm(VT_FAULT_READ, 4, -EIO);
    rc = vt_import_file(s, p, &o, NULL);
    int fired = vt_fault_fired();
    vt_fault_disarm();
    CHECKF(fired && rc == -EIO, "EIO import: rc %d %s", rc, vt_last_error());
    CHECK_RC(vt_store_get_totals(s, &t1));
    CHECK(t0.tensors == t1.tensors && t0.chunks == t1.chunks && t0.raw_bytes == t1.raw_bytes);
    CHECK(t0.stored_bytes == t1.stored_bytes);
    CHECK(vt_store_stat(s, "ok.weight", &(vt_tensor_info){0}) == VT_ENOTFOUND);
    check_exact(s, "model.layers.0.mlp.up_proj.weight", VT_DTYPE_F32, src32, R * C);
    CHECK(vt_store_verify(s, NULL, NULL, NULL) == 0);
    vt_store_close(s);
}

/* A bad value deep in a tensor that spans several chunks, each quantized in several slices:
 * the error names the tensor's row and column, not the row within the chunk or the slice.
 * 1536 x 256 f32 with a 256 KiB chunk target: f16 chunks of 512 rows, q4_0, q8_0, q8_0+2:4 and
 * nf4_dq one chunk; the import quantizes 256 rows at a time. */
#define BR 1536
#define BC 256

static void test_bad_value_position(void) {
    char p[4300];
    pathf(p, "badpos.vts");
    vt_store_options so = {0};
    so.chunk_target_bytes = 256 << 10;
    vt_store *s = NULL;
    int rc = vt_store_open(p, VT_STORE_RDWR | VT_STORE_CREATE, &so, &s);
    CHECKF(rc == 0, "open %s: %s", p, vt_last_error());
    if (!s) return;
    static float x[BR * BC];
    for (int i = 0; i < BR * BC; i++) x[i] = vt_rand_normal();
    static const struct {
        float v;
        int row, col;
        uint32_t fmt;
        int rc;
        uint64_t chunk;
    } bv[] = {
        {1e5f, 1300, 5, VT_FMT_F16, -ERANGE, 2},            /* chunk 2 row 276, slice 1 row 20 */
        {NAN, 1300, 5, VT_FMT_F16, VT_ENONFINITE, 2},       /* the same for NaN */
        {-INFINITY, 70, 250, VT_FMT_F16, VT_ENONFINITE, 0}, /* first slice of the first chunk */
        {NAN, 1000, 37, VT_FMT_Q4_0, VT_ENONFINITE, 0},     /* slice 3 row 232 */
        {1e8f, 600, 100, VT_FMT_Q8_0, -ERANGE, 0},          /* slice 2 row 88 */
        {-1e5f, BR - 1, BC - 1, VT_FMT_F16, -ERANGE, 2},    /* the last value */
        /* one chunk each: 2:4 names the dense column (slice 3 row 132); nf4_dq's own scan */
        {1e8f, 900, 130, VT_FMT_Q8_0 | VT_FMT_SPARSE24, -ERANGE, 0},
        {NAN, 1100, 3, VT_FMT_NF4_DQ, VT_ENONFINITE, 0}, /* slice 4 row 76 */
    };
    vt_import_options o;
    vt_import_options_init(&o);
    o.tensor_name = "deep.weight";
    for (size_t i = 0; i < sizeof bv / sizeof bv[0]; i++) {
        const size_t at = (size_t)bv[i].row * BC + (size_t)bv[i].col;
        const float keep = x[at];
        x[at] = bv[i].v;
        gbuf b = {0};
        const uint64_t dims[2] = {BR, BC};
        gen_npy(&b, 1, "<f4", dims, 2, x, sizeof x);
        x[at] = keep;
        pathf(p, "deep.npy");
        CHECK(gb_write_file(&b, p) == 0);
        gb_free(&b);
        o.format = bv[i].fmt;
        rc = vt_import_file(s, p, &o, NULL);
        char want[128], chunk[64];
        snprintf(want, sizeof want, "at tensor row %d, column %d", bv[i].row, bv[i].col);
        snprintf(chunk, sizeof chunk,
                 "tensor 'deep.weight' chunk %llu:", (unsigned long long)bv[i].chunk);
        const char *e = vt_last_error();
        CHECKF(rc == bv[i].rc && strstr(e, want) && strstr(e, chunk) &&
                   strstr(e, bv[i].rc == -ERANGE ? "out of the format's range" : "non-finite"),
               "case %zu: want %d '%s' in '%s', got %d '%s'", i, bv[i].rc, want, chunk, rc, e);
        CHECK(vt_store_stat(s, "deep.weight", &(vt_tensor_info){0}) == VT_ENOTFOUND);
    }
    /* the same tensor without the bad value imports, in several chunks */
    o.format = VT_FMT_F16;
    pathf(p, "deep.npy");
    gbuf b = {0};
    gen_npy(&b, 1, "<f4", (const uint64_t[]){BR, BC}, 2, x, sizeof x);
    CHECK(gb_write_file(&b, p) == 0);
    gb_free(&b);
    CHECK_RC(vt_import_file(s, p, &o, NULL));
    vt_tensor_info ti;
    CHECK_RC(vt_store_stat(s, "deep.weight", &ti));
    CHECKF(ti.n_chunks == 3, "%llu chunks", (unsigned long long)ti.n_chunks);
    vt_store_close(s);
}

/* ---- npy and multi-file index ---- */

/* --format keep (the default) keeps an f64 source as it is, 1-D and norm tensors too (they were
 * converted to f32, losing precision, while `ls` said "exact"); a quantizing import still stores
 * small tensors as f32, as documented, and an f64 tensor converted to f32 has metrics that say
 * what the rounding cost. */
static void test_f64_keep(void) {
    double v[40];
    for (int i = 0; i < 40; i++) v[i] = 1.0 / 3.0 + i * 1e-12; /* no f32 holds these */
    uint64_t dims[1] = {40};
    gbuf b = {0};
    gen_npy(&b, 1, "<f8", dims, 1, v, sizeof v);
    char p[4300];
    pathf(p, "norm.npy");
    CHECK(gb_write_file(&b, p) == 0);
    gb_free(&b);
    for (int quant = 0; quant < 2; quant++) {
        vt_store *s = open_store(quant ? "f64q.vts" : "f64.vts");
        if (!s) return;
        vt_import_options o;
        vt_import_options_init(&o);
        if (quant) o.format = VT_FMT_Q8_0;
        CHECK_RC(vt_import_file(s, p, &o, NULL));
        vt_tensor_info ti;
        CHECK_RC(vt_store_stat(s, "norm", &ti));
        if (quant) {
            CHECK(ti.format == VT_FMT_F32);
        } else {
            double got[40];
            CHECKF(ti.format == VT_STORE_FMT_RAW && ti.src_dtype == VT_DTYPE_F64,
                   "1-D f64 kept as format %#x", ti.format);
            CHECK_RC(vt_store_read_tensor_raw(s, "norm", got, sizeof got));
            CHECK(!memcmp(got, v, sizeof v));
        }
        vt_store_close(s);
    }
    /* a 2-D f64 tensor stored as f32: its metrics count the rounding to f32 (they compared with
     * the f32-rounded source and said "exact": SQNR inf) */
    uint64_t d2[2] = {4, 10};
    gen_npy(&b, 1, "<f8", d2, 2, v, sizeof v);
    pathf(p, "w.npy");
    CHECK(gb_write_file(&b, p) == 0);
    gb_free(&b);
    vt_store *s = open_store("f64m.vts");
    if (!s) return;
    vt_import_options o;
    vt_import_options_init(&o);
    o.format = VT_FMT_F32;
    CHECK_RC(vt_import_file(s, p, &o, NULL));
    vt_tensor_info ti;
    CHECK_RC(vt_store_stat(s, "w", &ti));
    CHECKF(ti.format == VT_FMT_F32 && isfinite(ti.metrics.sqnr_db) && ti.metrics.sqnr_db > 140 &&
               ti.metrics.max_err > 0 && ti.metrics.max_err < 1e-7,
           "f64 -> f32: SQNR %g dB, max error %g", ti.metrics.sqnr_db, ti.metrics.max_err);
    vt_store_close(s);
}

static void test_npy_and_index(void) {
    vt_store *s = open_store("multi.vts");
    if (!s) return;
    float a[12 * 40];
    for (int i = 0; i < 12 * 40; i++) a[i] = vt_rand_normal();
    uint64_t dims[2] = {12, 40};
    gbuf b = {0};
    gen_npy(&b, 1, "<f4", dims, 2, a, sizeof a);
    char p[4300], q[4300];
    pathf(p, "arr.npy");
    CHECK(gb_write_file(&b, p) == 0);
    gb_free(&b);
    CHECK_RC(vt_import_file(s, p, NULL, NULL));
    pathf(q, "rows.npy");
    CHECK_RC(vt_export_npy(s, "arr", 3, 5, VT_DTYPE_F32, q));
    int fd = open(q, O_RDONLY);
    vt_src_file f;
    int rc = vt_parse_npy_fd(fd, q, NULL, &f);
    CHECKF(rc == 0, "parse exported npy: %s", vt_last_error());
    if (!rc) {
        CHECK(f.tensors[0].desc.ndim == 2 && f.tensors[0].desc.dims[0] == 5 &&
              f.tensors[0].desc.dims[1] == 40);
        float got[5 * 40];
        CHECK(vt_pread_full(fd, got, sizeof got, f.tensors[0].offset) == 0);
        CHECK(!memcmp(got, a + 3 * 40, sizeof got));
        vt_src_file_free(&f);
    }
    close(fd);
    CHECK(vt_export_npy(s, "arr", 10, 5, VT_DTYPE_F32, q) == -ERANGE);

    /* two shard files and an index */
    float w1[8], w2[8];
    for (int i = 0; i < 8; i++) w1[i] = vt_rand_normal(), w2[i] = vt_rand_normal();
    gen_st_tensor t1 = {"x.weight", "F32", 2, {2, 4}, w1, 32, 0, 0, 0};
    gen_st_tensor t2 = {"y.weight", "F32", 2, {2, 4}, w2, 32, 0, 0, 0};
    gen_safetensors(&b, &t1, 1, NULL);
    pathf(p, "model-00001-of-00002.safetensors");
    CHECK(gb_write_file(&b, p) == 0);
    gb_free(&b);
    gen_safetensors(&b, &t2, 1, NULL);
    pathf(p, "model-00002-of-00002.safetensors");
    CHECK(gb_write_file(&b, p) == 0);
    gb_free(&b);
    pathf(p, "model.safetensors.index.json");
    FILE *fi = fopen(p, "w");
    fputs(
        "{\"metadata\":{\"total_size\":64},\"weight_map\":{\"x.weight\":"
        "\"model-00001-of-00002.safetensors\",\"y.weight\":\"model-00002-of-00002.safetensors\"}}",
        fi);
    fclose(fi);
    vt_import_summary sum;
    rc = vt_import_file(s, p, NULL, &sum);
    CHECKF(rc == 0, "index import: %s", vt_last_error());
    CHECK(sum.files == 2 && sum.tensors == 2);
    check_exact(s, "x.weight", VT_DTYPE_F32, w1, 8);
    check_exact(s, "y.weight", VT_DTYPE_F32, w2, 8);
    /* an index that names a tensor its file lacks */
    fi = fopen(p, "w");
    fputs("{\"weight_map\":{\"z.weight\":\"model-00001-of-00002.safetensors\"}}", fi);
    fclose(fi);
    rc = vt_import_file(s, p, NULL, NULL);
    CHECKF(rc == VT_EFORMAT && strstr(vt_last_error(), "z.weight"), "bad index: %s",
           vt_last_error());
    vt_store_close(s);
}

/* Tensors whose rows_per_chunk is far beyond their rows (one chunk; the writer takes any
 * multiple of the row alignment) export: the buffers were sized by rows_per_chunk (-ENOMEM). */
static void test_export_huge_rpc(void) {
    char path[4300], out[4300];
    snprintf(path, sizeof path, "%s/rpc.vts", dir);
    vt_store *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, NULL, &s));
    if (!s) return;
    enum { HR = 64, HC = 64 };
    static float x[HR * HC];
    for (int i = 0; i < HR * HC; i++) x[i] = (float)i * 0.25f;
    vt_store_writer *w;
    CHECK_RC(vt_store_writer_begin(s, &w));
    vt_tensor_info m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "f");
    m.src_dtype = VT_DTYPE_F32;
    m.ndim = 2;
    m.dims[0] = HR;
    m.dims[1] = HC;
    m.format = VT_FMT_F32;
    m.tensor_scale = 1;
    m.rows_per_chunk = 1ull << 40;
    vt_writer_tensor *t;
    CHECK_RC(vt_writer_tensor_begin(w, &m, NULL, 0, &t));
    CHECK_RC(vt_writer_put_chunk(w, t, 0, x, sizeof x));
    CHECK_RC(vt_writer_tensor_end(w, t, NULL));
    CHECK_RC(tu_put_gen(w, "u", 2, HR, HC, 1ull << 40));
    CHECK_RC(vt_store_writer_commit(w));
    snprintf(out, sizeof out, "%s/rpc_rows.npy", dir);
    CHECK_RC(vt_export_npy(s, "f", 5, 4, VT_DTYPE_F32, out));
    FILE *f = fopen(out, "rb");
    float got[4 * HC];
    CHECK(f && fseek(f, -(long)sizeof got, SEEK_END) == 0 &&
          fread(got, 1, sizeof got, f) == sizeof got);
    if (f) fclose(f);
    CHECK(memcmp(got, x + 5 * HC, sizeof got) == 0);
    snprintf(out, sizeof out, "%s/rpc_u.npy", dir);
    CHECK_RC(vt_export_npy(s, "u", 60, 3, VT_DTYPE_U32, out));
    snprintf(out, sizeof out, "%s/rpc.safetensors", dir);
    CHECK_RC(vt_export_safetensors(s, out, NULL));
    snprintf(out, sizeof out, "%s/rpc.gguf", dir);
    vt_export_options eo = {.pattern = "f", .dtype = VT_DTYPE_F16}; /* GGUF has no u32 */
    CHECK_RC(vt_export_gguf(s, out, &eo));
    vt_store_close(s);
}

static void planted_link(const char *path);
static int pwrites_left;
static ssize_t dying_pwrite(int fd, const void *b, size_t n, off_t o) {
    if (pwrites_left-- == 0) _exit(3); /* killed in the middle of the export */
    return pwrite(fd, b, n, o);
}

/* Exports appear whole or not at all: a process killed while writing leaves no file behind
 * (the temporary PATH.tmp.PID did), and a symlink planted at that temporary name is neither
 * followed nor left. Uses rpc.vts from test_export_huge_rpc. */
static void test_export_leaves_nothing(void) {
    char path[4300], out[4300], cmd[9000];
    snprintf(path, sizeof path, "%s/rpc.vts", dir);
    for (int k = 1; k <= 2; k++) {
        snprintf(out, sizeof out, "%s/crash%d.safetensors", dir, k);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            vt_store *s;
            if (vt_store_open(path, VT_STORE_RDONLY, NULL, &s)) _exit(2);
            vt_hooks h = {malloc, calloc, realloc, free, pread, dying_pwrite, fdatasync};
            pwrites_left = k;
            vt_hooks_set(&h);
            vt_export_safetensors(s, out, NULL);
            _exit(4); /* the export finished: too few writes for k */
        }
        int st = 0;
        CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 3);
        snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -q '^crash%d'", dir, k);
        CHECKF(system(cmd) != 0, "an export killed after %d write(s) left a file", k);
    }
    for (int named = 0; named <= 1; named++) { /* O_TMPFILE, then PATH.tmp.PID */
        setenv("VT_AFILE_NAMED", named ? "1" : "0", 1);
        planted_link(path);
    }
    unsetenv("VT_AFILE_NAMED");
}

static void planted_link(const char *path) {
    char out[4300];
    char victim[4300], planted[4400];
    snprintf(victim, sizeof victim, "%s/victim.txt", dir);
    snprintf(out, sizeof out, "%s/rows.npy", dir);
    snprintf(planted, sizeof planted, "%s.tmp.%d", out, (int)getpid());
    FILE *f = fopen(victim, "w");
    CHECK(f && fputs("keep", f) >= 0);
    if (f) fclose(f);
    CHECK(symlink(victim, planted) == 0);
    vt_store *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    if (!s) return;
    CHECK_RC(vt_export_npy(s, "f", 0, 2, VT_DTYPE_F32, out));
    vt_store_close(s);
    char got[8] = {0};
    f = fopen(victim, "r");
    CHECK(f && fread(got, 1, sizeof got - 1, f) == 4 && !strcmp(got, "keep"));
    if (f) fclose(f);
    struct stat sb;
    CHECK(lstat(out, &sb) == 0 && S_ISREG(sb.st_mode));
    CHECK(lstat(planted, &sb) != 0); /* the link was removed, not followed */
}

int main(void) {
    vt_test_seed();
    vt_test_tmpdir("test_import", dir, sizeof dir);
    test_export_huge_rpc();
    test_export_leaves_nothing();
    test_safetensors_keep();
    test_safetensors_quant();
    test_gguf();
    test_unchanged();
    test_bad_value_position();
    test_f64_keep();
    test_npy_and_index();
    if (!vt_test_failures) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
    }
    return vt_test_done("test_import");
}
