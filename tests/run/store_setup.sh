#!/bin/sh
# Fixture: import the SmolLM2 GGUF into a store, keeping its Q4_1/Q8_0/F32 blocks byte for byte.
set -eu
PY_MODULES="numpy gguf"
. "$(dirname "$0")/common.sh"
if [ -n "${VT_RUN_STORE:-}" ]; then exit 0; fi
rm -rf "$STORE"
"$VT_BIN" import "$MODEL" "$STORE" >/dev/null
touch "$STORE/.imported"
echo "imported $MODEL into $STORE"
