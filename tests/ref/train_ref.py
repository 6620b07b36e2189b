#!/usr/bin/env python3
"""PyTorch numerical reference for the badam trainer (BAdam, full AdamW, LoRA, SGD-BCD,
GaLore).

  train_ref.py --model DIR --data FILE.jsonl --config CONFIG.json --out OUTDIR
               [--init-adapter ADAPTER_DIR] [--compute float64|float32]

Reads a Hugging Face model folder (config.json + model.safetensors or shards; F32 or BF16),
a pre-tokenized JSONL file (one {"input_ids": [...], "labels": [...]} per line, labels
HF-aligned: labels[i] is -100 or input_ids[i]) and a training config, trains for
`max_steps` optimizer steps, and writes to OUTDIR:

  model.safetensors          every model parameter at the end (HF names, storage dtype)
  adapter_model.safetensors  lora only: the adapters (PEFT names, F32)
  adapter_config.json        lora only: PEFT adapter config (r, lora_alpha, target_modules)
  master.safetensors         bfloat16 storage only: the fp32 master copies held at the end
                             (badam / sgd-bcd: the last visit's block; adam: everything)
  trace.json                 one record per optimizer step:
                             {"step", "lr", "loss", "grad_norm", "block", "n_tokens"}

The exact semantics (batching, loss normalisation, clipping, schedule, AdamW, BAdam block
switching, mixed precision, LoRA) are documented in tests/ref/README.md ("Training
reference") and in the functions below. The model forward is llama_ref.forward.

--compute float64 (default): weights are upcast to float64, forward/backward, gradient
clipping and the optimizer run in float64, and the masters are float64 (the most accurate
reference). --compute float32 runs the same graph and the same update formulas in float32
(what the C trainer does), with fp32 masters.
"""
import argparse
import contextlib
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import llama_ref as ref  # noqa: E402
import st  # noqa: E402

IGNORE = -100
PAD_ID = 0
METHODS = ("badam", "adam", "lora", "sgd-bcd", "galore", "adapter")
SCHEDULES = ("constant", "cosine", "linear")
# Linear modules of a Llama-family decoder layer (HF module name suffixes), plus lm_head.
LAYER_LINEARS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                 "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
PEFT_PREFIX = "base_model.model."

DEFAULTS = {
    "dtype": "float32",
    "beta1": 0.9,
    "beta2": 0.999,
    "eps": 1e-8,
    "weight_decay": 0.0,
    "schedule": "constant",
    "warmup_steps": 0,
    "min_lr_ratio": 0.0,
    "clip": 0.0,
    "batch_size": 1,
    "grad_accum": 1,
    "switch_every": 50,
    "block_order": None,       # badam / sgd-bcd: default = 0, 1, ..., n_blocks-1
    "blocks": None,
    # badam / sgd-bcd as the reference package's BlockOptimizer (Ledzy/BAdam,
    # src/badam/block_optim.py) does it: after each step, global_step += 1 and the block switches
    # when (global_step + 1) % switch_every == 0; every parameter whose name has no "bias" is in
    # the weight-decay group (its LayerNorm test looks at the tensor, not the module, so RMSNorm
    # weights decay)
    "reference_compat": False,
    "lora_rank": 8,
    "lora_alpha": 16.0,
    "lora_targets": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                     "down_proj"],
    # galore: projection rank, steps between projector refreshes, scale alpha
    "galore_rank": 128,
    "galore_update_gap": 200,
    "galore_scale": 0.25,
    # adapter: bottleneck width
    "adapter_size": 64,
}
REQUIRED = ("method", "lr", "max_steps")


# ------------------------------------------------------------------------------ config

