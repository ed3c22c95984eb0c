#!/usr/bin/env bash
# The main job: at this stage, a quantization report on generated data.
set -euo pipefail
BUILD=${1:-build}
"$BUILD/tools/vtstore" quant
