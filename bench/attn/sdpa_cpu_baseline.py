#!/usr/bin/env python3
"""PyTorch CPU scaled_dot_product_attention baseline for bench_attn_cpu (same machine, same
shapes, same thread count; run it right after the C bench and compare medians).

Prefill: H 32, Hkv 8, D 128, Nq = Nk = 512..max_N, causal and not. Decode: Nq 1 and 4, Nk
4k..max_Nk, H 32, Hkv 8, D 128, no mask (bottom-right causal differs from it by at most 6 of
Nk keys for Nq 4; PyTorch's is_causal is top-left aligned, so it is not used for Nq < Nk).
K/V in f32 (bf16 is timed too for prefill). GQA: prefill through enable_gqa=True (no K/V
copies); decode as Hkv heads of (H/Hkv)*Nq query rows over the same K/V (q viewed as
[1][Hkv][H/Hkv*Nq][D], exact without a mask), which was 1.6-2.7x faster in one check here
than enable_gqa or K/V expanded with repeat_interleave. On a loaded 2-vCPU machine PyTorch's
2-thread decode can be slower than its 1-thread one: run both thread counts. FLOPs = 4*H*Nq*Nk*D, causal prefill counts visible pairs,
as vt_attn_flops does. Prints a table and writes sdpa_cpu_baseline.json.

    .venv-torch/bin/python bench/attn/sdpa_cpu_baseline.py [max_N] [threads] [runs] [max_Nk]
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def median_ms(fn, runs):
    fn()  # warm-up
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        t.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(t)


def main():
    max_n = int(sys.argv[1]) if len(sys.argv) > 1 else 2048
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    max_nk = int(sys.argv[4]) if len(sys.argv) > 4 else 32768
    torch.set_num_threads(threads)
    H, Hkv, D = 32, 8, 128
    out = {"torch": torch.__version__, "threads": threads,
           "cpu_capability": torch.backends.cpu.get_cpu_capability(), "prefill": [], "decode": []}
    print(f"torch {out['torch']} ({out['cpu_capability']}), {threads} threads, median of {runs}")
    print(f"\nprefill SDPA: H {H}, Hkv {Hkv}, D {D}, enable_gqa")
    print(f"{'N':>6} {'causal':>6} | {'f32 ms':>9} {'GFLOP/s':>8} | {'bf16 ms':>9} {'GFLOP/s':>8}")
    n = 512
    while n <= max_n:
        for causal in (False, True):
            fl = 4.0 * H * n * n * D * ((n + 1) / (2 * n) if causal else 1.0)
            row = {"n": n, "causal": causal, "flops": fl}
            for dt, name in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
                q = torch.randn(1, H, n, D, dtype=dt)
                k, v = (torch.randn(1, Hkv, n, D, dtype=dt) for _ in range(2))
                row[name + "_ms"] = median_ms(
                    lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal,
                                                           enable_gqa=True), runs)
            print(f"{n:>6} {('yes' if causal else 'no'):>6} | {row['f32_ms']:>9.2f} "
                  f"{fl / row['f32_ms'] / 1e6:>8.2f} | {row['bf16_ms']:>9.2f} "
                  f"{fl / row['bf16_ms'] / 1e6:>8.2f}")
            out["prefill"].append(row)
        n *= 2
    print(f"\ndecode SDPA: H {H}, Hkv {Hkv}, D {D}, f32 K/V, grouped query rows, "
          f"median of {runs * 5}")
    print(f"{'Nq':>3} {'Nk':>6} | {'ms':>9} {'GFLOP/s':>8} {'KV GB/s':>8}")
    nk = 4096
    while nk <= max_nk:
        k, v = (torch.randn(1, Hkv, nk, D) for _ in range(2))
        for nq in (1, 4):
            q = torch.randn(1, H, nq, D).view(1, Hkv, H // Hkv * nq, D)
            ms = median_ms(lambda: F.scaled_dot_product_attention(q, k, v), runs * 5)
            fl, by = 4.0 * H * nq * nk * D, 2.0 * Hkv * nk * D * 4
            print(f"{nq:>3} {nk:>6} | {ms:>9.3f} {fl / ms / 1e6:>8.2f} {by / ms / 1e6:>8.2f}")
            out["decode"].append({"nq": nq, "nk": nk, "ms": ms, "flops": fl, "kv_bytes": by})
        nk *= 2
    with open("sdpa_cpu_baseline.json", "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
