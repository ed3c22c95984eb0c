#!/usr/bin/env python3
"""llama.cpp as an independent oracle for `vtstore run`: the logits of a GGUF model on given
token ids, computed by llama.cpp on the CPU (what scripts/setup_llamacpp.sh installs: the
llama.cpp vendored by llama-cpp-python 0.3.36 and that package's ctypes bindings).

Usage:
  llamacpp_logits.py GGUF --tokens 1,2,3 -o logits.npy [--last] [--threads 2] [--ctx N]
  llamacpp_logits.py --check          exit 0 when llama.cpp loads, else 1 with the reason

-o writes float32 [n_tokens, vocab] .npy, one row per position (the layout of `vtstore run
--logits` and ref_llama.py -o), or [1, vocab] for the last position with --last. The ids are
used exactly as given (no BOS), as `vtstore run --tokens` does. llama.cpp's defaults otherwise:
f16 KV cache (vtstore's default too), flash attention "auto", mmap.

Where llama.cpp is looked for: $VT_LLAMACPP_DIR (default
${XDG_CACHE_HOME:-~/.cache}/vtstore/llama-cpp-python-0.3.36), then an installed llama_cpp
package (pip install llama-cpp-python). Only its low-level module llama_cpp.llama_cpp is loaded,
without the package's __init__ (which would import the high-level API and its diskcache and jinja2
dependencies), so numpy and typing_extensions are all this needs besides the library.

bench/run/bench_run.py imports this file for its llama.cpp timings (LlamaCpp.timed_run)."""
import argparse
import ctypes
import importlib.util
import os
import sys
import time
import types

try:
    import numpy as np
except ImportError:  # --check needs no numpy (scripts/setup_llamacpp.sh runs it)
    np = None

VERSION = "0.3.36"


def default_dir():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("VT_LLAMACPP_DIR") or os.path.join(
        cache, "vtstore", "llama-cpp-python-" + VERSION)


def load():
    """The llama_cpp.llama_cpp module (ctypes bindings, library loaded). Raises RuntimeError
    with the reason when llama.cpp is not installed or does not load."""
    if "llama_cpp.llama_cpp" in sys.modules:
        return sys.modules["llama_cpp.llama_cpp"]
    pkg = os.path.join(default_dir(), "llama_cpp")
    if not os.path.isfile(os.path.join(pkg, "llama_cpp.py")):
        spec = importlib.util.find_spec("llama_cpp")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("llama.cpp not installed: no %s and no llama_cpp package (run "
                               "scripts/setup_llamacpp.sh)" % pkg)
        pkg = list(spec.submodule_search_locations)[0]
    stub = types.ModuleType("llama_cpp")
    stub.__path__ = [pkg]
    sys.modules["llama_cpp"] = stub
    try:
        import llama_cpp.llama_cpp as L
    except Exception as e:  # a missing or broken library: FileNotFoundError, OSError, ...
        del sys.modules["llama_cpp"]
        raise RuntimeError("llama.cpp in %s does not load: %s: %s" % (pkg, type(e).__name__, e))
    return L


_quiet_cb = None


