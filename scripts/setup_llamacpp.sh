#!/bin/sh
# Installs llama.cpp as an independent oracle and speed baseline for `vtstore run`
# (tests/model/llamacpp_logits.py, the run_llamacpp_oracle test, bench/run/bench_run.py --llamacpp).
#
# What: the llama.cpp that llama-cpp-python 0.3.36 vendors (sdist from PyPI, sha256 pinned),
# built with plain CMake as libllama + ggml only (CPU, -march=native, OpenMP; no BLAS, no common
# library, tools, tests, examples, server, curl or OpenSSL), next to that sdist's ctypes bindings
# (the pure-Python llama_cpp/ directory, matched to this exact llama.h). 2.3 to 4.4 minutes on a
# loaded 2-CPU VM (2.5 to 3 minutes of CPU); `pip install llama-cpp-python` with everything
# optional off takes twice the CPU time (it always builds llama.cpp's common library).
#
# Where: $VT_LLAMACPP_DIR, default ${XDG_CACHE_HOME:-~/.cache}/vtstore/llama-cpp-python-0.3.36:
#   llama_cpp/*.py, llama_cpp/lib/lib{llama,ggml,ggml-base,ggml-cpu}.so*, .installed (a stamp).
# Not in site-packages: this is not a full llama-cpp-python (no chat formats, no server), and must
# not shadow one a user installs. llamacpp_logits.py looks here first, then for an installed
# llama_cpp package.
#
# Idempotent; quiet unless it installs. Rebuilt when the stamp is missing or the CPU's feature
# flags changed (the build is -march=native). Needs cmake, a C/C++ compiler and pip (network,
# PyPI) unless VT_LLAMACPP_SDIST names the .tar.gz already downloaded.
# Usage: scripts/setup_llamacpp.sh   (env: PYTHON, VT_LLAMACPP_DIR, VT_LLAMACPP_SDIST, JOBS)
set -eu
PY=${PYTHON:-python3}
VER=0.3.36
SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/vtstore
PREFIX=${VT_LLAMACPP_DIR:-$CACHE/llama-cpp-python-$VER}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# the bindings import typing_extensions (in most environments already; tiny when not)
if ! "$PY" -c "import typing_extensions" >/dev/null 2>&1; then
    echo "setup_llamacpp: installing typing_extensions" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        typing_extensions >&2 ||
        "$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
            --user --break-system-packages typing_extensions >&2
fi

cpu_id=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cksum | cut -d' ' -f1)
stamp="llama-cpp-python $VER cpu-flags $cpu_id"
if [ -f "$PREFIX/.installed" ] && [ "$(cat "$PREFIX/.installed")" = "$stamp" ] &&
    "$PY" "$ROOT/tests/model/llamacpp_logits.py" --check >/dev/null 2>&1; then
    exit 0
fi

for tool in cmake c++ cc; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "setup_llamacpp: $tool not found (scripts/setup.sh installs it)" >&2
        exit 1
    }
done
echo "setup_llamacpp: building llama.cpp (llama-cpp-python $VER) into $PREFIX, a few minutes" >&2
start=$(date +%s)
mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/llamacpp-build.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

sdist=${VT_LLAMACPP_SDIST:-}
if [ -z "$sdist" ]; then
    sdist=$CACHE/llama_cpp_python-$VER.tar.gz
    if [ ! -f "$sdist" ] || ! echo "$SHA256  $sdist" | sha256sum -c - >/dev/null 2>&1; then
        "$PY" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
            -d "$work/dl" "llama-cpp-python==$VER" >&2
        mv "$work/dl/llama_cpp_python-$VER.tar.gz" "$sdist"
    fi
fi
if ! echo "$SHA256  $sdist" | sha256sum -c - >/dev/null 2>&1; then
    echo "setup_llamacpp: $sdist is not llama-cpp-python $VER (sha256 differs)" >&2
    exit 1
fi
tar -xzf "$sdist" -C "$work" --exclude "llama_cpp_python-$VER/.git" \
    "llama_cpp_python-$VER/vendor/llama.cpp" "llama_cpp_python-$VER/llama_cpp"
src=$work/llama_cpp_python-$VER

# shellcheck disable=SC2016 # $ORIGIN is for the linker, not the shell
# $ORIGIN: libllama finds the ggml libraries beside it once moved out of the build tree.
cmake -S "$src/vendor/llama.cpp" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=ON -DGGML_BLAS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
    -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON '-DCMAKE_INSTALL_RPATH=$ORIGIN' \
    >"$work/cmake.log" 2>&1 || {
    tail -20 "$work/cmake.log" >&2
    exit 1
}
cmake --build "$work/build" --target llama -j "${JOBS:-$(nproc)}" >"$work/build.log" 2>&1 || {
    tail -30 "$work/build.log" >&2
    exit 1
}

stage=$work/prefix
mkdir -p "$stage/llama_cpp/lib"
cp "$src"/llama_cpp/*.py "$stage/llama_cpp/"
cp -P "$work/build/bin"/lib*.so* "$stage/llama_cpp/lib/"
echo "$stamp" >"$stage/.installed"
rm -rf "$PREFIX"
mkdir -p "$(dirname "$PREFIX")"
mv "$stage" "$PREFIX"
VT_LLAMACPP_DIR=$PREFIX "$PY" "$ROOT/tests/model/llamacpp_logits.py" --check >&2 || {
    echo "setup_llamacpp: built, but the library does not load (above)" >&2
    exit 1
}
echo "setup_llamacpp: done in $(($(date +%s) - start)) s" >&2
