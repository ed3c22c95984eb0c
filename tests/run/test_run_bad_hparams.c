/* Bad model hyperparameters and vocabularies are refused with the key, value, merge or token
 * named (tools/run/llama.c, hf_config.c, tokenizer.c):
 *  - GGUF metadata ARCH.rope.freq_base and ARCH.attention.layer_norm_rms_epsilon that are
 *    infinite, NaN, zero or negative: VT_EFORMAT naming the key and the value (an infinite
 *    theta or epsilon used to load and turn every activation into NaN);
 *  - config.json rope_theta / rms_norm_eps / llama3 rope_scaling factors beyond a 32-bit float
 *    (1e999 parses as inf, 1e39 has no float value): VT_EFORMAT naming the key;
 *  - GGUF ARCH.attention.key_length and value_length that differ (each defaults to dim / heads;
 *    when they agree, any head dimension is taken), and
 *    a rope.scaling.type other than none and linear (yarn): VT_EUNSUPPORTED naming the key (the
 *    head dimension used to fail as an attn_q shape); ARCH.rope.scaling.factor /
 *    rope.scale_linear with or without the type "linear" are taken (linear scaling, as in
 *    llama.cpp), a negative factor is VT_EFORMAT;
 *  - a merge whose left, right or joined token is not in the vocabulary: -EINVAL, and
 *    vt_tok_error() names the merge and the missing token; a success clears it.
 * No model needed (label quick). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hf_config.h"
#include "llama.h"
#include "tokenizer.h"
#include "vt_test.h"
#include "vtstore/meta.h"
#include "vtstore/store.h"

static int put_meta(vt_store_writer *w, const char *key, uint32_t type, const void *v, size_t n) {
    uint8_t buf[64];
    memcpy(buf, &type, 4);
    memcpy(buf + 4, v, n);
    return vt_writer_put_meta(w, key, buf, n + 4);
}

/* One more metadata value for load_meta: a u32 (type 4), an f32 (6) or a string (8). */
typedef struct {
    const char *key;
    uint32_t type;
    uint32_t u;
    float f;
    const char *str;
} extra_kv;

/* A store @p name holding only llama metadata (dim 64, 4 heads: head dim 16; the hyperparameters
 * are checked before any tensor is looked at), with @p theta, @p eps and the @p nx values @p x;
 * returns vt_llama_hparams_load's code. */
static int load_meta(const char *dir, const char *name, float theta, float eps, const extra_kv *x,
                     size_t nx) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s.vts", dir, name);
    vt_store *s;
    vt_store_writer *w;
    int rc = vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, NULL, &s);
    if (rc) return rc;
    if ((rc = vt_store_writer_begin(s, &w))) {
        vt_store_close(s);
        return rc;
    }
    uint8_t sv[48];
    uint64_t len = 5;
    memcpy(sv, &len, 8);
    memcpy(sv + 8, "llama", 5);
    rc = put_meta(w, "gguf.general.architecture", 8, sv, 13);
    static const struct {
        const char *k;
        uint32_t v;
    } u[] = {{"gguf.llama.block_count", 2},
             {"gguf.llama.embedding_length", 64},
             {"gguf.llama.feed_forward_length", 96},
             {"gguf.llama.attention.head_count", 4}};
    for (size_t k = 0; k < sizeof u / sizeof u[0] && !rc; k++)
        rc = put_meta(w, u[k].k, 4, &u[k].v, 4);
    if (!rc) rc = put_meta(w, "gguf.llama.rope.freq_base", 6, &theta, 4);
    if (!rc) rc = put_meta(w, "gguf.llama.attention.layer_norm_rms_epsilon", 6, &eps, 4);
    for (size_t k = 0; k < nx && !rc; k++) {
        if (x[k].type == 4) {
            rc = put_meta(w, x[k].key, 4, &x[k].u, 4);
        } else if (x[k].type == 6) {
            rc = put_meta(w, x[k].key, 6, &x[k].f, 4);
        } else {
            len = strlen(x[k].str);
            memcpy(sv, &len, 8);
            memcpy(sv + 8, x[k].str, len);
            rc = put_meta(w, x[k].key, 8, sv, 8 + len);
        }
    }
    if (!rc)
        rc = vt_store_writer_commit(w);
    else
        vt_store_writer_abort(w);
    if (!rc) {
        vt_llama_hparams hp;
        rc = vt_llama_hparams_load(s, &hp);
    }
    vt_store_close(s);
    return rc;
}

