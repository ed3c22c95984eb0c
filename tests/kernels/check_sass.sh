#!/bin/sh
# tests/kernels/check_sass.sh LIB — disassemble the CUDA kernels (the static library LIB, every
# architecture it holds) and fail on instruction patterns that mean a miscompile we have met:
#   F2I.{U8,S8}.{F16,BF16}: ptxas (CUDA 13.0, sm_90) compiled the PTX byte store of a register
#   written by cvt.rn.f16.f32 as a float-to-int conversion, so the GPU KV append stored every
#   half with its low byte 0 or 1 (found on an H100; kernels/cuda/attn_quant.cuh works around it).
# cuobjdump comes with the CUDA toolkit, or from PyPI (nvidia-cuda-cuobjdump and
# nvidia-cuda-nvdisasm, installed by scripts/setup_python.sh when nvcc is present).
# Exit 77 (skipped) without cuobjdump; 1 when a pattern is found or nothing was disassembled.
set -u
LIB=$1
CUOBJDUMP=""
for c in "${CUDA_HOME:-/usr/local/cuda}/bin/cuobjdump" "$(command -v cuobjdump 2>/dev/null)"; do
    [ -n "$c" ] && [ -x "$c" ] && CUOBJDUMP=$c && break
done
if [ -z "$CUOBJDUMP" ]; then
    CUOBJDUMP=$(${PYTHON:-python3} -c "
import importlib.util, os
s = importlib.util.find_spec('nvidia')
for d in (s.submodule_search_locations if s else []):
    for sub in ('cu13', 'cu12', 'cuda_cuobjdump'):
        p = os.path.join(d, sub, 'bin', 'cuobjdump')
        if os.access(p, os.X_OK): print(p); raise SystemExit
" 2>/dev/null)
fi
if [ -z "$CUOBJDUMP" ]; then
    echo "check_sass: skipped: no cuobjdump (CUDA toolkit bin/ or pip nvidia-cuda-cuobjdump)"
    exit 77
fi
# cuobjdump -sass runs nvdisasm from its own directory or PATH
PATH=$(dirname "$CUOBJDUMP"):$PATH
export PATH
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
if ! "$CUOBJDUMP" -sass "$LIB" >"$OUT" 2>&1; then
    echo "check_sass: $CUOBJDUMP -sass $LIB failed:"
    head -5 "$OUT"
    exit 1
fi
NFUN=$(grep -c 'Function :' "$OUT")
if [ "$NFUN" -lt 50 ]; then
    echo "check_sass: only $NFUN kernels disassembled from $LIB (expected hundreds)"
    head -5 "$OUT"
    exit 1
fi
BAD=$(awk '/Function :/ {fn = $3} /F2I\.[US]8\.(F16|BF16)/ {print fn; n++} END {exit n > 0}' "$OUT")
if [ -n "$BAD" ]; then
    echo "check_sass: F2I.{U8,S8}.{F16,BF16} (a half converted where its bytes were stored) in:"
    echo "$BAD" | sort | uniq -c
    exit 1
fi
echo "check_sass: $NFUN kernels in $LIB, no known miscompile pattern ($CUOBJDUMP)"
