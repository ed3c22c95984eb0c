#!/usr/bin/env python3
"""Writes the small seed corpora of the parser fuzz targets (tests/fuzz/corpus/{safetensors,
gguf,npy,json}/): valid files of a few hundred bytes each covering the header features the
parsers handle (several dtypes and ranks, metadata, GGUF key/value types and arrays, block
types, npy v1/v2/v3, fortran order, big endian). Run by hand: gen_parser_seeds.py OUTDIR."""
import json
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")


def put(kind, name, data):
    d = os.path.join(out, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- safetensors ----
def safetensors(tensors, meta=None, pad=8):
    hdr, data = {}, b""
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, dt, shape, nbytes in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + nbytes]}
        data += bytes((i * 37 + 11) & 0xFF for i in range(nbytes))
    h = json.dumps(hdr).encode()
    h += b" " * ((-len(h)) % pad)
    return struct.pack("<Q", len(h)) + h + data


put("safetensors", "f32_2d", safetensors([("w", "F32", [2, 3], 24)]))
put("safetensors", "mixed", safetensors([("a.weight", "F16", [4, 4], 32), ("b.bias", "BF16", [4], 8),
                                         ("c", "I64", [2], 16), ("d", "BOOL", [3], 3),
                                         ("e", "F8_E4M3", [2, 2], 4)], {"format": "pt", "k": "v"}))
put("safetensors", "scalar_empty", safetensors([("s", "F32", [], 4), ("z", "F32", [0, 5], 0),
                                                ("u", "U8", [1, 1, 1, 2], 2)]))
put("safetensors", "unicode", safetensors([("layer\u00e9.\u4e2d", "F64", [1], 8)], {"\u00fc": "\\\"q\""}))

# ---- GGUF v3 ----
def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(kvs, tensors, version=3, align=32):
    b = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, v in kvs:
        b += gstr(k) + struct.pack("<I", t) + v
    off = 0
    blobs = []
    for name, dims, typ, nbytes in tensors:
        b += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        b += struct.pack("<IQ", typ, off)
        blobs.append(nbytes)
        off += (nbytes + align - 1) // align * align
    b += b"\0" * ((-len(b)) % align)
    for n in blobs:
        b += bytes((i * 13 + 5) & 0xFF for i in range(n)) + b"\0" * ((-n) % align)
    return b


kv = [("general.architecture", 8, gstr("llama")),
      ("general.alignment", 4, struct.pack("<I", 32)),
      ("llama.block_count", 4, struct.pack("<I", 2)),
      ("f", 6, struct.pack("<f", 1e-5)),
      ("b", 7, b"\1"),
      ("i64", 11, struct.pack("<q", -3)),
      ("d", 12, struct.pack("<d", 0.5)),
      ("tokens", 9, struct.pack("<IQ", 8, 3) + gstr("a") + gstr("bc") + gstr("")),
      ("ids", 9, struct.pack("<IQ", 5, 4) + struct.pack("<4i", 1, 2, 3, -1)),
      ("nested", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 0, 2) + b"\1\2")]
# ggml dims are innermost first; q8_0 block 34 bytes / 32 elems, q4_k 144 / 256
put("gguf", "llama_like", gguf(kv, [("tok_embd.weight", [32, 2], 8, 68), ("norm.weight", [8], 0, 32),
                                    ("blk.0.ffn.weight", [256, 1], 12, 144),
                                    ("blk.0.q.weight", [32, 2], 2, 36), ("h", [4, 2], 1, 16)]))
put("gguf", "v2_minimal", gguf([("a", 4, struct.pack("<I", 1))], [("t", [4], 0, 16)], version=2))
put("gguf", "bf16_i32_q6k", gguf([], [("x", [2, 2], 30, 8), ("y", [3], 26, 12), ("z", [256], 14, 210)]))

# ---- npy ----
def npy(descr, shape, nbytes, fortran=False, major=1):
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if fortran else "False", "(" + "".join("%d, " % s for s in shape).rstrip(" ") + ")"
        if len(shape) != 1 else "(%d,)" % shape[0])
    pre = 10 if major == 1 else 12
    d = d.encode() + b" " * ((-(pre + len(d) + 1)) % 64) + b"\n"
    hl = struct.pack("<H", len(d)) if major == 1 else struct.pack("<I", len(d))
    return b"\x93NUMPY" + bytes([major, 0]) + hl + d + bytes(i & 0xFF for i in range(nbytes))


put("npy", "f4_2d", npy("<f4", [2, 3], 24))
put("npy", "f2_1d", npy("<f2", [5], 10))
put("npy", "i8_scalar", npy("<i8", [], 8))
put("npy", "fortran_v2", npy("<f8", [2, 2], 32, fortran=True, major=2))
put("npy", "be_v3", npy(">i4", [3, 1, 2], 24, major=3))
put("npy", "bool_u1", npy("|b1", [4], 4))

# ---- JSON (safetensors headers, index files, config.json) ----
put("json", "index", json.dumps({"metadata": {"total_size": 123},
                                 "weight_map": {"a": "model-00001-of-00002.safetensors",
                                                "b": "model-00002-of-00002.safetensors"}}).encode())
put("json", "config", b'{"hidden_size": 4096, "rope_theta": 1e6, "eps": 1.0e-5, "x": [true, false, null],'
                      b' "s": "\\u00e9\\ud83d\\ude00\\n\\t\\"", "neg": -0.5, "e": {}, "a": []}')
put("json", "deep", b"[" * 40 + b"1" + b"]" * 40)

# ---- tokenizer.json of the model runner (hfjson) ----
# Llama 3's and Qwen2's pipelines on a byte-level vocabulary (the 256 byte tokens of GPT-2's
# alphabet, a few merges to words and digit groups), so that the fuzzer starts inside the
# Llama-3 / Qwen2 split (split_llama3), ignore_merges and the post_processor's BOS.
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = LLAMA3_REGEX.replace(r"\p{N}{1,3}", r"\p{N}")


def byte_vocab():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def hf_tokenizer(regex, specials, post, ignore_merges, normalizer=None):
    vocab = {t: i for i, t in enumerate(byte_vocab())}
    merges = ["\u0120 h", "\u0120h e", "l l", "\u0120he ll", "\u0120hell o", "1 2", "12 3",
              "' s", "I T"]
    for m in merges:
        vocab.setdefault(m.replace(" ", ""), len(vocab))
    added = [{"id": len(vocab) + i, "content": s, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True} for i, s in enumerate(specials)]
    return json.dumps({
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": False}]},
        "post_processor": post,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "fuse_unk": False,
                  "byte_fallback": False, "ignore_merges": ignore_merges, "vocab": vocab,
                  "merges": merges}}, ensure_ascii=False).encode()


l3_specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
               "<|eot_id|>"]
bos_id = 256 + 9  # the first added token: 256 byte tokens, 9 merged ones
put("hfjson", "tok_llama3.json", hf_tokenizer(LLAMA3_REGEX, l3_specials, {
    "type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}}],
         "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                  {"Sequence": {"id": "A", "type_id": 0}},
                  {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                  {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [bos_id],
                                                  "tokens": ["<|begin_of_text|>"]}}}]}, True))
put("hfjson", "tok_qwen2.json", hf_tokenizer(
    QWEN2_REGEX, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
    False, {"type": "NFC"}))
