/* llama.c — the Llama-family forward pass of `vtstore run` (see llama.h). */
#include "llama.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtstore/attn.h"
#include "vtstore/device.h"
#include "vtstore/kernels.h"
#include "vtstore/meta.h"

#include "hf_config.h"

/* Per-layer tensors; the q/k/v biases (Qwen2), the per-head q/k norms (Qwen3, Gemma 3) and the
 * post-norms (Gemma 3) come last here, but each where it is used in forward order
 * (forward_order). */
enum {
    L_ATTN_NORM,
    L_Q,
    L_K,
    L_V,
    L_O,
    L_FFN_NORM,
    L_GATE,
    L_UP,
    L_DOWN,
    L_QB,
    L_KB,
    L_VB,
    L_QN,
    L_KN,
    L_ATTN_POST,
    L_FFN_POST,
    L_COUNT
};
static const char *const layer_suffix[L_COUNT] = {
    "attn_norm.weight",    "attn_q.weight",      "attn_k.weight",
    "attn_v.weight",       "attn_output.weight", "ffn_norm.weight",
    "ffn_gate.weight",     "ffn_up.weight",      "ffn_down.weight",
    "attn_q.bias",         "attn_k.bias",        "attn_v.bias",
    "attn_q_norm.weight",  "attn_k_norm.weight", "post_attention_norm.weight",
    "post_ffw_norm.weight"};

/* The same roles under Hugging Face's names (a store imported from safetensors). */
static const char *const hf_suffix[L_COUNT] = {"input_layernorm.weight",
                                               "self_attn.q_proj.weight",
                                               "self_attn.k_proj.weight",
                                               "self_attn.v_proj.weight",
                                               "self_attn.o_proj.weight",
                                               "post_attention_layernorm.weight",
                                               "mlp.gate_proj.weight",
                                               "mlp.up_proj.weight",
                                               "mlp.down_proj.weight",
                                               "self_attn.q_proj.bias",
                                               "self_attn.k_proj.bias",
                                               "self_attn.v_proj.bias",
                                               "self_attn.q_norm.weight",
                                               "self_attn.k_norm.weight",
                                               "post_attention_layernorm.weight",
                                               "post_feedforward_layernorm.weight"};

/* One layer's tensors in forward order; the biases only with hp->qkv_bias, the norms only with
 * hp->qk_norm (llama.cpp's qwen3 graph: q = norm(Wq h) per head, then RoPE; the same for k). */
static const int forward_order[L_COUNT] = {
    L_ATTN_NORM, L_Q, L_QB,        L_QN,       L_K,    L_KB, L_KN,   L_V,
    L_VB,        L_O, L_ATTN_POST, L_FFN_NORM, L_GATE, L_UP, L_DOWN, L_FFN_POST};
/* Whether the model has layer tensor @p t. */
static int has_tensor(const vt_llama_hparams *hp, int t) {
    if (t == L_QB || t == L_KB || t == L_VB) return hp->qkv_bias;
    if (t == L_QN || t == L_KN) return hp->qk_norm;
    if (t == L_ATTN_POST || t == L_FFN_POST) return hp->gemma;
    return 1;
}
static uint32_t layer_tensors(const vt_llama_hparams *hp) {
    uint32_t n = 0;
    for (int t = 0; t < L_COUNT; t++) n += (uint32_t)has_tensor(hp, t);
    return n;
}

static const char *embd_name(const vt_llama_hparams *hp) {
    return hp->hf ? hp->hf_embd : "token_embd.weight";
}
static const char *head_name(const vt_llama_hparams *hp) {
    return hp->hf ? hp->hf_head : "output.weight";
}
static const char *onorm_name(const vt_llama_hparams *hp) {
    return hp->hf ? hp->hf_onorm : "output_norm.weight";
}
static void layer_name(const vt_llama_hparams *hp, uint32_t l, int t, char *buf, size_t cap) {
    if (hp->hf && hp->gemma &&
        t == L_FFN_NORM) /* Gemma's post_attention_layernorm is L_ATTN_POST */
        snprintf(buf, cap, "%slayers.%u.pre_feedforward_layernorm.weight", hp->hf_prefix, l);
    else if (hp->hf)
        snprintf(buf, cap, "%slayers.%u.%s", hp->hf_prefix, l, hf_suffix[t]);
    else
        snprintf(buf, cap, "blk.%u.%s", l, layer_suffix[t]);
}

struct vt_llama {
    vt_store *store; /* borrowed */
    vt_streamer *st; /* owned */
    vt_llama_hparams hp;
    vt_llama_opts o;
    char **names; /* [n_names] the schedule, one pass */
    size_t n_names;
    const char *head; /* the embedding when tied, else the output head */
    uint64_t model_bytes;
    uint64_t embd_rpc; /* rows per chunk of token_embd (= rows of each streamed part) */
    vt_kv_cache **kv;  /* [n_layers] */
    uint32_t n_past, max_ctx, ub;
    int gpu;         /* activations and KV on the device */
    int dev_is_host; /* no CUDA: the streamer's "device" tier is host memory */
    vt_weight held;  /* token_embd kept from the head of the last step (tied, one part) */
    int have_held;
    float *cand_row;  /* [dim] tied head in parts: embedding row of the last position's argmax */
    int32_t cand_id;  /* its token id (-1: none) */
    double *inv_freq; /* [rope_dim / 2] */
    double *inv_freq_swa; /* [rope_dim / 2] Gemma 3's windowed layers: rope_theta_swa, unscaled */
    /* host scratch, for ub tokens (shape comments per token) */
    float *x;                 /* [ub][dim] residual stream */
    float *h;                 /* [ub][max(dim, ffn)] normed input / SwiGLU product */
    float *q, *k, *v;         /* [ub][H*D], [ub][Hkv*D], [ub][Hkv*D] */
    float *qt, *kt, *vt, *ot; /* head-major copies: [H][ub][D], [Hkv][ub][D], .., [H][ub][D] */
    float *att;               /* [ub][H*D] attention output, token-major */
    float *g, *u;             /* [ub][ffn] */
    float *y;                 /* [ub][dim] product before the residual add */
    float *nrm;               /* [dim] a norm vector */
    float *rowbuf;            /* one aligned row group of token_embd */
    size_t rowbuf_n;
    float *tmp; /* [n][part rows] a part's product before it is scattered */
    size_t tmp_n;
    float *lbuf; /* [vocab] logits nobody asked for (the head still runs) */
    size_t lbuf_n;
    /* device scratch (gpu only) */
    void *dx, *dy, *dq, *dkv, *dout, *drow;
    size_t dx_n, dy_n, drow_n;
    void *dws;     /* attention decode workspace, sized once for the cache capacity */
    size_t dws_n;  /* its bytes */
    int dws_sized; /* dws allocated (or none needed) */
    /* every scheduled tensor pinned (nothing streams): handles are acquired once, on first use,
     * and held until close, as the bytes never move; saves a streamer lock and two wake-ups of
     * its I/O thread per tensor and token */
    int all_pinned;
    vt_weight *pin;    /* [n_names] held handle of m->names[i] (token 0: not acquired yet) */
    int32_t *pin_hash; /* [pin_cap] index into m->names, -1 empty; open addressing on the name */
    uint32_t pin_cap;  /* power of two >= 2 n_names */
};

void vt_llama_opts_init(vt_llama_opts *o) {
    memset(o, 0, sizeof *o);
    o->kv_format = VT_FMT_F16;
}

const vt_llama_hparams *vt_llama_hparams_of(const vt_llama *m) {
    return &m->hp;
}
vt_streamer *vt_llama_streamer(vt_llama *m) {
    return m->st;
}
uint64_t vt_llama_model_bytes(const vt_llama *m) {
    return m->model_bytes;
}
uint32_t vt_llama_n_past(const vt_llama *m) {
    return m->n_past;
}

/* ---- hyperparameters ------------------------------------------------------------------------ */

/* Store metadata keeps GGUF keys as "gguf.<key>" (vtstore/import.h). A missing optional key
 * gives @p def. */
static int meta_u32(vt_store *s, const char *arch, const char *k, uint32_t *out, int required,
                    uint32_t def) {
    char key[192];
    snprintf(key, sizeof key, "gguf.%s%s%s", arch ? arch : "", arch ? "." : "", k);
    int rc = vt_meta_get_u32(s, key, out);
    if (rc == VT_ENOTFOUND && !required) {
        *out = def;
        vt_clear_error();
        return 0;
    }
    if (rc) return vt_fail(rc, "model metadata %s: %s", key, vt_strerror(rc));
    return 0;
}

static int meta_f32(vt_store *s, const char *arch, const char *k, float *out, float def) {
    char key[192];
    snprintf(key, sizeof key, "gguf.%s.%s", arch, k);
    int rc = vt_meta_get_f32(s, key, out);
    if (rc == VT_ENOTFOUND) {
        *out = def;
        vt_clear_error();
        return 0;
    }
    if (rc) return vt_fail(rc, "model metadata %s: %s", key, vt_strerror(rc));
    return 0;
}

static int meta_id(vt_store *s, const char *k, int32_t *out) {
    uint32_t v;
    int rc = meta_u32(s, NULL, k, &v, 0, UINT32_MAX);
    *out = !rc && v <= INT32_MAX ? (int32_t)v : -1;
    return rc;
}

/* A 2-D tensor must be [rows][cols] as given. */
static int check_shape(vt_store *s, const char *name, uint64_t rows, uint64_t cols) {
    vt_tensor_info ti;
    int rc = vt_store_stat(s, name, &ti);
    if (rc) return vt_fail(rc, "model tensor %s: %s", name, vt_strerror(rc));
    if (ti.rows != rows || ti.cols != cols)
        return vt_fail(VT_EFORMAT,
                       "model tensor %s is %llux%llu, the hyperparameters need %llux%llu", name,
                       (unsigned long long)ti.rows, (unsigned long long)ti.cols,
                       (unsigned long long)rows, (unsigned long long)cols);
    return 0;
}

static int check_dims(vt_llama_hparams *hp, uint32_t head_dim);
static int check_tensors(vt_store *s, vt_llama_hparams *hp);
static int rope_scaling_gguf(vt_store *s, const char *arch, vt_llama_hparams *hp);

/* Gemma 3 from config.json (model_type gemma3_text, Gemma3ForCausalLM): windowed layers from
 * layer_types, else all but every sliding_window_pattern-th (transformers: layer l slides when
 * (l + 1) % pattern != 0; default 6). */
