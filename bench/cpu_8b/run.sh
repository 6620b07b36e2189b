#!/usr/bin/env bash
# The 8B claim on a CPU (see cpu_8b.py and README.md): a random Llama-3-8B-shaped bf16 model
# fine-tuned with BAdam (--recompute) for 3 steps at sequence 512, peak RSS measured against
# `badam plan`. Needs about 17 GB of free disk (33 GB while `badam train` has no --no-save) and
# about 20 GiB of available RAM; deletes what it wrote. Not run in CI. Builds badam first
# (Release, build-bench/) unless BADAM names a binary.
#
#   bash bench/cpu_8b/run.sh                      # the 8B run (tens of minutes on 2 cores)
#   bash bench/cpu_8b/run.sh --shape 1b           # the same run on a 0.9B shape (minutes)
#   bash bench/cpu_8b/run.sh --shape tiny         # smoke run (seconds)
#   bash bench/cpu_8b/run.sh --dir /mnt/scratch --json result.json
#
# Environment: BADAM (a badam binary), BUILD_DIR (default build-bench), OMP_NUM_THREADS.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ -z "${BADAM:-}" ]]; then
    build="${BUILD_DIR:-$root/build-bench}"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" -j"$(nproc)" --target badam_cli >/dev/null
    BADAM="$build/badam"
fi
exec /usr/bin/python3 "$root/bench/cpu_8b/cpu_8b.py" --badam "$BADAM" "$@"
