/*
 * llama.h — a compact Llama-family decoder on vtstore's public API (the model runner behind
 * `vtstore run`; not a public API of the library).
 *
 * Weights come only from a streamer (vtstore/tier.h) whose cyclic schedule is the model's
 * forward order (GGUF names shown; a Hugging Face store uses model.embed_tokens.weight,
 * model.layers.N.*, model.norm.weight [, lm_head.weight]):
 *
 *     token_embd, blk.0.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate,
 *     ffn_up, ffn_down}, ..., blk.N-1.*, output_norm [, output]
 *
 * With a tied head (no output.weight) the acquire of token_embd that computes the logits of one
 * step is held and also serves the embedding rows of the next step, so every pass of the
 * schedule acquires each tensor exactly once. When the plan pins every tensor in the top tier
 * (nothing streams, e.g. the default all-resident budget; with a device tier, every tensor
 * pinned in VRAM: a RAM-pinned one still passes through a VRAM ring slot) each is acquired on its
 * first use and held until vt_llama_close, so later passes make no streamer calls (and count no
 * acquires or hits). Otherwise the run holds one streamed handle at a time, so it works with any
 * number of ring slots from 2: when the budgets cannot hold the streamer's default count of the
 * largest piece, vt_llama_open plans with fewer (vt_llama_ring_slots).
 * Tensors larger than a ring slot are streamed part by part (the store's chunks). Matrix products
 * run through vt_gemv / vt_gemm (vtstore/kernels.h) where the acquired handle lives; attention
 * through vt_attn_forward with a KV cache in a chosen format (vtstore/attn.h).
 *
 *     vt_llama_opts o; vt_llama_opts_init(&o);
 *     o.ram_bytes = 32ull << 20; o.kv_format = VT_FMT_Q8_0; o.max_ctx = 512;
 *     vt_llama *m;
 *     int rc = vt_llama_open(store, &o, &m);
 *     rc = vt_llama_eval(m, ids, n, logits, 0);          // logits [vocab] of the last position
 *     ... argmax, vt_llama_eval(m, &next, 1, logits, 0) ...
 *     vt_llama_close(m);
 *
 * Host work (norms, RoPE, SiLU, residuals, softmax inside the CPU attention) is f32. With device
 * handles (a CUDA build with --device cuda) the products and the attention run on the GPU and the
 * small activation vectors are copied between host and device around them.
 */
#ifndef VT_RUN_LLAMA_H
#define VT_RUN_LLAMA_H

#include <stdint.h>

#include "vtstore/store.h"
#include "vtstore/tier.h"

/** Most EOS ids a model may have (config.json's eos_token_id list). */
#define VT_LLAMA_MAX_EOS 16

/** Most layers of a model with sliding-window attention (the per-layer flags). */
#define VT_LLAMA_MAX_LAYERS 1024

/** Most rotary pairs per head with RoPE frequency scaling (head dim 512). */
#define VT_LLAMA_MAX_ROPE_PAIRS 256

/** Hyperparameters, read from store metadata kept from GGUF (ARCH.block_count, ...), or, in a
 *  store without gguf.* keys, from the config.json kept beside safetensors (hidden_size,
 *  num_hidden_layers, ...: hf_config.h); then the tensors have Hugging Face's names
 *  (model.layers.N.self_attn.q_proj.weight, ...) and RoPE is HF's rotate_half. */