def normalize_config(raw):
    """Config dict -> validated dict with defaults filled in. Unknown keys are ignored
    (a note goes to stderr)."""
    for k in REQUIRED:
        if k not in raw:
            raise ValueError(f"config: missing required field {k!r}")
    known = set(DEFAULTS) | set(REQUIRED)
    unknown = sorted(set(raw) - known)
    if unknown:
        print(f"train_ref: ignoring unknown config fields {unknown}", file=sys.stderr)
    c = dict(DEFAULTS)
    c.update({k: v for k, v in raw.items() if k in known})
    if c["method"] not in METHODS:
        raise ValueError(f"config: method {c['method']!r} is not one of {METHODS}")
    if c["dtype"] not in ("float32", "bfloat16"):
        raise ValueError(f"config: dtype {c['dtype']!r} is not float32 or bfloat16")
    if c["schedule"] not in SCHEDULES:
        raise ValueError(f"config: schedule {c['schedule']!r} is not one of {SCHEDULES}")
    for k in ("lr", "beta1", "beta2", "eps", "weight_decay", "min_lr_ratio", "clip",
              "lora_alpha", "galore_scale"):
        c[k] = float(c[k])
    for k in ("max_steps", "warmup_steps", "batch_size", "grad_accum", "switch_every",
              "lora_rank", "galore_rank", "galore_update_gap", "adapter_size"):
        c[k] = int(c[k])
    if c["max_steps"] < 0 or c["warmup_steps"] < 0 or c["clip"] < 0:
        raise ValueError("config: max_steps, warmup_steps and clip must be >= 0")
    if c["batch_size"] < 1 or c["grad_accum"] < 1:
        raise ValueError("config: batch_size and grad_accum must be >= 1")
    if c["method"] in ("badam", "sgd-bcd"):
        if not c["blocks"]:
            raise ValueError(f"config: method {c['method']} needs 'blocks'")
        c["blocks"] = [[str(n) for n in b] for b in c["blocks"]]
        if c["switch_every"] < 1:
            raise ValueError("config: switch_every must be >= 1")
        if c["block_order"] is None:
            c["block_order"] = list(range(len(c["blocks"])))
        c["block_order"] = [int(i) for i in c["block_order"]]
        if not c["block_order"]:
            raise ValueError("config: block_order is empty")
        for i in c["block_order"]:
            if not 0 <= i < len(c["blocks"]):
                raise ValueError(f"config: block_order entry {i} is out of range")
    c["reference_compat"] = bool(c["reference_compat"])
    if c["method"] == "lora":
        if c["lora_rank"] < 1:
            raise ValueError("config: lora_rank must be >= 1")
        c["lora_targets"] = [str(t) for t in c["lora_targets"]]
    return c


# ------------------------------------------------------------------------------ data

def load_examples(path):
    """JSONL -> list of (input_ids list, labels list). Empty lines are skipped."""
    out = []
    with open(path) as f:
        for ln, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            ex = json.loads(line)
            ids = [int(x) for x in ex["input_ids"]]
            labels = [int(x) for x in ex.get("labels", ids)]
            if not ids or len(ids) != len(labels):
                raise ValueError(f"{path}:{ln}: input_ids empty or labels of another length")
            for i, (a, b) in enumerate(zip(ids, labels)):
                if b != IGNORE and b != a:
                    raise ValueError(f"{path}:{ln}: labels[{i}] = {b} is neither -100 nor "
                                     f"input_ids[{i}] = {a}")
            out.append((ids, labels))
    if not out:
        raise ValueError(f"{path}: no examples")
    return out


def make_batch(examples):
    """List of (ids, labels) -> (input_ids [B, T], targets [B, T]) LongTensors. Right padding
    with token 0 to the longest example; target[t] = ids[t+1] if labels[t+1] != -100 else
    -100; the last position of each example and every pad position are -100."""
    T = max(len(ids) for ids, _ in examples)
    ids_rows, tg_rows = [], []
    for ids, labels in examples:
        L = len(ids)
        ids_rows.append(ids + [PAD_ID] * (T - L))
        tg_rows.append([ids[t + 1] if t + 1 < L and labels[t + 1] != IGNORE else IGNORE
                        for t in range(T)])
    return (torch.tensor(ids_rows, dtype=torch.long),
            torch.tensor(tg_rows, dtype=torch.long))


def micro_batch_indices(step, a, batch_size, grad_accum, n_examples):
    """Example indices of micro-batch a (0..grad_accum-1) of optimizer step `step`:
    micro-batch m = step*grad_accum + a holds examples (m*batch_size + j) mod N."""
    m = step * grad_accum + a
    return [(m * batch_size + j) % n_examples for j in range(batch_size)]


def step_batches(examples, step, batch_size, grad_accum):
    return [make_batch([examples[i] for i in
                        micro_batch_indices(step, a, batch_size, grad_accum, len(examples))])
            for a in range(grad_accum)]


