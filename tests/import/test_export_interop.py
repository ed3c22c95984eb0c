#!/usr/bin/env python3
"""Exports checked by independent readers: gguf-py's GGUFReader (llama.cpp's own Python
package) for `vtstore export OUT.gguf`, the safetensors library (or, without it, a parser
written here from the safetensors spec) for `vtstore export OUT.safetensors`, and numpy's
np.load for `vtstore get -o OUT.npy`.

Sources are written by the same independent libraries (gguf.GGUFWriter, numpy, a safetensors
writer from the spec), imported with the vtstore CLI, exported, and read back: names, types,
shapes, raw bytes and every metadata key/value must be what the source held, and quantized
tensors must read back (gguf.quants.dequantize) as what `vtstore get` returns.

Environment: VT_BIN (the vtstore binary), VT_TEST_TMP (scratch directory).
Exit 0 pass, 1 fail, 77 skipped (numpy or gguf missing: scripts/setup_python.sh installs them).
Usage: test_export_interop.py [name-substring ...]   (runs only the matching checks)
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import traceback

try:
    import numpy as np
    import gguf
    from gguf import GGMLQuantizationType as QT
    from gguf import GGUFValueType as VT
    import gguf.quants
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"SKIP: {e} (run scripts/setup_python.sh)")
    sys.exit(77)

try:
    import safetensors  # noqa: F401  (used only when present)
    from safetensors import _safetensors_rust as st_rust
    from safetensors import safe_open as st_safe_open
except ImportError:
    st_rust = None

VT_BIN = os.environ.get("VT_BIN", "vtstore")
TMP = os.environ.get("VT_TEST_TMP", "/tmp/vt_export_interop")

FAILS = []


def fail(msg):
    FAILS.append(msg)
    print("FAIL:", msg)


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


def vt(*args, rc=0):
    """Run the vtstore CLI; check its exit code; return (stdout, stderr)."""
    p = subprocess.run([VT_BIN, *args], capture_output=True, text=True)
    if rc is not None and p.returncode != rc:
        fail(f"vtstore {' '.join(args)}: exit {p.returncode}, expected {rc}\n"
             f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p.stdout, p.stderr, p.returncode


def fresh(name):
    d = os.path.join(TMP, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


RNG = np.random.default_rng(20240611)

# --------------------------------------------------------------------------------------------
# GGUF helpers (gguf-py)


def f16_bytes(x):
    return np.asarray(x, dtype=np.float16).tobytes()


def random_kquant_rows(qtype, rows, cols):
    """Random blocks of a k-quant type with finite, modest f16 scales: gguf-py has no k-quant
    quantizer, and any bit pattern of the quants is a valid block."""
    bs, ts = gguf.GGML_QUANT_SIZES[qtype]
    nb = rows * cols // bs
    b = RNG.integers(0, 256, size=(nb, ts), dtype=np.uint8)
    if qtype == QT.Q4_K:  # d, dmin f16 first
        b[:, 0:2] = np.frombuffer(f16_bytes(RNG.uniform(0.001, 0.01, nb)), np.uint8).reshape(nb, 2)
        b[:, 2:4] = np.frombuffer(f16_bytes(RNG.uniform(0.001, 0.01, nb)), np.uint8).reshape(nb, 2)
    elif qtype == QT.Q6_K:  # d f16 last
        b[:, ts - 2:ts] = np.frombuffer(f16_bytes(RNG.uniform(0.001, 0.01, nb)),
                                        np.uint8).reshape(nb, 2)
    else:
        raise ValueError(qtype)
    return b.reshape(rows, cols // bs * ts)


def gguf_field_bytes(field):
    """The exact encoded key/value (key length, key, type, value) of a reader field."""
    return b"".join(p.tobytes() for p in field.parts)


def gguf_fields(reader):
    return {k: f for k, f in reader.fields.items() if not k.startswith("GGUF.")}


def compare_gguf(src_path, out_path, what, want_types=None):
    """The export @out_path must hold exactly @src_path's tensors and metadata (alignment may
    differ only where noted)."""
    a = gguf.GGUFReader(src_path)
    b = gguf.GGUFReader(out_path)
    fa, fb = gguf_fields(a), gguf_fields(b)
    check(sorted(fa) == sorted(fb), f"{what}: metadata keys differ:\n  source {sorted(fa)}\n"
          f"  export {sorted(fb)}")
    for k in fa:
        if k not in fb:
            continue
        check(fa[k].types == fb[k].types,
              f"{what}: key {k!r}: types {fa[k].types} vs exported {fb[k].types}")
        check(gguf_field_bytes(fa[k]) == gguf_field_bytes(fb[k]),
              f"{what}: key {k!r}: value differs: {fa[k].contents()!r:.200} vs "
              f"{fb[k].contents()!r:.200}")
    ta = {t.name: t for t in a.tensors}
    tb = {t.name: t for t in b.tensors}
    check(sorted(ta) == sorted(tb), f"{what}: tensor names differ: {sorted(ta)} vs {sorted(tb)}")
    for n, t in ta.items():
        u = tb.get(n)
        if u is None:
            continue
        want = want_types.get(n, t.tensor_type) if want_types else t.tensor_type
        check(u.tensor_type == want, f"{what}: {n!r}: type {u.tensor_type.name}, want {want.name}")
        check(list(u.shape) == list(t.shape), f"{what}: {n!r}: shape {list(u.shape)} vs "
              f"{list(t.shape)}")
        if u.tensor_type == t.tensor_type:
            check(u.data.tobytes() == t.data.tobytes(), f"{what}: {n!r}: bytes differ")
    return a, b


def get_npy(store, name, d, *extra):
    """`vtstore get` of @name into a .npy, loaded with numpy (None if it failed)."""
    out = os.path.join(d, "get.npy")
    if os.path.exists(out):
        os.remove(out)
    _, _, rc = vt("get", store, name, "-o", out, *extra)
    if rc:
        return None
    with open(out, "rb") as f:
        raw = f.read()
    arr = np.load(out)
    # np.load ignores bytes past the array: the file must hold exactly the array
    hl = struct.unpack("<H", raw[8:10])[0]
    check(len(raw) == 10 + hl + arr.nbytes,
          f"get {name} {extra}: file has {len(raw) - 10 - hl} data bytes, array {arr.shape} "
          f"{arr.dtype} needs {arr.nbytes}")
    check((10 + hl) % 64 == 0, f"get {name}: .npy header not 64-byte aligned ({10 + hl})")
    return arr


def reader_values(t):
    """A GGUFReader tensor dequantized by gguf-py, shape outermost first."""
    shape = [int(x) for x in reversed(list(t.shape))]
    if t.tensor_type in (QT.F32, QT.F16, QT.BF16, QT.F64, QT.I8, QT.I16, QT.I32, QT.I64):
        if t.tensor_type == QT.BF16:
            u = np.frombuffer(t.data.tobytes(), np.uint16).astype(np.uint32) << 16
            return u.view(np.float32).reshape(shape)
        return np.asarray(t.data).reshape(shape)
    return gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(shape)


def same_values(got, want, what):
    if not check(got is not None, f"{what}: no values"):
        return
    if not check(tuple(got.shape) == tuple(want.shape),
                 f"{what}: shape {got.shape} vs {want.shape}"):
        return
    g = got.astype(np.float64)
    w = want.astype(np.float64)
    bad = ~((g == w) | (np.isnan(g) & np.isnan(w)))
    if bad.any():
        fail(f"{what}: {int(bad.sum())} values differ, e.g. at {np.argwhere(bad)[0].tolist()}: "
             f"{g[bad][:3]} vs {w[bad][:3]}")


# --------------------------------------------------------------------------------------------
# GGUF: keep every type, every metadata type, odd shapes


def write_gguf_source(path, alignment=None, extra_kv=True):
    w = gguf.GGUFWriter(path, "llama")
    if alignment:
        w.add_custom_alignment(alignment)
    if extra_kv:
        w.add_uint8("t.u8", 250)
        w.add_int8("t.i8", -7)
        w.add_uint16("t.u16", 65000)
        w.add_int16("t.i16", -32000)
        w.add_uint32("t.u32", 4000000000)
        w.add_int32("t.i32", -2000000000)
        w.add_float32("t.f32", 3.25)
        w.add_bool("t.bool_t", True)
        w.add_bool("t.bool_f", False)
        w.add_string("t.str", "héllo wörld ✓ 𝄞")
        w.add_string("t.str_empty", "")
        w.add_uint64("t.u64", (1 << 64) - 3)
        w.add_int64("t.i64", -(1 << 62))
        w.add_float64("t.f64", 2.0 ** -1000)
        w.add_array("t.arr_str", ["a", "", "ü", "x" * 300])
        w.add_array("t.arr_i32", [1, -2, 3])
        w.add_key_value("t.arr_u8", [0, 255, 7], VT.ARRAY, sub_type=VT.UINT8)
        w.add_key_value("t.arr_f64", [1.5, -2.25], VT.ARRAY, sub_type=VT.FLOAT64)
        w.add_key_value("t.arr_bool", [True, False, True], VT.ARRAY, sub_type=VT.BOOL)
        w.add_key_value("t.arr_u64", [1 << 63, 5], VT.ARRAY, sub_type=VT.UINT64)
        w.add_key_value("t.nested", [[1, 2], [3], [4, 5, 6]], VT.ARRAY)
        w.add_key_value("t.nested_str", [["a", "b"], ["c"]], VT.ARRAY)
        w.add_string("general.name", "interop")
        w.add_uint32("general.quantization_version", 2)
    tensors = {}

    def add(name, arr, qtype=None, shape=None):
        # uint8 block data: GGUFWriter derives the element shape from the byte shape
        w.add_tensor(name, arr, raw_dtype=qtype)
        tensors[name] = qtype

    add("f32.3d", RNG.standard_normal((3, 5, 7)).astype(np.float32))
    add("f32.1d", RNG.standard_normal(13).astype(np.float32))
    add("f32.one", np.array([42.5], np.float32))
    add("f16.2d", RNG.standard_normal((9, 33)).astype(np.float16))
    bf = (RNG.standard_normal((4, 6)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    add("bf16.2d", bf, QT.BF16, (4, 6))
    add("f64.2d", RNG.standard_normal((2, 3)))
    add("i8.1d", RNG.integers(-128, 128, 17, dtype=np.int8))
    add("i16.2d", RNG.integers(-30000, 30000, (3, 4), dtype=np.int16))
    add("i32.2d", RNG.integers(-2 ** 31, 2 ** 31, (2, 5), dtype=np.int32))
    add("i64.1d", RNG.integers(-2 ** 62, 2 ** 62, 3, dtype=np.int64))
    for qt, shape in ((QT.Q8_0, (7, 96)), (QT.Q4_0, (5, 64)), (QT.Q4_1, (3, 2, 32)),
                      (QT.Q8_0, (1, 32)), (QT.Q8_0, (64,))):
        x = RNG.standard_normal(shape).astype(np.float32)
        nm = f"{qt.name.lower()}.{'x'.join(map(str, shape))}"
        add(nm, gguf.quants.quantize(x, qt), qt, shape)
    for qt, shape in ((QT.Q4_K, (3, 512)), (QT.Q6_K, (5, 256)), (QT.Q6_K, (1, 256)),
                      (QT.Q4_K, (2, 3, 256))):
        nm = f"{qt.name.lower()}.{'x'.join(map(str, shape))}"
        rows = int(np.prod(shape[:-1]))
        add(nm, random_kquant_rows(qt, rows, shape[-1]).reshape(*shape[:-1], -1), qt, shape)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return tensors


def test_gguf_keep():
    d = fresh("gguf_keep")
    src = os.path.join(d, "src.gguf")
    write_gguf_source(src)
    store = os.path.join(d, "s.vts")
    vt("import", src, store, "--format", "keep", "-q")
    out = os.path.join(d, "out.gguf")
    vt("export", store, out)
    a, b = compare_gguf(src, out, "gguf keep")
    check(b.alignment == a.alignment, f"alignment {b.alignment} vs {a.alignment}")
    # every tensor through `vtstore get` (.npy) is what gguf-py reads from the source
    for t in a.tensors:
        want = reader_values(t)
        if t.tensor_type in (QT.I8, QT.I16, QT.I32, QT.I64, QT.F64):
            got = get_npy(store, t.name, d, "--dtype", "raw")
            if got is not None:
                check(got.dtype == want.dtype, f"get {t.name} raw: dtype {got.dtype} vs "
                      f"{want.dtype}")
            same_values(got, want, f"get {t.name} --dtype raw")
            continue
        got = get_npy(store, t.name, d)
        if got is not None:
            check(got.dtype == np.float32, f"get {t.name}: dtype {got.dtype}")
        # every GGUF type is read bit-exact (DESIGN.md), k-quants included
        same_values(got, want.astype(np.float32), f"get {t.name}")
    # a row range of a 3-D tensor: rows of the 2-D view
    t3 = [t for t in a.tensors if t.name == "f32.3d"][0]
    full = reader_values(t3).reshape(-1, 7)
    same_values(get_npy(store, "f32.3d[4:11]", d), full[4:11], "get f32.3d[4:11]")
    same_values(get_npy(store, "f32.3d[14]", d), full[14:15], "get f32.3d[14]")
    same_values(get_npy(store, "f32.3d[3:3]", d), full[3:3], "get f32.3d[3:3]")
    # the export imports again to the same store content (and re-exports identically)
    store2 = os.path.join(d, "s2.vts")
    vt("import", out, store2, "--format", "keep", "-q")
    out2 = os.path.join(d, "out2.gguf")
    vt("export", store2, out2)
    with open(out, "rb") as f1, open(out2, "rb") as f2:
        check(f1.read() == f2.read(), "export -> import -> export is not byte-identical")


def test_gguf_alignment():
    for al in (1, 8, 64, 4096):
        d = fresh(f"gguf_align{al}")
        src = os.path.join(d, "src.gguf")
        write_gguf_source(src, alignment=al, extra_kv=False)
        store = os.path.join(d, "s.vts")
        vt("import", src, store, "-q")
        out = os.path.join(d, "out.gguf")
        vt("export", store, out)
        a, b = compare_gguf(src, out, f"gguf alignment {al}")
        check(b.alignment == al, f"alignment {al}: exported file has {b.alignment}")
        for t in b.tensors:
            check(t.data_offset % al == 0, f"alignment {al}: {t.name} at {t.data_offset}")


QUANT_AT_IMPORT = {"q8_0": QT.Q8_0, "q4_0": QT.Q4_0, "q4_1": QT.Q4_1}


def test_gguf_quantize_at_import():
    """--format q8_0/q4_0/q4_1 from f32: the exported blocks are ggml's (gguf.quants.quantize
    of the source, bit-exact as DESIGN.md promises) and dequantize to what `get` returns."""
    d = fresh("gguf_quant")
    x = RNG.standard_normal((6, 128)).astype(np.float32)
    x[2, :32] *= 1000.0  # one loud block
    x[3, 32:64] = 0.0  # an all-zero block
    npy = os.path.join(d, "w.npy")
    np.save(npy, x)
    for fmt, qt in QUANT_AT_IMPORT.items():
        store = os.path.join(d, f"{fmt}.vts")
        vt("import", npy, store, "--name", "w", "--format", fmt, "-q")
        out = os.path.join(d, f"{fmt}.gguf")
        vt("export", store, out)
        r = gguf.GGUFReader(out)
        t = {t.name: t for t in r.tensors}.get("w")
        if not check(t is not None, f"{fmt}: tensor w missing from the export"):
            continue
        check(t.tensor_type == qt, f"{fmt}: exported type {t.tensor_type.name}")
        check(list(t.shape) == [128, 6], f"{fmt}: shape {list(t.shape)}")
        ref = gguf.quants.quantize(x, qt)
        check(t.data.tobytes() == ref.tobytes(),
              f"{fmt}: exported blocks differ from gguf.quants.quantize of the source")
        same_values(get_npy(store, "w", d), reader_values(t), f"{fmt}: get vs dequantize")
    # from a GGUF of f16 and bf16 tensors: ggml quantizes their f32 values
    xs = {"h": x.astype(np.float16), "b": x.astype(np.float32)}
    bf = (x.view(np.uint32) >> 16).astype(np.uint16)  # truncated: any bf16 will do
    xs["b"] = (bf.astype(np.uint32) << 16).view(np.float32)
    src = os.path.join(d, "h.gguf")
    write_gguf(src, [("h", xs["h"], None), ("b", bf, QT.BF16)])
    for fmt, qt in QUANT_AT_IMPORT.items():
        store = os.path.join(d, f"h{fmt}.vts")
        vt("import", src, store, "--format", fmt, "-q")
        out = os.path.join(d, f"h{fmt}.gguf")
        vt("export", store, out)
        for t in gguf.GGUFReader(out).tensors:
            ref = gguf.quants.quantize(xs[t.name].astype(np.float32), qt)
            check(t.tensor_type == qt and t.data.tobytes() == ref.tobytes(),
                  f"{fmt} of a GGUF {t.name}: {t.tensor_type.name}, blocks differ from ggml's")


OTHER_FORMATS = ["int8", "nf4", "nf4_dq", "nvfp4", "mxfp4", "q8_0+2:4"]


def test_gguf_non_gguf_formats():
    """Formats GGUF cannot hold are written dequantized (f16 by default, --dtype otherwise):
    the values gguf-py reads are exactly what `vtstore get` returns in that dtype."""
    d = fresh("gguf_other")
    x = RNG.standard_normal((4, 256)).astype(np.float32)
    npy = os.path.join(d, "w.npy")
    np.save(npy, x)
    for fmt in OTHER_FORMATS:
        store = os.path.join(d, f"{fmt}.vts")
        args = ["--format", fmt.split("+")[0]]
        if "+" in fmt:
            args += ["--sparsity", "2:4"]
        _, err, rc = vt("import", npy, store, "--name", "w", *args, "-q")
        if rc:
            continue
        for dt, qt, npdt in (("f16", QT.F16, np.float16), ("f32", QT.F32, np.float32),
                             ("bf16", QT.BF16, None)):
            out = os.path.join(d, f"{fmt}.{dt}.gguf")
            vt("export", store, out, "--dtype", dt)
            t = {t.name: t for t in gguf.GGUFReader(out).tensors}.get("w")
            if not check(t is not None, f"{fmt} --dtype {dt}: tensor missing"):
                continue
            check(t.tensor_type == qt, f"{fmt} --dtype {dt}: type {t.tensor_type.name}")
            f32 = get_npy(store, "w", d)
            if npdt is np.float16:
                want = get_npy(store, "w", d, "--dtype", "f16")
            elif npdt is np.float32:
                want = f32
            else:  # bf16 of the f32 values, round to nearest even
                u = f32.view(np.uint32).astype(np.uint64)
                u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint32) << 16
                want = u.astype(np.uint32).view(np.float32)
            same_values(reader_values(t), want.astype(np.float32), f"{fmt} --dtype {dt}")


def test_gguf_odd_cols_quant():
    """q8_0 of rows whose length is not a multiple of 32 (if import allows it): GGUF cannot
    hold such blocks, so the export must dequantize, not write blocks gguf-py misreads."""
    d = fresh("gguf_oddcols")
    x = RNG.standard_normal((3, 40)).astype(np.float32)
    npy = os.path.join(d, "w.npy")
    np.save(npy, x)
    store = os.path.join(d, "s.vts")
    _, _, rc = vt("import", npy, store, "--name", "w", "--format", "q8_0", "-q", rc=None)
    if rc:
        return
    out = os.path.join(d, "o.gguf")
    vt("export", store, out, "--dtype", "f32")
    t = {t.name: t for t in gguf.GGUFReader(out).tensors}.get("w")
    if check(t is not None, "odd cols: tensor missing"):
        same_values(reader_values(t), get_npy(store, "w", d), "odd cols q8_0 -> f32")


# --------------------------------------------------------------------------------------------
# safetensors

ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
             "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "U16": np.uint16,
             "U32": np.uint32, "U64": np.uint64, "BOOL": np.bool_, "BF16": np.uint16,
             "F8_E4M3": np.uint8, "F8_E5M2": np.uint8}


def st_write(path, tensors, metadata=None):
    """A safetensors file per the spec: u64 LE header length, JSON header, packed data."""
    hdr, off, blobs = {}, 0, []
    for name, (dt, shape, raw) in tensors.items():
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    if metadata is not None:
        hdr["__metadata__"] = metadata
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def st_parse(path):
    """Independent reader per the safetensors spec. Returns (metadata, {name: (dtype, shape,
    bytes)}); every rule of the spec is checked."""
    with open(path, "rb") as f:
        raw = f.read()
    what = os.path.basename(path)
    n = struct.unpack("<Q", raw[:8])[0]
    check(8 + n <= len(raw), f"{what}: header length {n} beyond the file")
    htext = raw[8:8 + n]
    hdr = json.loads(htext.decode("utf-8"),
                     object_pairs_hook=lambda kv: _no_dup(kv, what))
    check(isinstance(hdr, dict), f"{what}: header is not an object")
    meta = hdr.pop("__metadata__", None)
    if meta is not None:
        check(isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values()),
              f"{what}: __metadata__ is not a string->string map: {meta!r:.200}")
    data = raw[8 + n:]
    out, spans = {}, []
    for name, e in hdr.items():
        check(set(e) == {"dtype", "shape", "data_offsets"}, f"{what}: {name!r}: keys {set(e)}")
        a, b = e["data_offsets"]
        spans.append((a, b, name))
        numel = int(np.prod(e["shape"], dtype=np.int64)) if e["shape"] else 1
        es = np.dtype(ST_DTYPES[e["dtype"]]).itemsize
        check(b - a == numel * es, f"{what}: {name!r}: {b - a} bytes for {e['shape']} "
              f"{e['dtype']}")
        out[name] = (e["dtype"], list(e["shape"]), data[a:b])
    spans.sort()
    pos = 0
    for a, b, name in spans:  # the spec: no holes, no overlap, the buffer fully indexed
        check(a == pos, f"{what}: {name!r} starts at {a}, expected {pos}")
        pos = b
    check(pos == len(data), f"{what}: data is {len(data)} bytes, tensors cover {pos}")
    return meta, out


def _no_dup(kv, what):
    keys = [k for k, _ in kv]
    check(len(keys) == len(set(keys)), f"{what}: duplicate JSON keys {keys}")
    return dict(kv)


def st_library_read(path):
    """The safetensors library (if installed): {name: (dtype, shape, bytes)} and metadata."""
    if st_rust is None:
        return None
    with open(path, "rb") as f:
        raw = f.read()
    res = {}
    for name, v in st_rust.deserialize(raw):
        res[name] = (v["dtype"], list(v["shape"]), bytes(v["data"]))
    with st_safe_open(path, framework="numpy") as f:
        meta = f.metadata()
    return meta, res


def st_dtype_name(dt):
    return {"float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64",
            "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "uint16": "U16",
            "uint32": "U32", "uint64": "U64", "bool": "BOOL"}[np.dtype(dt).name]


def test_safetensors_keep():
    d = fresh("st_keep")
    t = {}
    for name, dt, shape in (("a.f32", np.float32, (5, 7)), ("b.f16", np.float16, (3, 4, 5)),
                            ("c.f64", np.float64, (2, 3)), ("d.i64", np.int64, (2, 3)),
                            ("e.i32", np.int32, (9,)), ("f.i16", np.int16, (2, 2)),
                            ("g.i8", np.int8, (4, 3)), ("h.u8", np.uint8, (7,)),
                            ("i.bool", np.bool_, (3, 3)), ("j.u32", np.uint32, (4,)),
                            ("k.one", np.float32, (1,))):
        if np.dtype(dt).kind == "f":
            arr = RNG.standard_normal(shape).astype(dt)
        elif dt is np.bool_:
            arr = RNG.integers(0, 2, shape).astype(np.bool_)
        else:
            info = np.iinfo(dt)
            arr = RNG.integers(info.min, info.max, shape, dtype=dt, endpoint=True)
        t[name] = (st_dtype_name(dt), shape, arr.tobytes())
    bf = (RNG.standard_normal((3, 8)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    t["bf.bf16"] = ("BF16", (3, 8), bf.tobytes())
    meta = {"format": "pt", "note": "ünïcode ✓ \"quoted\" \\ back\nslash", "empty": "",
            "kë\"y\\\t": "v"}
    src = os.path.join(d, "src.safetensors")
    st_write(src, t, meta)
    store = os.path.join(d, "s.vts")
    _, _, rc = vt("import", src, store, "--format", "keep", "-q")
    if rc:
        return
    out = os.path.join(d, "out.safetensors")
    vt("export", store, out)
    got_meta, got = st_parse(out)
    check(got_meta == meta, f"safetensors __metadata__ {got_meta} vs {meta}")
    check(sorted(got) == sorted(t), f"safetensors names {sorted(got)} vs {sorted(t)}")
    for name, (dt, shape, raw) in t.items():
        if name not in got:
            continue
        g = got[name]
        check(g[0] == dt, f"{name}: dtype {g[0]} vs {dt}")
        check(g[1] == list(shape), f"{name}: shape {g[1]} vs {list(shape)}")
        check(g[2] == raw, f"{name}: bytes differ")
    lib = st_library_read(out)
    if lib is not None:
        lmeta, lt = lib
        check(lmeta == meta, f"safetensors library: metadata {lmeta} vs {meta}")
        for name, (dt, shape, raw) in t.items():
            g = lt.get(name)
            if check(g is not None, f"safetensors library: {name} missing"):
                check(g[0].upper() == dt and g[1] == list(shape) and g[2] == raw,
                      f"safetensors library: {name}: {g[0]} {g[1]} differs from {dt} {shape}")
    # .npy of each: np.load gives the source array (f32 default for floats, raw for the rest)
    for name, (dt, shape, raw) in t.items():
        if dt == "BF16":
            want = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
            same_values(get_npy(store, name, d), want.reshape(shape), f"get {name}")
            continue
        arr = np.frombuffer(raw, ST_DTYPES[dt]).reshape(shape)
        if dt in ("F32", "F16"):
            same_values(get_npy(store, name, d), arr.astype(np.float32), f"get {name}")
            if dt == "F16":
                g = get_npy(store, name, d, "--dtype", "f16")
                check(g is not None and g.dtype == np.float16 and g.tobytes() == raw,
                      f"get {name} --dtype f16: not the source bytes")
        else:
            g = get_npy(store, name, d, "--dtype", "raw")
            if check(g is not None, f"get {name} --dtype raw failed"):
                check(g.dtype == arr.dtype and g.shape == arr.shape and
                      g.tobytes() == arr.tobytes(),
                      f"get {name} --dtype raw: {g.dtype} {g.shape} vs {arr.dtype} {arr.shape}")


def test_safetensors_quantized():
    """Quantized tensors come out dequantized in --dtype: the reader's values equal `get`."""
    d = fresh("st_quant")
    x = RNG.standard_normal((8, 128)).astype(np.float32)
    src = os.path.join(d, "src.safetensors")
    st_write(src, {"w": ("F32", x.shape, x.tobytes()),
                   "n": ("F32", (128,), x[0].tobytes())}, {"k": "v"})
    for fmt in ("q8_0", "q4_0", "q4_1", "int8", "nf4", "nvfp4", "mxfp4"):
        store = os.path.join(d, f"{fmt}.vts")
        _, _, rc = vt("import", src, store, "--format", fmt, "-q")
        if rc:
            continue
        ref32 = get_npy(store, "w", d)
        for dt, npdt in (("f32", np.float32), ("f16", np.float16), ("bf16", None)):
            out = os.path.join(d, f"{fmt}.{dt}.safetensors")
            vt("export", store, out, "--dtype", dt)
            meta, got = st_parse(out)
            check(meta == {"k": "v"}, f"{fmt}: metadata {meta}")
            g = got.get("w")
            if not check(g is not None, f"{fmt} {dt}: w missing"):
                continue
            check(g[0] == dt.upper() and g[1] == [8, 128], f"{fmt} {dt}: {g[0]} {g[1]}")
            if npdt is np.float16:
                want = get_npy(store, "w", d, "--dtype", "f16").tobytes()
            elif npdt is np.float32:
                want = ref32.tobytes()
            else:
                u = ref32.view(np.uint32).astype(np.uint64)
                want = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16).tobytes()
            check(g[2] == want, f"{fmt} --dtype {dt}: bytes differ from `get`")
            n = got.get("n")  # 1-D: kept as stored (f32)
            check(n is not None and n[0] == "F32" and n[2] == x[0].tobytes(),
                  f"{fmt}: 1-D tensor not kept exactly")



