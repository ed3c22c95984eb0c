/* test_run_cli_synth — `vtstore run` on tiny synthetic models written into stores here (1 layer,
 * dim 32, vocab 32, byte-level tokens without merges), for the results the CLI must never give
 * silently:
 *  - output_norm.weight NaN makes every logit NaN: run fails (exit 1) naming the position and
 *    that the logits are not finite, prints no JSON, and with --logits still writes the file
 *    (so it can be looked at) but fails naming position 0 (it used to pick token 0 and exit 0);
 *  - output_norm.weight 0 makes every logit 0, so greedy picks token 0, whose bytes are C3 A9 C3
 *    ("é" and the first byte of another character): --json writes "é" as is and each byte that
 *    is no well-formed UTF-8 as \ufffd, so the text of two tokens is "é\ufffdé\ufffd" and the
 *    output holds no raw byte >= 0x80 outside it (it used to copy the bytes raw: invalid JSON);
 *  - a prompt byte without a single-byte token: the error names the byte and its offset (it
 *    used to say only 'Invalid argument');
 *  - a token of 300 bytes is part of the text (it used to be left out);
 *  - a prompt (or BOS) token the embedding has no row for: exit 1 naming it, the tensor and the
 *    two sizes (it used to be a usage error, exit 2, as for a bad --tokens id);
 *  - an empty prompt is the BOS alone when the model adds one (it used to be refused);
 *  - a tokenizer.ggml.pre with an escape sequence is printed escaped;
 *  - --logits to a file that cannot be written whole leaves the old file as it was;
 *  - --prefetch does not grow the default (all resident) RAM budget;
 *  - add_bos_token with a bos_token_id outside the vocabulary refuses --prompt by name;
 *  - config.json attention_bias / mlp_bias true are refused by name; model_type mistral runs
 *    (with a sliding window, contexts past it too), gemma is refused;
 *  - every EOS stops: a config.json eos_token_id list (an HF store written here), GGUF
 *    eom_token_id, a <|eom_id|> control token;
 *  - llama.cpp's end-of-generation names stop (<|im_end|>, <end_of_turn>, <|endoftext|>,
 *    <reponame>, <|end|> but not beside <|return|> and <|call|>), whatever the token's type, as
 *    in llama.cpp (CONTROL, NORMAL, USER_DEFINED; tokenizer.json added tokens special or not, and
 *    vocabulary tokens); a text that is not one of them does not;
 *  - a SentencePiece vocabulary (no merges) runs --tokens, decoding U+2581 and <0xNN>, refuses
 *    --prompt naming SentencePiece without tokenizer.ggml.scores, and with them encodes it;
 *  - a token with no text (a tokenizer.json gap, a GGUF UNUSED token) prints nothing.
 * Needs nothing but the vtstore binary (label quick). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "vt_test.h"
#include "vtstore/quant.h"
#include "vtstore/store.h"

enum { NL = 1, DIM = 32, H = 2, HKV = 1, HD = 16, FFN = 32, VOCAB = 32 };

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float urand(void) { /* xorshift64*, uniform in [-1, 1) */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (float)((double)((rng * 2685821657736338717ull) >> 11) / 9007199254740992.0 * 2 - 1);
}

/* Tensor @p name [rows, cols]: random values scale * u + offset, or all @p fill when not 0 / NaN
 * (fill_set). q8_0 for matrices, f32 for norms (rows 1). */
static int put(vt_store_writer *w, const char *name, uint64_t rows, uint64_t cols, float scale,
               float offset, int fill_set, float fill) {
    size_t n = rows * cols;
    uint32_t fmt = rows == 1 ? VT_FMT_F32 : VT_FMT_Q8_0;
    float *x = malloc(n * sizeof(float));
    uint64_t qb = vt_quant_bytes(fmt, rows, cols);
    uint8_t *q = malloc(qb);
    int rc = x && q ? 0 : -1;
    for (size_t i = 0; !rc && i < n; i++) x[i] = fill_set ? fill : offset + scale * urand();
    if (!rc && fmt == VT_FMT_F32)
        memcpy(q, x, qb);
    else if (!rc)
        rc = vt_quantize(fmt, NULL, x, rows, cols, q, 1);
    vt_tensor_info meta = {0};
    snprintf(meta.name, sizeof meta.name, "%s", name);
    meta.src_dtype = VT_DTYPE_F32;
    meta.ndim = rows == 1 ? 1 : 2;
    meta.dims[0] = rows == 1 ? cols : rows;
    meta.dims[1] = cols;
    meta.format = fmt;
    meta.tensor_scale = 1;
    vt_writer_tensor *t = NULL;
    if (!rc) rc = vt_writer_tensor_begin(w, &meta, NULL, 0, &t);
    if (!rc) rc = vt_writer_put_chunk(w, t, 0, q, qb);
    if (!rc) rc = vt_writer_tensor_end(w, t, NULL);
    free(x);
    free(q);
    return rc;
}

/* A typed metadata value: u32 type, then the value's bytes. */
static int put_meta(vt_store_writer *w, const char *key, uint32_t type, const void *v, size_t n) {
    uint8_t buf[4096];
    if (n + 4 > sizeof buf) return -1;
    memcpy(buf, &type, 4);
    memcpy(buf + 4, v, n);
    return vt_writer_put_meta(w, key, buf, n + 4);
}

static int put_str(vt_store_writer *w, const char *key, const char *v) {
    uint8_t b[256];
    uint64_t len = strlen(v);
    memcpy(b, &len, 8);
    memcpy(b + 8, v, len);
    return put_meta(w, key, 8, b, 8 + len);
}

