"""Formats, quantize / dequantize of numpy arrays, and the CPU GEMV (quant.h, kernels.h)."""

from __future__ import annotations

import ctypes
import errno
import math
from ctypes import POINTER, byref, c_float, c_uint32
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _lib
from ._lib import Error, call, lib

FLOAT_DTYPES = {"f32": np.float32, "f16": np.float16, "bf16": np.uint16}  # bf16: bit patterns


def format_code(fmt: str) -> int:
    """The vt_format value of a format name ("q8_0", "nf4+2:4", ...); ValueError if unknown."""
    if not isinstance(fmt, str):
        raise TypeError(f"format must be a name (str), not {type(fmt).__name__}")
    out = c_uint32()
    lib.vt_clear_error()
    if "\0" in fmt or lib.vt_format_from_name(fmt.encode(), byref(out)) != 0:
        detail = _lib._text(lib.vt_last_error()) or f"unknown format {fmt!r}"
        raise ValueError(detail)
    return out.value


def format_name(code: int) -> str:
    """Name of a vt_format value ("?" when invalid); "raw" for VT_STORE_FMT_RAW."""
    if code == _lib.VT_STORE_FMT_RAW:
        return "raw"
    buf = ctypes.create_string_buffer(32)
    return lib.vt_format_name(code, buf, len(buf)).decode()


def formats() -> List[str]:
    """Names of the base formats this library knows, in vt_format order."""
    out = []
    while True:
        fi = lib.vt_format_get(len(out))
        if not fi:
            return out
        out.append(fi.contents.name.decode())


def format_info(fmt: str) -> dict:
    """Block geometry of a format: block_elems, block_bytes, bits_per_weight, can_quantize,
    needs_params (vt_format_info of the base format), and sparse24. For a 2:4-sparse format
    ("nf4+2:4") the name keeps the suffix and bits_per_weight counts its stored bytes per weight
    of the dense matrix on a 4096-column row (vt_quant_bytes: the kept half plus the masks),
    not the base format's."""
    code = format_code(fmt)
    fi = lib.vt_format_get(code).contents
    sparse = bool(code & _lib.VT_FMT_SPARSE24)
    return {
        "name": format_name(code),
        "block_elems": fi.block_elems,
        "block_bytes": fi.block_bytes,
        "bits_per_weight": lib.vt_quant_bytes(code, 1, 4096) * 8 / 4096 if sparse
        else fi.bits_per_weight,
        "can_quantize": bool(fi.can_quantize),
        "needs_params": bool(fi.needs_params),
        "sparse24": sparse,
    }  # fmt: skip


def _base(code: int) -> str:
    return format_name(code & 0xFF)


