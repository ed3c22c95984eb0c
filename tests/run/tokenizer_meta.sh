#!/bin/sh
# The tokenizer vtstore builds from the store's metadata (gguf.tokenizer.ggml.*) encodes the chat
# prompt to the ids of docs/MODEL_NOTES.md (SmolLM2's template: its default system message, the
# user turn, the assistant header; $IDS without the system turn), and to those of the Hugging
# Face oracle (tests/model/tok_ref.py) on the text jinja2 renders from the GGUF's own
# chat_template (tok_ids.py) when `tokenizers` and `jinja2` are installed, with and without
# --system; with tokenizer.ggml.pre patched to the Llama-3 and Qwen2 names, prompts encode as
# the oracle's splits of those names.
set -eu
PY_MODULES="numpy"
. "$(dirname "$0")/common.sh"
need_store
prompt_ids() { "$PY" -c "import json,sys; print(','.join(map(str, json.load(sys.stdin)['prompt_ids'])))"; }
Q="What is the capital of France?"
# "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
SYS_IDS=1,9690,198,2683,359,253,5356,5646,11173,3365,3511,308,34519,28,7018,411,407,19712,8182,2,198
got=$("$VT_BIN" run "$STORE" --prompt "$Q" --chat --max-new 1 --json | prompt_ids)
echo "vtstore: $got"
if [ "$got" != "$SYS_IDS,$IDS" ]; then
    echo "FAIL: expected $SYS_IDS,$IDS" >&2
    exit 1
fi
if "$PY" -c "import tokenizers, gguf, jinja2" >/dev/null 2>&1; then
    Q2="Write a haiku about the ocean. Numbers: 12345, emoji 🙂, ünïcödé."
    ref=$("$PY" "$HERE/tok_ids.py" "$MODEL" "$Q" "$Q2")
    mine=$("$VT_BIN" run "$STORE" --prompt "$Q" --chat --max-new 1 --json | prompt_ids)
    mine2=$("$VT_BIN" run "$STORE" --prompt "$Q2" --chat --max-new 1 --json | prompt_ids)
    if [ "$ref" != "$(printf '%s\n%s' "$mine" "$mine2")" ]; then
        echo "FAIL: oracle says" >&2
        echo "$ref" >&2
        echo "vtstore says $mine / $mine2" >&2
        exit 1
    fi
    echo "matches the tokenizers oracle on 2 chat prompts (the template's default system message)"
    # --system replaces the default, kept as given (ChatML does not trim it)
    S=" You are a pirate. Answer in one line.
"
    ref=$("$PY" "$HERE/tok_ids.py" "$MODEL" --system "$S" "$Q")
    mine=$("$VT_BIN" run "$STORE" --system "$S" --prompt "$Q" --chat --max-new 1 --json | prompt_ids)
    if [ "$ref" != "$mine" ]; then
        echo "FAIL: --system: oracle $ref, vtstore $mine" >&2
        exit 1
    fi
    echo "--system: matches the oracle"
fi
# The Llama-3 and Qwen2 splits from GGUF metadata: the model's tokenizer.ggml.pre "smollm"
# patched in place to "llama3" and to "megrez" (llama.cpp's names of those splits with the same
# length, so the file layout is unchanged), imported, and prompts encoded by `vtstore run` as the
# oracle does (tok_ref.py --pre llama-bpe, with ignore_merges, / qwen2).
if "$PY" -c "import tokenizers, gguf" >/dev/null 2>&1; then
    for v in "llama3 llama-bpe" "megrez qwen2"; do
        set -- $v
        "$PY" - "$MODEL" "$TMP/pre-$1.gguf" "$1" <<'PYEOF'
import struct, sys
src, dst, name = sys.argv[1], sys.argv[2], sys.argv[3].encode()
data = bytearray(open(src, "rb").read())
key = b"tokenizer.ggml.pre"
old = struct.pack("<Q", len(key)) + key + struct.pack("<IQ", 8, 6) + b"smollm"
at = data.find(old)
if at < 0 or len(name) != 6:
    sys.exit("tokenizer_meta: tokenizer.ggml.pre 'smollm' not found in %s" % src)
data[at + len(old) - 6:at + len(old)] = name
open(dst, "wb").write(data)
PYEOF
        "$VT_BIN" import "$TMP/pre-$1.gguf" "$TMP/pre-$1.vts" -q >/dev/null
        rm -f "$TMP/pre-$1.gguf"
        for p in "It'S 1234567 THEY'RE here!!
  
next...	line" "Write a haiku about the ocean. Numbers: 12345, emoji 🙂, ünïcödé." "Привет 日本語 'll 42"; do
            got=$("$VT_BIN" run "$TMP/pre-$1.vts" --prompt "$p" --max-new 1 --json |
                "$PY" -c "import json,sys; print(','.join(map(str, json.load(sys.stdin)['prompt_ids'])))")
            want=$("$PY" "$ROOT/tests/model/tok_ref.py" "$MODEL" --pre "$2" --encode "$p")
            if [ "$got" != "$want" ]; then
                echo "FAIL: GGUF tokenizer.ggml.pre '$1' encodes '$p' to $got, the oracle ($2) to $want" >&2
                rm -rf "$TMP/pre-$1.vts"
                exit 1
            fi
        done
        rm -rf "$TMP/pre-$1.vts"
        echo "GGUF tokenizer.ggml.pre '$1': 3 prompts encode as the oracle's $2 split"
    done
fi
