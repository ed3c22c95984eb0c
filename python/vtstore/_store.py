"""Stores: reading, writing numpy arrays, import and export, verify (store.h, import.h)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import math
import os
import struct
import threading
import weakref
from ctypes import POINTER, byref, c_char_p, c_size_t, c_uint64, c_void_p
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional,
                    Sequence, Tuple, TypeVar, Union)  # fmt: skip

import numpy as np

from . import _lib, _quant
from ._lib import Error, call, lib

if TYPE_CHECKING:
    from ._stream import Streamer

Rules = Union[Mapping[str, str], Sequence[Tuple[str, str]], None]

_MODES = {
    "r": _lib.VT_STORE_RDONLY,
    "w": _lib.VT_STORE_RDWR,
    "c": _lib.VT_STORE_RDWR | _lib.VT_STORE_CREATE,
}
_DTYPE_NAMES = {v: k for k, v in _lib.DTYPES.items()}
# numpy dtype -> vt_dtype of the source (what a tensor records as src_dtype)
_NP_DTYPES = {
    np.dtype(np.float32): "f32", np.dtype(np.float16): "f16", np.dtype(np.float64): "f64",
    np.dtype(np.int8): "i8", np.dtype(np.uint8): "u8", np.dtype(np.int16): "i16",
    np.dtype(np.uint16): "u16", np.dtype(np.int32): "i32", np.dtype(np.uint32): "u32",
    np.dtype(np.int64): "i64", np.dtype(np.uint64): "u64", np.dtype(np.bool_): "bool",
}  # fmt: skip


def _name(name: str, what: str = "tensor name") -> bytes:
    """UTF-8 bytes of a name; ValueError for one the C API would read differently."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, not {type(name).__name__}")
    b = name.encode("utf-8")
    if not b or b"\0" in b or len(b) >= _lib.VT_MAX_NAME:
        raise ValueError(f"{what} {name!r}: 1..{_lib.VT_MAX_NAME - 1} bytes without NUL")
    return b


def _float_dtype(dtype) -> str:
    """"f32", "f16" or "bf16" for an output dtype given by that name or as a numpy dtype
    (np.float32, np.float16); ValueError otherwise."""
    key = dtype if isinstance(dtype, str) else _NP_DTYPES.get(np.dtype(dtype))
    if key not in _quant.FLOAT_DTYPES:
        raise ValueError(f"dtype {dtype!r}: expected 'f32', 'f16' or 'bf16'")
    return key


def _path(path: Union[str, bytes, os.PathLike], what: str = "path") -> bytes:
    """The file system bytes of @p path; ValueError for a NUL in it (as open() raises): C would
    cut the path there and open, create, import or write another file."""
    b = os.fsencode(path)
    if b"\0" in b:
        raise ValueError(f"{what} {path!r} contains NUL")
    return b


