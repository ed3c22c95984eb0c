#!/bin/sh
# Runs test_export_interop.py with $PYTHON, else python3 on PATH (the interpreter
# scripts/setup_python.sh installs numpy and gguf into). Exit 0 pass, 1 fail, 77 skipped (no
# interpreter; the script itself exits 77 without numpy or gguf).
PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "SKIP: $PY not found" >&2
    exit 77
fi
exec "$PY" "$(dirname "$0")/test_export_interop.py" "$@"
