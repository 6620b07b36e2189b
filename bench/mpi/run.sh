#!/usr/bin/env bash
# Data parallel on this machine: per method, the bytes each rank hands to the all-reduces per
# step (its payload P; a ring all-reduce sends 2 (N - 1) / N * P per rank) and the time spent in
# collectives, on 2 ranks (1 OpenMP thread each) against 1 process. Usage:
# bench/mpi/run.sh [130m|tiny] [steps]. BAdam all-reduces the active block only (about 1/D of
# Adam's bytes, D blocks); LoRA the adapters; LOMO every gradient inside backward. On 2 shared
# cores the time in collectives is mostly one rank waiting for the other's compute: the benchmark
# reports it, it cannot show overlap. The first table also splits the 2-rank step into seconds in
# communication and compute (the input of bench/mpi/cluster_model.py's --measured-s-per-token:
# compute s / (B x T / 2) tokens per rank).
# "ovl/step": the buckets per step whose all-reduce started inside backward (train/grad_buckets.h:
# BAdam, SGD-BCD and Adam; LoRA's adapters and LOMO are reduced otherwise); their time in
# collectives counts only the wait after backward, so "comm s/step" is the part not hidden. On 2
# shared cores there is no real overlap to see: Open MPI progresses a request only inside MPI
# calls, and each rank's core is busy with its own backward, so the hidden time is not measured.
# A second table: --shard-weights, the bytes all-gathered.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-tiny}
STEPS=${2:-6}
WORK=${BENCH_DIR:-/tmp/badam-bench-mpi}/$SIZE
bash scripts/build.sh >/dev/null
case "$SIZE" in
  130m) ARGS="--hidden 768 --layers 12 --heads 12 --intermediate 2048 --vocab 32000"; B=2; T=256 ;;
  tiny) ARGS="--hidden 128 --layers 4 --heads 4 --intermediate 256 --vocab 1000"; B=4; T=64 ;;
  *) echo "size must be 130m or tiny" >&2; exit 2 ;;
esac
if [ ! -f "$WORK/model/config.json" ]; then
  /usr/bin/python3 bench/methods/make_inputs.py --out "$WORK/model" $ARGS --seq $T --examples 64
fi
# Seconds in communication per step: the collectives' time of the S-step run less that of a
# 1-step run (the start-up check, the weights' broadcast and step 1 cancel), over S - 1 steps;
# compute per step: the steady step time on 2 ranks (steps 2..S) less that.
printf "%-8s %12s %11s %11s %11s %12s %12s %9s\n" method "MB/step/rank" "collectives" \
  "comm s/step" "compute s" "step s (2)" "step s (1)" "ovl/step"
for method in badam lora adam lomo sgd-bcd; do
  extra=""
  [ "$method" = lomo ] && extra="--clip 0"
  common=(--model "$WORK/model" --data "$WORK/model/train.jsonl" --method "$method"
          --max-steps "$STEPS" --switch-every 50 --batch-size "$B" --seq-len "$T" --no-shuffle
          --lr 1e-5 --no-checkpoint --quiet $extra)
  OMP_NUM_THREADS=1 ./build/badam train "${common[@]}" --out "$WORK/one-$method" \
    > "$WORK/one-$method.log" 2>&1 || { echo "$method failed: $WORK/one-$method.log" >&2; exit 1; }
  OMP_NUM_THREADS=1 ./build/badam train "${common[@]}" --out "$WORK/two-$method" --nproc 2 \
    > "$WORK/two-$method.log" 2>&1 || { echo "$method failed: $WORK/two-$method.log" >&2; exit 1; }
  OMP_NUM_THREADS=1 ./build/badam train "${common[@]}" --max-steps 1 --out "$WORK/first-$method" \
    --nproc 2 > "$WORK/first-$method.log" 2>&1 ||
    { echo "$method failed: $WORK/first-$method.log" >&2; exit 1; }
  /usr/bin/python3 - "$WORK" "$method" "$STEPS" <<'PY'
import json, re, sys
work, m, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
def comm(d):
    line = [l for l in open(f"{work}/{d}-{m}.log") if "communication" in l][0]
    return re.search(r"([\d.]+) MB per step reduced.* (\d+) collectives, ([\d.]+) s", line).groups()
mb, coll, secs = comm("two")
ovl = int(re.search(r"(\d+) buckets overlapped", [l for l in open(f"{work}/two-{m}.log") if "communication" in l][0]).group(1))
comm_step = (float(secs) - float(comm("first")[2])) / max(steps - 1, 1)
def step_s(d):
    steps = [json.loads(l) for l in open(f"{work}/{d}-{m}/metrics.jsonl") if '"loss"' in l]
    steady = steps[1:] or steps
    return sum(s["step_s"] for s in steady) / len(steady)