def _int(v: Any, what: str, lo: int, hi: int) -> int:
    """@p v as an int in [lo, hi) (TypeError / ValueError otherwise: ctypes would wrap it)."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{what} must be an int, not {type(v).__name__}")
    if not lo <= int(v) < hi:
        raise ValueError(f"{what} {v}: expected {lo} <= {what} < {hi}")
    return int(v)


def _pattern(pattern: Optional[str], what: str = "pattern") -> Optional[bytes]:
    """UTF-8 bytes of an optional glob or prefix (None: all). A NUL would cut it short in C and
    silently select other names, so it is refused like in names."""
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        raise TypeError(f"{what} must be a str or None, not {type(pattern).__name__}")
    b = pattern.encode("utf-8")
    if b"\0" in b:
        raise ValueError(f"{what} {pattern!r} contains NUL")
    return b or None


def _info_dict(ti: _lib.vt_tensor_info) -> Dict[str, Any]:
    return {
        "name": ti.name.decode("utf-8", "replace"),
        "format": _quant.format_name(ti.format),
        "dtype": _DTYPE_NAMES.get(ti.src_dtype, "?"),
        "shape": tuple(int(d) for d in ti.dims[: ti.ndim]),
        "rows": ti.rows,
        "cols": ti.cols,
        "rows_per_chunk": ti.rows_per_chunk,
        "chunks": ti.n_chunks,
        "raw_bytes": ti.raw_bytes,
        "stored_bytes": ti.stored_bytes,
        "tensor_scale": ti.tensor_scale,
        "aux_bytes": ti.aux_bytes,
        "sqnr_db": ti.metrics.sqnr_db,
        "cosine": ti.metrics.cosine,
        "max_err": ti.metrics.max_err,
        "source": ti.source.decode("utf-8", "replace"),
        "id": ti.id,
        "commit_time": ti.commit_time,
    }


# ---- typed metadata (meta.h: u32 type, then GGUF's little-endian encoding) ----------------

_META_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                 10: "<Q", 11: "<q", 12: "<d"}  # fmt: skip
_META_STRING, _META_ARRAY = 8, 9


def _meta_value(buf: bytes, pos: int, typ: int) -> Tuple[Any, int]:
    if typ in _META_SCALARS:
        f = _META_SCALARS[typ]
        return struct.unpack_from(f, buf, pos)[0], pos + struct.calcsize(f)
    if typ == _META_STRING:
        (n,) = struct.unpack_from("<Q", buf, pos)
        raw = buf[pos + 8 : pos + 8 + n]
        try:
            return raw.decode("utf-8"), pos + 8 + n
        except UnicodeDecodeError:
            return raw, pos + 8 + n
    if typ == _META_ARRAY:
        et, n = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        if et in _META_SCALARS:
            dt = np.dtype(_META_SCALARS[et])
            arr = np.frombuffer(buf, dtype=dt, count=n, offset=pos).copy()
            return arr, pos + n * dt.itemsize
        out = []
        for _ in range(n):
            v, pos = _meta_value(buf, pos, et)
            out.append(v)
        return out, pos
    raise Error(_lib.VT_EFORMAT, f"metadata value of unknown type {typ}")


def decode_meta(buf: bytes) -> Any:
    """Decode a typed metadata value (meta.h): scalars as int/float/bool, strings as str
    (bytes when not UTF-8), numeric arrays as numpy arrays, other arrays as lists."""
    (typ,) = struct.unpack_from("<I", buf, 0)
    return _meta_value(buf, 4, typ)[0]


# ---- store ----------------------------------------------------------------------------------


_C = TypeVar("_C", bound="_Closing")


class _Closing:
    """close() on leaving a with block, and on garbage collection."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class Store(_Closing):
    """An open store (vtstore.open). A context manager; iterating yields tensor names."""

    def __init__(self, path: Union[str, os.PathLike], mode: str = "r", *, zstd_level: int = 0,
                 chunk_target_bytes: int = 0, shard_cap_bytes: int = 0,
                 data_dirs: Optional[Sequence[str]] = None,
                 no_root_shards: bool = False) -> None:  # fmt: skip
        self._h: Optional[int] = None
        self._writer: Optional[Writer] = None
        # Calls in flight (any thread), so that close() waits for them instead of freeing the
        # handle under a read still running in another thread (that crashed the process).
        # Reentrant: a streamer's close may run from the finalizer of a zero-copy view
        # (garbage collection) in a thread that holds it (_unpin).
        self._cv = threading.Condition(threading.RLock())
        self._busy = 0
        self._tls = threading.local()  # .depth: this thread's calls in flight (callbacks)
        # Streamers opened on this store (they borrow the vt_store): close() closes them, and
        # _pins counts those the library has not closed yet (a zero-copy view of a handle
        # delays it), so that the vt_store is freed after them (_deferred_h meanwhile).
        self._streamers: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._pins = 0
        self._deferred_h: Optional[int] = None
        if mode not in _MODES:
            raise ValueError(f"mode {mode!r}: expected 'r' (read), 'w' (read-write) or 'c' "
                             "(read-write, created if missing)")  # fmt: skip
        self.path = os.fspath(path)
        self.mode = mode
        bpath = _path(self.path, "store path")
        opt = _lib.vt_store_options(
            shard_cap_bytes=_int(shard_cap_bytes, "shard_cap_bytes", 0, 2**64),
            zstd_level=_int(zstd_level, "zstd_level", -(2**31), 2**31),
            chunk_target_bytes=_int(chunk_target_bytes, "chunk_target_bytes", 0, 2**64),
            no_root_shards=int(bool(no_root_shards)),
        )  # fmt: skip
        if isinstance(data_dirs, (str, bytes, os.PathLike)):  # would be taken char by char
            raise TypeError("data_dirs must be a sequence of directories, not one path: use "
                            f"[{data_dirs!r}]")  # fmt: skip
        if data_dirs:
            enc = [_path(d, "data dir") for d in data_dirs]
            dirs = (c_char_p * len(enc))(*enc)
            opt.data_dirs = ctypes.cast(dirs, POINTER(c_char_p))
            opt.n_data_dirs = len(enc)
        h = c_void_p()
        call(lib.vt_store_open, bpath, _MODES[mode], byref(opt), byref(h))
        self._h = h.value

    # -- lifetime

    def close(self) -> None:
        """Close the store (aborting a writer still open, closing its streamers). Idempotent.
        Calls running in other threads finish first; later calls raise ValueError."""
        if getattr(self._tls, "depth", 0):
            raise Error(_lib.VT_EUSAGE, "close() from a callback of a call on this store",
                        "Store.close")  # fmt: skip
        with self._cv:
            streamers = list(self._streamers)
        for st in streamers:
            st.close()
        with self._cv:
            h, self._h = self._h, None
            while self._busy:
                self._cv.wait()
            w, self._writer = self._writer, None
            if w is not None:
                w._w = None  # vt_store_close aborts and frees it
            if h and self._pins:  # a streamer still open in the library: it closes the store
                self._deferred_h, h = h, None
        if h:
            lib.vt_store_close(h)

    def _unpin(self) -> None:
        """A streamer of this store was closed in the library."""
        with self._cv:
            self._pins -= 1
            h = None
            if not self._pins:
                h, self._deferred_h = self._deferred_h, None
        if h:
            lib.vt_store_close(h)

    @property
    def closed(self) -> bool:
        return self._h is None

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"mode {self.mode!r}"
        return f"<vtstore.Store {self.path!r} {state}>"

    def _enter(self) -> int:
        """The handle, counted as in use until _leave (ValueError when closed)."""
        with self._cv:
            h = self._h
            if not h:
                raise ValueError("operation on a closed store")
            self._busy += 1
        self._tls.depth = getattr(self._tls, "depth", 0) + 1
        return h

    def _leave(self) -> None:
        self._tls.depth -= 1
        with self._cv:
            self._busy -= 1
            if not self._busy:
                self._cv.notify_all()

    @contextlib.contextmanager
    def _use(self) -> Iterator[int]:
        h = self._enter()
        try:
            yield h
        finally:
            self._leave()

    def _call(self, fn: Callable[..., int], *args) -> None:
        with self._use() as h:
            call(fn, h, *args, store=h)

    # -- tensors

    def names(self, pattern: Optional[str] = None) -> List[str]:
        """Tensor names matching the fnmatch glob @p pattern (all when None), in byte order."""
        out: List[str] = []

        def each(_ctx, ti) -> int:
            out.append(ti.contents.name.decode("utf-8", "replace"))
            return 0

        cb = _lib.STORE_LIST_FN(each)
        self._call(lib.vt_store_list, _pattern(pattern), cb, None)
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            _name(name)
        except (ValueError, UnicodeEncodeError):  # no tensor can have that name
            return False
        try:
            self._stat(name)
        except KeyError:
            return False
        return True

    def _stat(self, name: str) -> _lib.vt_tensor_info:
        ti = _lib.vt_tensor_info()
        self._call(lib.vt_store_stat, _name(name), byref(ti))
        return ti

    def info(self, name: str) -> Dict[str, Any]:
        """The tensor's record: format, dtype (of the source), shape, rows, cols, chunks,
        raw_bytes, stored_bytes, tensor_scale, sqnr_db / cosine / max_err (measured at import
        or put; NaN when not measured, inf when exact), source, id, commit_time..."""
        return _info_dict(self._stat(name))

    def _aux(self, name: str, nbytes: int) -> Optional[np.ndarray]:
        if not nbytes:
            return None
        a = np.empty(nbytes // 4, dtype=np.float32)
        self._call(lib.vt_store_read_aux, _name(name), a.ctypes.data, a.nbytes, None)
        return a

    def quant_params(self, name: str) -> Dict[str, Any]:
        """What dequantize()/gemv() need besides the blocks: tensor_scale and channel_scale
        (awq: [cols] float32, else None)."""
        ti = self._stat(name)
        return {"tensor_scale": ti.tensor_scale, "channel_scale": self._aux(name, ti.aux_bytes)}

    def read(self, name: str, rows: Union[slice, int, None] = None,
             dtype: str = "f32") -> np.ndarray:  # fmt: skip
        """Dequantized values (vt_store_read_rows) as float32, float16 or, for "bf16", uint16
        bit patterns. rows=None: the whole tensor in its own shape; a slice (step 1) of the
        rows x cols view: [n, cols]; an int: that row, [cols]."""
        key = _float_dtype(dtype)
        ti = self._stat(name)
        nrows = ti.rows
        if rows is None:
            r0, n, shape = 0, nrows, tuple(ti.dims[: ti.ndim])
        elif isinstance(rows, slice):
            start, stop, step = rows.indices(nrows)
            if step != 1:
                raise ValueError("rows: only slices with step 1")
            r0, n = start, max(0, stop - start)
            shape = (n, ti.cols)
        elif isinstance(rows, (int, np.integer)):
            r = int(rows) + (nrows if rows < 0 else 0)
            if not 0 <= r < nrows:
                raise IndexError(f"row {rows} out of range for {nrows} rows")
            r0, n, shape = r, 1, (ti.cols,)
        else:
            raise TypeError("rows must be None, a slice or an int")
        out = np.empty(shape, dtype=_quant.FLOAT_DTYPES[key])
        if out.size:
            self._call(lib.vt_store_read_rows, _name(name), r0, n, _lib.DTYPES[key],
                       out.ctypes.data, out.nbytes)  # fmt: skip
        return out

    def __getitem__(self, name: str) -> np.ndarray:
        return self.read(name)

    def read_raw(self, name: str) -> np.ndarray:
        """The stored bytes of the tensor (all chunks, checksums verified, decompressed) as a
        uint8 array: the blocks dequantize() takes, or a raw tensor's values (.view(dtype))."""
        ti = self._stat(name)
        out = np.empty(ti.raw_bytes, dtype=np.uint8)
        if out.size:
            self._call(lib.vt_store_read_tensor_raw, _name(name), out.ctypes.data, out.nbytes)
        return out

    def gemv(self, name: str, x) -> np.ndarray:
        """y = W x with the CPU kernels for tensor @p name (its rows x cols view); see
        vtstore.gemv. The tensor is read whole into memory first."""
        ti = self._stat(name)
        if ti.format == _lib.VT_STORE_FMT_RAW:
            raise ValueError(f"tensor {name} is stored raw, not in a quantization format")
        p = self.quant_params(name)
        return _quant.gemv(self.read_raw(name), ti.format, (ti.rows, ti.cols), x, **p)

    # -- metadata

    def meta(self, key: str, raw: bool = False) -> Any:
        """Metadata @p key: decoded when it is a typed value (import's GGUF keys, safetensors
        __metadata__...; see decode_meta), else (or with raw=True) the bytes. KeyError if
        absent."""
        k = _name(key, "metadata key")
        n = c_size_t()
        buf = ctypes.create_string_buffer(4096)
        with self._use() as h:
            lib.vt_clear_error()
            rc = lib.vt_store_get_meta(h, k, buf, len(buf), byref(n))
            if rc == -errno.ERANGE:  # larger than the guess: n has its size
                buf = ctypes.create_string_buffer(n.value)
                rc = lib.vt_store_get_meta(h, k, buf, len(buf), byref(n))
            if rc:
                raise _lib.error(rc, "vt_store_get_meta", h)
        val = buf.raw[: n.value]
        if raw or lib.vt_meta_check(val, len(val)) != 0:
            return val
        return decode_meta(val)

    def meta_keys(self, prefix: Optional[str] = None) -> List[str]:
        """Metadata keys starting with @p prefix (all when None), in key order."""
        out: List[str] = []

        def each(_ctx, key, _val, _len) -> int:
            out.append(key.decode("utf-8", "replace"))
            return 0

        cb = _lib.STORE_META_FN(each)
        self._call(lib.vt_store_meta_list, _pattern(prefix, "prefix"), cb, None)
        return out

    # -- maintenance

    def verify(self) -> Dict[str, Any]:
        """Read and check every chunk and the index (vt_store_verify). Returns ok, tensors,
        chunks, bytes_read and problems (a list of dicts: code, error, tensor, chunk, shard_id,
        offset, message). Raises Error only when the check itself cannot run."""
        problems: List[Dict[str, Any]] = []

        def each(_ctx, pp) -> None:
            p = pp.contents
            problems.append({
                "code": p.code, "error": _lib._text(lib.vt_strerror(p.code)),
                "tensor": _lib._text(p.tensor), "chunk": p.chunk, "shard_id": p.shard_id,
                "offset": p.offset, "message": _lib._text(p.message),
            })  # fmt: skip

        cb = _lib.VERIFY_FN(each)
        rep = _lib.vt_verify_report()
        with self._use() as h:
            lib.vt_clear_error()
            rc = lib.vt_store_verify(h, cb, None, byref(rep))
            if rc not in (0, _lib.VT_ECORRUPT):
                raise _lib.error(rc, "vt_store_verify", h)
        return {"ok": rc == 0, "tensors": rep.tensors, "chunks": rep.chunks,
                "bytes_read": rep.bytes_read, "problems": problems}  # fmt: skip

    def remove(self, pattern: str) -> int:
        """Remove the tensors matching the glob @p pattern (one transaction); returns how many.
        Their bytes become garbage for `vtstore gc`."""
        n = c_uint64()
        self._call(lib.vt_store_remove, _name(pattern, "pattern"), byref(n))
        return n.value

    def gc(self) -> Dict[str, int]:
        """Reclaim the space of removed or replaced tensors and orphan files (vt_store_gc; takes
        the writer lock). Returns shards_before/after, bytes_before/after, chunks_moved,
        bytes_moved, files_removed."""
        st = _lib.vt_store_gc_stats()
        self._call(lib.vt_store_gc, byref(st))
        return {f[0]: getattr(st, f[0]) for f in st._fields_}

    def discard_new(self) -> bool:
        """Remove the store this handle created (mode "c" on a missing path or an empty
        directory, which is kept, emptied) while it holds nothing: no tensor, chunk or metadata
        key (vt_store_discard_new). For a first write that failed, so that the failure leaves
        nothing behind; import_file does this. True when removed (then only close() is left),
        False when kept, nothing touched (not created by this handle, written into, or another
        writer running)."""
        with self._use() as h:
            lib.vt_clear_error()
            rc = lib.vt_store_discard_new(h)
            if rc < 0:
                raise _lib.error(rc, "vt_store_discard_new", h)
        return rc == 1

    def upgrade(self) -> Dict[str, int]:
        """Rewrite a store of an older format version in the newest one, in place
        (vt_store_upgrade; `vtstore upgrade`). Returns from_version, to_version (equal when
        there was nothing to do), chunks (records rewritten) and bytes_read."""
        st = _lib.vt_store_upgrade_stats()
        self._call(lib.vt_store_upgrade, byref(st))
        return {f[0]: getattr(st, f[0]) for f in st._fields_}

    # -- streaming

    def streamer(self, *, ram_bytes: int, **config) -> "Streamer":
        """A Streamer over this store (vt_streamer_open): ram_bytes, vram_bytes, prefetch,
        ring_slots, queue_depth, read_size, io_engine, chunkwise, retry_corrupt, device (the
        fields of vt_tier_config). close() closes it too."""
        from ._stream import Streamer

        return Streamer(self, ram_bytes=ram_bytes, **config)

    # -- writing

    def writer(self) -> "Writer":
        """A writer (a context manager): tensors and metadata put through it become visible
        together at commit (on leaving the with block), or not at all."""
        return Writer(self)

    def put(self, name: str, array, format: str = "q8_0", **kw) -> Dict[str, Any]:
        """Write one tensor in its own writer (see Writer.put) and return its info()."""
        with self.writer() as w:
            w.put(name, array, format, **kw)
        return self.info(name)

    def import_file(self, src: Union[str, os.PathLike], format: Optional[str] = None,
                    rules: Rules = None, *, requantize: bool = False,
                    target_sqnr_db: float = 0.0, max_bits: float = 0.0,
                    awq_stats: Optional[str] = None, tensor_name: Optional[str] = None,
                    nthreads: int = 0,
                    progress: Optional[Callable[[Dict[str, Any]], Any]] = None,
                    ) -> Dict[str, Any]:  # fmt: skip
        """Import a .safetensors (or its index.json), .gguf or .npy file (vt_import_file), all
        or nothing. format: None/"keep" (the source's type), "auto" (with target_sqnr_db or
        max_bits) or a format name; rules: {glob: format} or [(glob, format)], first match
        wins. progress(dict) may return True to cancel. Returns the summary (tensors,
        quantized, kept, bytes_in, bytes_stored, files, seconds) and names: the tensors
        written."""
        o = _lib.vt_import_options()
        lib.vt_import_options_init(byref(o))
        o.format = _import_format(format)
        pairs = list(rules.items() if isinstance(rules, Mapping) else rules or [])
        arr = (_lib.vt_import_rule * max(1, len(pairs)))()
        for i, (glob, fmt) in enumerate(pairs):
            arr[i].glob = _name(glob, "rule glob")
            arr[i].format = _import_format(fmt)
        o.rules = ctypes.cast(arr, POINTER(_lib.vt_import_rule))  # arr outlives the call
        o.n_rules = len(pairs)
        o.target_sqnr_db, o.max_bits = target_sqnr_db, max_bits
        o.requantize = int(requantize)
        o.awq_stats_path = _path(awq_stats, "awq_stats") if awq_stats else None
        o.tensor_name = _name(tensor_name) if tensor_name else None
        o.nthreads = _lib.threads(nthreads)
        names: List[str] = []
        raised: List[BaseException] = []

        def on_tensor(_ctx, ti) -> None:
            names.append(ti.contents.name.decode("utf-8", "replace"))

        def on_progress(_ctx, pp) -> int:
            p = pp.contents
            try:
                return 1 if progress({  # type: ignore[misc]
                    "bytes_done": p.bytes_done, "bytes_total": p.bytes_total,
                    "tensors_done": p.tensors_done, "tensors_total": p.tensors_total,
                    "tensor": _lib._text(p.tensor), "elapsed_s": p.elapsed_s,
                }) else 0  # fmt: skip
            except BaseException as e:  # cancel, and raise it after the import
                raised.append(e)
                return 1

        o.on_tensor = _lib.IMPORT_TENSOR_FN(on_tensor)
        if progress is not None:
            o.progress = _lib.IMPORT_PROGRESS_FN(on_progress)
        s = _lib.vt_import_summary()
        try:
            self._call(lib.vt_import_file, _path(src, "source path"), byref(o), byref(s))
        except Error:
            if raised:  # the callback's own exception, not the -ECANCELED it caused
                raise raised[0] from None
            raise
        return {"tensors": s.tensors, "quantized": s.quantized, "kept": s.kept,
                "bytes_in": s.bytes_in, "bytes_stored": s.bytes_stored, "files": s.files,
                "seconds": s.seconds, "names": names}  # fmt: skip

    def export_safetensors(self, path: Union[str, os.PathLike], pattern: Optional[str] = None,
                           dtype: str = "f32") -> None:  # fmt: skip
        """Write the tensors (matching @p pattern) to a safetensors file: f32/f16/bf16 tensors
        bit-exact, raw ones in their dtype, quantized ones dequantized to @p dtype."""
        if dtype not in _quant.FLOAT_DTYPES:
            raise ValueError(f"dtype {dtype!r}: expected 'f32', 'f16' or 'bf16'")
        o = _lib.vt_export_options(pattern=_pattern(pattern), dtype=_lib.DTYPES[dtype],
                                   nthreads=0)  # fmt: skip
        self._call(lib.vt_export_safetensors, _path(path, "output path"), byref(o))


def _import_format(fmt: Optional[str]) -> int:
    if fmt is None or fmt == "keep":
        return _lib.VT_IMPORT_KEEP
    if fmt == "auto":
        return _lib.VT_IMPORT_AUTO
    return _quant.format_code(fmt)


# ---- writer ---------------------------------------------------------------------------------


class Writer:
    """One store writer (vt_store_writer): put tensors and metadata, then commit. Any error
    aborts the whole writer, so nothing of it becomes visible. Use it as a context manager:
    leaving the block commits, or aborts when an exception leaves it."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._w: Optional[int] = None
        self._busy = 0  # this writer's calls in flight (under store._cv)
        with store._use() as h:
            if store._writer is not None:
                raise Error(_lib.VT_EUSAGE, "this Store already has an open writer",
                            "Store.writer")  # fmt: skip
            w = c_void_p()
            call(lib.vt_store_writer_begin, h, byref(w), store=h)
            with store._cv:
                self._w = w.value
                store._writer = self

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and self._w:
            self.commit()
        else:
            self.abort()

    def _handle(self) -> int:
        if not self._w:
            raise Error(_lib.VT_EUSAGE, "the writer was committed or aborted", "Writer")
        return self._w

    @contextlib.contextmanager
    def _use(self) -> Iterator[Tuple[int, int]]:
        """(writer, store handle), counted as in use: commit, abort and the store's close wait
        for calls of other threads to return instead of freeing the writer under them."""
        st = self._store
        with st._cv:
            w, h = self._handle(), st._h
            if not h:
                raise ValueError("operation on a closed store")
            st._busy += 1
            self._busy += 1
        try:
            yield w, h
        finally:
            with st._cv:
                st._busy -= 1
                self._busy -= 1
                st._cv.notify_all()

    def _call(self, fn: Callable[..., int], *args) -> None:
        try:
            with self._use() as (w, h):
                call(fn, w, *args, store=h)
        except BaseException:
            self.abort()
            raise

    def _take(self) -> Tuple[Optional[int], Optional[int]]:
        """Detach the writer handle once no call of it is in flight: (writer, store handle),
        the store counted busy until _store._leave; (None, None) when there is nothing to do
        (already finished, or the store's close is closing it, which aborts the writer)."""
        st = self._store
        with st._cv:
            w, self._w, h = self._w, None, st._h
            if w is None:
                return None, None
            if st._writer is self:
                st._writer = None
            if not h:
                return None, None
            st._busy += 1
            while self._busy:
                st._cv.wait()
        st._tls.depth = getattr(st._tls, "depth", 0) + 1
        return w, h

    def abort(self) -> None:
        """Drop everything put through this writer. Idempotent."""
        w, h = self._take()
        if h:
            try:
                lib.vt_store_writer_abort(w)
            finally:
                self._store._leave()

    def commit(self) -> None:
        """Make everything put visible atomically (the writer is finished either way)."""
        self._handle()
        w, h = self._take()
        if not h:
            if self._store._h:
                self._handle()  # committed or aborted by another thread meanwhile
            raise ValueError("operation on a closed store")
        try:
            call(lib.vt_store_writer_commit, w, store=h)  # frees w in all cases
        finally:
            self._store._leave()

    def put_meta(self, key: str, value: Union[bytes, str]) -> None:
        """Set user metadata @p key to @p value (bytes-like; str is stored UTF-8) at commit.
        TypeError for anything else (bytes(5) would store five zero bytes). Any exception,
        a bad key or value included, aborts the writer."""
        self._handle()
        try:
            k = _name(key, "metadata key")
            if isinstance(value, str):
                v = value.encode()
            else:
                try:
                    v = memoryview(value).tobytes()
                except TypeError:
                    raise TypeError("metadata value must be bytes-like or str, not "
                                    f"{type(value).__name__}") from None  # fmt: skip
        except BaseException:
            self.abort()
            raise
        self._call(lib.vt_writer_put_meta, k, v, len(v))

    def put(self, name: str, array, format: str = "q8_0", *, rows_per_chunk: int = 0,
            tensor_scale: Optional[float] = None, channel_scale=None, source: str = "",
            measure: bool = True, nthreads: int = 0) -> None:  # fmt: skip
        """Quantize @p array to @p format chunk by chunk and add it as tensor @p name.

        Float arrays take any writable format; format="raw" stores any numeric array's bytes
        as they are (integers, bool, f64...). The source dtype recorded is the array's.
        rows_per_chunk: 0 = from the store's chunk_target_bytes. nvfp4: tensor_scale (from the
        array when None); awq_int4: channel_scale. measure: record SQNR, cosine and max error
        against the array (one dequantization). Any exception aborts the writer."""
        self._handle()
        try:
            self._put(name, array, format, rows_per_chunk, tensor_scale, channel_scale, source,
                      measure, _lib.threads(nthreads))  # fmt: skip
        except BaseException:
            self.abort()
            raise

    def _put(self, name, array, format, rows_per_chunk, tensor_scale, channel_scale, source,
             measure, nthreads) -> None:  # fmt: skip
        a = np.asarray(array)
        bname = _name(name)
        if a.ndim > _lib.VT_MAX_DIMS:
            raise ValueError(f"tensor {name}: {a.ndim} dimensions, at most {_lib.VT_MAX_DIMS}")
        if a.dtype.newbyteorder("=") not in _NP_DTYPES:
            raise ValueError(f"tensor {name}: unsupported dtype {a.dtype}")
        src_dt = _NP_DTYPES[a.dtype.newbyteorder("=")]
        rows, cols = _quant._rows_cols(a.shape)
        raw = format == "raw"
        if raw:
            code = _lib.VT_STORE_FMT_RAW
            data = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).reshape(rows, cols)
            params = None
        else:
            code = _quant.format_code(format)
            if a.dtype.kind != "f":
                raise ValueError(f"tensor {name}: {a.dtype} values are stored with "
                                 "format='raw', not quantized")  # fmt: skip
            data = _quant._f32(a, f"tensor {name}").reshape(rows, cols)
            if _quant._base(code) == "nvfp4" and tensor_scale is None:
                tensor_scale = _quant._observe(data, code)
            params = _quant._Params(code, cols, tensor_scale, channel_scale)
            if rows and cols:  # whole-tensor checks first: row numbers of the tensor, not a chunk
                lib.vt_clear_error()
                rc = lib.vt_quant_check(code, params.ref, data.ctypes.data, rows, cols)
                if rc:
                    raise _lib.error(rc, f"tensor {name}")

        ti = _lib.vt_tensor_info()
        ti.name = bname
        ti.src_dtype = _lib.DTYPES[src_dt]
        ti.ndim = a.ndim
        for i, d in enumerate(a.shape):
            ti.dims[i] = d
        ti.format = code
        if isinstance(rows_per_chunk, bool) or not isinstance(rows_per_chunk, (int, np.integer)):
            raise TypeError(f"rows_per_chunk must be an int, not {type(rows_per_chunk).__name__}")
        if not 0 <= rows_per_chunk < 2**64:  # -1 used to wrap to 2^64 - 1 in the record
            raise ValueError(f"rows_per_chunk {rows_per_chunk}: expected 0 (from the store's "
                             "chunk_target_bytes) or a positive row count")  # fmt: skip
        ti.rows_per_chunk = int(rows_per_chunk)
        nvfp4 = params is not None and _quant._base(code) == "nvfp4"
        ti.tensor_scale = params.p.tensor_scale if nvfp4 else 1.0  # others: unset (NaN) in params
        ti.metrics.sqnr_db = ti.metrics.cosine = ti.metrics.max_err = math.nan
        ti.source = _name(source, "source") if source else b""
        aux = params.scales if params is not None and params.scales is not None else None

        t = c_void_p()
        self._call(lib.vt_writer_tensor_begin, byref(ti), None if aux is None else aux.ctypes.data,
                   0 if aux is None else aux.nbytes, byref(t))  # fmt: skip
        self._call(lib.vt_writer_tensor_info, t, byref(ti))
        acc = _Metrics()
        for i in range(ti.n_chunks):
            r0 = i * ti.rows_per_chunk
            r1 = min(r0 + ti.rows_per_chunk, rows)
            src = data[r0:r1]
            if raw:
                buf = src.reshape(-1).view(np.uint8)
            else:
                buf = np.empty(lib.vt_store_format_bytes(code, ti.src_dtype, r1 - r0, cols),
                               dtype=np.uint8)  # fmt: skip
                call(lib.vt_quantize, code, params.ref, src.ctypes.data, r1 - r0, cols,
                     buf.ctypes.data, nthreads)  # fmt: skip
                if measure:
                    back = np.empty_like(src)
                    call(lib.vt_dequantize, code, params.ref, buf.ctypes.data, r1 - r0, cols,
                         back.ctypes.data, nthreads)  # fmt: skip
                    acc.add(a.reshape(rows, cols)[r0:r1], back)
            self._call(lib.vt_writer_put_chunk, t, i, buf.ctypes.data, buf.nbytes)
        m = _lib.vt_tensor_metrics(math.nan, math.nan, math.nan)
        if raw:
            m = _lib.vt_tensor_metrics(math.inf, 1.0, 0.0)  # an exact copy
        elif measure:
            m = acc.result()
        self._call(lib.vt_writer_tensor_end, t, byref(m))


class _Metrics:
    """SQNR, cosine and max error of a tensor from chunk sums (f64), as vt_metrics_compute."""

    def __init__(self) -> None:
        self.sx = self.sy = self.sxy = self.se = self.max_err = 0.0

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        x = x.astype(np.float64).reshape(-1)
        y = y.astype(np.float64).reshape(-1)
        d = x - y
        self.sx += float(x @ x)
        self.sy += float(y @ y)
        self.sxy += float(x @ y)
        self.se += float(d @ d)
        if d.size:
            self.max_err = max(self.max_err, float(np.max(np.abs(d))))

    def result(self) -> _lib.vt_tensor_metrics:
        if self.se == 0:
            sqnr = math.inf
        elif self.sx == 0:
            sqnr = -math.inf
        else:
            sqnr = 10.0 * math.log10(self.sx / self.se)
        if self.sx == 0 and self.sy == 0:
            cos = 1.0
        elif self.sx == 0 or self.sy == 0:
            cos = 0.0
        else:
            cos = self.sxy / math.sqrt(self.sx * self.sy)
        return _lib.vt_tensor_metrics(sqnr, cos, self.max_err)


def open(path: Union[str, os.PathLike], mode: str = "r", **options) -> Store:  # noqa: A001
    """Open the store directory @p path. mode: "r" read-only, "w" read-write, "c" read-write
    and created if missing. options (writers of this handle): zstd_level, chunk_target_bytes,
    shard_cap_bytes, data_dirs, no_root_shards (vt_store_options)."""
    return Store(path, mode, **options)


def import_file(store_path: Union[str, os.PathLike], src_path: Union[str, os.PathLike],
                format: Optional[str] = None, rules: Rules = None, *, zstd_level: int = 0,
                **kw) -> Dict[str, Any]:  # fmt: skip
    """Import @p src_path into the store at @p store_path (created if missing); see
    Store.import_file for the options and the summary returned."""
    with Store(store_path, "c", zstd_level=zstd_level) as s:
        try:
            return s.import_file(src_path, format, rules, **kw)
        except BaseException:
            with contextlib.suppress(Error):
                s.discard_new()  # a store this call created goes again (vtstore import does)
            raise
