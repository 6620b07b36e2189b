"""bf16 against fp32 weight storage in `badam train --method badam`, per CPU path.

Runs the same training (BAdam, batch B x seq T, a few steps) with bf16 and with fp32 weights on
each requested CPU path (BADAM_CPU=avx2 / avx512), alternating the runs, `--repeats` times, and
prints the medians of: user CPU seconds of the whole process (/usr/bin/time %U, which a loaded
shared machine disturbs less than wall time) and the steady-state (steps after the first)
forward_s / backward_s / step_s from metrics.jsonl.

usage: bench.py --badam BUILD/badam[,OTHER/badam] --model DIR [--paths avx2,avx512] [--repeats 3] [--steps 4]
                [--batch 2] [--seq 256] [--threads 2]
The model folder is one from bench/compare_torch/make_model.py (it holds train.jsonl). With two
binaries (before,after) every configuration runs on both, alternately.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile


def one_run(args, badam, path, dtype, out):
    if os.path.exists(out):
        shutil.rmtree(out)
    env = dict(os.environ, BADAM_CPU=path, OMP_NUM_THREADS=str(args.threads))
    cmd = ["/usr/bin/time", "-f", "%U", badam, "train", "--model", args.model, "--data",
           os.path.join(args.model, "train.jsonl"), "--out", out, "--method", "badam",
           "--dtype", dtype, "--max-steps", str(args.steps), "--batch-size", str(args.batch),
           "--seq-len", str(args.seq), "--no-shuffle", "--no-group-by-length", "--no-checkpoint",
           "--quiet", "--lr", "1e-5", "--switch-every", "50", "--switch-mode", "ascending",
           "--start-block", "6"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{path} {dtype}: rc {p.returncode}\n{p.stderr[-2000:]}")
    user = float(p.stderr.strip().splitlines()[-1])
    rows = [json.loads(x) for x in open(os.path.join(out, "metrics.jsonl")) if x.strip()]
    meas = rows[1:] if len(rows) > 1 else rows
    avg = lambda k: sum(r[k] for r in meas) / len(meas)  # noqa: E731
    shutil.rmtree(out, ignore_errors=True)
    return {"user_s": user, "forward_s": avg("forward_s"), "backward_s": avg("backward_s"),
            "step_s": avg("step_s")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--badam", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--paths", default="avx2,avx512")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    bins = args.badam.split(",")
    keys = [(p, d, b) for b in range(len(bins)) for p in args.paths.split(",")
            for d in ("bf16", "fp32")]
    res = {k: [] for k in keys}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for k in keys:  # alternate: every repeat runs each configuration once
                res[k].append(one_run(args, bins[k[2]], k[0], k[1], os.path.join(tmp, "out")))
                print(k[0], k[1], bins[k[2]], res[k][-1], file=sys.stderr, flush=True)
    print(f"| binary | path | weights | user CPU s | forward s | backward s | step s |  (medians of "
          f"{args.repeats}, {args.steps} steps, B={args.batch} T={args.seq}, "
          f"{args.threads} threads)")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for k in keys:
        med = {m: statistics.median(r[m] for r in res[k])
               for m in ("user_s", "forward_s", "backward_s", "step_s")}
        print(f"| {bins[k[2]]} | {k[0]} | {k[1]} | {med['user_s']:.2f} | {med['forward_s']:.3f} | "
              f"{med['backward_s']:.3f} | {med['step_s']:.3f} |")


if __name__ == "__main__":
    main()