static int gemma_hf(const vt_hf_config *c, vt_llama_hparams *hp) {
    if (c->hidden_act[0] && strcmp(c->hidden_act, "gelu_pytorch_tanh"))
        return vt_fail(VT_EUNSUPPORTED,
                       "config.json: hidden_activation '%s' (Gemma 3's is gelu_pytorch_tanh)",
                       c->hidden_act);
    if (c->attn_softcap)
        return vt_fail(VT_EUNSUPPORTED,
                       "config.json: attn_logit_softcapping %g is not supported (Gemma 2's)",
                       c->attn_softcap);
    if (c->n_layer_types && c->n_layer_types != c->n_layers)
        return vt_fail(VT_EFORMAT, "config.json: layer_types lists %u layers, the model has %u",
                       c->n_layer_types, c->n_layers);
    hp->gemma = 1;
    hp->logit_cap = c->final_softcap;
    hp->rope_theta_swa = c->rope_local_base ? c->rope_local_base : 10000.0f;
    hp->window = c->window;
    uint32_t period = c->window_pattern ? c->window_pattern : 6;
    for (uint32_t l = 0; l < c->n_layers && l < VT_LLAMA_MAX_LAYERS; l++)
        hp->layer_swa[l] = c->n_layer_types ? c->layer_sliding[l] : (l + 1) % period != 0;
    return 0;
}

/* Gemma 3 from GGUF (llama.cpp's gemma3): ARCH.attention.sliding_window with every
 * ARCH.attention.sliding_window_pattern-th layer global (default 6: layer l slides when
 * l % 6 < 5), windowed layers rotated with ARCH.rope.freq_base_swa (default 10000) unscaled,
 * q scaled by 1/sqrt(head dim) (27B, 62 layers: 1/sqrt(dim / heads)), optional
 * ARCH.final_logit_softcapping. */
static int gemma_gguf(vt_store *s, const char *a, vt_llama_hparams *hp) {
    int rc;
    uint32_t period;
    if ((rc = meta_u32(s, a, "attention.sliding_window", &hp->window, 0, 0)) ||
        (rc = meta_f32(s, a, "rope.freq_base_swa", &hp->rope_theta_swa, 10000.0f)) ||
        (rc = meta_f32(s, a, "final_logit_softcapping", &hp->logit_cap, 0)))
        return rc;
    if ((rc = meta_u32(s, a, "attention.sliding_window_pattern", &period, 0, 6)))
        return vt_fail(VT_EUNSUPPORTED, "%s (only a period is supported, not a per-layer list)",
                       vt_last_error());
    for (uint32_t l = 0; l < hp->n_layers && l < VT_LLAMA_MAX_LAYERS; l++)
        hp->layer_swa[l] = period == 0 || l % period < period - 1;
    hp->attn_scale =
        1.0f / sqrtf((float)(hp->n_layers == 62 ? hp->dim / hp->n_heads : hp->head_dim));
    return 0;
}

/* A Hugging Face model: config.json (LlamaConfig) kept beside safetensors, HF tensor names,
 * rotate_half RoPE over the whole head (HF's q/k rows are not permuted as GGUF's are). */
static int hparams_hf(vt_store *s, vt_llama_hparams *hp) {
    vt_hf_config c;
    int rc = vt_hf_config_load(s, &c);
    if (rc) return vt_fail(rc, "model metadata config.json: %s", vt_last_error());
    int qwen2 = !strcmp(c.model_type, "qwen2"), qwen3 = !strcmp(c.model_type, "qwen3"),
        mistral = !strcmp(c.model_type, "mistral"), gemma3 = !strcmp(c.model_type, "gemma3_text");
    if (c.model_type[0] && strcmp(c.model_type, "llama") && !qwen2 && !qwen3 && !mistral && !gemma3)
        return vt_fail(VT_EUNSUPPORTED,
                       "config.json: model_type '%s' (only llama, mistral, qwen2, qwen3 and "
                       "gemma3_text are supported)",
                       c.model_type);
    /* Mistral's attention looks back sliding_window tokens in every layer (4096 in v0.1, null
     * after); Qwen's only with use_sliding_window, in the layers from max_window_layers on */
    hp->window = mistral || ((qwen2 || qwen3) && c.sliding_window) ? c.window : 0;
    for (uint32_t l = 0; l < c.n_layers && l < VT_LLAMA_MAX_LAYERS; l++)
        hp->layer_swa[l] = mistral || l >= c.max_window_layers;
    if (gemma3 && (rc = gemma_hf(&c, hp))) return rc;
    /* LlamaConfig's and Qwen3Config's attention_bias also adds o_proj.bias; mlp_bias the FFN's */
    if (!qwen2 && (c.attention_bias || c.mlp_bias))
        return vt_fail(VT_EUNSUPPORTED, "config.json: %s true is not supported",
                       c.attention_bias ? "attention_bias" : "mlp_bias");
    int llama3 = !strcmp(c.rope_type, "llama3"), linear = !strcmp(c.rope_type, "linear");
    if (c.rope_type[0] && strcmp(c.rope_type, "default") && !llama3 && !linear)
        return vt_fail(VT_EUNSUPPORTED,
                       "config.json: rope_scaling type '%s' is not supported (only llama3 and "
                       "linear)",
                       c.rope_type);
    snprintf(hp->arch, sizeof hp->arch, "%s", c.model_type[0] ? c.model_type : "llama");
    hp->hf = 1;
    /* the language model's names: model.* (...ForCausalLM); a Gemma3ForConditionalGeneration
     * checkpoint's under language_model.model.* (the hub's files) or model.language_model.*
     * (transformers 4.52+), its vision tower beside them (not read) */
    static const char *const pre[3] = {"model.", "language_model.model.", "model.language_model."};
    static const char *const head[3] = {"lm_head.weight", "language_model.lm_head.weight",
                                        "lm_head.weight"};
    int k = 0;
    if (c.multimodal) {
        for (k = 1; k < 3; k++) {
            char nm[64];
            snprintf(nm, sizeof nm, "%sembed_tokens.weight", pre[k]);
            vt_tensor_info ti;
            if (!vt_store_stat(s, nm, &ti)) break;
        }
        vt_clear_error();
        if (k == 3)
            return vt_fail(VT_ENOTFOUND,
                           "config.json: model_type gemma3 (Gemma3ForConditionalGeneration), but "
                           "the store has neither language_model.model.embed_tokens.weight nor "
                           "model.language_model.embed_tokens.weight");
    }
    snprintf(hp->hf_prefix, sizeof hp->hf_prefix, "%s", pre[k]);
    snprintf(hp->hf_embd, sizeof hp->hf_embd, "%sembed_tokens.weight", pre[k]);
    snprintf(hp->hf_onorm, sizeof hp->hf_onorm, "%snorm.weight", pre[k]);
    snprintf(hp->hf_head, sizeof hp->hf_head, "%s", head[k]);
    hp->rope_neox = 1;
    hp->qkv_bias = qwen2;
    hp->qk_norm = qwen3 || gemma3;
    hp->n_layers = c.n_layers;
    hp->dim = c.hidden_size;
    hp->ffn_dim = c.intermediate_size;
    hp->n_heads = c.n_heads;
    hp->n_kv_heads = c.n_kv_heads;
    hp->ctx_len = c.max_pos;
    hp->rope_theta = c.rope_theta;
    hp->norm_eps = c.rms_eps;
    hp->bos_id = c.bos_id;
    hp->eos_id = c.eos_id;
    _Static_assert(VT_HF_MAX_EOS <= VT_LLAMA_MAX_EOS, "EOS lists");
    hp->n_eos = c.n_eos;
    memcpy(hp->eos_ids, c.eos_ids, c.n_eos * sizeof *c.eos_ids);
    if ((rc = check_dims(hp, c.head_dim))) return rc;
    hp->rope_dim = hp->head_dim;
    /* transformers' Gemma3TextConfig default query_pre_attn_scalar is 256 */
    if (gemma3)
        hp->attn_scale = 1.0f / sqrtf(c.query_pre_attn_scalar ? c.query_pre_attn_scalar : 256);
    if ((rc = check_tensors(s, hp))) return rc;
    if (llama3) {
        if (hp->rope_dim / 2 > VT_LLAMA_MAX_ROPE_PAIRS)
            return vt_fail(VT_EUNSUPPORTED, "rope_scaling with head dim %u (at most %u)",
                           hp->rope_dim, 2 * VT_LLAMA_MAX_ROPE_PAIRS);
        if ((rc = vt_hf_rope_llama3(&c, hp->rope_theta, hp->rope_dim, hp->rope_ff))) return rc;
        hp->rope_scaled = 1;
    }
    if (linear) { /* every frequency / factor (Gemma 3: the global layers only) */
        if (hp->rope_dim / 2 > VT_LLAMA_MAX_ROPE_PAIRS)
            return vt_fail(VT_EUNSUPPORTED, "rope_scaling with head dim %u (at most %u)",
                           hp->rope_dim, 2 * VT_LLAMA_MAX_ROPE_PAIRS);
        for (uint32_t i = 0; i < hp->rope_dim / 2; i++) hp->rope_ff[i] = c.rope_factor;
        hp->rope_scaled = 1;
    }
    if (c.vocab_size && c.vocab_size != hp->vocab)
        return vt_fail(VT_EFORMAT, "config.json: vocab_size %u, %s has %u rows", c.vocab_size,
                       embd_name(hp), hp->vocab);
    if (c.tie == 0 && hp->tied_output)
        return vt_fail(VT_ENOTFOUND, "config.json says the head is not tied, but %s is missing",
                       head_name(hp));
    if (c.tie == 1) hp->tied_output = 1; /* a tied model ignores any lm_head.weight */
    return 0;
}

