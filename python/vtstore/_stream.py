"""The streamer (tier.h): tensors of a store streamed through a RAM tier and a device tier, for
an inference loop that acquires each weight, uses it and releases it.

    with store.streamer(ram_bytes=1 << 30) as st:
        st.plan(names)                                # one forward pass, repeated
        for _ in range(passes):
            for name in names:
                with st.acquire(name) as w:           # blocks until resident
                    y = w.gemv(x)                     # or w.dequantize(), w.raw()

Lifetimes. A Handle's memory belongs to the streamer (a ring slot or a pinned area) and is
reused once the handle is released, so nothing handed to Python points into it after that:
``raw()`` returns a copy by default; ``raw(copy=False)`` returns a read-only zero-copy view
that keeps the memory it shows valid for as long as the view (or any array made from it)
exists. Releasing such a handle (or closing the streamer) takes effect for the caller at once,
and the library's release (or close) happens when the last view is garbage collected.

Threads. Every call may be made from any thread. ``close()`` waits for the calls running in
other threads (an acquire waiting for data returns an error), ``plan()`` refuses to run while
handles are held or acquires are in flight, and calls after ``close()`` raise ValueError.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import threading
import weakref
from ctypes import byref, c_char_p, c_int, c_uint64, c_void_p
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np

from . import _lib, _quant
from ._lib import Error, call, lib
from ._store import Store, _Closing, _float_dtype, _name

_ENGINES = {"auto": _lib.VT_IO_AUTO, "uring": _lib.VT_IO_URING, "pread": _lib.VT_IO_PREAD}
_ENGINE_NAMES = {v: k for k, v in _ENGINES.items()}
_SCHEDULES = {"cyclic": _lib.VT_SCHEDULE_CYCLIC, "random": _lib.VT_SCHEDULE_RANDOM}


def _uint(v: Any, what: str, bits: int) -> int:
    """@p v as an int in [0, 2^bits) (TypeError / ValueError otherwise: ctypes would wrap)."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{what} must be an int, not {type(v).__name__}")
    if not 0 <= int(v) < 2**bits:
        raise ValueError(f"{what} {v}: expected 0 <= {what} < 2^{bits}")
    return int(v)


def _tier_dict(t: _lib.vt_tier_stats) -> Dict[str, Any]:
    return {f[0]: getattr(t, f[0]) for f in t._fields_}


