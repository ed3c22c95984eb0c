/*
 * hf_config.h — a Hugging Face Llama model in a store (imported from safetensors with a
 * config.json and tokenizer.json beside it; import keeps both as the string metadata
 * "config.json" / "tokenizer.json"): its hyperparameters and its tokenizer, for the model
 * runner. Not a public API of the library.
 *
 *     vt_hf_config c;
 *     int rc = vt_hf_config_load(store, &c);      // VT_ENOTFOUND: the store has no config.json
 *     vt_tok *tok;
 *     rc = vt_hf_tokenizer_load(store, &tok);     // model.vocab, model.merges, added_tokens
 *
 * The JSON reader (hj_*) is a small DOM parser of its own: tools/ cannot use the store's.
 */
#ifndef VT_RUN_HF_CONFIG_H
#define VT_RUN_HF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"
#include "vtstore/store.h"

/** Most ids config.json's eos_token_id list may hold. */
#define VT_HF_MAX_EOS 16

/** config.json of a Llama or Qwen2 model (LlamaConfig, Qwen2Config). Absent optional keys get the
 * defaults noted. */
typedef struct vt_hf_config {
    char model_type[32]; /* "llama"; a gemma3 config (multimodal) reads "gemma3_text" */
    int multimodal;      /* model_type gemma3 (Gemma3ForConditionalGeneration): the
                          * text_config object's keys, the top level's bos/eos ids */
    /* required, but for gemma3_text, whose absent keys take Gemma3TextConfig's defaults (2304,
     * 9216, 26 layers, 8 / 4 heads of 256, sliding_window 4096, vocab 262208, 131072
     * positions, rope_theta 1e6, tied, bos 2, eos 1) */
    uint32_t hidden_size;
    uint32_t intermediate_size;
    uint32_t n_layers;          /* num_hidden_layers */
    uint32_t n_heads;           /* num_attention_heads */
    uint32_t n_kv_heads;        /* num_key_value_heads (default n_heads) */
    uint32_t head_dim;          /* head_dim (0 if absent) */
    uint32_t vocab_size;        /* vocab_size (0 if absent) */
    uint32_t max_pos;           /* max_position_embeddings (0 if absent) */
    float rope_theta;           /* rope_theta (default 10000) */
    float rms_eps;              /* rms_norm_eps (default 1e-6, LlamaConfig's) */
    int tie;                    /* tie_word_embeddings: 1, 0, or -1 if absent */
    int sliding_window;         /* use_sliding_window (Qwen2Config): 1 if true, else 0 */
    int attention_bias;         /* attention_bias (LlamaConfig, Qwen3Config): 1 if true */
    uint32_t window;            /* sliding_window (Mistral, Qwen2): 0 when null or absent */
    uint32_t max_window_layers; /* max_window_layers (Qwen2): layers from it on use the window
                                 * (default 28, transformers' Qwen2Config / Qwen3Config) */
    /* Gemma 3 (model_type gemma3_text) */
    float query_pre_attn_scalar; /* softmax scale 1/sqrt(it); 0 if absent */
    uint32_t window_pattern;     /* sliding_window_pattern (or _sliding_window_pattern): every
                                  * n-th layer is global; 0 if absent */
    uint32_t n_layer_types;      /* layer_types entries (0: absent); at most 1024 */
    uint8_t layer_sliding[1024]; /* layer_types[l] == "sliding_attention" */
    float rope_local_base;       /* rope_local_base_freq, or transformers 5's
                                  * rope_parameters.sliding_attention.rope_theta (0: absent) */
    float final_softcap;         /* final_logit_softcapping (0 if null or absent) */
    float attn_softcap;          /* attn_logit_softcapping (0 if null or absent) */
    char hidden_act[32];         /* hidden_activation, else hidden_act ("" if absent) */
    int mlp_bias;                /* mlp_bias (LlamaConfig): 1 if true */
    int32_t bos_id, eos_id;      /* bos_token_id / eos_token_id (first of a list), -1 if absent */
    uint32_t n_eos;              /* eos_token_id: every id of a list (Llama 3.1: 3), or the one */
    int32_t eos_ids[VT_HF_MAX_EOS];
    /* rope_scaling: rope_type (or the older "type"); "" when rope_scaling is null or absent. The
     * numbers are read for "llama3" (all four required) and "linear" (factor), 0 otherwise.
     * transformers 5's rope_parameters (its full_attention object for Gemma 3), when present,
     * replaces these and rope_theta. */
    char rope_type[32];
    float rope_factor;          /* factor */
    float rope_low_freq;        /* low_freq_factor */
    float rope_high_freq;       /* high_freq_factor */
    uint32_t rope_orig_max_pos; /* original_max_position_embeddings */
} vt_hf_config;

/** Parse config.json text (NUL-terminated). Errors: VT_EFORMAT (not JSON, a required key
 *  missing or of the wrong type, an eos_token_id list of more than VT_HF_MAX_EOS ids,
 *  rope_scaling not an object or a "llama3" one without factor, low_freq_factor,
 *  high_freq_factor or original_max_position_embeddings; the message names it), -ENOMEM. A
 *  rope_type other than llama3 is parsed (its name kept), not refused: the caller decides. */
int vt_hf_config_parse(const char *json, vt_hf_config *c);

