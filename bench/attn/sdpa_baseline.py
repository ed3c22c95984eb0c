#!/usr/bin/env python3
"""PyTorch SDPA baseline for bench_attn_gpu (run on the same GPU machine, same shapes).

Prefill: B 2, H 16, f16, D 64/128, N 1k-16k, causal and not, flash backend forced;
FLOPs = 4*B*H*N^2*D, halved for causal. Decode: B 1/8, H 32, D 128, one query over an f16
cache of Nk 4k-128k (flash backend forced; falls back to the default backend if PyTorch refuses,
and says so). Prints a table and writes sdpa_baseline.json.

    python3 bench/attn/sdpa_baseline.py [max_prefill_N] [max_decode_Nk] [iters]
"""
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def time_ms(fn, iters):
    fn()
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    for _ in range(iters):
        fn()
    e1.record()
    torch.cuda.synchronize()
    return e0.elapsed_time(e1) / iters


def main():
    max_n = int(sys.argv[1]) if len(sys.argv) > 1 else 16384
    max_nk = int(sys.argv[2]) if len(sys.argv) > 2 else 131072
    iters = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    dev = torch.device("cuda")
    out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
           "cuda": torch.version.cuda, "prefill": [], "decode": []}
    print(f"{out['device']}, torch {out['torch']}, CUDA {out['cuda']}")
    B, H = 2, 16
    print(f"prefill SDPA flash (B {B}, H {H}, f16)\n{'D':>5} {'N':>6} {'causal':>6} {'ms':>10} {'TFLOP/s':>9}")
    for d in (64, 128):
        n = 1024
        while n <= max_n:
            for causal in (False, True):
                q, k, v = (torch.randn(B, H, n, d, device=dev, dtype=torch.float16) for _ in range(3))
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal), iters)
                fl = 4.0 * B * H * n * n * d * (0.5 if causal else 1.0)
                print(f"{d:>5} {n:>6} {('yes' if causal else 'no'):>6} {ms:>10.3f} {fl / ms / 1e9:>9.1f}")
                out["prefill"].append({"d": d, "n": n, "causal": causal, "ms": ms, "tflops": fl / ms / 1e9})
                del q, k, v
            n *= 2
    print(f"\ndecode SDPA (H 32, D 128, f16 cache)\n{'B':>3} {'Nk':>8} {'backend':>8} {'ms':>10} {'GB/s':>9}")
    for b in (1, 8):
        nk = 4096
        while nk <= max_nk:
            q = torch.randn(b, 32, 1, 128, device=dev, dtype=torch.float16)
            k = torch.randn(b, 32, nk, 128, device=dev, dtype=torch.float16)
            v = torch.randn_like(k)
            backend = "flash"
            try:
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v), iters)
            except RuntimeError:
                backend = "default"
                ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v), iters)
            by = 2.0 * b * 32 * nk * 128 * 2
            print(f"{b:>3} {nk:>8} {backend:>8} {ms:>10.4f} {by / ms / 1e6:>9.1f}")
            out["decode"].append({"b": b, "nk": nk, "backend": backend, "ms": ms, "bytes": by})
            del q, k, v
            nk *= 2
    with open("sdpa_baseline.json", "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
