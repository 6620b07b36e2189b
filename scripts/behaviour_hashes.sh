#!/usr/bin/env bash
# Behaviour fingerprint of a build: short training runs on the tiny models in the repo (every
# method, bf16 and fp32 weights, packing, LoRA dropout, a resumed run), each reduced to the sha256
# of its final weights and of the losses in its metrics.jsonl. A refactoring that must not change
# behaviour gives the same table before and after:
#
#   bash scripts/behaviour_hashes.sh build > before.txt   # ... change the code, rebuild ...
#   bash scripts/behaviour_hashes.sh build > after.txt && diff before.txt after.txt
#
# Runs are pinned to 2 threads and the avx512 CPU path (BADAM_CPU) for repeatability; on a CPU
# without AVX-512 set BADAM_CPU to a path it has (the table is then a different one, compare like
# with like). Output: "name weights_sha256 losses_sha256" (generate: the text's sha256), one run a line.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
[[ "$build" = /* ]] || build="$root/$build"
badam="$build/badam"
work="$(mktemp -d "${TMPDIR:-/tmp}/badam-behaviour.XXXXXX")"
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=2 BADAM_CPU="${BADAM_CPU:-avx512}"

common=(--model "$root/models/tiny-llama-base" --data "$root/data/demo/uppercase_train.json"
        --template alpaca --system "" --max-steps 6 --seed 7 --lr 1e-3 --switch-every 2
        --batch-size 2 --seq-len 128)

run() { # name, extra options...
    local name="$1"
    shift
    "$badam" train "${common[@]}" --out "$work/$name" "$@" >"$work/$name.log" 2>&1 ||
        { echo "$name: badam train failed, log:" >&2; cat "$work/$name.log" >&2; exit 1; }
    report "$name" "$work/$name"
}

report() { # name, output dir
    local w losses
    # every weight file written (the model, LoRA's adapter), not the checkpoint
    w=$(find "$2" -name '*.safetensors' -not -path '*/checkpoint/*' | sort | xargs cat |
        sha256sum | cut -d' ' -f1)
    losses=$(grep -o '"loss":[^,}]*' "$2/metrics.jsonl" | sha256sum | cut -d' ' -f1)
    printf '%-22s %s %s\n' "$1" "$w" "$losses"
}

for method in badam adam lora lomo sgd-bcd; do
    run "$method-bf16" --method "$method"
    run "$method-fp32" --method "$method" --dtype fp32
done
run badam-pack --method badam --pack
run adam-pack --method adam --pack
run lora-dropout --method lora --lora-dropout 0.1
run lora-dropout-pack --method lora --lora-dropout 0.1 --pack
run badam-recompute --method badam --recompute
run badam-head-embed --method badam --include-embedding --include-head --switch-mode ascending

# Decoding (KV cache): sampled text, which follows every logit, in bf16 and fp32.
for dtype in bf16 fp32; do
    "$badam" generate --model "$work/badam-bf16" --prompt "Hello there" --max-new-tokens 48 \
        --temperature 1 --seed 3 --dtype "$dtype" >"$work/gen-$dtype.txt" 2>&1 ||
        { cat "$work/gen-$dtype.txt" >&2; exit 1; }
    printf '%-22s %s\n' "generate-$dtype" "$(sha256sum <"$work/gen-$dtype.txt" | cut -d' ' -f1)"
done

# Resume: the same run paused after step 3 (--stop-at-step) and resumed; exact resume gives the
# weights and losses of the uninterrupted run ($method-bf16 above).
for method in badam adam lora lomo sgd-bcd; do
    name="$method-resume"
    "$badam" train "${common[@]}" --method "$method" --out "$work/$name" --stop-at-step 3 \
        >"$work/$name.log" 2>&1 || { cat "$work/$name.log" >&2; exit 1; }
    run "$name" --method "$method" --resume
done
