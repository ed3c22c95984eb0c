"""Loading libvtstore.so, the ctypes mirrors of the C structs, and the error mapping.

Every struct here mirrors one in include/vtstore/*.h field for field (same names, same order);
tests/python/test_vtstore_py.py compiles a C program that prints sizeof/offsetof of each and
compares them with ctypes, so a header change that is not repeated here fails the tests.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char,
    c_char_p,
    c_double,
    c_float,
    c_int,
    c_int64,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import Callable, List, Optional, Tuple

# ---- status codes (core.h) ----------------------------------------------------------------

VT_EFORMAT = -10001
VT_ECORRUPT = -10002
VT_ENOTFOUND = -10003
VT_EUNSUPPORTED = -10004
VT_ENONFINITE = -10005
VT_EVERSION = -10006
VT_EEXIST = -10007
VT_EBUDGET = -10008
VT_ECUDA = -10009
VT_ENODEV = -10010
VT_ELMDB = -10011
VT_EUSAGE = -10012
VT_ESHAPE = -10013
VT_EFAULT = -10014

# ---- constants of the headers ---------------------------------------------------------------

VT_MAX_DIMS = 8
VT_MAX_NAME = 256
VT_FMT_SPARSE24 = 0x100
VT_STORE_FMT_RAW = 0x200
VT_IMPORT_KEEP = 0x1000
VT_IMPORT_AUTO = 0x1001
VT_STORE_RDONLY = 0
VT_STORE_RDWR = 1
VT_STORE_CREATE = 2
VT_GEMV_MAX_BATCH = 8
VT_LOC_HOST = 0
VT_LOC_DEVICE = 1
# vt_io_engine, vt_schedule, vt_placement (tier.h)
VT_IO_AUTO = 0
VT_IO_URING = 1
VT_IO_PREAD = 2
VT_SCHEDULE_CYCLIC = 0
VT_SCHEDULE_RANDOM = 1
VT_PLACE_NONE = 0
VT_PLACE_VRAM_PIN = 1
VT_PLACE_RAM_PIN = 2
VT_PLACE_STREAM = 3
VT_PLACE_OVERSIZE = 4

# vt_dtype values (core.h)
DTYPES = {
    "f32": 0, "f16": 1, "bf16": 2, "f64": 3, "i8": 4, "u8": 5, "i16": 6, "i32": 7, "i64": 8,
    "fp8_e4m3": 9, "u16": 10, "u32": 11, "u64": 12, "bool": 13,
}  # fmt: skip


# ---- structs --------------------------------------------------------------------------------


class vt_quant_params(Structure):
    _fields_ = [
        ("tensor_scale", c_float),
        ("amax", c_float),
        ("channel_scale", POINTER(c_float)),
        ("channel_count", c_uint64),
    ]


class vt_format_info(Structure):
    _fields_ = [
        ("name", c_char_p),
        ("block_elems", c_uint32),
        ("block_bytes", c_uint32),
        ("bits_per_weight", c_double),
        ("can_quantize", c_int),
        ("needs_params", c_int),
    ]


class vt_tensor_metrics(Structure):
    _fields_ = [("sqnr_db", c_double), ("cosine", c_double), ("max_err", c_double)]


class vt_tensor_info(Structure):
    _fields_ = [
        ("name", c_char * VT_MAX_NAME),
        ("src_dtype", c_int),  # vt_dtype
        ("ndim", c_uint32),
        ("dims", c_uint64 * VT_MAX_DIMS),
        ("format", c_uint32),
        ("rows", c_uint64),
        ("cols", c_uint64),
        ("rows_per_chunk", c_uint64),
        ("n_chunks", c_uint64),
        ("raw_bytes", c_uint64),
        ("stored_bytes", c_uint64),
        ("tensor_scale", c_float),
        ("aux_bytes", c_uint64),
        ("metrics", vt_tensor_metrics),
        ("source", c_char * VT_MAX_NAME),
        ("id", c_uint64),
        ("commit_time", c_uint64),
    ]


class vt_store_options(Structure):
    _fields_ = [
        ("data_dirs", POINTER(c_char_p)),
        ("n_data_dirs", c_uint32),
        ("no_root_shards", c_int),
        ("shard_cap_bytes", c_uint64),
        ("chunk_target_bytes", c_uint64),
        ("zstd_level", c_int),
        ("map_size", c_uint64),
    ]


class vt_verify_problem(Structure):
    _fields_ = [
        ("code", c_int),
        ("tensor", c_char_p),
        ("chunk", c_int64),
        ("shard_id", c_uint32),
        ("offset", c_uint64),
        ("message", c_char_p),
    ]


class vt_verify_report(Structure):
    _fields_ = [
        ("tensors", c_uint64),
        ("chunks", c_uint64),
        ("bytes_read", c_uint64),
        ("problems", c_uint64),
    ]


class vt_store_gc_stats(Structure):
    _fields_ = [
        ("shards_before", c_uint64),
        ("shards_after", c_uint64),
        ("bytes_before", c_uint64),
        ("bytes_after", c_uint64),
        ("chunks_moved", c_uint64),
        ("bytes_moved", c_uint64),
        ("files_removed", c_uint64),
    ]


class vt_store_upgrade_stats(Structure):
    _fields_ = [
        ("from_version", c_uint32),
        ("to_version", c_uint32),
        ("chunks", c_uint64),
        ("bytes_read", c_uint64),
    ]


class vt_import_rule(Structure):
    _fields_ = [("glob", c_char_p), ("format", c_uint32)]


class vt_import_progress(Structure):
    _fields_ = [
        ("bytes_done", c_uint64),
        ("bytes_total", c_uint64),
        ("tensors_done", c_uint64),
        ("tensors_total", c_uint64),
        ("tensor", c_char_p),
        ("elapsed_s", c_double),
    ]


IMPORT_PROGRESS_FN = CFUNCTYPE(c_int, c_void_p, POINTER(vt_import_progress))
IMPORT_TENSOR_FN = CFUNCTYPE(None, c_void_p, POINTER(vt_tensor_info))
STORE_LIST_FN = CFUNCTYPE(c_int, c_void_p, POINTER(vt_tensor_info))
STORE_META_FN = CFUNCTYPE(c_int, c_void_p, c_char_p, c_void_p, c_size_t)
VERIFY_FN = CFUNCTYPE(None, c_void_p, POINTER(vt_verify_problem))


class vt_import_options(Structure):
    _fields_ = [
        ("format", c_uint32),
        ("rules", POINTER(vt_import_rule)),
        ("n_rules", c_uint32),
        ("target_sqnr_db", c_double),
        ("max_bits", c_double),
        ("requantize", c_int),
        ("awq_stats_path", c_char_p),
        ("tensor_name", c_char_p),
        ("nthreads", c_int),
        ("progress", IMPORT_PROGRESS_FN),
        ("progress_ctx", c_void_p),
        ("on_tensor", IMPORT_TENSOR_FN),
        ("on_tensor_ctx", c_void_p),
    ]


class vt_import_summary(Structure):
    _fields_ = [
        ("tensors", c_uint64),
        ("quantized", c_uint64),
        ("kept", c_uint64),
        ("bytes_in", c_uint64),
        ("bytes_stored", c_uint64),
        ("files", c_uint64),
        ("seconds", c_double),
    ]


class vt_export_options(Structure):
    _fields_ = [("pattern", c_char_p), ("dtype", c_int), ("nthreads", c_int)]


class vt_weight(Structure):
    _fields_ = [
        ("data", c_void_p),
        ("aux", POINTER(c_float)),
        ("location", c_int),  # vt_location
        ("format", c_uint32),
        ("rows", c_uint64),
        ("cols", c_uint64),
        ("row0", c_uint64),
        ("total_rows", c_uint64),
        ("bytes", c_uint64),
        ("tensor_scale", c_float),
        ("token", c_uint64),
    ]


class vt_tier_config(Structure):
    _fields_ = [
        ("vram_bytes", c_uint64),
        ("ram_bytes", c_uint64),
        ("prefetch", c_uint32),
        ("ring_slots", c_uint32),
        ("queue_depth", c_uint32),
        ("read_size", c_uint32),
        ("io_engine", c_int),  # vt_io_engine
        ("chunkwise", c_int),
        ("retry_corrupt", c_int),
        ("device", c_int),
    ]


class vt_tier_stats(Structure):
    _fields_ = [
        ("hits", c_uint64),
        ("misses", c_uint64),
        ("bytes_in", c_uint64),
        ("fill_seconds", c_double),
        ("gbps", c_double),
        ("capacity", c_uint64),
        ("pinned_bytes", c_uint64),
        ("pinned_tensors", c_uint64),
        ("slot_bytes", c_uint64),
        ("slots", c_uint32),
    ]


class vt_streamer_stats(Structure):
    _fields_ = [
        ("vram", vt_tier_stats),
        ("ram", vt_tier_stats),
        ("acquires", c_uint64),
        ("bytes_read", c_uint64),
        ("stall_seconds", c_double),
        ("corrupt_retries", c_uint64),
        ("model_bytes", c_uint64),
        ("engine", c_int),  # vt_io_engine
        ("registered_buffers", c_int),
        ("device_is_gpu", c_int),
    ]


class vt_kv_cache_config(Structure):
    _fields_ = [
        ("location", c_int),  # vt_location
        ("format", c_uint32),
        ("n_kv_heads", c_uint32),
        ("head_dim", c_uint32),
        ("capacity", c_uint64),
        ("tensor_scale", c_float),
    ]


class vt_attn_kv(Structure):
    _fields_ = [
        ("k", c_void_p),
        ("v", c_void_p),
        ("location", c_int),  # vt_location
        ("format", c_uint32),
        ("n_kv_heads", c_uint32),
        ("head_dim", c_uint32),
        ("n_tokens", c_uint64),
        ("head_stride", c_uint64),
        ("tensor_scale", c_float),
    ]


class vt_attn_params(Structure):
    _fields_ = [
        ("q", c_void_p),
        ("q_dtype", c_int),  # vt_dtype
        ("kv", vt_attn_kv),
        ("n_heads", c_uint32),
        ("n_q", c_uint64),
        ("causal", c_int),
        ("scale", c_float),
        ("o", c_void_p),
        ("o_dtype", c_int),  # vt_dtype
        ("lse", POINTER(c_float)),
        ("algo", c_int),  # vt_attn_algo
        ("nthreads", c_int),
        ("num_splits", c_int),
        ("stream", c_void_p),
        ("workspace", c_void_p),
        ("workspace_bytes", c_size_t),
    ]


# vt_attn_algo (attn.h)
VT_ATTN_AUTO = 0
VT_ATTN_FLASH = 1
VT_ATTN_DECODE = 2
VT_ATTN_NAIVE = 3
VT_ATTN_NAIVE_F64 = 4
VT_ATTN_MAX_HEAD_DIM = 4096

# The mirrored structs, for the layout test.
STRUCTS: Tuple[type, ...] = (
    vt_quant_params, vt_format_info, vt_tensor_metrics, vt_tensor_info, vt_store_options,
    vt_verify_problem, vt_verify_report, vt_store_gc_stats, vt_store_upgrade_stats, vt_import_rule, vt_import_progress, vt_import_options,
    vt_import_summary, vt_export_options, vt_weight, vt_tier_config, vt_tier_stats,
    vt_streamer_stats, vt_kv_cache_config, vt_attn_kv, vt_attn_params,
)  # fmt: skip

# ---- prototypes -----------------------------------------------------------------------------

_P = c_void_p  # opaque handles (vt_store *, vt_store_writer *, vt_writer_tensor *, vt_streamer *)
_PROTOTYPES = {
    # core.h
    "vt_strerror": (c_char_p, [c_int]),
    "vt_last_error": (c_char_p, []),
    "vt_clear_error": (None, []),
    "vt_version": (c_char_p, []),
    # quant.h
    "vt_format_get": (POINTER(vt_format_info), [c_uint32]),
    "vt_format_from_name": (c_int, [c_char_p, POINTER(c_uint32)]),
    "vt_format_name": (c_char_p, [c_uint32, c_char_p, c_size_t]),
    "vt_quant_params_init": (None, [POINTER(vt_quant_params)]),
    "vt_quant_observe": (c_int, [c_uint32, POINTER(vt_quant_params), POINTER(c_float), c_uint64]),
    "vt_quant_bytes": (c_uint64, [c_uint32, c_uint64, c_uint64]),
    "vt_quantize": (
        c_int,
        [c_uint32, POINTER(vt_quant_params), c_void_p, c_uint64, c_uint64, c_void_p, c_int],
    ),
    "vt_quant_check": (
        c_int,
        [c_uint32, POINTER(vt_quant_params), c_void_p, c_uint64, c_uint64],
    ),
    "vt_dequantize": (
        c_int,
        [c_uint32, POINTER(vt_quant_params), c_void_p, c_uint64, c_uint64, c_void_p, c_int],
    ),
    # store.h
    "vt_store_open": (c_int, [c_char_p, c_uint32, POINTER(vt_store_options), POINTER(_P)]),
    "vt_store_close": (None, [_P]),
    "vt_store_discard_new": (c_int, [_P]),
    "vt_store_errmsg": (c_char_p, [_P]),
    "vt_store_stat": (c_int, [_P, c_char_p, POINTER(vt_tensor_info)]),
    "vt_store_list": (c_int, [_P, c_char_p, STORE_LIST_FN, c_void_p]),
    "vt_store_read_aux": (c_int, [_P, c_char_p, c_void_p, c_size_t, POINTER(c_size_t)]),
    "vt_store_format_bytes": (c_uint64, [c_uint32, c_int, c_uint64, c_uint64]),
    "vt_store_read_tensor_raw": (c_int, [_P, c_char_p, c_void_p, c_size_t]),
    "vt_store_read_rows": (c_int, [_P, c_char_p, c_uint64, c_uint64, c_int, c_void_p, c_size_t]),
    "vt_store_get_meta": (c_int, [_P, c_char_p, c_void_p, c_size_t, POINTER(c_size_t)]),
    "vt_store_meta_list": (c_int, [_P, c_char_p, STORE_META_FN, c_void_p]),
    "vt_store_writer_begin": (c_int, [_P, POINTER(_P)]),
    "vt_writer_tensor_begin": (
        c_int,
        [_P, POINTER(vt_tensor_info), c_void_p, c_size_t, POINTER(_P)],
    ),
    "vt_writer_tensor_info": (c_int, [_P, _P, POINTER(vt_tensor_info)]),
    "vt_writer_put_chunk": (c_int, [_P, _P, c_uint64, c_void_p, c_size_t]),
    "vt_writer_tensor_end": (c_int, [_P, _P, POINTER(vt_tensor_metrics)]),
    "vt_writer_put_meta": (c_int, [_P, c_char_p, c_void_p, c_size_t]),
    "vt_store_writer_commit": (c_int, [_P]),
    "vt_store_writer_abort": (None, [_P]),
    "vt_store_remove": (c_int, [_P, c_char_p, POINTER(c_uint64)]),
    "vt_store_verify": (c_int, [_P, VERIFY_FN, c_void_p, POINTER(vt_verify_report)]),
    "vt_store_gc": (c_int, [_P, POINTER(vt_store_gc_stats)]),
    "vt_store_upgrade": (c_int, [_P, POINTER(vt_store_upgrade_stats)]),
    # meta.h
    "vt_meta_check": (c_int, [c_void_p, c_size_t]),
    # import.h
    "vt_import_options_init": (None, [POINTER(vt_import_options)]),
    "vt_import_file": (
        c_int,
        [_P, c_char_p, POINTER(vt_import_options), POINTER(vt_import_summary)],
    ),
    "vt_export_safetensors": (c_int, [_P, c_char_p, POINTER(vt_export_options)]),
    # kernels.h
    "vt_gemv": (c_int, [POINTER(vt_weight), c_void_p, c_void_p, c_int, c_void_p]),
    "vt_gemm": (c_int, [POINTER(vt_weight), c_void_p, c_int, c_void_p, c_int, c_uint64, c_void_p]),
    "vt_dequant": (c_int, [POINTER(vt_weight), c_int, c_void_p, c_void_p]),
    # tier.h
    "vt_streamer_open": (c_int, [_P, POINTER(vt_tier_config), POINTER(_P)]),
    "vt_streamer_close": (None, [_P]),
    "vt_streamer_plan": (c_int, [_P, POINTER(c_char_p), c_size_t, c_int]),
    "vt_streamer_placement": (c_int, [_P, c_char_p, POINTER(c_int)]),
    "vt_streamer_acquire": (c_int, [_P, c_char_p, POINTER(vt_weight)]),
    "vt_streamer_parts": (c_int, [_P, c_char_p, POINTER(c_uint64)]),
    "vt_streamer_acquire_part": (c_int, [_P, c_char_p, c_uint64, POINTER(vt_weight)]),
    "vt_streamer_release": (c_int, [_P, POINTER(vt_weight)]),
    "vt_streamer_prefetch": (c_int, [_P, c_char_p]),
    "vt_streamer_get_stats": (c_int, [_P, POINTER(vt_streamer_stats)]),
    "vt_streamer_reset_stats": (None, [_P]),
    "vt_placement_name": (c_char_p, [c_int]),
    # attn.h
    "vt_attn_kv_format_ok": (c_int, [c_uint32]),
    "vt_attn_row_bytes": (c_uint64, [c_uint32, c_uint32]),
    "vt_kv_cache_create": (c_int, [POINTER(vt_kv_cache_config), POINTER(_P)]),
    "vt_kv_cache_destroy": (None, [_P]),
    "vt_kv_cache_append": (c_int, [_P, c_void_p, c_void_p, c_int, c_uint64, c_void_p]),
    "vt_kv_cache_len": (c_uint64, [_P]),
    "vt_kv_cache_reset": (None, [_P]),
    "vt_kv_cache_view": (None, [_P, POINTER(vt_attn_kv)]),
    "vt_kv_cache_read": (c_int, [_P, c_uint64, c_uint64, c_void_p, c_void_p]),
    "vt_attn_params_init": (None, [POINTER(vt_attn_params)]),
    "vt_attn_forward": (c_int, [POINTER(vt_attn_params)]),
}

# ---- locating the library -------------------------------------------------------------------

_NAMES = ("libvtstore.so.0", "libvtstore.so")


def _candidates(tried: List[str]) -> List[Tuple[str, str]]:
    """(how, path or name) to try, in order (docs/PYTHON.md); notes misses in @p tried."""
    env = os.environ.get("VTSTORE_LIB")
    if env:
        return [("VTSTORE_LIB", env)]  # an explicit choice: no fallback to another library
    out = []
    # Installed next to the library: PREFIX/lib/pythonX.Y/site-packages/vtstore -> PREFIX/lib,
    # or the package copied into (a directory beside) PREFIX/lib.
    d = os.path.dirname(os.path.abspath(__file__))
    dirs = []
    for _ in range(3):
        d = os.path.dirname(d)
        dirs += [d, os.path.join(d, "lib"), os.path.join(d, "lib64")]
    for sub in dirs:
        for n in _NAMES:
            p = os.path.join(sub, n)
            if os.path.exists(p):
                out.append(("beside the package", p))
    if not out:
        tried.append("beside the package: none of " + ", ".join(_NAMES) + " in " + ", ".join(dirs))
    found = ctypes.util.find_library("vtstore")
    if found:
        out.append(("ctypes.util.find_library", found))
    else:
        tried.append("ctypes.util.find_library('vtstore'): not found")
    out.append(("the dynamic loader's search path", _NAMES[0]))
    return out


def _mapped_path(name: str) -> str:
    """The file the loader mapped for @p name (a bare soname), from /proc/self/maps."""
    if os.sep in name:
        return name
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split(None, 5)[-1].strip()
                if os.path.basename(p).startswith("libvtstore.so"):
                    return p
    except OSError:
        pass
    return name


def _load() -> Tuple[ctypes.CDLL, str]:
    tried: List[str] = []
    for how, path in _candidates(tried):
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{how}: {path} ({e})")
            continue
        try:
            for name, (res, args) in _PROTOTYPES.items():
                fn = getattr(lib, name)
                fn.restype = res
                fn.argtypes = args
        except AttributeError as e:
            tried.append(f"{how}: {path} (not a matching libvtstore: {e})")
            continue
        return lib, _mapped_path(path)
    raise ImportError(
        "vtstore: cannot load libvtstore.so; set VTSTORE_LIB to its full path. Tried:\n  "
        + "\n  ".join(tried)
    )


lib, library_path = _load()

# ---- errors ---------------------------------------------------------------------------------


class Error(Exception):
    """A libvtstore error: ``code`` (negative: -errno or VT_E*), ``name`` (vt_strerror) and
    ``detail`` (the library's message naming file, tensor, chunk...)."""

    def __init__(self, code: int, detail: str = "", what: str = "") -> None:
        self.code = code
        self.name = lib.vt_strerror(code).decode("utf-8", "replace")
        self.detail = detail
        self.what = what
        msg = f"{what}: {self.name}" if what else self.name
        super().__init__(f"{msg}: {detail}" if detail else msg)

    def __str__(self) -> str:
        return str(self.args[0])


class NotFoundError(Error, KeyError):
    """VT_ENOTFOUND: no such tensor, chunk or metadata key (also a KeyError)."""


Error.__module__ = NotFoundError.__module__ = "vtstore"  # as users name them


def threads(n, what: str = "nthreads") -> int:
    """A thread count for the C library's int: 0 (all) to 2^31 - 1; anything else (negative,
    beyond an int, not an integer) raises ValueError rather than wrapping in ctypes."""
    if isinstance(n, bool) or not isinstance(n, int) and not hasattr(n, "__index__"):
        raise ValueError(f"{what} must be an integer, not {type(n).__name__}")
    n = int(n.__index__()) if not isinstance(n, int) else n
    if not 0 <= n <= 0x7FFFFFFF:
        raise ValueError(f"{what} is {n}: expected 0 (all) to {0x7FFFFFFF}")
    return n


def _text(b: Optional[bytes]) -> str:
    return b.decode("utf-8", "replace") if b else ""


def error(code: int, what: str = "", store: Optional[int] = None) -> Error:
    """The exception for status @p code: the thread's last error, else the store's message."""
    detail = _text(lib.vt_last_error())
    if not detail and store:
        detail = _text(lib.vt_store_errmsg(store))
    cls = NotFoundError if code == VT_ENOTFOUND else Error
    return cls(code, detail, what)


def call(fn: Callable[..., int], *args, store: Optional[int] = None) -> None:
    """Run a status-returning C function; raise its Error on failure."""
    lib.vt_clear_error()
    rc = fn(*args)
    if rc != 0:
        raise error(rc, fn.__name__, store)
