#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs dependencies, checks formatting, builds with
# -Werror, runs every test, then rebuilds with AddressSanitizer + UBSan and runs them again, then
# builds the libFuzzer harnesses (clang) and runs each briefly and deterministically (fuzz/).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== format (clang-format --dry-run) =="
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find src include cli tests bench -name '*.[ch]')
clang-format --dry-run --Werror $files

echo "== build (release, -Werror) =="
BUILD_DIR=build-test bash scripts/build.sh -DBADAM_WERROR=ON
echo "== tests =="
ctest --test-dir build-test --output-on-failure -j2 --timeout 600
echo "== CPU paths the tests ran on this machine (count of test runs; SKIP: the CPU lacks it) =="
grep -ho "^cpu path: [a-z0-9]*\|^SKIP: .*\|dispatch checked on:.*\|OpenBLAS kernels: [A-Za-z0-9]*" \
  build-test/Testing/Temporary/LastTest.log | sort | uniq -c || true

if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  # CI has the CUDA toolkit but no GPU: compile and link the CUDA backend and its tests only
  # (they skip without a GPU; scripts/device_check.sh runs them on one).
  echo "== build (CUDA backend, -DBADAM_CUDA=ON, compile only) =="
  cmake -S . -B build-cuda -DBADAM_CUDA=ON -DBADAM_WERROR=ON >/dev/null
  cmake --build build-cuda -j2 --target badam_cli test_backend_ops test_cuda_model test_cuda_gemm_rate
  build-cuda/test_cuda_model || [ $? -eq 77 ]
fi

echo "== build (AddressSanitizer + UBSan) =="
# -O1: the sanitizers see the same code paths at a fraction of -O0's time (the kernels' tests
# would take minutes each at -O0).
BUILD_DIR=build-asan BUILD_TYPE=Debug bash scripts/build.sh -DBADAM_SANITIZE=ON -DBADAM_WERROR=ON \
  "-DCMAKE_C_FLAGS_DEBUG=-g -O1"
echo "== tests under sanitizers =="
# The Python reference runs outside the sanitized process; LeakSanitizer needs ptrace-free runs.
# The per-CPU-path reruns (TEST@portable, TEST@avx2, TEST@avx512-fp32) ran in the release stage;
# under the sanitizers every test runs once on this machine's best path, and the op-by-op backend
# test and the dispatch test on every path.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan --output-on-failure -j2 --timeout 900 \
  -E '@(portable|avx2|avx512-fp32)$'
ctest --test-dir build-asan --output-on-failure -j2 --timeout 900 -R '^(test_backend_ops|test_cpu)@'
echo "== fuzz harnesses (clang + libFuzzer, ASan + UBSan): short deterministic runs =="
BUILD_DIR=build-fuzz bash scripts/build.sh -DCMAKE_C_COMPILER=clang-14 -DBADAM_FUZZ=ON -DBADAM_WERROR=ON
ctest --test-dir build-fuzz -L fuzz --output-on-failure -j2 --timeout 300
echo "== all tests passed =="