def _shape(shape: Union[int, Sequence[int]]) -> Tuple[int, ...]:
    """@p shape as a tuple of ints (an int is a 1-D shape, as numpy takes it). TypeError for a
    dimension that is not an integer: int() would cut 8.7 to 8 and the byte count could match."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a sequence of ints, not {type(shape).__name__}") from None
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise TypeError(f"shape {dims}: dimension {d!r} is not an int")
    return tuple(int(d) for d in dims)


def _rows_cols(shape: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """The 2-D view of quant.h: cols = last dim, rows = product of the others (1-D: one row)."""
    shape = _shape(shape)
    if not shape:
        return 1, 1
    if any(d < 0 for d in shape):
        raise ValueError(f"negative dimension in shape {shape}")
    rows, cols = math.prod(shape[:-1]), shape[-1]
    if rows >= 2**64 or cols >= 2**64:  # ctypes would pass them on modulo 2^64
        raise ValueError(f"shape {shape}: {rows} x {cols} values do not fit 64-bit sizes")
    return rows, cols


def _as_bytes(buf) -> np.ndarray:
    """A contiguous uint8 view of a bytes-like object or numpy array (no copy when possible)."""
    if isinstance(buf, np.ndarray):
        return np.ascontiguousarray(buf).reshape(-1).view(np.uint8)
    return np.frombuffer(memoryview(buf).cast("B"), dtype=np.uint8)


def _nbytes(code: int, rows: int, cols: int) -> int:
    """vt_quant_bytes, refusing the sizes it reports as 0 because they overflow."""
    n = int(lib.vt_quant_bytes(code, rows, cols))
    if n == 0 and rows and cols:
        raise Error(-errno.EOVERFLOW, f"{rows} x {cols} values do not fit 64-bit sizes", "size")
    return n


def _f32(array, what: str = "array") -> np.ndarray:
    """C-contiguous float32 array from any real floating array (ValueError for others)."""
    a = np.asarray(array)
    if a.dtype.kind != "f":
        raise ValueError(f"{what} must be a floating-point array, not {a.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        a32 = np.ascontiguousarray(a, dtype=np.float32)
        bad = np.isfinite(a) & ~np.isfinite(a32) if a.dtype.itemsize > 4 else None
    if bad is not None and bad.any():  # f64 -> f32 overflowed: say so, do not pass Inf on
        idx = np.unravel_index(int(np.argmax(bad)), a.shape)
        raise Error(-errno.ERANGE, f"value {a[idx]!r} at index {tuple(int(i) for i in idx)} "
                    "does not fit float32", what)
    return a32


class _Params:
    """A vt_quant_params and the arrays it borrows (kept alive with it)."""

    def __init__(self, code: int, cols: int, tensor_scale: Optional[float],
                 channel_scale) -> None:  # fmt: skip
        self.p = _lib.vt_quant_params()
        lib.vt_quant_params_init(byref(self.p))
        self.scales = None
        base = _base(code)
        if tensor_scale is not None:
            self.p.tensor_scale = float(tensor_scale)
        if channel_scale is not None:
            s = np.ascontiguousarray(channel_scale, dtype=np.float32).reshape(-1)
            if s.size != cols:
                raise ValueError(f"channel_scale has {s.size} values, the tensor {cols} columns")
            self.scales = s
            self.p.channel_scale = s.ctypes.data_as(POINTER(c_float))
            self.p.channel_count = cols
        elif base == "awq_int4":
            raise ValueError("awq_int4 needs channel_scale (the AWQ per-input-channel scales)")
        if channel_scale is not None and base != "awq_int4":
            raise ValueError(f"channel_scale is awq_int4's; {base} takes none (it was ignored)")

    @property
    def ref(self):
        return byref(self.p)


def _observe(a: np.ndarray, code: int) -> float:
    p = _lib.vt_quant_params()
    lib.vt_quant_params_init(byref(p))
    call(lib.vt_quant_observe, code, byref(p), a.ctypes.data_as(POINTER(c_float)), a.size)
    return p.tensor_scale


def tensor_scale(array, fmt: str = "nvfp4") -> float:
    """The tensor-level scale vt_quant_observe derives for @p fmt (nvfp4: amax / (6 * 448);
    1 for formats without one). quantize() computes it when not given; dequantize() needs it."""
    return _observe(_f32(array), format_code(fmt))


def quantize(array, fmt: str, *, tensor_scale: Optional[float] = None, channel_scale=None,
             nthreads: int = 0) -> np.ndarray:  # fmt: skip
    """Quantize a float array (viewed as rows x cols, cols = last dim) to @p fmt.

    Returns the blocks as a uint8 array of vt_quant_bytes(fmt, rows, cols) bytes. nvfp4 takes
    ``tensor_scale`` (computed from the array when None, see tensor_scale()); awq_int4 needs
    ``channel_scale`` ([cols] positive floats). Raises ValueError (bad format or parameters),
    Error VT_ENONFINITE (NaN/Inf), Error -ERANGE (a value the format cannot hold)."""
    code = format_code(fmt)
    a = _f32(array)
    rows, cols = _rows_cols(a.shape)
    if _base(code) == "nvfp4" and tensor_scale is None:
        tensor_scale = _observe(a, code)
    p = _Params(code, cols, tensor_scale, channel_scale)
    out = np.zeros(_nbytes(code, rows, cols), dtype=np.uint8)
    if rows and cols:
        call(lib.vt_quantize, code, p.ref, a.ctypes.data, rows, cols, out.ctypes.data,
             _lib.threads(nthreads))
    return out


def dequantize(buf, fmt: str, shape: Union[int, Sequence[int]], *,
               tensor_scale: Optional[float] = None, channel_scale=None,
               nthreads: int = 0) -> np.ndarray:  # fmt: skip
    """Dequantize the blocks in @p buf (bytes-like, exactly vt_quant_bytes long) to a float32
    array of @p shape (a tuple of ints, or an int for 1-D). nvfp4 needs the ``tensor_scale``
    the blocks were made with, awq_int4 its ``channel_scale``."""
    code = format_code(fmt)
    shape = _shape(shape)
    rows, cols = _rows_cols(shape)
    if _base(code) == "nvfp4" and tensor_scale is None:
        raise ValueError("nvfp4 needs tensor_scale (the one quantize used: see tensor_scale())")
    q = _as_bytes(buf)
    need = _nbytes(code, rows, cols)
    if q.size != need:
        raise ValueError(f"{fmt} {rows}x{cols} takes {need} bytes, got {q.size}")
    p = _Params(code, cols, tensor_scale, channel_scale)
    out = np.empty(shape, dtype=np.float32)
    if rows and cols:
        call(lib.vt_dequantize, code, p.ref, q.ctypes.data, rows, cols, out.ctypes.data,
             _lib.threads(nthreads))
    return out


def gemv(buf, fmt: Union[str, int], shape: Union[int, Sequence[int]], x, *,
         tensor_scale: Optional[float] = None, channel_scale=None) -> np.ndarray:  # fmt: skip
    """y = W x on the CPU with the fused kernels (vt_gemv; vt_gemm above 8 vectors), W the
    quantized rows x cols matrix in @p buf. x: [cols] -> y: [rows]; x: [batch, cols] ->
    y: [batch, rows]."""
    code = format_code(fmt) if isinstance(fmt, str) else int(fmt)
    rows, cols = _rows_cols(shape)
    q = _as_bytes(buf)
    if _base(code) == "nvfp4" and tensor_scale is None:
        raise ValueError("nvfp4 needs tensor_scale")
    need = _nbytes(code, rows, cols)
    if q.size != need:
        raise ValueError(f"{format_name(code)} {rows}x{cols} takes {need} bytes, got {q.size}")
    xa = _gemv_x(x, cols)
    p = _Params(code, cols, tensor_scale, channel_scale)
    w = _lib.vt_weight(
        data=q.ctypes.data, aux=p.p.channel_scale, location=_lib.VT_LOC_HOST, format=code,
        rows=rows, cols=cols, row0=0, total_rows=rows, bytes=q.size,
        tensor_scale=p.p.tensor_scale, token=0,
    )  # fmt: skip
    return gemv_weight(w, xa)


def _gemv_x(x, cols: int) -> np.ndarray:
    """x as a C-contiguous float32 [cols] or [batch, cols] array (ValueError otherwise)."""
    xa = _f32(x, "x")
    if xa.ndim not in (1, 2) or xa.shape[-1] != cols:
        raise ValueError(f"x of shape {xa.shape} does not match W with {cols} columns")
    return xa


def gemv_weight(w: _lib.vt_weight, xa: np.ndarray) -> np.ndarray:
    """y = W x for a host vt_weight @p w and x from _gemv_x (vt_gemv, vt_gemm above 8)."""
    rows = w.rows
    batch = 1 if xa.ndim == 1 else xa.shape[0]
    y = np.empty((rows,) if xa.ndim == 1 else (batch, rows), dtype=np.float32)
    if batch == 0 or rows == 0:
        return y
    if batch <= _lib.VT_GEMV_MAX_BATCH:
        call(lib.vt_gemv, byref(w), xa.ctypes.data, y.ctypes.data, batch, None)
    else:
        f32 = _lib.DTYPES["f32"]
        call(lib.vt_gemm, byref(w), xa.ctypes.data, f32, y.ctypes.data, f32, batch, None)
    return y
