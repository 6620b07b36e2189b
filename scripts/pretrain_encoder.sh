#!/usr/bin/env bash
# Builds models/tiny-roberta-base, a small RoBERTa-style encoder (hidden 128, 4 layers, 4 heads,
# intermediate 512, a 560-token WordPiece vocabulary; 0.9M parameters, bf16 weights, about 1.8 MB)
# pretrained with masked-LM (badam train --objective mlm: 15% of the tokens, 80/10/10) by this
# project's own trainer from random initialisation, on the generated corpus of
# scripts/make_encoder_corpus.py (no third-party text). Deterministic given the same build and
# thread count. STEPS sets the length (the default, 300, made the shipped model: 23 minutes on
# 2 busy shared cores, about 9 on quiet ones; the attention kernel runs one row at a time); RESUME=1
# continues a paused run; WORK and DEST move the work folder and the result.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/badam-encoder}
STEPS=${STEPS:-300}
DEST=${DEST:-models/tiny-roberta-base}
bash scripts/build.sh >/dev/null
python3 scripts/make_encoder_corpus.py --out "$WORK/data" --paragraphs 40000 --val 1000
python3 scripts/make_encoder_corpus.py --init-model "$WORK/init" --tokenizer "$WORK/data/tokenizer.json"
./build/badam train --model "$WORK/init" --data "$WORK/data/train.jsonl" \
  --val-data "$WORK/data/val.jsonl" --format tokenized --pack --objective mlm --method adam \
  --dtype bf16 --max-steps "$STEPS" --seq-len 128 --batch-size 32 --lr 1e-3 --warmup 30 \
  --schedule cosine --min-lr-ratio 0.1 --weight-decay 0.01 --save-every 100 \
  --eval-every 100 --out "$WORK/run" ${RESUME:+--resume}
mkdir -p "$DEST"
for f in config.json model.safetensors tokenizer.json; do
  cp "$WORK/run/$f" "$DEST/"
done
echo "wrote $DEST (the MLM losses: $WORK/run/metrics.jsonl)"
