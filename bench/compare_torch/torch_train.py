"""PyTorch side of bench/compare_torch: BAdam training of a Llama model folder with the semantics
of the official BlockOptimizer (Ledzy/BAdam, src/badam/block_optim.py), re-implemented here from
its documented behaviour (see README.md, "Semantics"), plus the GEMM speed probe.

Training (the reference run under the Hugging Face Trainer, single process, no DeepSpeed):
- blocks: one per decoder layer ("model.layers.N."), in name order; the embedding is a block only
  with --include-embedding; with --include-head every other tensor (final norm, LM head, and the
  embedding when it is not a block of its own) forms the last block;
- the model's weights stay in --dtype (bf16, or fp32 on CPUs without native bf16 matmul); the
  active block's tensors get requires_grad and an fp32 master copy; forward and backward use the
  model weights; after backward the gradients are clipped (Trainer, max_grad_norm), converted to
  fp32 onto the masters, torch.optim.AdamW steps the masters, the masters are copied back into
  the model weights;
- weight-decay groups: every active tensor whose name lacks "bias" decays (norm weights too);
- switching: after the update, global_step += 1, and when (global_step + 1) % K == 0 the next
  block becomes active with fresh AdamW state (so the first block trains K - 1 steps; K = 1: 1);
  order ascending, descending (default; start = last block), fixed, or random (torch.randperm
  epochs); the switch ends with gc.collect() as the reference does;
- eager attention, fp32 softmax, logits upcast to fp32 for the mean token cross-entropy, as
  transformers' LlamaForCausalLM does.
Batches: the JSONL's examples in file order, B per step (`badam train --no-shuffle`).
Prints one JSON object: per step forward/backward/update/switch seconds, loss, block, tokens.

usage: torch_train.py --model DIR --data FILE --steps N --batch B --seq T [--dtype bf16|fp32]
         [--switch-every K] [--switch-mode descending] [--start-block N] [--lr 1e-5] [--clip 1]
       torch_train.py --gemm M,K,N [--seconds S]     bf16 and fp32 F.linear GFLOP/s
"""
import argparse
import gc
import json
import math
import os
import re
import time

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def load_model(folder, dtype):
    """Tensors by name in file order, read one at a time from the bf16 safetensors file and
    stored in `dtype` (no mapping of the whole file stays resident: peak RSS is training's)."""
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
            t = torch.empty(info["shape"], dtype=torch.bfloat16)
            assert e - b == t.numel() * 2, name
            f.seek(8 + n + b)
            f.readinto(t.view(torch.int16).numpy().reshape(-1).view(np.uint8))
            params[name] = t if dtype == torch.bfloat16 else t.to(dtype)
    return cfg, params


def load_batches(path, B, T, steps):
    rows = []
    with open(path) as f:
        for line in f:
            ex = json.loads(line)
            rows.append((ex["input_ids"][:T], ex["labels"][:T]))
    out = []
    for s in range(steps):
        chunk = [rows[(s * B + i) % len(rows)] for i in range(B)]
        out.append((torch.tensor([c[0] for c in chunk], dtype=torch.long),
                    torch.tensor([c[1] for c in chunk], dtype=torch.long)))
    return out


