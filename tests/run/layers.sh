#!/bin/sh
# gguf_edit.py --layers N: the SmolLM2 GGUF cut to its first 4 blocks (a model small enough to
# carry to a GPU machine, where the 98 MB original is not). Checked with the gguf package (an
# independent reader): block_count 4, exactly the block tensors 0..3 and every non-block tensor
# of the original, each with the original's bytes; then vtstore imports it and generates.
set -eu
PY_MODULES="numpy gguf"
. "$(dirname "$0")/common.sh"
V=$VT_BIN
OUT=$TMP/layers4.gguf
trap 'rm -rf "$OUT" "$TMP/layers4.vts"' EXIT
"$PY" "$HERE/gguf_edit.py" "$MODEL" "$OUT" --layers 4
"$PY" - "$MODEL" "$OUT" <<'PYEOF'
import re, sys
import numpy as np
from gguf import GGUFReader
full, cut = GGUFReader(sys.argv[1]), GGUFReader(sys.argv[2])
bc = cut.fields["llama.block_count"]
n = int(bc.parts[bc.data[0]][0])
assert n == 4, "block_count %d, want 4" % n
blk = re.compile(r"blk\.(\d+)\.")
want = {t.name: t for t in full.tensors if not blk.match(t.name) or int(blk.match(t.name).group(1)) < 4}
got = {t.name: t for t in cut.tensors}
assert set(got) == set(want), "tensors differ: %s" % sorted(set(got) ^ set(want))[:5]
for name, t in got.items():
    w = want[name]
    assert t.tensor_type == w.tensor_type and list(t.shape) == list(w.shape), name
    assert np.array_equal(np.asarray(t.data).view(np.uint8), np.asarray(w.data).view(np.uint8)), name
print("layers.sh: %d tensors kept of %d, block_count 4, bytes equal" % (len(got), len(full.tensors)))
PYEOF
"$V" import "$OUT" "$TMP/layers4.vts" -q >/dev/null
ids=$("$V" run "$TMP/layers4.vts" --prompt "Hello" --max-new 3 --json |
    "$PY" -c "import json,sys; print(len(json.load(sys.stdin)['generated_ids']))")
[ "$ids" = 3 ] || {
    echo "FAIL: the 4-block model generated $ids tokens, want 3" >&2
    exit 1
}
echo "layers.sh: the 4-block model imports and generates"