int vt_llama_hparams_load(vt_store *s, vt_llama_hparams *hp) {
    if (!s || !hp) return vt_fail(-EINVAL, "vt_llama_hparams_load: NULL argument");
    memset(hp, 0, sizeof *hp);
    int rc = vt_meta_get_string(s, "gguf.general.architecture", hp->arch, sizeof hp->arch, NULL);
    uint32_t cfg_type;
    if (rc == VT_ENOTFOUND && !vt_meta_get_type(s, "config.json", &cfg_type, NULL)) {
        vt_clear_error();
        return hparams_hf(s, hp);
    }
    if (rc)
        return vt_fail(rc,
                       "model metadata gguf.general.architecture: %s (a store imported from "
                       "a Llama-family GGUF has it, or one from safetensors with a config.json "
                       "beside it)",
                       vt_strerror(rc));
    const char *a = hp->arch;
    /* Other architectures (gemma, phi3, qwen3moe, ...) may share tensor names with llama but
     * differ in norms, activations or scales: refused rather than run as llama with wrong
     * results. */
    if (strcmp(a, "llama") && strcmp(a, "qwen2") && strcmp(a, "qwen3") && strcmp(a, "gemma3"))
        return vt_fail(VT_EUNSUPPORTED,
                       "model metadata gguf.general.architecture: '%s' is not supported (the "
                       "runner implements llama, qwen2, qwen3 and gemma3)",
                       a);
    /* qwen2 is llama plus q/k/v biases, qwen3 llama plus a per-head RMSNorm of q and k before
     * RoPE; neither has its q/k rows permuted by convert_hf_to_gguf: llama.cpp rotates them with
     * NEOX RoPE (rotate_half pairs) */
    if (!strcmp(a, "qwen2")) hp->qkv_bias = hp->rope_neox = 1;
    if (!strcmp(a, "qwen3")) hp->qk_norm = hp->rope_neox = 1;
    if (!strcmp(a, "gemma3")) hp->gemma = hp->qk_norm = hp->rope_neox = 1;
    if ((rc = meta_u32(s, a, "block_count", &hp->n_layers, 1, 0)) ||
        (rc = meta_u32(s, a, "embedding_length", &hp->dim, 1, 0)) ||
        (rc = meta_u32(s, a, "feed_forward_length", &hp->ffn_dim, 1, 0)) ||
        (rc = meta_u32(s, a, "attention.head_count", &hp->n_heads, 1, 0)))
        return rc;
    if ((rc = meta_u32(s, a, "attention.head_count_kv", &hp->n_kv_heads, 0, hp->n_heads)) ||
        (rc = meta_u32(s, a, "context_length", &hp->ctx_len, 0, 0)) ||
        (rc = meta_f32(s, a, "rope.freq_base", &hp->rope_theta, 10000.0f)) ||
        (rc = meta_f32(s, a, "attention.layer_norm_rms_epsilon", &hp->norm_eps, 1e-5f)))
        return rc;
    /* llama.cpp takes the head dimension from these keys (Qwen3: 128 with 1024 / 16 = 64;
     * Mistral-Nemo: 128, not 5120 / 32), each defaulting to embedding_length / head_count */
    static const char *const head_keys[2] = {"attention.key_length", "attention.value_length"};
    uint32_t hk[2];
    for (int k = 0; k < 2; k++)
        if ((rc = meta_u32(s, a, head_keys[k], &hk[k], 0, 0))) return rc;
    if ((rc = check_dims(hp, hk[0] ? hk[0] : hk[1]))) return rc;
    for (int k = 0; k < 2; k++) {
        uint32_t v = hk[k] ? hk[k] : hp->dim % hp->n_heads ? 0 : hp->dim / hp->n_heads;
        if (v != hp->head_dim)
            return vt_fail(VT_EUNSUPPORTED,
                           "model metadata gguf.%s.%s is %u (%s), the head dimension is %u: "
                           "different key and value head dimensions are not supported",
                           a, head_keys[k], v, hk[k] ? "given" : "embedding_length / head_count",
                           hp->head_dim);
    }
    if ((rc = meta_u32(s, a, "rope.dimension_count", &hp->rope_dim, 0, hp->head_dim))) return rc;
    if ((rc = meta_id(s, "tokenizer.ggml.bos_token_id", &hp->bos_id)) ||
        (rc = meta_id(s, "tokenizer.ggml.eos_token_id", &hp->eos_id)))
        return rc;
    hp->n_eos = hp->eos_id >= 0;
    hp->eos_ids[0] = hp->eos_id;
    if (hp->gemma && (rc = gemma_gguf(s, a, hp))) return rc;
    if ((rc = rope_scaling_gguf(s, a, hp))) return rc;
    return check_tensors(s, hp);
}

/* RoPE scaling of a GGUF model, as llama.cpp reads it: ARCH.rope.scaling.type "linear" (also
 * when absent) divides every frequency by ARCH.rope.scaling.factor (older files:
 * ARCH.rope.scale_linear; 0 or absent: 1), "none" scales nothing, any other type (yarn,
 * longrope, ...) is refused; rope_freqs.weight, which convert_hf_to_gguf writes for Llama 3.1+
 * (llama3 scaling), holds per-pair divisors (llama.cpp's freq_factors: theta / factor), applied
 * on top. Gemma 3's windowed layers take none of it (inv_freq_swa). */
static int rope_scaling_gguf(vt_store *s, const char *arch, vt_llama_hparams *hp) {
    char key[192], type[32];
    snprintf(key, sizeof key, "gguf.%s.rope.scaling.type", arch);
    int rc = vt_meta_get_string(s, key, type, sizeof type, NULL);
    float lin = 1; /* linear factor */
    if (rc == VT_ENOTFOUND || (!rc && !strcmp(type, "linear"))) {
        static const char *const fkeys[2] = {"rope.scaling.factor", "rope.scale_linear"};
        for (int k = 0; k < 2; k++) {
            char fkey[192];
            float f;
            snprintf(fkey, sizeof fkey, "gguf.%s.%s", arch, fkeys[k]);
            rc = vt_meta_get_f32(s, fkey, &f);
            if (rc == VT_ENOTFOUND) continue;
            if (rc) return vt_fail(rc, "model metadata %s: %s", fkey, vt_strerror(rc));
            if (!(f >= 0) || isinf(f))
                return vt_fail(VT_EFORMAT, "model metadata %s is %g: not a RoPE scaling factor",
                               fkey, f);
            if (f != 0) lin = f;
            break; /* llama.cpp reads the older key only without the newer */
        }
        vt_clear_error();
    } else if (rc == -ERANGE || (!rc && strcmp(type, "none")))
        return vt_fail(VT_EUNSUPPORTED,
                       "model metadata %s is '%s': only linear RoPE scaling and llama3's "
                       "frequency factors (rope_freqs.weight) are supported",
                       key, rc ? "(long)" : type);
    else if (rc)
        return vt_fail(rc, "model metadata %s: %s", key, vt_strerror(rc));
    uint32_t pairs = hp->rope_dim / 2;
    if (lin != 1) {
        if (pairs > VT_LLAMA_MAX_ROPE_PAIRS)
            return vt_fail(VT_EUNSUPPORTED, "RoPE scaling with head dim %u (at most %u)",
                           hp->rope_dim, 2 * VT_LLAMA_MAX_ROPE_PAIRS);
        for (uint32_t i = 0; i < pairs; i++) hp->rope_ff[i] = lin;
        hp->rope_scaled = 1;
    }
    const char *name = "rope_freqs.weight";
    vt_tensor_info ti;
    if ((rc = vt_store_stat(s, name, &ti)) == VT_ENOTFOUND) {
        vt_clear_error();
        return 0;
    }
    if (rc) return vt_fail(rc, "model tensor %s: %s", name, vt_strerror(rc));
    if (ti.rows * ti.cols != pairs || pairs > VT_LLAMA_MAX_ROPE_PAIRS)
        return vt_fail(VT_EFORMAT, "%s holds %llu values, rope dimension %u needs %u", name,
                       (unsigned long long)(ti.rows * ti.cols), hp->rope_dim, pairs);
    if ((rc = vt_store_read_rows(s, name, 0, ti.rows, VT_DTYPE_F32, hp->rope_ff,
                                 sizeof hp->rope_ff)))
        return vt_fail(rc, "model tensor %s: %s", name, vt_last_error());
    for (uint32_t i = 0; i < pairs; i++) {
        if (!(hp->rope_ff[i] > 0) || isinf(hp->rope_ff[i]))
            return vt_fail(VT_EFORMAT, "%s[%u] is %g: not a positive frequency divisor", name, i,
                           hp->rope_ff[i]);
        hp->rope_ff[i] *= lin;
    }
    hp->rope_scaled = 1;
    return 0;
}

/* v must be positive and finite: else an error naming its key (config.json's hf_key, or
 * gguf.<arch>.<gguf_key>) and value. */
static int check_finite(const vt_llama_hparams *hp, double v, const char *hf_key,
                        const char *gguf_key) {
    if (v > 0 && isfinite(v)) return 0;
    char key[192];
    if (hp->hf)
        snprintf(key, sizeof key, "config.json %s", hf_key);
    else
        snprintf(key, sizeof key, "gguf.%s.%s", hp->arch, gguf_key);
    return vt_fail(VT_EFORMAT, "model metadata %s is %g: not a positive finite number", key, v);
}

/* The shared checks of the head counts and dimensions; sets head_dim from @p head_dim, the
 * model's (0: dim / n_heads, which must then divide). */
static int check_dims(vt_llama_hparams *hp, uint32_t head_dim) {
    if (!hp->n_layers || !hp->dim || !hp->ffn_dim || !hp->n_heads || !hp->n_kv_heads ||
        (!head_dim && hp->dim % hp->n_heads) || hp->n_heads % hp->n_kv_heads ||
        (uint64_t)hp->n_heads * (head_dim ? head_dim : 1) > UINT32_MAX / 2)
        return vt_fail(VT_EFORMAT,
                       "model hyperparameters do not fit together: %u layers, dim %u, ffn %u, "
                       "%u heads, %u kv heads, head dim %u",
                       hp->n_layers, hp->dim, hp->ffn_dim, hp->n_heads, hp->n_kv_heads, head_dim);
    hp->head_dim = head_dim ? head_dim : hp->dim / hp->n_heads;
    /* an infinite theta or epsilon would turn every activation into NaN without an error */
    int rc = check_finite(hp, hp->rope_theta, "rope_theta", "rope.freq_base");
    return rc ? rc
              : check_finite(hp, hp->norm_eps, "rms_norm_eps", "attention.layer_norm_rms_epsilon");
}

