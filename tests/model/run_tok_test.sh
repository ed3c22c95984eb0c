#!/bin/sh
# Compares the C tokenizer with the `tokenizers` oracle on the model's own
# vocabulary: tok_ref.py dumps vocab, merges, test strings and the oracle's ids;
# test_tokenizer encodes them and checks ids and round trips.
# Usage: run_tok_test.sh TEST_TOKENIZER_BINARY [WORKDIR]      (77 = skipped)
set -eu
bin=$1
work=${2:-.}
PY_MODULES="numpy gguf tokenizers"
. "$(dirname "$0")/py_deps.sh"
dump="$work/tok_ref.dump"
"$PY" "$ROOT/tests/model/tok_ref.py" "$MODEL" --dump "$dump" --fuzz 2000
"$bin" "$dump"
