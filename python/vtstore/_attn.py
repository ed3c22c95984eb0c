"""Attention over a quantized KV cache on the CPU (attn.h): the flash kernels with K and V kept
in a stored format (f32, f16, bf16, q8_0, int8, q4_0, nf4, nvfp4, mxfp4) and dequantized on
the fly, as `vtstore attn` runs them.

    o = vtstore.attention(q, k, v, kv_format="q8_0", causal=True)  # q [H,Nq,D]; k, v [Hkv,Nk,D]
    with vtstore.KVCache("q4_0", n_kv_heads=8, head_dim=128, capacity=4096) as kv:
        kv.append(k_new, v_new)                                      # [8, n, 128] f32 or f16
        o, lse = kv.attend(q, causal=True, return_lse=True)

Shapes follow FlashAttention's per-head layout: Q [H, Nq, D], K and V [Hkv, Nk, D], H a
multiple of Hkv (GQA/MQA); the causal mask is aligned bottom-right when Nq != Nk (query i sees
keys up to Nk - Nq + i), and a row that sees no key gets O = 0 and LSE = -inf. A KVCache may
be used from several threads; its calls run one at a time.
"""

from __future__ import annotations

import math
import operator
import threading
from ctypes import POINTER, byref, c_float, c_void_p
from typing import Optional, Tuple, Union

import numpy as np

from . import _lib, _quant
from ._lib import call, lib
from ._store import _Closing

_ALGOS = {"auto": _lib.VT_ATTN_AUTO, "flash": _lib.VT_ATTN_FLASH, "naive": _lib.VT_ATTN_NAIVE,
          "naive_f64": _lib.VT_ATTN_NAIVE_F64}  # fmt: skip
_IN = {np.dtype(np.float32): _lib.DTYPES["f32"], np.dtype(np.float16): _lib.DTYPES["f16"]}
_OUT = {"f32": (np.float32, _lib.DTYPES["f32"]), "f16": (np.float16, _lib.DTYPES["f16"])}