/* The tensors the hyperparameters need, with their shapes; sets vocab and tied_output. */
static int check_tensors(vt_store *s, vt_llama_hparams *hp) {
    int rc;
    if (hp->rope_dim % 2)
        return vt_fail(VT_EUNSUPPORTED,
                       "rotary dimension %u (head dim %u) is odd: RoPE rotates pairs of values",
                       hp->rope_dim, hp->head_dim);
    if (hp->rope_dim > hp->head_dim)
        return vt_fail(VT_EFORMAT, "rotary dimension %u is larger than the head dim %u",
                       hp->rope_dim, hp->head_dim);
    if (hp->window && hp->n_layers > VT_LLAMA_MAX_LAYERS)
        return vt_fail(VT_EUNSUPPORTED, "sliding-window attention with %u layers (at most %u)",
                       hp->n_layers, VT_LLAMA_MAX_LAYERS);
    vt_tensor_info ti;
    if ((rc = vt_store_stat(s, embd_name(hp), &ti)))
        return vt_fail(rc, "model tensor %s: %s", embd_name(hp), vt_strerror(rc));
    if (ti.cols != hp->dim || ti.rows == 0 || ti.rows > INT32_MAX)
        return vt_fail(VT_EFORMAT, "%s is %llux%llu, embedding length is %u", embd_name(hp),
                       (unsigned long long)ti.rows, (unsigned long long)ti.cols, hp->dim);
    hp->vocab = (uint32_t)ti.rows;
    rc = vt_store_stat(s, head_name(hp), &ti);
    if (rc == VT_ENOTFOUND) {
        hp->tied_output = 1;
        vt_clear_error();
    } else if (rc) {
        return rc;
    } else if ((rc = check_shape(s, head_name(hp), hp->vocab, hp->dim))) {
        return rc;
    }
    uint32_t qd = hp->n_heads * hp->head_dim, kvd = hp->n_kv_heads * hp->head_dim;
    if ((rc = check_shape(s, onorm_name(hp), 1, hp->dim))) return rc;
    for (uint32_t l = 0; l < hp->n_layers; l++) {
        static const int rows_of[L_COUNT] = {-1, 0,  1,  1,  2,  -1, 3,  3,
                                             2,  -1, -1, -1, -1, -1, -1, -1};
        static const int cols_of[L_COUNT] = {2, 2, 2, 2, 0, 2, 2, 2, 3, 0, 1, 1, 4, 4, 2, 2};
        uint64_t dimv[5] = {qd, kvd, hp->dim, hp->ffn_dim, hp->head_dim};
        for (int t = 0; t < L_COUNT; t++) {
            if (!has_tensor(hp, t)) continue;
            char name[96];
            layer_name(hp, l, t, name, sizeof name);
            uint64_t r = rows_of[t] < 0 ? 1 : dimv[rows_of[t]];
            if ((rc = check_shape(s, name, r, dimv[cols_of[t]]))) return rc;
        }
    }
    /* a bias the graph does not add (llama.cpp's llama loads attn_output.bias when present; a
     * config.json with attention_bias is refused above) would be ignored: refused by name */
    static const int mats[7] = {L_Q, L_K, L_V, L_O, L_GATE, L_UP, L_DOWN};
    for (int i = 0; i < 7; i++) {
        if (hp->qkv_bias && mats[i] <= L_V) continue;
        char name[96];
        layer_name(hp, 0, mats[i], name, sizeof name);
        size_t len = strlen(name) - strlen("weight");
        snprintf(name + len, sizeof name - len, "bias");
        vt_tensor_info ti;
        rc = vt_store_stat(s, name, &ti);
        if (!rc)
            return vt_fail(VT_EUNSUPPORTED,
                           "model tensor %s: the %s runner adds no bias to this product", name,
                           hp->arch);
        if (rc != VT_ENOTFOUND) return vt_fail(rc, "model tensor %s: %s", name, vt_strerror(rc));
        vt_clear_error();
    }
    return 0;
}

/* ---- open / close ---------------------------------------------------------------------------- */

static void free_names(char **names, size_t n) {
    if (names)
        for (size_t i = 0; i < n; i++) vt_free(names[i]);
    vt_free(names);
}

static float *falloc(size_t n) {
    return vt_malloc((n ? n : 1) * sizeof(float));
}

static void rel(vt_llama *m, const char *name, vt_weight *w);

void vt_llama_close(vt_llama *m) {
    if (!m) return;
    if (m->have_held) rel(m, m->head, &m->held);
    if (m->pin)
        for (size_t i = 0; i < m->n_names; i++)
            if (m->pin[i].token) vt_streamer_release(m->st, &m->pin[i]);
    vt_free(m->pin);
    vt_free(m->pin_hash);
    if (m->kv)
        for (uint32_t l = 0; l < m->hp.n_layers; l++) vt_kv_cache_destroy(m->kv[l]);
    vt_free(m->kv);
    vt_streamer_close(m->st);
    free_names(m->names, m->n_names);
    vt_free(m->inv_freq);
    vt_free(m->inv_freq_swa);
    float *bufs[] = {m->x,   m->h, m->q, m->k, m->v,   m->qt,     m->kt,  m->vt,   m->ot,
                     m->att, m->g, m->u, m->y, m->nrm, m->rowbuf, m->tmp, m->lbuf, m->cand_row};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) vt_free(bufs[i]);
    void *dbufs[] = {m->dx, m->dy, m->dq, m->dkv, m->dout, m->drow, m->dws};
    for (size_t i = 0; i < sizeof dbufs / sizeof dbufs[0]; i++) vt_dev_free(dbufs[i]);
    vt_free(m);
}

void vt_llama_reset(vt_llama *m) {
    for (uint32_t l = 0; l < m->hp.n_layers; l++) vt_kv_cache_reset(m->kv[l]);
    m->n_past = 0;
}

/* The schedule of one forward pass (see llama.h), as vt_malloc'ed strings. */
static int schedule_names(const vt_llama_hparams *hp, char ***out, size_t *count) {
    size_t n = 1 + (size_t)hp->n_layers * layer_tensors(hp) + 1 + (hp->tied_output ? 0 : 1), i = 0;
    char **names = vt_calloc(n, sizeof *names);
    if (!names) return vt_fail(-ENOMEM, "out of memory for the schedule");
    names[i++] = vt_strdup(embd_name(hp));
    for (uint32_t l = 0; l < hp->n_layers; l++)
        for (int j = 0; j < L_COUNT; j++) {
            char name[96];
            if (!has_tensor(hp, forward_order[j])) continue;
            layer_name(hp, l, forward_order[j], name, sizeof name);
            names[i++] = vt_strdup(name);
        }
    names[i++] = vt_strdup(onorm_name(hp));
    if (!hp->tied_output) names[i++] = vt_strdup(head_name(hp));
    *out = names;
    *count = n;
    for (i = 0; i < n; i++)
        if (!names[i]) return vt_fail(-ENOMEM, "out of memory for the schedule");
    return 0;
}

/* Raw bytes of one pass and a budget that keeps all of it resident: every tensor rounded to
 * pages, plus a margin for the streamer's layout (each chunk page-aligned, aux blobs) of the
 * default ring (VT_LLAMA_DEFAULT_SLOTS slots of the second largest tensor, what the planner
 * reserves while it pins) and 4 MiB. Not the --prefetch ring: when everything fits, the planner
 * pins it all and reserves no ring at all, so a larger prefetch would only grow the budget (and
 * the RAM tier's mapping) for slots that are never filled. */
static int schedule_bytes(vt_store *s, char **names, size_t n, uint64_t *model,
                          uint64_t *resident) {
    uint64_t sum = 0, paged = 0, max1 = 0, max2 = 0;
    for (size_t i = 0; i < n; i++) {
        vt_tensor_info ti;
        int rc = vt_store_stat(s, names[i], &ti);
        if (rc) return vt_fail(rc, "model tensor %s: %s", names[i], vt_strerror(rc));
        sum += ti.raw_bytes;
        paged += (ti.raw_bytes + 4095) / 4096 * 4096;
        if (ti.raw_bytes > max1) {
            max2 = max1;
            max1 = ti.raw_bytes;
        } else if (ti.raw_bytes > max2) {
            max2 = ti.raw_bytes;
        }
    }
    *model = sum;
    *resident =
        paged + (uint64_t)VT_LLAMA_DEFAULT_SLOTS * ((max2 + 4095) / 4096 * 4096) + (4u << 20);
    return 0;
}

int vt_llama_plan_bytes(vt_store *s, uint64_t *model_bytes, uint64_t *resident_bytes) {
    vt_llama_hparams hp;
    char **names = NULL;
    size_t n = 0;
    uint64_t mb = 0, rb = 0;
    int rc = vt_llama_hparams_load(s, &hp);
    if (!rc) rc = schedule_names(&hp, &names, &n);
    if (!rc) rc = schedule_bytes(s, names, n, &mb, &rb);
    free_names(names, n);
    if (model_bytes) *model_bytes = mb;
    if (resident_bytes) *resident_bytes = rb;
    return rc;
}

/* Bytes of the largest piece of @p ti a tier slot must hold, as the streamer lays it out (each
 * chunk page-aligned, then the aux blob): one store chunk when the tensor has several (with
 * chunkwise, a tensor too large for a slot is streamed chunk by chunk), else the whole tensor. */
static uint64_t piece_bytes(const vt_tensor_info *ti) {
    uint64_t rows = ti->n_chunks > 1 ? ti->rows_per_chunk : ti->rows;
    uint64_t raw = ti->n_chunks > 1
                       ? vt_store_format_bytes(ti->format, ti->src_dtype, rows, ti->cols)
                       : ti->raw_bytes;
    uint64_t f = (raw + 4095) / 4096 * 4096 + (ti->aux_bytes + 4095) / 4096 * 4096;
    return f ? f : 4096;
}

/* The largest piece over the schedule (*piece) and its tensor (*which, index into names). */
static int schedule_piece(vt_store *s, char **names, size_t n, uint64_t *piece, size_t *which) {
    *piece = 0;
    *which = 0;
    for (size_t i = 0; i < n; i++) {
        vt_tensor_info ti;
        int rc = vt_store_stat(s, names[i], &ti);
        if (rc) return vt_fail(rc, "model tensor %s: %s", names[i], vt_strerror(rc));
        uint64_t f = piece_bytes(&ti);
        if (f > *piece) {
            *piece = f;
            *which = i;
        }
    }
    return 0;
}

