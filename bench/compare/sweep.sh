#!/usr/bin/env bash
# The Targets of issue 17: every method on the embedded base (models/tiny-llama-base) at equal
# tokens, each at its best learning rate from a 3-value sweep, on two tasks:
#   uppercase  the embedded task (data/demo/uppercase_{train,val}.json), 1 epoch, seq-len 128
#   alpaca     ../shared/data/alpaca_en_demo.json: 100 held-out examples, 400 for training
#              (seeded split), 1 epoch, seq-len 256 (skipped with a message when absent); the
#              learning rates 3x those of the embedded task
# Each sweep is one `badam compare` per method (three runs METHOD@LR); the best lr is the lowest
# held-out loss; the final table is one `badam compare` of all methods at their best lr.
#
#   bash bench/compare/sweep.sh [BUILD_DIR] [OUT_DIR]      (TASKS="uppercase alpaca" by default)
#   METHODS="badam sgd-bcd" bash bench/compare/sweep.sh ...   re-runs those methods only (their
#                                       sweeps and a final table of those methods)
#
# The block-wise methods get K (--switch-every) so that every block is visited within the run:
# the paper picks K so that a block-epoch (every block once, K steps each) fits in the budget;
# here K = floor(steps / blocks) for badam and sgd-bcd (4 layer blocks: K = 15 for 60 steps, 12
# for 50), and for badam-ratio, whose masks move by a window of --update-ratio (0.1) of each
# tensor per period, K = floor(steps x ratio), so the windows cover every entry once (6 and 5).
#
# Writes OUT_DIR/TASK/sweep/METHOD/compare.md, OUT_DIR/TASK/best.txt (method, best lr, val loss
# of the lrs) and OUT_DIR/TASK/final/{compare.md,compare.json,report.html}. About 15 minutes on
# 2 cores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build}"
[[ "$build" = /* ]] || build="$root/$build"
out="${2:-$root/runs/compare-sweep}"
[[ "$out" = /* ]] || out="$root/$out"
badam="$build/badam"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
cd "$root"

methods="${METHODS:-badam adam lora lomo sgd-bcd badam-ratio mezo mezo-lora galore adapter}"
# Three learning rates per method, centred (after a first pass) on the best of the embedded task;
# a fourth where the best sat at the grid's edge (badam, sgd-bcd, badam-ratio).
declare -A grid=(
    [badam]="1e-3 2e-3 5e-3 1e-2" [adam]="3e-4 1e-3 3e-3" [lora]="1e-3 3e-3 1e-2"
    [lomo]="3e-2 1e-1 3e-1" [sgd-bcd]="1e-1 3e-1 1 3" [badam-ratio]="2e-3 5e-3 1e-2 2e-2"
    [mezo]="3e-5 1e-4 3e-4" [mezo-lora]="3e-4 1e-3 3e-3" [galore]="1e-3 3e-3 1e-2"
    [adapter]="1e-3 3e-3 1e-2")
# Settings of the methods that have their own, the same in the sweep and the final table.
method_opts=(--lora-rank lora=16,mezo-lora=16 --lora-alpha lora=32,mezo-lora=32
             --galore-rank galore=32 --galore-update-gap galore=50)

# K of the block-wise methods for a run of $1 steps over 4 layer blocks (see the top).
k_opts() {
    echo "--switch-every badam=$(($1 / 4)),sgd-bcd=$(($1 / 4)),badam-ratio=$(($1 / 10))"
}

# The grid times $scale (the task's): "1e-3 2e-3" -> "0.003 0.006" with scale=3.
scaled() {
    python3 -c 'import sys; print(" ".join("%g" % (float(v) * float(sys.argv[1])) for v in sys.argv[2].split()))' "$scale" "$1"
}

# sweep TASK OPTIONS...: one compare per method, then the final compare at the best lrs.
sweep() {
    local task="$1"
    shift
    local best_lrs=() m lr runs lrs
    mkdir -p "$out/$task"
    : >"$out/$task/best.txt"
    for m in $methods; do
        runs="" lrs=""
        for lr in $(scaled "${grid[$m]}"); do
            runs+="${runs:+,}$m@$lr" lrs+="${lrs:+,}$m@$lr=$lr"
        done
        "$badam" compare "$@" "${method_opts[@]}" --methods "$runs" --lr "$lrs" \
            --out "$out/$task/sweep/$m" >"$out/$task/sweep-$m.log" 2>&1 ||
            echo "$task $m: some runs failed (see $out/$task/sweep-$m.log)" >&2
        python3 - "$out/$task/sweep/$m/compare.json" "$m" >>"$out/$task/best.txt" <<'PY'
import json, os, sys
path = sys.argv[1]
runs = json.load(open(path))["runs"] if os.path.exists(path) else []
runs = [r for r in runs if r["status"] == "ok"]
best = min(runs, key=lambda r: r["val_loss"]) if runs else None
print(sys.argv[2], best["lr"] if best else "-",
      " ".join("%s:%.4f" % (r["lr"], r["val_loss"]) for r in runs))
PY
        lr=$(tail -1 "$out/$task/best.txt" | cut -d' ' -f2)
        [ "$lr" != "-" ] && best_lrs+=("$m=$lr")
    done
    local list
    list=$(IFS=,; echo "${best_lrs[*]}")
    "$badam" compare "$@" "${method_opts[@]}" --methods "$(echo "$list" | sed 's/=[^,]*//g')" \
        --lr "$list" --title "badam compare: $task, every method at its best lr" \
        --out "$out/$task/final" >"$out/$task/final.log" 2>&1 ||
        echo "$task final: some runs failed (see $out/$task/final.log)" >&2
    echo "== $task: best lr per method (lr:held-out loss of the sweep)"
    cat "$out/$task/best.txt"
    cat "$out/$task/final/compare.md"
}

common=(--model models/tiny-llama-base --template alpaca --system "" --batch-size 8
        --epochs 1 --warmup 5 --seed 42 --no-checkpoint --quiet)

for task in ${TASKS:-uppercase alpaca}; do
    scale=1
    case "$task" in
    uppercase)
        # shellcheck disable=SC2046 # k_opts is two words
        sweep uppercase "${common[@]}" $(k_opts 60) --data data/demo/uppercase_train.json \
            --val-data data/demo/uppercase_val.json --seq-len 128 --exact-match \
            --max-new-tokens 16
        ;;
    alpaca)
        src="$root/../shared/data/alpaca_en_demo.json"
        if [ ! -f "$src" ]; then
            echo "alpaca: $src is absent: skipped" >&2
            continue
        fi
        mkdir -p "$out/alpaca"
        python3 - "$src" "$out/alpaca" <<'PY'
import json, random, sys
d = json.load(open(sys.argv[1]))
random.Random(0).shuffle(d)
json.dump(d[:100], open(sys.argv[2] + "/val.json", "w"))
json.dump(d[100:500], open(sys.argv[2] + "/train.json", "w"))
PY
        scale=3 # a first pass with scale 1 found the largest lr best for badam, adam and lora
        # shellcheck disable=SC2046
        sweep alpaca "${common[@]}" $(k_opts 50) --data "$out/alpaca/train.json" \
            --val-data "$out/alpaca/val.json" --seq-len 256
        ;;
    *) echo "unknown task '$task' (uppercase, alpaca)" >&2; exit 2 ;;
    esac
done
