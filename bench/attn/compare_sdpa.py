#!/usr/bin/env python3
"""bench/attn/compare_sdpa.py — our attention kernels beside PyTorch SDPA, from the two JSON files
of one GPU run: bench_attn_gpu.json (bench_attn_gpu N_PREFILL N_DECODE RUNS writes it) and the
JSON that bench/attn/sdpa_baseline.py prints. Prints, per shape, our figure, SDPA's and the ratio
against issue 6's goals (prefill >= 60% of SDPA's TFLOP/s; decode time <= 0.6x SDPA's on an f16
cache for q8_0, <= 0.4x for the 4-bit caches).

    python3 bench/attn/compare_sdpa.py bench_attn_gpu.json sdpa_baseline.json
"""
import json
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ours = json.load(open(sys.argv[1]))
    sdpa = json.load(open(sys.argv[2]))
    ref = {(p["d"], p["n"], bool(p["causal"])): p for p in sdpa["prefill"]}
    print("prefill: TFLOP/s, ours / SDPA flash (goal >= 60%)")
    print("    D      N causal     ours     SDPA   ratio")
    worst = None
    for p in ours["prefill"]:
        key = (p["d"], p["n"], bool(p["causal"]))
        if key not in ref:
            continue
        r = p["tflops"] / ref[key]["tflops"]
        worst = r if worst is None else min(worst, r)
        print("  %3d %6d %6s %8.1f %8.1f  %5.0f%%" % (p["d"], p["n"], "yes" if key[2] else "no",
                                                      p["tflops"], ref[key]["tflops"], 100 * r))
    if worst is not None:
        print("  lowest ratio %.0f%%" % (100 * worst))
    dref = {(d["b"], d["nk"]): d for d in sdpa["decode"]}
    goal = {"q8_0": 0.6, "int8": 0.6}
    print("\ndecode: ms, ours / SDPA on an f16 cache (goal q8_0 <= 0.6x, 4-bit <= 0.4x)")
    print("  B      Nk     kv     ours     SDPA   x SDPA  goal  met")
    for d in ours["decode"]:
        key = (d["b"], d["nk"])
        if key not in dref:
            continue
        x = d["ms"] / dref[key]["ms"]
        g = goal.get(d["kv"], None if d["kv"] in ("f16", "bf16", "f32") else 0.4)
        print("  %d %7d %6s %8.4f %8.4f  %6.2fx  %4s  %s" % (
            d["b"], d["nk"], d["kv"], d["ms"], dref[key]["ms"], x,
            "-" if g is None else "%.1f" % g, "-" if g is None else ("yes" if x <= g else "no")))


if __name__ == "__main__":
    main()