class Streamer(_Closing):
    """A vt_streamer over a Store (see the module's docstring and docs/PYTHON.md). A context
    manager: leaving the block closes it.

    Budgets are bytes: ram_bytes (> 0: the pinned host tier, staging slots included) and
    vram_bytes (0: no device tier, handles point to host memory; on a machine without a GPU the
    device tier is host memory too). prefetch (0 = 2), ring_slots (0 = prefetch + 2),
    queue_depth (0 = 64), read_size (0 = 4 MiB, a multiple of 4096), io_engine ("auto",
    "uring" or "pread"), chunkwise (stream tensors larger than a ring slot in parts),
    retry_corrupt (re-read a chunk once when its checksum fails) and device (CUDA ordinal) are
    the fields of vt_tier_config."""

    def __init__(self, store: Store, *, ram_bytes: int, vram_bytes: int = 0, prefetch: int = 0,
                 ring_slots: int = 0, queue_depth: int = 0, read_size: int = 0,
                 io_engine: str = "auto", chunkwise: bool = False, retry_corrupt: bool = False,
                 device: int = 0) -> None:  # fmt: skip
        self._h: Optional[int] = None
        self._closed = True  # until opened: __del__ and close() then do nothing
        if not isinstance(store, Store):
            raise TypeError(f"expected a vtstore.Store, not {type(store).__name__}")
        self._store = store
        # _cv guards everything below. Reentrant: the finalizer of a zero-copy view may run
        # (garbage collection) in a thread that holds it.
        self._cv = threading.Condition(threading.RLock())
        self._busy = 0  # calls in flight (all threads), acquires included
        self._acquiring = 0  # acquires in flight
        self._planning = False
        self._views = 0  # zero-copy views alive, over all handles
        self._held: "weakref.WeakSet[Handle]" = weakref.WeakSet()  # held in C
        if io_engine not in _ENGINES:
            raise ValueError(f"io_engine {io_engine!r}: expected 'auto', 'uring' or 'pread'")
        if isinstance(device, bool) or not isinstance(device, (int, np.integer)):
            raise TypeError(f"device must be an int, not {type(device).__name__}")
        if not -(2**31) <= int(device) < 2**31:
            raise ValueError(f"device {device} does not fit an int")
        cfg = _lib.vt_tier_config(
            vram_bytes=_uint(vram_bytes, "vram_bytes", 64),
            ram_bytes=_uint(ram_bytes, "ram_bytes", 64),
            prefetch=_uint(prefetch, "prefetch", 32),
            ring_slots=_uint(ring_slots, "ring_slots", 32),
            queue_depth=_uint(queue_depth, "queue_depth", 32),
            read_size=_uint(read_size, "read_size", 32),
            io_engine=_ENGINES[io_engine], chunkwise=int(bool(chunkwise)),
            retry_corrupt=int(bool(retry_corrupt)), device=int(device),
        )  # fmt: skip
        self.config = {f[0]: getattr(cfg, f[0]) for f in cfg._fields_}
        self.config["io_engine"] = io_engine
        with store._use() as sh:  # the store's close waits for this open
            out = c_void_p()
            call(lib.vt_streamer_open, sh, byref(cfg), byref(out))
            with store._cv:
                self._h = out.value
                self._closed = False
                store._pins += 1  # the vt_store stays open until this streamer's close
                store._streamers.add(self)

    # -- lifetime

    def close(self) -> None:
        """Close the streamer. Idempotent. Handles still held become invalid (using them
        raises ValueError); an acquire waiting in another thread raises Error (VT_EUSAGE);
        calls running in other threads finish first. While zero-copy views of its handles are
        alive, the library's close waits until the last one is garbage collected."""
        with self._cv:
            if self._closed:
                return
            self._closed = True
            self._cv.notify_all()  # calls waiting for a plan to end: they raise ValueError
            for h in list(self._held):
                h._released = True
                self._free(h)  # those without views: frees their slots for acquires in flight
            while self._busy and not self._views:
                self._cv.wait()
            self._finish()

    @property
    def closed(self) -> bool:
        """True once close() was called (the library's close may still wait for views)."""
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self.held} handle(s) held"
        return f"<vtstore.Streamer of {getattr(self._store, 'path', '?')!r} {state}>"

    def _finish(self) -> None:
        """The library's close, once close() was called and no call or view uses it. Locked."""
        if not (self._closed and self._h and not self._busy and not self._views):
            return
        h, self._h = self._h, None
        for x in list(self._held):
            x._c_held = False
        self._held.clear()
        lib.vt_streamer_close(h)
        self._store._unpin()
        self._cv.notify_all()

    def _enter(self, acquire: bool = False) -> int:
        """The handle, counted in flight until _leave (ValueError once closed). Locked."""
        while self._planning and not self._closed:
            self._cv.wait()
        if self._closed:
            raise ValueError("operation on a closed streamer")
        self._busy += 1
        self._acquiring += acquire
        return self._h  # type: ignore[return-value]

    def _leave(self, acquire: bool = False) -> None:
        """Locked."""
        self._busy -= 1
        self._acquiring -= acquire
        self._cv.notify_all()
        self._finish()

    @contextlib.contextmanager
    def _use(self) -> Iterator[int]:
        with self._cv:
            h = self._enter()
        try:
            yield h
        finally:
            with self._cv:
                self._leave()

    def _free(self, h: "Handle") -> int:
        """The library's release of @p h once it is released and nothing reads its memory (no
        view alive, no call on it in flight). Locked. Returns the status."""
        if not (h._c_held and h._released and not h._views and not h._ops and self._h):
            return 0
        h._c_held = False
        self._held.discard(h)
        lib.vt_clear_error()
        return lib.vt_streamer_release(self._h, byref(h._w))

    def _view_gone(self, h: "Handle") -> None:
        """Finalizer of a zero-copy view's buffer: the last reference to it is gone."""
        with self._cv:
            h._views -= 1
            self._views -= 1
            self._free(h)
            self._finish()

    @property
    def held(self) -> int:
        """Handles held in the library: not released yet, or released while zero-copy views of
        them are still alive (each keeps its ring slot until its last view goes)."""
        with self._cv:
            return sum(1 for h in self._held if h._c_held)

    def _pinned_by_views(self) -> List[str]:
        with self._cv:
            return sorted(h.name for h in self._held if h._released and h._views)

    # -- schedule

    def plan(self, names: Sequence[str], schedule: str = "cyclic") -> None:
        """Declare the access pattern (vt_streamer_plan): "cyclic", @p names are one pass,
        repeated in this order (pins what fits, streams the rest through the ring); "random",
        any order (S3-FIFO caches). Replaces an earlier plan. No handle may be held and no
        acquire be running (Error VT_EUSAGE)."""
        if isinstance(names, (str, bytes)):
            raise TypeError("names must be a sequence of tensor names, not one name")
        if schedule not in _SCHEDULES:
            raise ValueError(f"schedule {schedule!r}: expected 'cyclic' or 'random'")
        enc = [_name(n) for n in names]
        arr = (c_char_p * max(1, len(enc)))(*enc)
        with self._cv:
            h = self._enter()
            try:
                if self._acquiring:
                    raise Error(_lib.VT_EUSAGE, f"{self._acquiring} acquire(s) in flight in "
                                "other threads; plan between passes", "Streamer.plan")  # fmt: skip
                held = sorted(x.name for x in self._held if x._c_held)
                if held:
                    pinned = self._pinned_by_views()
                    raise Error(_lib.VT_EUSAGE, f"{len(held)} handle(s) still held ("
                                + ", ".join(held) + "); release them first"
                                + (f" (released, but zero-copy views of {', '.join(pinned)} "
                                   "are still referenced)" if pinned else ""),
                                "Streamer.plan")  # fmt: skip
                self._planning = True
                while self._busy > 1 and not self._closed:  # let calls of other threads end
                    self._cv.wait()
                if self._closed:
                    raise ValueError("operation on a closed streamer")
            except BaseException:
                self._planning = False
                self._leave()
                raise
        try:
            call(lib.vt_streamer_plan, h, arr, len(enc), _SCHEDULES[schedule])
        finally:
            with self._cv:
                self._planning = False
                self._leave()

    def placement(self, name: str) -> str:
        """Where the plan put @p name: "vram", "ram" (pinned), "stream", "oversize" or
        "none" (not planned)."""
        out = c_int()
        with self._use() as h:
            call(lib.vt_streamer_placement, h, _name(name), byref(out))
        return _lib._text(lib.vt_placement_name(out.value))

    def parts(self, name: str) -> int:
        """How many parts acquire(name, part=i) serves: the store's chunk count of a tensor
        streamed part by part (chunkwise and too large for a ring slot), else 1."""
        out = c_uint64()
        with self._use() as h:
            call(lib.vt_streamer_parts, h, _name(name), byref(out))
        return out.value

    def prefetch(self, name: str) -> None:
        """Hint that @p name will be acquired soon (never blocks)."""
        with self._use() as h:
            call(lib.vt_streamer_prefetch, h, _name(name))

    # -- handles

    def acquire(self, name: str, part: Optional[int] = None) -> "Handle":
        """Make tensor @p name (or its part @p part, see parts()) resident and return its
        Handle; blocks until it is. Use the handle as a context manager (leaving the block
        releases it) or call release(). Errors carry the library's message: NotFoundError,
        Error VT_EBUDGET (too large for a ring slot, or every slot held by this thread's
        handles), VT_ECORRUPT (checksum mismatch: tensor, chunk, shard and offset named), -EIO,
        VT_EUSAGE (the last plan failed, or the streamer was closed while waiting)."""
        bname = _name(name)
        if part is not None:
            part = _uint(part, "part", 64)
        w = _lib.vt_weight()
        with self._cv:
            h = self._enter(acquire=True)
        try:
            lib.vt_clear_error()
            if part is None:
                rc = lib.vt_streamer_acquire(h, bname, byref(w))
            else:
                rc = lib.vt_streamer_acquire_part(h, bname, part, byref(w))
            if rc:
                e = _lib.error(rc, "vt_streamer_acquire" + ("_part" if part is not None else ""))
                pinned = self._pinned_by_views() if rc == _lib.VT_EBUDGET else []
                if pinned:  # ring slots that the caller may believe free
                    e = type(e)(rc, e.detail + f" (note: the released handles of "
                                f"{', '.join(pinned)} keep their memory while zero-copy views "
                                "of them are referenced)", e.what)  # fmt: skip
                raise e
            with self._cv:
                if self._closed:  # close() ran meanwhile; the library is still open (busy)
                    lib.vt_streamer_release(h, byref(w))
                    raise ValueError("the streamer was closed while acquire waited")
                handle = Handle(self, name, part, w)
                self._held.add(handle)
            return handle
        finally:
            with self._cv:
                self._leave(acquire=True)

    def release(self, handle: "Handle") -> None:
        """Release @p handle (same as handle.release())."""
        if not isinstance(handle, Handle):
            raise TypeError(f"expected a vtstore.Handle, not {type(handle).__name__}")
        if handle._st is not self:
            raise Error(-errno.EINVAL, f"the handle of tensor {handle.name} belongs to another "
                        "streamer", "Streamer.release")  # fmt: skip
        handle.release()

    # -- counters

    def stats(self) -> Dict[str, Any]:
        """Counters since open or reset_stats() (vt_streamer_stats): vram and ram (dicts of
        hits, misses, bytes_in, fill_seconds, gbps, capacity, pinned_bytes, pinned_tensors,
        slot_bytes, slots), acquires, bytes_read, stall_seconds, corrupt_retries,
        model_bytes, engine ("uring" or "pread"), registered_buffers, device_is_gpu."""
        s = _lib.vt_streamer_stats()
        with self._use() as h:
            call(lib.vt_streamer_get_stats, h, byref(s))
        out: Dict[str, Any] = {f[0]: getattr(s, f[0]) for f in s._fields_}
        out["vram"], out["ram"] = _tier_dict(s.vram), _tier_dict(s.ram)
        out["engine"] = _ENGINE_NAMES.get(s.engine, str(s.engine))
        out["registered_buffers"] = bool(s.registered_buffers)
        out["device_is_gpu"] = bool(s.device_is_gpu)
        return out

    def reset_stats(self) -> None:
        """Zero the counters, keeping plan and residency."""
        with self._use() as h:
            lib.vt_streamer_reset_stats(h)