int vt_llama_min_tier_bytes(vt_store *s, uint64_t *min_bytes, char *tensor, size_t cap) {
    vt_llama_hparams hp;
    char **names = NULL;
    size_t n = 0, which = 0;
    uint64_t piece = 0;
    int rc = vt_llama_hparams_load(s, &hp);
    if (!rc) rc = schedule_names(&hp, &names, &n);
    if (!rc) rc = schedule_piece(s, names, n, &piece, &which);
    if (min_bytes) *min_bytes = rc ? 0 : VT_LLAMA_MIN_SLOTS * piece;
    if (tensor && cap) snprintf(tensor, cap, "%s", !rc && n ? names[which] : "");
    free_names(names, n);
    return rc;
}

uint32_t vt_llama_ring_slots(uint64_t ram_bytes, uint64_t vram_bytes, uint64_t piece,
                             uint32_t prefetch) {
    uint32_t k = (prefetch ? prefetch : 2) + 2; /* the streamer's default */
    uint64_t b = vram_bytes && vram_bytes < ram_bytes ? vram_bytes : ram_bytes;
    uint64_t fit = piece ? (b / 4096 + (b % 4096 != 0)) * 4096 / piece : k; /* tiers: whole pages */
    if (fit < k) k = fit < VT_LLAMA_MIN_SLOTS ? VT_LLAMA_MIN_SLOTS : (uint32_t)fit;
    return k;
}

static int build_schedule(vt_llama *m) {
    int rc = schedule_names(&m->hp, &m->names, &m->n_names);
    uint64_t resident = 0;
    if (!rc) rc = schedule_bytes(m->store, m->names, m->n_names, &m->model_bytes, &resident);
    if (rc) return rc;
    /* reading ahead more than one pass of a cyclic schedule names tensors already in flight:
     * a larger --prefetch only asks for ring slots that can never be used */
    if (m->o.prefetch > m->n_names) m->o.prefetch = (uint32_t)m->n_names;
    vt_tensor_info ti;
    if ((rc = vt_store_stat(m->store, embd_name(&m->hp), &ti))) return rc;
    m->embd_rpc = ti.rows_per_chunk ? ti.rows_per_chunk : ti.rows;
    if (!m->o.ram_bytes) m->o.ram_bytes = resident;
    if (m->gpu && !m->o.vram_bytes) m->o.vram_bytes = resident;
    return 0;
}

static int alloc_scratch(vt_llama *m) {
    const vt_llama_hparams *hp = &m->hp;
    size_t ub = m->ub, qd = (size_t)hp->n_heads * hp->head_dim,
           kvd = (size_t)hp->n_kv_heads * hp->head_dim;
    size_t hw = hp->dim > hp->ffn_dim ? hp->dim : hp->ffn_dim;
    m->x = falloc(ub * hp->dim);
    m->h = falloc(ub * hw);
    m->q = falloc(ub * qd);
    m->k = falloc(ub * kvd);
    m->v = falloc(ub * kvd);
    m->qt = falloc(ub * qd);
    m->kt = falloc(ub * kvd);
    m->vt = falloc(ub * kvd);
    m->ot = falloc(ub * qd);
    m->att = falloc(ub * qd);
    m->g = falloc(ub * hp->ffn_dim);
    m->u = falloc(ub * hp->ffn_dim);
    m->y = falloc(ub * (hp->dim > qd ? hp->dim : qd));
    m->nrm = falloc(hw > qd ? hw : qd); /* a norm vector or a q/k/v bias */
    m->cand_row = falloc(hp->dim);
    m->inv_freq = vt_malloc((hp->rope_dim / 2 + 1) * sizeof(double));
    m->inv_freq_swa = vt_malloc((hp->rope_dim / 2 + 1) * sizeof(double));
    if (!m->x || !m->h || !m->q || !m->k || !m->v || !m->qt || !m->kt || !m->vt || !m->ot ||
        !m->att || !m->g || !m->u || !m->y || !m->nrm || !m->cand_row || !m->inv_freq ||
        !m->inv_freq_swa)
        return vt_fail(-ENOMEM, "out of memory for activations (%u tokens per chunk)", m->ub);
    for (uint32_t i = 0; i < hp->rope_dim / 2; i++) {
        m->inv_freq[i] = pow((double)hp->rope_theta, -2.0 * i / hp->rope_dim) /
                         (hp->rope_scaled ? hp->rope_ff[i] : 1.0);
        m->inv_freq_swa[i] = hp->rope_theta_swa
                                 ? pow((double)hp->rope_theta_swa, -2.0 * i / hp->rope_dim)
                                 : m->inv_freq[i];
    }
    if (m->gpu) {
        size_t big = hw > qd ? hw : qd;
        int rc;
        if ((rc = vt_dev_malloc(&m->dx, ub * big * sizeof(float))) ||
            (rc = vt_dev_malloc(&m->dq, ub * qd * sizeof(float))) ||
            (rc = vt_dev_malloc(&m->dkv, 2 * ub * kvd * sizeof(float))) ||
            (rc = vt_dev_malloc(&m->dout, ub * qd * sizeof(float))))
            return rc;
        m->dx_n = ub * big;
    }
    return 0;
}

static uint32_t name_hash(const char *s) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* Index of @p name in m->names, or -1. */
static int pin_find(const vt_llama *m, const char *name) {
    for (uint32_t i = name_hash(name) & (m->pin_cap - 1);; i = (i + 1) & (m->pin_cap - 1)) {
        int32_t k = m->pin_hash[i];
        if (k < 0 || strcmp(m->names[k], name) == 0) return k;
    }
}

/* Turn on the held-handle cache when the plan pinned every scheduled tensor in the top tier,
 * the one handles point into. With a device tier only VRAM-pinned tensors stay put: a RAM-pinned
 * one is copied into a VRAM ring slot on every acquire, and a handle held until close would keep
 * that slot (the fifth such tensor then found all ring slots held). */
static int pin_setup(vt_llama *m) {
    vt_streamer_stats ss;
    int rc = vt_streamer_get_stats(m->st, &ss);
    if (rc) return rc;
    vt_placement keep = ss.vram.capacity ? VT_PLACE_VRAM_PIN : VT_PLACE_RAM_PIN;
    for (size_t i = 0; i < m->n_names; i++) {
        vt_placement pl;
        rc = vt_streamer_placement(m->st, m->names[i], &pl);
        if (rc) return vt_fail(rc, "%s: %s", m->names[i], vt_streamer_errmsg(m->st));
        if (pl != keep) return 0;
    }
    m->pin_cap = 16;
    while (m->pin_cap < 2 * m->n_names) m->pin_cap *= 2;
    m->pin = vt_calloc(m->n_names ? m->n_names : 1, sizeof *m->pin);
    m->pin_hash = vt_malloc(m->pin_cap * sizeof *m->pin_hash);
    if (!m->pin || !m->pin_hash) return vt_fail(-ENOMEM, "out of memory (handle cache)");
    memset(m->pin_hash, 0xff, m->pin_cap * sizeof *m->pin_hash);
    for (size_t k = 0; k < m->n_names; k++) {
        uint32_t i = name_hash(m->names[k]) & (m->pin_cap - 1);
        while (m->pin_hash[i] >= 0) i = (i + 1) & (m->pin_cap - 1);
        m->pin_hash[i] = (int32_t)k;
    }
    m->all_pinned = 1;
    return 0;
}

/* The first scheduled tensor the plan left too large for a ring slot, or -1. */
static int oversize_tensor(vt_llama *m, int64_t *which) {
    *which = -1;
    for (size_t i = 0; i < m->n_names; i++) {
        vt_placement pl;
        int rc = vt_streamer_placement(m->st, m->names[i], &pl);
        if (rc) return vt_fail(rc, "%s: %s", m->names[i], vt_streamer_errmsg(m->st));
        if (pl == VT_PLACE_OVERSIZE) {
            *which = (int64_t)i;
            return 0;
        }
    }
    return 0;
}

/* Open the streamer and plan the schedule. The run holds one streamed handle at a time (the
 * tied head's, kept from one step to the next, is given back before anything else is acquired),
 * so any number of ring slots >= 2 serves it: when the budgets cannot hold the default count of
 * slots of the largest piece (the plan leaves tensors oversize), it opens again with as many as
 * fit, down to 2. Below that, VT_EBUDGET naming the tensor and the sizes. */
static int open_streamer(vt_llama *m) {
    uint64_t piece;
    size_t big;
    int rc = schedule_piece(m->store, m->names, m->n_names, &piece, &big);
    if (rc) return rc;
    vt_tier_config tc = {0};
    tc.vram_bytes = m->o.vram_bytes;
    tc.ram_bytes = m->o.ram_bytes;
    tc.prefetch = m->o.prefetch;
    tc.chunkwise = 1;
    uint32_t k = vt_llama_ring_slots(~0ull, 0, 0, m->o.prefetch); /* the default */
    for (;;) {
        tc.ring_slots = k;
        int64_t over;
        if ((rc = vt_streamer_open(m->store, &tc, &m->st))) return rc;
        if ((rc = vt_streamer_plan(m->st, (const char *const *)m->names, m->n_names,
                                   VT_SCHEDULE_CYCLIC)) ||
            (rc = oversize_tensor(m, &over)))
            return rc;
        if (over < 0) return 0;
        vt_streamer_close(m->st);
        m->st = NULL;
        uint32_t fit = vt_llama_ring_slots(tc.ram_bytes, tc.vram_bytes, piece, m->o.prefetch);
        if (k > VT_LLAMA_MIN_SLOTS) {
            k = fit < k ? fit : k - 1;
            continue;
        }
        vt_tensor_info ti;
        uint64_t p = vt_store_stat(m->store, m->names[over], &ti) ? 0 : piece_bytes(&ti);
        uint64_t need = (uint64_t)VT_LLAMA_MIN_SLOTS * piece;
        int vram_short = tc.vram_bytes && (tc.vram_bytes + 4095) / 4096 * 4096 < need;
        if (!vram_short && (tc.ram_bytes + 4095) / 4096 * 4096 >= need) /* not expected */
            return vt_fail(VT_EBUDGET,
                           "tensor %s (a piece of %llu bytes) fits no ring slot of the plan with "
                           "%u slots (ram %llu, vram %llu bytes)",
                           m->names[over], (unsigned long long)p, k,
                           (unsigned long long)tc.ram_bytes, (unsigned long long)tc.vram_bytes);
        char also[320] = "";
        if ((size_t)over != big)
            snprintf(also, sizeof also, " (the largest piece is %s's, %llu bytes)", m->names[big],
                     (unsigned long long)piece);
        return vt_fail(VT_EBUDGET,
                       "tensor %s needs a ring slot of %llu bytes and the run streams through at "
                       "least %u slots of the largest piece%s: the %s budget of %llu bytes is "
                       "below the %llu bytes needed (ram %llu, vram %llu bytes)",
                       m->names[over], (unsigned long long)p, VT_LLAMA_MIN_SLOTS, also,
                       vram_short ? "VRAM" : "RAM",
                       (unsigned long long)(vram_short ? tc.vram_bytes : tc.ram_bytes),
                       (unsigned long long)need, (unsigned long long)tc.ram_bytes,
                       (unsigned long long)tc.vram_bytes);
    }
}

