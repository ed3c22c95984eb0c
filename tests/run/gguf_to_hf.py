#!/usr/bin/env python3
"""Converts a Llama GGUF (the SmolLM2 test model) into a Hugging Face layout directory:
model.safetensors (HF tensor names, dequantized to f16 or f32, q/k rows un-permuted back to HF's
rotate_half order), config.json and tokenizer.json (vocab, merges, added tokens from the GGUF).

Usage: gguf_to_hf.py GGUF OUTDIR [--dtype f16|f32] [--merges strings|pairs] [--rope-scaling JSON]
(--rope-scaling: the config.json rope_scaling object; default null; --mistral-window W: a llama
GGUF becomes model_type "mistral" with sliding_window W)
A qwen2 GGUF (gguf_edit.py --qwen2) becomes model_type "qwen2" with q/k/v_proj.bias; its q/k
rows are already in HF's order (qwen2 GGUFs are not permuted).  A qwen3 GGUF (gguf_edit.py
--qwen3) becomes model_type "qwen3" with self_attn.{q,k}_norm.weight and head_dim.  A gemma3
GGUF (gguf_synth.py --arch gemma3) becomes model_type "gemma3_text" (Gemma3ForCausalLM) with
its four norms per layer, every norm weight stored as w - 1 (transformers' Gemma3RMSNorm
multiplies by 1 + w; convert_hf_to_gguf adds the 1), and its window keys.
The safetensors file is written by hand (8-byte header length, JSON header, data)."""
import argparse
import json
import os
import struct
import sys

import numpy as np

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "model"))
from ref_llama import GGUFModel  # noqa: E402

CONTROL, USER_DEFINED = 3, 4


