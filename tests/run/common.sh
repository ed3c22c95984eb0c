# Sourced by the tests/run scripts. Sets PY, MODEL (via tests/model/py_deps.sh), VT_BIN, STORE
# (the fixture's store) and IDS (the chat prompt of docs/MODEL_NOTES.md), or exits 77.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../model/py_deps.sh"
: "${VT_BIN:?VT_BIN must name the vtstore binary}"
TMP=${VT_RUN_TMP:-${TMPDIR:-/tmp}/vt-run-test}
mkdir -p "$TMP"
STORE=${VT_RUN_STORE:-$TMP/smollm2-q4_1.vts}
IDS=1,4093,198,1780,314,260,3575,282,4649,47,2,198,1,520,9531,198
need_store() {
    if [ ! -f "$STORE/.imported" ] && [ -z "${VT_RUN_STORE:-}" ]; then
        echo "SKIP: no store at $STORE (the run_store_setup fixture failed or was skipped)" >&2
        exit 77
    fi
}
# far_from RUN REF WHAT: the logits RUN must be far from REF (cosine min < 0.999), a reference
# with a feature left out (WHAT names the pair), so that a run missing that feature would fail
far_from() {
    "$PY" "$HERE/compare_logits.py" "$1" "$2" --report | "$PY" -c "
import json, sys
r = json.load(sys.stdin)
print('%s: cosine min %.6f, top-1 match %.2f' % (sys.argv[1], r['cos_min'], r['top1_match']))
sys.exit(0 if r['cos_min'] < 0.999 else 1)" "$3" || {
        echo "FAIL: $3: as close as the reference itself: the check would not see it" >&2
        exit 1
    }
}
# synth_ids SEED: 40 ids for a gguf_synth.py model, its BOS 256 then 39 drawn from its 512 tokens
# (numpy's default_rng(SEED)), comma-separated
synth_ids() {
    "$PY" -c "
import sys
import numpy as np
r = np.random.default_rng(int(sys.argv[1]))
print(','.join(map(str, [256] + list(r.integers(0, 512, 39)))))" "$1"
}
# refused_naming GGUF WHAT NAME: `vtstore run` on GGUF imported (into $W) must fail, naming NAME
# in its message; WHAT describes the model for the messages
refused_naming() {
    "$VT_BIN" import "$1" "$W/refused.vts" -q >/dev/null
    if "$VT_BIN" run "$W/refused.vts" --tokens 1 --max-new 1 --quiet 2>"$W/err"; then
        echo "FAIL: $2 ran" >&2
        exit 1
    fi
    grep -q "$3" "$W/err" || {
        echo "FAIL: $2: message: $(cat "$W/err")" >&2
        exit 1
    }
    echo "$2: $(cat "$W/err")"
    rm -rf "$W/refused.vts"
}
