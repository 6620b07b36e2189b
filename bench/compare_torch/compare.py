"""Side-by-side CPU training benchmark: `badam train --method badam` (bf16 and fp32 weights)
against a PyTorch implementation of the official BlockOptimizer's semantics (torch_train.py), on
the same random model and the same batches, in one run. Run through run.sh, which builds badam.

Per size: prints the CPU (model, AVX2 / AVX-512 / AVX512_BF16 / AMX flags, threads, load); writes
the model folder and data once (make_model.py, cached in WORK/SIZE); measures PyTorch's bf16 and
fp32 matmul speed on the model's largest layer GEMM ([B*T, hidden] x [hidden, intermediate]) and
picks the PyTorch weight dtype (fp32 when its bf16 runs below 0.5x its fp32: no native bf16);
then runs each side in its own process (peak RSS from wait4) for WARMUP + MEASURE steps (BAdam,
K = 1, descending from the last layer, so MEASURE = number of layers visits every layer once)
and averages the measured steps. Our side runs with --reference-compat, so both sides run the
same algorithm (README.md, "Semantics"). Checks: the block of every step agrees, and the first
step's loss (initial weights, first batch) agrees within a stated tolerance.

Training FLOPs per step are counted analytically and identically for both sides: forward
2*N*(linear params incl. LM head) + causal attention; backward: input gradients of the LM head
and of every layer from the top down to the active one, plus the active layer's weight gradients.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = {"130m": (2, 256), "1b": (1, 256), "tiny": (2, 64)}  # (batch, seq)
# Environment variables that force an instruction set (ours, OpenBLAS, oneDNN, PyTorch's ATen).
ISA_ENV = ["BADAM_CPU", "BADAM_GEMM", "OPENBLAS_CORETYPE", "ONEDNN_MAX_CPU_ISA",
           "ATEN_CPU_CAPABILITY"]
NATIVE_BF16 = 0.5  # PyTorch bf16 matmul below this fraction of its fp32 speed: not native
# First-step loss tolerance |ours - torch| <= TOL * |torch|: same weight dtype on both sides
# (only summation order differs) / different dtypes or bf16 (bf16 rounding of activations).
# bf16: one rounding step of a bf16 value (2^-9 ~ 2e-3 relative).
LOSS_TOL = {"same-fp32": 1e-5, "bf16": 2e-3}


def run(cmd, log, env=None):
    """Runs cmd; returns (returncode, output, peak RSS bytes of the child, seconds)."""
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    text = out.decode(errors="replace")
    with open(log, "w") as f:
        f.write(" ".join(cmd) + "\n" + text)
    return os.waitstatus_to_exitcode(status), text, ru.ru_maxrss * 1024, time.time() - t0


def cpu_info():
    model, flags = "unknown", set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k.strip() == "model name" and model == "unknown":
                model = v.strip()
            elif k.strip() == "flags" and not flags:
                flags = set(v.split())
    want = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"]
    return model, [f for f in want if f in flags]


def flops(cfg, B, T, method, active):
    """Analytic training FLOPs of one step (forward, backward); `active` = BAdam's layer."""
    C, I, V, L = (cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"],
                  cfg["num_hidden_layers"])
    H, Hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = C // H
    N = B * T
    lin_layer = 2 * N * (C * H * D * 2 + 2 * C * Hkv * D + 3 * C * I)  # q, o, k, v, gate, up, down
    att = 2 * 2 * B * H * D * T * (T + 1) // 2  # QK^T and PV, causal half
    head = 2 * N * C * V
    fwd = L * (lin_layer + att) + head
    if method == "badam":  # layers active..L-1 pass input gradients; the active one weight grads
        bwd = head + (L - active) * (lin_layer + 2 * att) + lin_layer
    elif method in ("adam", "lomo"):
        bwd = 2 * fwd
    else:  # lora: input gradients through every layer, adapters negligible
        bwd = head + L * (lin_layer + 2 * att)
    return fwd, bwd


def summarize(steps, warmup, B, T, cfg, method, rss):
    """Means of the measured steps (after `warmup`), analytic GFLOP/s, first-step loss."""
    meas = steps[warmup:] or steps
    avg = lambda k: sum(s[k] for s in meas) / len(meas)  # noqa: E731
    # ours: its own step time (also counts batching and zeroing gradients); PyTorch: the sum
    step_s = avg("step_s") if "step_s" in meas[0] else (
        avg("forward_s") + avg("backward_s") + avg("update_s") + avg("switch_s"))
    fl = [sum(flops(cfg, B, T, method, s.get("block", 0))) for s in meas]
    return {"forward_s": avg("forward_s"), "backward_s": avg("backward_s"),
            "update_s": avg("update_s"), "switch_s": avg("switch_s"), "step_s": step_s,
            "tokens_per_s": B * T / step_s, "gflops": sum(fl) / len(fl) / step_s / 1e9,
            "rss": rss, "loss0": steps[0]["loss"], "losses": [s["loss"] for s in steps],
            "blocks": [s.get("block") for s in steps], "n_measured": len(meas)}


