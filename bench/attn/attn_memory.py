#!/usr/bin/env python3
"""Peak device memory of naive vs flash attention (issue 6), measured with PyTorch on the GPU.

For each N (1k..32k by default): B 1, H 16, D 128, f16 Q/K/V, causal. "naive" is PyTorch's
math backend of scaled_dot_product_attention (it materialises the [B, H, N, N] scores and the
softmax); "flash" is its flash backend. Peak = torch.cuda.max_memory_allocated() during the call
minus the memory held before it (Q, K, V), so it counts the output and every temporary. The
formulas beside them: flash needs only O (B*H*N*D*2 bytes; LSE B*H*N*4); naive needs the
scores at least once, B*H*N*N*2 bytes in f16 (the math backend keeps about two such buffers,
scores and probabilities). A naive run that does not fit is reported as "OOM" and larger N are
skipped for it.

vtstore's own flash kernel allocates nothing (its prefill workspace is 0 bytes:
vt_attn_workspace_bytes), so its peak is O alone; `bench_attn_gpu --memory` measures that with
cudaMemGetInfo around the call (same shapes).

    python3 bench/attn/attn_memory.py [max_N] > attn_memory.txt   (writes attn_memory.json)
"""
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def peak(backend, q, k, v):
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    with sdpa_kernel(backend):
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.cuda.synchronize()
    p = torch.cuda.max_memory_allocated() - base
    del o
    return p


def main():
    max_n = int(sys.argv[1]) if len(sys.argv) > 1 else 32768
    dev = torch.device("cuda")
    B, H, D = 1, 16, 128
    out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
           "cuda": torch.version.cuda, "B": B, "H": H, "D": D, "rows": []}
    print(f"{out['device']}, torch {out['torch']}, CUDA {out['cuda']}; B {B}, H {H}, D {D}, f16, causal")
    print(f"{'N':>6} {'naive MiB':>10} {'formula':>10} {'flash MiB':>10} {'formula':>10}")
    naive_ok = True
    n = 1024
    while n <= max_n:
        q, k, v = (torch.randn(B, H, n, D, device=dev, dtype=torch.float16) for _ in range(3))
        f_o = B * H * n * D * 2
        f_naive = B * H * n * n * 2 + f_o
        naive = None
        if naive_ok:
            try:
                naive = peak(SDPBackend.MATH, q, k, v)
            except torch.cuda.OutOfMemoryError:
                naive_ok = False
                torch.cuda.empty_cache()
        flash = peak(SDPBackend.FLASH_ATTENTION, q, k, v)
        mib = lambda x: "OOM" if x is None else f"{x / 2**20:.1f}"
        print(f"{n:>6} {mib(naive):>10} {mib(f_naive):>10} {mib(flash):>10} {mib(f_o):>10}")
        out["rows"].append({"n": n, "naive_bytes": naive, "naive_formula": f_naive,
                            "flash_bytes": flash, "flash_formula": f_o})
        del q, k, v
        n *= 2
    with open("attn_memory.json", "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