/* A string of any length (GGUF type 8): config.json, tokenizer.json. */
static int put_text(vt_store_writer *w, const char *key, const char *v) {
    uint64_t len = strlen(v);
    uint8_t *b = malloc(12 + len);
    if (!b) return -1;
    uint32_t type = 8;
    memcpy(b, &type, 4);
    memcpy(b + 4, &len, 8);
    memcpy(b + 12, v, len);
    int rc = vt_writer_put_meta(w, key, b, 12 + len);
    free(b);
    return rc;
}

/* An array of 4-byte values (GGUF type 9 of element type @p et: 5 int32, 6 f32). */
static int put_arr4(vt_store_writer *w, const char *key, uint32_t et, const void *v, uint64_t n) {
    uint8_t b[1024];
    if (12 + 4 * n > sizeof b) return -1;
    memcpy(b, &et, 4);
    memcpy(b + 4, &n, 8);
    memcpy(b + 12, v, 4 * n);
    return put_meta(w, key, 9, b, 12 + 4 * n);
}

/* An array of strings (GGUF type 9 of type 8). */
static int put_strings(vt_store_writer *w, const char *key, const char *const *v, uint64_t n) {
    uint8_t b[2048];
    uint32_t et = 8;
    size_t o = 0;
    memcpy(b, &et, 4);
    memcpy(b + 4, &n, 8);
    o = 12;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = strlen(v[i]);
        if (o + 8 + len > sizeof b) return -1;
        memcpy(b + o, &len, 8);
        memcpy(b + o + 8, v[i], len);
        o += 8 + len;
    }
    return put_meta(w, key, 9, b, o);
}

/* The vocabulary: token 0 is bytes C3 A9 C3 (GPT-2's byte-to-unicode alphabet maps 0xC3 and
 * 0xA9 to U+00C3, U+00A9); then single-byte tokens for 'a'..'z', '!', ' ' (U+0120), and fillers.
 * No token for 0xFF. */
static const char *const vocab[VOCAB] = {"\xc3\x83\xc2\xa9\xc3\x83",
                                         "a",
                                         "b",
                                         "c",
                                         "d",
                                         "e",
                                         "f",
                                         "g",
                                         "h",
                                         "i",
                                         "j",
                                         "k",
                                         "l",
                                         "m",
                                         "n",
                                         "o",
                                         "p",
                                         "q",
                                         "r",
                                         "s",
                                         "t",
                                         "u",
                                         "v",
                                         "w",
                                         "x",
                                         "y",
                                         "z",
                                         "!",
                                         "\xc4\xa0",
                                         "ab",
                                         "cd",
                                         "ef"};

/* What a store of make_store_with has instead of the defaults (NULL / 0: the default). */
typedef struct {
    const char *const *tokens; /* tokenizer.ggml.tokens (default: vocab) */
    uint64_t n_tokens;
    const char *const *merges; /* tokenizer.ggml.merges (default: none) */
    uint64_t n_merges;
    const char *pre;      /* tokenizer.ggml.pre (default: smollm) */
    uint32_t bos;         /* 1 + tokenizer.ggml.bos_token_id, with add_bos_token true */
    int no_merges;        /* 1: no tokenizer.ggml.merges key at all */
    const char *model;    /* tokenizer.ggml.model (default: none) */
    const int32_t *types; /* tokenizer.ggml.token_type, one per token (default: none) */
    const char *u32_key;  /* one more GGUF u32 key (e.g. tokenizer.ggml.eom_token_id) */
    uint32_t u32_val;
    /* a Hugging Face store instead (HF tensor names, config.json and tokenizer.json, no gguf.*
     * keys): config.json ends with this text (e.g. "\"eos_token_id\": [7, 0]"); the
     * tokenizer.json vocabulary has no id 0 when hf_gap0 */
    const char *hf_config;
    int hf_gap0;
    const char *hf_gen_config; /* generation_config.json (default: none) */
    const float *scores;       /* tokenizer.ggml.scores, one per token (default: none) */
    const char *hf_added;      /* tokenizer.json added_tokens, a JSON array (default: none) */
    const char *hf_model_type; /* config.json model_type (default: llama) */
} store_opts;

/* The HF layout's tensor names for the GGUF ones make_store_with writes. */
static const char *hf_name(const char *gguf, char *buf, size_t cap) {
    static const char *const map[][2] = {
        {"token_embd", "model.embed_tokens"}, {"output_norm", "model.norm"},
        {"attn_norm", "input_layernorm"},     {"attn_q", "self_attn.q_proj"},
        {"attn_k", "self_attn.k_proj"},       {"attn_v", "self_attn.v_proj"},
        {"attn_output", "self_attn.o_proj"},  {"ffn_norm", "post_attention_layernorm"},
        {"ffn_gate", "mlp.gate_proj"},        {"ffn_up", "mlp.up_proj"},
        {"ffn_down", "mlp.down_proj"}};
    int l = -1;
    char t[64];
    if (sscanf(gguf, "blk.%d.%63[a-z_].weight", &l, t) != 2) sscanf(gguf, "%63[a-z_].weight", t);
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(t, map[i][0])) {
            if (l >= 0)
                snprintf(buf, cap, "model.layers.%d.%s.weight", l, map[i][1]);
            else
                snprintf(buf, cap, "%s.weight", map[i][1]);
            return buf;
        }
    return gguf;
}

/* tokenizer.json for the vocabulary (ByteLevel BPE, no merges), without id 0 when @p gap0, with
 * the added_tokens array @p added when not NULL. */
