#!/bin/sh
# Sliding-window attention (tools/run/llama.c attention_window) against the numpy reference
# (tests/model/ref_llama.py --window W: a query sees the last W keys up to itself). A random
# llama GGUF from gguf_synth.py becomes an HF model_type "mistral" with sliding_window 8
# (gguf_to_hf.py --mistral-window 8), imported as f32, and run on 40 ids: the prefill chunk
# reaches past the window, so the per-row path runs; then 6 greedy tokens are generated (one row
# each) and compared as ids. Cosine >= 0.9999 and the same top-1 at every position against the
# windowed reference; the reference without the window must be far (cosine < 0.999), so a run
# that ignored the window would fail. A window of 40 or more must equal the reference without.
set -eu
PY_MODULES="numpy gguf"
. "$(dirname "$0")/common.sh"
W="$TMP/window"
rm -rf "$W"
mkdir -p "$W"
trap 'rm -rf "$W"' EXIT
REF="$ROOT/tests/model/ref_llama.py"
IDS40=$(synth_ids 11)

"$PY" "$HERE/gguf_synth.py" "$W/m.gguf" --arch llama --head-dim 64 --seed 9
"$PY" "$REF" "$W/m.gguf" --tokens "$IDS40" --window 8 -o "$W/ref8.npy" 2>/dev/null
"$PY" "$REF" "$W/m.gguf" --tokens "$IDS40" -o "$W/ref.npy" 2>/dev/null
for w in 8 40; do
    "$PY" "$HERE/gguf_to_hf.py" "$W/m.gguf" "$W/hf$w" --dtype f32 --mistral-window $w >/dev/null
    grep -q '"model_type": "mistral"' "$W/hf$w/config.json"
    "$VT_BIN" import "$W/hf$w/model.safetensors" "$W/w$w.vts" --format f32 -q >/dev/null
    "$VT_BIN" run "$W/w$w.vts" --tokens "$IDS40" --max-new 1 --quiet --logits "$W/vt$w.npy"
done
echo "sliding window 8 vs the windowed reference:"
"$PY" "$HERE/compare_logits.py" "$W/vt8.npy" "$W/ref8.npy" --min-cos 0.9999 --top1
far_from "$W/vt8.npy" "$W/ref.npy" "window 8 vs the reference without a window"
echo "sliding window 40 (the whole prompt) vs the reference without a window:"
"$PY" "$HERE/compare_logits.py" "$W/vt40.npy" "$W/ref.npy" --min-cos 0.9999 --top1

# greedy decoding, one row per step, against the reference's
"$VT_BIN" run "$W/w8.vts" --tokens "$IDS40" --max-new 6 --json >"$W/gen.json"
"$PY" - "$W/gen.json" "$W/m.gguf" "$IDS40" "$REF" <<'PYEOF'
import importlib.util, json, sys
out = json.load(open(sys.argv[1]))
spec = importlib.util.spec_from_file_location("ref_llama", sys.argv[4])
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
m = ref.Llama(sys.argv[2], window=8)
ids = [int(t) for t in sys.argv[3].split(",")]
want = m.generate(ids, 6)
got = out["generated_ids"]
print("generated with window 8: %s, reference %s" % (got, want))
sys.exit(0 if got == want else 1)
PYEOF
