#!/bin/sh
# The Hugging Face path of `vtstore run` (config.json + tokenizer.json beside safetensors): the
# SmolLM2 GGUF converted to an HF-layout directory (gguf_to_hf.py: dequantized, q/k un-permuted,
# HF names) and imported as f16 (merges as [a, b] pairs) and f32 (merges as "a b" strings) gives
# the GGUF store's logits (cosine >= 0.999 at every position, same top-1), and tokenizer.json
# encodes prompts to the same ids as the GGUF vocabulary; with Llama 3's and Qwen2's
# pre_tokenizer swapped in, it encodes prompts as the `tokenizers` oracle does (tok_ref.py
# --pre llama-bpe / qwen2); a pre_tokenizer the runner does not implement refuses --prompt
# (naming it) while --tokens still runs, and --chat refuses a vocabulary without the ChatML
# tokens; a tokenizer_config.json chat_template beside the file is --chat's template.
set -eu
PY_MODULES="numpy gguf"
. "$(dirname "$0")/common.sh"
need_store
W="$TMP/hf"
rm -rf "$W"
mkdir -p "$W"
trap 'rm -rf "$W"' EXIT
"$VT_BIN" run "$STORE" --tokens "$IDS" --max-new 1 --quiet --logits "$W/logits_gguf.npy"
ids_of() {
    "$VT_BIN" run "$1" --prompt "$2" --chat --max-new 1 --json |
        "$PY" -c "import json,sys; print(','.join(map(str, json.load(sys.stdin)['prompt_ids'])))"
}
P2="Write a haiku about the ocean. Numbers: 12345, emoji 🙂, ünïcödé."
want1=$(ids_of "$STORE" "What is the capital of France?") # with the template's system message
want2=$(ids_of "$STORE" "$P2")
for v in "f16 pairs" "f32 strings"; do
    set -- $v
    "$PY" "$HERE/gguf_to_hf.py" "$MODEL" "$W/src-$1" --dtype "$1" --merges "$2"
    "$VT_BIN" import "$W/src-$1/model.safetensors" "$W/$1.vts" --format "$1" >/dev/null
    if [ "$1" = f32 ]; then
        # Llama 3's and Qwen2's tokenizer.json pre_tokenizer (and Llama 3's ignore_merges) on this
        # vocabulary: the ids of a few prompts equal the oracle's
        for pre in llama-bpe qwen2; do
            mkdir -p "$W/tj-$pre"
            cp "$W/src-$1/model.safetensors" "$W/src-$1/config.json" "$W/tj-$pre/"
            ROOT="$ROOT" "$PY" - "$W/src-$1/tokenizer.json" "$W/tj-$pre/tokenizer.json" "$pre" <<'PYEOF'
import json, os, sys
sys.path.insert(0, os.path.join(os.environ["ROOT"], "tests", "model"))
from tok_ref import LLAMA3_REGEX, QWEN2_REGEX
src, dst, pre = sys.argv[1:]
t = json.load(open(src))
t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": LLAMA3_REGEX if pre == "llama-bpe" else QWEN2_REGEX},
     "behavior": "Isolated", "invert": False},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": pre == "llama-bpe",
     "use_regex": False}]}
if pre == "llama-bpe":
    t["model"]["ignore_merges"] = True
else:
    t["normalizer"] = {"type": "NFC"}
json.dump(t, open(dst, "w"))
PYEOF
            "$VT_BIN" import "$W/tj-$pre/model.safetensors" "$W/tj.vts" --format q8_0 >/dev/null
            rm -rf "$W/tj-$pre"
            for p in "$P2" "It'S 1234567 THEY'RE here!!
  
next...	line" "Привет 日本語 'll 42"; do
                got=$("$VT_BIN" run "$W/tj.vts" --prompt "$p" --max-new 1 --json |
                    "$PY" -c "import json,sys; print(','.join(map(str, json.load(sys.stdin)['prompt_ids'])))")
                want=$("$PY" "$ROOT/tests/model/tok_ref.py" "$MODEL" --pre "$pre" --encode "$p")
                if [ "$got" != "$want" ]; then
                    echo "FAIL: tokenizer.json with the $pre split encodes '$p' to $got, the oracle to $want" >&2
                    exit 1
                fi
            done
            echo "tokenizer.json with the $pre pre_tokenizer: 3 prompts encode as the oracle's"
            rm -rf "$W/tj.vts"
        done
        # a pre_tokenizer the runner does not implement (Llama-3's Split regex): --prompt is
        # refused with a message naming it (exit 1), --tokens still runs
        "$PY" - "$W/src-$1/tokenizer.json" <<'PYEOF'
