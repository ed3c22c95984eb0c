#!/usr/bin/env python3
"""Writes a small random Llama-family GGUF with gguf-py's GGUFWriter: shapes no released small
model has (a head dimension other than embedding_length / head_count, as Qwen3 and Mistral-Nemo
have), for checks of `vtstore run` against tests/model/ref_llama.py (and llama.cpp).

Usage: gguf_synth.py OUT.gguf [--arch llama|qwen2|qwen3] [--dim 256] [--heads 4] [--kv-heads 2]
                     [--head-dim 96] [--ffn 512] [--layers 2] [--vocab 512] [--ctx 256]
                     [--dtype f32|f16] [--seed 1] [--theta 1000000]

Weights are normal with standard deviation 1/sqrt(fan-in) (attn_q, attn_k: 3/sqrt(fan-in), so
that scores are far from uniform and a q/k norm changes them; the embedding: 1, gemma3's
1/sqrt(dim), as it is scaled by sqrt(dim)), norms 1 + 0.1
normal, qwen2 biases 0.1 normal, qwen3 q/k norms 1 + 0.1 normal: random, but with logits that
vary enough to compare (greedy choices are not ties). q/k rows are written as convert_hf_to_gguf
writes them (llama: permuted for adjacent RoPE pairs, which for random rows changes nothing about
their distribution). The tokenizer is a GPT-2 byte-level BPE one (tokenizer.ggml.model "gpt2":
the 256 byte characters, <|endoftext|> (BOS and EOS), <|im_start|>, <|im_end|>, then merged
pairs of common letters with their merges, padded with user-defined tokens), enough for
`vtstore run`, gguf_to_hf.py and llama.cpp to load the file."""
import argparse

import numpy as np
import gguf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--arch", choices=("llama", "qwen2", "qwen3", "gemma3"), default="qwen3")
    ap.add_argument("--window", type=int, default=0,
                    help="gemma3: attention.sliding_window (0: none)")
    ap.add_argument("--window-pattern", type=int, default=0,
                    help="gemma3: attention.sliding_window_pattern (0: not written, llama.cpp's 6)")
    ap.add_argument("--rope-linear", type=float, default=0,
                    help="rope.scaling.type linear with this factor (0: no scaling keys)")
    ap.add_argument("--softcap", type=float, default=0,
                    help="gemma3: final_logit_softcapping (0: not written)")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=96)
    ap.add_argument("--ffn", type=int, default=512)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--dtype", choices=("f32", "f16"), default="f32")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--theta", type=float, default=1e6)
    a = ap.parse_args()
    if a.vocab < 259:
        ap.error("--vocab must hold the 256 byte tokens and 3 control tokens")
    rng = np.random.default_rng(a.seed)
    dt = np.float16 if a.dtype == "f16" else np.float32
    qd, kvd = a.heads * a.head_dim, a.kv_heads * a.head_dim

    def mat(rows, cols, scale=None):
        s = 1 / np.sqrt(cols) if scale is None else scale
        return (rng.standard_normal((rows, cols)) * s).astype(dt)

    def vec(n, base, scale):  # norms and biases stay f32, as convert_hf_to_gguf keeps them
        return (base + rng.standard_normal(n) * scale).astype(np.float32)

    w = gguf.GGUFWriter(a.out, a.arch)
    w.add_block_count(a.layers)
    w.add_context_length(a.ctx)
    w.add_embedding_length(a.dim)
    w.add_feed_forward_length(a.ffn)
    w.add_head_count(a.heads)
    w.add_head_count_kv(a.kv_heads)
    w.add_key_length(a.head_dim)
    w.add_value_length(a.head_dim)
    w.add_rope_freq_base(a.theta)
    w.add_layer_norm_rms_eps(1e-6)
    if a.arch == "gemma3" and a.window:
        w.add_sliding_window(a.window)
        if a.window_pattern:
            w.add_uint32("gemma3.attention.sliding_window_pattern", a.window_pattern)
    if a.rope_linear:
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(a.rope_linear)
    if a.arch == "gemma3" and a.softcap:
        w.add_float32("gemma3.final_logit_softcapping", a.softcap)
    w.add_file_type(0 if a.dtype == "f32" else 1)

    # GPT-2 byte-level BPE: the 256 byte characters, three control tokens, then merged pairs
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs + [256 + n for n in range(256) if n not in bs]
    byte_chr = dict(zip(bs + [n for n in range(256) if n not in bs], map(chr, cs)))
    toks = [byte_chr[i] for i in range(256)] + ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    types = [1] * 256 + [3] * 3  # NORMAL, CONTROL
    letters = "etaoinshrdlucmfw"
    merges = []
    for x in letters:
        for y in letters:
            if len(toks) < a.vocab:
                toks.append(x + y)
                types.append(1)
                merges.append(x + " " + y)
    while len(toks) < a.vocab:
        toks.append("<|vt_pad_%d|>" % len(toks))
        types.append(4)  # USER_DEFINED
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(toks)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(256)
    w.add_eos_token_id(256)
    w.add_add_bos_token(False)

    # gemma3 scales the embeddings by sqrt(dim): these then have unit size, like the normed
    # attention and FFN outputs added to them, so both matter to the logits
    w.add_tensor("token_embd.weight",
                 mat(a.vocab, a.dim, 1 / np.sqrt(a.dim) if a.arch == "gemma3" else 1.0))
    for i in range(a.layers):
        b = "blk.%d." % i
        w.add_tensor(b + "attn_norm.weight", vec(a.dim, 1, 0.1))
        w.add_tensor(b + "attn_q.weight", mat(qd, a.dim, 3 / np.sqrt(a.dim)))
        w.add_tensor(b + "attn_k.weight", mat(kvd, a.dim, 3 / np.sqrt(a.dim)))
        w.add_tensor(b + "attn_v.weight", mat(kvd, a.dim))
        if a.arch == "qwen2":
            for r, n in (("q", qd), ("k", kvd), ("v", kvd)):
                w.add_tensor(b + "attn_%s.bias" % r, vec(n, 0, 0.1))
        if a.arch in ("qwen3", "gemma3"):
            for r in ("q", "k"):
                w.add_tensor(b + "attn_%s_norm.weight" % r, vec(a.head_dim, 1, 0.1))
        w.add_tensor(b + "attn_output.weight", mat(a.dim, qd))
        if a.arch == "gemma3":
            w.add_tensor(b + "post_attention_norm.weight", vec(a.dim, 1, 0.1))
        w.add_tensor(b + "ffn_norm.weight", vec(a.dim, 1, 0.1))
        w.add_tensor(b + "ffn_gate.weight", mat(a.ffn, a.dim))
        w.add_tensor(b + "ffn_up.weight", mat(a.ffn, a.dim))
        w.add_tensor(b + "ffn_down.weight", mat(a.dim, a.ffn))
        if a.arch == "gemma3":
            w.add_tensor(b + "post_ffw_norm.weight", vec(a.dim, 1, 0.1))
    w.add_tensor("output_norm.weight", vec(a.dim, 1, 0.1))
    if a.arch != "gemma3":  # Gemma's head is the embedding (tied)
        w.add_tensor("output.weight", mat(a.vocab, a.dim))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
