#!/bin/sh
# tokenizer.json BPE over SentencePiece pieces against Hugging Face's `tokenizers`: hfspm_ref.py
# trains a small SentencePiece BPE model and writes Gemma-, Llama 2- and Mistral-style
# tokenizer.json files with the ids `tokenizers` gives for fixed and seeded random strings;
# test_hf_spm checks vtstore's ids.
# Usage: run_hfspm_test.sh TEST_HF_SPM_BINARY [WORKDIR]      (77 = skipped)
set -eu
bin=$1
work=${2:-.}
PY=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "SKIP: $PY not found" >&2
    exit 77
fi
for m in sentencepiece tokenizers; do
    if ! "$PY" -c "import $m" >/dev/null 2>&1; then
        echo "SKIP: python module '$m' missing (run scripts/setup_python.sh)" >&2
        exit 77
    fi
done
seed=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
echo "seed $seed (hfspm_ref.py --seed repeats it)"
dir="$work/hfspm-$$"
trap 'rm -rf "$dir"' EXIT
"$PY" "$ROOT/tests/model/hfspm_ref.py" "$dir" --fuzz 1500 --seed "$seed"
"$bin" "$dir"
