#!/usr/bin/env python3
"""A model (not a measurement) of data-parallel step time on a cluster, for BAdam, Adam, LoRA and
ZeRO-3 Adam, Llama-3-8B and 70B, 4 to 64 ranks, over three networks. Plain python3, no deps.

    python3 bench/mpi/cluster_model.py [--badam build/badam] [--measured-s-per-token S ...]

step s = compute s + communication s (no overlap: badam today reduces after backward).

Compute. One measured time per token (default: Llama-3-8B, BAdam, bf16 weights, batch 2 x 512, 2
threads of an Intel Xeon with AVX-512 + AVX512_BF16: steps 1 and 2 took 54.5 and 56.0 s, so
55.3 s / 1024 tokens; the benchmark's 3rd step, 285 s, ran while other jobs shared the 2 cores)
gives a rate in FLOP/s: train_flops(measured model, method) / seconds per token. Every other
model and method is that rate applied to its own train_flops, per token, for a fixed micro-batch
per rank (weak scaling: B x T = 2 x 512 tokens per rank per step; the global batch grows with N).
train_flops per token, from config.json (C hidden, I intermediate, L layers, Hq/Hkv heads of hd,
V vocabulary, T tokens per sequence; P_l = C Hq hd + 2 C Hkv hd + Hq hd C + 3 C I the linear
weights of a layer):
  forward   = 2 (L P_l + V C) + L * 4 Hq hd (T + 1) / 2      (GEMMs; causal QK^T and PV)
  Adam      = 3 x forward                                    (backward: dX and dW of every GEMM)
  LoRA      = forward + 2 L P_l + 2 V C + attention x 2      (dX everywhere, no dW of the base)
  BAdam     = forward + 2 V C + (L + 1) / 2 (2 P_l + 2 attn_l) + 2 P_l
              (a block = a layer, uniform over the L layers: backward stops below the active
              block, so on average (L + 1) / 2 layers pass dX; only the block has dW)
  ZeRO-3 Adam computes as Adam.
Bytes per step and rank (the payload P each rank hands to the collectives), from
`badam plan --method M --json` trainable_params (config.json only; the plan is exact for the
sizes badam allocates):
  BAdam: 4 x the block's parameters (fp32 gradients of one layer: about 1/L of Adam's)
  Adam:  4 x all parameters (fp32 gradients)
  LoRA:  4 x the adapters' parameters
  ZeRO-3 Adam (bf16): every step all-gathers the parameters for forward and again for backward
         and reduce-scatters the gradients: 3 collectives of 2 x params bytes.
Network (alpha-beta, ring algorithms):
  all-reduce of P bytes:       2 (N - 1) / N * P / bandwidth + 2 (N - 1) alpha
  all-gather / reduce-scatter: (N - 1) / N * P / bandwidth + (N - 1) alpha
  one collective per tensor (BAdam: 9 per layer block; Adam 9 L + 3; LoRA 14 L with the
  default 7 targets; ZeRO-3: 3 per tensor), alpha = 30 us on 25 Gb/s Ethernet (TCP), 2 us on 100
  and 400 Gb/s InfiniBand (RDMA); bandwidth is the link rate (no protocol overhead), so the
  communication times are lower bounds.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NETWORKS = [("25 Gb/s Ethernet", 25e9 / 8, 30e-6), ("100 Gb/s IB", 100e9 / 8, 2e-6),
            ("400 Gb/s IB", 400e9 / 8, 2e-6)]
RANKS = [4, 8, 16, 32, 64]
MODELS = [("Llama-3-8B", "configs/llama-3-8b"), ("Llama-3-70B", "configs/llama-3-70b")]
METHODS = ["badam", "adam", "zero3-adam", "lora"]


def dims(cfg):
    C, L, V = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    Hq = cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads", Hq)
    hd = cfg.get("head_dim", C // Hq)
    I = cfg["intermediate_size"]
    P_l = C * Hq * hd + 2 * C * Hkv * hd + Hq * hd * C + 3 * C * I
    return C, L, V, Hq, hd, P_l


def train_flops(cfg, method, T):
    """FLOPs per token of one training step (forward + backward), see the module's text."""
    C, L, V, Hq, hd, P_l = dims(cfg)
    attn_l = 4 * Hq * hd * (T + 1) / 2
    forward = 2 * (L * P_l + V * C) + L * attn_l
    if method in ("adam", "zero3-adam"):
        return 3 * forward
    if method == "lora":
        return forward + 2 * L * P_l + 2 * V * C + 2 * L * attn_l
    if method == "badam":
        return forward + 2 * V * C + (L + 1) / 2 * (2 * P_l + 2 * attn_l) + 2 * P_l
    raise ValueError(method)


