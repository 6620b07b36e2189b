"""PyTorch (Debian torch 1.13, CPU) BAdam-style and LoRA training of a Llama model folder, the
side-by-side baseline for bench/compare_torch/run.sh. Written the way the reference BAdam runs
under Hugging Face + bf16 mixed precision:

- every weight is stored in bf16; the active block (one decoder layer) is converted to an fp32
  trainable copy and trained by torch.optim.AdamW; each use casts it to bf16 for the matmul
  (what autocast does); on a block switch the layer goes back to bf16 and the optimizer is new;
- LoRA: frozen bf16 base, fp32 adapters A [r,in], B [out,r] on q,k,v,o,gate,up,down, AdamW;
- gradients clipped to global norm 1.0 before each step (the Trainer's max_grad_norm default,
  and `badam train`'s --clip default);
- eager attention (repeat_kv, [B,H,T,T] scores, fp32 softmax), logits [B,T,V] upcast to fp32
  for the cross-entropy, as transformers' LlamaForCausalLM does.

Batches: examples of the JSONL in file order, B per step (what `badam train --no-shuffle` does).
Prints one JSON object: per-step forward/backward/update seconds, switch seconds, tokens.

usage: torch_train.py --model DIR --data FILE --method badam|lora|gemm-peak --steps N
       --batch B --seq T [--active-block L] [--lora-rank 8] [--lr 1e-5]
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

BF16 = torch.bfloat16


def load_model(folder):
    """bf16 tensors by name, read one at a time into their own memory (no mapping of the whole
    file stays resident, so peak RSS is the training peak, not the load)."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    path = os.path.join(folder, "model.safetensors")
    params = {}
    with open(path, "rb", buffering=0) as f:
        n = int.from_bytes(f.read(8), "little")
        hdr = json.loads(f.read(n))
        hdr.pop("__metadata__", None)
        for name, info in sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            assert info["dtype"] == "BF16", name
            b, e = info["data_offsets"]
            t = torch.empty(info["shape"], dtype=BF16)
            f.seek(8 + n + b)
            f.readinto(t.view(torch.int16).numpy().reshape(-1).view(np.uint8))
            assert e - b == t.numel() * 2, name
            params[name] = t
    return cfg, params


def load_batches(path, B, T, steps):
    rows = []
    with open(path) as f:
        for line in f:
            ex = json.loads(line)
            rows.append((ex["input_ids"][:T], ex["labels"][:T]))
            if len(rows) >= B * steps:
                break
    out = []
    for s in range(steps):
        chunk = rows[(s * B) % len(rows):(s * B) % len(rows) + B]
        ids = torch.tensor([c[0] for c in chunk], dtype=torch.long)
        lab = torch.tensor([c[1] for c in chunk], dtype=torch.long)
        out.append((ids, lab))
    return out


class Llama:
    def __init__(self, cfg, params):
        self.cfg, self.p = cfg, params
        self.C = cfg["hidden_size"]
        self.H = cfg["num_attention_heads"]
        self.Hkv = cfg.get("num_key_value_heads", self.H)
        self.D = self.C // self.H
        self.L = cfg["num_hidden_layers"]
        self.eps = cfg.get("rms_norm_eps", 1e-5)
        self.theta = cfg.get("rope_theta", 10000.0)
        self.lora = {}  # weight name -> (A, B, scale)
        head = "lm_head.weight" if "lm_head.weight" in params else "model.embed_tokens.weight"
        self.head = head

    def linear(self, x, name):
        w = self.p[name]
        y = F.linear(x, w.to(BF16))
        if name in self.lora:
            A, Bm, s = self.lora[name]
            y = y + F.linear(F.linear(x, A.to(BF16)), Bm.to(BF16)) * s
        return y

    def rmsnorm(self, x, name):
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.p[name].to(BF16) * xf.to(BF16)

    def rope(self, T):
        inv = 1.0 / (self.theta ** (torch.arange(0, self.D, 2).float() / self.D))
        fr = torch.outer(torch.arange(T).float(), inv)
        emb = torch.cat([fr, fr], -1)
        return emb.cos().to(BF16), emb.sin().to(BF16)

    @staticmethod
    def rotate_half(x):
        h = x.shape[-1] // 2
        return torch.cat([-x[..., h:], x[..., :h]], -1)

    def layer(self, x, l, cos, sin, mask):
        p = f"model.layers.{l}."
        Bsz, T, C = x.shape
        h = self.rmsnorm(x, p + "input_layernorm.weight")
        q = self.linear(h, p + "self_attn.q_proj.weight").view(Bsz, T, self.H, self.D).transpose(1, 2)
        k = self.linear(h, p + "self_attn.k_proj.weight").view(Bsz, T, self.Hkv, self.D).transpose(1, 2)
        v = self.linear(h, p + "self_attn.v_proj.weight").view(Bsz, T, self.Hkv, self.D).transpose(1, 2)
        q = q * cos + self.rotate_half(q) * sin
        k = k * cos + self.rotate_half(k) * sin
        rep = self.H // self.Hkv
        if rep > 1:  # transformers' repeat_kv
            k = k[:, :, None].expand(Bsz, self.Hkv, rep, T, self.D).reshape(Bsz, self.H, T, self.D)
            v = v[:, :, None].expand(Bsz, self.Hkv, rep, T, self.D).reshape(Bsz, self.H, T, self.D)
        s = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.D) + mask
        a = torch.softmax(s, dim=-1, dtype=torch.float32).to(BF16)
        o = torch.matmul(a, v).transpose(1, 2).reshape(Bsz, T, C)
        x = x + self.linear(o, p + "self_attn.o_proj.weight")
        h = self.rmsnorm(x, p + "post_attention_layernorm.weight")
        g = self.linear(h, p + "mlp.gate_proj.weight")
        u = self.linear(h, p + "mlp.up_proj.weight")
        return x + self.linear(F.silu(g) * u, p + "mlp.down_proj.weight")

    def loss(self, ids, labels):
        Bsz, T = ids.shape
        x = F.embedding(ids, self.p["model.embed_tokens.weight"])
        cos, sin = self.rope(T)
        mask = torch.full((T, T), float("-inf")).triu(1).to(BF16)
        for l in range(self.L):
            x = self.layer(x, l, cos, sin, mask)
        x = self.rmsnorm(x, "model.norm.weight")
        logits = F.linear(x, self.p[self.head]).float()
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                               labels[:, 1:].reshape(-1), ignore_index=-100)


