#!/usr/bin/env bash
# Runs one libFuzzer harness over a fresh corpus: the seed files listed in fuzz/seeds/NAME.txt
# (paths relative to the repository, globs allowed) plus every regression input in
# fuzz/regressions/NAME/. Usage: fuzz/run.sh BINARY NAME WORKDIR [libFuzzer options...]
# The corpus lives in WORKDIR/NAME/corpus (emptied first unless FUZZ_KEEP_CORPUS=1, which long
# runs use to build on earlier ones); crash/leak/oom inputs are written to WORKDIR/NAME/.
set -euo pipefail
bin=$1 name=$2 work=$3
shift 3
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
corpus="$work/$name/corpus"
if [ "${FUZZ_KEEP_CORPUS:-0}" != 1 ]; then rm -rf "$corpus"; fi
mkdir -p "$corpus"
n=0
if [ -f "$root/fuzz/seeds/$name.txt" ]; then
  while read -r pattern; do
    case "$pattern" in '' | '#'*) continue ;; esac
    for f in "$root"/$pattern; do
      [ -f "$f" ] || { echo "fuzz/run.sh: seed $pattern: no such file" >&2; exit 2; }
      cp "$f" "$corpus/seed-$n-$(basename "$f")"
      n=$((n + 1))
    done
  done <"$root/fuzz/seeds/$name.txt"
fi
if [ -d "$root/fuzz/regressions/$name" ]; then
  for f in "$root/fuzz/regressions/$name"/*; do
    [ -f "$f" ] && cp "$f" "$corpus/regression-$(basename "$f")"
  done
fi
cd "$work/$name"
# -rss_limit_mb: no input may take 2 GB; -timeout: no input may take 10 s; leaks are errors.
exec "$bin" "$corpus" -rss_limit_mb=2048 -timeout=10 -detect_leaks=1 -print_final_stats=1 \
  -artifact_prefix="$work/$name/" "$@"