two = step_s('two')
print(f"{m:<8} {float(mb):12.3f} {int(coll):11d} {comm_step:11.4f} {two - comm_step:11.4f} {two:12.4f} {step_s('one'):12.4f} {ovl / steps:9.1f}")
PY
done

# The five newer methods (same columns). badam-ratio all-reduces the masked entries' gradients
# only (about --update-ratio of the layers'); GaLore the whole gradients of every tensor before
# the projection (as Adam; the projector's broadcast every T steps is not in the payload);
# per-layer GaLore the same inside backward; adapter the bottleneck adapters' gradients; MeZO and
# MeZO-LoRA only the two losses of each forward (16 bytes: 32 bytes per step and sample, which
# the MB column rounds to 0).
newer_row() {
  local label=$1; shift
  local common=(--model "$WORK/model" --data "$WORK/model/train.jsonl" --max-steps "$STEPS"
                --switch-every 50 --batch-size "$B" --seq-len "$T" --no-shuffle --lr 1e-5
                --no-checkpoint --quiet "$@")
  OMP_NUM_THREADS=1 ./build/badam train "${common[@]}" --out "$WORK/one-$label" \
    > "$WORK/one-$label.log" 2>&1 || { echo "$label failed: $WORK/one-$label.log" >&2; exit 1; }
  OMP_NUM_THREADS=1 ./build/badam train "${common[@]}" --out "$WORK/two-$label" --nproc 2 \
    > "$WORK/two-$label.log" 2>&1 || { echo "$label failed: $WORK/two-$label.log" >&2; exit 1; }
  /usr/bin/python3 - "$WORK" "$label" <<'PY'
import json, re, sys
work, m = sys.argv[1], sys.argv[2]
line = [l for l in open(f"{work}/two-{m}.log") if "communication" in l][0]
mb, coll, secs = re.search(r"([\d.]+) MB per step reduced.* (\d+) collectives, ([\d.]+) s", line).groups()
def step_s(d):
    steps = [json.loads(l) for l in open(f"{work}/{d}-{m}/metrics.jsonl") if '"loss"' in l]
    steady = steps[1:] or steps
    return sum(s["step_s"] for s in steady) / len(steady)
print(f"{m:<12} {float(mb):10.3f} {int(coll):14d} {float(secs):12.3f} {step_s('two'):12.4f} {step_s('one'):12.4f}")
PY
}
printf "%-12s %10s %14s %12s %12s %12s\n" method "MB/step/rank" "collectives" "comm s" "step s (2)" "step s (1)"
newer_row badam-ratio --method badam-ratio --update-ratio 0.1
newer_row mezo --method mezo --clip 0
newer_row mezo-lora --method mezo-lora --lora-dropout 0 --clip 0
newer_row galore --method galore --galore-rank 16
newer_row galore-layer --method galore --galore-rank 16 --galore-per-layer --clip 0
newer_row adapter --method adapter --adapter-size 16
# --shard-weights (2 ranks): the bytes all-gathered per step and rank are the difference between
# the sharded run's collective payload and the unsharded one's (the all-reduces are the same;
# the payload of an all-gather is the rank's own part, which a ring all-gather sends N - 1 times);
# each layer unit is gathered in forward and again in backward (the last layer's copy is reused).
echo
printf "%-8s %16s %16s %16s %12s\n" method "MB/step (plain)" "MB/step (shard)" "gather MB/step" "step s"
for method in badam sgd-bcd; do
  common=(--model "$WORK/model" --data "$WORK/model/train.jsonl" --method "$method"
          --max-steps "$STEPS" --switch-every 50 --batch-size "$B" --seq-len "$T" --no-shuffle
          --lr 1e-5 --no-checkpoint --quiet)
  [ -f "$WORK/two-$method.log" ] || OMP_NUM_THREADS=1 ./build/badam train "${common[@]}" \
    --out "$WORK/two-$method" --nproc 2 > "$WORK/two-$method.log" 2>&1
  OMP_NUM_THREADS=1 ./build/badam train "${common[@]}" --out "$WORK/shard-$method" --nproc 2 \
    --shard-weights > "$WORK/shard-$method.log" 2>&1 \
    || { echo "$method failed: $WORK/shard-$method.log" >&2; exit 1; }
  /usr/bin/python3 - "$WORK" "$method" <<'PY'
import json, re, sys
work, m = sys.argv[1], sys.argv[2]
def mb(d):
    line = [l for l in open(f"{work}/{d}-{m}.log") if "communication" in l][0]
    return float(re.search(r"([\d.]+) MB per step reduced", line).group(1))
steps = [json.loads(l) for l in open(f"{work}/shard-{m}/metrics.jsonl") if '"loss"' in l]
steady = steps[1:] or steps
step_s = sum(s["step_s"] for s in steady) / len(steady)
print(f"{m:<8} {mb('two'):16.3f} {mb('shard'):16.3f} {mb('shard') - mb('two'):16.3f} {step_s:12.4f}")
PY
done