class Handle:
    """A tensor acquired from a Streamer (vt_weight). Attributes: name, part (None for a
    whole-tensor acquire), format (a name, "raw" for tensors kept in their source dtype),
    rows, cols, row0, total_rows (rows [row0, row0 + rows) of total_rows), shape (rows,
    cols), bytes, tensor_scale, location ("host" or "device"). A context manager: leaving the
    block releases it."""

    def __init__(self, st: Streamer, name: str, part: Optional[int],
                 w: _lib.vt_weight) -> None:  # fmt: skip
        self._st = st
        self._w = w
        self._released = False
        self._c_held = True
        self._views = 0  # zero-copy views alive
        self._ops = 0  # calls reading the memory in flight
        self.name = name
        self.part = part
        self.format = _quant.format_name(w.format)
        self.rows, self.cols = w.rows, w.cols
        self.row0, self.total_rows = w.row0, w.total_rows
        self.shape = (w.rows, w.cols)
        self.bytes = w.bytes
        self.tensor_scale = w.tensor_scale
        self.location = "device" if w.location == _lib.VT_LOC_DEVICE else "host"

    def __enter__(self) -> "Handle":
        return self

    def __exit__(self, *exc) -> None:
        with self._st._cv:
            done = self._released  # released in the block, or by the streamer's close
        if not done:
            self.release()

    def __del__(self) -> None:  # dropped without release: release it
        try:
            st = self._st
            with st._cv:
                if not self._released and not st._closed:
                    self._released = True
                    st._free(self)
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "released" if self._released else self.location
        part = "" if self.part is None else f" part {self.part}"
        return (f"<vtstore.Handle {self.name!r}{part} {self.format} {self.rows}x{self.cols} "
                f"{state}>")  # fmt: skip

    @property
    def released(self) -> bool:
        """True after release() (or the streamer's close)."""
        return self._released

    def release(self) -> None:
        """Give the handle back (vt_streamer_release). Releasing it again raises Error
        (-EINVAL), after the streamer's close ValueError. With zero-copy views of it alive,
        the library's release waits until the last one is garbage collected."""
        st = self._st
        with st._cv:
            if st._closed:
                raise ValueError("operation on a closed streamer")
            if self._released:
                raise Error(-errno.EINVAL, f"the handle of tensor {self.name} was already "
                            "released", "Handle.release")  # fmt: skip
            self._released = True
            rc = st._free(self)
        if rc:
            raise _lib.error(rc, "vt_streamer_release")

    @contextlib.contextmanager
    def _op(self, what: str) -> Iterator[_lib.vt_weight]:
        """The vt_weight, its memory kept from release and close until the block ends."""
        st = self._st
        with st._cv:
            if st._closed:
                raise ValueError("operation on a closed streamer (its handles are invalid)")
            if self._released:
                raise Error(_lib.VT_EUSAGE, f"the handle of tensor {self.name} was released",
                            what)  # fmt: skip
            if self._w.location != _lib.VT_LOC_HOST:
                raise Error(_lib.VT_EUSAGE, f"tensor {self.name} is in device memory (the VRAM "
                            "tier on a GPU), which Python cannot read; open the streamer with "
                            "vram_bytes=0 for host handles, or use Store.read", what)  # fmt: skip
            st._enter()
            self._ops += 1
        try:
            yield self._w
        finally:
            with st._cv:
                self._ops -= 1
                st._free(self)  # released meanwhile by another thread
                st._leave()

    def raw(self, copy: bool = True) -> np.ndarray:
        """The handle's stored bytes (the blocks, or a raw tensor's values) as uint8: a copy,
        or with copy=False a read-only zero-copy view of the tier's memory. The view keeps the
        memory valid while it exists: release() and the streamer's close take effect in the
        library once the last such view is gone (until then the handle keeps its ring slot)."""
        with self._op("Handle.raw") as w:
            n = w.bytes
            if copy or not n:
                out = np.empty(n, dtype=np.uint8)
                if n:
                    ctypes.memmove(out.ctypes.data, w.data, n)
                return out
            buf = (ctypes.c_ubyte * n).from_address(w.data)
            st = self._st
            with st._cv:
                self._views += 1
                st._views += 1
            fin = weakref.finalize(buf, st._view_gone, self)
            fin.atexit = False  # at exit the memory is simply left mapped
            return np.frombuffer(memoryview(buf).toreadonly(), dtype=np.uint8)

    @property
    def aux(self) -> Optional[np.ndarray]:
        """awq_int4: the per-input-channel scales ([cols] float32, a copy); else None."""
        with self._op("Handle.aux") as w:
            if not w.aux:
                return None
            out = np.empty(w.cols, dtype=np.float32)
            ctypes.memmove(out.ctypes.data, ctypes.cast(w.aux, c_void_p).value, out.nbytes)
            return out

    def _quantized(self, w: _lib.vt_weight) -> None:
        if w.format == _lib.VT_STORE_FMT_RAW:
            raise ValueError(f"tensor {self.name} is stored raw (in its source dtype), not in "
                             "a quantization format: use raw() and view it")  # fmt: skip

    def dequantize(self, dtype: str = "f32") -> np.ndarray:
        """The values as a [rows, cols] array (vt_dequant): float32, float16, or for "bf16"
        uint16 bit patterns. Equal to Store.read of the same rows."""
        dtype = _float_dtype(dtype)
        with self._op("Handle.dequantize") as w:
            self._quantized(w)
            out = np.empty((w.rows, w.cols), dtype=_quant.FLOAT_DTYPES[dtype])
            if out.size:
                call(lib.vt_dequant, byref(w), _lib.DTYPES[dtype], out.ctypes.data, None)
            return out

    def gemv(self, x) -> np.ndarray:
        """y = W x with the CPU kernels (vt_gemv; vt_gemm above 8 vectors): x [cols] gives
        y [rows], x [batch, cols] gives y [batch, rows]."""
        with self._op("Handle.gemv") as w:
            self._quantized(w)
            return _quant.gemv_weight(w, _quant._gemv_x(x, w.cols))