def plan(badam, model_dir, method, T):
    """badam plan's JSON for one method (batch 2, seq T)."""
    out = subprocess.run([badam, "plan", "--model", model_dir, "--method", method, "--json",
                          "--batch-size", "2", "--seq-len", str(T)], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)[method]


def comm_seconds(method, sizes, N, bw, alpha, L):
    """Seconds in collectives per step and rank (ring algorithms, alpha-beta)."""
    if method == "zero3-adam":
        per = (N - 1) / N * 2 * sizes["adam"] / bw
        return 3 * per + 3 * (9 * L + 3) * (N - 1) * alpha
    payload = 4 * sizes[method]
    tensors = {"badam": 9, "adam": 9 * L + 3, "lora": 14 * L}[method]
    return 2 * (N - 1) / N * payload / bw + tensors * 2 * (N - 1) * alpha


def payload_bytes(method, sizes):
    """Bytes each rank hands to collectives per step (ZeRO-3: the three collectives' inputs)."""
    if method == "zero3-adam":
        return 3 * 2 * sizes["adam"]
    return 4 * sizes[method]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--badam", default=os.path.join(ROOT, "build", "badam"))
    ap.add_argument("--measured-config", default=os.path.join(ROOT, "configs/llama-3-8b"),
                    help="model folder of the measurement (its config.json)")
    ap.add_argument("--measured-method", default="badam")
    ap.add_argument("--measured-s-per-token", type=float, default=55.28 / 1024,
                    help="compute seconds per token of the measurement (per rank)")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--tokens-per-rank", type=int, default=1024)
    a = ap.parse_args()
    if not os.access(a.badam, os.X_OK):
        sys.exit(f"{a.badam}: not found; build first (bash scripts/build.sh) or pass --badam")
    T = a.seq_len
    with open(os.path.join(a.measured_config, "config.json")) as f:
        mcfg = json.load(f)
    rate = train_flops(mcfg, a.measured_method, T) / a.measured_s_per_token
    print(f"compute rate: {rate / 1e9:.1f} GFLOP/s ({a.measured_method} on "
          f"{a.measured_config}, {a.measured_s_per_token:.4f} s per token); "
          f"{a.tokens_per_rank} tokens per rank and step\n")
    nets = " / ".join(n for n, _, _ in NETWORKS)
    print(f"Each ranks cell: communication s per step on {nets}; step s = compute s + it.\n")
    print("| model | method | MB per step and rank | compute s | "
          + " | ".join(f"{N} ranks" for N in RANKS) + " |")
    print("| --- | --- | ---: | ---: |" + " ---: |" * len(RANKS))
    for name, rel in MODELS:
        mdir = os.path.join(ROOT, rel)
        with open(os.path.join(mdir, "config.json")) as f:
            cfg = json.load(f)
        L = cfg["num_hidden_layers"]
        sizes = {m: plan(a.badam, mdir, m, T)["trainable_params"] for m in ("badam", "adam", "lora")}
        for method in METHODS:
            compute = train_flops(cfg, method, T) * a.tokens_per_rank / rate
            cells = []
            for N in RANKS:
                c = [comm_seconds(method, sizes, N, bw, alpha, L) for _, bw, alpha in NETWORKS]
                cells.append(" / ".join(f"{x:.2f}" for x in c))
            mb = payload_bytes(method, sizes) / 1e6
            print(f"| {name} | {method} | {mb:,.0f} | {compute:.1f} | " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main()
