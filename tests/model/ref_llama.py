#!/usr/bin/env python3
"""Independent numpy reference forward pass for Llama-family GGUF models.

Reads tensors and hyperparameters with the `gguf` package, dequantizes every
tensor with its own numpy code (F32, F16, Q4_0, Q4_1, Q8_0, Q4_K, Q6_K), and runs
the decoder in float32 (or float64 with --f64): RMSNorm, RoPE, GQA attention with
a causal mask, SwiGLU MLP, output head (token_embd when output.weight is absent).

RoPE pairing: convert_hf_to_gguf.py permutes the rows of attn_q / attn_k so that
GGUF llama models rotate ADJACENT pairs (x[2i], x[2i+1]) (llama.cpp's "normal"
RoPE), not the (x[i], x[i+d/2]) halves of Hugging Face's rotate_half.  --rope half
exists only to show that the other pairing gives nonsense for llama.

Qwen2 (general.architecture "qwen2"): llama plus biases on q, k and v
(blk.N.attn_{q,k,v}.bias, added after the products), and llama.cpp rotates it with
NEOX RoPE, the halves (x[i], x[i+d/2]): convert_hf_to_gguf does not permute Qwen2's
q/k rows.  That is the default pairing for qwen2 (--rope overrides it); --no-bias
drops the biases (to show that they matter).

Qwen3 ("qwen3"): llama plus an RMSNorm of every query and key head (weights
blk.N.attn_{q,k}_norm.weight, [head_dim], the model's epsilon) after the products and
before RoPE, NEOX RoPE as qwen2, no biases; its head dimension is
attention.key_length (128 with 1024 / 16 = 64 in Qwen3-0.6B), as for any model that
has the key.  --no-qk-norm drops the norms (to show that they matter).

Gemma 3 ("gemma3", llama.cpp's gemma3 graph): embeddings times sqrt(d_model), q/k norms
as qwen3, NEOX RoPE, q scaled by 1/sqrt(head_dim) (62 layers, the 27B: 1/sqrt(d_model /
n_head)), an RMSNorm of the attention output (post_attention_norm) and of the FFN
output (post_ffw_norm) before each residual add, GELU (tanh form) instead of SiLU, the
head tied to token_embd, an optional final_logit_softcapping; with
attention.sliding_window W, every layer but each sliding_window_pattern-th (default 6:
layer l slides when l % 6 < 5) is windowed (a query sees the last W keys up to itself)
and rotated with rope.freq_base_swa (default 10000), unscaled.  --window W instead
windows every layer of any model (transformers' Mistral).  --ablate window,post_norm,gelu,
embed_scale,swa_rope leaves Gemma 3 features out (to show that each matters; gelu: SiLU
instead, swa_rope: rope.freq_base in every layer), rope_scaling any RoPE scaling.
RoPE scaling "linear" (GGUF rope.scaling.type linear or absent with rope.scaling.factor, as
llama.cpp reads it; --rope-scaling '{"rope_type": "linear", "factor": F}') divides the
frequencies by the factor (Gemma 3: the global layers only).

RoPE frequency scaling (Llama 3.1+): a rope_freqs.weight tensor in the GGUF divides
the frequencies (llama.cpp's freq_factors); --rope-scaling JSON instead takes a
Hugging Face config.json rope_scaling object ({"rope_type": "llama3", "factor",
"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) and
computes the scaled frequencies as transformers' _compute_llama3_parameters does.

Usage:
  ref_llama.py GGUF --tokens 1,2,3 -o logits.npy [--top] [--rope-scaling JSON]
  ref_llama.py GGUF --prompt TEXT [--chat] --generate 32     (needs `tokenizers`)
  ref_llama.py GGUF --selftest      dequantizers against gguf.quants on random blocks

-o writes the logits of every position as float32 [n_tokens, vocab] .npy.
"""

import argparse
import os
import sys
import time

import numpy as np

QK = 32      # block size of Q4_0 / Q4_1 / Q8_0
QK_K = 256   # super-block size of the k-quants


# ---------------------------------------------------------------- dequantizers
# Each takes the raw bytes of whole blocks (uint8, any shape) and returns the
# float32 values in storage order.

