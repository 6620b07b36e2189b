#!/usr/bin/env bash
# Kernel microbenchmark (bench_ops.c) against the library built in BUILD_DIR (default build-bench).
#   bash bench/ops/run.sh            # native dispatch
#   BADAM_GEMM=fp32 bash bench/ops/run.sh   # portable GEMM path
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD_DIR:-$root/build-bench}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target badam >/dev/null
blas=/usr/lib/x86_64-linux-gnu/openblas-openmp
gcc -O2 -fopenmp -I"$root/src" -I"$root/include" "$root/bench/ops/bench_ops.c" -o "$build/bench_ops" \
  "$build/libbadam.a" -L$blas -Wl,-rpath,$blas -lopenblas $( [ -e /usr/lib/x86_64-linux-gnu/libdnnl.so ] && echo -ldnnl ) \
  -ljansson -lpcre2-8 -lutf8proc -lm
# Like the CLI (cli/main.c): idle OpenMP threads sleep instead of spinning on a shared machine.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
exec "$build/bench_ops"