# ------------------------------------------------------------------------------ schedule

def lr_factor(s, schedule, warmup, max_steps, min_lr_ratio):
    """Hugging Face LambdaLR factor at optimizer step s (0-based), computed in double."""
    if s < warmup:
        return float(s) / float(max(1, warmup))
    if schedule == "constant":
        return 1.0
    p = float(s - warmup) / float(max(1, max_steps - warmup))
    if schedule == "cosine":
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * p))
    if schedule == "linear":
        return min_lr_ratio + (1.0 - min_lr_ratio) * max(0.0, 1.0 - p)
    raise ValueError(f"unknown schedule {schedule!r}")


# ------------------------------------------------------------------------------ optimizer

class AdamState:
    __slots__ = ("m", "v", "step")

    def __init__(self, like):
        self.m = torch.zeros_like(like)
        self.v = torch.zeros_like(like)
        self.step = 0


def adamw_update(p, g, state, lr, beta1, beta2, eps, weight_decay):
    """One torch.optim.AdamW step (torch 1.13 _single_tensor_adamw, amsgrad off), in place,
    in p's dtype. Python scalars are computed in double and applied as p's dtype."""
    state.step += 1
    p.mul_(1 - lr * weight_decay)
    state.m.mul_(beta1).add_(g, alpha=1 - beta1)
    state.v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    bc1 = 1 - beta1 ** state.step
    bc2 = 1 - beta2 ** state.step
    step_size = lr / bc1
    denom = (state.v.sqrt() / math.sqrt(bc2)).add_(eps)
    p.addcdiv_(state.m, denom, value=-step_size)


def sgd_update(p, g, lr, weight_decay):
    """Plain SGD with decoupled weight decay: p *= 1 - lr*wd (if wd > 0); p -= lr * g."""
    if weight_decay > 0:
        p.mul_(1 - lr * weight_decay)
    p.add_(g, alpha=-lr)


def clip_grads_(grads, max_norm):
    """torch.nn.utils.clip_grad_norm_ (L2) over the list `grads`, in place. Returns the
    pre-clip total norm (a float); max_norm <= 0 only measures."""
    if not grads:
        return 0.0
    total = torch.norm(torch.stack([torch.norm(g, 2) for g in grads]), 2)
    if max_norm > 0:
        coef = max_norm / (total + 1e-6)          # a 0-dim tensor in the grads' dtype
        if float(coef) < 1.0:
            for g in grads:
                g.mul_(coef)
    return float(total)


# ------------------------------------------------------------------------------ GaLore

def galore_projected(name, t):
    """GaLore trains the 2-D weights of the decoder layers in a low-rank projection (the
    authors' examples target the attention and MLP linears); everything else by AdamW."""
    return name.startswith("model.layers.") and t.dim() == 2


def galore_projector(g, rank):
    """GaLoreProjector.get_orthogonal_matrix, 'std' type (Zhao et al. 2024,
    galore_torch/galore_projector.py): the SVD of the gradient g [rows, cols]; rows >= cols:
    Vh[:rank, :] ([k, cols]), else U[:, :rank] ([rows, k]). torch.linalg.svd in float64. An SVD
    fixes each singular vector only up to sign, and the sign matters once Adam's moments carry
    over a projector refresh, so both sides fix it by one rule: the entry of largest magnitude
    of each singular vector (the first of equals) is positive."""
    U, _, Vh = torch.linalg.svd(g.to(torch.float64), full_matrices=False)
    rows, cols = g.shape
    if rows >= cols:
        P = Vh[:rank, :].clone()
        idx = P.abs().argmax(dim=1)
        sign = torch.sign(P[torch.arange(P.shape[0]), idx])
        P = P * sign[:, None]
    else:
        P = U[:, :rank].clone()
        idx = P.abs().argmax(dim=0)
        sign = torch.sign(P[idx, torch.arange(P.shape[1])])
        P = P * sign[None, :]
    return P.to(g.dtype)


class GaloreState:
    __slots__ = ("m", "v", "step", "P")

    def __init__(self):
        self.m = self.v = self.P = None
        self.step = 0


