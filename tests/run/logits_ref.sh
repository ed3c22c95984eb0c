#!/bin/sh
# vtstore's logits on the Q4_1 store vs the independent numpy reference (tests/model/ref_llama.py)
# for the 16-token chat prompt: cosine >= 0.999 at every position and the same top-1 everywhere.
set -eu
PY_MODULES="numpy gguf"
. "$(dirname "$0")/common.sh"
need_store
"$VT_BIN" run "$STORE" --tokens "$IDS" --max-new 1 --quiet --logits "$TMP/logits_vt.npy"
"$PY" "$ROOT/tests/model/ref_llama.py" "$MODEL" --tokens "$IDS" -o "$TMP/logits_ref.npy" 2>/dev/null
"$PY" "$HERE/compare_logits.py" "$TMP/logits_vt.npy" "$TMP/logits_ref.npy" --min-cos 0.999 --top1
