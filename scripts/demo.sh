#!/usr/bin/env bash
# `make demo`: a real model larger than the memory budget, run from a store.
#   1. quantization report on generated data (vtstore quant; DEMO_QUANT=0 skips it)
#   2. Python deps + SmolLM2-135M-Instruct Q4_1 GGUF (scripts/setup_python.sh)
#   3. import it twice: keeping the GGUF's Q4_1/Q8_0 blocks, and re-quantized to nf4
#   4. vtstore ls / verify
#   5. a chat prompt with the RAM budget at 25% of the model: most weights are streamed from
#      disk for every token; prints the generated text and the tier stats
# Outputs go to $DEMO_OUT (default ./demo-out, git-ignored). Usage: scripts/demo.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VT="$BUILD/tools/vtstore"
OUT=${DEMO_OUT:-demo-out}
PROMPT=${DEMO_PROMPT:-What is the capital of France?}
BUDGET=${DEMO_BUDGET:-25%}
export PYTHON=${PYTHON:-python3}

step() { printf '\n== %s\n' "$*"; }

if [ "${DEMO_QUANT:-1}" != 0 ]; then
    step "quantization report (generated data)"
    "$VT" quant
fi

step "setup: Python packages and the model"
bash "$ROOT/scripts/setup_python.sh"
MODEL=$(sh "$ROOT/scripts/model_path.sh")
echo "model: $MODEL ($(stat -c %s "$MODEL") bytes)"

mkdir -p "$OUT"
Q41="$OUT/smollm2-q4_1.vts"
NF4="$OUT/smollm2-nf4.vts"
rm -rf "$Q41" "$NF4"
step "import, keeping the GGUF's blocks (Q4_1 matrices, Q8_0 embedding, F32 norms)"
"$VT" import "$MODEL" "$Q41"
step "import, re-quantizing every matrix to nf4"
"$VT" import "$MODEL" "$NF4" --format nf4 --requantize

step "vtstore ls (the first layer)"
"$VT" ls "$Q41" 'blk.0.*'
step "vtstore verify"
"$VT" verify "$Q41"
"$VT" verify "$NF4"

step "run: chat prompt, RAM budget $BUDGET of the model (streamed), Q4_1 store"
"$VT" run "$Q41" --chat --prompt "$PROMPT" --max-new 24 --ram "$BUDGET"
step "run: same prompt, everything resident"
"$VT" run "$Q41" --chat --prompt "$PROMPT" --max-new 24
step "run: same prompt, RAM budget $BUDGET, nf4 store, q8_0 KV cache"
"$VT" run "$NF4" --chat --prompt "$PROMPT" --max-new 24 --ram "$BUDGET" --kv-format q8_0