def unpermute(w, n_head):
    """Inverse of convert_hf_to_gguf's permute (HF rows -> GGUF's adjacent RoPE pairs)."""
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def write_safetensors(path, tensors):
    header, off, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, a in tensors:
        a = np.ascontiguousarray(a)
        b = a.tobytes()
        header[name] = {"dtype": {"float16": "F16", "float32": "F32"}[a.dtype.name],
                        "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("out")
    ap.add_argument("--dtype", choices=["f16", "f32"], default="f16")
    ap.add_argument("--merges", choices=["strings", "pairs"], default="strings")
    ap.add_argument("--rope-scaling", metavar="JSON")
    ap.add_argument("--mistral-window", type=int, metavar="W",
                    help="write a llama GGUF as model_type mistral with sliding_window W")
    ap.add_argument("--gemma3-multimodal", choices=["hub", "new"],
                    help="a gemma3 GGUF as Gemma3ForConditionalGeneration: config.json model_type "
                    "gemma3 with the keys in text_config (those equal to Gemma3TextConfig's "
                    "defaults left out), the eos ids at the top level, tensors under "
                    "language_model.model. (hub: the hub's files) or model.language_model. (new: "
                    "transformers 4.52+), and a small vision tower beside them")
    ap.add_argument("--top-eos", metavar="IDS",
                    help="with --gemma3-multimodal: the top level's eos_token_id list "
                    "(default: the GGUF's eos and 106)")
    a = ap.parse_args()
    g = GGUFModel(a.gguf)
    arch = g.meta("general.architecture")
    p = arch + "."
    n_head = g.meta(p + "attention.head_count")
    n_kv = g.meta(p + "attention.head_count_kv", n_head)
    n_layer = g.meta(p + "block_count")
    dt = np.float16 if a.dtype == "f16" else np.float32
    os.makedirs(a.out, exist_ok=True)

    gemma = arch == "gemma3"
    roles = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj",
             "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
             "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    if gemma:
        roles.update({"post_attention_norm": "post_attention_layernorm",
                      "ffn_norm": "pre_feedforward_layernorm",
                      "post_ffw_norm": "post_feedforward_layernorm"})
    shift = -1.0 if gemma else 0.0  # HF Gemma norms hold w - 1
    tensors = [("model.embed_tokens.weight", g.get("token_embd.weight"))]
    for i in range(n_layer):
        for gr, hr in roles.items():
            w = g.get("blk.%d.%s.weight" % (i, gr))
            if "norm" in gr:
                w = w + shift
            for r in ("q", "k"):  # qwen3: after q_proj / k_proj
                if gr == "attn_" + r and "blk.%d.attn_%s_norm.weight" % (i, r) in g.tensors:
                    tensors.append(("model.layers.%d.self_attn.%s_norm.weight" % (i, r),
                                    g.get("blk.%d.attn_%s_norm.weight" % (i, r)) + shift))
            if gr == "attn_q" and arch == "llama":
                w = unpermute(w, n_head)
            elif gr == "attn_k" and arch == "llama":
                w = unpermute(w, n_kv)
            tensors.append(("model.layers.%d.%s.weight" % (i, hr), w))
            if "blk.%d.%s.bias" % (i, gr) in g.tensors:
                tensors.append(("model.layers.%d.%s.bias" % (i, hr),
                                g.get("blk.%d.%s.bias" % (i, gr))))
    tensors.append(("model.norm.weight", g.get("output_norm.weight") + shift))
    tied = "output.weight" not in g.tensors
    if not tied:
        tensors.append(("lm_head.weight", g.get("output.weight")))
    mm = a.gemma3_multimodal
    if mm:
        if not gemma:
            sys.exit("gguf_to_hf: --gemma3-multimodal needs a gemma3 GGUF")
        lm = "language_model.model." if mm == "hub" else "model.language_model."
        vt = "vision_tower.vision_model." if mm == "hub" else "model.vision_tower.vision_model."
        mp = "multi_modal_projector." if mm == "hub" else "model.multi_modal_projector."
        tensors = [((lm + n[len("model."):]) if n.startswith("model.") else
                    ("language_model.lm_head.weight" if mm == "hub" else n), w)
                   for n, w in tensors]
        rng = np.random.default_rng(0)  # the vision side, which the runner must not read
        tensors += [(vt + "embeddings.patch_embedding.weight",
                     rng.standard_normal((16, 3, 14, 14)).astype(np.float32)),
                    (vt + "post_layernorm.weight", np.ones(16, np.float32)),
                    (mp + "mm_input_projection_weight",
                     rng.standard_normal((16, tensors[0][1].shape[1])).astype(np.float32))]
    write_safetensors(os.path.join(a.out, "model.safetensors"),
                      [(n, w.astype(dt)) for n, w in tensors])

    vocab = tensors[0][1].shape[0]
    cfg = {"architectures": [{"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM",
                              "gemma3": "Gemma3ForCausalLM"}.get(arch, "LlamaForCausalLM")],
           "model_type": "gemma3_text" if gemma else arch,
           "hidden_size": g.meta(p + "embedding_length"),
           "intermediate_size": g.meta(p + "feed_forward_length"),
           "num_hidden_layers": n_layer, "num_attention_heads": n_head,
           "num_key_value_heads": n_kv, "rope_theta": g.meta(p + "rope.freq_base", 10000.0),
           "rms_norm_eps": g.meta(p + "attention.layer_norm_rms_epsilon", 1e-5),
           "vocab_size": vocab, "tie_word_embeddings": tied,
           "max_position_embeddings": g.meta(p + "context_length"),
           "bos_token_id": g.meta("tokenizer.ggml.bos_token_id"),
           "eos_token_id": g.meta("tokenizer.ggml.eos_token_id"),
           "hidden_act": "silu",
           "head_dim": g.meta(p + "attention.key_length",
                              g.meta(p + "embedding_length") // n_head),
           "rope_scaling": json.loads(a.rope_scaling) if a.rope_scaling else (
               {"rope_type": "linear", "factor": g.meta(p + "rope.scaling.factor")}
               if g.meta(p + "rope.scaling.type") == "linear" else None),
           "torch_dtype": "float16" if a.dtype == "f16" else "float32"}
    if gemma:
        hd = cfg["head_dim"]
        cfg.update({"hidden_activation": "gelu_pytorch_tanh", "query_pre_attn_scalar": hd,
                    "sliding_window": g.meta(p + "attention.sliding_window", 0) or 4096,
                    "rope_local_base_freq": g.meta(p + "rope.freq_base_swa", 10000.0),
                    "final_logit_softcapping": g.meta(p + "final_logit_softcapping"),
                    "attn_logit_softcapping": None})
        del cfg["hidden_act"]
        pat = g.meta(p + "attention.sliding_window_pattern", 6)
        if g.meta(p + "attention.sliding_window", 0):  # newer transformers: layer_types
            cfg["layer_types"] = ["sliding_attention" if pat == 0 or i % pat < pat - 1
                                  else "full_attention" for i in range(n_layer)]
        else:
            cfg["layer_types"] = ["full_attention"] * n_layer
    if a.mistral_window is not None:
        if arch != "llama":
            sys.exit("gguf_to_hf: --mistral-window needs a llama GGUF")
        cfg["architectures"], cfg["model_type"] = ["MistralForCausalLM"], "mistral"
        cfg["sliding_window"] = a.mistral_window
    if mm:  # transformers' Gemma3TextConfig defaults: keys equal to them are left out
        defaults = {"vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216,
                    "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4,
                    "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh",
                    "max_position_embeddings": 131072, "rms_norm_eps": 1e-6,
                    "rope_theta": 1e6, "query_pre_attn_scalar": 256, "sliding_window": 4096,
                    "final_logit_softcapping": None, "attn_logit_softcapping": None,
                    "rope_local_base_freq": 10000.0, "sliding_window_pattern": 6,
                    "tie_word_embeddings": True, "bos_token_id": 2, "rope_scaling": None}
        text = dict(cfg, model_type="gemma3_text")
        if "layer_types" in text:  # the hub's 4.50-era files: the pattern, not layer_types
            del text["layer_types"]
            text["sliding_window_pattern"] = pat
        for k in ("architectures", "torch_dtype", "eos_token_id"):
            text.pop(k, None)
        text = {k: v for k, v in text.items() if not (k in defaults and defaults[k] == v)}
        eos = ([int(x) for x in a.top_eos.split(",")] if a.top_eos
               else [cfg["eos_token_id"], 106])
        cfg = {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
               "eos_token_id": eos, "image_token_index": 262144, "mm_tokens_per_image": 256,
               "text_config": text,
               "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 16,
                                 "patch_size": 14, "image_size": 28},
               "torch_dtype": cfg["torch_dtype"]}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)

    toks = g.meta("tokenizer.ggml.tokens")
    types = g.meta("tokenizer.ggml.token_type") or [1] * len(toks)
    merges = g.meta("tokenizer.ggml.merges")
    if a.merges == "pairs":
        merges = [m.split(" ", 1) for m in merges]
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": ty == CONTROL}
             for i, (t, ty) in enumerate(zip(toks, types)) if ty in (CONTROL, USER_DEFINED)]
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
          "normalizer": None,
          "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
              {"type": "Digits", "individual_digits": True},
              {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
               "use_regex": True}]},
          "post_processor": None, "decoder": {"type": "ByteLevel"},
          "model": {"type": "BPE", "dropout": None, "unk_token": None,
                    "continuing_subword_prefix": None, "end_of_word_suffix": None,
                    "fuse_unk": False, "byte_fallback": False,
                    "vocab": {t: i for i, t in enumerate(toks)}, "merges": merges}}
    with open(os.path.join(a.out, "tokenizer.json"), "w") as f:
        json.dump(tj, f)  # ensure_ascii: the reader must decode \\u escapes
    # the chat template goes to tokenizer_config.json, as in the model's Hugging Face checkout
    tmpl = g.meta("tokenizer.chat_template")
    if tmpl is not None:
        with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
            json.dump({"chat_template": tmpl}, f)
    print("wrote %d tensors (%s), config.json, tokenizer.json (%d tokens, %d merges as %s)%s to %s"
          % (len(tensors), a.dtype, len(toks), len(merges), a.merges,
             ", tokenizer_config.json" if tmpl is not None else "", a.out))


if __name__ == "__main__":
    main()
