#!/usr/bin/env bash
# scripts/gemv_ab.sh — the batch-1 GEMV kernel variants side by side on a CUDA machine, in one
# command of about a minute: bench_kernels --gpu-only under each A/B switch of gemv.cu, for the
# integer kernel's formats (and f16 as the reference), then one table of the GEMV medians.
#
#   scripts/gemv_ab.sh            after scripts/gpu_check.sh built bench_kernels (same build dir)
#
# Variants (GEMV_AB_VARIANTS, default "default w4 window word lut float g2 g4"): default; w4
# (VT_GEMV_W=4: the integer kernel's CTAs of one half of warps); window (VT_GEMV_LOAD=window);
# word (VT_GEMV_LOAD=word: no window loads, q8_0 at batch 1 included); lut (VT_GEMV_LUT=int:
# nf4/mxfp4/nvfp4 through the integer kernel); float
# (VT_GEMV_KERNEL=float: the register kernel; awq_int4's staged kernel); g1 / g2 / g4 (VT_GEMV_G: row groups per CTA); ralt
# (VT_GEMV_R=alt); window_g2.
# Output: $OUT/gemv_ab_<variant>.json and .txt, and $OUT/gemv_ab.txt (ms per format and shape,
# one column per variant; every column measured in this same run).
#
# Environment: OUT (default ./gpu-out), GPU_CHECK_BUILD (default build-gpu), GEMV_AB_FORMATS
# (default q4_0,q4_1,q4_k,q8_0,int8,awq_int4,nf4,nvfp4,mxfp4,f16), GEMV_AB_RUNS (default 5), PYTHON (default python3).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${OUT:-./gpu-out}" && cd "${OUT:-./gpu-out}" && pwd)
BK=${GPU_CHECK_BUILD:-$ROOT/build-gpu}/bench/kernels/bench_kernels
FMTS=${GEMV_AB_FORMATS:-q4_0,q4_1,q4_k,q8_0,int8,awq_int4,nf4,nvfp4,mxfp4,f16}
RUNS=${GEMV_AB_RUNS:-5}
PY=${PYTHON:-python3}
[ -x "$BK" ] || {
    echo "gemv_ab: $BK not built (run scripts/gpu_check.sh first)" >&2
    exit 1
}

VARIANTS=(${GEMV_AB_VARIANTS:-default w4 window word lut float g2 g4})
for v in "${VARIANTS[@]}"; do
    case $v in
    default) e=() ;;
    w4) e=(VT_GEMV_W=4) ;;
    float) e=(VT_GEMV_KERNEL=float) ;;
    ralt) e=(VT_GEMV_R=alt) ;;
    g1 | g2 | g4) e=("VT_GEMV_G=${v#g}") ;;
    window) e=(VT_GEMV_LOAD=window) ;;
    word) e=(VT_GEMV_LOAD=word) ;;
    lut) e=(VT_GEMV_LUT=int) ;;
    window_g2) e=(VT_GEMV_LOAD=window VT_GEMV_G=2) ;;
    *) echo "gemv_ab: unknown variant $v" >&2; continue ;;
    esac
    echo "== $v: ${e[*]:-}"
    env ${e[@]+"${e[@]}"} "$BK" --gpu-only --runs "$RUNS" --formats "$FMTS" \
        --json "$OUT/gemv_ab_$v.json" >"$OUT/gemv_ab_$v.txt" 2>&1 ||
        echo "gemv_ab: $v failed (see $OUT/gemv_ab_$v.txt)" >&2
done

"$PY" - "$OUT" "${VARIANTS[@]}" <<'EOF' | tee "$OUT/gemv_ab.txt"
import json, os, sys
out, variants = sys.argv[1], sys.argv[2:]
ms = {}
for v in variants:
    p = os.path.join(out, f"gemv_ab_{v}.json")
    if not os.path.exists(p):
        continue
    for r in json.load(open(p))["results"]:
        if r["bench"] == "gpu_gemv":
            ms.setdefault((r["format"], r["rows"], r["cols"]), {})[v] = r["ms"]
print("GEMV batch 1, ms (median); every column from this run")
print(f"{'format':8} {'shape':>12} " + " ".join(f"{v:>9}" for v in variants))
for (f, r, c), d in ms.items():
    print(f"{f:8} {f'{r}x{c}':>12} " + " ".join(f"{d[v]:9.4f}" if v in d else f"{'-':>9}" for v in variants))
EOF
