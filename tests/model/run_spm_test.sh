#!/bin/sh
# Compares the C tokenizer's SentencePiece encoding with Google's `sentencepiece` on a small
# BPE model trained by spm_ref.py as Llama 2's is configured (byte fallback, identity
# normalization, a dummy prefix): ids of fixed and seeded random strings, and their decoding.
# Usage: run_spm_test.sh TEST_TOKENIZER_BINARY [WORKDIR]      (77 = skipped)
set -eu
bin=$1
work=${2:-.}
PY=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "SKIP: $PY not found" >&2
    exit 77
fi
if ! "$PY" -c "import sentencepiece" >/dev/null 2>&1; then
    echo "SKIP: python module 'sentencepiece' missing (run scripts/setup_python.sh)" >&2
    exit 77
fi
seed=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
echo "spm seed $seed (spm_ref.py --seed repeats it)"
"$PY" "$ROOT/tests/model/spm_ref.py" "$work/spm_ref.dump" --fuzz 2000 --seed "$seed"
"$bin" "$work/spm_ref.dump"
