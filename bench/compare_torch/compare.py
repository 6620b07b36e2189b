"""Side-by-side CPU training benchmark: badam (BAdam, LoRA, Adam, LOMO via `badam train`) against
PyTorch BAdam-style and LoRA training (torch_train.py) on the same random model and batches.
Run through run.sh, which builds badam first.

For each size: writes the model folder and data once (make_model.py, cached in WORK/SIZE),
measures the bf16 GEMM peak (torch/oneDNN matmul) in this run, then runs every method in its own
process (peak RSS from wait4) for --steps steps; the first step is warmup (it also carries
BAdam's first block activation) and the rest are averaged. The active BAdam block is the middle
layer (L/2) on both sides: backward then covers half the layers, the mean over a random order.

Training FLOPs per step are counted analytically and identically for both sides: forward
2*N*(linear params incl. LM head) + causal attention; backward 2x forward for what it
differentiates (LM head and layers down to the active one for BAdam, all layers for LoRA / Adam /
LOMO), input gradients only where needed and weight gradients only for the trained weights.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_model import CONFIGS  # noqa: E402

SHAPES = {"130m": (2, 256), "1b": (1, 256), "tiny": (2, 64)}  # (batch, seq)


def run(cmd, env=None, log=None):
    """Runs cmd, returns (returncode, stdout, peak RSS bytes, seconds). Linux keeps a process's
    peak RSS across exec, so this driver stays small (no torch import here)."""
    t0 = time.time()
    env = dict(env or os.environ)
    env.setdefault("OMP_NUM_THREADS", str(os.cpu_count()))
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out = b""
    while True:
        chunk = p.stdout.read()
        if not chunk:
            break
        out += chunk
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    text = out.decode(errors="replace")
    if log:
        with open(log, "w") as f:
            f.write(" ".join(cmd) + "\n" + text)
    return p.returncode, text, ru.ru_maxrss * 1024, time.time() - t0


def flops(cfg, B, T, method, active):
    C, I, V, L = (cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"],
                  cfg["num_hidden_layers"])
    H, Hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = C // H
    N = B * T
    layer = C * H * D * 2 + 2 * C * Hkv * D + 3 * C * I  # q, o, k, v, gate, up, down
    lin_layer = 2 * N * layer
    att = 2 * 2 * B * H * D * T * (T + 1) // 2  # QK^T and PV, causal half
    head = 2 * N * C * V
    fwd = L * (lin_layer + att) + head
    if method == "badam":
        below = L - active  # layers the backward walks through (active included)
        bwd = head + below * (lin_layer + 2 * att) + lin_layer  # input grads + active weight grads
        bwd -= 0  # the active layer's input gradient is skipped: negligible difference
    elif method in ("adam", "lomo"):
        bwd = 2 * fwd  # input and weight gradients everywhere (head weight included)
    else:  # lora: input gradients through every layer, adapters negligible
        bwd = head + L * (lin_layer + 2 * att)
    return fwd, bwd


def ours(badam, model, data, out, method, B, T, steps, active, logdir):
    if os.path.exists(out):
        shutil.rmtree(out)
    cmd = [badam, "train", "--model", model, "--data", data, "--out", out, "--method", method,
           "--max-steps", str(steps), "--batch-size", str(B), "--seq-len", str(T),
           "--no-shuffle", "--no-group-by-length", "--no-checkpoint", "--quiet", "--lr", "1e-5",
           "--switch-every", "50", "--switch-mode", "ascending", "--start-block", str(active),
           "--clip", "0" if method == "lomo" else "1"]  # LOMO updates inside backward: no clip
    if method == "lora":
        cmd += ["--lora-rank", "8", "--lora-alpha", "16", "--lora-targets",
                "q,k,v,o,gate,up,down"]
    rc, text, rss, _ = run(cmd, None, os.path.join(logdir, f"ours-{method}.log"))
    if rc != 0:
        print(f"  ours {method}: failed (rc {rc}):\n{text[-2000:]}")
        return None
    rows = [json.loads(x) for x in open(os.path.join(out, "metrics.jsonl")) if x.strip()]
    mem = json.load(open(os.path.join(out, "memory.json")))
    shutil.rmtree(out, ignore_errors=True)
    meas = rows[1:] if len(rows) > 1 else rows
    avg = lambda k: sum(r[k] for r in meas) / len(meas)  # noqa: E731
    return {"forward_s": avg("forward_s"), "backward_s": avg("backward_s"),
            "update_s": avg("update_s"), "switch_s": max(r["switch_s"] for r in rows),
            "step_s": avg("step_s"), "tokens": avg("tokens"), "rss": rss,
            "rss_reported": mem.get("peak_rss", 0)}


def torch_run(model, data, method, B, T, steps, active, logdir):
    cmd = ["/usr/bin/python3", os.path.join(HERE, "torch_train.py"), "--model", model, "--data",
           data, "--method", method, "--steps", str(steps), "--batch", str(B), "--seq", str(T),
           "--active-block", str(active)]
    rc, text, rss, _ = run(cmd, None, os.path.join(logdir, f"torch-{method}.log"))
    if rc != 0:
        print(f"  torch {method}: failed (rc {rc}):\n{text[-2000:]}")
        return None
    res = json.loads(text.strip().splitlines()[-1])
    meas = res["steps"][1:] if len(res["steps"]) > 1 else res["steps"]
    avg = lambda k: sum(r[k] for r in meas) / len(meas)  # noqa: E731
    f, b, u = avg("forward_s"), avg("backward_s"), avg("update_s")
    return {"forward_s": f, "backward_s": b, "update_s": u, "switch_s": res["switch_s"],
            "step_s": f + b + u, "tokens": avg("tokens"), "rss": rss}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--badam", required=True)
    ap.add_argument("--size", default="130m,1b", help="comma list of 130m, 1b, tiny")
    ap.add_argument("--steps", type=int, default=4, help="steps per run (first is warmup)")
    ap.add_argument("--work", default="/tmp/badam-compare-torch")
    ap.add_argument("--methods", default="badam,lora,adam,lomo")
    ap.add_argument("--torch-methods", default="badam,lora")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    rc, text, _, _ = run(["/usr/bin/python3", os.path.join(HERE, "torch_train.py"), "--method",
                          "gemm-peak"])
    peak = json.loads(text.strip().splitlines()[-1])
    print(f"GEMM peak (torch/oneDNN, [512,2048]x[2048,8192], {peak['threads']} threads): "
          f"bf16 {peak['bf16_gflops']:.0f} GFLOP/s, fp32 {peak['fp32_gflops']:.0f} GFLOP/s")
    for size in a.size.split(","):
        B, T = SHAPES[size]
        d = os.path.join(a.work, size)
        model, data = os.path.join(d, "model"), os.path.join(d, "model", "train.jsonl")
        if not os.path.exists(data):
            print(f"[{size}] writing random model to {model} ...", flush=True)
            subprocess.check_call(["/usr/bin/python3", os.path.join(HERE, "make_model.py"),
                                   "--size", size, "--out", model, "--seq", str(T)])
        cfg = json.load(open(os.path.join(model, "config.json")))
        active = cfg["num_hidden_layers"] // 2
        logdir = os.path.join(d, "logs")
        os.makedirs(logdir, exist_ok=True)
        res = {}
        for m in a.methods.split(","):
            if not m:
                continue
            if m == "adam" and size == "1b":
                print("  ours adam: skipped on 1b (needs ~22 GB: 18 bytes/param)")
                continue
            print(f"[{size}] ours {m} ...", flush=True)
            res["ours-" + m] = ours(a.badam, model, data, os.path.join(d, "out-" + m), m, B, T,
                                    a.steps, active, logdir)
        for m in a.torch_methods.split(","):
            if not m:
                continue
            print(f"[{size}] torch {m} ...", flush=True)
            res["torch-" + m] = torch_run(model, data, m, B, T, a.steps, active, logdir)
        report(size, cfg, B, T, active, res, peak)


def report(size, cfg, B, T, active, res, peak):
    print(f"\n== {size}: batch {B} x seq {T}, BAdam active layer {active}, "
          f"bf16 GEMM peak {peak['bf16_gflops']:.0f} GFLOP/s ==")
    print(f"{'run':14s} {'fwd s':>7s} {'bwd s':>7s} {'upd s':>7s} {'switch s':>8s} {'step s':>7s}"
          f" {'tok/s':>8s} {'peak RSS':>9s} {'GFLOP/s':>8s} {'%bf16pk':>7s}")
    for name, r in res.items():
        if not r:
            print(f"{name:14s} failed")
            continue
        method = name.split("-", 1)[1]
        f, b = flops(cfg, B, T, method, active)
        gf = (f + b) / r["step_s"] / 1e9
        print(f"{name:14s} {r['forward_s']:7.3f} {r['backward_s']:7.3f} {r['update_s']:7.3f} "
              f"{r['switch_s']:8.3f} {r['step_s']:7.3f} {r['tokens'] / r['step_s']:8.0f} "
              f"{r['rss'] / 2**20:8.0f}M {gf:8.1f} {100 * gf / peak['bf16_gflops']:6.1f}%")
    for m in ("badam", "lora"):
        o, t = res.get("ours-" + m), res.get("torch-" + m)
        if o and t:
            print(f"ours/torch {m}: tokens/s x{t['step_s'] / o['step_s']:.2f} (target >= 1.3 for "
                  f"badam), peak RSS x{o['rss'] / t['rss']:.2f} (target <= 0.75), forward "
                  f"x{t['forward_s'] / o['forward_s']:.2f}, backward "
                  f"x{t['backward_s'] / o['backward_s']:.2f}, update x"
                  f"{t['update_s'] / max(o['update_s'], 1e-9):.2f} (speedups)")
    o, lo = res.get("ours-badam"), res.get("ours-lora")
    if o and lo:
        print(f"ours BAdam backward / LoRA backward: {o['backward_s'] / lo['backward_s']:.2f} "
              f"(target <= 0.55)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
