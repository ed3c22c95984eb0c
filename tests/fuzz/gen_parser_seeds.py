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
