#!/bin/sh
# Llama 3's RoPE frequency scaling on the SmolLM2 weights, both ways a model carries it:
#  - GGUF: the fixture's GGUF imported into a fresh store plus a rope_freqs.weight tensor (the
#    divisors, computed here as convert_hf_to_gguf does);
#  - Hugging Face: gguf_to_hf.py with config.json rope_scaling {rope_type: llama3, ...} (the
#    runner computes the divisors itself, tools/run/hf_config.c).
# Both against the numpy reference (ref_llama.py --rope-scaling: transformers' formula) on the
# 16-token chat prompt: cosine >= 0.9999 at every position and the same top-1. The parameters
# (original context 64 instead of Llama 3.1's 8192) make the scaling change most frequencies at
# these positions; the check that the unscaled reference is far from the scaled runs (cosine
# < 0.9999 somewhere or a different top-1) shows the comparison would catch ignored factors.
# A rope_scaling type other than llama3 is refused with a message naming it.
set -eu
PY_MODULES="numpy gguf"
. "$(dirname "$0")/common.sh"
need_store
RS='{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}'
W="$TMP/rope"
rm -rf "$W"
mkdir -p "$W"
trap 'rm -rf "$W"' EXIT

"$PY" "$ROOT/tests/model/ref_llama.py" "$MODEL" --tokens "$IDS" --rope-scaling "$RS" \
    -o "$W/ref_scaled.npy" 2>/dev/null
"$PY" "$ROOT/tests/model/ref_llama.py" "$MODEL" --tokens "$IDS" -o "$W/ref_plain.npy" 2>/dev/null

# far apart: the factors matter for this prompt
far() {
    "$PY" "$HERE/compare_logits.py" "$1" "$W/ref_plain.npy" --report | "$PY" -c "
import json, sys
r = json.load(sys.stdin)
print('%s vs the unscaled reference: cosine min %.6f, top-1 match %.2f' % (sys.argv[1], r['cos_min'], r['top1_match']))
sys.exit(0 if r['cos_min'] < 0.9999 or r['top1_match'] < 1 else 1)" "$2" || {
        echo "FAIL: the scaled run is as close to the unscaled reference: the check would not see ignored factors" >&2
        exit 1
    }
}

# GGUF: rope_freqs.weight as convert_hf_to_gguf writes it for rope_type llama3
"$PY" - "$W/rope_freqs.npy" "$RS" <<'PYEOF'
import json, math, sys
import numpy as np
rs = json.loads(sys.argv[2])
base, dim = 100000.0, 64   # SmolLM2: rope.freq_base, rope.dimension_count
freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
old = rs["original_max_position_embeddings"]
out = []
for freq in freqs:
    wavelen = 2 * math.pi / freq
    if wavelen < old / high:
        out.append(1)
    elif wavelen > old / low:
        out.append(factor)
    else:
        smooth = (old / wavelen - low) / (high - low)
        out.append(1 / ((1 - smooth) / factor + smooth))
np.save(sys.argv[1], np.array(out, dtype=np.float32))
print("rope_freqs.weight:", " ".join("%.3g" % x for x in out))
PYEOF
"$VT_BIN" import "$MODEL" "$W/gguf.vts" -q >/dev/null
"$VT_BIN" import "$W/rope_freqs.npy" "$W/gguf.vts" --name rope_freqs.weight -q >/dev/null
"$VT_BIN" run "$W/gguf.vts" --tokens "$IDS" --max-new 1 --quiet --logits "$W/vt_gguf.npy"
echo "GGUF store with rope_freqs.weight vs the scaled reference:"
"$PY" "$HERE/compare_logits.py" "$W/vt_gguf.npy" "$W/ref_scaled.npy" --min-cos 0.9999 --top1
far "$W/vt_gguf.npy" "GGUF store"
rm -rf "$W/gguf.vts"

# Hugging Face: config.json rope_scaling, f32 weights
"$PY" "$HERE/gguf_to_hf.py" "$MODEL" "$W/hf" --dtype f32 --rope-scaling "$RS" >/dev/null
"$VT_BIN" import "$W/hf/model.safetensors" "$W/hf.vts" --format f32 -q >/dev/null
"$VT_BIN" run "$W/hf.vts" --tokens "$IDS" --max-new 1 --quiet --logits "$W/vt_hf.npy"
echo "HF store with config.json rope_scaling vs the scaled reference:"
"$PY" "$HERE/compare_logits.py" "$W/vt_hf.npy" "$W/ref_scaled.npy" --min-cos 0.9999 --top1
far "$W/vt_hf.npy" "HF store"
rm -rf "$W/hf.vts" "$W/hf"

# another rope_scaling type is refused (a tiny model: the check comes before the tensors)
mkdir -p "$W/lin"
"$PY" - "$W/lin" <<'PYEOF'
import json, struct, sys
import numpy as np
d = sys.argv[1]
a = np.zeros((4, 8), np.float32).tobytes()
h = json.dumps({"model.embed_tokens.weight": {"dtype": "F32", "shape": [4, 8],
                                              "data_offsets": [0, len(a)]}}).encode()
h += b" " * (-len(h) % 8)
open(d + "/model.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + a)
json.dump({"model_type": "llama", "hidden_size": 8, "intermediate_size": 16,
           "num_hidden_layers": 1, "num_attention_heads": 2,
           "rope_scaling": {"type": "yarn", "factor": 2.0}}, open(d + "/config.json", "w"))
PYEOF
"$VT_BIN" import "$W/lin/model.safetensors" "$W/lin.vts" -q >/dev/null
if "$VT_BIN" run "$W/lin.vts" --tokens 1 --max-new 1 --quiet 2>"$W/err.txt" ||
    ! grep -q "rope_scaling type 'yarn' is not supported" "$W/err.txt"; then
    echo "FAIL: rope_scaling yarn was not refused with a clear message:" >&2
    cat "$W/err.txt" >&2
    exit 1
fi
echo "rope_scaling yarn refused: $(cat "$W/err.txt")"