typedef struct vt_llama_hparams {
    char
        arch[32]; /* general.architecture (llama, qwen2, qwen3, gemma3) or config.json model_type */
    int hf;       /* 1: a Hugging Face model (config.json, HF names, rotate_half) */
    /* HF names: the language model's prefix, "model." (Gemma3ForConditionalGeneration
     * checkpoints: "language_model.model." or transformers 4.52+'s "model.language_model."),
     * the embedding's and final norm's full names under it, and the head's ("lm_head.weight",
     * "language_model.lm_head.weight") */
    char hf_prefix[32];
    char hf_embd[64], hf_onorm[64], hf_head[64];
    int rope_neox; /* 1: RoPE pairs (x[i], x[i + rope_dim/2]) (HF, GGUF qwen2) */
    int qkv_bias;  /* 1: q/k/v have biases (qwen2: attn_q.bias / q_proj.bias, ...) */
    int qk_norm;   /* 1: per-head RMSNorm of q and k before RoPE (qwen3: attn_q_norm /
                    * self_attn.q_norm, [1][head_dim]) */
    /* Gemma 3 (llama.cpp's gemma3 graph): embeddings scaled by sqrt(dim), q/k norms, RMSNorm of
     * the attention and FFN outputs before their residual adds (post_attention_norm,
     * post_ffw_norm), GELU (tanh) gating, the attention scale attn_scale, windowed layers
     * rotated with rope_theta_swa and no scaling; a config.json's norm weights are 1 + w. */
    int gemma;
    float attn_scale;     /* softmax scale; 0: 1/sqrt(head_dim) */
    float rope_theta_swa; /* RoPE base of windowed layers (gemma3: 10000), 0: rope_theta */
    float logit_cap;      /* final logit soft-capping: cap * tanh(logit / cap); 0: none */
    uint32_t n_layers;    /* ARCH.block_count */
    uint32_t dim;         /* ARCH.embedding_length */
    uint32_t ffn_dim;     /* ARCH.feed_forward_length */
    uint32_t n_heads;     /* ARCH.attention.head_count */
    uint32_t n_kv_heads;  /* ARCH.attention.head_count_kv (default n_heads) */
    uint32_t head_dim;    /* GGUF ARCH.attention.key_length (= value_length), config.json
                           * head_dim, else dim / n_heads; n_heads * head_dim may differ from dim
                           * (Qwen3, Mistral-Nemo) */
    uint32_t rope_dim;    /* ARCH.rope.dimension_count (default head_dim), even */
    /* Sliding-window attention: in a windowed layer (vt_llama_layer_window) a query sees the
     * last `window` tokens up to itself. config.json sliding_window of a mistral model (every
     * layer), of a qwen2/qwen3 one with use_sliding_window (layers from max_window_layers on);
     * gemma3: ARCH.attention.sliding_window / sliding_window, every layer but each
     * sliding_window_pattern-th (6), or config.json layer_types. Host attention applies it; a
     * device run holds contexts to the window. */
    uint32_t window;                        /* 0: none */
    uint8_t layer_swa[VT_LLAMA_MAX_LAYERS]; /* 1: layer l is windowed */
    uint32_t vocab;                         /* rows of token_embd.weight */
    uint32_t ctx_len;                       /* ARCH.context_length (0 if absent) */
    float rope_theta;                       /* ARCH.rope.freq_base (default 10000) */
    float norm_eps;         /* ARCH.attention.layer_norm_rms_epsilon (default 1e-5) */
    int tied_output;        /* 1: no output.weight, token_embd is the head */
    int32_t bos_id, eos_id; /* tokenizer.ggml.{bos,eos}_token_id, -1 if absent */
    uint32_t n_eos;         /* every EOS id: the GGUF one, or config.json's eos_token_id list */
    int32_t eos_ids[VT_LLAMA_MAX_EOS];
    /* Llama 3's RoPE frequency scaling: the frequency of rotary pair i is
     * rope_theta^(-2i / rope_dim) / rope_ff[i]. From the tensor rope_freqs.weight (GGUF, as
     * llama.cpp applies it) or computed from config.json rope_scaling {rope_type: llama3, ...}
     * (vt_hf_rope_llama3). Any other RoPE scaling (GGUF ARCH.rope.scaling.type other than none,
     * or absent with ARCH.rope.scaling.factor / rope.scale_linear not 0 or 1, which llama.cpp
     * reads as linear; another rope_type) is refused with VT_EUNSUPPORTED. */
    int rope_scaled;                        /* 1: rope_ff holds the divisors */
    float rope_ff[VT_LLAMA_MAX_ROPE_PAIRS]; /* [rope_dim / 2] frequency divisors, > 0 */
} vt_llama_hparams;

/** The sliding window of layer @p l: how many tokens up to itself a query sees (0: all). */
uint32_t vt_llama_layer_window(const vt_llama_hparams *hp, uint32_t l);

/** Read and check the hyperparameters of the model in @p s. Errors: VT_ENOTFOUND (a required key
 *  or tensor is missing: the message names it), VT_EFORMAT (inconsistent values or shapes, a
 *  rope_freqs.weight of the wrong length or with a value that is not positive and finite),
 *  VT_EUNSUPPORTED (model_type not llama, mistral, qwen2 or qwen3, a RoPE scaling other
 *  than llama3's, GGUF key_length and value_length that differ, config.json attention_bias or
 *  mlp_bias true, a bias tensor the architecture does not have, such as attn_output.bias: named).
 *  A qwen2 model (GGUF architecture or model_type) must have the q/k/v biases ([1][H*D],
 *  [1][Hkv*D]: VT_ENOTFOUND without them), a qwen3 one the q/k norms ([1][D]); both use
 *  rotate_half RoPE. */
int vt_llama_hparams_load(vt_store *s, vt_llama_hparams *hp);

/** Raw bytes of one pass of the model's schedule (*model_bytes) and the budget that keeps all of
 *  it resident (*resident_bytes: the model plus a margin of VT_LLAMA_DEFAULT_SLOTS ring slots
 *  and rounding, whatever the prefetch); either may be NULL.
 *  Errors: those of vt_llama_hparams_load. */
