#!/usr/bin/env bash
# scripts/gpu_session.sh — one lent-GPU session's checks in one command (about 8 minutes on an
# H100): scripts/gpu_check.sh (build of the GPU targets, GPU tests, compute-sanitizer, kernel and
# attention benchmarks beside their baselines, the model run), then scripts/gemv_ab.sh (the GEMV
# switches in one table), the decode split sweep (bench_attn_gpu --splits) with a second decode
# sample beside SDPA, and scripts/gpu_profile.sh (Nsight Compute reports), everything under
# $OUT and packed into one file, $GPU_SESSION_TAR (default $OUT.tgz), for tools that return few
# files.
#
# On the GPU machine, from the repository root (a `git archive` copy is fine), with .devdeps
# (scripts/device_deps.sh fetch, done where a registry is reachable) and optionally .gpu-model
# carried along:
#   . scripts/device_deps.sh env && OUT=/tmp/gs scripts/gpu_session.sh
# (with the lent-machine tool, whose own $OUT is the folder that comes back:
#   T=$OUT; . scripts/device_deps.sh env && OUT=/tmp/gs GPU_SESSION_TAR=$T/gs.tgz \
#       scripts/gpu_session.sh)
#
# Environment: OUT (default ./gpu-session), GPU_SESSION_TAR, GPU_SESSION_BUDGET (seconds for gpu_check.sh,
# default 330), GPU_SESSION_NCU_REP=1 (pack the Nsight Compute reports too, not only their CSVs),
# GPU_CHECK_MODEL (default .gpu-model/smol8.gguf when present), and what the three scripts read.
# Exit status: gpu_check.sh's.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${OUT:-./gpu-session}" && cd "${OUT:-./gpu-session}" && pwd)
[ -z "${GPU_CHECK_MODEL:-}" ] && [ -f "$ROOT/.gpu-model/smol8.gguf" ] &&
    export GPU_CHECK_MODEL="$ROOT/.gpu-model/smol8.gguf"
[ -f "$ROOT/REV" ] && cp "$ROOT/REV" "$OUT/"

GPU_CHECK_TARGETS=${GPU_CHECK_TARGETS:-"vtstore vtstore_shared vtstore_static test_kernels_gpu test_attn_gpu test_streamer_gpu bench_kernels bench_attn_gpu"} \
    GPU_CHECK_SKIP=${GPU_CHECK_SKIP:-"ctest_quick bench_stream attn_memory_vt attn_memory_torch memcheck_test_streamer_gpu racecheck_test_kernels_gpu"} \
    GPU_CHECK_BUDGET=${GPU_SESSION_BUDGET:-330} OUT="$OUT/check" "$ROOT/scripts/gpu_check.sh"
rc=$?
[ $rc -eq 77 ] && exit 77
OUT="$OUT/ab" "$ROOT/scripts/gemv_ab.sh" || echo "gpu_session: gemv_ab.sh failed" >&2
# the decode plan's split count beside other counts, and a second decode sample beside SDPA (the
# goals that are close: q8_0 at B 1, nf4), in $OUT/attn2
BA=${GPU_CHECK_BUILD:-$ROOT/build-gpu}/bench/attn/bench_attn_gpu
PY=${PYTHON:-python3}
if [ -x "$BA" ]; then
    mkdir -p "$OUT/attn2"
    (cd "$OUT/attn2" && timeout 120 "$BA" --splits 20 >splits.txt 2>&1) ||
        echo "gpu_session: the split sweep failed" >&2
    (cd "$OUT/attn2" && timeout 90 "$BA" 1024 65536 10 >bench_attn_gpu.log 2>&1 &&
        timeout 90 "$PY" "$ROOT/bench/attn/sdpa_baseline.py" 1024 65536 10 >sdpa_baseline.txt \
            2>sdpa_baseline.log &&
        "$PY" "$ROOT/bench/attn/compare_sdpa.py" bench_attn_gpu.json sdpa_baseline.json \
            >compare_sdpa.log 2>&1) || echo "gpu_session: the second decode sample failed" >&2
fi
GPU_PROFILE_ONLY=${GPU_PROFILE_ONLY:-"gemv_int_q4_0 gemv_rows_f16 gemv_lut_mxfp4 gemv_lut_nf4 dequant_awq_4096 decode_q"} \
    OUT="$OUT/profile" "$ROOT/scripts/gpu_profile.sh" || echo "gpu_session: gpu_profile.sh failed" >&2
TAR=${GPU_SESSION_TAR:-$OUT.tgz}
# the .ncu-rep reports (several MB each) only with GPU_SESSION_NCU_REP=1: run 6's tarball with
# them was too large for the lent-machine tool to return (the CSVs carry the metrics)
EXCL=(--exclude='*.ncu-rep')
[ "${GPU_SESSION_NCU_REP:-0}" = 1 ] && EXCL=()
tar czf "$TAR" ${EXCL[@]+"${EXCL[@]}"} -C "$(dirname "$OUT")" "$(basename "$OUT")"
echo "gpu_session: done; results in $OUT and $TAR"
exit $rc
