#!/usr/bin/env bash
# The main job on the embedded default: installs what is missing, builds, then `badam demo`:
# the memory plan, fine-tuning of the bundled base model (pretrained by badam itself) with BAdam,
# then LoRA and Adam, held-out evaluation before and after, sample generations, and an HTML
# report in runs/demo/report.html.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/badam demo --out runs/demo
