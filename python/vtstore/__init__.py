"""vtstore: Python bindings (ctypes + numpy) for libvtstore, the quantized tensor store.

    import vtstore
    q = vtstore.quantize(w, "nf4")                    # uint8 blocks
    back = vtstore.dequantize(q, "nf4", w.shape)      # float32
    with vtstore.open("model.vts", "c") as s:
        s.put("w", w, format="q8_0")                  # all or nothing
        s.import_file("model.safetensors", format="nf4", rules={"*embd*": "q8_0"})
        x = s.read("w")                               # dequantized, in its shape
        with s.streamer(ram_bytes=1 << 30) as st:     # tier.h: stream weights
            st.plan(["w"])
            with st.acquire("w") as h:
                y = h.gemv(np.ones(h.cols, np.float32))
    o = vtstore.attention(q, k, v, kv_format="q8_0", causal=True)  # attn.h, on the CPU

The library is found through VTSTORE_LIB (a full path), then beside the installed package,
then ctypes.util.find_library("vtstore") and the loader's path (docs/PYTHON.md). Errors are
vtstore.Error (code, name, detail); a missing tensor or key raises NotFoundError, which is
also a KeyError; bad format names and arguments raise ValueError.
"""

from ._lib import (
    VT_EBUDGET,
    VT_ECORRUPT,
    VT_ECUDA,
    VT_EEXIST,
    VT_EFAULT,
    VT_EFORMAT,
    VT_ELMDB,
    VT_ENODEV,
    VT_ENONFINITE,
    VT_ENOTFOUND,
    VT_ESHAPE,
    VT_EUNSUPPORTED,
    VT_EUSAGE,
    VT_EVERSION,
    Error,
    NotFoundError,
    lib as _clib,
    library_path,
)
from ._attn import KVCache, attention
from ._quant import dequantize, format_info, formats, gemv, quantize, tensor_scale
from ._store import Store, Writer, decode_meta, import_file, open
from ._stream import Handle, Streamer

__all__ = [
    "Error", "Handle", "KVCache", "NotFoundError", "Store", "Streamer", "Writer", "attention", "decode_meta",
    "dequantize", "format_info", "formats", "gemv", "import_file", "library_path", "open", "quantize", "tensor_scale",
    "version", "VT_EBUDGET", "VT_ECORRUPT", "VT_ECUDA", "VT_EEXIST", "VT_EFAULT", "VT_EFORMAT",
    "VT_ELMDB", "VT_ENODEV", "VT_ENONFINITE", "VT_ENOTFOUND", "VT_ESHAPE", "VT_EUNSUPPORTED",
    "VT_EUSAGE", "VT_EVERSION",
]  # fmt: skip


def version() -> str:
    """The library's version string (vt_version)."""
    return _clib.vt_version().decode()


__version__ = version()