static int load_with(const char *dir, int i, float theta, float eps) {
    char name[32];
    snprintf(name, sizeof name, "m%d", i);
    return load_meta(dir, name, theta, eps, NULL, 0);
}

static const char *cfg =
    "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 96, "
    "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, %s}";

static int parse_cfg(const char *extra) {
    char json[1024];
    snprintf(json, sizeof json, cfg, extra);
    vt_hf_config c;
    return vt_hf_config_parse(json, &c);
}

int main(void) {
    char dir[512];
    vt_test_tmpdir("run_bad_hparams", dir, sizeof dir);

    /* GGUF: the key and its value are named */
    static const struct {
        float theta, eps;
        const char *key, *val;
    } g[] = {
        {INFINITY, 1e-5f, "gguf.llama.rope.freq_base", "inf"},
        {-INFINITY, 1e-5f, "gguf.llama.rope.freq_base", "-inf"},
        {NAN, 1e-5f, "gguf.llama.rope.freq_base", "nan"},
        {0, 1e-5f, "gguf.llama.rope.freq_base", " 0:"},
        {10000, INFINITY, "gguf.llama.attention.layer_norm_rms_epsilon", "inf"},
        {10000, NAN, "gguf.llama.attention.layer_norm_rms_epsilon", "nan"},
        {10000, -1e-5f, "gguf.llama.attention.layer_norm_rms_epsilon", "-1e-05"},
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        int rc = load_with(dir, (int)i, g[i].theta, g[i].eps);
        CHECKF(rc == VT_EFORMAT && strstr(vt_last_error(), g[i].key) &&
                   strstr(vt_last_error(), g[i].val),
               "theta %g eps %g: %s (%s)", g[i].theta, g[i].eps, vt_strerror(rc), vt_last_error());
    }
    CHECKF(load_with(dir, 99, 10000, 1e-5f) == VT_ENOTFOUND, "good values: %s", vt_last_error());
    printf("gguf: %s\n", vt_last_error()); /* got past the checks, to the missing tensors */

    /* GGUF keys the runner does not implement are refused by name, not ignored (RoPE scaling:
     * silently wrong logits) or reported as a tensor shape (the head dimension): */
    static const struct {
        extra_kv x[2];
        int rc;          /* expected */
        const char *msg; /* in the message when refused */
    } k[] = {
        /* a head dimension other than 64 / 4 = 16 is taken (to the missing tensors) when the
         * key and value lengths agree, each defaulting to 16 */
        {{{"gguf.llama.attention.key_length", 4, 8, 0, 0}},
         VT_EUNSUPPORTED,
         "gguf.llama.attention.value_length is 16 (embedding_length / head_count), the head "
         "dimension is 8"},
        {{{"gguf.llama.attention.value_length", 4, 32, 0, 0}},
         VT_EUNSUPPORTED,
         "gguf.llama.attention.key_length is 16 (embedding_length / head_count), the head "
         "dimension is 32"},
        {{{"gguf.llama.attention.key_length", 4, 16, 0, 0},
          {"gguf.llama.attention.value_length", 4, 32, 0, 0}},
         VT_EUNSUPPORTED,
         "gguf.llama.attention.value_length is 32 (given), the head dimension is 16"},
        {{{"gguf.llama.attention.key_length", 4, 16, 0, 0},
          {"gguf.llama.attention.value_length", 4, 16, 0, 0}},
         VT_ENOTFOUND,
         NULL},
        {{{"gguf.llama.attention.key_length", 4, 8, 0, 0},
          {"gguf.llama.attention.value_length", 4, 8, 0, 0}},
         VT_ENOTFOUND,
         NULL},
        /* without rope.scaling.type llama.cpp scales linearly by the factor: taken (to the
         * missing tensors), as linear; yarn and bad factors are refused */
        {{{"gguf.llama.rope.scaling.factor", 6, 0, 4.0f, 0}}, VT_ENOTFOUND, NULL},
        {{{"gguf.llama.rope.scale_linear", 6, 0, 2.0f, 0}}, VT_ENOTFOUND, NULL},
        {{{"gguf.llama.rope.scaling.type", 8, 0, 0, "linear"},
          {"gguf.llama.rope.scaling.factor", 6, 0, 8.0f, 0}},
         VT_ENOTFOUND,
         NULL},
        {{{"gguf.llama.rope.scaling.type", 8, 0, 0, "yarn"},
          {"gguf.llama.rope.scaling.factor", 6, 0, 4.0f, 0}},
         VT_EUNSUPPORTED,
         "gguf.llama.rope.scaling.type is 'yarn'"},
        {{{"gguf.llama.rope.scaling.factor", 6, 0, -2.0f, 0}},
         VT_EFORMAT,
         "gguf.llama.rope.scaling.factor is -2: not a RoPE scaling factor"},
        {{{"gguf.llama.rope.scaling.factor", 6, 0, 1.0f, 0}}, VT_ENOTFOUND, NULL},
        {{{"gguf.llama.rope.scaling.factor", 6, 0, 0.0f, 0}}, VT_ENOTFOUND, NULL},
        /* the newer key, when there, is the one llama.cpp reads */
        {{{"gguf.llama.rope.scaling.factor", 6, 0, 1.0f, 0},
          {"gguf.llama.rope.scale_linear", 6, 0, 4.0f, 0}},
         VT_ENOTFOUND,
         NULL},
        {{{"gguf.llama.rope.scaling.type", 8, 0, 0, "none"},
          {"gguf.llama.rope.scaling.factor", 6, 0, 4.0f, 0}},
         VT_ENOTFOUND,
         NULL},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "k%zu", i);
        int rc = load_meta(dir, name, 10000, 1e-5f, k[i].x, k[i].x[1].key ? 2 : 1);
        CHECKF(rc == k[i].rc && (!k[i].msg || strstr(vt_last_error(), k[i].msg)),
               "%s: %s (%s), expected %s", k[i].x[0].key, vt_strerror(rc), vt_last_error(),
               vt_strerror(k[i].rc));
        if (k[i].msg) printf("refused: %s\n", vt_last_error());
    }

    /* config.json: floats beyond a 32-bit float */
    static const struct {
        const char *extra, *key;
    } h[] = {
        {"\"rope_theta\": 1e999", "rope_theta"},
        {"\"rope_theta\": 1e39", "rope_theta"},
        {"\"rms_norm_eps\": -1e999", "rms_norm_eps"},
        {"\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 1e999, \"low_freq_factor\": "
         "1, \"high_freq_factor\": 4, \"original_max_position_embeddings\": 8192}",
         "factor"},
        {"\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 1, "
         "\"high_freq_factor\": 1e300, \"original_max_position_embeddings\": 8192}",
         "high_freq_factor"},
    };
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
        int rc = parse_cfg(h[i].extra);
        CHECKF(rc == VT_EFORMAT && strstr(vt_last_error(), h[i].key) &&
                   strstr(vt_last_error(), "finite"),
               "%s: %s (%s)", h[i].extra, vt_strerror(rc), vt_last_error());
    }
    CHECK_RC(parse_cfg("\"rope_theta\": 500000.0, \"rms_norm_eps\": 1e-6"));

    /* merges naming tokens that are not in the vocabulary */
    const char *toks[] = {"a", "b", "ab", "c"};
    static const struct {
        const char *merge, *expect;
    } m[] = {
        {"a x", "right token 'x'"},
        {"y b", "left token 'y'"},
        {"b c", "merged token 'bc'"},
        {"abc", "not two tokens"},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        const char *merges[2] = {"a b", m[i].merge};
        vt_tok *t = NULL;
        int rc = vt_tok_create(toks, 4, merges, 2, NULL, &t);
        CHECKF(rc == -EINVAL && !t && strstr(vt_tok_error(), "merge 1 '") &&
                   strstr(vt_tok_error(), m[i].expect),
               "merge '%s': %d (%s)", m[i].merge, rc, vt_tok_error());
        printf("merge '%s': %s\n", m[i].merge, vt_tok_error());
    }
    const char *ok[1] = {"a b"};
    vt_tok *t = NULL;
    CHECK_RC(vt_tok_create(toks, 4, ok, 1, NULL, &t));
    CHECK(t && !*vt_tok_error());
    vt_tok_destroy(t);
    return vt_test_done("run_bad_hparams");
}