static char *hf_tokenizer_json(const char *const *toks, uint64_t n, int gap0, const char *added) {
    size_t cap = 4096, o = 0;
    char *j = malloc(cap);
    if (!j) return NULL;
    o += (size_t)snprintf(j + o, cap - o, "{");
    if (added) o += (size_t)snprintf(j + o, cap - o, "\"added_tokens\": %s, ", added);
    o += (size_t)snprintf(j + o, cap - o,
                          "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": "
                          "false, \"use_regex\": true}, \"model\": {\"type\": \"BPE\", "
                          "\"merges\": [], \"vocab\": {");
    for (uint64_t i = gap0 ? 1 : 0; i < n && o < cap; i++)
        o += (size_t)snprintf(j + o, cap - o, "%s\"%s\": %llu", i > (gap0 ? 1u : 0u) ? ", " : "",
                              toks[i], (unsigned long long)i);
    if (o < cap) o += (size_t)snprintf(j + o, cap - o, "}}}");
    if (o >= cap) {
        free(j);
        return NULL;
    }
    return j;
}

/* A store at dir/@p name whose output_norm.weight is all @p norm (token_embd.weight always has
 * VOCAB rows). */
static int make_store_with(const char *name, float norm, const store_opts *o) {
    static const store_opts none = {0};
    if (!o) o = &none;
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    vt_store *s;
    vt_store_writer *w;
    int rc = vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, NULL, &s);
    if (rc) return rc;
    if ((rc = vt_store_writer_begin(s, &w))) {
        vt_store_close(s);
        return rc;
    }
    static const char *const suf[9] = {"attn_norm", "attn_q",   "attn_k", "attn_v",  "attn_output",
                                       "ffn_norm",  "ffn_gate", "ffn_up", "ffn_down"};
    const uint64_t rows[9] = {1, H * HD, HKV * HD, HKV * HD, DIM, 1, FFN, FFN, DIM};
    const uint64_t cols[9] = {DIM, DIM, DIM, DIM, H * HD, DIM, DIM, DIM, FFN};
    int hf = o->hf_config != NULL;
    char hn[96];
    rc = put(w, hf ? hf_name("token_embd.weight", hn, sizeof hn) : "token_embd.weight", VOCAB, DIM,
             1.0f, 0, 0, 0);
    for (int l = 0; l < NL && !rc; l++)
        for (int t = 0; t < 9 && !rc; t++) {
            char tn[64];
            snprintf(tn, sizeof tn, "blk.%d.%s.weight", l, suf[t]);
            int nrm = rows[t] == 1;
            rc = put(w, hf ? hf_name(tn, hn, sizeof hn) : tn, rows[t], cols[t], nrm ? 0.2f : 0.25f,
                     nrm ? 1.0f : 0, 0, 0);
        }
    if (!rc)
        rc = put(w, hf ? hf_name("output_norm.weight", hn, sizeof hn) : "output_norm.weight", 1,
                 DIM, 0, 0, 1, norm);
    if (hf) {
        char cfg[1024];
        snprintf(cfg, sizeof cfg,
                 "{\"model_type\": \"%s\", \"hidden_size\": %d, \"intermediate_size\": %d, "
                 "\"num_hidden_layers\": %d, \"num_attention_heads\": %d, "
                 "\"num_key_value_heads\": %d, \"max_position_embeddings\": 64, "
                 "\"rms_norm_eps\": 1e-5, \"tie_word_embeddings\": true, %s}",
                 o->hf_model_type ? o->hf_model_type : "llama", DIM, FFN, NL, H, HKV, o->hf_config);
        char *tj = hf_tokenizer_json(o->tokens ? o->tokens : vocab, o->tokens ? o->n_tokens : VOCAB,
                                     o->hf_gap0, o->hf_added);
        if (!rc) rc = put_text(w, "config.json", cfg);
        if (!rc) rc = tj ? put_text(w, "tokenizer.json", tj) : -1;
        if (!rc && o->hf_gen_config) rc = put_text(w, "generation_config.json", o->hf_gen_config);
        free(tj);
        goto commit;
    }
    if (!rc) rc = put_str(w, "gguf.general.architecture", "llama");
    static const struct {
        const char *k;
        uint32_t v;
    } u[] = {{"gguf.llama.block_count", NL},
             {"gguf.llama.embedding_length", DIM},
             {"gguf.llama.feed_forward_length", FFN},
             {"gguf.llama.attention.head_count", H},
             {"gguf.llama.attention.head_count_kv", HKV},
             {"gguf.llama.context_length", 64}};
    for (size_t i = 0; i < sizeof u / sizeof u[0] && !rc; i++)
        rc = put_meta(w, u[i].k, 4, &u[i].v, 4);
    float theta = 10000.0f, eps = 1e-5f;
    if (!rc) rc = put_meta(w, "gguf.llama.rope.freq_base", 6, &theta, 4);
    if (!rc) rc = put_meta(w, "gguf.llama.attention.layer_norm_rms_epsilon", 6, &eps, 4);
    if (!rc)
        rc = put_strings(w, "gguf.tokenizer.ggml.tokens", o->tokens ? o->tokens : vocab,
                         o->tokens ? o->n_tokens : VOCAB);
    if (!rc && !o->no_merges)
        rc = put_strings(w, "gguf.tokenizer.ggml.merges", o->merges, o->n_merges);
    if (!rc && o->model) rc = put_str(w, "gguf.tokenizer.ggml.model", o->model);
    if (!rc && o->types)
        rc = put_arr4(w, "gguf.tokenizer.ggml.token_type", 5, o->types,
                      o->tokens ? o->n_tokens : VOCAB);
    if (!rc && o->scores)
        rc = put_arr4(w, "gguf.tokenizer.ggml.scores", 6, o->scores,
                      o->tokens ? o->n_tokens : VOCAB);
    if (!rc && o->u32_key) rc = put_meta(w, o->u32_key, 4, &o->u32_val, 4);
    if (!rc) rc = put_str(w, "gguf.tokenizer.ggml.pre", o->pre ? o->pre : "smollm");
    if (!rc && o->bos) {
        uint32_t id = o->bos - 1;
        uint8_t yes = 1;
        rc = put_meta(w, "gguf.tokenizer.ggml.bos_token_id", 4, &id, 4);
        if (!rc) rc = put_meta(w, "gguf.tokenizer.ggml.add_bos_token", 7, &yes, 1);
    }