def _f16(b, off):
    """Little-endian f16 at byte offset `off` of every block row -> float32 column."""
    return b[:, off:off + 2].copy().view("<f2").astype(np.float32)


def deq_q4_0(raw):
    b = raw.reshape(-1, 18)
    d = _f16(b, 0)
    qs = b[:, 2:18]
    lo = (qs & 0x0F).astype(np.int8) - 8          # elements 0..15
    hi = (qs >> 4).astype(np.int8) - 8            # elements 16..31
    return (np.concatenate([lo, hi], axis=1) * d).reshape(-1)


def deq_q4_1(raw):
    b = raw.reshape(-1, 20)
    d = _f16(b, 0)
    m = _f16(b, 2)
    qs = b[:, 4:20]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32)
    return (q * d + m).reshape(-1)


def deq_q8_0(raw):
    b = raw.reshape(-1, 34)
    d = _f16(b, 0)
    q = b[:, 2:34].copy().view(np.int8).astype(np.float32)
    return (q * d).reshape(-1)


def deq_q4_k(raw):
    # block: f16 d, f16 dmin, u8 scales[12] (8 x 6-bit scale + 6-bit min), u8 qs[128]
    b = raw.reshape(-1, 144)
    d = _f16(b, 0)
    dmin = _f16(b, 2)
    s = b[:, 4:16].astype(np.uint16)
    sc = np.empty((b.shape[0], 8), np.float32)
    mn = np.empty((b.shape[0], 8), np.float32)
    for j in range(8):
        if j < 4:
            sc[:, j] = s[:, j] & 63
            mn[:, j] = s[:, j + 4] & 63
        else:
            sc[:, j] = (s[:, j + 4] & 0xF) | ((s[:, j - 4] >> 6) << 4)
            mn[:, j] = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
    qs = b[:, 16:144].reshape(-1, 4, 32)                  # 4 chunks of 32 bytes
    q = np.stack([qs & 0x0F, qs >> 4], axis=2)            # [n, 4, 2, 32]: sub-block 2c, 2c+1
    q = q.reshape(-1, 8, 32).astype(np.float32)
    y = q * (d * sc)[:, :, None] - (dmin * mn)[:, :, None]
    return y.reshape(-1)


def deq_q6_k(raw):
    # block: u8 ql[128], u8 qh[64], i8 scales[16], f16 d
    b = raw.reshape(-1, 210)
    ql = b[:, 0:128].reshape(-1, 2, 64)
    qh = b[:, 128:192].reshape(-1, 2, 32)
    sc = b[:, 192:208].copy().view(np.int8).astype(np.float32).reshape(-1, 2, 8)
    d = _f16(b, 208)
    q1 = (ql[:, :, :32] & 0xF) | (((qh >> 0) & 3) << 4)
    q2 = (ql[:, :, 32:] & 0xF) | (((qh >> 2) & 3) << 4)
    q3 = (ql[:, :, :32] >> 4) | (((qh >> 4) & 3) << 4)
    q4 = (ql[:, :, 32:] >> 4) | (((qh >> 6) & 3) << 4)
    q = np.stack([q1, q2, q3, q4], axis=2).astype(np.float32) - 32   # [n, 2, 4, 32]
    # element l of group g (0..3) in half h uses scale sc[h, 2g + l//16]
    s = sc.reshape(-1, 2, 4, 2)                                      # [n, 2, g, l//16]
    s = np.repeat(s, 16, axis=3)                                     # [n, 2, 4, 32]
    return (q * s * d[:, :, None, None]).reshape(-1)


# ggml type id -> (name, block elements, block bytes, dequantizer)
GGML_TYPES = {
    0: ("F32", 1, 4, lambda r: r.copy().view("<f4").astype(np.float32).reshape(-1)),
    1: ("F16", 1, 2, lambda r: r.copy().view("<f2").astype(np.float32).reshape(-1)),
    2: ("Q4_0", QK, 18, deq_q4_0),
    3: ("Q4_1", QK, 20, deq_q4_1),
    8: ("Q8_0", QK, 34, deq_q8_0),
    12: ("Q4_K", QK_K, 144, deq_q4_k),
    14: ("Q6_K", QK_K, 210, deq_q6_k),
}


