#!/bin/sh
# Fixture: import the SmolLM2 GGUF into a store, keeping its Q4_1/Q8_0/F32 blocks byte for byte.
set -eu
PY_MODULES="numpy gguf"
. "$(dirname "$0")/common.sh"
if [ -n "${VT_RUN_STORE:-}" ]; then exit 0; fi
if ! "$VT_BIN" import --help >/dev/null 2>&1; then
    echo "SKIP: 'vtstore import' is not available in this build" >&2
    exit 77
fi
rm -rf "$STORE"
"$VT_BIN" import "$MODEL" "$STORE" >/dev/null
touch "$STORE/.imported"
echo "imported $MODEL into $STORE"