commit:
    if (!rc)
        rc = vt_store_writer_commit(w);
    else
        vt_store_writer_abort(w);
    vt_store_close(s);
    return rc;
}

static int make_store(const char *name, float norm) {
    return make_store_with(name, norm, NULL);
}

static int starts(const char *s, const char *prefix) {
    return !strncmp(s, prefix, strlen(prefix));
}

/* No byte >= 0x80 in s. */
static int ascii(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 0;
    return 1;
}

/* Generation from ids 1,2 (3 new tokens) on a store @p name made with @p o: the zero model always
 * picks token 0, so the run either stops after it (@p stops: generated_ids [0]) or runs on
 * ([0, 0, 0]). A failure names @p what, with the exit code, stdout and stderr. */
static void check_stops(const char *what, const char *name, const store_opts *o, int stops) {
    char args[160], out[512];
    CHECK_RC(make_store_with(name, 0.0f, o));
    snprintf(args, sizeof args, "run %s --tokens 1,2 --max-new 3 --json", name);
    int rc = vt(args);
    int ok = rc == 0 && strstr(slurp("out.txt"),
                               stops ? "\"generated_ids\": [0]" : "\"generated_ids\": [0, 0, 0]");
    snprintf(out, sizeof out, "%s", slurp("out.txt")); /* slurp's buffer is reused */
    CHECKF(ok, "%s: exit %d, stdout %.300s, stderr %.300s", what, rc, out, slurp("err.txt"));
}

