#!/bin/sh
# Gemma 3 (tools/run/llama.c: embeddings times sqrt(dim), q/k norms, post-attention and post-FFN
# norms, GELU (tanh), windowed layers with their own RoPE base, q scale, tied head, final logit
# soft-capping) on both paths. The model is a random gemma3 GGUF from gguf_synth.py (6 layers,
# dim 256, 4/2 heads of 96, window 8 in every layer but each third, soft-cap 20), imported as it
# is and converted to an HF directory (gguf_to_hf.py: model_type gemma3_text, norms stored as
# w - 1, layer_types); 40 ids. Against the numpy reference (ref_llama.py): cosine >= 0.9999 and the
# same top-1 at every position; each Gemma feature left out of the reference (--ablate) must be
# far (cosine < 0.999), so a run that missed it would fail. Against llama.cpp, the reference
# implementation, when scripts/setup_llamacpp.sh installed it: the same criteria. Then the same
# model with linear RoPE scaling 8 on its global layers (Gemma 3 4B and larger), where the
# reference without scaling, and the one whose windowed layers take the global RoPE base and
# scaling (swa_rope), must be far. Last, Gemma3ForConditionalGeneration checkpoints (model_type
# gemma3, text_config with Gemma3TextConfig's defaults left out, both tensor prefixes, a vision
# tower beside): the reference's logits, and a stop at a top-level eos id.
set -eu
PY_MODULES="numpy gguf"
. "$(dirname "$0")/common.sh"
W="$TMP/gemma3"
rm -rf "$W"
mkdir -p "$W"
trap 'rm -rf "$W"' EXIT
REF="$ROOT/tests/model/ref_llama.py"
IDS40=$(synth_ids 3)

# gemma3 GGUF $1 against the reference (features $2 left out must be far), llama.cpp if there, on
# both paths; tag $3
both() {
    G=$1 ABL=$2 T=$3
    "$PY" "$REF" "$G" --tokens "$IDS40" -o "$W/ref.npy" 2>/dev/null
    for ab in $ABL; do
        "$PY" "$REF" "$G" --tokens "$IDS40" --ablate $ab -o "$W/ref_$ab.npy" 2>/dev/null
    done
    LC=""
    if "$PY" "$ROOT/tests/model/llamacpp_logits.py" --check >/dev/null 2>&1; then
        "$PY" "$ROOT/tests/model/llamacpp_logits.py" "$G" --tokens "$IDS40" -o "$W/lc.npy" \
            2>/dev/null
        LC="$W/lc.npy"
    else
        echo "llama.cpp is not installed (scripts/setup_llamacpp.sh): the numpy reference only"
    fi
    "$VT_BIN" import "$G" "$W/g.vts" -q >/dev/null
    "$VT_BIN" run "$W/g.vts" --tokens "$IDS40" --max-new 1 --quiet --logits "$W/vt_gguf.npy"
    check "$W/vt_gguf.npy" "$T GGUF store"
    "$PY" "$HERE/gguf_to_hf.py" "$G" "$W/hf" --dtype f32 >/dev/null
    grep -q '"model_type": "gemma3_text"' "$W/hf/config.json"
    "$VT_BIN" import "$W/hf/model.safetensors" "$W/hf.vts" --format f32 -q >/dev/null
    "$VT_BIN" run "$W/hf.vts" --tokens "$IDS40" --max-new 1 --quiet --logits "$W/vt_hf.npy"
    check "$W/vt_hf.npy" "$T HF store"
}

check() { # RUN NAME
    echo "$2 vs the reference:"
    "$PY" "$HERE/compare_logits.py" "$1" "$W/ref.npy" --min-cos 0.9999 --top1
    if [ -n "$LC" ]; then
        echo "$2 vs llama.cpp:"
        "$PY" "$HERE/compare_logits.py" "$1" "$LC" --min-cos 0.9999 --top1
    fi
    for ab in $ABL; do
        far_from "$1" "$W/ref_$ab.npy" "$2 vs the reference without $ab"
    done
}

G1="$W/g1.gguf"
"$PY" "$HERE/gguf_synth.py" "$G1" --arch gemma3 --head-dim 96 --seed 5 --window 8 \
    --window-pattern 3 --layers 6 --softcap 20