/** Llama 3's RoPE frequency scaling (rope_type "llama3"), as transformers computes it
 *  (_compute_llama3_parameters), expressed as divisors of the default frequencies: for
 *  i < @p rope_dim / 2, with f = theta^(-2i / rope_dim) and wavelength w = 2 pi / f,
 *  out[i] = 1 where w < orig / high_freq_factor, factor where w > orig / low_freq_factor, and
 *  1 / ((1 - s) / factor + s) between, s = (orig / w - low) / (high - low). The scaled frequency
 *  is f / out[i] (llama.cpp's rope_freqs.weight holds the same divisors).
 *  Errors: VT_EFORMAT when the parameters are not usable (factor, orig <= 0; low <= 0;
 *  high <= low). */
int vt_hf_rope_llama3(const vt_hf_config *c, float theta, uint32_t rope_dim, float *out);

/** generation_config.json over a parsed config.json: its eos_token_id (an id or a list) and
 *  bos_token_id, where present and not null, replace config.json's, as transformers' generate()
 *  takes them from it (a generation config may list end-of-turn ids config.json lacks).
 *  Errors: VT_EFORMAT (not JSON, not an object, more than VT_HF_MAX_EOS ids). */
int vt_hf_generation_config_apply(const char *json, vt_hf_config *c);

/** The chat template (Jinja text) of the store's "tokenizer_config.json" (kept by import beside
 *  safetensors): its "chat_template" string, or of a list of {name, template} the "default"
 *  one. *out is the caller's (vt_free). Errors: VT_ENOTFOUND (no file kept, no template),
 *  VT_EFORMAT (not a JSON object), -ENOMEM. */
int vt_hf_chat_template(vt_store *s, char **out);

/** vt_hf_config_parse of the store's "config.json", then vt_hf_generation_config_apply of its
 *  "generation_config.json" when import kept one. Errors: VT_ENOTFOUND (no config.json kept),
 *  those of the two. */
int vt_hf_config_load(vt_store *s, vt_hf_config *c);

/** A tokenizer from tokenizer.json text (NUL-terminated): model.vocab (token -> id), model.merges
 *  ("a b" strings or [a, b] pairs; rank = index), model.ignore_merges (default false) and
 *  added_tokens (special ones become CONTROL, the others USER_DEFINED: both are matched whole in
 *  text). Ids missing from both are filled with unused placeholders. The pre_tokenizer sets the
 *  tokenizer's split: ByteLevel (add_prefix_space false, use_regex true) is VT_TOK_PRE_GPT2,
 *  Sequence[Digits(individual_digits true), that ByteLevel] is VT_TOK_PRE_DIGITS_GPT2,
 *  Sequence[Split(Llama 3's or Qwen2's regex, Isolated), ByteLevel(use_regex false)] is
 *  VT_TOK_PRE_LLAMA3 / VT_TOK_PRE_QWEN2, anything else VT_TOK_PRE_UNSUPPORTED (then encoding
 *  refuses); so is a normalizer other than none or NFC (NFC is accepted and not applied). The
 *  post_processor sets the BOS (vt_tok_set_bos): the SpecialToken that starts a
 *  TemplateProcessing's "single" template (alone or in a Sequence), else none (tokenizer_config
 *  .json's add_bos_token is not kept by import, so it cannot be read). A
 *  description of both goes to @p pre_desc[pre_cap] (may be NULL). Errors: VT_EFORMAT,
 *  VT_EUNSUPPORTED (model.type not BPE), those of vt_tok_create. */
int vt_hf_tokenizer_parse(const char *json, vt_tok **tok, char *pre_desc, size_t pre_cap);

/** vt_hf_tokenizer_parse of the store's "tokenizer.json". Errors: VT_ENOTFOUND (none kept). */
int vt_hf_tokenizer_load(vt_store *s, vt_tok **tok, char *pre_desc, size_t pre_cap);

/* ---- the JSON reader ---- */

enum { HJ_NULL, HJ_BOOL, HJ_NUM, HJ_STR, HJ_ARR, HJ_OBJ };

typedef struct hj_node {
    int type;
    double num;       /* HJ_NUM, HJ_BOOL (0/1) */
    size_t str, len;  /* HJ_STR: offset of the decoded, NUL-terminated bytes in the arena */
    size_t key, klen; /* member of an object: its key, likewise */
    uint32_t first;   /* HJ_ARR / HJ_OBJ: first child (0: none) */
    uint32_t next;    /* next sibling (0: none) */
    uint32_t count;   /* HJ_ARR / HJ_OBJ: number of children */
} hj_node;

typedef struct hj_doc {
    hj_node *v; /* v[0] is unused; the root is v[1] */
    uint32_t n, cap;
    char *arena;
    size_t an;
} hj_doc;

/** Parse NUL-terminated @p text. Errors: VT_EFORMAT (with the byte offset), -ENOMEM. */
int hj_parse(const char *text, hj_doc *d);
void hj_free(hj_doc *d);
/** Member @p key of object node @p obj (0 if absent or @p obj is not an object). */
uint32_t hj_get(const hj_doc *d, uint32_t obj, const char *key);
/** Decoded string of node @p i (a string node's value). */
static inline const char *hj_str(const hj_doc *d, uint32_t i) {
    return d->arena + d->v[i].str;
}

#endif