def ours(a, model, data, out, method, dtype, B, T, steps, cfg, logdir):
    if os.path.exists(out):
        shutil.rmtree(out)
    cmd = [a.badam, "train", "--model", model, "--data", data, "--out", out, "--method", method,
           "--dtype", dtype, "--max-steps", str(steps), "--batch-size", str(B), "--seq-len",
           str(T), "--no-shuffle", "--no-group-by-length", "--no-checkpoint", "--quiet",
           "--lr", str(a.lr), "--schedule", "constant", "--weight-decay", str(a.weight_decay),
           "--switch-every", str(a.switch_every), "--switch-mode", "descending",
           "--reference-compat",
           "--clip", "0" if method == "lomo" else "1"]  # LOMO updates inside backward: no clip
    rc, text, rss, wall = run(cmd, os.path.join(logdir, f"ours-{method}-{dtype}.log"))
    if rc != 0:
        print(f"  failed (rc {rc}):\n{text[-2000:]}")
        return None
    rows = [json.loads(x) for x in open(os.path.join(out, "metrics.jsonl")) if x.strip()]
    rows = [r for r in rows if "loss" in r]
    shutil.rmtree(out, ignore_errors=True)
    res = summarize(rows, a.warmup, B, T, cfg, method, rss)
    res["wall_s"] = wall
    return res


def torch_side(a, model, data, dtype, B, T, steps, cfg, logdir):
    cmd = ["/usr/bin/python3", os.path.join(HERE, "torch_train.py"), "--model", model, "--data",
           data, "--dtype", dtype, "--steps", str(steps), "--batch", str(B), "--seq", str(T),
           "--switch-every", str(a.switch_every), "--switch-mode", "descending", "--lr", str(a.lr),
           "--weight-decay", str(a.weight_decay), "--clip", "1"]
    rc, text, rss, wall = run(cmd, os.path.join(logdir, f"torch-badam-{dtype}.log"))
    if rc != 0:
        print(f"  failed (rc {rc}):\n{text[-2000:]}")
        return None
    res = json.loads(text.strip().splitlines()[-1])
    out = summarize(res["steps"], a.warmup, B, T, cfg, "badam", rss)
    out["wall_s"] = wall
    return out


def gemm_probe(cfg, B, T, logdir, tag=""):
    """PyTorch's bf16 and fp32 F.linear GFLOP/s and the OpenBLAS sgemm GFLOP/s badam's fp32
    path calls, on the model's largest layer GEMM, each in its own process."""
    shape = f"{B * T},{cfg['hidden_size']},{cfg['intermediate_size']}"
    out = {}
    for name, script in (("torch-gemm", "torch_train.py"), ("sgemm", "sgemm_peak.py")):
        cmd = ["/usr/bin/python3", os.path.join(HERE, script)]
        cmd += ["--gemm", shape] if script == "torch_train.py" else [shape]
        rc, text, _, _ = run(cmd, os.path.join(logdir, name + tag + ".log"))
        if rc != 0:
            sys.exit(f"{name} probe failed (rc {rc}):\n{text[-2000:]}")
        out.update(json.loads(text.strip().splitlines()[-1]))
    return out


def loss_check(res, torch_name):
    """Prints every run's first-step loss against PyTorch's; returns the list of mismatches."""
    t = res.get(torch_name)
    if not t:
        return []
    bad = []
    print(f"first-step loss (initial weights, first batch): {torch_name} {t['loss0']:.6f}")
    for name, r in res.items():
        if not r or name == torch_name:
            continue
        same = name.endswith("fp32") and torch_name.endswith("fp32")
        tol = LOSS_TOL["same-fp32" if same else "bf16"] * abs(t["loss0"])
        d = abs(r["loss0"] - t["loss0"])
        flag = "ok" if d <= tol else "MISMATCH"
        dmax = max(abs(x - y) for x, y in zip(r["losses"], t["losses"]))
        print(f"  {name:16s} {r['loss0']:.6f}  |diff| {d:.2e}  tolerance {tol:.1e}  {flag}"
              f"  (max |diff| over all {len(t['losses'])} steps {dmax:.2e})")
        if d > tol:
            bad.append(name)
        if r["blocks"] != t["blocks"] and name.startswith("badam"):
            print(f"  {name}: BLOCK ORDER MISMATCH: {r['blocks']} vs PyTorch {t['blocks']}")
            bad.append(name + " blocks")
    return bad


