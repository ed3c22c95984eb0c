#!/bin/sh
# Runs test_vtstore_py.py (unittest) with $PYTHON, else python3 on PATH: the interpreter
# scripts/setup_python.sh installs numpy into. Exit 0 pass, 1 fail, 77 skipped (no interpreter,
# or no numpy: the script itself says so).
# Usage: run_test.sh [unittest arguments, e.g. TestStore.test_put_read_f32_exact]
PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "SKIP: $PY not found" >&2
    exit 77
fi
exec "$PY" "$(dirname "$0")/test_vtstore_py.py" "$@"
