#!/usr/bin/env python3
"""Model-run benchmark (issue 7): decode speed and disk traffic of `vtstore run` at RAM budgets of
25/50/100% of the model beside the bound the measured disk bandwidth allows, the agreement of
re-quantized stores and quantized KV caches with the numpy reference (tests/model/ref_llama.py),
and, with --llamacpp, CPU speed against llama.cpp on the same GGUF.

  bench_run.py --bin build/tools/vtstore --store Q4_1_STORE [--store-nf4 S] [--store-q8_0 S]
               [--gguf MODEL.gguf] [--runs 3] [--max-new 32] [--json out.json]
               [--llamacpp MODEL.gguf [--threads 2] [--pp-tokens 128]] [--no-budgets]

Stores are made beforehand with `vtstore import` (scripts/demo.sh does). Without --gguf or numpy
the agreement part is skipped. Prints a table and writes JSON.

--llamacpp GGUF (the file STORE was imported from, blocks kept): prompt processing and generation
tokens/s of `vtstore run` (everything resident) and of llama.cpp (scripts/setup_llamacpp.sh:
libllama from llama-cpp-python 0.3.36, -march=native, OpenMP; f16 KV cache and its other
defaults, as vtstore's) with the same thread count (VT_THREADS / n_threads), the same prompt ids
(--pp-tokens of them) and --max-new generated tokens (greedy), runs interleaved after one warm-up
run of each, medians of --runs. Each vtstore run is a new process whose prefill includes reading
the store (O_DIRECT, not the page cache; the "without stall" row takes out the time it waited for
the reads); llama.cpp's model stays loaded (mmap) across its runs, as in llama-bench.
--no-budgets skips the budget table (and the disk measurement)."""
import argparse
import json
import mmap
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PROMPT = ("The history of the printing press begins in the fifteenth century, when Johannes "
          "Gutenberg combined movable metal type, oil-based ink and a wooden screw press. Within "
          "fifty years printers in more than two hundred cities had produced")


def run(bin_, store, *args, env=None):
    out = subprocess.run([bin_, "run", store, "--json", *args], check=True,
                         stdout=subprocess.PIPE, env=env).stdout
    return json.loads(out)


def disk_gbps(store, reps=3):
    """Sequential O_DIRECT read rate of the store's shard files (median of reps passes, 4 MiB
    reads): what the disk gives a reader that bypasses the page cache, as the streamer does."""
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(store) for f in fs
                   if f.startswith("shard-"))
    buf = mmap.mmap(-1, 4 << 20)
    rates = []
    for _ in range(reps):
        total, t0 = 0, time.perf_counter()
        for f in files:
            fd = os.open(f, os.O_RDONLY | getattr(os, "O_DIRECT", 0))
            try:
                while True:
                    n = os.readv(fd, [buf])
                    total += n
                    if n < len(buf):
                        break
            finally:
                os.close(fd)
        rates.append(total / (time.perf_counter() - t0) / 1e9)
    return statistics.median(rates), total


def speed(args, store, pct, ids):
    rows = []
    for _ in range(args.runs):
        extra = ["--ram", "%d%%" % pct] if pct < 100 else []
        j = run(args.bin, store, "--tokens", ids, "--max-new", str(args.max_new), *extra)
        rows.append(j)
    tps = statistics.median(r["decode"]["tokens_per_s"] for r in rows)
    bpt = statistics.median(r["decode"]["bytes_read_per_token"] for r in rows)
    stall = statistics.median(r["decode"]["stall_seconds"] / max(1, r["decode"]["tokens"])
                              for r in rows)
    fill = statistics.median(r["decode"]["ram"]["gbps"] for r in rows)
    pre = statistics.median(r["prefill"]["tokens_per_s"] for r in rows)
    return {"budget_pct": pct, "ram_budget": rows[0]["ram_budget"], "decode_tps": tps,
            "prefill_tps": pre, "bytes_per_token": bpt, "stall_ms_per_token": 1e3 * stall,
            "streamer_fill_gbps": fill, "decode_tokens": rows[0]["decode"]["tokens"],
            "model_bytes": rows[0]["model_bytes"], "io_engine": rows[0]["io_engine"]}


def agreement(args, store, ids, ref_npy, kv="f16", label=""):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "l.npy")
        subprocess.run([args.bin, "run", store, "--tokens", ids, "--max-new", "1", "--quiet",
                        "--kv-format", kv, "--logits", out], check=True)
        r = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "run", "compare_logits.py"),
                            out, ref_npy, "--report"], check=True, stdout=subprocess.PIPE)
    res = json.loads(r.stdout)
    res.update({"config": label, "kv_format": kv})
    return res