def galore_update(p, g, state, lr, beta1, beta2, eps, weight_decay, rank, gap, alpha):
    """One GaLore step on matrix p with (clipped, normalised) gradient g, in place:
      every `gap` steps (state.step = 0, gap, 2 gap, ...): P = galore_projector(g)
      R = g P^T (rows >= cols) or P^T g        project (GaLoreProjector.project, 'std')
      Z = -m_hat / (sqrt(v_hat) + eps)         torch.optim.AdamW's moments on R (adamw_update on a
                                               zero tensor with lr 1, no decay); the moments are
                                               kept across refreshes, as in the authors' AdamW
      D = alpha (Z P or P Z)                   project_back, times scale
      p = p (1 - lr wd) + lr D
    (The authors' AdamW is transformers-style: eps on sqrt(v), decay after the update; badam
    uses torch.optim.AdamW's order in the projected space as everywhere else.)"""
    rows, cols = g.shape
    tall = rows >= cols
    if state.step % gap == 0:
        state.P = galore_projector(g, rank)
    P = state.P
    R = g @ P.t() if tall else P.t() @ g
    if state.m is None:
        state.m = torch.zeros_like(R)
        state.v = torch.zeros_like(R)
    Z = torch.zeros_like(R)
    adamw_update(Z, R, state, 1.0, beta1, beta2, eps, 0.0)
    D = (Z @ P if tall else P @ Z) * alpha
    p.mul_(1 - lr * weight_decay)
    p.add_(D, alpha=lr)


def decays(t):
    """Weight decay applies to 2-D tensors only (matrices: embedding, projections, head,
    LoRA A and B); never to norm weights or biases."""
    return t.dim() == 2


# ------------------------------------------------------------------------------ blocks

def default_blocks(cfg, include_embedding=False, include_lm_head=False):
    """BAdam's usual partition: one block per decoder layer (optionally the embedding and,
    for untied models, the head as blocks of their own; model.norm.weight in none)."""
    names = [n for n, _ in ref.param_names(cfg)]
    blocks = []
    if include_embedding:
        blocks.append(["model.embed_tokens.weight"])
    for i in range(cfg["n_layers"]):
        p = f"model.layers.{i}."
        blocks.append([n for n in names if n.startswith(p)])
    if include_lm_head and not cfg["tie"]:
        blocks.append(["lm_head.weight"])
    return blocks


def check_blocks(blocks, names):
    seen = {}
    for bi, b in enumerate(blocks):
        for n in b:
            if n not in names:
                raise ValueError(f"config: block {bi} names unknown parameter {n!r}")
            if n in seen:
                raise ValueError(f"config: parameter {n!r} is in blocks {seen[n]} and {bi}")
            seen[n] = bi


# ------------------------------------------------------------------------------ LoRA

def lora_modules(cfg, targets):
    """HF module names (in parameter order) of the linears whose name ends with one of
    `targets` (PEFT matching: name == t or name ends with '.' + t)."""
    mods = []
    for i in range(cfg["n_layers"]):
        for s in LAYER_LINEARS:
            mods.append(f"model.layers.{i}.{s}")
    mods.append("lm_head")
    out = [m for m in mods if any(m == t or m.endswith("." + t) for t in targets)]
    if "lm_head" in out and cfg["tie"]:
        raise ValueError("lora: an lm_head adapter on a tied model is not supported")
    return out


def lora_shapes(cfg, module):
    """(in_features, out_features) of a linear module."""
    C, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    H, Hkv, D = cfg["n_heads"], cfg["n_kv_heads"], cfg["head_dim"]
    if module == "lm_head":
        return C, V
    s = module.rsplit(".", 1)[1]
    return {"q_proj": (C, H * D), "k_proj": (C, Hkv * D), "v_proj": (C, Hkv * D),
            "o_proj": (H * D, C), "gate_proj": (C, I), "up_proj": (C, I),
            "down_proj": (I, C)}[s]


def peft_names(module):
    return (f"{PEFT_PREFIX}{module}.lora_A.weight", f"{PEFT_PREFIX}{module}.lora_B.weight")