class Llama:
    """Llama forward and loss over a dict of named tensors (Hugging Face names and math)."""

    def __init__(self, cfg, params, dtype):
        self.p, self.dt = params, dtype
        self.C = cfg["hidden_size"]
        self.H = cfg["num_attention_heads"]
        self.Hkv = cfg.get("num_key_value_heads", self.H)
        self.D = self.C // self.H
        self.L = cfg["num_hidden_layers"]
        self.eps = cfg.get("rms_norm_eps", 1e-5)
        self.theta = cfg.get("rope_theta", 10000.0)
        self.head = "lm_head.weight" if "lm_head.weight" in params else "model.embed_tokens.weight"

    def rmsnorm(self, x, name):
        """LlamaRMSNorm: w * (x / sqrt(mean(x^2) + eps)), statistics in fp32."""
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.p[name] * xf.to(self.dt)

    def rope(self, T):
        inv = 1.0 / (self.theta ** (torch.arange(0, self.D, 2).float() / self.D))
        fr = torch.outer(torch.arange(T).float(), inv)
        emb = torch.cat([fr, fr], -1)
        return emb.cos().to(self.dt), emb.sin().to(self.dt)

    @staticmethod
    def rotate_half(x):
        h = x.shape[-1] // 2
        return torch.cat([-x[..., h:], x[..., :h]], -1)

    def layer(self, x, l, cos, sin, mask):
        p = f"model.layers.{l}."
        Bsz, T, C = x.shape
        h = self.rmsnorm(x, p + "input_layernorm.weight")

        def heads(name, n):
            return F.linear(h, self.p[p + name]).view(Bsz, T, n, self.D).transpose(1, 2)

        q = heads("self_attn.q_proj.weight", self.H)
        k = heads("self_attn.k_proj.weight", self.Hkv)
        v = heads("self_attn.v_proj.weight", self.Hkv)
        q = q * cos + self.rotate_half(q) * sin
        k = k * cos + self.rotate_half(k) * sin
        rep = self.H // self.Hkv
        if rep > 1:  # transformers' repeat_kv
            k = k[:, :, None].expand(Bsz, self.Hkv, rep, T, self.D).reshape(Bsz, self.H, T, self.D)
            v = v[:, :, None].expand(Bsz, self.Hkv, rep, T, self.D).reshape(Bsz, self.H, T, self.D)
        s = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.D) + mask
        a = torch.softmax(s, dim=-1, dtype=torch.float32).to(self.dt)
        o = torch.matmul(a, v).transpose(1, 2).reshape(Bsz, T, C)
        x = x + F.linear(o, self.p[p + "self_attn.o_proj.weight"])
        h = self.rmsnorm(x, p + "post_attention_layernorm.weight")
        g = F.linear(h, self.p[p + "mlp.gate_proj.weight"])
        u = F.linear(h, self.p[p + "mlp.up_proj.weight"])
        return x + F.linear(F.silu(g) * u, self.p[p + "mlp.down_proj.weight"])

    def loss(self, ids, labels):
        """Mean cross-entropy of labels[:, 1:] given ids[:, :-1] (ignore_index -100)."""
        T = ids.shape[1]
        x = F.embedding(ids, self.p["model.embed_tokens.weight"])
        cos, sin = self.rope(T)
        mask = torch.full((T, T), float("-inf")).triu(1).to(self.dt)
        for l in range(self.L):
            x = self.layer(x, l, cos, sin, mask)
        x = self.rmsnorm(x, "model.norm.weight")
        logits = F.linear(x, self.p[self.head]).float()
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                               labels[:, 1:].reshape(-1), ignore_index=-100)


def block_prefixes(names, include_embedding, include_head):
    """The reference's automatic partition: one block per "...layers.N." prefix in name order,
    the embedding as a block when included, and (include_head) every remaining name as a last
    block. A tensor belongs to a block when one of the block's strings is a substring of it."""
    blocks, rest = [], []
    for n in names:
        if any(b[0] in n for b in blocks):
            continue
        m = re.match(r"(.*layers\.[^.]*\.)", n)
        e = re.match(r"(.*embed[^.]*\.)", n)
        if m:
            blocks.append([m.group(1)])
        elif e and include_embedding:
            blocks.append([e.group(1)])
        else:
            rest.append(n)
    if include_head:
        blocks.append(rest)
    return blocks


class BlockAdamW:
    """BAdam with the official BlockOptimizer's semantics (module docstring): AdamW on fp32
    masters of the active block, post-step switch when (global_step + 1) % K == 0."""

    def __init__(self, params, blocks, K, mode, start, lr, weight_decay, betas, eps):
        self.p, self.blocks, self.K, self.mode = params, blocks, K, mode
        self.hyper = dict(lr=lr, betas=betas, eps=eps)
        self.wd, self.global_step = weight_decay, 0
        if start is not None and start >= 0:
            self.next = start
        elif mode == "random":
            self.order = torch.randperm(len(blocks)).tolist()
            self.next = self.order.pop()
        else:
            self.next = len(blocks) - 1 if mode == "descending" else 0
        self.switch()

    def switch(self):
        """Makes block self.next trainable with fresh fp32 masters and fresh AdamW state, then
        advances self.next by the block order."""
        self.block = self.next
        prefixes = self.blocks[self.block]
        self.pairs, decay, no_decay = [], [], []
        for name, t in self.p.items():
            if not any(s in name for s in prefixes):
                t.requires_grad_(False)
                t.grad = None
                continue
            t.requires_grad_(True)
            master = t.detach().clone().float().requires_grad_(True)
            self.pairs.append((t, master))
            (no_decay if "bias" in name else decay).append(master)
        groups = [g for g in ({"params": decay, "weight_decay": self.wd},
                              {"params": no_decay, "weight_decay": 0.0}) if g["params"]]
        self.opt = torch.optim.AdamW(groups, **self.hyper)
        n = len(self.blocks)
        if self.mode == "ascending":
            self.next = (self.block + 1) % n
        elif self.mode == "descending":
            self.next = (self.block - 1) % n
        elif self.mode == "random":
            if not self.order:
                self.order = torch.randperm(n).tolist()
            self.next = self.order.pop()
        gc.collect()

    def step(self):
        """The update; returns the seconds of the block switch it triggered (0 if none)."""
        for t, master in self.pairs:
            master.grad = t.grad.float()
            t.grad = None
        self.opt.step()
        with torch.no_grad():
            for t, master in self.pairs:
                t.copy_(master)
                master.grad = None
        self.global_step += 1
        if (self.global_step + 1) % self.K != 0:
            return 0.0
        t0 = time.perf_counter()
        self.switch()
        return time.perf_counter() - t0


