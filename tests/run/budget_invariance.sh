#!/bin/sh
# The same prompt with the RAM budget at 25% of the model (most weights streamed from disk every
# token, token_embd in parts) and with everything resident: identical generated tokens and logits
# equal within 1e-6 relative, for the prompt and every decoded position.
set -eu
PY_MODULES="numpy"
. "$(dirname "$0")/common.sh"
need_store
"$VT_BIN" run "$STORE" --tokens "$IDS" --max-new 8 --json --logits "$TMP/inv_all.npy" \
    >"$TMP/inv_all.json"
"$VT_BIN" run "$STORE" --tokens "$IDS" --max-new 8 --json --ram 25% --logits "$TMP/inv_25.npy" \
    >"$TMP/inv_25.json"
"$PY" "$HERE/compare_logits.py" "$TMP/inv_25.npy" "$TMP/inv_all.npy" --max-rel 1e-6 \
    --json "$TMP/inv_25.json" "$TMP/inv_all.json" --min-read-ratio 0.5
