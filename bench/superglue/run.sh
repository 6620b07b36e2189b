#!/usr/bin/env bash
# SuperGLUE numbers of the bundled pretrained encoder (models/tiny-roberta-base, a masked-LM
# folder loaded with each task's new head): BAdam and Adam, same budget per task, the paper's
# recipe where it fits (linear schedule, 10% warmup, batch 16, BAdam one block per layer with the
# head in every block), validated on each task's validation file. Tasks: RTE (full train / val),
# WSC (full train / val), COPA (FewGLUE 32-shot train, full val). Prints a markdown table:
# validation accuracy, the task's official metric, the majority baseline of the validation labels,
# seconds and peak RSS. Needs ../shared/data/superglue (skips with a message without it).
#   bash bench/superglue/run.sh [BUILD_DIR]   (env: OUT, LR, METHODS, SEQ_LEN)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
DATA=${SUPERGLUE:-../shared/data/superglue}
[ -d "$DATA" ] || DATA=/work/shared/data/superglue
if [ ! -d "$DATA/RTE" ]; then
    echo "bench/superglue: SKIP: no SuperGLUE data at ../shared/data/superglue" >&2
    exit 0
fi
OUT=${OUT:-runs/superglue}
LR=${LR:-1e-3}
METHODS=${METHODS:-badam adam}
SEQ_LEN=${SEQ_LEN:-128}
MODEL=models/tiny-roberta-base
mkdir -p "$OUT"
# task  train file  val file  epochs
TASKS="rte:RTE/train.jsonl:RTE/val.jsonl:1 wsc:WSC/train.jsonl:WSC/val.jsonl:3 \
copa:COPA/fewglue_train.jsonl:COPA/val.jsonl:10"
echo "| task | method | lr | epochs | val accuracy | official metric | majority | seconds | peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|"
for spec in $TASKS; do
    IFS=: read -r task train val epochs <<<"$spec"
    # the majority baseline of the validation labels
    maj=$(/usr/bin/python3 - "$DATA/$val" "$task" <<'PY'
import collections, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
labels = [str(r.get("label")) for r in rows if "label" in r]
print("%.4f" % (collections.Counter(labels).most_common(1)[0][1] / len(labels)))
PY
)
    for m in $METHODS; do
        run="$OUT/$task-$m"
        /usr/bin/time -f "%e %M" -o "$run.time" "$BUILD/badam" train --task "$task" \
            --model "$MODEL" --data "$DATA/$train" --val-data "$DATA/$val" --out "$run" \
            --method "$m" --lr "$LR" --schedule linear --warmup-ratio 0.1 --batch-size 16 \
            --epochs "$epochs" --seq-len "$SEQ_LEN" --no-checkpoint --seed 1 >"$run.log" 2>&1 ||
            { echo "| $task | $m | failed: see $run.log |"; continue; }
        "$BUILD/badam" eval --task "$task" --model "$run" --data "$DATA/$val" \
            --seq-len "$SEQ_LEN" >"$run.eval" 2>&1
        read -r secs kb <"$run.time"
        /usr/bin/python3 - "$run.eval" "$task" "$m" "$LR" "$epochs" "$maj" "$secs" "$kb" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
acc = re.search(r"accuracy[\" :=]+([0-9.]+)", text)
score = re.search(r"score[\" :=]+([0-9.]+)", text)
a = float(acc.group(1)) if acc else float("nan")
s = float(score.group(1)) if score else a
_, task, m, lr, ep, maj, secs, kb = sys.argv[1:]
print(f"| {task} | {m} | {lr} | {ep} | {100*a:.1f}% | {100*s:.1f}% | {100*float(maj):.1f}% "
      f"| {float(secs):.0f} | {int(kb)/1024:.0f} |")
PY
    done
done