# --------------------------------------------------------------------------------------------
# adversarial


def write_gguf(path, tensors, kv=(), alignment=None):
    """tensors: [(name, array, qtype or None)]; kv: [(key, value, vtype, sub_type)]"""
    w = gguf.GGUFWriter(path, "llama")
    if alignment:
        w.add_custom_alignment(alignment)
    for k, v, vtype, sub in kv:
        w.add_key_value(k, v, vtype, sub_type=sub)
    for name, arr, qt in tensors:
        w.add_tensor(name, arr, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def no_file(path, what):
    check(not os.path.exists(path), f"{what}: a failed export left {path}")


def test_adv_names():
    """Unicode, JSON-special and the longest names ggml reads (63 bytes) survive every export;
    safetensors cannot hold a tensor called __metadata__ and GGUF (ggml's GGML_MAX_NAME) no
    name of 64 bytes or more: those exports fail naming the tensor, leaving no file."""
    d = fresh("adv_names")
    names = ["ünïcödé.✓.𝄞", 'q"uote\\back\nnl\ttab\x01', "L" * 63, "a" * 10 + "é" * 26]
    x = {n: RNG.standard_normal((2, 3)).astype(np.float32) for n in names}
    src = os.path.join(d, "src.gguf")
    write_gguf(src, [(n, x[n], None) for n in names])
    store = os.path.join(d, "s.vts")
    vt("import", src, store, "-q")
    out = os.path.join(d, "o.gguf")
    vt("export", store, out)
    compare_gguf(src, out, "unicode names")
    sto = os.path.join(d, "o.safetensors")
    vt("export", store, sto)
    if os.path.exists(sto):
        _, got = st_parse(sto)
        check(sorted(got) == sorted(names), f"safetensors names {sorted(got)!r}")
        for n in names:
            if n in got:
                check(got[n][2] == x[n].tobytes(), f"safetensors {n!r}: bytes differ")
        lib = st_library_read(sto)
        if lib is not None:
            check(sorted(lib[1]) == sorted(names), f"safetensors library names {sorted(lib[1])!r}")
    for n in names:
        same_values(get_npy(store, n, d), x[n], f"get {n!r}")

    # a GGUF tensor named __metadata__ (GGUF allows it) cannot go to safetensors
    src2 = os.path.join(d, "meta.gguf")
    write_gguf(src2, [("__metadata__", x[names[0]], None), ("b", x[names[1]], None)])
    store2 = os.path.join(d, "m.vts")
    vt("import", src2, store2, "-q")
    bad = os.path.join(d, "m.safetensors")
    _, err, rc = vt("export", store2, bad, rc=1)
    check("__metadata__" in err, f"export of a tensor named __metadata__: {err!r}")
    no_file(bad, "__metadata__")
    ok = os.path.join(d, "m2.safetensors")
    vt("export", store2, ok, "--pattern", "b")
    if os.path.exists(ok):
        check(sorted(st_parse(ok)[1]) == ["b"], "export --pattern b")
    vt("export", store2, os.path.join(d, "m.gguf"))  # GGUF holds it

    # names of 64..255 bytes: the store holds them (GGUF from gguf-py, safetensors), but
    # ggml's reader refuses a GGUF name of GGML_MAX_NAME (64) bytes or more
    long_names = ["M" * 64, "N" * 255, "é" * 40]
    src3 = os.path.join(d, "long.safetensors")
    st_write(src3, {n: ("F32", (2, 3), x[names[0]].tobytes()) for n in long_names})
    store3 = os.path.join(d, "l.vts")
    vt("import", src3, store3, "-q")
    sto3 = os.path.join(d, "l.safetensors")
    vt("export", store3, sto3)
    if os.path.exists(sto3):
        check(sorted(st_parse(sto3)[1]) == sorted(long_names), "long names to safetensors")
    bad3 = os.path.join(d, "l.gguf")
    _, err, rc = vt("export", store3, bad3, rc=1)
    check("64" in err and ("M" * 64 in err or "N" * 60 in err or "é" in err),
          f"a long name to GGUF: {err!r}")
    no_file(bad3, "long name to GGUF")


def test_adv_empty_and_zero():
    """An empty store and tensors with no elements: readers accept the exports."""
    d = fresh("adv_empty")
    src = os.path.join(d, "e.gguf")
    write_gguf(src, [], kv=[("x.k", "v", VT.STRING, None)])
    store = os.path.join(d, "e.vts")
    vt("import", src, store, "-q")
    out = os.path.join(d, "e.out.gguf")
    vt("export", store, out)
    compare_gguf(src, out, "empty store")
    sto = os.path.join(d, "e.safetensors")
    vt("export", store, sto)
    meta, t = st_parse(sto)
    check(t == {} and not meta, f"empty store to safetensors: {meta} {t}")
    lib = st_library_read(sto)
    if lib is not None:
        check(lib[1] == {}, f"safetensors library on the empty export: {lib}")
    # an export whose pattern matches nothing is the same
    vt("export", store, os.path.join(d, "none.gguf"), "--pattern", "nothing*")

    src2 = os.path.join(d, "z.gguf")
    write_gguf(src2, [("z.rows0", np.zeros((0, 32), np.float32), None),
                      ("z.cols0", np.zeros((4, 0), np.float16), None),
                      ("z.q8", gguf.quants.quantize(np.zeros((0, 64), np.float32), QT.Q8_0),
                       QT.Q8_0),
                      ("z.after", np.arange(6, dtype=np.float32).reshape(2, 3), None)])
    store2 = os.path.join(d, "z.vts")
    _, _, rc = vt("import", src2, store2, "-q")
    if rc:
        return
    out2 = os.path.join(d, "z.out.gguf")
    vt("export", store2, out2)
    compare_gguf(src2, out2, "zero-element tensors")
    sto2 = os.path.join(d, "z.safetensors")
    vt("export", store2, sto2)
    _, t = st_parse(sto2)
    want = {"z.rows0": ("F32", [0, 32]), "z.cols0": ("F16", [4, 0]), "z.q8": ("F32", [0, 64]),
            "z.after": ("F32", [2, 3])}
    check({k: v[:2] for k, v in t.items()} == {k: tuple(v) for k, v in want.items()} or
          {k: (v[0], v[1]) for k, v in t.items()} == want,
          f"zero-element tensors to safetensors: {({k: v[:2] for k, v in t.items()})}")
    if st_library_read(sto2) is not None:
        check(sorted(st_library_read(sto2)[1]) == sorted(want), "library on zero tensors")
    same_values(get_npy(store2, "z.rows0", d), np.zeros((0, 32), np.float32), "get z.rows0")
    same_values(get_npy(store2, "z.cols0", d), np.zeros((4, 0), np.float32), "get z.cols0")
    same_values(get_npy(store2, "z.cols0[1:3]", d), np.zeros((2, 0), np.float32),
                "get z.cols0[1:3]")


def test_adv_huge_metadata():
    """A tokenizer-sized string array and a multi-MiB string go through unchanged."""
    d = fresh("adv_huge")
    toks = [f"tok{i}\u00e9" for i in range(40000)]
    kv = [("tokenizer.ggml.tokens", toks, VT.ARRAY, None),
          ("tokenizer.ggml.scores", [float(i) / 7 for i in range(40000)], VT.ARRAY,
           VT.FLOAT32),
          ("big.str", "x" * (6 << 20) + "✓", VT.STRING, None)]
    src = os.path.join(d, "h.gguf")
    write_gguf(src, [("t", np.ones((2, 32), np.float32), None)], kv=kv, alignment=256)
    store = os.path.join(d, "h.vts")
    vt("import", src, store, "-q")
    out = os.path.join(d, "h.out.gguf")
    vt("export", store, out)
    _, b = compare_gguf(src, out, "huge metadata")
    check(b.fields["tokenizer.ggml.tokens"].contents(slice(39998, 40000)) == toks[-2:],
          "huge metadata: last tokens differ")


def test_adv_unsupported_types():
    """What GGUF cannot hold: a clear error (exit 1, no file) or the documented conversion
    (floats GGUF has no type for are dequantized to --dtype, as quantized formats are)."""
    d = fresh("adv_types")
    fp8 = bytes([0x38, 0x40, 0x44, 0x48, 0xB8, 0x00, 0x01, 0x7E])
    src = os.path.join(d, "s.safetensors")
    st_write(src, {"fp8": ("F8_E4M3", (2, 4), fp8),
                   "u8": ("U8", (2, 3), bytes(range(6))),
                   "b": ("BOOL", (4,), bytes([0, 1, 1, 0])),
                   "five": ("F32", (2, 1, 2, 1, 3), np.arange(12, dtype=np.float32).tobytes()),
                   "scalar": ("F32", (), np.float32(3.5).tobytes())}, {"m": "1"})
    store = os.path.join(d, "s.vts")
    _, _, rc = vt("import", src, store, "--format", "keep", "-q")
    if rc:
        return
    # safetensors holds all of them as they are
    sto = os.path.join(d, "o.safetensors")
    vt("export", store, sto)
    _, t = st_parse(sto)
    check(t.get("fp8") == ("F8_E4M3", [2, 4], fp8), f"fp8 to safetensors: {t.get('fp8')}")
    check(t.get("scalar") == ("F32", [], np.float32(3.5).tobytes()), f"scalar: {t.get('scalar')}")
    check(t.get("five", (0, 0))[1] == [2, 1, 2, 1, 3], "5-D to safetensors")
    if st_rust is not None:
        st_library_read(sto)  # must not throw
    # GGUF: fp8 is dequantized to --dtype (exactly what `get` returns)
    for dt, qt in (("f16", QT.F16), ("f32", QT.F32)):
        out = os.path.join(d, f"fp8.{dt}.gguf")
        vt("export", store, out, "--pattern", "fp8", "--dtype", dt)
        if os.path.exists(out):
            tt = {x.name: x for x in gguf.GGUFReader(out).tensors}.get("fp8")
            if check(tt is not None, "fp8 to GGUF: missing"):
                check(tt.tensor_type == qt, f"fp8 to GGUF --dtype {dt}: {tt.tensor_type.name}")
                same_values(reader_values(tt), get_npy(store, "fp8", d), f"fp8 GGUF {dt}")
    # a scalar becomes a 1-element 1-D tensor in GGUF (GGUF has no 0-D tensors)
    out = os.path.join(d, "scalar.gguf")
    vt("export", store, out, "--pattern", "scalar")
    if os.path.exists(out):
        tt = gguf.GGUFReader(out).tensors
        check(len(tt) == 1 and list(tt[0].shape) == [1] and
              tt[0].data.tobytes() == np.float32(3.5).tobytes(), "scalar to GGUF")
    same_values(get_npy(store, "scalar", d), np.array(3.5, np.float32), "get scalar")
    # u8/bool (no GGUF type) and 5-D (GGUF has at most 4): refused naming the tensor
    for pat, word in (("u8", "u8"), ("b", "bool"), ("five", "5 dimensions")):
        out = os.path.join(d, f"bad.{pat}.gguf")
        _, err, rc = vt("export", store, out, "--pattern", pat, rc=1)
        check(f"'{pat}'" in err and word in err, f"GGUF export of {pat}: {err!r}")
        no_file(out, f"GGUF export of {pat}")
    # values f16 cannot hold: refused (default --dtype f16), exact with --dtype f32
    big = np.full((2, 64), 1e6, np.float32)
    big[1] = -3e5
    np.save(os.path.join(d, "big.npy"), big)
    store2 = os.path.join(d, "big.vts")
    vt("import", os.path.join(d, "big.npy"), store2, "--name", "big", "--format", "nf4", "-q")
    out = os.path.join(d, "big.gguf")
    _, err, rc = vt("export", store2, out, rc=1)
    check("big" in err, f"f16 overflow: {err!r}")
    no_file(out, "f16 overflow")
    vt("export", store2, out, "--dtype", "f32")
    if os.path.exists(out):
        tt = gguf.GGUFReader(out).tensors[0]
        same_values(reader_values(tt), get_npy(store2, "big", d), "nf4 big values to f32 GGUF")


def test_adv_chunked_zstd():
    """Many small chunks, zstd-compressed: the export's blocks are still the source's."""
    d = fresh("adv_chunks")
    x = RNG.standard_normal((300, 256)).astype(np.float32)
    src = os.path.join(d, "c.gguf")
    write_gguf(src, [("q8", gguf.quants.quantize(x, QT.Q8_0), QT.Q8_0),
                     ("q6k", random_kquant_rows(QT.Q6_K, 301, 256), QT.Q6_K),
                     ("f16", x.astype(np.float16), None),
                     ("zeros", np.zeros((200, 64), np.float32), None)])
    store = os.path.join(d, "c.vts")
    vt("import", src, store, "--chunk-size", "4K", "--zstd", "3", "-q")
    out = os.path.join(d, "c.out.gguf")
    vt("export", store, out)
    compare_gguf(src, out, "chunked zstd")
    sto = os.path.join(d, "c.safetensors")
    vt("export", store, sto)
    _, t = st_parse(sto)
    check(t.get("f16", (0, 0, b""))[2] == x.astype(np.float16).tobytes(), "f16 via safetensors")
    check(t.get("zeros", (0, 0, b""))[2] == bytes(200 * 64 * 4), "zeros via safetensors")
    same_values(get_npy(store, "q8[17:250]", d),
                gguf.quants.dequantize(gguf.quants.quantize(x, QT.Q8_0), QT.Q8_0)[17:250],
                "q8 rows 17..250 across chunks")


# --------------------------------------------------------------------------------------------


def main():
    os.makedirs(TMP, exist_ok=True)
    print(f"vtstore: {VT_BIN}; safetensors library: "
          f"{'yes' if st_rust is not None else 'no (spec parser only)'}")
    only = sys.argv[1:]
    tests = [(k, v) for k, v in sorted(globals().items()) if k.startswith("test_")]
    for name, fn in tests:
        if only and not any(o in name for o in only):
            continue
        before = len(FAILS)
        try:
            fn()
        except Exception:  # a reader that throws on an export is a failure too
            fail(f"{name}: exception\n{traceback.format_exc()}")
        print(f"{'ok  ' if len(FAILS) == before else 'FAIL'} {name}")
    if FAILS:
        print(f"{len(FAILS)} failure(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
