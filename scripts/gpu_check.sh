#!/usr/bin/env bash
# scripts/gpu_check.sh — everything vtstore can check on a CUDA machine, in one command, under
# about 10 minutes on an H100 (16 cores):
#   1. machine record: date, nvidia-smi, driver, nvcc --version, cmake, git revision, torch
#   2. configure + build with VT_CUDA=ON (build dir $GPU_CHECK_BUILD, default build-gpu)
#   3. ctest -L gpu --output-on-failure
#   4. compute-sanitizer: memcheck on every GPU test binary; racecheck and synccheck on the
#      kernel tests (reduced workload: VT_TEST_GPU_QUICK=1)
#   5. benchmarks: bench_kernels --gpu-only --json (dense, then the 2:4 variants), bench_attn_gpu +
#      bench/attn/sdpa_baseline.py,
#      bench_stream (its VRAM tier is on the GPU when there is one), attention device memory
#      (bench_attn_gpu --memory, bench/attn/attn_memory.py)
#   6. vtstore run --device cuda (and --vram) on the demo model (scripts/model_path.sh, or
#      $GPU_CHECK_MODEL = a GGUF file) when it is present; where the 98 MB model cannot travel,
#      tests/run/gguf_edit.py MODEL OUT --layers 8 makes a 50 MB one of the same kind
# Every log and JSON goes under ${OUT:-./gpu-out}; summary.txt lists each step as PASS, FAIL
# (exit status), TIMEOUT or SKIP. A failing step does not stop the others. Each step has a time
# limit, and steps are skipped once the total budget ($GPU_CHECK_BUDGET s, default 570) is spent.
#
#   scripts/gpu_check.sh            exit 0 all ran steps passed, 1 some failed, 77 no GPU
#
# GPU_CHECK_ONLY="tests sanitizers bench run" (any subset; default all) limits the run to those
# groups after the machine record and the build, so the whole check can be split over several
# 10-minute device calls (the build directory is kept between calls on the same machine):
#   GPU_CHECK_ONLY=tests scripts/gpu_check.sh; GPU_CHECK_ONLY="sanitizers" ...; ...
#
# GPU_CHECK_SKIP="name ..." skips those steps by name (e.g. "ctest_quick bench_stream
# memcheck_test_streamer_gpu"), for a run that must fit what is left of a lease.
#
# Environment: OUT, GPU_CHECK_BUILD, GPU_CHECK_BUDGET, GPU_CHECK_ONLY, GPU_CHECK_SKIP,
# GPU_CHECK_TARGETS (build only these targets),
# GPU_CHECK_JOBS (default nproc),
# GPU_CHECK_ARCH (CMAKE_CUDA_ARCHITECTURES; default: the GPU's own, e.g. 90), GPU_CHECK_MODEL,
# PYTHON (default python3).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${OUT:-./gpu-out}" && cd "${OUT:-./gpu-out}" && pwd)
BUILD=${GPU_CHECK_BUILD:-$ROOT/build-gpu}
BUDGET=${GPU_CHECK_BUDGET:-570}
JOBS=${GPU_CHECK_JOBS:-$(nproc 2>/dev/null || echo 4)}
PY=${PYTHON:-python3}
SUMMARY="$OUT/summary.txt"
NFAIL=0
: >"$SUMMARY"

log() { printf '%s\n' "$*" | tee -a "$OUT/gpu_check.log"; }
record() { # record STATUS NAME SECONDS [detail]
    printf '%-8s %-34s %5ss  %s\n' "$1" "$2" "$3" "${4:-}" >>"$SUMMARY"
    log "[$1] $2 (${3}s) ${4:-}"
}
left() { echo $((BUDGET - SECONDS)); }