def load_adapter(adapter_dir, cfg, conf):
    """PEFT adapter folder -> {module: (A [r, in], B [out, r])} as float32 tensors. The
    adapter_config.json r / lora_alpha must equal the config's lora_rank / lora_alpha, and
    the adapter must hold exactly the modules selected by lora_targets."""
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        ac = json.load(f)
    if int(ac.get("r", conf["lora_rank"])) != conf["lora_rank"]:
        raise ValueError(f"adapter r {ac.get('r')} != config lora_rank {conf['lora_rank']}")
    if float(ac.get("lora_alpha", conf["lora_alpha"])) != conf["lora_alpha"]:
        raise ValueError(f"adapter lora_alpha {ac.get('lora_alpha')} != config lora_alpha "
                         f"{conf['lora_alpha']}")
    if ac.get("use_rslora"):
        raise ValueError("adapter: use_rslora is not supported")
    tensors = st.load(os.path.join(adapter_dir, "adapter_model.safetensors"))
    mods = lora_modules(cfg, conf["lora_targets"])
    r = conf["lora_rank"]
    out = {}
    for m in mods:
        na, nb = peft_names(m)
        if na not in tensors or nb not in tensors:
            raise ValueError(f"adapter: missing {na} or {nb}")
        fin, fout = lora_shapes(cfg, m)
        A, B = tensors.pop(na), tensors.pop(nb)
        if tuple(A.shape) != (r, fin) or tuple(B.shape) != (fout, r):
            raise ValueError(f"adapter: {m} has A {list(A.shape)}, B {list(B.shape)}; "
                             f"expected [{r}, {fin}], [{fout}, {r}]")
        out[m] = (A.float(), B.float())
    if tensors:
        raise ValueError(f"adapter: tensors outside lora_targets: {sorted(tensors)[:4]}...")
    return out


# ------------------------------------------------------------------------------ bottleneck adapters

BOTTLENECK_SITES = (("attn_adapter", "self_attn.o_proj"), ("mlp_adapter", "mlp.down_proj"))
BOTTLENECK_PARTS = ("down.weight", "down.bias", "up.weight", "up.bias")


def bottleneck_names(cfg):
    """Tensor names of the adapter folder, in our order: per layer, attention then MLP site,
    parts D, d, U, u."""
    return [f"model.layers.{l}.{site}.{part}" for l in range(cfg["n_layers"])
            for site, _ in BOTTLENECK_SITES for part in BOTTLENECK_PARTS]


def bottleneck_shape(name, C, size):
    part = name.split(".", 4)[4]
    return {"down.weight": (size, C), "down.bias": (size,), "up.weight": (C, size),
            "up.bias": (C,)}[part]


def write_bottleneck_config(out_dir, cfg, size, base):
    ac = {"adapter_type": "bottleneck", "task_type": "CAUSAL_LM", "adapter_size": size,
          "hidden_size": cfg["hidden_size"], "num_layers": cfg["n_layers"],
          "non_linearity": "relu", "residual": True, "sites": ["attention", "mlp"],
          "base_model_name_or_path": base}
    with open(os.path.join(out_dir, "adapter_config.json"), "w") as f:
        json.dump(ac, f, indent=2)
        f.write("\n")


def load_bottleneck(adapter_dir, cfg, conf):
    """Adapter folder -> {name: float32 tensor}; adapter_size must equal the config's and the
    folder must hold exactly our tensors."""
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        ac = json.load(f)
    if ac.get("adapter_type") != "bottleneck" or int(ac["adapter_size"]) != conf["adapter_size"]:
        raise ValueError("adapter: not a bottleneck adapter of the config's adapter_size")
    tensors = st.load(os.path.join(adapter_dir, "adapter_model.safetensors"))
    names = bottleneck_names(cfg)
    if sorted(tensors) != sorted(names):
        raise ValueError("adapter: unexpected tensor names")
    for n in names:
        if tuple(tensors[n].shape) != bottleneck_shape(n, cfg["hidden_size"],
                                                       conf["adapter_size"]):
            raise ValueError(f"adapter: {n} has shape {list(tensors[n].shape)}")
    return {n: tensors[n].float() for n in names}


_BASE_LINEAR = ref.linear


@contextlib.contextmanager
def bottleneck_forward(tensors):
    """Makes llama_ref.forward apply Houlsby bottleneck adapters on the outputs of o_proj and
    down_proj, before the residual adds: z = y + relu(y D^T + d) U^T + u."""
    def lin(x, P, name):
        y = _BASE_LINEAR(x, P, name)
        for site, module in BOTTLENECK_SITES:
            if name.endswith("." + module):
                p = name[: -len(module)] + site + "."
                D, d, U, u = (tensors[p + part] for part in BOTTLENECK_PARTS)
                y = y + torch.relu(y @ D.t() + d) @ U.t() + u
        return y
    ref.linear = lin
    try:
        yield
    finally:
        ref.linear = _BASE_LINEAR



