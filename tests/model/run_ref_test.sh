#!/bin/sh
# Checks the numpy reference forward pass itself: its dequantizers against
# gguf.quants, and greedy decoding of a chat prompt that must mention Paris.
# Usage: run_ref_test.sh        (77 = skipped)
set -eu
PY_MODULES="numpy gguf tokenizers"
. "$(dirname "$0")/py_deps.sh"
"$PY" "$ROOT/tests/model/ref_llama.py" --selftest
out=$("$PY" "$ROOT/tests/model/ref_llama.py" "$MODEL" --chat --generate 16 \
    --prompt "What is the capital of France?")
echo "reference says: $out"
case $out in
*Paris*) exit 0 ;;
*) echo "FAIL: the reference did not answer Paris" >&2; exit 1 ;;
esac