# ---------------------------------------------------------------- GGUF access

class GGUFModel:
    """Tensors (dequantized on request) and metadata of one GGUF file."""

    def __init__(self, path):
        import gguf
        self.reader = gguf.GGUFReader(path)
        self.tensors = {t.name: t for t in self.reader.tensors}

    def meta(self, key, default=None):
        f = self.reader.fields.get(key)
        if f is None:
            return default
        import gguf
        vt = f.types[0]
        if vt == gguf.GGUFValueType.STRING:
            return bytes(f.parts[f.data[0]]).decode("utf-8")
        if vt == gguf.GGUFValueType.ARRAY:
            if f.types[1] == gguf.GGUFValueType.STRING:
                return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
            return [f.parts[i][0].item() for i in f.data]
        return f.parts[f.data[0]][0].item()

    def type_name(self, name):
        return GGML_TYPES.get(int(self.tensors[name].tensor_type), ("?",))[0]

    def get(self, name, dtype=np.float32):
        """Dequantized tensor as a numpy array of shape reversed(ne): [ne1, ne0] for matrices."""
        t = self.tensors[name]
        ty = int(t.tensor_type)
        if ty not in GGML_TYPES:
            raise SystemExit("ref_llama: tensor %s has unsupported ggml type %d" % (name, ty))
        tname, blk, blk_bytes, fn = GGML_TYPES[ty]
        ne = [int(x) for x in t.shape]
        n = int(np.prod(ne))
        raw = np.ascontiguousarray(t.data).view(np.uint8).reshape(-1)
        if n % blk or raw.size != n // blk * blk_bytes:
            raise SystemExit("ref_llama: tensor %s (%s): %d bytes for %d elements"
                             % (name, tname, raw.size, n))
        return fn(raw).reshape(ne[::-1]).astype(dtype, copy=False)


# ---------------------------------------------------------------- model

def llama3_inv_freq(inv_freq, rs):
    """transformers' _compute_llama3_parameters: the default frequencies scaled by a
    rope_scaling {"rope_type": "llama3", ...} dict (float64 here)."""
    factor = rs["factor"]
    low_freq_factor = rs["low_freq_factor"]
    high_freq_factor = rs["high_freq_factor"]
    old_context_len = rs["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * np.pi / inv_freq
    inv_freq_llama = np.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor -
                                                                     low_freq_factor)
    smoothed = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium = ~(wavelen < high_freq_wavelen) & ~(wavelen > low_freq_wavelen)
    return np.where(is_medium, smoothed, inv_freq_llama)