@contextlib.contextmanager
def lora_forward(adapters, scale):
    """Makes llama_ref.forward apply LoRA: every linear with an adapter computes
    y = W x (+ b) + ((x A^T) B^T) * scale (PEFT's order; no dropout). lm_head adapters are
    merged into P["lm_head.weight"] by the caller since llama_ref.forward does not call
    linear() for the head."""
    def lin(x, P, name):
        y = _BASE_LINEAR(x, P, name)
        ab = adapters.get(name)
        if ab is not None:
            A, B = ab
            y = y + ((x @ A.t()) @ B.t()) * scale
        return y
    ref.linear = lin
    try:
        yield
    finally:
        ref.linear = _BASE_LINEAR


# ------------------------------------------------------------------------------ trainer

class Trainer:
    """Holds the model weights, the trainable masters and the optimizer state.

    store[name]: the model weights. dtype float32: a compute-dtype tensor that *is* the master
    (written as F32 at the end). dtype bfloat16: a bfloat16 tensor; trainable tensors have a
    compute-dtype master in `master`, and store is refreshed from it (RNE) after every update.
    """

    def __init__(self, cfg, weights, conf, compute_dtype=torch.float64, adapters=None):
        self.cfg = cfg
        self.conf = conf
        self.cd = compute_dtype
        self.bf16 = conf["dtype"] == "bfloat16"
        self.names = list(weights)
        if self.bf16:
            self.store = {n: t.to(torch.bfloat16).clone() for n, t in weights.items()}
        else:
            self.store = {n: t.to(torch.float32).to(compute_dtype).clone()
                          for n, t in weights.items()}
        self.master = {}          # bf16 only: trainable name -> compute-dtype master
        self.state = {}           # trainable key -> AdamState
        self.active = []          # trainable parameter names (badam / sgd-bcd / adam)
        self.block = None         # current block index (badam / sgd-bcd)
        self.visit = -1
        self.adapters = {}        # lora: module -> [A, B] (compute dtype)
        self.scale = 0.0
        self.bottleneck = {}      # adapter: name -> tensor (compute dtype)
        m = conf["method"]
        if m in ("badam", "sgd-bcd"):
            check_blocks(conf["blocks"], set(self.names))
        elif m in ("adam", "galore"):
            self._activate(list(self.names))
        elif m == "adapter":
            if adapters is None:
                raise ValueError("adapter needs --init-adapter")
            self.bottleneck = {k: v.to(compute_dtype).clone() for k, v in adapters.items()}
        elif m == "lora":
            if adapters is None:
                raise ValueError("lora needs --init-adapter")
            self.adapters = {k: [a.to(compute_dtype).clone(), b.to(compute_dtype).clone()]
                             for k, (a, b) in adapters.items()}
            self.scale = conf["lora_alpha"] / conf["lora_rank"]

    # -- parameter sets
    def _activate(self, names):
        """Makes `names` the trainable set: fresh optimizer state and (bf16) fresh masters
        upcast from the current bf16 weights."""
        self.active = list(names)
        self.state = {}
        self.master = {}
        if self.bf16:
            self.master = {n: self.store[n].to(self.cd) for n in self.active}

    def _switch(self, visit):
        order = self.conf["block_order"]
        self.visit = visit
        self.block = order[visit % len(order)]
        self._activate(self.conf["blocks"][self.block])

    def _begin_step(self, s):
        m = self.conf["method"]
        if m in ("badam", "sgd-bcd") and self.conf["reference_compat"]:
            if s == 0:  # BlockOptimizer.__init__ activates the first block
                self.global_step = 0
                self._switch(0)
        elif m in ("badam", "sgd-bcd"):
            K = self.conf["switch_every"]
            visit = s // K
            if visit != self.visit:
                # Switch (also when the next visit is the same block): state discarded.
                order = self.conf["block_order"]
                self.visit = visit
                self.block = order[visit % len(order)]
                self._activate(self.conf["blocks"][self.block])

    def trainable(self):
        """[(key, master tensor)] updated by the optimizer this step."""
        if self.conf["method"] == "adapter":
            return list(self.bottleneck.items())
        if self.conf["method"] == "lora":
            out = []
            for mod, (A, B) in self.adapters.items():
                out.append((mod + ".lora_A", A))
                out.append((mod + ".lora_B", B))
            return out
        tgt = self.master if self.bf16 else self.store
        return [(n, tgt[n]) for n in self.active]

    # -- forward / backward
    def _loss_and_grads(self, batches):
        """Forward + backward over the micro-batches of one step. Returns (mean loss,
        n_tokens, {key: grad}) with grads of sum(token losses) / n_tokens of the step."""
        n_total = sum(int((tg != IGNORE).sum()) for _, tg in batches)
        div = float(max(n_total, 1))
        lora = self.conf["method"] == "lora"
        act = set(self.active)
        P = {}
        for n in self.names:
            t = self.store[n].detach().to(self.cd)
            if n in act:
                t = t.clone().requires_grad_(True)
            P[n] = t
        leaves = {n: P[n] for n in self.active}
        if lora:
            ad = {}
            for mod, (A, B) in self.adapters.items():
                a = A.detach().clone().requires_grad_(True)
                b = B.detach().clone().requires_grad_(True)
                ad[mod] = (a, b)
                leaves[mod + ".lora_A"] = a
                leaves[mod + ".lora_B"] = b
            ctx = lora_forward({k: v for k, v in ad.items() if k != "lm_head"}, self.scale)
        elif self.conf["method"] == "adapter":
            bt = {}
            for k, t in self.bottleneck.items():
                bt[k] = t.detach().clone().requires_grad_(True)
                leaves[k] = bt[k]
            ctx = bottleneck_forward(bt)
        else:
            ctx = contextlib.nullcontext()
        V = self.cfg["vocab_size"]
        loss_sum = 0.0
        with ctx:
            for ids, tg in batches:
                PP = P
                if lora and "lm_head" in ad:
                    a, b = ad["lm_head"]
                    PP = dict(P)
                    PP["lm_head.weight"] = P["lm_head.weight"] + (b @ a) * self.scale
                with torch.set_grad_enabled(bool(leaves)):
                    logits = ref.forward(self.cfg, PP, ids)
                    ls = F.cross_entropy(logits.reshape(-1, V), tg.reshape(-1),
                                         ignore_index=IGNORE, reduction="sum")
                    loss_sum += float(ls.detach())
                    if leaves:
                        (ls / div).backward()
        grads = {k: (t.grad.detach() if t.grad is not None else torch.zeros_like(t.detach()))
                 for k, t in leaves.items()}
        return loss_sum / div, n_total, grads

    # -- one optimizer step
    def step(self, s, examples):
        c = self.conf
        self._begin_step(s)
        block = self.block
        batches = step_batches(examples, s, c["batch_size"], c["grad_accum"])
        loss, n_tok, grads = self._loss_and_grads(batches)
        params = self.trainable()
        glist = [grads[k] for k, _ in params]
        gnorm = clip_grads_(glist, c["clip"])
        lr = c["lr"] * lr_factor(s, c["schedule"], c["warmup_steps"], c["max_steps"],
                                 c["min_lr_ratio"])
        with torch.no_grad():
            for (k, p), g in zip(params, glist):
                decayed = ("bias" not in k) if c["reference_compat"] else decays(p)
                wd = c["weight_decay"] if decayed else 0.0
                if c["method"] == "sgd-bcd":
                    sgd_update(p, g, lr, wd)
                elif c["method"] == "galore" and galore_projected(k, p):
                    if k not in self.state:
                        self.state[k] = GaloreState()
                    galore_update(p, g, self.state[k], lr, c["beta1"], c["beta2"], c["eps"], wd,
                                  c["galore_rank"], c["galore_update_gap"], c["galore_scale"])
                else:
                    if k not in self.state:
                        self.state[k] = AdamState(p)
                    adamw_update(p, g, self.state[k], lr, c["beta1"], c["beta2"], c["eps"], wd)
                if self.bf16 and c["method"] not in ("lora", "adapter"):
                    self.store[k] = p.to(torch.bfloat16)
        if c["method"] in ("badam", "sgd-bcd") and c["reference_compat"]:
            self.global_step += 1  # BlockOptimizer.step: switch after the step
            if (self.global_step + 1) % c["switch_every"] == 0:
                self._switch(self.visit + 1)
        return {"step": s, "lr": lr, "loss": loss, "grad_norm": gnorm,
                "block": block if c["method"] in ("badam", "sgd-bcd") else None,
                "n_tokens": n_tok}

    def run(self, examples):
        return [self.step(s, examples) for s in range(self.conf["max_steps"])]

    # -- results
    def model_tensors(self):
        """{hf name: tensor} in the storage dtype (float32 or bfloat16)."""
        if self.bf16:
            return {n: self.store[n].clone() for n in self.names}
        return {n: self.store[n].to(torch.float32) for n in self.names}

    def adapter_tensors(self):
        out = {}
        for mod, (A, B) in self.adapters.items():
            na, nb = peft_names(mod)
            out[na] = A.to(torch.float32)
            out[nb] = B.to(torch.float32)
        return out

    def bottleneck_tensors(self):
        return {k: t.to(torch.float32) for k, t in self.bottleneck.items()}

    def master_tensors(self):
        return {n: t.to(torch.float32) for n, t in self.master.items()}


