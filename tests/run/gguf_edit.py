#!/usr/bin/env python3
"""Rewrites a GGUF file with some metadata changed, the tensor data byte for byte (only the
padding before it changes), so that tests can give a real model another tokenizer setup.

Usage: gguf_edit.py SRC DST [--str KEY=TEXT] [--bool KEY=0|1] [--u32 KEY=N] [--del KEY]
                            [--token ID=TEXT]...
--str/--bool/--u32 set a key (replacing its value and type, or adding it); --del removes one;
--token replaces one string of tokenizer.ggml.tokens. --layers N keeps the first N blocks (a
smaller model of the same kind, e.g. one that fits what travels to a GPU machine).
--qwen2 SEED turns the llama model into a qwen2 one as convert_hf_to_gguf writes Qwen2: the
architecture and its "llama.*" keys renamed, attn_q/attn_k rows un-permuted (convert_hf_to_gguf
permutes them for llama only; qwen2 uses NEOX RoPE, rotate_half pairs; the quantized rows are
moved whole, each row being whole blocks) and random f32 biases blk.N.attn_{q,k,v}.bias
(normal, standard deviation --bias-scale, numpy seed SEED) added after each layer's tensors.
--qwen3 SEED does the same renaming and un-permuting for a qwen3 model (convert_hf_to_gguf does
not permute Qwen3 either), and adds no biases but random f32 per-head norms
blk.N.attn_{q,k}_norm.weight ([head_dim], 1 + normal with standard deviation --bias-scale)
after attn_q and attn_k.
Parses the GGUF v3 layout directly (header, key/values, tensor infos, data aligned to
general.alignment)."""
import argparse
import re
import struct
import sys

import numpy as np

# ggml type -> (elements per block, bytes per block)
BLOCK = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 8: (32, 34), 12: (256, 144),
         14: (256, 210)}
SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
          12: "d"}


class Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, fmt):
        v = struct.unpack_from("<" + fmt, self.b, self.o)
        self.o += struct.calcsize("<" + fmt)
        return v[0]

    def string(self):
        n = self.take("Q")
        s = self.b[self.o:self.o + n]
        self.o += n
        return bytes(s)

    def value(self, t):
        """The raw bytes of one value of type t (the type itself not included)."""
        start = self.o
        if t == 8:
            self.string()
        elif t == 9:
            et, n = self.take("I"), self.take("Q")
            for _ in range(n):
                self.value(et)
        else:
            self.o += struct.calcsize("<" + SCALAR[t])
        return bytes(self.b[start:self.o])


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--str", action="append", default=[])
    ap.add_argument("--bool", action="append", default=[])
    ap.add_argument("--u32", action="append", default=[])
    ap.add_argument("--del", dest="delete", action="append", default=[])
    ap.add_argument("--token", action="append", default=[])
    ap.add_argument("--qwen2", type=int, metavar="SEED")
    ap.add_argument("--qwen3", type=int, metavar="SEED")
    ap.add_argument("--bias-scale", type=float, default=0.5)
    ap.add_argument("--no-bias", action="store_true", help="with --qwen2: add no biases")
    ap.add_argument("--no-qk-norm", action="store_true", help="with --qwen3: add no q/k norms")
    ap.add_argument("--layers", type=int, metavar="N",
                    help="keep blocks 0..N-1 only (their tensors and <arch>.block_count)")
    a = ap.parse_args()
    data = open(a.src, "rb").read()
    r = Reader(data)
    if data[:4] != b"GGUF" or struct.unpack_from("<I", data, 4)[0] != 3:
        sys.exit("gguf_edit: %s is not GGUF v3" % a.src)
    r.o = 8
    n_t, n_kv = r.take("Q"), r.take("Q")
    kvs = []  # [key, type, raw value]
    for _ in range(n_kv):
        k = r.string().decode()
        t = r.take("I")
        kvs.append([k, t, r.value(t)])
    ti_start = r.o
    align = 32
    for k, t, v in kvs:
        if k == "general.alignment":
            align = struct.unpack("<I", v)[0]
    tensors = []  # [name, ne, type, bytes]
    for _ in range(n_t):
        name = r.string().decode()
        nd = r.take("I")
        ne = [r.take("Q") for _ in range(nd)]
        ty, off = r.take("I"), r.take("Q")
        tensors.append([name, ne, ty, off])
    tinfo = data[ti_start:r.o]
    old_data_at = (r.o + align - 1) // align * align
    for t in tensors:
        blk, bb = BLOCK[t[2]]
        n = int(np.prod(t[1]))
        t[3] = data[old_data_at + t[3]:old_data_at + t[3] + n // blk * bb]

    def put(key, t, raw):
        for kv in kvs:
            if kv[0] == key:
                kv[1], kv[2] = t, raw
                return
        kvs.append([key, t, raw])

    for e in a.str:
        k, v = e.split("=", 1)
        put(k, 8, gstr(v))
    for e in a.bool:
        k, v = e.split("=", 1)
        put(k, 7, struct.pack("<?", v == "1"))
    for e in a.u32:
        k, v = e.split("=", 1)
        put(k, 4, struct.pack("<I", int(v)))
    kvs = [kv for kv in kvs if kv[0] not in a.delete]
    if a.token:
        kv = next(kv for kv in kvs if kv[0] == "tokenizer.ggml.tokens")
        tr = Reader(kv[2])
        et, n = tr.take("I"), tr.take("Q")
        toks = [tr.string() for _ in range(n)]
        for e in a.token:
            i, v = e.split("=", 1)
            toks[int(i)] = v.encode()
        kv[2] = struct.pack("<IQ", et, n) + b"".join(gstr(s) for s in toks)
    if a.qwen2 is not None:
        tensors = qwen2(kvs, tensors, a.qwen2, a.bias_scale, not a.no_bias)
        tinfo = None
    if a.qwen3 is not None:
        tensors = qwen2(kvs, tensors, a.qwen3, a.bias_scale, False, "qwen3", not a.no_qk_norm)
        tinfo = None
    if a.layers is not None:
        arch = next(Reader(kv[2]).string().decode() for kv in kvs
                    if kv[0] == "general.architecture")
        put(arch + ".block_count", 4, struct.pack("<I", a.layers))
        keep = re.compile(r"blk\.(\d+)\.")
        tensors = [t for t in tensors
                   if not keep.match(t[0]) or int(keep.match(t[0]).group(1)) < a.layers]
        tinfo = None
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
    for k, t, v in kvs:
        out += gstr(k) + struct.pack("<I", t) + v
    if tinfo is not None:  # tensors unchanged: their infos and data byte for byte
        out += tinfo
        out += b"\0" * (-len(out) % align)
        out += data[old_data_at:]
    else:
        off, blobs = 0, []
        for name, ne, ty, raw in tensors:
            out += gstr(name) + struct.pack("<I", len(ne)) + b"".join(
                struct.pack("<Q", x) for x in ne) + struct.pack("<IQ", ty, off)
            blobs.append(raw + b"\0" * (-len(raw) % align))
            off += len(blobs[-1])
        out += b"\0" * (-len(out) % align)
        out += b"".join(blobs)
    open(a.dst, "wb").write(out)


def qwen2(kvs, tensors, seed, scale, bias, arch="qwen2", qk_norm=True):
    meta = {k: v for k, t, v in kvs}
    hd = struct.unpack("<I", meta["llama.embedding_length"])[0] // struct.unpack(
        "<I", meta["llama.attention.head_count"])[0]
    n_head = struct.unpack("<I", meta["llama.attention.head_count"])[0]
    n_kv = struct.unpack("<I", meta.get("llama.attention.head_count_kv",
                                        meta["llama.attention.head_count"]))[0]
    for kv in kvs:
        if kv[0] == "general.architecture":
            kv[2] = gstr(arch)
        elif kv[0].startswith("llama."):
            kv[0] = arch + "." + kv[0][len("llama."):]
    rng = np.random.default_rng(seed)
    out = []
    for name, ne, ty, raw in tensors:
        if name.endswith((".attn_q.weight", ".attn_k.weight")):
            h = n_head if ".attn_q." in name else n_kv
            rows = np.frombuffer(raw, np.uint8).reshape(ne[1], -1)
            raw = (rows.reshape(h, ne[1] // h // 2, 2, -1).swapaxes(1, 2)
                   .reshape(rows.shape).tobytes())
        out.append([name, ne, ty, raw])
        if qk_norm and arch == "qwen3" and name.endswith((".attn_q.weight", ".attn_k.weight")):
            w = (1 + rng.standard_normal(hd) * scale).astype("<f4")
            out.append([name[:-len(".weight")] + "_norm.weight", [hd], 0, w.tobytes()])
        if bias and name.endswith(".attn_v.weight"):  # after q, k, v of this layer
            blk = name[:-len("attn_v.weight")]
            for role in ("attn_q", "attn_k", "attn_v"):
                rows = next(t[1][1] for t in tensors if t[0] == blk + role + ".weight")
                b = (rng.standard_normal(rows) * scale).astype("<f4")
                out.append([blk + role + ".bias", [rows], 0, b.tobytes()])
    return out


if __name__ == "__main__":
    main()