both "$G1" "window post_norm gelu embed_scale swa_rope" gemma3
# greedy decoding (one row per step, past the window) against the reference's
"$VT_BIN" run "$W/g.vts" --tokens "$IDS40" --max-new 6 --json >"$W/gen.json"
"$PY" - "$W/gen.json" "$G1" "$IDS40" "$REF" <<'PYEOF'
import importlib.util, json, sys
got = json.load(open(sys.argv[1]))["generated_ids"]
spec = importlib.util.spec_from_file_location("ref_llama", sys.argv[4])
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
want = ref.Llama(sys.argv[2]).generate([int(t) for t in sys.argv[3].split(",")], 6)
print("generated: %s, reference %s" % (got, want))
sys.exit(0 if got == want else 1)
PYEOF
rm -rf "$W/g.vts" "$W/hf" "$W/hf.vts"

# the 4B and larger: linear RoPE scaling (factor 8) on the global layers only
G2="$W/g2.gguf"
"$PY" "$HERE/gguf_synth.py" "$G2" --arch gemma3 --head-dim 96 --seed 5 --window 8 \
    --window-pattern 3 --layers 6 --rope-linear 8
grep -q linear "$G2"
both "$G2" "rope_scaling swa_rope" "gemma3 with linear RoPE scaling"
rm -rf "$W/g.vts" "$W/hf" "$W/hf.vts"

# Gemma3ForConditionalGeneration checkpoints (the hub's 4B and larger): config.json model_type
# gemma3 with the language model's keys in text_config, those equal to Gemma3TextConfig's
# defaults left out (8/4 heads of 256, rope_theta 1e6, query_pre_attn_scalar 256, the pattern 6,
# tied), the eos ids at the top level, tensors under language_model.model.* (the hub's files) or
# model.language_model.* (transformers 4.52+) beside a vision tower: the reference's logits, and
# generation stops at a top-level eos id (the first greedy token)
G3="$W/g3.gguf"
"$PY" "$HERE/gguf_synth.py" "$G3" --arch gemma3 --dim 128 --heads 8 --kv-heads 4 --head-dim 256 \
    --seed 7 --window 8 --window-pattern 6 --layers 7
"$PY" "$REF" "$G3" --tokens "$IDS40" -o "$W/ref.npy" 2>/dev/null
LC="" ABL=""
"$VT_BIN" import "$G3" "$W/g.vts" -q >/dev/null
first=$("$VT_BIN" run "$W/g.vts" --tokens "$IDS40" --max-new 1 --json |
    "$PY" -c "import json,sys; print(json.load(sys.stdin)['generated_ids'][0])")
for mm in hub new; do
    "$PY" "$HERE/gguf_to_hf.py" "$G3" "$W/mm" --dtype f32 --gemma3-multimodal $mm \
        --top-eos "5,$first" >/dev/null
    "$PY" - "$W/mm/config.json" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))
t = c["text_config"]
assert c["model_type"] == "gemma3" and t["model_type"] == "gemma3_text", c
gone = [k for k in ("num_attention_heads", "num_key_value_heads", "head_dim", "rope_theta",
                    "query_pre_attn_scalar", "sliding_window_pattern", "tie_word_embeddings",
                    "eos_token_id") if k in t]
assert not gone, "text_config still lists %s" % gone
PYEOF
    "$VT_BIN" import "$W/mm/model.safetensors" "$W/mm.vts" --format f32 -q >/dev/null
    "$VT_BIN" run "$W/mm.vts" --tokens "$IDS40" --max-new 1 --quiet --logits "$W/vt_mm.npy"
    check "$W/vt_mm.npy" "Gemma3ForConditionalGeneration ($mm names)"
    got=$("$VT_BIN" run "$W/mm.vts" --tokens "$IDS40" --max-new 4 --json |
        "$PY" -c "import json,sys; print(json.load(sys.stdin)['generated_ids'])")
    [ "$got" = "[$first]" ] || {
        echo "FAIL: top-level eos_token_id [5, $first]: generated $got" >&2
        exit 1
    }
    rm -rf "$W/mm" "$W/mm.vts"
done
echo "Gemma3ForConditionalGeneration (hub and transformers 4.52+ names): as the reference; stops at the top-level eos"