int vt_llama_open(vt_store *s, const vt_llama_opts *o, vt_llama **out) {
    if (!s || !out) return vt_fail(-EINVAL, "vt_llama_open: NULL argument");
    *out = NULL;
    vt_llama *m = vt_calloc(1, sizeof *m);
    if (!m) return vt_fail(-ENOMEM, "out of memory");
    m->store = s;
    if (o)
        m->o = *o;
    else
        vt_llama_opts_init(&m->o);
    m->ub = m->o.ubatch ? m->o.ubatch : 64;
    m->cand_id = -1;
    m->dev_is_host = !vt_kernels_cuda_available();
    m->gpu = m->o.use_cuda;
    int rc = 0;
    if (m->gpu && m->dev_is_host) {
        rc = vt_fail(VT_ENODEV, "--device cuda: %s",
                     "no usable CUDA device (or this build has no CUDA kernels)");
        goto fail;
    }
    if (!m->gpu && m->o.vram_bytes && !m->dev_is_host) {
        rc = vt_fail(-EINVAL, "a VRAM budget puts weights on the GPU: use the CUDA device");
        goto fail;
    }
    if (!vt_attn_kv_format_ok(m->o.kv_format)) {
        char b[32];
        rc = vt_fail(VT_EUNSUPPORTED, "KV cache format %s cannot hold K/V",
                     vt_format_name(m->o.kv_format, b, sizeof b));
        goto fail;
    }
    if ((rc = vt_llama_hparams_load(s, &m->hp))) goto fail;
    m->head = m->hp.tied_output ? embd_name(&m->hp) : head_name(&m->hp);
    if ((rc = build_schedule(m))) goto fail;
    m->max_ctx = m->o.max_ctx ? m->o.max_ctx
                              : (m->hp.ctx_len && m->hp.ctx_len < 2048 ? m->hp.ctx_len : 2048);
    uint32_t windowed = 0;
    for (uint32_t l = 0; l < m->hp.n_layers; l++) windowed += !!vt_llama_layer_window(&m->hp, l);
    if (m->gpu && windowed && m->max_ctx > m->hp.window) {
        if (m->o.max_ctx) {
            rc = vt_fail(VT_EUNSUPPORTED,
                         "a context of %u tokens on the device: %u of this model's layers attend "
                         "to the last %u tokens only (sliding window), which the device run does "
                         "not implement (the CPU run does); up to %u tokens the window changes "
                         "nothing",
                         m->max_ctx, windowed, m->hp.window, m->hp.window);
            goto fail;
        }
        m->max_ctx = m->hp.window;
    }
    if ((rc = alloc_scratch(m))) goto fail;

    m->kv = vt_calloc(m->hp.n_layers, sizeof *m->kv);
    if (!m->kv) {
        rc = vt_fail(-ENOMEM, "out of memory");
        goto fail;
    }
    vt_kv_cache_config cc = {.location = m->gpu ? VT_LOC_DEVICE : VT_LOC_HOST,
                             .format = m->o.kv_format,
                             .n_kv_heads = m->hp.n_kv_heads,
                             .head_dim = m->hp.head_dim,
                             .capacity = m->max_ctx};
    for (uint32_t l = 0; l < m->hp.n_layers; l++)
        if ((rc = vt_kv_cache_create(&cc, &m->kv[l]))) goto fail;

    if ((rc = open_streamer(m))) goto fail;
    if ((rc = pin_setup(m))) goto fail;
    *out = m;
    return 0;
fail:
    vt_llama_close(m);
    return rc;
}

/* ---- weights -------------------------------------------------------------------------------- */

/* The handle as the kernels should see it: without CUDA the streamer's device tier is host
 * memory, which the host kernels take. */
static vt_weight view(const vt_llama *m, const vt_weight *w) {
    vt_weight v = *w;
    if (v.location == VT_LOC_DEVICE && m->dev_is_host) v.location = VT_LOC_HOST;
    return v;
}

static int acq(vt_llama *m, const char *name, uint64_t part, uint64_t nparts, vt_weight *w) {
    int k = m->all_pinned && nparts == 1 ? pin_find(m, name) : -1;
    if (k >= 0 && m->pin[k].token) {
        *w = m->pin[k];
        return 0;
    }
    int rc = nparts == 1 ? vt_streamer_acquire(m->st, name, w)
                         : vt_streamer_acquire_part(m->st, name, part, w);
    if (rc)
        return vt_fail(rc, "%s%s: %s", name, nparts == 1 ? "" : " (part)",
                       vt_streamer_errmsg(m->st)[0] ? vt_streamer_errmsg(m->st) : vt_strerror(rc));
    if (k >= 0) m->pin[k] = *w; /* held until close */
    return 0;
}

/* Give back a handle from acq() for @p name, unless the handle cache holds it. */
static void rel(vt_llama *m, const char *name, vt_weight *w) {
    int k = m->all_pinned ? pin_find(m, name) : -1;
    if (k >= 0 && m->pin[k].token == w->token)
        memset(w, 0, sizeof *w);
    else
        vt_streamer_release(m->st, w);
}

static int grow(void **p, size_t *cap, size_t n) {
    if (*cap >= n) return 0;
    void *q = vt_realloc(*p, n * sizeof(float));
    if (!q) return vt_fail(-ENOMEM, "out of memory (%zu floats of scratch)", n);
    *p = q;
    *cap = n;
    return 0;
}

static int dev_grow(void **p, size_t *cap, size_t n) {
    if (*cap >= n) return 0;
    vt_dev_free(*p);
    *p = NULL;
    *cap = 0;
    int rc = vt_dev_malloc(p, n * sizeof(float));
    if (!rc) *cap = n;
    return rc;
}

/* Y[n][w.rows] = X[n][w.cols] W^T on the handle, wherever it lives. */
static int handle_mm(vt_llama *m, const vt_weight *w0, const float *X, float *Y, uint32_t n) {
    vt_weight w = view(m, w0);
    int rc;
    if (w.location == VT_LOC_HOST) {
        if (n <= VT_GEMV_MAX_BATCH) return vt_gemv(&w, X, Y, (int)n, NULL);
        return vt_gemm(&w, X, VT_DTYPE_F32, Y, VT_DTYPE_F32, n, NULL);
    }
    size_t nx = (size_t)n * w.cols, ny = (size_t)n * w.rows;
    if ((rc = dev_grow(&m->dx, &m->dx_n, nx)) || (rc = dev_grow(&m->dy, &m->dy_n, ny))) return rc;
    if ((rc = vt_dev_memcpy_h2d(m->dx, X, nx * sizeof(float), NULL))) return rc;
    rc = n <= VT_GEMV_MAX_BATCH ? vt_gemv(&w, m->dx, m->dy, (int)n, NULL)
                                : vt_gemm(&w, m->dx, VT_DTYPE_F32, m->dy, VT_DTYPE_F32, n, NULL);
    if (!rc) rc = vt_dev_memcpy_d2h(Y, m->dy, ny * sizeof(float), NULL);
    if (!rc) rc = vt_dev_sync(NULL);
    return rc;
}

static int dequant_row(vt_llama *m, const vt_weight *w0, uint64_t r, float *out);

/* Y[n][rows] = X[n][cols] W^T for tensor @p name, streamed whole or part by part. With @p hold
 * (the tied head), a whole handle is kept in m->held instead of being released; a head in parts
 * instead keeps the embedding row of the last position's argmax (lowest id among equal maxima,
 * as greedy decoding picks it) in m->cand_row, so that the next step need not read its part
 * again. */
static int matmul(vt_llama *m, const char *name, const float *X, float *Y, uint32_t n,
                  uint64_t total_rows, int hold) {
    uint64_t np;
    int rc = vt_streamer_parts(m->st, name, &np);
    if (rc) return vt_fail(rc, "%s: %s", name, vt_streamer_errmsg(m->st));
    float best = -INFINITY;
    if (hold) m->cand_id = -1;
    for (uint64_t p = 0; p < np; p++) {
        vt_weight w;
        if ((rc = acq(m, name, p, np, &w))) return rc;
        if (np == 1 && w.rows == total_rows) {
            rc = handle_mm(m, &w, X, Y, n);
        } else if (!(rc = grow((void **)&m->tmp, &m->tmp_n, (size_t)n * w.rows)) &&
                   !(rc = handle_mm(m, &w, X, m->tmp, n))) {
            for (uint32_t i = 0; i < n; i++)
                memcpy(Y + (size_t)i * total_rows + w.row0, m->tmp + (size_t)i * w.rows,
                       w.rows * sizeof(float));
        }
        if (!rc && hold && np > 1) {
            const float *yl = Y + (size_t)(n - 1) * total_rows;
            uint64_t bi = w.row0;
            for (uint64_t r = w.row0; r < w.row0 + w.rows; r++)
                if (yl[r] > yl[bi]) bi = r;
            if (yl[bi] > best) {
                best = yl[bi];
                rc = dequant_row(m, &w, bi, m->cand_row);
                m->cand_id = rc ? -1 : (int32_t)bi;
            }
        }
        if (rc) {
            rel(m, name, &w);
            return vt_fail(rc, "%s: %s", name, vt_last_error());
        }
        if (hold && np == 1) {
            m->held = w;
            m->have_held = 1;
        } else {
            rel(m, name, &w);
        }
    }
    return 0;
}

