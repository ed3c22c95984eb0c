#!/bin/sh
# --vram below the model with the RAM tier holding everything (the device tier in host memory:
# a build or machine without a GPU; a CUDA build on a GPU refuses --vram with --device cpu, and
# the test is skipped there). Once the run kept a VRAM ring slot for every RAM-pinned tensor it
# had acquired and failed in the prefill ("all 4 ring slots of the VRAM tier are held"):
#  - --vram 25%: the same generated ids as everything resident, logits within 1e-6, and the VRAM
#    tier really streamed (4 ring slots, misses, tensors pinned in RAM);
#  - --vram 1%: exit 1 at load, naming token_embd.weight, the VRAM budget and the bytes needed;
#  - --vram of exactly those bytes: runs with 2 ring slots, same ids and logits.
set -eu
PY_MODULES="numpy"
. "$(dirname "$0")/common.sh"
need_store
run() { "$VT_BIN" run "$STORE" --tokens "$IDS" --max-new 8 --json "$@"; }
run --logits "$TMP/vram_all.npy" >"$TMP/vram_all.json"
if ! run --vram 25% --logits "$TMP/vram_25.npy" >"$TMP/vram_25.json" 2>"$TMP/vram_25.err"; then
    if grep -q "use the CUDA device" "$TMP/vram_25.err"; then
        echo "SKIP: a GPU is present: --vram needs --device cuda (not bit-comparable)" >&2
        exit 77
    fi
    cat "$TMP/vram_25.err" >&2
    echo "FAIL: --vram 25% did not run" >&2
    exit 1
fi
"$PY" "$HERE/compare_logits.py" "$TMP/vram_25.npy" "$TMP/vram_all.npy" --max-rel 1e-6 \
    --json "$TMP/vram_25.json" "$TMP/vram_all.json"

# streamed through the VRAM ring: slots, misses and RAM-pinned tensors (all of them reach the
# device through the ring); $2 the ring slots wanted
streamed() {
    "$PY" - "$1" "$2" <<'PYEOF'
import json, sys
j = json.load(open(sys.argv[1]))
v, r = j["prefill"]["vram"], j["prefill"]["ram"]
print("vram: %d slots of %d bytes, %d misses, %d pinned; ram: %d pinned" %
      (v["slots"], v["slot_bytes"], v["misses"], v["pinned_tensors"], r["pinned_tensors"]))
assert v["slots"] == int(sys.argv[2]) and v["misses"] > 0 and r["pinned_tensors"] > v["slots"], j
PYEOF
}
streamed "$TMP/vram_25.json" 4

if run --vram 1% >/dev/null 2>"$TMP/vram_1.err"; then
    echo "FAIL: --vram 1% ran" >&2
    exit 1
fi
cat "$TMP/vram_1.err" >&2
grep -q "token_embd.weight" "$TMP/vram_1.err" && grep -q "VRAM budget of" "$TMP/vram_1.err" || {
    echo "FAIL: the error does not name the tensor and the budget" >&2
    exit 1
}
need=$(sed -n 's/.* below the \([0-9]*\) bytes needed.*/\1/p' "$TMP/vram_1.err")
[ -n "$need" ] || {
    echo "FAIL: the error does not give the bytes needed" >&2
    exit 1
}
run --vram "$need" --logits "$TMP/vram_min.npy" >"$TMP/vram_min.json"
"$PY" "$HERE/compare_logits.py" "$TMP/vram_min.npy" "$TMP/vram_all.npy" --max-rel 1e-6 \
    --json "$TMP/vram_min.json" "$TMP/vram_all.json"
streamed "$TMP/vram_min.json" 2
echo "vram_budget.sh: --vram 25% and --vram $need (the least) match everything resident"