def report(size, cfg, B, T, res, gemm, torch_name, a):
    L = cfg["num_hidden_layers"]
    n = max((r["n_measured"] for r in res.values() if r), default=0)
    print(f"\n== {size}: batch {B} x seq {T}, {L} layers; BAdam K = {a.switch_every}, "
          f"descending; {a.warmup} warm-up steps excluded, {n} measured ==")
    print(f"GEMM {B * T}x{cfg['hidden_size']}x{cfg['intermediate_size']}: PyTorch bf16 "
          f"{gemm['bf16_gflops']:.1f}, PyTorch fp32 {gemm['fp32_gflops']:.1f}, OpenBLAS sgemm "
          f"(our fp32 path; the %sgemm column) {gemm['sgemm_gflops']:.1f} GFLOP/s (the better of "
          f"the probes before and after the runs)")
    print(f"{'run':16s} {'fwd s':>7s} {'bwd s':>7s} {'upd s':>7s} {'switch s':>8s} {'step s':>7s}"
          f" {'tok/s':>7s} {'peak RSS':>9s} {'GFLOP/s':>8s} {'%sgemm':>7s}")
    for name, r in res.items():
        if not r:
            print(f"{name:16s} failed")
            continue
        print(f"{name:16s} {r['forward_s']:7.3f} {r['backward_s']:7.3f} {r['update_s']:7.3f} "
              f"{r['switch_s']:8.3f} {r['step_s']:7.3f} {r['tokens_per_s']:7.0f} "
              f"{r['rss'] / 1e9:8.2f}G {r['gflops']:8.1f} "
              f"{100 * r['gflops'] / gemm['sgemm_gflops']:6.1f}%")
    t = res.get(torch_name)
    for name, r in res.items():
        if t and r and name.startswith("badam"):
            print(f"{name} / {torch_name}: tokens/s x{r['tokens_per_s'] / t['tokens_per_s']:.2f}, "
                  f"peak RSS x{r['rss'] / t['rss']:.2f}, forward x"
                  f"{t['forward_s'] / r['forward_s']:.2f}, backward x"
                  f"{t['backward_s'] / r['backward_s']:.2f}, update x"
                  f"{t['update_s'] / max(r['update_s'], 1e-9):.2f} (speedups)")
    b16, b32 = res.get("badam-bf16"), res.get("badam-fp32")
    if b16 and b32:
        r = b16["tokens_per_s"] / b32["tokens_per_s"]
        print(f"ours bf16 / fp32 weights: tokens/s x{r:.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--badam", required=True)
    ap.add_argument("--size", default="130m", help="comma list of 130m, 1b, tiny")
    ap.add_argument("--warmup", type=int, default=2, help="first steps not averaged")
    ap.add_argument("--measure", type=int, default=0,
                    help="measured steps (0: one per layer, so every layer is visited once)")
    ap.add_argument("--work", default="/tmp/badam-compare-torch")
    ap.add_argument("--dtypes", default="bf16,fp32", help="our weight dtypes")
    ap.add_argument("--torch-dtype", default="auto", choices=["auto", "bf16", "fp32"])
    ap.add_argument("--methods", default="", help="other methods of ours: lora,adam,lomo")
    ap.add_argument("--switch-every", type=int, default=1, help="BAdam K (steps per block)")
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    a = ap.parse_args()
    t_start = time.time()
    os.makedirs(a.work, exist_ok=True)
    threads = os.environ.get("OMP_NUM_THREADS", str(os.cpu_count()))
    os.environ["OMP_NUM_THREADS"] = threads
    model_name, flags = cpu_info()
    print(f"CPU: {model_name}; flags: {' '.join(flags) or 'none of avx2/avx512f/avx512_bf16'}; "
          f"{os.cpu_count()} logical CPUs, {threads} threads per run; load average "
          f"{os.getloadavg()[0]:.1f}")
    if os.getloadavg()[0] > os.cpu_count() - int(threads) + 0.5:
        print(f"WARNING: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: other "
              f"processes share the cores; timings and GEMM probes are unreliable")
    forced = [f"{k}={os.environ[k]}" for k in ISA_ENV if k in os.environ]
    if forced:
        print("instruction-set overrides passed to both sides: " + " ".join(forced))
    failed = []
    for size in a.size.split(","):
        failed += bench_size(a, size)
    print(f"\nwall time {time.time() - t_start:.0f} s (warm-up, probes and model loading "
          f"included); load average now {os.getloadavg()[0]:.1f}")
    if failed:
        sys.exit("checks failed: " + ", ".join(failed))