/* out[len] = the f32 values of a one-row tensor (norm weights). */
static int load_vec(vt_llama *m, const char *name, float *out, uint64_t len) {
    vt_weight w0;
    int rc = acq(m, name, 0, 1, &w0);
    if (rc) return rc;
    vt_weight w = view(m, &w0);
    if (w.rows * w.cols != len) {
        rc = vt_fail(VT_EFORMAT, "%s holds %llu values, expected %llu", name,
                     (unsigned long long)(w.rows * w.cols), (unsigned long long)len);
    } else if (w.location == VT_LOC_HOST) {
        rc = vt_dequant(&w, VT_DTYPE_F32, out, NULL);
    } else if (!(rc = dev_grow(&m->drow, &m->drow_n, len)) &&
               !(rc = vt_dequant(&w, VT_DTYPE_F32, m->drow, NULL)) &&
               !(rc = vt_dev_memcpy_d2h(out, m->drow, len * sizeof(float), NULL))) {
        rc = vt_dev_sync(NULL);
    }
    rel(m, name, &w0);
    if (rc) return vt_fail(rc, "%s: %s", name, vt_last_error());
    /* Gemma's RMSNorm in transformers multiplies by 1 + w (convert_hf_to_gguf adds the 1) */
    if (m->hp.hf && m->hp.gemma)
        for (uint64_t i = 0; i < len; i++) out[i] += 1.0f;
    return 0;
}

/* out[cols] = row @p r (absolute) of the handle, which must hold it. Dequantizes the aligned row
 * group around it (one row for every format but nf4_dq). */
static int dequant_row(vt_llama *m, const vt_weight *w0, uint64_t r, float *out) {
    vt_weight w = view(m, w0);
    uint64_t align = vt_quant_row_align(w.format, w.cols);
    if (!align) align = 1;
    uint64_t rel = (r - w.row0) / align * align;
    uint64_t nr = w.rows - rel < align ? w.rows - rel : align;
    vt_weight sub = w;
    sub.data = (const char *)w.data + vt_quant_bytes(w.format, rel, w.cols);
    sub.rows = nr;
    sub.row0 = w.row0 + rel;
    sub.bytes = vt_quant_bytes(w.format, nr, w.cols);
    size_t n = (size_t)nr * w.cols;
    int rc = grow((void **)&m->rowbuf, &m->rowbuf_n, n);
    if (rc) return rc;
    if (w.location == VT_LOC_HOST) {
        rc = vt_dequant(&sub, VT_DTYPE_F32, m->rowbuf, NULL);
    } else if (!(rc = dev_grow(&m->drow, &m->drow_n, n)) &&
               !(rc = vt_dequant(&sub, VT_DTYPE_F32, m->drow, NULL)) &&
               !(rc = vt_dev_memcpy_d2h(m->rowbuf, m->drow, n * sizeof(float), NULL))) {
        rc = vt_dev_sync(NULL);
    }
    if (rc)
        return vt_fail(rc, "%s row %llu: %s", embd_name(&m->hp), (unsigned long long)r,
                       vt_last_error());
    memcpy(out, m->rowbuf + (size_t)(r - sub.row0) * w.cols, w.cols * sizeof(float));
    return 0;
}

/* X[i] = embedding row of tokens[i]: from the handle held since the last head, or the row kept
 * for the argmax by a head in parts, else from the part(s) holding those rows. */
static int embed(vt_llama *m, const int32_t *tok, uint32_t n, float *X) {
    const uint32_t dim = m->hp.dim;
    int rc = 0, cand = m->cand_id;
    m->cand_id = -1;
    if (!m->have_held && n == 1 && cand >= 0 && tok[0] == cand) {
        memcpy(X, m->cand_row, dim * sizeof(float));
        return 0;
    }
    if (m->have_held) {
        for (uint32_t i = 0; i < n && !rc; i++)
            rc = dequant_row(m, &m->held, (uint64_t)tok[i], X + (size_t)i * dim);
        rel(m, m->head, &m->held);
        m->have_held = 0;
        return rc;
    }
    uint64_t np;
    if ((rc = vt_streamer_parts(m->st, embd_name(&m->hp), &np)))
        return vt_fail(rc, "%s: %s", embd_name(&m->hp), vt_streamer_errmsg(m->st));
    for (uint64_t p = 0; p < np && !rc; p++) {
        int need = 0;
        for (uint32_t i = 0; i < n && !need; i++)
            need = np == 1 || (uint64_t)tok[i] / m->embd_rpc == p;
        if (!need) continue;
        vt_weight w;
        if ((rc = acq(m, embd_name(&m->hp), p, np, &w))) return rc;
        for (uint32_t i = 0; i < n && !rc; i++)
            if ((uint64_t)tok[i] >= w.row0 && (uint64_t)tok[i] < w.row0 + w.rows)
                rc = dequant_row(m, &w, (uint64_t)tok[i], X + (size_t)i * dim);
        rel(m, embd_name(&m->hp), &w);
    }
    return rc;
}

/* ---- host math ------------------------------------------------------------------------------ */

static void rmsnorm(float *out, const float *x, const float *g, uint32_t d, float eps) {
    double ss = 0;
    for (uint32_t i = 0; i < d; i++) ss += (double)x[i] * x[i];
    double inv = 1.0 / sqrt(ss / d + eps);
    for (uint32_t i = 0; i < d; i++) out[i] = (float)(x[i] * inv) * g[i];
}

/* Rotate adjacent pairs (x[2i], x[2i+1]) of the first rope_dim values of each head (llama.cpp's
 * normal RoPE, which GGUF's permuted attn_q/attn_k rows expect), or with rope_neox (a Hugging
 * Face model, a GGUF qwen2) the pairs (x[i], x[i + rope_dim/2]) (rotate_half: q/k rows not
 * permuted). */
static void rope(const vt_llama *m, const double *inv_freq, float *v, uint32_t heads,
                 uint32_t pos) {
    const uint32_t D = m->hp.head_dim, half = m->hp.rope_dim / 2;
    const size_t step = m->hp.rope_neox ? 1 : 2, off = m->hp.rope_neox ? half : 1;
    for (uint32_t i = 0; i < half; i++) {
        double a = (double)pos * inv_freq[i];
        float c = (float)cos(a), s = (float)sin(a);
        for (uint32_t h = 0; h < heads; h++) {
            float *p = v + (size_t)h * D + step * i;
            float x0 = p[0], x1 = p[off];
            p[0] = x0 * c - x1 * s;
            p[off] = x0 * s + x1 * c;
        }
    }
}

/* dst[h][t][D] = src[t][h][D] */
static void to_head_major(float *dst, const float *src, uint32_t n, uint32_t heads, uint32_t D) {
    for (uint32_t t = 0; t < n; t++)
        for (uint32_t h = 0; h < heads; h++)
            memcpy(dst + ((size_t)h * n + t) * D, src + ((size_t)t * heads + h) * D,
                   D * sizeof(float));
}

static void to_token_major(float *dst, const float *src, uint32_t n, uint32_t heads, uint32_t D) {
    for (uint32_t t = 0; t < n; t++)
        for (uint32_t h = 0; h < heads; h++)
            memcpy(dst + ((size_t)t * heads + h) * D, src + ((size_t)h * n + t) * D,
                   D * sizeof(float));
}

/* ---- forward -------------------------------------------------------------------------------- */

/* y[i][len] += bias (one-row tensor @p name) for n rows; m->nrm holds the bias. */
static int add_bias(vt_llama *m, const char *name, float *y, uint32_t n, uint32_t len) {
    int rc = load_vec(m, name, m->nrm, len);
    if (rc) return rc;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < len; j++) y[(size_t)i * len + j] += m->nrm[j];
    return 0;
}

/* Qwen3's q/k norm: RMSNorm of every head (head_dim values, weight @p name) of n tokens of
 * @p heads heads each, in place. */
static int head_norm(vt_llama *m, const char *name, float *y, uint32_t n, uint32_t heads) {
    const uint32_t D = m->hp.head_dim;
    int rc = load_vec(m, name, m->nrm, D);
    if (rc) return rc;
    for (size_t i = 0; i < (size_t)n * heads; i++)
        rmsnorm(y + i * D, y + i * D, m->nrm, D, m->hp.norm_eps);
    return 0;
}

/* Gemma's RMSNorm of a product before its residual add: each of n rows of y ([n][dim]) in
 * place, weight @p name. */
static int post_norm(vt_llama *m, const char *name, float *y, uint32_t n) {
    const uint32_t dim = m->hp.dim;
    int rc = load_vec(m, name, m->nrm, dim);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) rmsnorm(y + i * dim, y + i * dim, m->nrm, dim, m->hp.norm_eps);
    return 0;
}

/* Host attention over fewer query-head x key pairs than this (and fewer than 512 keys: below 8
 * key tiles attn_flash slices no keys across threads, so the result does not depend on the
 * thread count) runs on the calling thread: a decode step at a short context is a few us of
 * work per layer, less than a wake-up of the thread pool. */
#define ATTN_INLINE_WORK 4096
#define ATTN_INLINE_KEYS 512

uint32_t vt_llama_layer_window(const vt_llama_hparams *hp, uint32_t l) {
    return hp->window && l < VT_LLAMA_MAX_LAYERS && hp->layer_swa[l] ? hp->window : 0;
}

/* Sliding-window attention on the host, for a chunk whose keys reach past the window W: query t
 * (position n_past + t) sees the W keys up to itself, so each query row runs alone over its own
 * view of the cache (the rows of keys lo .. pos). q is head-major in m->qt, the output goes to
 * m->ot; m->att and m->y, free until after attention, hold one row. */
static int attention_window(vt_llama *m, const vt_attn_params *p, uint32_t n, uint32_t W) {
    const uint32_t H = m->hp.n_heads, D = m->hp.head_dim;
    const uint64_t rb = vt_attn_row_bytes(p->kv.format, D), first = p->kv.n_tokens - n;
    float *qrow = m->att, *orow = m->y;
    for (uint32_t t = 0; t < n; t++) {
        uint64_t pos = first + t, lo = pos + 1 > W ? pos + 1 - W : 0;
        for (uint32_t h = 0; h < H; h++)
            memcpy(qrow + (size_t)h * D, m->qt + ((size_t)h * n + t) * D, D * sizeof(float));
        vt_attn_params r = *p;
        r.kv.k = (const uint8_t *)p->kv.k + lo * rb;
        r.kv.v = (const uint8_t *)p->kv.v + lo * rb;
        r.kv.n_tokens = pos + 1 - lo;
        r.n_q = 1;
        r.q = qrow;
        r.o = orow;
        if ((uint64_t)H * r.kv.n_tokens < ATTN_INLINE_WORK && r.kv.n_tokens < ATTN_INLINE_KEYS)
            r.nthreads = 1;
        int rc = vt_attn_forward(&r);
        if (rc) return rc;
        for (uint32_t h = 0; h < H; h++)
            memcpy(m->ot + ((size_t)h * n + t) * D, orow + (size_t)h * D, D * sizeof(float));
    }
    return 0;
}

