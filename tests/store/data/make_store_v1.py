#!/usr/bin/env python3
"""Recreate tests/store/data/store_v1.tar.gz: a format-1 store as vtstore 0.1 (commit b5547c9,
the last to write format 1) imported it. test_store_format regenerates the same values in C.

    python3 make_store_v1.py /path/to/old/vtstore   # run in an empty directory

Three tensors: a (64x96 -> q8_0, several 2 KiB chunks), b (40x128 -> nf4, zstd-compressed),
c (50 f32, kept)."""
import json
import struct
import subprocess
import sys

import numpy as np


def safetensors(tensors, path):
    hdr, blobs, off = {}, [], 0
    for name, arr in tensors:
        b = arr.astype("<f4").tobytes()
        hdr[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


i = np.arange(64 * 96, dtype=np.int64)
a = ((((i * 7919) % 1000) - 500) / 250.0 * (1 + (i % 5))).reshape(64, 96)
j = np.arange(40 * 128, dtype=np.int64)
b = (((j % 16) - 8) * 0.25).reshape(40, 128)
k = np.arange(50, dtype=np.int64)
c = (k - 25) / 8.0
safetensors([("a", a), ("b", b), ("c", c)], "src.safetensors")
subprocess.run([sys.argv[1], "import", "src.safetensors", "v1", "--rule", "a=q8_0", "--rule",
                "b=nf4", "--zstd", "3", "--chunk-size", "2K", "-q"], check=True)
subprocess.run(["tar", "--owner=0", "--group=0", "--numeric-owner", "--mtime=2026-11-27 00:00:00",
                "-czf", "store_v1.tar.gz", "v1/index/data.mdb", "v1/index/data.xxh",
                "v1/data/shard-000001.vts"], check=True)