def bench_size(a, size):
    B, T = SHAPES[size]
    d = os.path.join(a.work, size)
    model, data = os.path.join(d, "model"), os.path.join(d, "model", "train.jsonl")
    if not os.path.exists(data):
        print(f"[{size}] writing random model to {model} ...", flush=True)
        subprocess.check_call(["/usr/bin/python3", os.path.join(HERE, "make_model.py"),
                               "--size", size, "--out", model, "--seq", str(T)])
    cfg = json.load(open(os.path.join(model, "config.json")))
    logdir = os.path.join(d, "logs")
    os.makedirs(logdir, exist_ok=True)
    steps = a.warmup + (a.measure or cfg["num_hidden_layers"])

    gemm = gemm_probe(cfg, B, T, logdir)
    ratio = gemm["bf16_gflops"] / max(gemm["fp32_gflops"], 1e-9)
    native = ratio >= NATIVE_BF16
    tdt = a.torch_dtype if a.torch_dtype != "auto" else ("bf16" if native else "fp32")
    why = (f"PyTorch {gemm['torch']} (ATen {gemm['capability']}) matmul "
           f"[{B * T},{cfg['hidden_size']}]x[{cfg['hidden_size']},{cfg['intermediate_size']}]: "
           f"bf16 {gemm['bf16_gflops']:.1f} GFLOP/s, fp32 {gemm['fp32_gflops']:.1f} GFLOP/s "
           f"(bf16 = {ratio:.2f}x fp32: {'native' if native else 'NOT native'} bf16)")
    if "bf16_error" in gemm:
        why += f"; bf16 matmul failed: {gemm['bf16_error']}"
    print(f"[{size}] {why}")
    if a.torch_dtype == "auto":
        print(f"[{size}] PyTorch side runs with {tdt} weights" +
              ("" if native else " (its bf16 is not native here: a user of this CPU would use "
               "fp32); its active block still gets an fp32 master copy, as the reference does"))
    else:
        print(f"[{size}] PyTorch side runs with {tdt} weights (--torch-dtype)")

    res = {}
    for dt in [x for x in a.dtypes.split(",") if x]:
        print(f"[{size}] ours badam, {dt} weights, {steps} steps ...", flush=True)
        res["badam-" + dt] = ours(a, model, data, os.path.join(d, "out"), "badam", dt, B, T,
                                  steps, cfg, logdir)
    for m in [x for x in a.methods.split(",") if x]:
        print(f"[{size}] ours {m}, bf16 weights, {steps} steps ...", flush=True)
        res[m + "-bf16"] = ours(a, model, data, os.path.join(d, "out"), m, "bf16", B, T, steps,
                                cfg, logdir)
    torch_name = "pytorch-" + tdt
    print(f"[{size}] PyTorch BlockOptimizer semantics, {tdt} weights, {steps} steps ...",
          flush=True)
    res[torch_name] = torch_side(a, model, data, tdt, B, T, steps, cfg, logdir)
    # The peaks again after the runs; the table uses the better of the two (a shared machine's
    # load comes in bursts that a few seconds of probing can fall into).
    gemm_after = gemm_probe(cfg, B, T, logdir, "-after")
    best = dict(gemm)
    for k in ("bf16_gflops", "fp32_gflops", "sgemm_gflops"):
        best[k] = max(gemm[k], gemm_after[k])
    report(size, cfg, B, T, res, best, torch_name, a)
    bad = loss_check({k: v for k, v in res.items() if k.startswith(("badam", "pytorch"))},
                     torch_name)
    failed = [f"{size} {k}" for k, v in res.items() if v is None] + [f"{size} {b}" for b in bad]
    with open(os.path.join(d, "results.json"), "w") as f:
        json.dump({"size": size, "batch": B, "seq": T, "cpu": cpu_info(), "gemm": gemm,
                   "gemm_after": gemm_after,
                   "torch_dtype": tdt, "torch_dtype_reason": why, "warmup": a.warmup,
                   "runs": res, "failed": failed}, f, indent=1)
    print(f"[{size}] results: {os.path.join(d, 'results.json')}, logs: {logdir}")
    sys.stdout.flush()
    return failed


if __name__ == "__main__":
    main()