int main(void) {
    bin = getenv("VT_BIN");
    if (!bin || access(bin, X_OK)) TEST_SKIP("VT_BIN not set or not executable");
    vt_test_tmpdir("run_cli_synth", dir, sizeof dir);
    CHECK_RC(make_store("nan.vts", NAN));
    CHECK_RC(make_store("zero.vts", 0.0f));

    /* NaN logits: no token is chosen from them */
    int rc = vt("run nan.vts --tokens 1,2,3 --max-new 4 --json");
    char *err = slurp("err.txt");
    CHECKF(rc == 1 && strstr(err, "nan.vts") && strstr(err, "position 2") &&
               strstr(err, "not finite"),
           "NaN model: exit %d, stderr: %s", rc, err);
    printf("nan: %s", err);
    CHECKF(!*slurp("out.txt"), "NaN model: stdout: %s", slurp("out.txt"));
    rc = vt("run nan.vts --tokens 1,2,3 --max-new 2");
    CHECKF(rc == 1 && strstr(slurp("err.txt"), "position 2"), "NaN model, text: exit %d, %s", rc,
           slurp("err.txt"));
    /* --logits: every row is output; the file is written, the run fails */
    rc = vt("run nan.vts --tokens 1,2,3 --max-new 0 --quiet --logits l.npy");
    err = slurp("err.txt");
    CHECKF(rc == 1 && strstr(err, "position 0") && strstr(err, "not finite") &&
               strstr(err, "l.npy"),
           "NaN model, --logits: exit %d, stderr: %s", rc, err);
    CHECK(strlen(slurp("l.npy")) >= 6); /* "\x93NUMPY" */

    /* the finite model runs; token 0 is C3 A9 C3, so two of them are é, C3, é, C3 */
    rc = vt("run zero.vts --tokens 1,2,3 --max-new 2 --json");
    char *out = strdup(slurp("out.txt")); /* slurp's buffer is reused below */
    const char *want = "{\"text\": \"\xc3\xa9\\ufffd\xc3\xa9\\ufffd\", ";
    CHECKF(rc == 0 && out && !strncmp(out, want, strlen(want)) &&
               strstr(out, "\"generated_ids\": [0, 0]"),
           "zero model --json: exit %d, stdout: %.300s, stderr: %s", rc, out, slurp("err.txt"));
    CHECKF(out && ascii(out + strlen(want)), "raw bytes after the text: %.300s", out);
    free(out);
    rc = vt("run zero.vts --tokens 1,2,3 --max-new 2 --logits l.npy --quiet");
    CHECKF(rc == 0, "zero model --logits: exit %d, stderr: %s", rc, slurp("err.txt"));

    /* a prompt byte without a byte token: alone (a one-byte piece) and inside a longer piece */
    static const struct {
        const char *prompt, *expect;
    } bad[] = {{"a\xff"
                "b",
                "byte 0xff at offset 1 "},
               {"ab!\xff", "byte 0xff at offset 3 "}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[256];
        snprintf(args, sizeof args, "run zero.vts --prompt '%s' --max-new 1", bad[i].prompt);
        rc = vt(args);
        err = slurp("err.txt");
        CHECKF(rc == 1 && strstr(err, "zero.vts") && strstr(err, bad[i].expect),
               "prompt %d: exit %d, stderr: %s", (int)i, rc, err);
        printf("prompt %d: %s", (int)i, err);
    }
    rc = vt("run zero.vts --prompt 'ab cd!' --max-new 1 --quiet");
    CHECKF(rc == 0, "a prompt of vocabulary bytes: exit %d, stderr: %s", rc, slurp("err.txt"));

    /* a token longer than 255 bytes is text like any other (it used to be left out of the
     * output, the text of --json empty while generated_ids held it) */
    {
        const char *toks[VOCAB];
        char big[301];
        memset(big, 'L', 300);
        big[300] = 0;
        memcpy(toks, vocab, sizeof toks);
        toks[0] = big;
        store_opts o = {.tokens = toks, .n_tokens = VOCAB};
        CHECK_RC(make_store_with("long.vts", 0.0f, &o));
        rc = vt("run long.vts --tokens 1,2,3 --max-new 2 --json");
        out = slurp("out.txt");
        char want_text[700];
        snprintf(want_text, sizeof want_text, "{\"text\": \"%s%s\", ", big, big);
        CHECKF(rc == 0 && !strncmp(out, want_text, strlen(want_text)) &&
                   strstr(out, "\"generated_ids\": [0, 0]"),
               "300-byte token, --json: exit %d, stdout: %.80s...", rc, out);
        rc = vt("run long.vts --tokens 1,2,3 --max-new 1");
        CHECKF(rc == 0 && count(slurp("out.txt"), big) == 1, "300-byte token, text: exit %d, %s",
               rc, slurp("err.txt"));
    }

    /* a tokenizer with tokens the model has no embedding row for (here 33 and 34 tokens for 32
     * rows): a prompt that encodes to one, or a BOS beyond the rows, is an error of the model
     * (exit 1, naming the store, the token and the tensor), not of the command line (it used to
     * exit 2 with 'token id 32 is outside the vocabulary', as for a --tokens id) */
    {
        const char *toks[VOCAB + 2];
        memcpy(toks, vocab, sizeof vocab);
        toks[VOCAB] = "zz";
        toks[VOCAB + 1] = "<s>";
        const char *merges[1] = {"z z"};
        store_opts o = {.tokens = toks, .n_tokens = VOCAB + 1, .merges = merges, .n_merges = 1};
        CHECK_RC(make_store_with("wide.vts", 0.0f, &o));
        o.n_tokens = VOCAB + 2;
        o.bos = VOCAB + 1 + 1; /* "<s>", id 33 */
        CHECK_RC(make_store_with("widebos.vts", 0.0f, &o));
        rc = vt("run wide.vts --prompt 'ab zz' --max-new 1");
        err = slurp("err.txt");
        CHECKF(rc == 1 && strstr(err, "wide.vts") && strstr(err, "token 32,") &&
                   strstr(err, "token_embd.weight has only 32 rows") && strstr(err, "33 tokens"),
               "prompt beyond the embedding: exit %d, stderr: %s", rc, err);
        printf("wide: %s", err);
        rc = vt("run widebos.vts --prompt 'ab' --max-new 1");
        err = slurp("err.txt");
        CHECKF(rc == 1 && strstr(err, "token 33 (the BOS)") && strstr(err, "34 tokens"),
               "BOS beyond the embedding: exit %d, stderr: %s", rc, err);
        rc = vt("run wide.vts --prompt 'ab cd' --max-new 1 --quiet"); /* in range: runs */
        CHECKF(rc == 0, "prompt within the embedding: exit %d, stderr: %s", rc, slurp("err.txt"));
        rc = vt("run wide.vts --tokens 1,32 --max-new 1"); /* given ids: a usage error */
        CHECKF(rc == 2 && strstr(slurp("err.txt"), "token id 32 is outside the vocabulary"),
               "--tokens beyond the embedding: exit %d, stderr: %s", rc, slurp("err.txt"));
    }

    /* an empty prompt: the BOS alone when the model adds one (as llama.cpp and transformers
     * do; it used to be refused, exit 2), else a usage error */
    {
        store_opts o = {.bos = 5 + 1}; /* "e" */
        CHECK_RC(make_store_with("bos.vts", 0.0f, &o));
        rc = vt("run bos.vts --prompt '' --max-new 1 --json");
        CHECKF(rc == 0 && strstr(slurp("out.txt"), "\"prompt_ids\": [5]"),
               "empty prompt with a BOS: exit %d, stdout %.200s", rc, slurp("out.txt"));
        rc = vt("run bos.vts --prompt 'ab' --max-new 1 --json");
        CHECKF(rc == 0 && strstr(slurp("out.txt"), "\"prompt_ids\": [5, 1, 2]"),
               "prompt with a BOS: exit %d, stdout %.200s", rc, slurp("out.txt"));
        rc = vt("run zero.vts --prompt '' --max-new 1");
        CHECKF(rc == 2 && strstr(slurp("err.txt"), "encodes to no tokens"),
               "empty prompt without a BOS: exit %d, stderr: %s", rc, slurp("err.txt"));
    }

    /* the store's names in a message are escaped: a tokenizer.ggml.pre holding an escape
     * sequence cannot drive the terminal (it used to be printed raw) */
    {
        store_opts o = {.pre = "x\x1b]0;owned\x07y"};
        CHECK_RC(make_store_with("esc.vts", 0.0f, &o));
        rc = vt("run esc.vts --prompt 'ab' --max-new 1");
        err = slurp("err.txt");
        CHECKF(rc == 1 && strstr(err, "pre-tokenizer") && strstr(err, "x\\x1b]0;owned\\x07y") &&
                   !strchr(err, '\x1b') && !strchr(err, '\x07'),
               "escape in tokenizer.ggml.pre: exit %d, stderr: %s", rc, err);
    }

    /* --logits FILE appears whole or not at all: a write that fails (here the file size limit,
     * EFBIG) names the file and the cause and leaves what FILE held (it used to truncate it,
     * then say 'Input/output error') */
    {
        char p[4400];
        snprintf(p, sizeof p, "%s/old.npy", dir);
        FILE *f = fopen(p, "w");
        CHECK(f && fputs("OLD CONTENT", f) >= 0 && fclose(f) == 0);
        char cmd[16384];
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && { (trap '' XFSZ; ulimit -f 0; exec '%s' run zero.vts --tokens 1,2,3 "
                 "--max-new 2 --quiet --logits old.npy) 2>&1; echo \"exit $?\"; } | cat >err.txt",
                 dir, bin);
        CHECK(system(cmd) == 0);
        err = slurp("err.txt");
        CHECKF(strstr(err, "exit 1") && strstr(err, "old.npy") && strstr(err, "File too large"),
               "--logits past the file size limit: %s", err);
        CHECKF(!strcmp(slurp("old.npy"), "OLD CONTENT"), "--logits file after a failed write: '%s'",
               slurp("old.npy"));
        rc = vt("run zero.vts --tokens 1,2,3 --max-new 2 --quiet --logits old.npy");
        CHECKF(rc == 0 && !strncmp(slurp("old.npy"), "\x93NUMPY", 6), "--logits: exit %d, %s", rc,
               slurp("err.txt"));
    }
    /* --prefetch does not grow the default (all resident) RAM budget: nothing streams, the plan
     * pins everything (it used to add (N + 2) slots of the second largest tensor: --prefetch
     * 300 on SmolLM2 took 272 MB instead of 110, --prefetch 1000000 asked for 553 GB) */
    {
        unsigned long long b0 = 0, b1 = 0;
        rc = vt("run zero.vts --tokens 1,2,3 --max-new 1 --json");
        const char *j = strstr(slurp("out.txt"), "\"ram_budget\": ");
        CHECKF(rc == 0 && j && sscanf(j, "\"ram_budget\": %llu", &b0) == 1,
               "default budget: exit %d, %s", rc, slurp("err.txt"));
        rc = vt("run zero.vts --tokens 1,2,3 --max-new 1 --json --prefetch 1000000");
        j = strstr(slurp("out.txt"), "\"ram_budget\": ");
        CHECKF(rc == 0 && j && sscanf(j, "\"ram_budget\": %llu", &b1) == 1 && b1 == b0,
               "--prefetch 1000000: exit %d, budget %llu (default %llu), %s", rc, b1, b0,
               slurp("err.txt"));
    }

    /* add_bos_token true with a bos_token_id the vocabulary does not have: --prompt is refused
     * naming the key and its value (it used to run without a BOS, silently); --tokens runs */
    {
        store_opts o = {.bos = 40 + 1};
        CHECK_RC(make_store_with("badbos.vts", 0.0f, &o));
        rc = vt("run badbos.vts --prompt 'ab' --max-new 1");
        err = slurp("err.txt");
        CHECKF(rc == 1 && strstr(err, "badbos.vts") && strstr(err, "add_bos_token true") &&
                   strstr(err, "tokenizer.ggml.bos_token_id is 40") && strstr(err, "32 tokens") &&
                   strstr(err, "--tokens"),
               "BOS outside the vocabulary: exit %d, stderr: %s", rc, err);
        printf("badbos: %s", err);
        rc = vt("run badbos.vts --tokens 1,2 --max-new 1 --quiet");
        CHECKF(rc == 0, "BOS outside the vocabulary, --tokens: exit %d, %s", rc, slurp("err.txt"));
    }

    /* config.json attention_bias / mlp_bias true (o_proj and FFN biases the runner does not
     * add) are refused by name, not ignored; false runs */
    {
        static const char *const cfgs[3] = {"\"attention_bias\": true", "\"mlp_bias\": true",
                                            "\"attention_bias\": false, \"mlp_bias\": false"};
        for (int i = 0; i < 3; i++) {
            store_opts o = {.hf_config = cfgs[i]};
            char name[32], args[96];
            snprintf(name, sizeof name, "hfbias%d.vts", i);
            snprintf(args, sizeof args, "run %s --tokens 1,2 --max-new 1 --quiet", name);
            CHECK_RC(make_store_with(name, 0.0f, &o));
            rc = vt(args);
            if (i < 2)
                CHECKF(rc == 1 &&
                           strstr(slurp("err.txt"), i ? "mlp_bias true is not supported"
                                                      : "attention_bias true is not supported"),
                       "config.json %s: exit %d, stderr %s", cfgs[i], rc, slurp("err.txt"));
            else
                CHECKF(rc == 0, "config.json %s: exit %d, stderr %s", cfgs[i], rc,
                       slurp("err.txt"));
        }
    }

    /* model_type mistral is llama with a sliding window: null and 4 run any context on the CPU
     * (run_window checks the windowed logits against the numpy reference) */
    {
        store_opts o = {.hf_model_type = "mistral", .hf_config = "\"sliding_window\": null"};
        CHECK_RC(make_store_with("mistral.vts", 0.0f, &o));
        rc = vt("run mistral.vts --tokens 1,2 --max-new 6 --quiet");
        CHECKF(rc == 0, "mistral, sliding_window null: exit %d, stderr %s", rc, slurp("err.txt"));
        o.hf_config = "\"sliding_window\": 4";
        CHECK_RC(make_store_with("mistral4.vts", 0.0f, &o));
        rc = vt("run mistral4.vts --tokens 1,2 --max-new 2 --quiet");
        CHECKF(rc == 0, "mistral, sliding_window 4, context 4: exit %d, stderr %s", rc,
               slurp("err.txt"));
        rc = vt("run mistral4.vts --tokens 1,2 --max-new 6 --quiet");
        CHECKF(rc == 0, "mistral, sliding_window 4, context 8: exit %d, stderr %s", rc,
               slurp("err.txt"));
        o.hf_model_type = "gemma";
        CHECK_RC(make_store_with("gemma.vts", 0.0f, &o));
        rc = vt("run gemma.vts --tokens 1,2 --max-new 1 --quiet");
        CHECKF(rc == 1 && strstr(slurp("err.txt"), "model_type 'gemma'"),
               "model_type gemma: exit %d, stderr %s", rc, slurp("err.txt"));
    }

    /* every EOS stops: config.json's eos_token_id list (Llama 3.1's has three), the GGUF
     * eom_token_id and a <|eom_id|> control token (llama.cpp's end-of-generation set); the zero
     * model always picks token 0 (it used to stop only at the list's first id) */
    {
        store_opts o = {.hf_config = "\"eos_token_id\": [7, 0]"};
        check_stops("config.json eos_token_id [7, 0]", "hfeos.vts", &o, 1);
        o.hf_config = "\"eos_token_id\": 7";
        check_stops("config.json eos_token_id 7", "hfeos1.vts", &o, 0);
        /* generation_config.json's list is what generate() stops at: it adds 0 here, and
         * replaces config.json's [7, 0] with [7] in the second store */
        o.hf_gen_config = "{\"eos_token_id\": [7, 0], \"do_sample\": false}";
        check_stops("generation_config.json eos_token_id [7, 0]", "hfgen.vts", &o, 1);
        o.hf_config = "\"eos_token_id\": [7, 0]";
        o.hf_gen_config = "{\"eos_token_id\": 7}";
        check_stops("generation_config.json eos_token_id 7", "hfgen1.vts", &o, 0);
        o.hf_gen_config = NULL;
        store_opts g = {.u32_key = "gguf.tokenizer.ggml.eom_token_id", .u32_val = 0};
        check_stops("GGUF eom_token_id 0", "eom.vts", &g, 1);
        const char *toks[VOCAB];
        int32_t types[VOCAB];
        memcpy(toks, vocab, sizeof toks);
        for (int i = 0; i < VOCAB; i++) types[i] = 1;
        toks[0] = "<|eom_id|>";
        types[0] = 3;
        store_opts t = {.tokens = toks, .n_tokens = VOCAB, .types = types};
        check_stops("<|eom_id|> control token", "eomtext.vts", &t, 1);
    }

    /* llama.cpp's end-of-generation tokens by name (special_eog_ids), without --chat: a token 0
     * named so stops after it, of any type, as in llama.cpp (it used to run on: only EOS,
     * <|eot_id|> and <|eom_id|> stopped); gpt-oss's <|end|> does not with <|return|> and
     * <|call|> there, as in llama.cpp; nor does a name off the list; the same for tokenizer.json
     * tokens */
    {
        static const struct {
            const char *name;
            int32_t type; /* of token 0 */
            int stops;    /* 1: generated_ids [0], else [0, 0, 0] */
            int harmony;  /* 1: also CONTROL <|return|> (30) and <|call|> (31) */
        } eog[] = {{"<|im_end|>", 3, 1, 0},    {"<end_of_turn>", 3, 1, 0},
                   {"<|endoftext|>", 3, 1, 0}, {"<reponame>", 3, 1, 0}, /* SmolLM2's FIM repo */
                   {"<|end|>", 3, 1, 0},       {"<|end|>", 3, 0, 1},
                   {"<|im_end|>", 1, 1, 0},    {"<end_of_turn>", 1, 1, 0},
                   {"<|endoftext|>", 1, 1, 0}, {"<|endoftext|>", 4, 1, 0},
                   {"<|im_end|", 3, 0, 0},     {"<|im_start|>", 3, 0, 0}};
        for (size_t i = 0; i < sizeof eog / sizeof eog[0]; i++) {
            const char *toks[VOCAB];
            int32_t types[VOCAB];
            memcpy(toks, vocab, sizeof toks);
            for (int k = 0; k < VOCAB; k++) types[k] = 1;
            toks[0] = eog[i].name;
            types[0] = eog[i].type;
            if (eog[i].harmony) {
                toks[30] = "<|return|>", toks[31] = "<|call|>";
                types[30] = types[31] = 3;
            }
            store_opts t = {.tokens = toks, .n_tokens = VOCAB, .types = types};
            char name[32], what[96];
            snprintf(name, sizeof name, "eog%zu.vts", i);
            snprintf(what, sizeof what, "%s, type %d%s", eog[i].name, eog[i].type,
                     eog[i].harmony ? " with <|return|> and <|call|>" : "");
            check_stops(what, name, &t, eog[i].stops);
        }
        const char *toks[VOCAB];
        memcpy(toks, vocab, sizeof toks);
        toks[0] = "<|endoftext|>";
        store_opts h = {.tokens = toks,
                        .n_tokens = VOCAB,
                        .hf_config = "\"eos_token_id\": 7",
                        .hf_added =
                            "[{\"id\": 0, \"content\": \"<|endoftext|>\", \"special\": true}]"};
        check_stops("tokenizer.json special <|endoftext|>", "hfeog.vts", &h, 1);
        h.hf_added = "[{\"id\": 0, \"content\": \"<|endoftext|>\", \"special\": false}]";
        check_stops("tokenizer.json non-special <|endoftext|>", "hfeog1.vts", &h, 1);
        h.hf_added = NULL; /* in model.vocab only: a normal token */
        check_stops("tokenizer.json vocab <|endoftext|>", "hfeog2.vts", &h, 1);
    }

    /* a SentencePiece vocabulary (tokenizer.ggml.model "llama", no merges: Llama 2, Mistral 7B):
     * --tokens runs and decodes pieces as llama.cpp does (U+2581 is a space, <0xNN> the byte);
     * --prompt is refused naming SentencePiece and --tokens (it used to fail either way with
     * 'merges: not found') */
    {
        const char *toks[VOCAB];
        int32_t types[VOCAB];
        memcpy(toks, vocab, sizeof toks);
        for (int i = 0; i < VOCAB; i++) types[i] = 1;
        toks[0] = "\xe2\x96\x81x\xe2\x96\x81\xc3\xa9";
        store_opts o = {
            .tokens = toks, .n_tokens = VOCAB, .types = types, .model = "llama", .no_merges = 1};
        CHECK_RC(make_store_with("spm.vts", 0.0f, &o));
        rc = vt("run spm.vts --tokens 1,2 --max-new 2 --json");
        CHECKF(rc == 0 && starts(slurp("out.txt"), "{\"text\": \" x \xc3\xa9 x \xc3\xa9\", "),
               "SentencePiece --tokens: exit %d, stdout %.300s, stderr %s", rc, slurp("out.txt"),
               slurp("err.txt"));
        toks[0] = "<0x41>";
        types[0] = 6; /* BYTE */
        CHECK_RC(make_store_with("spmbyte.vts", 0.0f, &o));
        rc = vt("run spmbyte.vts --tokens 1,2 --max-new 2 --json");
        CHECKF(rc == 0 && starts(slurp("out.txt"), "{\"text\": \"AA\", "),
               "SentencePiece byte token: exit %d, stdout %.300s, stderr %s", rc, slurp("out.txt"),
               slurp("err.txt"));
        rc = vt("run spm.vts --prompt 'ab' --max-new 1");
        err = slurp("err.txt");
        CHECKF(rc == 1 && strstr(err, "spm.vts") && strstr(err, "SentencePiece") &&
                   strstr(err, "--tokens"),
               "SentencePiece --prompt: exit %d, stderr: %s", rc, err);
        printf("spm: %s", err);
        /* with tokenizer.ggml.scores it encodes, as llama.cpp does: a space in front, the
         * highest-scoring merges first ("▁ab" over "▁a" + "b"), the BOS (1, llama.cpp's
         * default for SentencePiece) first; a character no piece holds by its <0xNN> bytes */
        toks[0] = "<0x41>";
        types[0] = 6;
        toks[3] = "\xe2\x96\x81"
                  "a";
        toks[4] = "\xe2\x96\x81"
                  "ab";
        toks[5] = "\xe2\x96\x81";
        float sc[VOCAB];
        for (int i = 0; i < VOCAB; i++) sc[i] = -100.0f - i;
        sc[3] = -1.0f, sc[4] = -2.0f, sc[5] = -3.0f;
        o.scores = sc;
        CHECK_RC(make_store_with("spmenc.vts", 0.0f, &o));
        rc = vt("run spmenc.vts --prompt 'ab A' --max-new 1 --json");
        CHECKF(rc == 0 && strstr(slurp("out.txt"), "\"prompt_ids\": [1, 4, 5, 0]"),
               "SentencePiece --prompt with scores: exit %d, stdout %.300s, stderr %s", rc,
               slurp("out.txt"), slurp("err.txt"));
    }

    /* a token with no text (an id tokenizer.json leaves out, a GGUF UNUSED token) prints nothing,
     * as in llama.cpp and transformers (it used to print <|vt_unused_0|> / the token's text) */
    {
        store_opts o = {.hf_config = "\"eos_token_id\": 7", .hf_gap0 = 1};
        CHECK_RC(make_store_with("hfgap.vts", 0.0f, &o));
        rc = vt("run hfgap.vts --tokens 1,2 --max-new 2 --json");
        CHECKF(rc == 0 && starts(slurp("out.txt"), "{\"text\": \"\", ") &&
                   strstr(slurp("out.txt"), "\"generated_ids\": [0, 0]"),
               "tokenizer.json gap: exit %d, stdout %.300s, stderr %s", rc, slurp("out.txt"),
               slurp("err.txt"));
        int32_t types[VOCAB];
        for (int i = 0; i < VOCAB; i++) types[i] = 1;
        types[0] = 5; /* UNUSED */
        store_opts g = {.types = types};
        CHECK_RC(make_store_with("unused.vts", 0.0f, &g));
        rc = vt("run unused.vts --tokens 1,2 --max-new 2 --json");
        CHECKF(rc == 0 && starts(slurp("out.txt"), "{\"text\": \"\", ") &&
                   strstr(slurp("out.txt"), "\"generated_ids\": [0, 0]"),
               "GGUF UNUSED token: exit %d, stdout %.300s, stderr %s", rc, slurp("out.txt"),
               slurp("err.txt"));
    }
    return vt_test_done("run_cli_synth");
}