def layer_names(model, l):
    pre = f"model.layers.{l}."
    return [n for n in model.p if n.startswith(pre)]


def activate(model, l, lr):
    """Gives layer l an fp32 trainable copy and a fresh AdamW (BAdam's block switch)."""
    params = []
    for n in layer_names(model, l):
        t = model.p[n].float().requires_grad_(True)
        model.p[n] = t
        params.append(t)
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)


def deactivate(model, l):
    for n in layer_names(model, l):
        model.p[n] = model.p[n].detach().to(BF16)


def gemm_peak(seconds=3.0):
    """bf16 matmul GFLOP/s (oneDNN through torch) on [512,2048] x [2048,8192]."""
    a = torch.randn(512, 2048).to(BF16)
    b = torch.randn(2048, 8192).to(BF16)
    for _ in range(3):
        torch.matmul(a, b)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.matmul(a, b)
        n += 1
    dt = time.perf_counter() - t0
    bf = 2.0 * 512 * 2048 * 8192 * n / dt / 1e9
    a32, b32 = a.float(), b.float()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds / 2:
        torch.matmul(a32, b32)
        n += 1
    dt = time.perf_counter() - t0
    return bf, 2.0 * 512 * 2048 * 8192 * n / dt / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--data")
    ap.add_argument("--method", default="badam")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--active-block", type=int, default=0)
    ap.add_argument("--lora-rank", type=int, default=8)
    ap.add_argument("--lora-alpha", type=float, default=16.0)
    ap.add_argument("--lr", type=float, default=1e-5)
    a = ap.parse_args()
    # torch defaults to the physical core count; use what our side uses (OMP_NUM_THREADS).
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    torch.manual_seed(0)
    if a.method == "gemm-peak":
        bf, f32 = gemm_peak()
        print(json.dumps({"bf16_gflops": bf, "fp32_gflops": f32, "threads": torch.get_num_threads()}))
        return

    cfg, params = load_model(a.model)
    model = Llama(cfg, params)
    batches = load_batches(a.data, a.batch, a.seq, a.steps)
    switch_s = 0.0
    if a.method == "badam":
        prev = (a.active_block - 1) % model.L
        opt = activate(model, prev, a.lr)
        t0 = time.perf_counter()
        del opt
        deactivate(model, prev)
        opt = activate(model, a.active_block, a.lr)
        switch_s = time.perf_counter() - t0
    elif a.method == "lora":
        trainable = []
        targets = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                   "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
        r = a.lora_rank
        for l in range(model.L):
            for t in targets:
                n = f"model.layers.{l}.{t}.weight"
                out, inp = model.p[n].shape
                A = (torch.randn(r, inp) / math.sqrt(inp)).requires_grad_(True)
                Bm = torch.zeros(out, r).requires_grad_(True)
                model.lora[n] = (A, Bm, a.lora_alpha / r)
                trainable += [A, Bm]
        opt = torch.optim.AdamW(trainable, lr=a.lr, weight_decay=0.0)
    else:
        raise SystemExit(f"unknown method {a.method}")

    steps = []
    for ids, labels in batches:
        t0 = time.perf_counter()
        loss = model.loss(ids, labels)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        # max_grad_norm 1.0, as the Hugging Face Trainer (and badam train's --clip) default
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        steps.append({"forward_s": t1 - t0, "backward_s": t2 - t1, "update_s": t3 - t2,
                      "loss": float(loss), "tokens": int((labels[:, 1:] != -100).sum())})
    print(json.dumps({"method": a.method, "switch_s": switch_s, "steps": steps,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
