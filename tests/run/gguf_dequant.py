#!/usr/bin/env python3
"""Rewrites a GGUF with every quantized tensor dequantized to F32 (or F16): the same model, the
key/values byte for byte (general.file_type set to ALL_F32 / MOSTLY_F16).

Usage: gguf_dequant.py SRC DST [--dtype f32|f16]

Why: llama.cpp's CPU matmuls quantize the activations to the weights' vec_dot type (q8_1 for
Q4_1, q8_0 for Q8_0), which alone moves SmolLM2's logits by a cosine of up to 2e-3. With F32
weights llama.cpp computes in f32 (with F16 ones the activations are rounded to f16), so
`vtstore run` and llama.cpp can be held to a much tighter bound on the same model
(tests/run/llamacpp_oracle.sh). Dequantization is gguf-py's (gguf.quants.dequantize)."""
import argparse
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as QT
from gguf import GGUFReader
from gguf.quants import dequantize

SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
          12: "d"}


def skip_value(b, o, t):
    """Offset after one key/value value of type t at offset o."""
    if t == 8:
        return o + 8 + struct.unpack_from("<Q", b, o)[0]
    if t == 9:
        et, n = struct.unpack_from("<IQ", b, o)
        o += 12
        if et in SCALAR:
            return o + n * struct.calcsize("<" + SCALAR[et])
        for _ in range(n):
            o = skip_value(b, o, et)
        return o
    return o + struct.calcsize("<" + SCALAR[t])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--dtype", choices=("f32", "f16"), default="f32")
    a = ap.parse_args()
    data = open(a.src, "rb").read()
    if data[:4] != b"GGUF" or struct.unpack_from("<I", data, 4)[0] != 3:
        sys.exit("gguf_dequant: %s is not GGUF v3" % a.src)
    n_t, n_kv = struct.unpack_from("<QQ", data, 8)
    o, kvs, align = 24, bytearray(), 32
    for _ in range(n_kv):
        start = o
        klen = struct.unpack_from("<Q", data, o)[0]
        key = data[o + 8:o + 8 + klen].decode()
        o += 8 + klen
        t = struct.unpack_from("<I", data, o)[0]
        end = skip_value(data, o + 4, t)
        raw = bytearray(data[start:end])
        if key == "general.alignment":
            align = struct.unpack_from("<I", data, o + 4)[0]
        if key == "general.file_type" and t == 4:
            struct.pack_into("<I", raw, len(raw) - 4, 0 if a.dtype == "f32" else 1)
        kvs += raw
        o = end

    out_type = QT.F32 if a.dtype == "f32" else QT.F16
    infos, blobs, off = bytearray(), [], 0
    for t in GGUFReader(a.src).tensors:
        ne = [int(x) for x in t.shape]  # ne0 first, as stored
        if t.tensor_type in (QT.F32, QT.F16):
            arr, ty = np.asarray(t.data), t.tensor_type
            if t.tensor_type == QT.F16 and out_type == QT.F32:
                arr, ty = arr.astype(np.float32), QT.F32
        else:
            arr, ty = dequantize(np.asarray(t.data), t.tensor_type), out_type
            arr = arr.astype(np.float32 if ty == QT.F32 else np.float16)
        raw = np.ascontiguousarray(arr).tobytes()
        name = t.name.encode()
        infos += struct.pack("<Q", len(name)) + name + struct.pack("<I", len(ne))
        infos += b"".join(struct.pack("<Q", x) for x in ne) + struct.pack("<IQ", int(ty), off)
        blobs.append(raw + b"\0" * (-len(raw) % align))
        off += len(blobs[-1])
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, n_t, n_kv)) + kvs + infos
    out += b"\0" * (-len(out) % align)
    with open(a.dst, "wb") as f:
        f.write(out)
        for b in blobs:
            f.write(b)


if __name__ == "__main__":
    main()
