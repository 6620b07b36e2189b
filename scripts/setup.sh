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
  libopenblas-dev      # OpenBLAS: fp32 GEMM (sgemm) for the CPU backend
  libcjson-dev         # cJSON: config.json, safetensors headers, tokenizer.json
  libpcre2-dev         # PCRE2: the tokenizer's Unicode regex pre-tokenizer
  libomp-dev           # OpenMP runtime headers (gcc ships libgomp; kept for clang builds)
  clang-format         # formatting check
  python3              # Debian's python, for reference tests
  python3-numpy        # used by the PyTorch reference scripts
  python3-torch        # PyTorch: the numerical reference for forward/backward
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
