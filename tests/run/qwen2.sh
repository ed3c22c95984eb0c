#!/bin/sh
# Qwen2 on both paths against the numpy reference (tests/model/ref_llama.py: q/k/v biases, NEOX
# RoPE for general.architecture qwen2). The model is SmolLM2 rewritten as a qwen2 GGUF
# (gguf_edit.py --qwen2: keys renamed, attn_q/attn_k rows un-permuted as Qwen2 GGUFs are, random
# biases with standard deviation 0.1), imported as it is (Q4_1 blocks kept), and converted to an
# HF directory (gguf_to_hf.py: model_type qwen2, q/k/v_proj.bias, f32) and imported. On the chat
# prompt of docs/MODEL_NOTES.md: cosine >= 0.9999 and the same top-1 at every position. The
# reference without the biases and the one with llama's adjacent pairing must be far from both
# runs, so that ignoring either would fail here.
set -eu
PY_MODULES="numpy gguf"
. "$(dirname "$0")/common.sh"
need_store
W="$TMP/qwen2"
rm -rf "$W"
mkdir -p "$W"
trap 'rm -rf "$W"' EXIT
REF="$ROOT/tests/model/ref_llama.py"

"$PY" "$HERE/gguf_edit.py" "$MODEL" "$W/q2.gguf" --qwen2 7 --bias-scale 0.1
"$PY" "$REF" "$W/q2.gguf" --tokens "$IDS" -o "$W/ref.npy" 2>/dev/null
"$PY" "$REF" "$W/q2.gguf" --tokens "$IDS" --no-bias -o "$W/ref_nobias.npy" 2>/dev/null
"$PY" "$REF" "$W/q2.gguf" --tokens "$IDS" --rope adjacent -o "$W/ref_adjacent.npy" 2>/dev/null

far() { # RUN NAME: RUN must be far from the reference variants
    for v in nobias adjacent; do far_from "$1" "$W/ref_$v.npy" "$2 vs the reference with $v"; done
}

"$VT_BIN" import "$W/q2.gguf" "$W/gguf.vts" -q >/dev/null
"$VT_BIN" run "$W/gguf.vts" --tokens "$IDS" --max-new 1 --quiet --logits "$W/vt_gguf.npy"
echo "qwen2 GGUF store vs the reference:"
"$PY" "$HERE/compare_logits.py" "$W/vt_gguf.npy" "$W/ref.npy" --min-cos 0.9999 --top1
far "$W/vt_gguf.npy" "qwen2 GGUF store"
rm -rf "$W/gguf.vts"

"$PY" "$HERE/gguf_to_hf.py" "$W/q2.gguf" "$W/hf" --dtype f32 >/dev/null
grep -q '"model_type": "qwen2"' "$W/hf/config.json"
"$VT_BIN" import "$W/hf/model.safetensors" "$W/hf.vts" --format f32 -q >/dev/null
"$VT_BIN" run "$W/hf.vts" --tokens "$IDS" --max-new 1 --quiet --logits "$W/vt_hf.npy"
echo "qwen2 HF store vs the reference:"
"$PY" "$HERE/compare_logits.py" "$W/vt_hf.npy" "$W/ref.npy" --min-cos 0.9999 --top1
far "$W/vt_hf.npy" "qwen2 HF store"

# a qwen2 store without its biases is refused, naming the tensor
"$PY" "$HERE/gguf_edit.py" "$MODEL" "$W/q2.gguf" --qwen2 7 --no-bias
refused_naming "$W/q2.gguf" "a qwen2 store without biases" "attn_q.bias"
