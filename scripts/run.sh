#!/usr/bin/env bash
# The main job on the embedded default: installs what is missing, builds, prints the memory plan
# and fine-tunes the bundled tiny Llama with BAdam on the bundled instruction data (reverse a
# word, Alpaca format), then reports the validation loss. Output goes to runs/demo-badam.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
MODEL=models/tiny-random-llama
echo
./build/badam plan --model "$MODEL" --seq-len 96 --batch-size 8
echo
# The bundled model is randomly initialised (not pretrained), so BAdam also trains the embedding
# and head as blocks here; with a pretrained model the defaults (layers only) are what you want.
./build/badam train --model "$MODEL" --data data/demo/reverse_train.json \
  --val-data data/demo/reverse_val.json --out runs/demo-badam --template alpaca \
  --include-embedding --include-head --switch-every 10 --switch-mode ascending \
  --lr 1e-2 --epochs 6 --batch-size 8 --seq-len 96
echo
echo "metrics: runs/demo-badam/metrics.jsonl   memory: runs/demo-badam/memory.json"
echo "fine-tuned model (Hugging Face folder): runs/demo-badam"