class Llama:
    def __init__(self, path, dtype=np.float32, rope=None, rope_scaling=None, bias=True,
                 qk_norm=True, window=0, ablate=()):
        g = GGUFModel(path)
        self.g = g
        arch = g.meta("general.architecture")
        if arch not in ("llama", "qwen2", "qwen3", "gemma3"):
            print("ref_llama: warning: architecture %r, treating it as llama" % arch,
                  file=sys.stderr)
        if rope is None:
            rope = "half" if arch in ("qwen2", "qwen3", "gemma3") else "adjacent"
        p = arch + "."
        self.n_layer = g.meta(p + "block_count")
        self.d_model = g.meta(p + "embedding_length")
        self.n_head = g.meta(p + "attention.head_count")
        self.n_head_kv = g.meta(p + "attention.head_count_kv", self.n_head)
        self.d_ff = g.meta(p + "feed_forward_length")
        self.eps = g.meta(p + "attention.layer_norm_rms_epsilon", 1e-5)
        self.theta = g.meta(p + "rope.freq_base", 10000.0)
        self.n_ctx = g.meta(p + "context_length")
        self.head_dim = g.meta(p + "attention.key_length", self.d_model // self.n_head)
        if g.meta(p + "attention.value_length", self.head_dim) != self.head_dim:
            raise SystemExit("ref_llama: key_length and value_length differ")
        self.n_rot = g.meta(p + "rope.dimension_count", self.head_dim)
        # llama.cpp: type "linear" (also when absent) divides the frequencies by the factor
        stype = g.meta(p + "rope.scaling.type", None)
        lin = g.meta(p + "rope.scaling.factor", None)
        if lin is None:
            lin = g.meta(p + "rope.scale_linear", 0.0)
        if stype not in (None, "none", "linear"):
            raise SystemExit("ref_llama: rope.scaling.type %r is not implemented" % stype)
        lin = lin if stype != "none" and lin else 1.0
        self.rope = rope
        self.dtype = dtype
        self.gemma = arch == "gemma3"
        self.window = window  # sliding window: of every layer (--window), or gemma3's
        self.swa = [bool(window)] * self.n_layer
        self.attn_scale = 1.0 / np.sqrt(self.head_dim)
        self.logit_cap = 0.0
        theta_swa = None
        self.ablate = set(ablate)
        if self.gemma:
            gw = g.meta(p + "attention.sliding_window", 0) or 0
            if gw and not window and "window" not in self.ablate:
                self.window = gw
                pat = g.meta(p + "attention.sliding_window_pattern", 6)
                self.swa = [pat == 0 or li % pat < pat - 1 for li in range(self.n_layer)]
                theta_swa = g.meta(p + "rope.freq_base_swa", 10000.0)
                if "swa_rope" in self.ablate:
                    theta_swa = None
            if self.n_layer == 62:
                self.attn_scale = 1.0 / np.sqrt(self.d_model // self.n_head)
            self.logit_cap = g.meta(p + "final_logit_softcapping", 0.0) or 0.0

        self.tok_embd = g.get("token_embd.weight", dtype)                 # [vocab, d_model]
        self.vocab = self.tok_embd.shape[0]
        self.output_norm = g.get("output_norm.weight", dtype)             # [d_model]
        self.output = (g.get("output.weight", dtype) if "output.weight" in g.tensors
                       else self.tok_embd)                                # [vocab, d_model]
        self.layers = []
        for i in range(self.n_layer):
            b = "blk.%d." % i
            self.layers.append({
                "attn_norm": g.get(b + "attn_norm.weight", dtype),        # [d_model]
                "wq": g.get(b + "attn_q.weight", dtype),                  # [n_head*hd, d_model]
                "wk": g.get(b + "attn_k.weight", dtype),                  # [n_head_kv*hd, d_model]
                "wv": g.get(b + "attn_v.weight", dtype),                  # [n_head_kv*hd, d_model]
                "wo": g.get(b + "attn_output.weight", dtype),             # [d_model, n_head*hd]
                "ffn_norm": g.get(b + "ffn_norm.weight", dtype),          # [d_model]
                "w_gate": g.get(b + "ffn_gate.weight", dtype),            # [d_ff, d_model]
                "w_up": g.get(b + "ffn_up.weight", dtype),                # [d_ff, d_model]
                "w_down": g.get(b + "ffn_down.weight", dtype),            # [d_model, d_ff]
            })
            for r in ("q", "k", "v"):  # qwen2: [n_head*hd] / [n_head_kv*hd]
                n = b + "attn_%s.bias" % r
                self.layers[-1]["b" + r] = (g.get(n, dtype) if bias and n in g.tensors
                                            else np.zeros(1, dtype))
            for r in ("post_attention_norm", "post_ffw_norm"):  # gemma3: [d_model]
                if b + r + ".weight" in g.tensors:
                    self.layers[-1][r] = g.get(b + r + ".weight", dtype)
            for r in ("q", "k"):  # qwen3: [hd]
                n = b + "attn_%s_norm.weight" % r
                if qk_norm and n in g.tensors:
                    self.layers[-1][r + "_norm"] = g.get(n, dtype)
        half = self.n_rot // 2
        self.inv_freq = self.theta ** (-np.arange(half, dtype=np.float64) * 2.0 / self.n_rot)
        if "rope_scaling" in self.ablate:
            pass
        elif rope_scaling is not None:
            rt = rope_scaling.get("rope_type", rope_scaling.get("type"))
            if rt == "linear":  # transformers: inv_freq / factor
                self.inv_freq = self.inv_freq / rope_scaling["factor"]
            elif rt == "llama3":
                self.inv_freq = llama3_inv_freq(self.inv_freq, rope_scaling)
            else:
                raise SystemExit("ref_llama: rope_scaling %r is not implemented" % rt)
        else:
            self.inv_freq = self.inv_freq / lin
            if "rope_freqs.weight" in g.tensors:
                ff = g.get("rope_freqs.weight", np.float64).reshape(-1)      # [n_rot/2]
                self.inv_freq = self.inv_freq / ff
        self.inv_freq_swa = self.inv_freq
        if theta_swa is not None:
            self.inv_freq_swa = theta_swa ** (-np.arange(half, dtype=np.float64) * 2.0 /
                                              self.n_rot)
        self.reset()

    def reset(self):
        """Empties the KV cache."""
        self.k_cache = [None] * self.n_layer     # [n_head_kv, n_past, hd] each
        self.v_cache = [None] * self.n_layer
        self.n_past = 0

    def rmsnorm(self, x, w):
        ms = np.mean(np.square(x, dtype=np.float64), axis=-1, keepdims=True)
        return (x / np.sqrt(ms + self.eps)).astype(self.dtype) * w

    def apply_rope(self, x, pos, inv_freq=None):
        """x: [T, heads, hd]; rotates the first n_rot dims by angle pos * inv_freq."""
        inv_freq = self.inv_freq if inv_freq is None else inv_freq
        ang = pos[:, None].astype(np.float64) * inv_freq[None, :]          # [T, n_rot/2]
        cos = np.cos(ang).astype(self.dtype)[:, None, :]
        sin = np.sin(ang).astype(self.dtype)[:, None, :]
        r = x[..., :self.n_rot]
        if self.rope == "adjacent":
            x0, x1 = r[..., 0::2], r[..., 1::2]
            out = np.empty_like(r)
            out[..., 0::2] = x0 * cos - x1 * sin
            out[..., 1::2] = x0 * sin + x1 * cos
        else:
            h = self.n_rot // 2
            x0, x1 = r[..., :h], r[..., h:]
            out = np.concatenate([x0 * cos - x1 * sin, x0 * sin + x1 * cos], axis=-1)
        return np.concatenate([out, x[..., self.n_rot:]], axis=-1)

    def forward(self, tokens):
        """Runs `tokens` after the cached ones; returns logits [T, vocab] (float32)."""
        tokens = np.asarray(tokens, dtype=np.int64)
        T = tokens.shape[0]
        if T == 0:
            return np.zeros((0, self.vocab), np.float32)
        if tokens.min() < 0 or tokens.max() >= self.vocab:
            raise SystemExit("ref_llama: token id out of range [0, %d)" % self.vocab)
        H, Hkv, hd = self.n_head, self.n_head_kv, self.head_dim
        group = H // Hkv
        pos = np.arange(self.n_past, self.n_past + T)
        n_kv = self.n_past + T
        # causal mask: query t (absolute n_past + t) sees keys 0 .. n_past + t
        causal = np.arange(n_kv)[None, :] > pos[:, None]                   # [T, n_kv]
        # windowed layers: also keys W or more positions back (transformers: q - k < W)
        windowed = causal | (np.arange(n_kv)[None, :] <= pos[:, None] - self.window)
        scale = self.attn_scale

        x = self.tok_embd[tokens]                                          # [T, d_model]
        if self.gemma and "embed_scale" not in self.ablate:
            x = x * self.dtype(np.sqrt(np.float32(self.d_model)))
        for li, L in enumerate(self.layers):
            mask = windowed if self.swa[li] else causal
            freqs = self.inv_freq_swa if self.swa[li] else self.inv_freq
            h = self.rmsnorm(x, L["attn_norm"])
            q = (h @ L["wq"].T + L["bq"]).reshape(T, H, hd)
            k = (h @ L["wk"].T + L["bk"]).reshape(T, Hkv, hd)
            v = (h @ L["wv"].T + L["bv"]).reshape(T, Hkv, hd)
            if "q_norm" in L:  # per head, over hd
                q = self.rmsnorm(q, L["q_norm"])
            if "k_norm" in L:
                k = self.rmsnorm(k, L["k_norm"])
            q = self.apply_rope(q, pos, freqs)
            k = self.apply_rope(k, pos, freqs)
            k = k.transpose(1, 0, 2)                                       # [Hkv, T, hd]
            v = v.transpose(1, 0, 2)
            if self.k_cache[li] is not None:
                k = np.concatenate([self.k_cache[li], k], axis=1)
                v = np.concatenate([self.v_cache[li], v], axis=1)
            self.k_cache[li], self.v_cache[li] = k, v
            qg = q.transpose(1, 0, 2).reshape(Hkv, group, T, hd)           # head = kv*group + j
            s = np.einsum("kgtd,ksd->kgts", qg, k) * scale                 # [Hkv, group, T, n_kv]
            s = np.where(mask, -np.inf, s)
            s = s - s.max(axis=-1, keepdims=True)
            p = np.exp(s)
            p /= p.sum(axis=-1, keepdims=True)
            o = np.einsum("kgts,ksd->kgtd", p, v)                          # [Hkv, group, T, hd]
            o = o.reshape(H, T, hd).transpose(1, 0, 2).reshape(T, H * hd)
            o = o @ L["wo"].T
            if self.gemma and "post_norm" not in self.ablate:
                o = self.rmsnorm(o, L["post_attention_norm"])
            x = x + o
            h = self.rmsnorm(x, L["ffn_norm"])
            gte = h @ L["w_gate"].T
            up = h @ L["w_up"].T
            if self.gemma and "gelu" not in self.ablate:  # GELU, tanh form
                act = 0.5 * gte * (1 + np.tanh(np.sqrt(2 / np.pi) * (gte + 0.044715 * gte ** 3)))
                act = (act * up).astype(self.dtype)
            else:
                act = gte / (1.0 + np.exp(-gte)) * up                      # SiLU(gate) * up
            y = act @ L["w_down"].T
            if self.gemma and "post_norm" not in self.ablate:
                y = self.rmsnorm(y, L["post_ffw_norm"])
            x = x + y
        self.n_past += T
        x = self.rmsnorm(x, self.output_norm)
        logits = x @ self.output.T
        if self.logit_cap:
            logits = self.logit_cap * np.tanh(logits / self.logit_cap)
        return logits.astype(np.float32)

    def generate(self, tokens, n_new, stop=()):
        """Greedy decoding from `tokens` (cache reset first); returns the new ids."""
        self.reset()
        logits = self.forward(tokens)
        out = []
        for _ in range(n_new):
            nxt = int(np.argmax(logits[-1]))
            out.append(nxt)
            if nxt in stop:
                break
            logits = self.forward([nxt])
        return out


# ---------------------------------------------------------------- self-test

def selftest():
    """Own dequantizers vs gguf.quants.dequantize on random blocks."""
    from gguf import GGMLQuantizationType, quants
    rng = np.random.default_rng(7)
    ok = True
    for ty, (name, blk, blk_bytes, fn) in GGML_TYPES.items():
        if blk == 1:
            continue
        nb = 64
        raw = rng.integers(0, 256, size=(nb, blk_bytes), dtype=np.uint8)
        # keep the f16 scale fields finite and modest
        f16_offs = {"Q4_0": [0], "Q4_1": [0, 2], "Q8_0": [0], "Q4_K": [0, 2], "Q6_K": [208]}[name]
        for off in f16_offs:
            raw[:, off:off + 2] = rng.uniform(-2, 2, nb).astype("<f2").view(np.uint8).reshape(nb, 2)
        mine = fn(raw)
        theirs = quants.dequantize(raw, GGMLQuantizationType(ty)).reshape(-1).astype(np.float32)
        err = float(np.max(np.abs(mine - theirs)))
        print("selftest %-5s max abs diff %.3g" % (name, err))
        ok &= err <= 1e-6 * max(1.0, float(np.max(np.abs(theirs))))
    return ok


# ---------------------------------------------------------------- CLI

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("gguf", nargs="?")
    ap.add_argument("--tokens", help="comma-separated token ids")
    ap.add_argument("--prompt", help="text prompt (encoded with tok_ref.py; needs tokenizers)")
    ap.add_argument("--chat", action="store_true",
                    help="wrap --prompt as <|im_start|>user ... <|im_start|>assistant")
    ap.add_argument("-o", "--output", help="write logits [n_tokens, vocab] float32 .npy")
    ap.add_argument("--top", action="store_true", help="print the top-5 next tokens per position")
    ap.add_argument("--generate", type=int, default=0, metavar="N",
                    help="greedily generate N tokens and print them")
    ap.add_argument("--f64", action="store_true", help="compute in float64")
    ap.add_argument("--rope", choices=("adjacent", "half"),
                    help="RoPE pairing (default: half for qwen2 and qwen3, adjacent otherwise)")
    ap.add_argument("--no-bias", action="store_true", help="ignore q/k/v biases (qwen2)")
    ap.add_argument("--no-qk-norm", action="store_true", help="ignore q/k norms (qwen3)")
    ap.add_argument("--ablate", default="", metavar="LIST",
                    help="features to leave out: window,post_norm,gelu,embed_scale,swa_rope "
                    "(gemma3), rope_scaling")
    ap.add_argument("--window", type=int, default=0, metavar="W",
                    help="sliding-window attention in every layer: a query sees the last W keys")
    ap.add_argument("--rope-scaling", metavar="JSON",
                    help="config.json rope_scaling object (llama3) to apply")
    ap.add_argument("--selftest", action="store_true")
    args = ap.parse_args()

    if args.selftest:
        sys.exit(0 if selftest() else 1)
    if not args.gguf or (args.tokens is None) == (args.prompt is None):
        ap.error("need GGUF and exactly one of --tokens / --prompt")

    sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import tok_ref
    ref_tok = None
    if args.prompt is not None or args.top or args.generate:  # --tokens -o needs no vocabulary
        vtoks, vtypes, vmerges, _ = tok_ref.read_vocab(args.gguf)
    if args.prompt is not None:
        ref_tok = tok_ref.RefTokenizer(vtoks, vtypes, vmerges)
        text = args.prompt
        if args.chat:
            text = "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n" % text
        tokens = ref_tok.encode(text)
        print("tokens:", ",".join(map(str, tokens)), file=sys.stderr)
    else:
        tokens = [int(t) for t in args.tokens.split(",") if t.strip()]

    def piece(i):
        if ref_tok is not None:
            return ref_tok.token_bytes(i).decode("utf-8", "replace")
        return vtoks[i]

    t0 = time.time()
    import json
    model = Llama(args.gguf, np.float64 if args.f64 else np.float32, args.rope,
                  json.loads(args.rope_scaling) if args.rope_scaling else None,
                  not args.no_bias, not args.no_qk_norm, args.window,
                  [x for x in args.ablate.split(",") if x])
    t1 = time.time()
    logits = model.forward(tokens)
    t2 = time.time()
    print("load %.2fs, forward of %d tokens %.2fs" % (t1 - t0, len(tokens), t2 - t1),
          file=sys.stderr)
    if args.output:
        np.save(args.output, logits.astype(np.float32))
    if args.top:
        for t in range(logits.shape[0]):
            top = np.argsort(-logits[t])[:5]
            print("%3d %6d %-14r -> %s" % (t, tokens[t], piece(tokens[t]),
                  "  ".join("%d %r %.2f" % (i, piece(i), logits[t, i]) for i in top)))
    if args.generate:
        eos = model.g.meta("tokenizer.ggml.eos_token_id")
        stop = {i for i in (eos, 2) if i is not None}
        new = model.generate(tokens, args.generate, stop)
        if ref_tok is None:
            ref_tok = tok_ref.RefTokenizer(vtoks, vtypes, vmerges)
        print("generated ids:", ",".join(map(str, new)), file=sys.stderr)
        print(ref_tok.decode(new))


if __name__ == "__main__":
    main()