def gemm_speed(M, K, N, seconds, rounds=5):
    """GFLOP/s of F.linear(x [M,K], w [N,K]) (y = x w^T, 2MNK flops) in bf16 and in fp32: the
    best of `rounds` alternating rounds of about seconds/rounds each (at least 2 calls, after one
    warm-up call), so that load from other processes biases neither dtype. A dtype whose matmul
    fails gets 0 GFLOP/s and its error message."""
    x, w = torch.randn(M, K), torch.randn(N, K)
    args = {key: (x.to(dt), w.to(dt)) for key, dt in (("bf16", torch.bfloat16),
                                                      ("fp32", torch.float32))}
    out = {key + "_gflops": 0.0 for key in args}
    for key, (a, b) in list(args.items()):
        try:
            F.linear(a, b)
        except RuntimeError as e:  # oneDNN has been seen to refuse a bf16 primitive: not usable
            out[key + "_error"] = str(e)
            del args[key]
    for _ in range(rounds):
        for key, (a, b) in args.items():
            n, t0 = 0, time.perf_counter()
            while n < 2 or time.perf_counter() - t0 < seconds / rounds:
                F.linear(a, b)
                n += 1
            rate = 2.0 * M * N * K * n / (time.perf_counter() - t0) / 1e9
            out[key + "_gflops"] = max(out[key + "_gflops"], rate)
    return out


def cpu_capability():
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage" in line:
            return line.split(":", 1)[1].strip()
    return "unknown"


def train(a):
    dt = DTYPES[a.dtype]
    t0 = time.perf_counter()
    cfg, params = load_model(a.model, dt)
    model = Llama(cfg, params, dt)
    batches = load_batches(a.data, a.batch, a.seq, a.steps)
    blocks = block_prefixes(list(params), a.include_embedding, a.include_head)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    opt = BlockAdamW(params, blocks, a.switch_every, a.switch_mode, a.start_block, a.lr,
                     a.weight_decay, (0.9, 0.999), 1e-8)
    first_switch_s = time.perf_counter() - t0
    steps = []
    for ids, labels in batches:
        block = opt.block
        t0 = time.perf_counter()
        loss = model.loss(ids, labels)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if a.clip > 0:  # the Trainer clips the model's gradients before optimizer.step()
            torch.nn.utils.clip_grad_norm_([t for t, _ in opt.pairs], a.clip)
        switch_s = opt.step()
        t3 = time.perf_counter()
        steps.append({"forward_s": t1 - t0, "backward_s": t2 - t1,
                      "update_s": t3 - t2 - switch_s, "switch_s": switch_s, "loss": float(loss),
                      "block": block, "tokens": int((labels[:, 1:] != -100).sum()),
                      "batch_tokens": int(labels.numel())})
    return {"dtype": a.dtype, "load_s": load_s, "first_switch_s": first_switch_s,
            "n_blocks": len(blocks), "steps": steps}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gemm", help="M,K,N: measure bf16 and fp32 matmul speed and exit")
    ap.add_argument("--seconds", type=float, default=1.5, help="per dtype")
    ap.add_argument("--model")
    ap.add_argument("--data")
    ap.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--switch-every", type=int, default=1)
    ap.add_argument("--switch-mode", default="descending",
                    choices=["ascending", "descending", "fixed", "random"])
    ap.add_argument("--start-block", type=int, default=-1)
    ap.add_argument("--include-embedding", action="store_true")
    ap.add_argument("--include-head", action="store_true")
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--clip", type=float, default=1.0)
    a = ap.parse_args()
    # torch defaults to the physical core count; use what our side uses (OMP_NUM_THREADS).
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    torch.manual_seed(0)
    info = {"threads": torch.get_num_threads(), "torch": torch.__version__,
            "capability": cpu_capability()}
    if a.gemm:
        M, K, N = (int(v) for v in a.gemm.split(","))
        info.update(gemm_speed(M, K, N, a.seconds), shape=[M, K, N])
    else:
        info.update(train(a))
    print(json.dumps(info))


if __name__ == "__main__":
    main()