int vt_llama_plan_bytes(vt_store *s, uint64_t *model_bytes, uint64_t *resident_bytes);

/** The fewest ring slots the run opens its streamer with (the streamer's own minimum). */
#define VT_LLAMA_MIN_SLOTS 2u

/** The streamer's default ring (its default prefetch 2, plus 2): the slots the all-resident
 *  budget of vt_llama_plan_bytes allows for, whatever the prefetch. */
#define VT_LLAMA_DEFAULT_SLOTS 4u

/** The smallest RAM or VRAM budget that can stream this model (*min_bytes): VT_LLAMA_MIN_SLOTS
 *  ring slots of the largest piece of the schedule (one store chunk of a tensor with several,
 *  else the whole tensor, each chunk page-aligned plus its aux blob). @p tensor (@p cap bytes;
 *  may be NULL) gets the name of the tensor with that piece. A budget that holds the whole model
 *  may be smaller (nothing streams). Errors: those of vt_llama_hparams_load, VT_ENOTFOUND. */
int vt_llama_min_tier_bytes(vt_store *s, uint64_t *min_bytes, char *tensor, size_t cap);

/** Ring slots for budgets @p ram_bytes and @p vram_bytes (0: no device tier) when the largest
 *  streamed piece is @p piece bytes: the streamer's default (prefetch + 2, prefetch 0 = 2) when
 *  both budgets (rounded up to whole pages, as the tiers are) hold that many pieces, else as
 *  many as the smaller holds, at least
 *  VT_LLAMA_MIN_SLOTS. vt_llama_open opens with the default and, when the plan leaves a tensor
 *  too large for a slot, again with this count (then one less each time, down to the minimum). */
uint32_t vt_llama_ring_slots(uint64_t ram_bytes, uint64_t vram_bytes, uint64_t piece,
                             uint32_t prefetch);

typedef struct vt_llama_opts {
    uint64_t vram_bytes; /* device tier budget (0: none on CPU; all resident with use_cuda) */
    uint64_t ram_bytes;  /* RAM tier budget; 0 = everything resident (vt_llama_plan_bytes) */
    uint32_t prefetch;   /* streamer read-ahead; 0 = streamer default; more than the schedule's
                          * tensors is read as that many (a cyclic pass holds no more) */
    uint32_t kv_format;  /* vt_format of the KV cache (vt_attn_kv_format_ok) */
    int use_cuda;        /* 1: activations and KV cache on the GPU (needs device handles) */
    uint32_t max_ctx;    /* KV cache capacity in tokens; 0 = min(ctx_len, 2048) */
    uint32_t ubatch;     /* tokens per forward chunk of a long eval; 0 = 64 */
} vt_llama_opts;

/** Defaults: f16 KV cache, CPU, everything resident. */
void vt_llama_opts_init(vt_llama_opts *o);

typedef struct vt_llama vt_llama;

/** Load hyperparameters, open a streamer over @p s (borrowed: it must outlive the model), plan
 *  the schedule and create the KV cache. Errors: those of vt_llama_hparams_load,
 *  vt_streamer_open/plan (VT_EBUDGET...), VT_EBUDGET when even VT_LLAMA_MIN_SLOTS ring slots
 *  leave a tensor too large for a slot (a budget below vt_llama_min_tier_bytes that cannot pin
 *  it: the message names the tensor, its piece, the budgets and the bytes needed),
 *  vt_kv_cache_create (VT_EUNSUPPORTED KV format), VT_ENODEV (use_cuda without CUDA), -ENOMEM. */
int vt_llama_open(vt_store *s, const vt_llama_opts *o, vt_llama **out);

/** Free everything (NULL is a no-op). */
void vt_llama_close(vt_llama *m);

/** The model's hyperparameters (owned by @p m). */
const vt_llama_hparams *vt_llama_hparams_of(const vt_llama *m);

/** The streamer (owned by @p m), for its stats. */
vt_streamer *vt_llama_streamer(vt_llama *m);

/** Raw bytes of one pass of the schedule. */
uint64_t vt_llama_model_bytes(const vt_llama *m);

/** Tokens in the KV cache. */
uint32_t vt_llama_n_past(const vt_llama *m);

/** Run @p n tokens after those already in the cache. @p logits (may be NULL) receives
 *  [n][vocab] f32 when @p all_logits, else [vocab] of the last position.
 *  Errors: -EINVAL (token id out of range, n == 0), VT_EBUDGET (KV cache full), and any error
 *  of the streamer, kernels or attention (the message names the tensor). After an error the
 *  cache holds an unspecified prefix: call vt_llama_reset. */
int vt_llama_eval(vt_llama *m, const int32_t *tokens, uint32_t n, float *logits, int all_logits);

/** Empty the KV cache (the streamer keeps its residency). */
void vt_llama_reset(vt_llama *m);

#endif
