#!/usr/bin/env bash
# Side-by-side CPU training benchmark against PyTorch (see compare.py and README.md): our BAdam
# (bf16 and fp32 weights) against a PyTorch implementation of the official BlockOptimizer's
# semantics, on the same random model and batches. Builds badam first (Release, build-bench/).
#
#   bash bench/compare_torch/run.sh                    # 130m (under 10 minutes on 2 cores)
#   bash bench/compare_torch/run.sh --size tiny        # smoke run (seconds)
#   bash bench/compare_torch/run.sh --size 1b --measure 4 --dtypes bf16
#
# Environment: BUILD_DIR (default build-bench), OMP_NUM_THREADS (default: all cores).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD_DIR:-$root/build-bench}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target badam_cli >/dev/null
exec /usr/bin/python3 "$root/bench/compare_torch/compare.py" --badam "$build/badam" "$@"
