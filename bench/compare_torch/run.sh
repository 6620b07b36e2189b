#!/usr/bin/env bash
# Side-by-side CPU training benchmark against PyTorch (see compare.py for what is measured).
# Builds badam (Release, build-bench/), then runs our BAdam, LoRA, Adam, LOMO and PyTorch
# BAdam-style and LoRA training on the same random model and batches.
#
#   bash bench/compare_torch/run.sh                    # 130m and 1b (about 10 minutes)
#   bash bench/compare_torch/run.sh --size 130m        # one size (130m, 1b or tiny)
#   bash bench/compare_torch/run.sh --size tiny --steps 3 --methods badam,lora
#
# Environment: BUILD_DIR (default build-bench), OMP_NUM_THREADS (default: all cores).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD_DIR:-$root/build-bench}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target badam_cli >/dev/null
exec /usr/bin/python3 "$root/bench/compare_torch/compare.py" --badam "$build/badam" "$@"
