#!/usr/bin/env bash
# scripts/gpu_profile.sh — Nsight Compute (ncu) reports of the CUDA kernels that miss their
# issue goals, so that the next change to them starts from counters, not guesses. Run it on a
# CUDA machine after scripts/gpu_check.sh has built the benchmarks (same build directory):
#
#   scripts/gpu_profile.sh        exit 0 all profiles written, 1 some failed, 77 no GPU or no ncu
#
# Profiles (each one kernel launch after warm-up, --clock-control none as the lent machines
# need, sections: speed of light, memory workload, occupancy, warp states, scheduler, launch):
#   gemv_int_q4_0, gemv_int_q8_0   the integer GEMV kernel (gemv_rows_int), batch 1, 8192 x 28672
#   gemv_win_q4_0                  the same with its window loads (VT_GEMV_LOAD=window)
#   gemv_rows_f16                  the register GEMV on f16 rows (95% of copy bandwidth): the
#                                  reference point for what the quantized rows lack
#   gemv_int_q4_0_4096             the integer kernel at 4096 x 4096
#   gemv_win_q4_k                  q4_k's 16-byte loads (VT_GEMV_LOAD=window), 8192 x 28672
#   gemv_lut_mxfp4, gemv_lut_nf4   mxfp4, nf4 through the integer kernel (VT_GEMV_LUT=int),
#                                  8192 x 28672
#   dequant_awq_4096               the awq_int4 dequantize at 4096 x 4096 (47% of copy bandwidth)
#   decode_q                       the quantized-cache decode kernels of bench_attn_gpu at
#                                  B 1, Nk 4k-8k (q8_0, q4_0, nf4 ...: the launch names say which)
# For each NAME: $OUT/NAME.ncu-rep (open with ncu-ui or `ncu --import`) and $OUT/NAME.csv (the
# details page as CSV); summary.txt lists each as PASS/FAIL/SKIP.
#
# Environment: OUT (default ./gpu-profile), GPU_CHECK_BUILD (default build-gpu), NCU (the ncu
# binary), GPU_PROFILE_ONLY="name ..." (a subset), GPU_PROFILE_LIMIT (seconds per profile, 120).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${OUT:-./gpu-profile}" && cd "${OUT:-./gpu-profile}" && pwd)
BUILD=${GPU_CHECK_BUILD:-$ROOT/build-gpu}
LIMIT=${GPU_PROFILE_LIMIT:-120}
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_profile: no NVIDIA GPU visible (nvidia-smi): skipped" | tee -a "$SUMMARY"
    exit 77
fi
NCU=${NCU:-$(command -v ncu || { [ -x /usr/local/cuda/bin/ncu ] && echo /usr/local/cuda/bin/ncu; })}
if [ -z "$NCU" ]; then
    echo "gpu_profile: ncu (Nsight Compute) not found: skipped" | tee -a "$SUMMARY"
    exit 77
fi
BK="$BUILD/bench/kernels/bench_kernels"
BA="$BUILD/bench/attn/bench_attn_gpu"
NFAIL=0

# prof NAME KERNEL_REGEX SKIP COUNT CMD...: COUNT launches of kernels matching KERNEL_REGEX
# (demangled names) after SKIP matching ones, while CMD runs.
prof() {
    local name=$1 kre=$2 skip=$3 count=$4
    shift 4
    if [ -n "${GPU_PROFILE_ONLY:-}" ] && [[ " $GPU_PROFILE_ONLY " != *" $name "* ]]; then
        printf 'SKIP     %-22s not in GPU_PROFILE_ONLY\n' "$name" >>"$SUMMARY"
        return 0
    fi
    if ! command -v "$1" >/dev/null 2>&1; then
        printf 'SKIP     %-22s %s not built\n' "$name" "$1" >>"$SUMMARY"
        return 0
    fi
    local t0=$SECONDS rc
    echo "== $name: $*"
    timeout --kill-after=10 "$LIMIT" "$NCU" --clock-control none --kernel-name-base demangled \
        --kernel-name "regex:$kre" --launch-skip "$skip" --launch-count "$count" \
        --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
        --section WarpStateStats --section SchedulerStats --section LaunchStats \
        -f -o "$OUT/$name" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && [ -f "$OUT/$name.ncu-rep" ]; then
        "$NCU" --import "$OUT/$name.ncu-rep" --csv --page details >"$OUT/$name.csv" 2>>"$OUT/$name.log"
        printf 'PASS     %-22s %4ss\n' "$name" $((SECONDS - t0)) >>"$SUMMARY"
    else
        NFAIL=$((NFAIL + 1))
        printf 'FAIL     %-22s %4ss  exit %d (see %s.log)\n' "$name" $((SECONDS - t0)) $rc \
            "$name" >>"$SUMMARY"
    fi
}

# bench_kernels warms up before it times; skip that many launches of the kernel first
prof gemv_int_q4_0 'gemv_rows_int' 3 1 "$BK" --gpu-only --runs 1 --formats q4_0 \
    --gpu-shapes 8192x28672
prof gemv_int_q8_0 'gemv_rows_int' 3 1 "$BK" --gpu-only --runs 1 --formats q8_0 \
    --gpu-shapes 8192x28672
prof gemv_win_q4_0 'gemv_rows_int' 3 1 env VT_GEMV_LOAD=window "$BK" --gpu-only --runs 1 \
    --formats q4_0 --gpu-shapes 8192x28672
prof gemv_rows_f16 'gemv_rows<' 3 1 "$BK" --gpu-only --runs 1 --formats f16 \
    --gpu-shapes 8192x28672
prof gemv_int_q4_0_4096 'gemv_rows_int' 3 1 "$BK" --gpu-only --runs 1 --formats q4_0 \
    --gpu-shapes 4096x4096
prof gemv_win_q4_k 'gemv_rows_int' 3 1 env VT_GEMV_LOAD=window "$BK" --gpu-only --runs 1 \
    --formats q4_k --gpu-shapes 8192x28672
prof gemv_lut_mxfp4 'gemv_rows_int' 3 1 env VT_GEMV_LUT=int "$BK" --gpu-only --runs 1 \
    --formats mxfp4 --gpu-shapes 8192x28672
prof gemv_lut_nf4 'gemv_rows_int' 3 1 env VT_GEMV_LUT=int "$BK" --gpu-only --runs 1 \
    --formats nf4 --gpu-shapes 8192x28672
# the dequantize that misses its goal most (awq_int4 at 4096 x 4096: 47% of copy bandwidth)
prof dequant_awq_4096 'dequant_staged' 2 1 "$BK" --gpu-only --runs 1 --formats awq_int4 \
    --gpu-shapes 4096x4096
# decode: every quantized-cache decode launch of the first 24 (B 1 at the smallest Nk first)
prof decode_q 'decode_kernel_q' 0 24 "$BA" 1024 8192 1

cat "$SUMMARY"
[ $NFAIL -eq 0 ]