def _heads(a, what: str, dims: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """@p a as a C-contiguous float32 or float16 [heads, n, D] array (other float dtypes become
    float32); ValueError naming @p what otherwise, or when its heads and D differ from @p dims.
    A float64 value beyond float32 raises Error -ERANGE (it would become infinity: NaN out)."""
    arr = np.asarray(a)
    if arr.dtype not in _IN:
        if arr.dtype.kind != "f" and arr.dtype.kind not in "iu":
            raise ValueError(f"{what}: dtype {arr.dtype} (want float32 or float16)")
        arr = _quant._f32(arr, what) if arr.dtype.kind == "f" else arr.astype(np.float32)
    if arr.ndim != 3:
        raise ValueError(f"{what}: shape {arr.shape} (want [heads, tokens, head_dim])")
    if dims is not None and (arr.shape[0], arr.shape[2]) != dims:
        raise ValueError(f"{what}: shape {arr.shape}, want [{dims[0]}, n, {dims[1]}]")
    return np.ascontiguousarray(arr)


def _f32_scale(v, what: str) -> float:
    """@p v, a positive finite number, as the float32 the C struct takes. ValueError also when
    float32 cannot hold it: 1e-46 would become 0, which the library takes as its default."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a number, not {type(v).__name__}")
    try:
        with np.errstate(over="ignore", under="ignore"):
            f = float(np.float32(v))
    except OverflowError:  # an int beyond float64
        f = math.inf
    if not (math.isfinite(f) and f > 0 and v > 0):
        raise ValueError(f"{what} {v!r}: want a positive finite number that float32 holds "
                         "(about 1.4e-45 to 3.4e38)")  # fmt: skip
    return f


class KVCache(_Closing):
    """A KV cache on the host (vt_kv_cache): K and V of @p n_kv_heads heads of @p head_dim
    values, up to @p capacity tokens, stored in @p format (quantized as they are appended).
    @p tensor_scale: nvfp4's global scale (None: 1)."""

    def __init__(self, format: str, n_kv_heads: int, head_dim: int, capacity: int, *,
                 tensor_scale: Optional[float] = None) -> None:  # fmt: skip
        self._h: Optional[int] = None
        self._lock = threading.Lock()
        code = _quant.format_code(format)
        if not lib.vt_attn_kv_format_ok(code):
            raise ValueError(f"format {format!r} cannot hold K/V (use f32, f16, bf16, q8_0, int8, "
                             "q4_0, nf4, nvfp4 or mxfp4)")  # fmt: skip
        for name, v, top in (("n_kv_heads", n_kv_heads, 1 << 32), ("head_dim", head_dim, 1 << 32),
                             ("capacity", capacity, 1 << 64)):  # fmt: skip
            try:  # bool is an int to operator.index, but True heads is a mistake
                ok = not isinstance(v, bool) and 0 < operator.index(v) < top
            except TypeError:
                ok = False
            if not ok:
                raise ValueError(f"{name} {v!r}: want a positive integer below {top}")
        ts = 0.0 if tensor_scale is None else _f32_scale(tensor_scale, "tensor_scale")
        cfg = _lib.vt_kv_cache_config(location=_lib.VT_LOC_HOST, format=code,
                                      n_kv_heads=n_kv_heads, head_dim=head_dim,
                                      capacity=capacity, tensor_scale=ts)  # fmt: skip
        h = c_void_p()
        call(lib.vt_kv_cache_create, byref(cfg), byref(h))
        self._h = h.value
        self.format = _quant.format_name(code)
        self.n_kv_heads, self.head_dim = operator.index(n_kv_heads), operator.index(head_dim)
        self.capacity = operator.index(capacity)

    def close(self) -> None:
        """Free the cache (waits for a call running in another thread). Idempotent."""
        with self._lock:
            h, self._h = self._h, None
            if h:
                lib.vt_kv_cache_destroy(h)

    def _handle(self) -> int:
        if not self._h:
            raise ValueError("the KV cache is closed")
        return self._h

    def __len__(self) -> int:
        with self._lock:
            return int(lib.vt_kv_cache_len(self._handle()))

    def append(self, k, v) -> None:
        """Quantize and append tokens: @p k and @p v are [n_kv_heads, n, head_dim], float32 or
        float16 (one of each: both taken as float32, neither rounded to float16). All or
        nothing: a NaN/infinity (VT_ENONFINITE) or a value the format cannot hold (ERANGE),
        named by head, token and column, appends nothing."""
        self._handle()  # closed: ValueError, even for no tokens
        dims = (self.n_kv_heads, self.head_dim)
        ka, va = _heads(k, "k", dims), _heads(v, "v", dims)
        if ka.shape != va.shape:
            raise ValueError(f"k {ka.shape} and v {va.shape} differ")
        if ka.dtype != va.dtype:  # one call takes one dtype: f32 holds every f16 exactly
            ka, va = ka.astype(np.float32), va.astype(np.float32)
        if ka.shape[1] == 0:
            return
        with self._lock:
            call(lib.vt_kv_cache_append, self._handle(), ka.ctypes.data, va.ctypes.data,
                 _IN[ka.dtype], ka.shape[1], None)  # fmt: skip

    def reset(self) -> None:
        """Forget every token (the storage is kept)."""
        with self._lock:
            lib.vt_kv_cache_reset(self._handle())

    def read(self, start: int = 0, n: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """The stored K and V of tokens [start, start + n) (all from start when None),
        dequantized: two float32 [n_kv_heads, n, head_dim] arrays."""
        with self._lock:
            length = int(lib.vt_kv_cache_len(self._handle()))
            if n is None:
                n = max(length - start, 0)
            if start < 0 or n < 0 or start + n > length:
                raise ValueError(f"tokens [{start}, {start + n}) outside the {length} held")
            k = np.empty((self.n_kv_heads, n, self.head_dim), np.float32)
            v = np.empty_like(k)
            if n:
                call(lib.vt_kv_cache_read, self._h, start, n, k.ctypes.data, v.ctypes.data)
        return k, v

    def attend(self, q, *, causal: bool = False, scale: Optional[float] = None,
               return_lse: bool = False, algo: str = "auto", threads: int = 0,
               out_dtype: str = "f32"
               ) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:  # fmt: skip
        """O = softmax(scale Q K^T + mask) V over the tokens held (vt_attn_forward). @p q is
        [H, Nq, head_dim] float32 or float16, H a multiple of n_kv_heads. @p scale: None for
        1/sqrt(head_dim). @p algo: "auto"/"flash" (the tiled kernels), "naive" (scores in f32)
        or "naive_f64" (the oracle). Returns O [H, Nq, head_dim] of @p out_dtype ("f32" or
        "f16"), and with @p return_lse the log-sum-exp [H, Nq] (natural log) too."""
        self._handle()  # closed: ValueError, even for no queries
        qa = _heads(q, "q")
        if qa.shape[2] != self.head_dim:
            raise ValueError(f"q: head_dim {qa.shape[2]}, the cache holds {self.head_dim}")
        if algo not in _ALGOS:
            raise ValueError(f"algo {algo!r}: want one of {', '.join(_ALGOS)}")
        if out_dtype not in _OUT:
            raise ValueError(f"out_dtype {out_dtype!r}: want 'f32' or 'f16'")
        scale = 0.0 if scale is None else _f32_scale(scale, "scale")
        H, nq = qa.shape[0], qa.shape[1]
        o = np.empty(qa.shape, _OUT[out_dtype][0])
        lse = np.empty((H, nq), np.float32) if return_lse else None
        if H and nq:
            p = _lib.vt_attn_params()
            lib.vt_attn_params_init(byref(p))
            p.q, p.q_dtype = qa.ctypes.data, _IN[qa.dtype]
            p.n_heads, p.n_q, p.causal = H, nq, int(bool(causal))
            p.scale = scale
            p.o, p.o_dtype = o.ctypes.data, _OUT[out_dtype][1]
            if lse is not None:
                p.lse = lse.ctypes.data_as(POINTER(c_float))
            p.algo, p.nthreads = _ALGOS[algo], _lib.threads(threads, "threads")
            with self._lock:
                lib.vt_kv_cache_view(self._handle(), byref(p.kv))
                call(lib.vt_attn_forward, byref(p))
        return (o, lse) if return_lse else o


def attention(q, k, v, *, kv_format: Optional[str] = None, causal: bool = False,
              scale: Optional[float] = None, tensor_scale: Optional[float] = None,
              return_lse: bool = False, algo: str = "auto", threads: int = 0,
              out_dtype: str = "f32"
              ) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """Attention of @p q [H, Nq, D] over @p k, @p v [Hkv, Nk, D] on the CPU, K and V first
    stored in @p kv_format (None: as given, f16 when both are float16, else f32; nvfp4 takes
    @p tensor_scale, None: the scale vt_quant_observe picks for K and V together). The other
    arguments are KVCache.attend's."""
    ka = _heads(k, "k")
    va = _heads(v, "v", (ka.shape[0], ka.shape[2]))
    if va.shape != ka.shape:
        raise ValueError(f"k {ka.shape} and v {va.shape} differ")
    f16 = ka.dtype == va.dtype == np.float16
    fmt = kv_format or ("f16" if f16 else "f32")
    if _quant.format_name(_quant.format_code(fmt)) == "nvfp4" and tensor_scale is None:
        both = np.concatenate([ka.ravel(), va.ravel()]).astype(np.float32)
        # NaN/Inf: 1, and the append names the head, token and column (not an index in both)
        ok = both.size and np.isfinite(both).all()
        tensor_scale = _quant.tensor_scale(both, "nvfp4") if ok else 1.0
    with KVCache(fmt, ka.shape[0], ka.shape[2], max(ka.shape[1], 1),
                 tensor_scale=tensor_scale) as kv:  # fmt: skip
        kv.append(ka, va)
        return kv.attend(q, causal=causal, scale=scale, return_lse=return_lse, algo=algo,
                         threads=threads, out_dtype=out_dtype)  # fmt: skip