def vs_llamacpp(args, prompt_ids):
    """Speed of `vtstore run` and llama.cpp on the same GGUF, ids and threads (module doc)."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "model"))
    import llamacpp_logits
    ids = (prompt_ids * (args.pp_tokens // len(prompt_ids) + 1))[:args.pp_tokens]
    gen = args.max_new
    lc = llamacpp_logits.LlamaCpp(args.llamacpp, n_ctx=(len(ids) + gen + 255) // 256 * 256,
                                  threads=args.threads)
    env = dict(os.environ, VT_THREADS=str(args.threads))
    targs = ["--tokens", ",".join(map(str, ids)), "--max-new", str(gen + 1)]  # gen decode steps
    vt_rows, lc_rows = [], []
    for i in range(args.runs + 1):  # run 0 warms up both
        j = run(args.bin, args.store, *targs, env=env)
        pp_s, tg_s, lc_ids = lc.timed_run(ids, gen)
        if i:
            vt_rows.append(j)
            lc_rows.append((pp_s, tg_s))
    lc.close()
    med = statistics.median
    vt_pp = med(r["prefill"]["tokens_per_s"] for r in vt_rows)
    vt_pp_ns = med(r["prefill"]["tokens"] / max(1e-9, r["prefill"]["seconds"] -
                                                 r["prefill"]["stall_seconds"]) for r in vt_rows)
    vt_tg = med(r["decode"]["tokens_per_s"] for r in vt_rows)
    lc_pp = med(len(ids) / r[0] for r in lc_rows)
    lc_tg = med(gen / r[1] for r in lc_rows)
    vt_ids = vt_rows[-1]["generated_ids"]
    same = next((k for k, (a, b) in enumerate(zip(vt_ids, lc_ids)) if a != b),
                min(len(vt_ids), len(lc_ids)))
    res = {"gguf": args.llamacpp, "threads": args.threads, "prompt_tokens": len(ids),
           "gen_tokens": gen, "vt_decode_tokens": vt_rows[0]["decode"]["tokens"],
           "runs": args.runs, "cpu_isa": vt_rows[0]["cpu_isa"],
           "llamacpp": "llama-cpp-python %s (%s)" % (llamacpp_logits.VERSION,
                                                   os.path.dirname(lc.L.__file__)),
           "vtstore_pp_tps": vt_pp, "vtstore_pp_tps_no_stall": vt_pp_ns,
           "vtstore_tg_tps": vt_tg, "llamacpp_pp_tps": lc_pp, "llamacpp_tg_tps": lc_tg,
           "pp_ratio": vt_pp / lc_pp, "pp_ratio_no_stall": vt_pp_ns / lc_pp,
           "tg_ratio": vt_tg / lc_tg, "same_greedy_prefix": same}
    print("\nvtstore run vs llama.cpp on %s: %d threads, %d prompt ids, %d generated (greedy), "
          "medians of %d runs\n" % (os.path.basename(args.llamacpp), args.threads, len(ids), gen,
                                    args.runs))
    print("%-34s %10s %10s %8s" % ("tokens/s", "vtstore", "llama.cpp", "ratio"))
    print("%-34s %10.1f %10.1f %8.2f" % ("prompt processing", vt_pp, lc_pp, vt_pp / lc_pp))
    print("%-34s %10.1f %10s %8.2f" % ("  vtstore without its I/O stall", vt_pp_ns, "",
                                       vt_pp_ns / lc_pp))
    print("%-34s %10.1f %10.1f %8.2f" % ("generation", vt_tg, lc_tg, vt_tg / lc_tg))
    print("(ratio: vtstore / llama.cpp; vtstore kernels %s; the two greedy continuations agree "
          "for the first %d of %d tokens)" % (res["cpu_isa"], same, min(len(vt_ids), len(lc_ids))))
    load = os.getloadavg()[0]
    if args.threads > 1 and load > os.cpu_count() - args.threads + 0.5:
        print("warning: load average %.2f on %d CPUs: other processes take CPUs these %d threads "
              "need; llama.cpp's threads spin at every barrier and then lose far more than "
              "vtstore's (seen: 10x slower generation); compare with --threads 1 or on an idle "
              "machine" % (load, os.cpu_count(), args.threads))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--store", required=True, help="store keeping the GGUF's Q4_1 blocks")
    ap.add_argument("--store-nf4")
    ap.add_argument("--store-q8_0")
    ap.add_argument("--gguf")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--max-new", type=int, default=32)
    ap.add_argument("--json")
    ap.add_argument("--llamacpp", metavar="GGUF", help="compare speed with llama.cpp on GGUF")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="threads of both, with --llamacpp (default: all CPUs)")
    ap.add_argument("--pp-tokens", type=int, default=128,
                    help="prompt ids for the llama.cpp comparison (the prompt repeated)")
    ap.add_argument("--no-budgets", action="store_true", help="skip the budget table")
    args = ap.parse_args()
    load0 = os.getloadavg()

    ids = ",".join(map(str, run(args.bin, args.store, "--prompt", PROMPT, "--max-new", "1")
                       ["prompt_ids"]))
    speeds, bw = [], None
    if not args.no_budgets:
        bw, nbytes = disk_gbps(args.store)
        print("disk: O_DIRECT sequential read of the store's shards (%.1f MB): %.2f GB/s (median "
              "of 3)" % (nbytes / 1e6, bw))
        print("prompt: %d tokens, then %d greedy tokens; medians of %d runs\n"
              % (ids.count(",") + 1, args.max_new, args.runs))
        print("%-7s %10s %9s %11s %10s %10s %9s %8s %10s" % (
            "budget", "ram MiB", "decode/s", "MiB/token", "bound/s", "of bound", "stall ms",
            "fill GB/s", "prefill/s"))
    for pct in () if args.no_budgets else (25, 50, 100):
        s = speed(args, args.store, pct, ids)
        bound = bw * 1e9 / s["bytes_per_token"] if s["bytes_per_token"] > 0 else None
        s["disk_gbps"] = bw
        s["bound_tps"] = bound
        s["of_bound"] = s["decode_tps"] / bound if bound else None
        speeds.append(s)
        print("%-7s %10.1f %9.2f %11.2f %10s %10s %9.1f %8.2f %10.1f" % (
            "%d%%" % pct, s["ram_budget"] / 2**20, s["decode_tps"], s["bytes_per_token"] / 2**20,
            "%.2f" % bound if bound else "-", "%.0f%%" % (100 * s["of_bound"]) if bound else "-",
            s["stall_ms_per_token"], s["streamer_fill_gbps"], s["prefill_tps"]))

    agree = []
    if args.gguf:
        try:
            import numpy  # noqa: F401
            import gguf  # noqa: F401
        except ImportError:
            args.gguf = None
            print("\nagreement skipped: numpy/gguf missing")
    if args.gguf:
        with tempfile.TemporaryDirectory() as d:
            ref = os.path.join(d, "ref.npy")
            subprocess.run([sys.executable, os.path.join(ROOT, "tests", "model", "ref_llama.py"),
                            args.gguf, "--tokens", ids, "-o", ref], check=True,
                           stderr=subprocess.DEVNULL)
            confs = [(args.store, "f16", "q4_1 (GGUF blocks kept)")]
            if args.store_q8_0:
                confs.append((args.store_q8_0, "f16", "q8_0 re-quantized"))
            if args.store_nf4:
                confs.append((args.store_nf4, "f16", "nf4 re-quantized"))
            for kv in ("q8_0", "q4_0", "nf4"):
                confs.append((args.store, kv, "q4_1 store, %s KV cache" % kv))
            for store, kv, label in confs:
                agree.append(agreement(args, store, ids, ref, kv, label))
        print("\nagreement with the numpy reference (f32, GGUF dequantized), %d positions:"
              % agree[0]["positions"])
        print("%-32s %8s %11s %11s %9s" % ("config", "kv", "cos min", "cos mean", "top-1"))
        for a in agree:
            print("%-32s %8s %11.6f %11.6f %8.1f%%" % (a["config"], a["kv_format"], a["cos_min"],
                                                     a["cos_mean"], 100 * a["top1_match"]))
    vs = None
    if args.llamacpp:
        vs = vs_llamacpp(args, [int(t) for t in ids.split(",")])
    load1 = os.getloadavg()
    print("\nload average (1/5/15 min) at the start %.2f %.2f %.2f, at the end %.2f %.2f %.2f, "
          "%d CPUs" % (load0 + load1 + (os.cpu_count(),)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"disk_gbps": bw, "speed": speeds, "agreement": agree, "vs_llamacpp": vs,
                       "loadavg": [load0, load1], "cpus": os.cpu_count()}, f, indent=1)


if __name__ == "__main__":
    main()
