#!/bin/sh
# Qwen3, and head dimensions other than embedding_length / head_count, on both paths against the
# numpy reference (tests/model/ref_llama.py: per-head q/k RMSNorm before NEOX RoPE for
# general.architecture qwen3, the head dimension from attention.key_length).
#  1. SmolLM2 rewritten as a qwen3 GGUF (gguf_edit.py --qwen3: keys renamed, attn_q/attn_k rows
#     un-permuted, random q/k norms 1 + 0.3 normal), imported as it is (Q4_1 blocks kept) and
#     converted to an HF directory (gguf_to_hf.py: model_type qwen3, self_attn.{q,k}_norm).
#  2. Random GGUFs from gguf_synth.py with head dim 96 while dim / heads = 64 (GGUF key_length;
#     HF config.json head_dim): qwen3, and llama (adjacent RoPE pairs).
# The random qwen3 model also against llama.cpp when scripts/setup_llamacpp.sh installed it.
# On the chat prompt of docs/MODEL_NOTES.md (the random models: 40 ids): cosine >= 0.9999 and
# the same top-1 at every position. The qwen3 reference without the q/k norms, and the one with
# llama's adjacent pairing, must be far from every qwen3 run, so ignoring either would fail here.
set -eu
PY_MODULES="numpy gguf"
. "$(dirname "$0")/common.sh"
need_store
W="$TMP/qwen3"
rm -rf "$W"
mkdir -p "$W"
trap 'rm -rf "$W"' EXIT
REF="$ROOT/tests/model/ref_llama.py"

far() { # RUN NAME REFS...: RUN must be far from each reference variant
    run=$1 name=$2
    shift 2
    for v in "$@"; do far_from "$run" "$v" "$name vs $(basename "$v")"; done
}

# both paths of GGUF $1 with ids $2 against the reference; $3: extra far-variant reference flags
both_paths() {
    g=$1 ids=$2 tag=$3
    shift 3
    "$PY" "$REF" "$g" --tokens "$ids" -o "$W/$tag.ref.npy" 2>/dev/null
    fars=""
    for fl in "$@"; do
        f="$W/$tag.ref$(echo "$fl" | tr -d ' -').npy"
        # shellcheck disable=SC2086
        "$PY" "$REF" "$g" --tokens "$ids" $fl -o "$f" 2>/dev/null
        fars="$fars $f"
    done
    "$VT_BIN" import "$g" "$W/$tag.vts" -q >/dev/null
    "$VT_BIN" run "$W/$tag.vts" --tokens "$ids" --max-new 1 --quiet --logits "$W/$tag.gguf.npy"
    echo "$tag GGUF store vs the reference:"
    "$PY" "$HERE/compare_logits.py" "$W/$tag.gguf.npy" "$W/$tag.ref.npy" --min-cos 0.9999 --top1
    # shellcheck disable=SC2086
    [ -z "$fars" ] || far "$W/$tag.gguf.npy" "$tag GGUF store" $fars
    rm -rf "$W/$tag.vts"
    "$PY" "$HERE/gguf_to_hf.py" "$g" "$W/$tag.hf" --dtype f32 >/dev/null
    case $tag in *qwen3*) grep -q '"model_type": "qwen3"' "$W/$tag.hf/config.json" ;; esac
    case $tag in *hd96) grep -q '"head_dim": 96' "$W/$tag.hf/config.json" ;; esac
    "$VT_BIN" import "$W/$tag.hf/model.safetensors" "$W/$tag.hf.vts" --format f32 -q >/dev/null
    "$VT_BIN" run "$W/$tag.hf.vts" --tokens "$ids" --max-new 1 --quiet --logits "$W/$tag.hf.npy"
    echo "$tag HF store vs the reference:"
    "$PY" "$HERE/compare_logits.py" "$W/$tag.hf.npy" "$W/$tag.ref.npy" --min-cos 0.9999 --top1
    # shellcheck disable=SC2086
    [ -z "$fars" ] || far "$W/$tag.hf.npy" "$tag HF store" $fars
    rm -rf "$W/$tag.hf.vts" "$W/$tag.hf"
}

"$PY" "$HERE/gguf_edit.py" "$MODEL" "$W/q3.gguf" --qwen3 7 --bias-scale 0.3
grep -q qwen3 "$W/q3.gguf"
both_paths "$W/q3.gguf" "$IDS" smollm2-qwen3 --no-qk-norm "--rope adjacent"

SIDS=$(synth_ids 3)
"$PY" "$HERE/gguf_synth.py" "$W/s3.gguf" --arch qwen3 --head-dim 96 --seed 5
both_paths "$W/s3.gguf" "$SIDS" synth-qwen3-hd96 --no-qk-norm "--rope adjacent"
# and against llama.cpp, the reference implementation, when it is installed
if "$PY" "$ROOT/tests/model/llamacpp_logits.py" --check >/dev/null 2>&1; then
    "$PY" "$ROOT/tests/model/llamacpp_logits.py" "$W/s3.gguf" --tokens "$SIDS" -o "$W/lc.npy" \
        2>/dev/null
    "$VT_BIN" import "$W/s3.gguf" "$W/s3.vts" -q >/dev/null
    "$VT_BIN" run "$W/s3.vts" --tokens "$SIDS" --max-new 1 --quiet --logits "$W/s3.npy"
    echo "synth-qwen3-hd96 GGUF store vs llama.cpp:"
    "$PY" "$HERE/compare_logits.py" "$W/s3.npy" "$W/lc.npy" --min-cos 0.9999 --top1
    rm -rf "$W/s3.vts"
else
    echo "llama.cpp is not installed (scripts/setup_llamacpp.sh): the numpy reference only"
fi
"$PY" "$HERE/gguf_synth.py" "$W/sl.gguf" --arch llama --head-dim 96 --seed 6
both_paths "$W/sl.gguf" "$SIDS" synth-llama-hd96 "--rope half"

# a qwen3 store without its q/k norms is refused, naming the tensor
"$PY" "$HERE/gguf_edit.py" "$MODEL" "$W/q3.gguf" --qwen3 7 --no-qk-norm
refused_naming "$W/q3.gguf" "a qwen3 store without q/k norms" "attn_q_norm.weight"