def train(model_dir, examples, conf, compute_dtype=torch.float64, adapter_dir=None):
    """Convenience wrapper: returns the finished Trainer and the trace."""
    cfg, weights = ref.load_model(model_dir)
    adapters = None
    if conf["method"] == "lora":
        if not adapter_dir:
            raise ValueError("method lora needs --init-adapter")
        adapters = load_adapter(adapter_dir, cfg, conf)
    if conf["method"] == "adapter":
        if not adapter_dir:
            raise ValueError("method adapter needs --init-adapter")
        adapters = load_bottleneck(adapter_dir, cfg, conf)
    V = cfg["vocab_size"]
    for i, (ids, _) in enumerate(examples):
        if min(ids) < 0 or max(ids) >= V:
            raise ValueError(f"example {i}: token id out of [0, {V})")
    tr = Trainer(cfg, weights, conf, compute_dtype, adapters)
    trace = tr.run(examples)
    return tr, trace


def write_outputs(tr, trace, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    st.save(tr.model_tensors(), os.path.join(out_dir, "model.safetensors"))
    if tr.conf["method"] == "lora":
        st.save(tr.adapter_tensors(), os.path.join(out_dir, "adapter_model.safetensors"),
                dtype="F32")
        ac = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": tr.conf["lora_rank"],
              "lora_alpha": tr.conf["lora_alpha"], "target_modules": tr.conf["lora_targets"],
              "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False,
              "use_rslora": False}
        with open(os.path.join(out_dir, "adapter_config.json"), "w") as f:
            json.dump(ac, f, indent=2)
            f.write("\n")
    if tr.conf["method"] == "adapter":
        st.save(tr.bottleneck_tensors(), os.path.join(out_dir, "adapter_model.safetensors"),
                dtype="F32")
        write_bottleneck_config(out_dir, tr.cfg, tr.conf["adapter_size"], "")
    if tr.bf16 and tr.master:
        st.save(tr.master_tensors(), os.path.join(out_dir, "master.safetensors"), dtype="F32")
    with open(os.path.join(out_dir, "trace.json"), "w") as f:
        f.write("[\n")
        f.write(",\n".join(json.dumps(r) for r in trace))
        f.write("\n]\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description="badam trainer reference (PyTorch)")
    ap.add_argument("--model", required=True, help="HF model folder")
    ap.add_argument("--data", required=True, help="pre-tokenized JSONL (input_ids, labels)")
    ap.add_argument("--config", required=True, help="training config JSON")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--init-adapter", help="PEFT adapter folder (lora: initial A and B)")
    ap.add_argument("--compute", choices=["float64", "float32"], default="float64",
                    help="compute / master precision (default float64)")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    try:
        with open(a.config) as f:
            conf = normalize_config(json.load(f))
        examples = load_examples(a.data)
        cd = torch.float64 if a.compute == "float64" else torch.float32
        tr, trace = train(a.model, examples, conf, cd, a.init_adapter)
    except (ValueError, KeyError, OSError) as e:
        print(f"train_ref: error: {e}", file=sys.stderr)
        return 2
    write_outputs(tr, trace, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