static int attention(vt_llama *m, uint32_t l, uint32_t n) {
    const vt_llama_hparams *hp = &m->hp;
    const uint32_t H = hp->n_heads, Hkv = hp->n_kv_heads, D = hp->head_dim;
    size_t kvn = (size_t)Hkv * n * D, qn = (size_t)H * n * D;
    to_head_major(m->kt, m->k, n, Hkv, D);
    to_head_major(m->vt, m->v, n, Hkv, D);
    to_head_major(m->qt, m->q, n, H, D);
    int rc;
    vt_attn_params p;
    vt_attn_params_init(&p);
    p.n_heads = H;
    p.n_q = n;
    p.causal = 1;
    p.scale = hp->attn_scale; /* 0: 1/sqrt(D) */
    if (!m->gpu) {
        if ((rc = vt_kv_cache_append(m->kv[l], m->kt, m->vt, VT_DTYPE_F32, n, NULL))) goto out;
        p.q = m->qt;
        p.o = m->ot;
        vt_kv_cache_view(m->kv[l], &p.kv);
        uint32_t W = vt_llama_layer_window(hp, l);
        if (W && p.kv.n_tokens > W) {
            rc = attention_window(m, &p, n, W);
            goto out;
        }
        if ((uint64_t)n * H * p.kv.n_tokens < ATTN_INLINE_WORK && p.kv.n_tokens < ATTN_INLINE_KEYS)
            p.nthreads = 1;
        rc = vt_attn_forward(&p);
    } else {
        float *dk = m->dkv, *dv = (float *)m->dkv + kvn;
        if ((rc = vt_dev_memcpy_h2d(dk, m->kt, kvn * sizeof(float), NULL)) ||
            (rc = vt_dev_memcpy_h2d(dv, m->vt, kvn * sizeof(float), NULL)) ||
            (rc = vt_dev_memcpy_h2d(m->dq, m->qt, qn * sizeof(float), NULL)) ||
            (rc = vt_kv_cache_append(m->kv[l], dk, dv, VT_DTYPE_F32, n, NULL)))
            goto out;
        p.q = m->dq;
        p.o = m->dout;
        vt_kv_cache_view(m->kv[l], &p.kv);
        if (!m->dws_sized) { /* once per model: the largest need over chunk sizes, full cache */
            vt_attn_params w = p;
            w.kv.n_tokens = m->max_ctx;
            for (w.n_q = 1; w.n_q <= m->ub; w.n_q++) {
                size_t b = vt_attn_workspace_bytes(&w);
                if (b > m->dws_n) m->dws_n = b;
            }
            if ((rc = vt_dev_malloc(&m->dws, m->dws_n))) goto out;
            m->dws_sized = 1;
        }
        p.workspace = m->dws;
        p.workspace_bytes = m->dws_n;
        if ((rc = vt_attn_forward(&p)) ||
            (rc = vt_dev_memcpy_d2h(m->ot, m->dout, qn * sizeof(float), NULL)))
            goto out;
        rc = vt_dev_sync(NULL);
    }
out:
    if (rc) return vt_fail(rc, "attention of layer %u: %s", l, vt_last_error());
    to_token_major(m->att, m->ot, n, H, D);
    return 0;
}

/* One chunk of n <= ub tokens at positions n_past..: logits of every position into @p logits
 * ([n][vocab]) when @p all, else of the last one ([vocab]); NULL still runs the head, which
 * keeps the schedule's order and holds token_embd for the next embedding. */
static int forward_chunk(vt_llama *m, const int32_t *tok, uint32_t n, float *logits, int all) {
    const vt_llama_hparams *hp = &m->hp;
    const uint32_t dim = hp->dim, ffn = hp->ffn_dim, qd = hp->n_heads * hp->head_dim,
                   kvd = hp->n_kv_heads * hp->head_dim;
    int rc = embed(m, tok, n, m->x);
    if (rc) return rc;
    if (hp->gemma) { /* Gemma scales the embeddings by sqrt(dim) (llama.cpp: sqrtf(n_embd)) */
        const float sc = sqrtf((float)dim);
        for (size_t i = 0; i < (size_t)n * dim; i++) m->x[i] *= sc;
    }
    char nm[L_COUNT][96];
    for (uint32_t l = 0; l < hp->n_layers; l++) {
        for (int t = 0; t < L_COUNT; t++) layer_name(hp, l, t, nm[t], sizeof nm[t]);
        if ((rc = load_vec(m, nm[L_ATTN_NORM], m->nrm, dim))) return rc;
        for (uint32_t i = 0; i < n; i++)
            rmsnorm(m->h + (size_t)i * dim, m->x + (size_t)i * dim, m->nrm, dim, hp->norm_eps);
        if ((rc = matmul(m, nm[L_Q], m->h, m->q, n, qd, 0)) ||
            (hp->qkv_bias && (rc = add_bias(m, nm[L_QB], m->q, n, qd))) ||
            (hp->qk_norm && (rc = head_norm(m, nm[L_QN], m->q, n, hp->n_heads))) ||
            (rc = matmul(m, nm[L_K], m->h, m->k, n, kvd, 0)) ||
            (hp->qkv_bias && (rc = add_bias(m, nm[L_KB], m->k, n, kvd))) ||
            (hp->qk_norm && (rc = head_norm(m, nm[L_KN], m->k, n, hp->n_kv_heads))) ||
            (rc = matmul(m, nm[L_V], m->h, m->v, n, kvd, 0)) ||
            (hp->qkv_bias && (rc = add_bias(m, nm[L_VB], m->v, n, kvd))))
            return rc;
        /* Gemma 3's windowed layers rotate with their own base, unscaled */
        const double *f = hp->gemma && vt_llama_layer_window(hp, l) ? m->inv_freq_swa : m->inv_freq;
        for (uint32_t i = 0; i < n; i++) {
            rope(m, f, m->q + (size_t)i * qd, hp->n_heads, m->n_past + i);
            rope(m, f, m->k + (size_t)i * kvd, hp->n_kv_heads, m->n_past + i);
        }
        if ((rc = attention(m, l, n))) return rc;
        if ((rc = matmul(m, nm[L_O], m->att, m->y, n, dim, 0)) ||
            (hp->gemma && (rc = post_norm(m, nm[L_ATTN_POST], m->y, n))))
            return rc;
        for (size_t i = 0; i < (size_t)n * dim; i++) m->x[i] += m->y[i];

        if ((rc = load_vec(m, nm[L_FFN_NORM], m->nrm, dim))) return rc;
        for (uint32_t i = 0; i < n; i++)
            rmsnorm(m->h + (size_t)i * dim, m->x + (size_t)i * dim, m->nrm, dim, hp->norm_eps);
        if ((rc = matmul(m, nm[L_GATE], m->h, m->g, n, ffn, 0)) ||
            (rc = matmul(m, nm[L_UP], m->h, m->u, n, ffn, 0)))
            return rc;
        if (hp->gemma) /* GELU, tanh form (gelu_pytorch_tanh; llama.cpp's ggml_gelu) */
            for (size_t i = 0; i < (size_t)n * ffn; i++) {
                float g = m->g[i];
                m->h[i] = 0.5f * g *
                          (1.0f + tanhf(0.7978845608028654f * (g + 0.044715f * g * g * g))) *
                          m->u[i];
            }
        else /* SiLU */
            for (size_t i = 0; i < (size_t)n * ffn; i++) {
                float g = m->g[i];
                m->h[i] = g / (1.0f + expf(-g)) * m->u[i];
            }
        if ((rc = matmul(m, nm[L_DOWN], m->h, m->y, n, dim, 0)) ||
            (hp->gemma && (rc = post_norm(m, nm[L_FFN_POST], m->y, n))))
            return rc;
        for (size_t i = 0; i < (size_t)n * dim; i++) m->x[i] += m->y[i];
    }
    m->n_past += n;
    if ((rc = load_vec(m, onorm_name(&m->hp), m->nrm, dim))) return rc;
    uint32_t first = all ? 0 : n - 1, nh = n - first;
    for (uint32_t i = first; i < n; i++)
        rmsnorm(m->h + (size_t)(i - first) * dim, m->x + (size_t)i * dim, m->nrm, dim,
                hp->norm_eps);
    /* the head writes [nh][vocab]; without a destination, into scratch */
    float *dst = logits;
    if (!dst) {
        if ((rc = grow((void **)&m->lbuf, &m->lbuf_n, (size_t)nh * hp->vocab))) return rc;
        dst = m->lbuf;
    }
    if ((rc = matmul(m, m->head, m->h, dst, nh, hp->vocab, hp->tied_output))) return rc;
    if (hp->logit_cap) /* soft-capping: monotonic, so the head's kept argmax row stays right */
        for (size_t i = 0; i < (size_t)nh * hp->vocab; i++)
            dst[i] = hp->logit_cap * tanhf(dst[i] / hp->logit_cap);
    return 0;
}

int vt_llama_eval(vt_llama *m, const int32_t *tokens, uint32_t n, float *logits, int all) {
    if (!m || !tokens || !n) return vt_fail(-EINVAL, "vt_llama_eval: no tokens");
    for (uint32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= m->hp.vocab)
            return vt_fail(-EINVAL, "token %d at position %u is outside the vocabulary [0, %u)",
                           tokens[i], i, m->hp.vocab);
    if ((uint64_t)m->n_past + n > m->max_ctx)
        return vt_fail(VT_EBUDGET, "%u + %u tokens do not fit the KV cache of %u tokens", m->n_past,
                       n, m->max_ctx);
    for (uint32_t i0 = 0; i0 < n; i0 += m->ub) {
        uint32_t c = n - i0 < m->ub ? n - i0 : m->ub;
        float *dst = NULL;
        if (logits && all)
            dst = logits + (size_t)i0 * m->hp.vocab;
        else if (logits && i0 + c == n)
            dst = logits;
        int rc = forward_chunk(m, tokens + i0, c, dst, all);
        if (rc) return rc;
    }
    return 0;
}
