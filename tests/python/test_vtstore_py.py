"""Tests of the Python bindings (python/vtstore) against libvtstore.so.

Run by CTest (tests/python/CMakeLists.txt) with VTSTORE_LIB, PYTHONPATH, VT_CC, VT_INCLUDE and
VT_PROJECT_VERSION set; by hand:

    VTSTORE_LIB=build/libvtstore.so PYTHONPATH=python python3 tests/python/test_vtstore_py.py

Inputs are fresh random numbers each run (VT_TEST_SEED=N repeats a run; the seed is printed).
Exit status 0 pass, 1 fail, 77 skipped (numpy missing). Quantized results are compared with
independent numpy references of the formats (ggml's q8_0, bitsandbytes' nf4), not with the
library's own output.
"""

import errno
import gc
import json
import math
import re
import os
import pathlib
import shutil
import struct
import tarfile
import subprocess
import sys
import tempfile
import threading
import unittest

try:
    import numpy as np
except ImportError:
    print("SKIP: numpy is not installed (scripts/setup_python.sh installs it)")
    sys.exit(77)

import vtstore
from vtstore import _lib

SEED = int(os.environ.get("VT_TEST_SEED") or int.from_bytes(os.urandom(4), "little"))
print(f"test_vtstore_py: VT_TEST_SEED={SEED}, library {vtstore.library_path}", flush=True)
ERANGE = -errno.ERANGE

# ---- independent references -----------------------------------------------------------------


def roundf(v: np.ndarray) -> np.ndarray:
    """C roundf (half away from zero) of float32 values, exactly (in float64)."""
    v = v.astype(np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def pad_blocks(x: np.ndarray, qk: int) -> np.ndarray:
    """[rows, cols] -> [rows, nblocks, qk], each row zero-padded to whole blocks."""
    rows, cols = x.shape
    nb = -(-cols // qk)
    p = np.zeros((rows, nb * qk), dtype=np.float32)
    p[:, :cols] = x
    return p.reshape(rows, nb, qk)


def ref_q8_0(x: np.ndarray):
    """ggml Q8_0: per 32, d = amax / 127 (f32, stored f16), q = roundf(x * (1/d)).
    Returns (block bytes, dequantized [rows, cols])."""
    rows, cols = x.shape
    b = pad_blocks(x, 32)
    amax = np.abs(b).max(axis=2)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    q = roundf(b * inv[..., None]).astype(np.int8)
    d16 = d.astype(np.float16)
    blocks = np.zeros((rows, b.shape[1]), dtype=[("d", "<f2"), ("qs", "i1", 32)])
    blocks["d"] = d16
    blocks["qs"] = q
    deq = (q.astype(np.float32) * d16.astype(np.float32)[..., None]).reshape(rows, -1)[:, :cols]
    return blocks.tobytes(), deq


# bitsandbytes' NF4 code values (csrc/kernels.cu nf4_data)
NF4 = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
])  # fmt: skip


def ref_nf4(x: np.ndarray):
    """bitsandbytes NF4: per 64, absmax (f32); x * (1/absmax) to the nearest code value (a value
    on a midpoint takes the lower one); element 2i in the high nibble of byte i."""
    rows, cols = x.shape
    b = pad_blocks(x, 64)
    amax = np.abs(b).max(axis=2).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(amax != 0, np.float32(1) / amax, np.float32(0)).astype(np.float32)
    xn = (b * inv[..., None]).astype(np.float32)
    mids = ((NF4[:-1] + NF4[1:]) / 2).astype(np.float32)
    codes = (xn[..., None] > mids).sum(axis=-1).astype(np.uint8)
    codes[amax == 0] = 7
    packed = (codes[..., 0::2] << 4) | codes[..., 1::2]
    blocks = np.zeros((rows, b.shape[1]), dtype=[("absmax", "<f4"), ("qs", "u1", 32)])
    blocks["absmax"] = amax
    blocks["qs"] = packed
    deq = (amax[..., None] * NF4.astype(np.float32)[codes]).astype(np.float32)
    return blocks.tobytes(), deq.reshape(rows, -1)[:, :cols]


def bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns, round to nearest even (finite inputs)."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def write_safetensors(path: str, tensors: dict, metadata=None, lie: bool = False) -> None:
    """A safetensors file from {name: array} with struct + json only."""
    kinds = {np.float32: "F32", np.float16: "F16", np.int64: "I64", np.int32: "I32"}
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": kinds[a.dtype.type], "shape": list(a.shape),
                        "data_offsets": [off, off + len(raw) + (8 if lie else 0)]}  # fmt: skip
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path: str) -> dict:
    kinds = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "BF16": np.uint16}
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack_from("<Q", buf)
    header = json.loads(buf[8 : 8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(buf[8 + n + a : 8 + n + b], kinds[t["dtype"]]).reshape(t["shape"])
    return out


class Base(unittest.TestCase):
    def setUp(self) -> None:
        self.rng = np.random.default_rng([SEED, sum(map(ord, self.id()))])
        root = os.environ.get("VT_TEST_TMP") or None
        if root:
            os.makedirs(root, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="vtpy-", dir=root)

    def tearDown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, name: str) -> str:
        return os.path.join(self.tmp, name)

    def weights(self, rows: int, cols: int) -> np.ndarray:
        """Rows of different scales (some tiny, some large), with outliers."""
        x = self.rng.standard_normal((rows, cols)).astype(np.float32)
        x *= (10.0 ** self.rng.uniform(-3, 3, size=(rows, 1))).astype(np.float32)
        x.flat[self.rng.integers(0, x.size, size=max(1, x.size // 100))] *= 20
        return x


# ---- the binding itself ---------------------------------------------------------------------


class TestLibrary(Base):
    def test_version(self) -> None:
        want = os.environ.get("VT_PROJECT_VERSION")
        if want:
            self.assertEqual(vtstore.version(), want)
        self.assertRegex(vtstore.version(), r"^\d+\.\d+\.\d+")

    def test_struct_layout_matches_c(self) -> None:
        """sizeof/offsetof/alignment of every mirrored struct and the constants, from C."""
        cc = os.environ.get("VT_CC") or shutil.which("cc")
        inc = os.environ.get("VT_INCLUDE") or os.path.join(
            os.path.dirname(__file__), "..", "..", "include")  # fmt: skip
        if not cc:
            self.skipTest("no C compiler (set VT_CC)")
        lines = ["#include <stddef.h>", "#include <stdio.h>", "#include <vtstore/vtstore.h>",
                 "int main(void) {"]  # fmt: skip
        want = {}
        for cls in _lib.STRUCTS:
            n = cls.__name__
            lines.append(f'printf("{n} %zu %zu\\n", sizeof({n}), _Alignof({n}));')
            want[n] = f"{ctypes_sizeof(cls)} {ctypes_alignment(cls)}"
            for f in cls._fields_:
                lines.append(f'printf("{n}.{f[0]} %zu\\n", offsetof({n}, {f[0]}));')
                want[f"{n}.{f[0]}"] = str(getattr(cls, f[0]).offset)
        consts = ["VT_EFORMAT", "VT_ECORRUPT", "VT_ENOTFOUND", "VT_EUNSUPPORTED", "VT_ENONFINITE",
                  "VT_EVERSION", "VT_EEXIST", "VT_EBUDGET", "VT_ECUDA", "VT_ENODEV", "VT_ELMDB",
                  "VT_EUSAGE", "VT_ESHAPE", "VT_EFAULT", "VT_MAX_DIMS", "VT_MAX_NAME",
                  "VT_FMT_SPARSE24", "VT_STORE_FMT_RAW", "VT_IMPORT_KEEP", "VT_IMPORT_AUTO",
                  "VT_STORE_RDONLY", "VT_STORE_RDWR", "VT_STORE_CREATE", "VT_GEMV_MAX_BATCH",
                  "VT_LOC_HOST", "VT_LOC_DEVICE", "VT_IO_AUTO", "VT_IO_URING", "VT_IO_PREAD",
                  "VT_SCHEDULE_CYCLIC", "VT_SCHEDULE_RANDOM", "VT_PLACE_NONE",
                  "VT_PLACE_VRAM_PIN", "VT_PLACE_RAM_PIN", "VT_PLACE_STREAM",
                  "VT_PLACE_OVERSIZE"]  # fmt: skip
        for c in consts:
            lines.append(f'printf("{c} %lld\\n", (long long)({c}));')
            want[c] = str(getattr(_lib, c))
        for name, v in _lib.DTYPES.items():
            c = "VT_DTYPE_" + name.upper()
            lines.append(f'printf("{c} %d\\n", (int){c});')
            want[c] = str(v)
        lines.append('printf("VT_DTYPE_COUNT %d\\n", (int)VT_DTYPE_COUNT); return 0; }')
        want["VT_DTYPE_COUNT"] = str(len(_lib.DTYPES))
        src, exe = self.path("layout.c"), self.path("layout")
        with open(src, "w") as f:
            f.write("\n".join(lines) + "\n")
        r = subprocess.run([cc, "-std=c11", "-I", inc, src, "-o", exe], capture_output=True,
                           text=True)  # fmt: skip
        self.assertEqual(r.returncode, 0, f"compiling the layout probe failed:\n{r.stderr}")
        got = dict(line.split(" ", 1) for line in subprocess.check_output([exe], text=True)
                   .splitlines())  # fmt: skip
        for k, v in want.items():
            self.assertEqual(got.get(k), v, f"{k}: C says {got.get(k)}, ctypes {v}")
        # a field added to a C struct inside padding moves no offset: compare the field names
        # of the header's declarations too
        decl = header_fields(inc)
        for cls in _lib.STRUCTS:
            self.assertEqual([f[0] for f in cls._fields_], decl.get(cls.__name__),
                             f"fields of {cls.__name__}")  # fmt: skip

    def test_library_lookup(self) -> None:
        """VTSTORE_LIB pointing nowhere is an ImportError naming it (no silent fallback); a
        package installed beside lib/libvtstore.so.0 finds that library without VTSTORE_LIB."""
        pkg = os.path.dirname(vtstore.__file__)
        env = dict(os.environ, VTSTORE_LIB=self.path("nope/libvtstore.so"),
                   PYTHONPATH=os.path.dirname(pkg), PYTHONDONTWRITEBYTECODE="1")  # fmt: skip
        r = subprocess.run([sys.executable, "-c", "import vtstore"], env=env, capture_output=True,
                           text=True)  # fmt: skip
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ImportError", r.stderr)
        self.assertIn("VTSTORE_LIB: " + self.path("nope/libvtstore.so"), r.stderr)

        prefix = self.path("prefix")
        site = os.path.join(prefix, "lib", "python3", "site-packages")
        shutil.copytree(pkg, os.path.join(site, "vtstore"),
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        os.symlink(os.path.realpath(vtstore.library_path),
                   os.path.join(prefix, "lib", "libvtstore.so.0"))  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "VTSTORE_LIB"}
        env.update(PYTHONPATH=site, PYTHONDONTWRITEBYTECODE="1")
        out = subprocess.check_output(
            [sys.executable, "-c", "import vtstore; print(vtstore.library_path)"], env=env,
            text=True)  # fmt: skip
        self.assertEqual(out.strip(), os.path.join(prefix, "lib", "libvtstore.so.0"))


def header_fields(inc: str) -> dict:
    """{struct name: [field names]} of the `typedef struct NAME { ... } NAME;` declarations in
    include/vtstore/*.h (plain declarations, comma lists, arrays, pointers)."""
    out = {}
    d = os.path.join(inc, "vtstore")
    for fn in sorted(os.listdir(d)):
        with open(os.path.join(d, fn)) as f:
            text = re.sub(r"/\*.*?\*/|//[^\n]*", "", f.read(), flags=re.S)
        for m in re.finditer(r"typedef\s+struct\s+(\w+)\s*\{(.*?)\}\s*\1\s*;", text, re.S):
            names = []
            for decl in m.group(2).split(";"):
                decl = re.sub(r"\[[^]]*\]", "", decl).strip()
                if not decl:
                    continue
                first, *rest = decl.split(",")
                names.append(re.findall(r"\w+", first)[-1])
                names += [re.findall(r"\w+", r)[-1] for r in rest]
            out[m.group(1)] = names
    return out


def ctypes_sizeof(cls) -> int:
    import ctypes

    return ctypes.sizeof(cls)


def ctypes_alignment(cls) -> int:
    import ctypes

    return ctypes.alignment(cls)


# ---- quantize / dequantize ------------------------------------------------------------------


class TestQuant(Base):
    def test_format_names(self) -> None:
        names = vtstore.formats()
        self.assertIn("q8_0", names)
        self.assertIn("nf4", names)
        from vtstore import _quant

        for i, n in enumerate(names):
            self.assertEqual(_quant.format_code(n), i)
            self.assertEqual(_quant.format_name(i), n)
        self.assertEqual(_quant.format_code("nf4+2:4"), 9 | 0x100)
        self.assertEqual(_quant.format_name(9 | 0x100), "nf4+2:4")
        for bad in ("q9", "nf4_dq+2:4", "", "nf4\0", "q8_0+3:4"):
            with self.assertRaises(ValueError, msg=bad):
                vtstore.quantize(np.ones((1, 32), np.float32), bad)
        self.assertEqual(vtstore.format_info("q8_0")["block_bytes"], 34)
        # a 2:4-sparse format: its own name and bits (it said q8_0, 8.5 bits)
        sp, dense = vtstore.format_info("q8_0+2:4"), vtstore.format_info("q8_0")
        self.assertEqual((sp["name"], sp["sparse24"], dense["sparse24"]), ("q8_0+2:4", True, False))
        q = vtstore.quantize(np.ones((1, 4096), np.float32), "q8_0+2:4")
        self.assertEqual(sp["bits_per_weight"], q.size * 8 / 4096)
        self.assertLess(sp["bits_per_weight"], dense["bits_per_weight"])

    def test_q8_0_matches_ggml_reference(self) -> None:
        for rows, cols in ((7, 100), (1, 32), (33, 517)):
            x = self.weights(rows, cols)
            x[0, :40] = 0  # an all-zero block
            q = vtstore.quantize(x, "q8_0")
            want_q, want_x = ref_q8_0(x)
            self.assertEqual(q.dtype, np.uint8)
            self.assertEqual(q.tobytes(), want_q, f"q8_0 bytes {rows}x{cols}")
            y = vtstore.dequantize(q, "q8_0", x.shape)
            self.assertEqual(y.dtype, np.float32)
            np.testing.assert_array_equal(y, want_x)
            # N-D: the rows x cols view of quant.h
            x3 = x.reshape(1, rows, cols)
            self.assertEqual(vtstore.quantize(x3, "q8_0").tobytes(), want_q)
            self.assertEqual(vtstore.dequantize(bytes(q), "q8_0", x3.shape).shape, x3.shape)

    def test_nf4_matches_bitsandbytes_reference(self) -> None:
        for rows, cols in ((5, 64), (9, 300), (2, 1000)):
            x = self.weights(rows, cols)
            x[1, 64:128] = 0
            q = vtstore.quantize(x, "nf4")
            want_q, want_x = ref_nf4(x)
            self.assertEqual(q.tobytes(), want_q, f"nf4 bytes {rows}x{cols}")
            np.testing.assert_array_equal(vtstore.dequantize(q, "nf4", x.shape), want_x)

    def test_nf4_table_is_the_librarys(self) -> None:
        import ctypes

        table = (ctypes.c_float * 16).in_dll(_lib.lib, "vt_nf4_values")
        np.testing.assert_array_equal(np.array(table[:], np.float32), NF4.astype(np.float32))

    def test_nvfp4_tensor_scale(self) -> None:
        # one scale of values: blocks far below the tensor's amax underflow their e4m3 scale
        x = self.rng.standard_normal((4, 64)).astype(np.float32)
        ts = vtstore.tensor_scale(x, "nvfp4")
        self.assertEqual(np.float32(ts), np.float32(np.abs(x).max()) / np.float32(6 * 448))
        q = vtstore.quantize(x, "nvfp4")
        self.assertEqual(q.tobytes(), vtstore.quantize(x, "nvfp4", tensor_scale=ts).tobytes())
        with self.assertRaises(ValueError):
            vtstore.dequantize(q, "nvfp4", x.shape)  # needs the scale
        y = vtstore.dequantize(q, "nvfp4", x.shape, tensor_scale=ts)
        y2 = vtstore.dequantize(q, "nvfp4", x.shape, tensor_scale=2 * ts)
        np.testing.assert_array_equal(y2, 2 * y)  # the scale is used, not the default 1
        # each block of 16: within half the largest E2M1 step (2 at 4..6) of its scale, whose
        # E4M3 rounding adds at most 1/16 of the block's amax
        blk = np.abs(x).reshape(4, 4, 16).max(axis=2, keepdims=True)
        err = np.abs(x - y).reshape(4, 4, 16)
        self.assertTrue(np.all(err <= blk / 6 * 1.07 + 1e-30), float((err / blk).max()))

    def test_awq_channel_scale(self) -> None:
        rows, cols = 3, 256
        x = self.weights(rows, cols)
        s = self.rng.uniform(0.5, 2.0, cols).astype(np.float32)
        with self.assertRaises(ValueError):
            vtstore.quantize(x, "awq_int4")  # no scales
        with self.assertRaises(ValueError):
            vtstore.quantize(x, "awq_int4", channel_scale=s[:-1])
        with self.assertRaises(vtstore.Error) as cm:
            vtstore.quantize(x, "awq_int4", channel_scale=np.where(np.arange(cols) == 5, -1, s))
        self.assertEqual(cm.exception.code, -errno.EINVAL)
        self.assertIn("column 5", str(cm.exception))
        q = vtstore.quantize(x, "awq_int4", channel_scale=s)
        y = vtstore.dequantize(q, "awq_int4", x.shape, channel_scale=s)
        # per group of 128 of w' = w * s: one step d = (max - min) / 15 at most, back in w units
        ws = (x * s).reshape(rows, 2, 128)
        # (the range taken with 0 in it, d rounded to f16: 15 steps off by 2^-11 each, < 5%)
        d = (np.maximum(ws.max(axis=2), 0) - np.minimum(ws.min(axis=2), 0)) / 15 * 1.05
        bound = np.repeat(d, 128, axis=1) / s
        self.assertTrue(np.all(np.abs(x - y) <= bound + 1e-30))
        # another format takes no channel scales: refused, not ignored
        with self.assertRaises(ValueError) as cm:
            vtstore.quantize(x, "q8_0", channel_scale=s)
        self.assertIn("awq_int4", str(cm.exception))

    def test_thread_counts_fit_an_int(self) -> None:
        x = self.weights(2, 64)
        q = vtstore.quantize(x, "q8_0", nthreads=2)
        for bad in (-1, 2**32 + 1, 2**31, True, 1.5):
            with self.assertRaises(ValueError, msg=repr(bad)):
                vtstore.quantize(x, "q8_0", nthreads=bad)
            with self.assertRaises(ValueError, msg=repr(bad)):
                vtstore.dequantize(q, "q8_0", x.shape, nthreads=bad)
        np.testing.assert_array_equal(vtstore.dequantize(q, "q8_0", x.shape, nthreads=2**31 - 1),
                                      vtstore.dequantize(q, "q8_0", x.shape))

    def test_errors(self) -> None:
        x = self.weights(3, 64)
        x[1, 5] = np.nan
        with self.assertRaises(vtstore.Error) as cm:
            vtstore.quantize(x, "q8_0")
        self.assertEqual(cm.exception.code, vtstore.VT_ENONFINITE)
        self.assertIn("row 1, column 5", str(cm.exception))
        with self.assertRaises(vtstore.Error) as cm:
            vtstore.quantize(np.array([[1.0, 70000.0]], np.float32), "f16")
        self.assertEqual(cm.exception.code, ERANGE)
        self.assertIn("out of the format's range", str(cm.exception))
        self.assertIn("column 1", cm.exception.detail)
        with self.assertRaises(vtstore.Error) as cm:  # f64 beyond f32
            vtstore.quantize(np.array([[1e300]]), "q8_0")
        self.assertEqual(cm.exception.code, ERANGE)
        with self.assertRaises(ValueError):
            vtstore.quantize(np.ones((2, 2), np.int32), "q8_0")
        with self.assertRaises(ValueError):
            vtstore.dequantize(b"\0" * 33, "q8_0", (1, 32))  # 34 needed

    def test_shapes_are_ints_that_fit(self) -> None:
        """A shape is ints, or one int for 1-D as numpy takes it. (8.7, 64) used to be cut to
        (8, 64), which matched the bytes and was returned; 2^64 + 8 rows went to C modulo 2^64
        as 8, so gemv returned 8 values for a matrix of 2^64 + 8 rows."""
        w = self.weights(8, 64)
        q = vtstore.quantize(w, "q8_0")
        ref = vtstore.dequantize(q, "q8_0", (8, 64))
        for n in (512, np.int64(512)):
            np.testing.assert_array_equal(vtstore.dequantize(q, "q8_0", n), ref.reshape(512))
        for bad in ((8.7, 64), (8, 64.0), (True, 512), 512.0):
            with self.assertRaises(TypeError, msg=repr(bad)):
                vtstore.dequantize(q, "q8_0", bad)
        x = self.rng.standard_normal(64).astype(np.float32)
        for shape in ((2**64 + 8, 64), (2**32, 2**32 + 8, 64)):
            with self.assertRaises(ValueError, msg=repr(shape)):
                vtstore.gemv(q, "q8_0", shape, x)
            with self.assertRaises(ValueError, msg=repr(shape)):
                vtstore.dequantize(q, "q8_0", shape)

    def test_gemv(self) -> None:
        rows, cols = 40, 320
        w = self.weights(rows, cols)
        q = vtstore.quantize(w, "q4_0")
        wd = vtstore.dequantize(q, "q4_0", w.shape).astype(np.float64)
        for shape in ((cols,), (3, cols), (11, cols)):  # 11: above VT_GEMV_MAX_BATCH, vt_gemm
            x = self.rng.standard_normal(shape).astype(np.float32)
            y = vtstore.gemv(q, "q4_0", w.shape, x)
            ref = x.astype(np.float64) @ wd.T
            self.assertEqual(y.shape, ref.shape)
            scale = np.abs(x).astype(np.float64) @ np.abs(wd).T
            self.assertTrue(np.all(np.abs(y - ref) <= 1e-4 * scale + 1e-30),
                            float(np.max(np.abs(y - ref) / scale)))  # fmt: skip
        with self.assertRaises(ValueError):
            vtstore.gemv(q, "q4_0", w.shape, np.ones(cols + 1, np.float32))


# ---- stores ---------------------------------------------------------------------------------


class TestStore(Base):
    def test_put_read_f32_exact(self) -> None:
        x = self.weights(15, 7).reshape(3, 5, 7)
        with vtstore.open(self.path("s"), "c") as s:
            info = s.put("blk.0.w", x, format="f32", rows_per_chunk=4)
            self.assertEqual(info["format"], "f32")
            self.assertEqual(info["dtype"], "f32")
            self.assertEqual(info["shape"], (3, 5, 7))
            self.assertEqual((info["rows"], info["cols"], info["chunks"]), (15, 7, 4))
            self.assertEqual(info["sqnr_db"], math.inf)
            y = s["blk.0.w"]
            self.assertEqual(y.shape, x.shape)
            np.testing.assert_array_equal(y, x)
            np.testing.assert_array_equal(s.read("blk.0.w", rows=slice(3, 11)),
                                          x.reshape(15, 7)[3:11])  # fmt: skip
            np.testing.assert_array_equal(s.read("blk.0.w", rows=-1), x.reshape(15, 7)[-1])
            f16 = s.read("blk.0.w", dtype="f16")
            self.assertEqual(f16.dtype, np.float16)
            np.testing.assert_array_equal(f16, x.astype(np.float16))
            np.testing.assert_array_equal(s.read("blk.0.w", dtype="bf16"), bf16_bits(x))
            self.assertEqual(s.read_raw("blk.0.w").tobytes(), x.tobytes())
            self.assertEqual(s.names(), ["blk.0.w"])
            self.assertEqual(list(s), ["blk.0.w"])
            self.assertEqual(len(s), 1)
            self.assertIn("blk.0.w", s)
            self.assertNotIn("blk.1.w", s)
            # names no tensor can have are simply not in it (they raised ValueError)
            self.assertNotIn("a\0b", s)
            self.assertNotIn("x" * 300, s)
        with vtstore.open(self.path("s")) as s:  # read-only, a new handle
            np.testing.assert_array_equal(s["blk.0.w"], x)
            with self.assertRaises(vtstore.Error) as cm:
                s.put("y", x)
            self.assertEqual(cm.exception.code, -errno.EBADF)  # a read-only handle

    def test_put_q8_0_matches_reference(self) -> None:
        x = self.weights(50, 96)
        want_q, want_x = ref_q8_0(x)
        with vtstore.open(self.path("s"), "c", zstd_level=3) as s:
            info = s.put("w", x, "q8_0", rows_per_chunk=16)
            self.assertEqual(info["chunks"], 4)
            self.assertEqual(s.read_raw("w").tobytes(), want_q)
            np.testing.assert_array_equal(s["w"], want_x)
            e = (x.astype(np.float64) - want_x).ravel()
            sqnr = 10 * math.log10(float(x.astype(np.float64).ravel() @ x.ravel()) / float(e @ e))
            self.assertAlmostEqual(info["sqnr_db"], sqnr, places=6)
            self.assertEqual(info["max_err"], float(np.abs(e).max()))
            self.assertTrue(s.verify()["ok"])

    def test_put_nvfp4_awq_raw(self) -> None:
        x = self.weights(8, 128)
        sc = self.rng.uniform(0.5, 2, 128).astype(np.float32)
        ids = self.rng.integers(-(2**40), 2**40, size=(4, 6))
        with vtstore.open(self.path("s"), "c") as s:
            ts = vtstore.tensor_scale(x)
            s.put("n", x, "nvfp4")
            s.put("a", x, "awq_int4", channel_scale=sc)
            s.put("ids", ids, "raw")
            self.assertEqual(s.info("n")["tensor_scale"], np.float32(ts))
            np.testing.assert_array_equal(
                s["n"], vtstore.dequantize(vtstore.quantize(x, "nvfp4"), "nvfp4", x.shape,
                                           tensor_scale=ts))  # fmt: skip
            p = s.quant_params("a")
            np.testing.assert_array_equal(p["channel_scale"], sc)
            np.testing.assert_array_equal(
                s["a"], vtstore.dequantize(vtstore.quantize(x, "awq_int4", channel_scale=sc),
                                           "awq_int4", x.shape, channel_scale=sc))  # fmt: skip
            info = s.info("ids")
            self.assertEqual((info["format"], info["dtype"]), ("raw", "i64"))
            np.testing.assert_array_equal(s.read_raw("ids").view("<i8").reshape(4, 6), ids)
            np.testing.assert_array_equal(s["ids"], ids.astype(np.float32))
            y = s.gemv("a", np.ones(128, np.float32))
            np.testing.assert_allclose(y, s["a"].astype(np.float64).sum(axis=1), rtol=1e-4,
                                       atol=1e-4 * np.abs(s["a"]).sum(axis=1).max())  # fmt: skip

    def test_writes_are_all_or_nothing(self) -> None:
        x = self.weights(20, 64)
        bad = x.copy()
        bad[17, 3] = np.inf
        with vtstore.open(self.path("s"), "c", chunk_target_bytes=4096) as s:
            s.put("keep", x, "f32")
            before = s.read_raw("keep")
            with self.assertRaises(vtstore.Error) as cm:
                with s.writer() as w:
                    w.put("new", x, "q4_0")
                    w.put_meta("k", b"v")
                    w.put("keep", bad, "q8_0", rows_per_chunk=4)  # would replace "keep"
            self.assertEqual(cm.exception.code, vtstore.VT_ENONFINITE)
            self.assertIn("tensor keep", str(cm.exception))
            self.assertIn("row 17, column 3", str(cm.exception))  # of the tensor
            with self.assertRaises(RuntimeError):
                with s.writer() as w:
                    w.put("new", x, "q4_0")
                    raise RuntimeError("caller's error")
            self.assertEqual(s.names(), ["keep"])
            self.assertEqual(s.meta_keys(), [])
            self.assertEqual(s.read_raw("keep").tobytes(), before.tobytes())
            self.assertEqual(s.info("keep")["format"], "f32")
            w = s.writer()
            w.put("new", x, "q4_0")
            with self.assertRaises(ValueError):
                w.put("bad name\0", x)
            with self.assertRaises(vtstore.Error):  # the writer was aborted
                w.put("new2", x)
            self.assertNotIn("new", s)
            with s.writer() as w:  # a new writer works
                w.put("new", x, "q4_0")
                w.put_meta("k", "v")
            self.assertEqual(s.names(), ["keep", "new"])
            self.assertEqual(s.meta("k"), b"v")

    def test_errors(self) -> None:
        with self.assertRaises(vtstore.Error) as cm:
            vtstore.open(self.path("missing"))
        self.assertEqual(cm.exception.code, -errno.ENOENT)
        os.makedirs(self.path("empty"))
        with self.assertRaises(vtstore.Error) as cm:
            vtstore.open(self.path("empty"))
        self.assertEqual(cm.exception.code, vtstore.VT_EFORMAT)
        self.assertIn("not a vtstore store", str(cm.exception))
        with open(self.path("file"), "w") as f:
            f.write("x")
        with self.assertRaises(vtstore.Error):
            vtstore.open(self.path("file"))
        with self.assertRaises(ValueError):
            vtstore.open(self.path("s"), "rw")
        s = vtstore.open(self.path("s"), "c")
        s.put("big", np.array([[1.0, 1e5]], np.float32), "f32")
        with self.assertRaises(KeyError) as cm:
            s.read("nope")
        self.assertIsInstance(cm.exception, vtstore.NotFoundError)
        self.assertEqual(cm.exception.code, vtstore.VT_ENOTFOUND)
        self.assertIn("nope", str(cm.exception))
        with self.assertRaises(KeyError):
            s.info("nope")
        with self.assertRaises(KeyError):
            s.meta("nope")
        with self.assertRaises(ValueError):
            s.put("x", np.ones((1, 32), np.float32), "q5_9")
        with self.assertRaises(vtstore.Error) as cm:
            s.read("big", dtype="f16")
        self.assertEqual(cm.exception.code, ERANGE)
        self.assertIn("column 1", str(cm.exception))
        with self.assertRaises(ValueError):
            s.read("big", dtype="f64")
        with self.assertRaises(IndexError):
            s.read("big", rows=1)
        s.close()
        s.close()
        with self.assertRaises(ValueError):
            s.names()

    def test_patterns_and_rows_per_chunk_are_checked(self) -> None:
        """A NUL in a glob or prefix used to cut it short in C, silently selecting other
        tensors (export_safetensors(pattern="a\\0b") exported every a*); rows_per_chunk=-1
        used to be recorded as 2^64 - 1, which made `vtstore get` of a row range fail."""
        with vtstore.open(self.path("s"), "c") as s:
            s.put("a", np.ones((2, 32), np.float32), "f32")
            s.put("ab", np.ones((2, 32), np.float32), "f32")
            for bad in ("a\0b", "\0"):
                with self.assertRaises(ValueError):
                    s.names(bad)
                with self.assertRaises(ValueError):
                    s.meta_keys(bad)
                with self.assertRaises(ValueError):
                    s.export_safetensors(self.path("x.safetensors"), pattern=bad)
            self.assertFalse(os.path.exists(self.path("x.safetensors")))
            with self.assertRaises(TypeError):
                s.names(b"a*")
            self.assertEqual(s.names("a*"), ["a", "ab"])
            self.assertEqual(s.names(""), ["a", "ab"])
            for rpc, exc in ((-1, ValueError), (2**64, ValueError), (1.5, TypeError),
                             (True, TypeError)):  # fmt: skip
                with self.assertRaises(exc):
                    s.put("r", np.ones((4, 32), np.float32), "f32", rows_per_chunk=rpc)
            self.assertNotIn("r", s)
            s.put("r", np.ones((4, 32), np.float32), "f32", rows_per_chunk=np.int64(2))
            self.assertEqual(s.info("r")["chunks"], 2)

    def test_paths_and_options_are_checked(self) -> None:
        """A NUL in a path used to cut it short in C: open created, export wrote and import read
        another file. data_dirs="dd" was taken char by char (data dirs "d" and "d"), and
        store options out of range wrapped (chunk_target_bytes=-1 became 2^64 - 1)."""
        w = self.weights(4, 64)
        p = self.path("s")
        with self.assertRaises(ValueError):
            vtstore.open(p + "\0.old", "c")
        self.assertFalse(os.path.exists(p))
        out = self.path("o.safetensors")
        with vtstore.open(p, "c") as s:
            s.put("w", w, "f32")
            with self.assertRaises(ValueError):
                s.export_safetensors(out + "\0.tmp")
            self.assertFalse(os.path.exists(out))
            s.export_safetensors(out)
            with self.assertRaises(ValueError):
                s.import_file(out + "\0.bak", awq_stats=None)
            with self.assertRaises(ValueError):
                s.import_file(out, format="awq_int4", awq_stats=self.path("st\0.bin"))
        with self.assertRaises(ValueError):
            vtstore.import_file(self.path("s2"), out + "\0.bak")
        self.assertFalse(os.path.exists(self.path("s2")))  # created, then discarded
        cwd = os.getcwd()
        os.chdir(self.tmp)  # where "dd" made its data dir "d" before
        try:
            for dirs in ("dd", self.path("dd").encode(), pathlib.Path("dd")):
                with self.assertRaises(TypeError, msg=repr(dirs)):
                    vtstore.open(self.path("s3"), "c", data_dirs=dirs)
        finally:
            os.chdir(cwd)
        self.assertEqual(sorted(os.listdir(self.tmp)), ["o.safetensors", "s"])
        with self.assertRaises(ValueError):
            vtstore.open(self.path("s4"), "c", data_dirs=[self.path("d") + "\0x"])
        for kw in ({"chunk_target_bytes": -1}, {"shard_cap_bytes": -1},
                   {"zstd_level": 2**32 + 3}, {"chunk_target_bytes": 2**64}):  # fmt: skip
            with self.assertRaises(ValueError, msg=repr(kw)):
                vtstore.open(self.path("s5"), "c", **kw)
        with self.assertRaises(TypeError):
            vtstore.open(self.path("s5"), "c", zstd_level=True)
        self.assertFalse(os.path.exists(self.path("s5")))
        with vtstore.open(self.path("s6"), "c", chunk_target_bytes=np.int64(512)) as s:
            self.assertEqual(s.put("w", w, "f32")["chunks"], 2)  # 2 rows of 256 bytes each

    def test_close_waits_for_calls_in_other_threads(self) -> None:
        """close() in one thread while another thread is inside a call on the store freed the
        handle under that call (the process crashed). Now close() waits for it, and later
        calls raise ValueError. Run in a child process, so that a crash is a failure here."""
        src = self.path("m.safetensors")
        write_safetensors(src, {f"w{i}": self.weights(64, 256) for i in range(4)})
        code = f"""
import threading, time, vtstore
s = vtstore.open({self.path("s")!r}, "c")
inside, closed, seen = threading.Event(), threading.Event(), []
def progress(p):
    inside.set()
    time.sleep(0.05)  # close() is called meanwhile: it must not return before the import
    seen.append("closed during the import" if closed.is_set() else "open")
def closer():
    inside.wait()
    s.close()
    closed.set()
t = threading.Thread(target=closer)
t.start()
sm = s.import_file({src!r}, "q8_0", progress=progress)
t.join()
try:
    s.names()
except ValueError:
    seen.append("ValueError")
print(sm["tensors"], sorted(set(seen)))
with vtstore.open({self.path("s")!r}) as r:
    print(len(r.names()))
"""
        env = dict(os.environ, PYTHONFAULTHANDLER="1")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=120, env=env)  # fmt: skip
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertEqual(r.stdout.split("\n")[:2],
                         ["4 ['ValueError', 'open']", "4"])  # fmt: skip

    def test_verify_finds_corruption(self) -> None:
        x = self.weights(4, 256)
        with vtstore.open(self.path("s"), "c") as s:
            s.put("w", x, "q8_0")
            self.assertEqual(s.verify()["problems"], [])
        shard = os.path.join(self.path("s"), "data", "shard-000001.vts")
        with open(shard, "r+b") as f:
            f.seek(4096 + 100)
            b = f.read(1)
            f.seek(4096 + 100)
            f.write(bytes([b[0] ^ 0x40]))
        with vtstore.open(self.path("s")) as s:
            rep = s.verify()
            self.assertFalse(rep["ok"])
            self.assertEqual(rep["problems"][0]["tensor"], "w")
            self.assertEqual(rep["problems"][0]["code"], vtstore.VT_ECORRUPT)
            with self.assertRaises(vtstore.Error) as cm:
                s.read("w")
            self.assertEqual(cm.exception.code, vtstore.VT_ECORRUPT)
            self.assertIn("checksum", str(cm.exception))

    def test_typed_meta(self) -> None:
        s32 = struct.pack("<I", 8) + struct.pack("<Q", 5) + b"hello"
        arr = struct.pack("<IIQ", 9, 6, 3) + struct.pack("<3f", 1.5, -2.0, 0.25)
        strs = struct.pack("<IIQ", 9, 8, 2) + struct.pack("<Q", 1) + b"a"
        strs += struct.pack("<Q", 2) + b"bc"
        with vtstore.open(self.path("s"), "c") as s:
            with s.writer() as w:
                w.put_meta("u32", struct.pack("<II", 4, 7))
                w.put_meta("str", s32)
                w.put_meta("f32s", arr)
                w.put_meta("strs", strs)
                w.put_meta("opaque", b"\xff\xff\xff\xff")
            self.assertEqual(s.meta("u32"), 7)
            self.assertEqual(s.meta("str"), "hello")
            np.testing.assert_array_equal(s.meta("f32s"), np.array([1.5, -2, 0.25], np.float32))
            self.assertEqual(s.meta("strs"), ["a", "bc"])
            self.assertEqual(s.meta("opaque"), b"\xff\xff\xff\xff")
            self.assertEqual(s.meta("u32", raw=True), struct.pack("<II", 4, 7))
            self.assertEqual(s.meta_keys(), ["f32s", "opaque", "str", "strs", "u32"])
            self.assertEqual(s.meta_keys("st"), ["str", "strs"])

    def test_put_meta_takes_bytes_or_str(self) -> None:
        """put_meta(key, 5) used to store bytes(5), five zero bytes, which meta() then read back
        as 0. Now a TypeError, and it aborts the writer like any error in a Writer method (a
        bad key did not abort it either)."""
        with vtstore.open(self.path("s"), "c") as s:
            for key, value, exc in (("n", 5, TypeError), ("f", 1.5, TypeError),
                                    ("a\0b", b"x", ValueError)):  # fmt: skip
                wr = s.writer()
                wr.put_meta("first", b"kept only at commit")
                with self.assertRaises(exc, msg=repr(value)):
                    wr.put_meta(key, value)
                with self.assertRaises(vtstore.Error):  # aborted
                    wr.put_meta("later", b"x")
                self.assertEqual(s.meta_keys(), [])
            v = np.arange(6, dtype="<u2").reshape(2, 3).T  # any bytes-like, in C order
            with s.writer() as wr:
                wr.put_meta("v", v)
                wr.put_meta("t", "text")
            self.assertEqual(s.meta("v", raw=True), v.tobytes())
            self.assertEqual(s.meta("t", raw=True), b"text")

    def test_remove(self) -> None:
        with vtstore.open(self.path("s"), "c") as s:
            for n in ("a.w", "a.b", "c"):
                s.put(n, np.ones((2, 32), np.float32), "q8_0")
            self.assertEqual(s.remove("a.*"), 2)
            self.assertEqual(s.names(), ["c"])


    def test_gc_and_upgrade(self) -> None:
        with vtstore.open(self.path("g"), "c") as s:
            for n in ("a", "b"):
                s.put(n, np.ones((64, 32), np.float32), "q8_0")
            self.assertEqual(s.remove("a"), 1)
            g = s.gc()
            self.assertEqual(g["files_removed"], 1)  # a's shard (each put commits its own)
            self.assertLess(g["bytes_after"], g["bytes_before"])
            self.assertEqual(s.upgrade(), {"from_version": 2, "to_version": 2, "chunks": 0,
                                           "bytes_read": 0})  # fmt: skip
            self.assertTrue(s.verify()["ok"])
        src = os.path.join(os.path.dirname(__file__), "..", "store", "data", "store_v1.tar.gz")
        with tarfile.open(src) as t:
            t.extractall(self.path("v1x"))
        with vtstore.open(os.path.join(self.path("v1x"), "v1"), "w") as s:
            u = s.upgrade()
            self.assertEqual((u["from_version"], u["to_version"], u["chunks"]), (1, 2, 7))
            self.assertTrue(s.verify()["ok"])
        with vtstore.open(self.path("g")) as s, self.assertRaises(vtstore.Error):
            s.upgrade()  # read-only


class TestImport(Base):
    def test_import_safetensors(self) -> None:
        w = self.weights(6, 128)
        norm = self.rng.standard_normal(128).astype(np.float16)
        ids = self.rng.integers(-(2**40), 2**40, size=5)
        src = self.path("m.safetensors")
        write_safetensors(src, {"model.w": w, "model.norm": norm, "ids": ids},
                          metadata={"format": "pt"})  # fmt: skip
        seen = []
        sm = vtstore.import_file(self.path("keep"), src, progress=lambda p: seen.append(p))
        self.assertEqual((sm["tensors"], sm["files"]), (3, 1))
        self.assertEqual(sorted(sm["names"]), ["ids", "model.norm", "model.w"])
        self.assertTrue(seen and seen[-1]["tensors_done"] == 3)
        with vtstore.open(self.path("keep")) as s:
            np.testing.assert_array_equal(s["model.w"], w)
            self.assertEqual(s.read_raw("model.w").tobytes(), w.tobytes())
            self.assertEqual(s.info("model.norm")["format"], "f16")
            np.testing.assert_array_equal(s["model.norm"], norm.astype(np.float32))
            np.testing.assert_array_equal(s.read_raw("ids").view("<i8"), ids)
            self.assertEqual(s.info("ids")["format"], "raw")
            self.assertEqual(s.meta("safetensors.format"), "pt")

        sm = vtstore.import_file(self.path("q"), src, "q8_0", {"model.w*": "nf4"})
        self.assertEqual(sm["quantized"], 1)
        with vtstore.open(self.path("q")) as s:
            self.assertEqual(s.info("model.w")["format"], "nf4")
            self.assertEqual(s.read_raw("model.w").tobytes(), ref_nf4(w)[0])
            np.testing.assert_array_equal(s["model.w"], ref_nf4(w)[1])
        vtstore.import_file(self.path("q8"), src, "q8_0")
        with vtstore.open(self.path("q8")) as s:
            np.testing.assert_array_equal(s["model.w"], ref_q8_0(w)[1])
            self.assertEqual(s.info("model.norm")["format"], "f16")  # 1-D: kept

    def test_import_errors_leave_the_store_unchanged(self) -> None:
        w = self.weights(4, 64)
        good, lying, nan = self.path("g.safetensors"), self.path("l.safetensors"), self.path(
            "n.safetensors")  # fmt: skip
        write_safetensors(good, {"w": w})
        write_safetensors(lying, {"w": w * 2}, lie=True)
        bad = w.copy()
        bad[2, 9] = np.nan
        write_safetensors(nan, {"w": bad, "v": w})
        vtstore.import_file(self.path("s"), good)
        with self.assertRaises(vtstore.Error) as cm:
            vtstore.import_file(self.path("s"), lying)
        self.assertEqual(cm.exception.code, vtstore.VT_EFORMAT)
        self.assertIn("l.safetensors", str(cm.exception))
        with self.assertRaises(vtstore.Error) as cm:
            vtstore.import_file(self.path("s"), nan, "q8_0")
        self.assertEqual(cm.exception.code, vtstore.VT_ENONFINITE)
        with self.assertRaises(vtstore.Error) as cm:  # cancelled by the progress callback
            vtstore.import_file(self.path("s"), good, "q4_0", progress=lambda p: True)
        self.assertEqual(cm.exception.code, -errno.ECANCELED)

        def boom(p):
            raise ZeroDivisionError("from the callback")

        with self.assertRaises(ZeroDivisionError):
            vtstore.import_file(self.path("s"), good, "q4_0", progress=boom)
        with self.assertRaises(ValueError):
            vtstore.import_file(self.path("s"), good, rules={"*": "q3"})
        with vtstore.open(self.path("s")) as s:
            self.assertEqual(s.names(), ["w"])
            self.assertEqual(s.info("w")["format"], "f32")
            np.testing.assert_array_equal(s["w"], w)

    def test_failed_import_leaves_no_new_store(self) -> None:
        """A failed import_file into a path that had no store leaves nothing behind there (it
        used to leave an empty store); an empty directory stays an empty directory; a store
        that existed keeps its tensors."""
        bad = self.path("bad.safetensors")
        with open(bad, "wb") as f:
            f.write(b"not a safetensors file")
        for src in (bad, self.path("missing.safetensors")):
            with self.assertRaises(vtstore.Error):
                vtstore.import_file(self.path("new"), src)
            self.assertFalse(os.path.lexists(self.path("new")), src)
        os.makedirs(self.path("empty"))
        with self.assertRaises(vtstore.Error):
            vtstore.import_file(self.path("empty"), bad)
        self.assertEqual(os.listdir(self.path("empty")), [])
        with vtstore.open(self.path("s"), "c") as s:
            s.put("w", np.ones((2, 32), np.float32), "f32")
        with self.assertRaises(vtstore.Error):
            vtstore.import_file(self.path("s"), bad)
        with vtstore.open(self.path("s")) as s:
            self.assertEqual(s.names(), ["w"])

    def test_discard_new(self) -> None:
        """Store.discard_new removes a store its handle created while it holds nothing, and
        keeps anything else untouched."""
        with vtstore.open(self.path("n"), "c") as s:
            self.assertTrue(s.discard_new())
            with self.assertRaises(vtstore.Error):
                s.put("w", np.ones((2, 32), np.float32), "f32")  # only close() is left
        self.assertFalse(os.path.lexists(self.path("n")))
        with vtstore.open(self.path("k"), "c") as s:
            s.put("w", np.ones((2, 32), np.float32), "f32")
            self.assertFalse(s.discard_new())
        with vtstore.open(self.path("k"), "c") as s:  # existed before this handle
            self.assertFalse(s.discard_new())
            self.assertEqual(s.names(), ["w"])

    def test_export_safetensors(self) -> None:
        x = self.weights(9, 64)
        with vtstore.open(self.path("s"), "c") as s:
            s.put("a", x, "f32")
            s.put("b", x, "q8_0")
            s.export_safetensors(self.path("out.safetensors"))
            s.export_safetensors(self.path("b16.safetensors"), pattern="b", dtype="bf16")
        t = read_safetensors(self.path("out.safetensors"))
        np.testing.assert_array_equal(t["a"], x)
        np.testing.assert_array_equal(t["b"], ref_q8_0(x)[1])
        t = read_safetensors(self.path("b16.safetensors"))
        self.assertEqual(list(t), ["b"])
        np.testing.assert_array_equal(t["b"], bf16_bits(ref_q8_0(x)[1]))

# ---- the streamer ---------------------------------------------------------------------------


class TestStreamer(Base):
    """vtstore.Streamer (tier.h) over stores made here, with budgets smaller than the model so
    that tensors go through the ring. Every value a handle gives is compared with Store.read
    (or read_raw / quant_params / gemv) of the same tensor: bit for bit."""

    FORMATS = ("q8_0", "nf4", "f32", "nf4+2:4", "awq_int4", "nvfp4")

    def make_store(self, path: str) -> dict:
        """Two layers of one tensor per format (q8_0 in 4 chunks), in schedule order; returns
        {name: channel_scale or None}."""
        names = {}
        with vtstore.open(path, "c") as s:
            for layer in range(2):
                for i, fmt in enumerate(self.FORMATS):
                    x = self.weights(16 if fmt == "f32" else 64, 256)
                    sc = None
                    if fmt == "awq_int4":
                        sc = self.rng.uniform(0.5, 2.0, 256).astype(np.float32)
                    name = f"blk.{layer}.{i}.{fmt}"
                    s.put(name, x, fmt, channel_scale=sc, rows_per_chunk=16 if i == 0 else 0)
                    names[name] = sc
        return names

    def check_handle(self, s, h, sc) -> None:
        """Everything @p h gives equals the store's own reads of that tensor."""
        n = h.name
        info = s.info(n)
        self.assertEqual((h.format, h.rows, h.cols), (info["format"], info["rows"], info["cols"]))
        self.assertEqual((h.row0, h.total_rows, h.shape), (0, info["rows"], (h.rows, h.cols)))
        self.assertEqual(h.location, "host")
        self.assertEqual(np.float32(h.tensor_scale), np.float32(info["tensor_scale"]))
        want = s.read(n).reshape(h.rows, h.cols)
        got = h.dequantize()
        self.assertEqual(got.dtype, np.float32)
        self.assertEqual(got.tobytes(), want.tobytes(), n)  # bit-exact, -0.0 included
        # a numpy dtype as Store.read takes it (it was a ValueError here)
        self.assertEqual(h.dequantize(np.float32).tobytes(), want.tobytes(), n)
        # f16 where it holds every value (weights() gives rows up to ~1e5: Store.read refuses
        # f16 beyond 65504), else bf16
        half = "f16" if float(np.max(np.abs(want), initial=0.0)) <= 65504.0 else "bf16"
        self.assertEqual(h.dequantize(half).tobytes(), s.read(n, dtype=half).tobytes(), n)
        raw = h.raw()
        self.assertEqual(raw.tobytes(), s.read_raw(n).tobytes(), n)
        self.assertEqual(h.bytes, raw.size)
        if sc is None:
            self.assertIsNone(h.aux)
        else:
            np.testing.assert_array_equal(h.aux, sc)
        x = self.rng.standard_normal((2, h.cols)).astype(np.float32)
        np.testing.assert_array_equal(h.gemv(x), s.gemv(n, x), n)

    def test_two_passes_through_the_ring(self) -> None:
        names = self.make_store(self.path("s"))
        order = list(names)
        with vtstore.open(self.path("s")) as s:
            model = sum(s.info(n)["raw_bytes"] for n in order)  # raw bytes of one pass
            # the smallest budget (in pages) whose ring of 3 slots fits every tensor
            for budget in range(4096, model, 4096):
                with s.streamer(ram_bytes=budget, ring_slots=3) as st:
                    st.plan(order)
                    if all(st.placement(n) != "oversize" for n in order):
                        break
            budget += 5 * 4096  # and room to pin a tensor or two
            self.assertLess(budget, model)
            for kw in ({}, {"vram_bytes": budget}):  # without and with a device tier
                with s.streamer(ram_bytes=budget, ring_slots=3, prefetch=1, **kw) as st:
                    if st.stats()["device_is_gpu"]:
                        continue  # handles in device memory: see test_misuse
                    st.plan(order)
                    places = [st.placement(n) for n in order]
                    self.assertIn("stream", places, places)  # through the ring
                    self.assertIn("vram" if kw else "ram", places, places)  # pinned
                    for p in range(2):
                        for n in order:
                            with st.acquire(n) as h:
                                self.check_handle(s, h, names[n])
                            self.assertTrue(h.released)
                            self.assertEqual(st.held, 0)
                        stats = st.stats()
                        self.assertEqual(stats["acquires"], len(order))
                        if p == 1:  # the streamed tensors were read again
                            self.assertGreater(stats["ram"]["misses"], 0, stats)
                            self.assertGreaterEqual(stats["bytes_read"], 1)
                        st.reset_stats()
                    top = stats["vram" if kw else "ram"]
                    self.assertEqual(top["slots"], 3)
                    self.assertGreater(top["slot_bytes"], 0)
                    self.assertEqual(stats["model_bytes"], model)
                    self.assertIn(stats["engine"], ("uring", "pread"))

    def test_random_schedule_and_parts(self) -> None:
        names = self.make_store(self.path("s"))
        order = list(names)
        with vtstore.open(self.path("s")) as s:
            with s.streamer(ram_bytes=48 << 10, ring_slots=2, io_engine="pread") as st:
                st.plan(order, schedule="random")
                self.assertEqual(st.placement(order[0]), "none")
                for i in self.rng.integers(0, len(order), size=3 * len(order)):
                    n = order[i]
                    st.prefetch(order[(i + 1) % len(order)])
                    with st.acquire(n) as h:
                        self.check_handle(s, h, names[n])
                self.assertEqual(st.stats()["engine"], "pread")
            # a tensor larger than a ring slot: VT_EBUDGET, or parts with chunkwise
            q8 = order[0]  # 4 chunks of 16 rows
            size = s.info(q8)["raw_bytes"]
            with s.streamer(ram_bytes=size, ring_slots=2) as st:
                st.plan([q8])
                self.assertEqual(st.placement(q8), "oversize")
                with self.assertRaises(vtstore.Error) as cm:
                    st.acquire(q8)
                self.assertEqual(cm.exception.code, vtstore.VT_EBUDGET)
                self.assertIn(q8, str(cm.exception))
            with s.streamer(ram_bytes=size, ring_slots=2, chunkwise=True) as st:
                st.plan([q8])
                self.assertEqual(st.parts(q8), 4)
                for part in range(4):
                    with st.acquire(q8, part=part) as h:
                        self.assertEqual((h.part, h.row0, h.rows, h.total_rows),
                                         (part, 16 * part, 16, 64))  # fmt: skip
                        want = s.read(q8, rows=slice(h.row0, h.row0 + h.rows))
                        self.assertEqual(h.dequantize().tobytes(), want.tobytes())
                with self.assertRaises(vtstore.Error) as cm:
                    st.acquire(q8, part=4)
                self.assertEqual(cm.exception.code, ERANGE)

    def test_corrupt_chunk(self) -> None:
        x = self.weights(64, 256)
        with vtstore.open(self.path("s"), "c") as s:
            s.put("w", x, "q8_0", rows_per_chunk=16)  # shard 1
            s.put("ok", x, "nf4")  # shard 2
        shard = os.path.join(self.path("s"), "data", "shard-000001.vts")
        with open(shard, "r+b") as f:  # a byte of chunk 0
            f.seek(4096 + 100)
            b = f.read(1)
            f.seek(4096 + 100)
            f.write(bytes([b[0] ^ 0x40]))
        with vtstore.open(self.path("s")) as s:
            for retry in (False, True):
                with s.streamer(ram_bytes=1 << 20, retry_corrupt=retry) as st:
                    st.plan(["w", "ok"])
                    for _ in range(2):  # an error is not cached: the next acquire reads again
                        with self.assertRaises(vtstore.Error) as cm:
                            st.acquire("w")
                        e = cm.exception
                        self.assertEqual(e.code, vtstore.VT_ECORRUPT)
                        self.assertIn("tensor w chunk 0", e.detail)
                        self.assertIn("checksum mismatch", str(e))
                        self.assertIn("shard-000001.vts", e.detail)
                        with st.acquire("ok") as h:  # the other tensor is fine
                            self.assertEqual(h.dequantize().tobytes(), s.read("ok").tobytes())
                    self.assertEqual(st.held, 0)
                    if retry:
                        self.assertIn("after a re-read", e.detail)
                        self.assertGreaterEqual(st.stats()["corrupt_retries"], 1)

    def test_misuse(self) -> None:
        names = list(self.make_store(self.path("s")))
        a, b = names[0], names[1]
        s = vtstore.open(self.path("s"))
        with self.assertRaises(vtstore.Error) as cm:
            s.streamer(ram_bytes=0)
        self.assertEqual(cm.exception.code, -errno.EINVAL)
        self.assertIn("ram_bytes", str(cm.exception))
        with self.assertRaises(vtstore.Error) as cm:
            s.streamer(ram_bytes=1 << 20, ring_slots=1)
        self.assertIn("ring_slots", str(cm.exception))
        for kw, exc in (({"ram_bytes": -1}, ValueError), ({"ring_slots": 2**32}, ValueError),
                        ({"ram_bytes": 1.5}, TypeError), ({"io_engine": "aio"}, ValueError)):
            with self.assertRaises(exc, msg=kw):
                s.streamer(**dict({"ram_bytes": 1 << 20}, **kw))
        with self.assertRaises(TypeError):
            vtstore.Streamer(self.path("s"), ram_bytes=1 << 20)  # a Store, not its path
        st = s.streamer(ram_bytes=1 << 20)
        st2 = vtstore.Streamer(s, ram_bytes=1 << 20)
        with self.assertRaises(TypeError):
            st.plan(a)  # one name, not a list
        with self.assertRaises(ValueError):
            st.plan([a], schedule="lru")
        with self.assertRaises(KeyError):
            st.plan([a, "nope"])
        with self.assertRaises(vtstore.Error) as cm:
            st.plan([a, a])
        self.assertIn("twice", str(cm.exception))
        st.plan(names)
        with self.assertRaises(vtstore.NotFoundError) as cm:
            st.acquire("nope")
        self.assertIn("nope", str(cm.exception))

        h = st.acquire(a)
        with self.assertRaises(vtstore.Error) as cm:  # a handle held
            st.plan(names)
        self.assertEqual(cm.exception.code, vtstore.VT_EUSAGE)
        self.assertIn(a, str(cm.exception))
        with self.assertRaises(vtstore.Error) as cm:  # another streamer's handle
            st2.release(h)
        self.assertEqual(cm.exception.code, -errno.EINVAL)
        self.assertFalse(h.released)
        with self.assertRaises(TypeError):
            st.release("h")
        h._w.location = _lib.VT_LOC_DEVICE  # as a handle in GPU memory would be
        for use in (h.raw, h.dequantize, lambda: h.gemv(np.ones(h.cols, np.float32)),
                    lambda: h.aux, lambda: h.raw(copy=False)):
            with self.assertRaises(vtstore.Error) as cm:
                use()
            self.assertIn("device memory", str(cm.exception))
        h._w.location = _lib.VT_LOC_HOST
        st.release(h)
        with self.assertRaises(vtstore.Error) as cm:  # twice
            h.release()
        self.assertEqual(cm.exception.code, -errno.EINVAL)
        self.assertIn("already released", str(cm.exception))
        for use in (h.raw, h.dequantize, lambda: h.gemv(np.ones(h.cols, np.float32)),
                    lambda: h.aux, lambda: h.raw(copy=False)):
            with self.assertRaises(vtstore.Error) as cm:
                use()
            self.assertEqual(cm.exception.code, vtstore.VT_EUSAGE)
            self.assertIn("released", str(cm.exception))
        with st.acquire(a) as h:
            h.release()  # released inside the block: leaving it does not release again
        self.assertEqual(st.held, 0)

        # close with handles held: they become invalid, and nothing reads freed memory
        h1, h2 = st.acquire(a), st.acquire(b)
        with st.acquire(names[2]) as h3:
            st.close()
            self.assertTrue(st.closed)
            with self.assertRaises(ValueError):
                h3.raw()
        for use in (h1.raw, h2.dequantize, h1.release, lambda: st.acquire(a), st.stats,
                    lambda: st.plan(names), lambda: st.placement(a)):
            with self.assertRaises(ValueError):
                use()
        st.close()  # idempotent
        self.assertIsNone(st._h)  # the library's close ran
        with st2.acquire(b) as h:  # the other streamer is unaffected
            self.assertEqual(h.dequantize().tobytes(), s.read(b).tobytes())
        s.close()  # closes st2 too
        self.assertTrue(st2.closed)
        with self.assertRaises(ValueError):
            st2.acquire(b)
        with self.assertRaises(ValueError):
            s.streamer(ram_bytes=1 << 20)

    def test_zero_copy_view_lifetime(self) -> None:
        names = self.make_store(self.path("s"))
        a = list(names)[0]
        s = vtstore.open(self.path("s"))
        want = s.read_raw(a)
        st = s.streamer(ram_bytes=1 << 20, ring_slots=2)
        st.plan(list(names))
        with st.acquire(a) as h:
            v = h.raw(copy=False)
            self.assertEqual(v.tobytes(), want.tobytes())
            self.assertFalse(v.flags.writeable)
            with self.assertRaises(ValueError):
                v[0] = 1
            with self.assertRaises(ValueError):
                v.flags.writeable = True
        self.assertTrue(h.released)  # for Python at once...
        with self.assertRaises(vtstore.Error):
            h.raw()
        self.assertEqual(st.held, 1)  # ...for the library once the view is gone
        part = v[100:200]
        del v
        gc.collect()
        self.assertEqual(st.held, 1)  # a slice of the view keeps it
        self.assertEqual(part.tobytes(), want[100:200].tobytes())
        del part
        gc.collect()
        self.assertEqual(st.held, 0)

        # closing the streamer and the store with a view alive: both wait for it
        h = st.acquire(a)
        v = h.raw(copy=False)
        st.close()
        s.close()
        self.assertTrue(st.closed)
        self.assertIsNotNone(st._h)  # not yet closed in the library
        self.assertEqual(v.tobytes(), want.tobytes())  # still mapped, unchanged
        with self.assertRaises(ValueError):
            h.raw()
        del v
        gc.collect()
        self.assertIsNone(st._h)
        self.assertIsNone(s._deferred_h)  # the store's handle was closed after it
        self.assertEqual(s._pins, 0)

    def test_threads(self) -> None:
        names = self.make_store(self.path("s"))
        order = list(names)
        with vtstore.open(self.path("s")) as s:
            want = {n: s.read(n).tobytes() for n in order}
            st = s.streamer(ram_bytes=64 << 10, ring_slots=8)
            st.plan(order, schedule="random")
            errors, seeds = [], self.rng.integers(0, 2**32, size=6)

            def worker(seed) -> None:
                rng = np.random.default_rng(seed)
                try:
                    for i in rng.integers(0, len(order), size=40):
                        with st.acquire(order[i]) as h:
                            if h.dequantize().tobytes() != want[order[i]]:
                                errors.append(f"{order[i]}: values differ")
                except BaseException as e:  # noqa: BLE001 - reported below
                    errors.append(repr(e))

            threads = [threading.Thread(target=worker, args=(sd,)) for sd in seeds]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])
            self.assertEqual(st.stats()["acquires"], 40 * len(seeds))
            self.assertEqual(st.held, 0)

            # close while other threads acquire, hold and read: they stop with an error
            started, results = threading.Barrier(4), []

            def busy(seed) -> None:
                rng = np.random.default_rng(seed)
                started.wait()
                try:
                    while True:
                        n = order[rng.integers(0, len(order))]
                        with st.acquire(n) as h:
                            if h.dequantize().tobytes() != want[n]:
                                results.append("values differ")
                except ValueError:
                    results.append("ValueError")
                except vtstore.Error as e:
                    results.append(f"Error {e.name}" if e.code == vtstore.VT_EUSAGE else repr(e))

            threads = [threading.Thread(target=busy, args=(sd,)) for sd in seeds[:3]]
            for t in threads:
                t.start()
            started.wait()
            st.close()
            for t in threads:
                t.join()
            self.assertEqual(len(results), 3)
            self.assertTrue(all(r == "ValueError" or r.startswith("Error ") for r in results),
                            results)  # fmt: skip
            self.assertIsNone(st._h)


# ---- attention over a quantized KV cache (attn.h) -----------------------------------------


def ref_attention(q, k, v, causal: bool, scale: float):
    """Attention in f64 with FlashAttention's semantics: query head h reads K/V head
    h // (H / Hkv), the causal mask is aligned bottom-right (query i sees keys j <= i + Nk - Nq),
    and a row that sees no key gets O = 0 and LSE = -inf."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    H, nq, D = q.shape
    hkv, nk, _ = k.shape
    g = H // hkv
    o = np.zeros((H, nq, D))
    lse = np.full((H, nq), -np.inf)
    for h in range(H):
        s = scale * (q[h] @ k[h // g].T)
        if causal:
            vis = np.arange(nk)[None, :] <= np.arange(nq)[:, None] + (nk - nq)
            s = np.where(vis, s, -np.inf)
        m = s.max(axis=1, initial=-np.inf, keepdims=True)
        ok = np.isfinite(m[:, 0])
        e = np.exp(s[ok] - m[ok])
        tot = e.sum(axis=1, keepdims=True)
        o[h, ok] = (e / tot) @ v[h // g]
        lse[h, ok] = (m[ok] + np.log(tot))[:, 0]
    return o, lse


class TestAttention(Base):
    FORMATS = ("f32", "f16", "bf16", "q8_0", "int8", "q4_0", "nf4", "nvfp4", "mxfp4")

    def qkv(self, H: int, hkv: int, nq: int, nk: int, D: int, dtype=np.float32):
        r = self.rng
        return (r.standard_normal((H, nq, D)).astype(dtype),
                r.standard_normal((hkv, nk, D)).astype(dtype),
                r.standard_normal((hkv, nk, D)).astype(dtype))  # fmt: skip

    def test_attention_matches_f64(self) -> None:
        """Every K/V format, GQA 1/4, D 64 and a ragged 40, causal or not with Nq != Nk and
        fully masked rows (Nq > Nk): O within 2e-3 (norm-wise) and LSE within 1e-4 of the f64
        attention on the same dequantized K/V (KVCache.read), both algorithms."""
        for i, fmt in enumerate(self.FORMATS):
            for causal in (False, True):
                hkv, g = 2, (1, 4)[i % 2]
                D = (64, 40)[(i // 2) % 2]
                nq = int(self.rng.integers(1, 40))
                nk = int(self.rng.integers(1, 70)) if causal else int(self.rng.integers(1, 200))
                q, k, v = self.qkv(hkv * g, hkv, nq, nk, D)
                ts = vtstore.tensor_scale(np.concatenate([k.ravel(), v.ravel()]))
                with vtstore.KVCache(fmt, hkv, D, nk + 3, tensor_scale=ts) as kv:
                    kv.append(k, v)
                    self.assertEqual(len(kv), nk)
                    kd, vd = kv.read()
                    ro, rl = ref_attention(q, kd, vd, causal, 1 / np.sqrt(D))
                    for algo in ("flash", "naive"):
                        o, lse = kv.attend(q, causal=causal, return_lse=True, algo=algo)
                        what = f"{fmt} {algo} causal={causal} nq={nq} nk={nk} D={D} g={g}"
                        err = np.linalg.norm(o - ro) / max(np.linalg.norm(ro), 1e-30)
                        self.assertLessEqual(err, 2e-3, what)
                        self.assertTrue(np.array_equal(np.isinf(lse), np.isinf(rl)), what)
                        fin = np.isfinite(rl)
                        self.assertLess(np.abs(lse[fin] - rl[fin]).max(initial=0), 1e-4, what)
                        self.assertTrue((o[~fin] == 0).all(), what)  # no key: O = 0

    def test_attention_function(self) -> None:
        """vtstore.attention: f16 input kept as f16, a set scale, f16 output; K/V quantized to
        q8_0 stay close to unquantized attention; nvfp4 picks its tensor scale."""
        q, k, v = self.qkv(8, 2, 5, 33, 64, np.float16)
        ro, _ = ref_attention(q, k, v, True, 0.3)
        o = vtstore.attention(q, k, v, causal=True, scale=0.3, out_dtype="f16")
        self.assertEqual(o.dtype, np.float16)
        self.assertLess(np.linalg.norm(o - ro) / np.linalg.norm(ro), 2e-3)
        for fmt, bound in (("q8_0", 2e-2), ("nvfp4", 0.3)):
            o = vtstore.attention(q, k, v, kv_format=fmt, causal=True, scale=0.3)
            err = np.linalg.norm(o - ro) / np.linalg.norm(ro)
            self.assertLess(err, bound, fmt)
            self.assertGreater(err, 0, fmt)  # quantized: not the unquantized result

    def test_kvcache_incremental(self) -> None:
        """Appends in pieces equal one append; reset empties; read's bounds; a NaN appends
        nothing (VT_ENONFINITE naming the place); closed caches raise ValueError."""
        q, k, v = self.qkv(4, 4, 3, 50, 64)
        with vtstore.KVCache("q4_0", 4, 64, 64) as a, vtstore.KVCache("q4_0", 4, 64, 64) as b:
            a.append(k, v)
            for s in (slice(0, 7), slice(7, 8), slice(8, 50)):
                b.append(k[:, s], v[:, s])
            np.testing.assert_array_equal(a.read()[0], b.read()[0])
            np.testing.assert_array_equal(a.attend(q, causal=True), b.attend(q, causal=True))
            k2 = k[:, :2].copy()
            k2[1, 1, 5] = np.nan
            with self.assertRaises(vtstore.Error) as cm:
                b.append(k2, v[:, :2])
            self.assertEqual(cm.exception.code, vtstore.VT_ENONFINITE)
            self.assertIn("head 1", str(cm.exception))
            self.assertEqual(len(b), 50)
            with self.assertRaises(vtstore.Error) as cm:  # past the capacity
                b.append(k[:, :20], v[:, :20])
            self.assertEqual(cm.exception.code, vtstore.VT_EBUDGET)
            with self.assertRaises(ValueError):
                b.read(40, 20)
            b.reset()
            self.assertEqual(len(b), 0)
            self.assertEqual(b.read()[0].shape, (4, 0, 64))
        with self.assertRaises(ValueError):
            len(a)
        with self.assertRaises(ValueError):  # no tokens: refused too once closed
            a.append(k[:, :0], v[:, :0])
        with self.assertRaises(ValueError):
            a.attend(q[:, :0])

    def test_mixed_and_wide_inputs(self) -> None:
        """K float16 with V float32 (or the reverse) stays exact: V used to be rounded to
        float16 to match K. A float64 value beyond float32 raises -ERANGE naming q and the index
        (it became inf, and O NaN). A NaN in K with nvfp4's own tensor scale is named by head
        and token as in the other formats (it was an index into K and V concatenated)."""
        q, k, v = self.qkv(4, 2, 3, 20, 64)
        for a, b in ((k.astype(np.float16), v), (k, v.astype(np.float16))):
            with vtstore.KVCache("f32", 2, 64, 20) as kv:
                kv.append(a, b)
                kd, vd = kv.read()
                np.testing.assert_array_equal(kd, a.astype(np.float32))
                np.testing.assert_array_equal(vd, b.astype(np.float32))
            ro, _ = ref_attention(q, a, b, True, 1 / 8)
            o = vtstore.attention(q, a, b, causal=True)  # kv_format None: f32 (mixed)
            self.assertLess(np.linalg.norm(o - ro) / np.linalg.norm(ro), 1e-5)
        q64 = q.astype(np.float64)
        q64[1, 2, 3] = 1e39
        with self.assertRaises(vtstore.Error) as cm:
            vtstore.attention(q64, k, v)
        self.assertEqual(cm.exception.code, ERANGE)
        self.assertIn("(1, 2, 3)", str(cm.exception))
        kn = k.copy()
        kn[1, 4, 7] = np.nan
        with self.assertRaises(vtstore.Error) as cm:
            vtstore.attention(q, kn, v, kv_format="nvfp4")
        self.assertEqual(cm.exception.code, vtstore.VT_ENONFINITE)
        self.assertIn("head 1", str(cm.exception))

    def test_scales_float32_cannot_hold(self) -> None:
        """scale and tensor_scale reach C as float32: 1e-46 became 0, which the library takes
        as its default (1/sqrt(D); nvfp4: 1), so attention came back with another scale."""
        q, k, v = self.qkv(2, 2, 3, 9, 64)
        for bad in (1e-46, 1e39, math.nan, math.inf, 0.0, -1.0):
            with self.assertRaises(ValueError, msg=repr(bad)):
                vtstore.attention(q, k, v, scale=bad)
            with self.assertRaises(ValueError, msg=repr(bad)):
                vtstore.KVCache("nvfp4", 2, 64, 9, tensor_scale=bad)
        for bad in (True, "0.5"):
            with self.assertRaises(TypeError, msg=repr(bad)):
                vtstore.KVCache("nvfp4", 2, 64, 9, tensor_scale=bad)
        with self.assertRaises(TypeError):
            vtstore.attention(q, k, v, scale=True)
        for sc in (1e-30, np.float32(0.3), 2):  # small, a numpy scalar, an int
            ro, _ = ref_attention(q, k, v, False, float(np.float32(sc)))
            o = vtstore.attention(q, k, v, scale=sc)
            self.assertLess(np.linalg.norm(o - ro) / np.linalg.norm(ro), 1e-5, repr(sc))

    def test_attention_errors(self) -> None:
        q, k, v = self.qkv(3, 2, 4, 8, 64)
        with self.assertRaises(vtstore.Error) as cm:  # 3 query heads over 2 K/V heads
            vtstore.attention(q, k, v)
        self.assertEqual(cm.exception.code, vtstore.VT_ESHAPE)
        with self.assertRaises(ValueError):
            vtstore.attention(q[:2, :, :32], k, v)  # head dims differ
        with self.assertRaises(ValueError):
            vtstore.attention(q[:2], k, v, kv_format="q4_k")  # blocks cross 64 values
        with self.assertRaises(ValueError):
            vtstore.attention(q[:2], k, v, scale=-1.0)
        with self.assertRaises(ValueError):
            vtstore.KVCache("q8_0", 0, 64, 8)
        with self.assertRaises(ValueError):
            vtstore.KVCache("q8_0", True, 64, 8)  # a bool is no head count
        with self.assertRaises(ValueError):
            vtstore.attention(q[:2], k, v[:, :4])


if __name__ == "__main__":
    unittest.main(verbosity=2)
