#!/bin/sh
# Compares the C tokenizer with the `tokenizers` oracle on the model's own
# vocabulary: tok_ref.py dumps vocab, merges, test strings and the oracle's ids;
# test_tokenizer encodes them and checks ids and round trips. Twice: with the
# model's own split (smollm: digits one by one) and with GPT-2's (gpt-2).
# Usage: run_tok_test.sh TEST_TOKENIZER_BINARY [WORKDIR]      (77 = skipped)
set -eu
bin=$1
work=${2:-.}
PY_MODULES="numpy gguf tokenizers"
. "$(dirname "$0")/py_deps.sh"
dump="$work/tok_ref.dump"
"$PY" "$ROOT/tests/model/tok_ref.py" "$MODEL" --dump "$dump" --fuzz 2000
"$bin" "$dump"
# the same vocabulary with GPT-2's split alone (numbers grouped): VT_TOK_PRE_GPT2
"$PY" "$ROOT/tests/model/tok_ref.py" "$MODEL" --pre gpt-2 --dump "$dump.gpt2" --fuzz 1000
"$bin" "$dump.gpt2"
# Llama 3's and Qwen2's splits (VT_TOK_PRE_LLAMA3 / VT_TOK_PRE_QWEN2)
"$PY" "$ROOT/tests/model/tok_ref.py" "$MODEL" --pre llama-bpe --dump "$dump.llama3" --fuzz 3000
"$bin" "$dump.llama3"
"$PY" "$ROOT/tests/model/tok_ref.py" "$MODEL" --pre qwen2 --dump "$dump.qwen2" --fuzz 3000
"$bin" "$dump.qwen2"