import json, sys
p = sys.argv[1]
t = json.load(open(p))
t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|\\p{N}{1,3}"},
     "behavior": "Isolated", "invert": False},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
# and no ChatML start token: --chat must refuse rather than wrap the prompt in plain text
t["added_tokens"] = [a for a in t["added_tokens"] if a["content"] != "<|im_start|>"]
json.dump(t, open(p, "w"))
PYEOF
        "$VT_BIN" import "$W/src-$1/model.safetensors" "$W/split.vts" --format q8_0 >/dev/null
        if "$VT_BIN" run "$W/split.vts" --prompt "Hi" --max-new 1 --quiet 2>"$W/err.txt"; then
            echo "FAIL: an unsupported pre_tokenizer encoded a prompt" >&2
            exit 1
        fi
        grep -q "pre_tokenizer Sequence \[Split, ByteLevel\]" "$W/err.txt" || {
            echo "FAIL: message does not name the pre_tokenizer:" >&2
            cat "$W/err.txt" >&2
            exit 1
        }
        if "$VT_BIN" run "$W/split.vts" --prompt "Hi" --chat --max-new 1 --quiet 2>"$W/err.txt" ||
            ! grep -q "ChatML" "$W/err.txt"; then
            echo "FAIL: --chat without <|im_start|> in the vocabulary was not refused" >&2
            cat "$W/err.txt" >&2
            exit 1
        fi
        "$VT_BIN" run "$W/split.vts" --tokens "$IDS" --max-new 1 --quiet >/dev/null
        echo "unsupported pre_tokenizer: --prompt refused ($(head -c 120 "$W/err.txt")...), --tokens runs"
        rm -rf "$W/split.vts"
    fi
    if [ "$1" = f16 ]; then
        # tokenizer_config.json's chat_template (kept by import) picks --chat's template: Llama
        # 2's [INST] here, though the vocabulary has ChatML's tokens (which it picked before)
        cat >"$W/src-$1/tokenizer_config.json" <<'JSONEOF'
{"add_bos_token": false, "chat_template": "{% for message in messages %}{% set content = message['content'] %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% endif %}{% endfor %}"}
JSONEOF
        "$VT_BIN" import "$W/src-$1/model.safetensors" "$W/l2.vts" --format f16 >/dev/null
        got=$(ids_of "$W/l2.vts" "  What is the capital of France? ")
        want=$("$VT_BIN" run "$W/l2.vts" --prompt "[INST] What is the capital of France? [/INST]" \
            --max-new 1 --json |
            "$PY" -c "import json,sys; print(','.join(map(str, json.load(sys.stdin)['prompt_ids'])))")
        if [ "$got" != "$want" ]; then
            echo "FAIL: --chat with tokenizer_config.json's [INST] template: $got, want $want" >&2
            exit 1
        fi
        echo "tokenizer_config.json chat_template ([INST]) used by --chat"
        rm -rf "$W/l2.vts"
    fi
    rm -rf "$W/src-$1"
    "$VT_BIN" run "$W/$1.vts" --tokens "$IDS" --max-new 1 --quiet --logits "$W/logits_$1.npy"
    echo "$1 store vs GGUF store:"
    "$PY" "$HERE/compare_logits.py" "$W/logits_$1.npy" "$W/logits_gguf.npy" --min-cos 0.999 --top1
    got=$(ids_of "$W/$1.vts" "What is the capital of France?")
    got2=$(ids_of "$W/$1.vts" "$P2")
    if [ "$got" != "$want1" ] || [ "$got2" != "$want2" ]; then
        echo "FAIL: tokenizer.json ($2 merges) encodes to $got / $got2, GGUF to $want1 / $want2" >&2
        exit 1
    fi
    echo "tokenizer.json ($2 merges) encodes 2 chat prompts as the GGUF vocabulary does (with the chat_template of tokenizer_config.json)"
    rm -rf "$W/$1.vts"
done
