#!/usr/bin/env bash
# Long fuzzing runs: each harness (or the ones named) for SECONDS (default 900) or RUNS executions
# (default 10 million), whichever comes first, JOBS harnesses at a time (default 2), no input
# allowed over 2 GB RSS. The corpus of each harness is kept in build-fuzz/fuzz-long/NAME/corpus
# and grows from run to run; crash-*, leak-*, oom-* and timeout-* inputs land next to it.
# Prints, per harness: executions, crashes, leaks, out-of-memory inputs, peak RSS.
#   bash scripts/fuzz_long.sh [NAME...]      e.g. SECONDS_PER=60 bash scripts/fuzz_long.sh tokenize
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECONDS_PER:-900}
runs=${RUNS:-10000000}
jobs=${JOBS:-2}
build=${BUILD_DIR:-build-fuzz}
if [ ! -x "$build/fuzz/fuzz_tokenize" ] || [ "${REBUILD:-1}" = 1 ]; then
  BUILD_DIR=$build bash scripts/build.sh -DCMAKE_C_COMPILER=clang-14 -DBADAM_FUZZ=ON -DBADAM_WERROR=ON
fi
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  names=(safetensors safetensors_index config tokenizer_load tokenize data_alpaca data_sharegpt
    data_tokenized)
fi
work="$PWD/$build/fuzz-long"
mkdir -p "$work"

run_one() {
  local name=$1
  mkdir -p "$work/$name"
  FUZZ_KEEP_CORPUS=1 bash fuzz/run.sh "$PWD/$build/fuzz/fuzz_$name" "$name" "$work" \
    -max_total_time="$secs" -runs="$runs" -seed=1 >"$work/$name.log" 2>&1 || true
}

running=0
for name in "${names[@]}"; do
  [ -x "$build/fuzz/fuzz_$name" ] || { echo "no harness fuzz_$name" >&2; exit 2; }
  run_one "$name" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

status=0
printf '%-18s %12s %8s %6s %5s %10s\n' harness executions crashes leaks ooms "peak RSS"
for name in "${names[@]}"; do
  log="$work/$name.log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  crashes=$(find "$work/$name" -maxdepth 1 \( -name 'crash-*' -o -name 'timeout-*' \) | wc -l)
  leaks=$(find "$work/$name" -maxdepth 1 -name 'leak-*' | wc -l)
  ooms=$(find "$work/$name" -maxdepth 1 -name 'oom-*' | wc -l)
  printf '%-18s %12s %8s %6s %5s %8s MB\n' "$name" "${execs:-?}" "$crashes" "$leaks" "$ooms" "${rss:-?}"
  if [ -z "$execs" ] || [ "$crashes" -gt 0 ] || [ "$leaks" -gt 0 ] || [ "$ooms" -gt 0 ]; then
    status=1
  fi
done
exit $status
