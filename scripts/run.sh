#!/usr/bin/env bash
# The main job on the embedded default: set up, build, and inspect the bundled model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/badam inspect models/tiny-random-llama
