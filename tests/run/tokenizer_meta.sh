#!/bin/sh
# The tokenizer vtstore builds from the store's metadata (gguf.tokenizer.ggml.*) encodes the chat
# prompt to the ids of docs/MODEL_NOTES.md, and to those of the Hugging Face oracle
# (tests/model/tok_ref.py) when `tokenizers` is installed.
set -eu
PY_MODULES="numpy"
. "$(dirname "$0")/common.sh"
need_store
got=$("$VT_BIN" run "$STORE" --prompt "What is the capital of France?" --chat --max-new 1 --json |
    "$PY" -c "import json,sys; print(','.join(map(str, json.load(sys.stdin)['prompt_ids'])))")
echo "vtstore: $got"
if [ "$got" != "$IDS" ]; then
    echo "FAIL: expected $IDS" >&2
    exit 1
fi
if "$PY" -c "import tokenizers, gguf" >/dev/null 2>&1; then
    ref=$("$PY" "$HERE/tok_ids.py" "$MODEL" "What is the capital of France?" \
        "Write a haiku about the ocean. Numbers: 12345, emoji 🙂, ünïcödé.")
    mine=$("$VT_BIN" run "$STORE" --prompt "What is the capital of France?" --chat --max-new 1 --json |
        "$PY" -c "import json,sys; print(','.join(map(str, json.load(sys.stdin)['prompt_ids'])))")
    mine2=$("$VT_BIN" run "$STORE" --prompt "Write a haiku about the ocean. Numbers: 12345, emoji 🙂, ünïcödé." --chat --max-new 1 --json |
        "$PY" -c "import json,sys; print(','.join(map(str, json.load(sys.stdin)['prompt_ids'])))")
    if [ "$ref" != "$(printf '%s\n%s' "$mine" "$mine2")" ]; then
        echo "FAIL: oracle says" >&2
        echo "$ref" >&2
        echo "vtstore says $mine / $mine2" >&2
        exit 1
    fi
    echo "matches the tokenizers oracle on 2 chat prompts"
fi
