#!/usr/bin/env python3
"""Independent NF4 golden data for test_nf4.c.

Derivation: nearest-code search in float64 over the 16 NF4 values published in bitsandbytes
(csrc/kernels.cu nf4_data; QLoRA, Dettmers et al. 2023), NOT the threshold tree that quant/nf4.c
uses. Inputs are 100 values (two blocks of 64, the second ragged: 36 values + zero padding)
drawn from a fixed seed and rounded to 3 decimals; the script asserts that every normalised value
is at least 1e-4 away from a midpoint so float32 vs float64 normalisation cannot change a code.
Packing (bitsandbytes): element 2i in the high nibble of byte i; absmax per block as float32.
Run: python3 tests/quant_b/nf4_golden.py > /tmp/g.txt  and paste the arrays into test_nf4.c.
"""
import numpy as np

NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                0.07958029955625534, 0.16093020141124725, 0.24611230194568634,
                0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                0.7229568362236023, 1.0])

rng = np.random.default_rng(20240611)
n = 100
while True:
    x = np.round(rng.standard_normal(n) * 0.05, 3).astype(np.float32)
    x[5] = 0.0
    x[70] = -x[70]
    pad = np.zeros(128, np.float32)
    pad[:n] = x
    ok = True
    codes, amaxs = [], []
    for b in range(2):
        blk = pad[64 * b:64 * b + 64].astype(np.float64)
        amax = np.max(np.abs(blk))
        amaxs.append(np.float32(amax))
        xn = blk / amax
        mids = (NF4[1:] + NF4[:-1]) / 2
        if np.min(np.abs(xn[:, None] - mids[None, :])) < 1e-4:
            ok = False
        codes += [int(np.argmin(np.abs(v - NF4))) for v in xn]
    if ok:
        break

packed = [(codes[2 * i] << 4) | codes[2 * i + 1] for i in range(64)]
print("static const float golden_x[%d] = {" % n)
print(",\n".join("    " + ", ".join("%.3ff" % v for v in x[i:i + 8]) for i in range(0, n, 8)) + "};")
print("static const float golden_absmax[2] = {%.9gf, %.9gf};" % tuple(amaxs))
print("static const uint8_t golden_qs[64] = {")
print(",\n".join("    " + ", ".join("0x%02x" % v for v in packed[i:i + 16]) for i in range(0, 64, 16)) + "};")