class LlamaCpp:
    """One model and one context (a single sequence) on the CPU."""

    def __init__(self, gguf, n_ctx=512, threads=2, verbose=False, kv_f32=False, flash_attn=None):
        global _quiet_cb
        L = self.L = load()
        if not verbose and _quiet_cb is None:
            _quiet_cb = L.llama_log_callback(lambda level, text, user: None)
            L.llama_log_set(_quiet_cb, ctypes.c_void_p())
        L.llama_backend_init()
        mp = L.llama_model_default_params()
        mp.n_gpu_layers = 0
        self.model = L.llama_model_load_from_file(gguf.encode(), mp)
        if not self.model:
            raise RuntimeError("llama.cpp cannot load %s" % gguf)
        self.n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))
        cp = L.llama_context_default_params()
        cp.n_ctx = n_ctx
        cp.n_batch = cp.n_ubatch = n_ctx  # a prompt is one batch, one ubatch
        cp.n_threads = cp.n_threads_batch = threads
        cp.no_perf = False
        if kv_f32:
            cp.type_k = cp.type_v = 0  # GGML_TYPE_F32
        if flash_attn is not None:
            cp.flash_attn_type = 1 if flash_attn else 0
        self.n_ctx = n_ctx
        self.ctx = L.llama_init_from_model(self.model, cp)
        if not self.ctx:
            raise RuntimeError("llama.cpp cannot create a context of %d for %s" % (n_ctx, gguf))
        self.batch = L.llama_batch_init(n_ctx, 0, 1)
        self.pos = 0

    def close(self):
        L = self.L
        if self.ctx:
            L.llama_batch_free(self.batch)
            L.llama_free(self.ctx)
            L.llama_model_free(self.model)
            self.ctx = self.model = None

    def reset(self):
        """Forget the sequence (KV cache cleared, position 0) and the perf counters."""
        self.L.llama_memory_clear(self.L.llama_get_memory(self.ctx), True)
        self.L.llama_perf_context_reset(self.ctx)
        self.pos = 0

    def tokenize(self, text, add_special=True):
        """llama.cpp's ids for text (special tokens in the text matched whole; add_special: the
        model's BOS/EOS as its GGUF asks, as `vtstore run --prompt` adds them)."""
        L, raw = self.L, text.encode()
        vocab = L.llama_model_get_vocab(self.model)
        buf = (L.llama_token * (len(raw) + 8))()
        n = L.llama_tokenize(vocab, raw, len(raw), buf, len(buf), add_special, True)
        if n < 0:
            raise RuntimeError("llama_tokenize needs %d tokens" % -n)
        return list(buf[:n])

    def eval(self, ids, all_logits=True):
        """Appends ids to the sequence; returns the logits of every one ([n, vocab] float32) or
        of the last ([1, vocab]): a view of llama.cpp's buffer, valid until the next eval."""
        n = len(ids)
        if self.pos + n > self.n_ctx:
            raise ValueError("%d tokens after %d do not fit the context of %d"
                             % (n, self.pos, self.n_ctx))
        b = self.batch
        b.n_tokens = n
        for i, t in enumerate(ids):
            b.token[i] = t
            b.pos[i] = self.pos + i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = 0
            b.logits[i] = 1 if all_logits or i == n - 1 else 0
        rc = self.L.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError("llama_decode returned %d" % rc)
        self.pos += n
        rows = n if all_logits else 1
        p = self.L.llama_get_logits(self.ctx)
        return np.ctypeslib.as_array(p, shape=(rows * self.n_vocab,)).reshape(rows, self.n_vocab)

    def timed_run(self, ids, n_gen):
        """Prompt processing of ids (one batch, logits of the last position only, as a generator
        needs) then n_gen greedy steps (argmax, the token fed back), each timed on the wall clock
        around llama_decode plus the argmax, as `vtstore run` times its prefill and decode.
        Returns (prompt seconds, generation seconds, generated ids)."""
        self.reset()
        t0 = time.perf_counter()
        last = self.eval(ids, all_logits=False)[0]
        t1 = time.perf_counter()
        out = []
        nxt = int(last.argmax())
        t2 = time.perf_counter()
        for _ in range(n_gen):
            out.append(nxt)
            nxt = int(self.eval([nxt], all_logits=False)[0].argmax())
        t3 = time.perf_counter()
        return t1 - t0, t3 - t2, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gguf", nargs="?")
    ap.add_argument("--tokens", help="comma-separated token ids")
    ap.add_argument("-o", "--out")
    ap.add_argument("--last", action="store_true", help="only the last position's logits")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, help="context (default: the tokens rounded up to 256)")
    ap.add_argument("--kv-f32", action="store_true", help="f32 KV cache (default f16)")
    ap.add_argument("--flash-attn", choices=("auto", "on", "off"), default="auto")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="llama.cpp's log on stderr")
    a = ap.parse_args()
    if a.check:
        try:
            L = load()
        except RuntimeError as e:
            print(e, file=sys.stderr)
            return 1
        print("llama.cpp loads from %s" % os.path.dirname(L.__file__))
        return 0
    if not (a.gguf and a.tokens and a.out):
        ap.error("GGUF, --tokens and -o are required (or --check)")
    ids = [int(t) for t in a.tokens.split(",")]
    n_ctx = a.ctx or max(256, (len(ids) + 255) // 256 * 256)
    m = LlamaCpp(a.gguf, n_ctx=n_ctx, threads=a.threads, verbose=a.verbose, kv_f32=a.kv_f32,
                 flash_attn={"auto": None, "on": True, "off": False}[a.flash_attn])
    bad = [t for t in ids if not 0 <= t < m.n_vocab]
    if bad:
        sys.exit("llamacpp_logits: token %d is outside the vocabulary of %d" % (bad[0], m.n_vocab))
    lg = np.array(m.eval(ids, all_logits=not a.last), dtype=np.float32)
    m.close()
    np.save(a.out, lg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
