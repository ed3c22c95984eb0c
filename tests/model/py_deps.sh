# Sourced by the model test wrappers.  Sets PY and MODEL, or exits 77 (CTest
# "skipped") with the reason when Python, a package or the model is missing.
# Usage: PY_MODULES="numpy gguf"; . py_deps.sh   (POSIX '.' takes no arguments)
PY=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "SKIP: $PY not found" >&2
    exit 77
fi
for mod in ${PY_MODULES:-}; do
    if ! "$PY" -c "import $mod" >/dev/null 2>&1; then
        echo "SKIP: python module '$mod' missing (run scripts/setup_python.sh)" >&2
        exit 77
    fi
done
if [ -n "${VT_MODEL_GGUF:-}" ]; then
    MODEL=$VT_MODEL_GGUF
elif ! MODEL=$(PYTHON="$PY" sh "$ROOT/scripts/model_path.sh" 2>/dev/null); then
    echo "SKIP: SmolLM2 GGUF not installed (run scripts/setup_python.sh)" >&2
    exit 77
fi
if [ ! -f "$MODEL" ]; then
    echo "SKIP: model file $MODEL not found" >&2
    exit 77
fi
