#!/usr/bin/env bash
# Per-method training cost on one random model: forward, backward, update and switch seconds
# per step, tokens/s and peak RSS for BAdam, LoRA, Adam, LOMO, SGD-BCD, BAdam's ratio mode, MeZO
# (forward only: its two forwards per step count in update s), GaLore and bottleneck adapters,
# plus BAdam's backward
# as a fraction of LoRA's. Usage: bench/methods/run.sh [130m|1b|tiny] [steps]
# Steps exclude the first (warm-up) step from the averages. Absolute times on a shared machine
# are noisy; compare methods within one run.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-130m}
STEPS=${2:-6}
WORK=${BENCH_DIR:-/tmp/badam-bench-methods}/$SIZE
bash scripts/build.sh >/dev/null
case "$SIZE" in
  130m) ARGS="--hidden 768 --layers 12 --heads 12 --intermediate 2048 --vocab 32000"; B=2; T=256 ;;
  1b) ARGS="--hidden 2048 --layers 16 --heads 32 --kv-heads 8 --intermediate 8192 --vocab 128256 --tied"; B=1; T=256 ;;
  tiny) ARGS="--hidden 128 --layers 4 --heads 4 --intermediate 256 --vocab 1000"; B=2; T=64 ;;
  *) echo "size must be 130m, 1b or tiny" >&2; exit 2 ;;
esac
if [ ! -f "$WORK/model/config.json" ]; then
  /usr/bin/python3 bench/methods/make_inputs.py --out "$WORK/model" $ARGS --seq $T --examples 64
fi
for method in badam lora adam lomo sgd-bcd badam-ratio mezo galore adapter; do
  extra=""
  [ "$method" = lomo ] && extra="--clip 0"
  [ "$method" = mezo ] && extra="--clip 0"
  ./build/badam train --model "$WORK/model" --data "$WORK/model/train.jsonl" --out "$WORK/out-$method" \
    --method "$method" --max-steps "$STEPS" --switch-every 50 --batch-size "$B" --seq-len "$T" \
    --no-shuffle --lr 1e-5 --no-checkpoint --quiet $extra > "$WORK/$method.log" 2>&1 ||
    { echo "$method failed: see $WORK/$method.log" >&2; exit 1; }
done
/usr/bin/python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
rows = {}
for m in ["badam", "lora", "adam", "lomo", "sgd-bcd", "badam-ratio", "mezo", "galore", "adapter"]:
    steps = [json.loads(l) for l in open(f"{work}/out-{m}/metrics.jsonl") if '"loss"' in l]
    steady = steps[1:] or steps
    avg = lambda k: sum(s[k] for s in steady) / len(steady)
    mem = json.load(open(f"{work}/out-{m}/memory.json"))
    rows[m] = dict(fwd=avg("forward_s"), bwd=avg("backward_s"), upd=avg("update_s"),
                   sw=sum(s["switch_s"] for s in steps), tps=avg("tokens_per_s"),
                   rss=mem["peak_rss"] / 2**20, pred=mem["predicted"]["total"] / 2**20)
print(f"{'method':11} {'forward s':>10} {'backward s':>11} {'update s':>9} {'switch s':>9} "
      f"{'tokens/s':>9} {'peak RSS MiB':>13} {'planned MiB':>12}")
for m, r in rows.items():
    print(f"{m:11} {r['fwd']:10.3f} {r['bwd']:11.3f} {r['upd']:9.4f} {r['sw']:9.4f} "
          f"{r['tps']:9.1f} {r['rss']:13.1f} {r['pred']:12.1f}")
print(f"BAdam backward / LoRA backward = {rows['badam']['bwd'] / rows['lora']['bwd']:.2f}")
PY