# step NAME LIMIT_S CMD...: run CMD in $OUT with its output in $OUT/NAME.log (stdout in
# $OUT/$STEP_STDOUT instead when that is set), within LIMIT_S and what is left of the budget (at
# least 10 s must be left, else the step is skipped).
STEP_STDOUT=
step() {
    local name=$1 limit=$2
    shift 2
    local rem
    if [[ " ${GPU_CHECK_SKIP:-} " == *" $name "* ]]; then
        record SKIP "$name" 0 "in GPU_CHECK_SKIP"
        return 0
    fi
    rem=$(left)
    if [ "$rem" -lt 10 ]; then
        record SKIP "$name" 0 "time budget spent"
        return 0
    fi
    [ "$limit" -gt "$rem" ] && limit=$rem
    log "== $name (limit ${limit}s): $*"
    local t0=$SECONDS rc
    # line-buffered stdout, so a step killed at its limit still leaves what it printed
    command -v stdbuf >/dev/null 2>&1 && set -- stdbuf -oL -eL "$@"
    if [ -n "$STEP_STDOUT" ]; then
        (cd "$OUT" && timeout --kill-after=10 "$limit" "$@") >"$OUT/$STEP_STDOUT" 2>"$OUT/$name.log"
    else
        (cd "$OUT" && timeout --kill-after=10 "$limit" "$@") >"$OUT/$name.log" 2>&1
    fi
    rc=$?
    local dt=$((SECONDS - t0))
    if [ $rc -eq 0 ]; then
        record PASS "$name" "$dt"
    elif [ $rc -eq 77 ]; then
        record SKIP "$name" "$dt" "exit 77: $(tail -n 1 "$OUT/$name.log")"
    elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        record TIMEOUT "$name" "$dt" "killed after ${limit}s (see $name.log)"
        NFAIL=$((NFAIL + 1))
    else
        record FAIL "$name" "$dt" "exit $rc (see $name.log)"
        NFAIL=$((NFAIL + 1))
    fi
    return 0
}
skip() { record SKIP "$1" 0 "$2"; }
# want GROUP: 1 if GROUP is in GPU_CHECK_ONLY (or that is empty)
want() { [ -z "${GPU_CHECK_ONLY:-}" ] || [[ " $GPU_CHECK_ONLY " == *" $1 "* ]]; }

# ---- 1. the machine ---------------------------------------------------------------------------
{
    echo "date: $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
    echo "host: $(uname -a)"
    echo "git: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null) $(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) changed files"
    echo "cpus: $(nproc 2>/dev/null)"
    echo "cmake: $(cmake --version 2>/dev/null | head -n 1)"
    echo "--- nvcc --version"
    nvcc --version 2>&1 || /usr/local/cuda/bin/nvcc --version 2>&1 || echo "nvcc: not found"
    echo "--- nvidia-smi"
    nvidia-smi 2>&1 || echo "nvidia-smi: not found or failed"
    echo "--- nvidia-smi --query-gpu"
    nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total,clocks.max.sm,clocks.max.mem,power.limit,mig.mode.current,persistence_mode --format=csv 2>&1
    echo "--- torch"
    "$PY" -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())' 2>&1
} >"$OUT/machine.txt" 2>&1
nvidia-smi -q >"$OUT/nvidia-smi-q.txt" 2>&1

if ! nvidia-smi -L >/dev/null 2>&1 || [ -z "$(nvidia-smi -L 2>/dev/null)" ]; then
    log "gpu_check: no NVIDIA GPU here (nvidia-smi -L lists none): nothing to check, exit 77"
    record SKIP all 0 "no GPU"
    exit 77
fi
log "gpu_check: $(nvidia-smi -L | head -n 1); logs in $OUT; budget ${BUDGET}s"

NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
SAN=$(command -v compute-sanitizer || { [ -x /usr/local/cuda/bin/compute-sanitizer ] && echo /usr/local/cuda/bin/compute-sanitizer; })
ARCH=${GPU_CHECK_ARCH:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')}
[ -n "$ARCH" ] || ARCH="80;90"

# ---- 2. build ---------------------------------------------------------------------------------
step configure 120 cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVT_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$NVCC" "-DCMAKE_CUDA_ARCHITECTURES=$ARCH"
# GPU_CHECK_TARGETS="t1 t2 ...": build only those targets (a short lease: the host-emulation
# tests are the slowest part of the build and run on any machine)
step build 360 cmake --build "$BUILD" -j "$JOBS" ${GPU_CHECK_TARGETS:+--target $GPU_CHECK_TARGETS}
if ! grep -q '^PASS *build ' "$SUMMARY"; then
    log "gpu_check: the build failed or timed out; the remaining steps need it"
    for s in ctest_gpu sanitizers benchmarks vtstore_run; do skip "$s" "no build"; done
    cat "$SUMMARY"
    exit 1
fi

# ---- 3. GPU tests -----------------------------------------------------------------------------
export VT_TEST_TMP="$OUT/testtmp" VT_SOURCE_DIR="$ROOT" VT_BIN="$BUILD/tools/vtstore"
mkdir -p "$VT_TEST_TMP"
if want tests; then
    step ctest_gpu 240 ctest --test-dir "$BUILD" -L gpu --output-on-failure --timeout 200 \
        --output-junit "$OUT/ctest_gpu.xml"
    # the installed library (examples/store_gemv.c streams through the device tier of the
    # installed libvtstore.so) and the Python binding, against the CUDA build
    step ctest_lib 180 ctest --test-dir "$BUILD" -R '^(test_abi_symbols|test_install|python_bindings)$' \
        --output-on-failure --timeout 170 --output-junit "$OUT/ctest_lib.xml"
    # the host-emulated kernel tests and the CPU suite in the same build (quick label)
    step ctest_quick 240 ctest --test-dir "$BUILD" -L quick --output-on-failure --timeout 200 \
        -j 4 --output-junit "$OUT/ctest_quick.xml"
else
    skip tests "not in GPU_CHECK_ONLY"
fi

# ---- 4. compute-sanitizer ---------------------------------------------------------------------
GPU_TESTS=$(cd "$BUILD" && find tests -type f -perm -u+x -name 'test_*gpu*' | sort)
if ! want sanitizers; then
    skip sanitizers "not in GPU_CHECK_ONLY"
elif [ -z "$SAN" ]; then
    skip sanitizers "compute-sanitizer not found"
elif [ -z "$GPU_TESTS" ]; then
    skip sanitizers "no test_*gpu* binaries under $BUILD/tests"
else
    # shared-memory races and barrier misuse: the kernel tests and the attention kernels (whose
    # tiles live in shared memory and are reused between iterations)
    # first the integer GEMV kernel alone (VT_TEST_GPU_ONLY=gemv_int: the whole test outlasted
    # 90 s under racecheck once that kernel was added)
    [ -x "$BUILD/tests/kernels/test_kernels_gpu" ] &&
        step racecheck_gemv_int 150 env VT_TEST_GPU_QUICK=1 VT_TEST_GPU_ONLY=gemv_int "$SAN" \
            --tool racecheck --error-exitcode 99 "$BUILD/tests/kernels/test_kernels_gpu"
    for t in tests/kernels/test_kernels_gpu tests/attn/test_attn_gpu; do
        [ -x "$BUILD/$t" ] || continue
        for tool in racecheck synccheck; do
            step "${tool}_$(basename "$t")" 180 env VT_TEST_GPU_QUICK=1 "$SAN" --tool "$tool" \
                --error-exitcode 99 "$BUILD/$t"
        done
    done
    for t in $GPU_TESTS; do
        n=$(basename "$t")
        step "memcheck_$n" 120 env VT_TEST_GPU_QUICK=1 "$SAN" --tool memcheck --error-exitcode 99 \
            --leak-check full "$BUILD/$t"
    done
fi

# ---- 5. benchmarks ----------------------------------------------------------------------------
if want bench; then
    TORCH=0 # PyTorch with CUDA, for the SDPA and memory baselines
    "$PY" -c 'import torch; assert torch.cuda.is_available()' >/dev/null 2>&1 && TORCH=1
    step bench_kernels 120 "$BUILD/bench/kernels/bench_kernels" --gpu-only --runs 5 \
        --json "$OUT/bench_kernels.json"
    # the 2:4-sparse variants beside their dense rows above: where do they pay on a GPU?
    step bench_kernels_24 60 "$BUILD/bench/kernels/bench_kernels" --gpu-only --runs 5 \
        --formats q4_0+2:4,q8_0+2:4,nf4+2:4,awq_int4+2:4 --json "$OUT/bench_kernels_24.json"
    step bench_attn_gpu 90 "$BUILD/bench/attn/bench_attn_gpu" 8192 65536 5 # writes ./bench_attn_gpu.json
    if [ "$TORCH" = 1 ]; then
        step sdpa_baseline 90 "$PY" "$ROOT/bench/attn/sdpa_baseline.py" 8192 65536 5
        [ -f "$OUT/bench_attn_gpu.json" ] && [ -f "$OUT/sdpa_baseline.json" ] &&
            step compare_sdpa 20 "$PY" "$ROOT/bench/attn/compare_sdpa.py" \
                "$OUT/bench_attn_gpu.json" "$OUT/sdpa_baseline.json"
    else
        skip sdpa_baseline "PyTorch with CUDA not importable by $PY"
    fi
    mkdir -p "$OUT/stream-dir"
    step bench_stream 120 "$BUILD/bench/stream/bench_stream" --mib 384 --runs 2 --dir "$OUT/stream-dir" \
        --json "$OUT/bench_stream.json"
    rm -rf "$OUT/stream-dir"
    # device memory of flash vs naive attention (issue 6): ours beside the formula, then PyTorch's
    # math backend (materialises the scores) and flash backend
    step attn_memory_vt 60 "$BUILD/bench/attn/bench_attn_gpu" --memory 32768
    if [ "$TORCH" = 1 ]; then
        step attn_memory_torch 90 "$PY" "$ROOT/bench/attn/attn_memory.py" 32768
    else
        skip attn_memory_torch "PyTorch with CUDA not importable by $PY"
    fi
else
    skip benchmarks "not in GPU_CHECK_ONLY"
fi

# ---- 6. the demo model on the GPU -------------------------------------------------------------
MODEL=${GPU_CHECK_MODEL:-$(PYTHON=$PY sh "$ROOT/scripts/model_path.sh" 2>/dev/null)}
VT="$BUILD/tools/vtstore"
if ! want run; then
    skip vtstore_run "not in GPU_CHECK_ONLY"
elif [ -z "$MODEL" ] || [ ! -f "$MODEL" ]; then
    skip vtstore_run "no demo model (scripts/setup_python.sh, or GPU_CHECK_MODEL=file.gguf)"
else
    # absolute: the steps run in $OUT (a relative GPU_CHECK_MODEL failed the import there)
    MODEL=$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")
    STORE="$OUT/demo-q4_1.vts"
    rm -rf "$STORE"
    step import_demo 90 "$VT" import "$MODEL" "$STORE"
    if grep -q '^PASS *import_demo ' "$SUMMARY"; then
        P="What is the capital of France?"
        for v in cpu cuda cuda_vram25; do
            a=(--device cpu)
            [ "$v" = cuda ] && a=(--device cuda)
            [ "$v" = cuda_vram25 ] && a=(--device cuda --vram 25%)
            STEP_STDOUT="run_$v.json" step "run_$v" 60 "$VT" run "$STORE" --chat --prompt "$P" \
                --max-new 24 "${a[@]}" --json
        done
        # Greedy ids on the GPU against the CPU's: informative (f32 sums in another order can
        # flip a near-tie), so a difference is reported, not failed.
        "$PY" - "$OUT/run_cpu.json" "$OUT/run_cuda.json" >>"$SUMMARY" 2>&1 <<'PYEOF' || true
import json, sys
try:
    a, b = (json.load(open(f)) for f in sys.argv[1:3])
except Exception as e:
    sys.exit("INFO     run_cpu vs run_cuda: cannot compare (%s)" % e)
ia, ib = a.get("generated_ids"), b.get("generated_ids")
same = ia == ib
print("INFO     run_cpu vs run_cuda: generated ids %s%s" % (
    "identical" if same else "differ", "" if same else " (cpu %s, cuda %s)" % (ia, ib)))
PYEOF
    fi
    rm -rf "$STORE"
fi

log "gpu_check: done in ${SECONDS}s, $NFAIL failed step(s)"
echo "---- summary ($OUT/summary.txt)"
cat "$SUMMARY"
[ "$NFAIL" -eq 0 ]
