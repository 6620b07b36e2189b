#!/usr/bin/env python3
"""A/B throughput of two badam binaries on the same model, data and options (for example the
commit before a refactoring against the one after it). Runs them alternately (A B A B ...), so a
shared machine's load drifts over both alike, and reports per binary the median over runs of the
mean tokens/s of the measured steps (warm-up steps excluded, read from metrics.jsonl), the
median user+system CPU seconds per 1000 tokens, and the ratios B/A.

    /usr/bin/python3 bench/ab/ab.py --a OLD/badam --b build/badam [--size 130m] [--runs 4]

The model and batches are bench/compare_torch's (make_model.py), the options its BAdam run's
(K = 1, descending, --reference-compat, constant lr, clip 1). Extra `badam train` options go after
`--`. A ratio within run-to-run spread (printed) is no difference."""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MAKE = os.path.join(HERE, "..", "compare_torch", "make_model.py")
SHAPES = {"tiny": (2, 64), "130m": (2, 256), "1b": (1, 512)}


def one_run(badam, model, data, out, B, T, steps, extra):
    shutil.rmtree(out, ignore_errors=True)
    cmd = [badam, "train", "--model", model, "--data", data, "--out", out, "--method", "badam",
           "--max-steps", str(steps), "--batch-size", str(B), "--seq-len", str(T), "--no-shuffle",
           "--no-group-by-length", "--no-checkpoint", "--quiet", "--lr", "1e-5", "--schedule",
           "constant", "--switch-every", "1", "--switch-mode", "descending", "--reference-compat",
           "--clip", "1"] + extra
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.time() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{badam} failed (rc {p.returncode}):\n{p.stdout[-3000:]}")
    rows = [json.loads(x) for x in open(os.path.join(out, "metrics.jsonl")) if x.strip()]
    rows = [r for r in rows if "loss" in r]
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    tokens = sum(r.get("batch_tokens", B * T) for r in rows)
    shutil.rmtree(out, ignore_errors=True)
    return rows, cpu, tokens, wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", required=True, help="binary A (before)")
    ap.add_argument("--b", required=True, help="binary B (after)")
    ap.add_argument("--size", default="130m", choices=sorted(SHAPES))
    ap.add_argument("--runs", type=int, default=4, help="runs of each binary")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--measure", type=int, default=0, help="measured steps (0: one per layer)")
    ap.add_argument("--work", default="/tmp/badam-ab")
    ap.add_argument("extra", nargs="*", help="more `badam train` options (after --)")
    a = ap.parse_args()
    B, T = SHAPES[a.size]
    d = os.path.join(a.work, a.size)
    model, data = os.path.join(d, "model"), os.path.join(d, "model", "train.jsonl")
    if not os.path.exists(data):
        subprocess.check_call(["/usr/bin/python3", MAKE, "--size", a.size, "--out", model,
                               "--seq", str(T)])
    cfg = json.load(open(os.path.join(model, "config.json")))
    steps = a.warmup + (a.measure or cfg["num_hidden_layers"])
    res = {"a": [], "b": []}
    for i in range(a.runs):
        for k in ("a", "b"):
            rows, cpu, tokens, wall = one_run(getattr(a, k), model, data, os.path.join(d, "out"),
                                              B, T, steps, a.extra)
            meas = rows[a.warmup:]
            tps = statistics.mean(r["tokens_per_s"] for r in meas)
            res[k].append({"tokens_per_s": tps, "cpu_s_per_1k_tokens": 1000 * cpu / tokens,
                           "wall_s": wall, "losses": [r["loss"] for r in rows]})
            print(f"run {i + 1} {k}: {tps:8.1f} tokens/s, {1000 * cpu / tokens:.3f} CPU s per "
                  f"1000 tokens, load {os.getloadavg()[0]:.1f}", flush=True)
    same_loss = all(x["losses"] == res["a"][0]["losses"] for x in res["a"] + res["b"])
    med = {k: {m: statistics.median(x[m] for x in v)
               for m in ("tokens_per_s", "cpu_s_per_1k_tokens")} for k, v in res.items()}
    spread = {k: (max(x["tokens_per_s"] for x in v) - min(x["tokens_per_s"] for x in v)) /
              med[k]["tokens_per_s"] for k, v in res.items()}
    print(f"\n{a.size}: B={B} T={T}, {steps} steps ({a.warmup} warm-up), {a.runs} runs each, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    for k in ("a", "b"):
        print(f"  {k}: {getattr(a, k)}: median {med[k]['tokens_per_s']:.1f} tokens/s "
              f"(spread {100 * spread[k]:.1f}%), {med[k]['cpu_s_per_1k_tokens']:.3f} CPU s / 1000 "
              f"tokens")
    print(f"  B/A tokens/s {med['b']['tokens_per_s'] / med['a']['tokens_per_s']:.3f}; "
          f"A/B CPU per token {med['a']['cpu_s_per_1k_tokens'] / med['b']['cpu_s_per_1k_tokens']:.3f}"
          f"; losses identical across all runs: {same_loss}")


if __name__ == "__main__":
    main()
