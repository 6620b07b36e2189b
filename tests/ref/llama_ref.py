#!/usr/bin/env python3
"""PyTorch numerical reference for Llama-family causal LMs (llama, mistral, qwen2).

  llama_ref.py --model DIR --batch BATCH.json --out OUT.safetensors
               [--dtype float32|float64] [--grad-prefix PREFIX]

Reads DIR/config.json and DIR/model.safetensors (or DIR/model.safetensors.index.json and
its shards), rebuilds the model from scratch with the Hugging Face *ForCausalLM semantics,
runs forward + autograd backward on the batch, and writes OUT (all F32):

  logits                 [B, T, V]  every position, pads included
  loss                   [1]        mean cross-entropy over positions with target != -100
  n_tokens               [1]        number of such positions (as a float)
  <PREFIX><hf name>      gradient of `loss` for every parameter (PREFIX defaults to
                         "grad."); tied models have no lm_head gradient: the embedding
                         gradient includes both the input and the output use.

BATCH.json: {"input_ids": [[int]*T]*B, "targets": [[int]*T]*B}; targets[b][t] is the token
position t predicts (already shifted), -100 to ignore. Positions are 0..T-1 for every row;
the mask is causal only (plus the sliding window where the config enables one).

The computation runs in float64 by default (weights are upcast from the file's dtype).
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

IGNORE = -100


# ------------------------------------------------------------------------------ config

def resolve_config(raw):
    """HF config dict -> dict of the resolved quantities the model needs."""
    mt = raw.get("model_type")
    if mt not in ("llama", "mistral", "qwen2"):
        raise ValueError(f"config: model_type {mt!r} is not llama, mistral or qwen2")
    act = raw.get("hidden_act", "silu")
    if act != "silu":
        raise ValueError(f"config: hidden_act {act!r} is not supported (only silu)")
    if raw.get("mlp_bias", False):
        raise ValueError("config: mlp_bias = true is not supported")
    C = int(raw["hidden_size"])
    H = int(raw["num_attention_heads"])
    Hkv = int(raw.get("num_key_value_heads") or H)
    D = raw.get("head_dim")
    D = int(D) if D else C // H
    if H % Hkv:
        raise ValueError("config: num_attention_heads is not a multiple of num_key_value_heads")
    if D % 2:
        raise ValueError("config: head_dim must be even")
    L = int(raw["num_hidden_layers"])
    if mt == "qwen2":
        qkv_bias, o_bias = True, False
    elif mt == "llama":
        qkv_bias = o_bias = bool(raw.get("attention_bias", False))
    else:
        qkv_bias = o_bias = False
    # Sliding window per layer (0 = full causal attention).
    windows = [0] * L
    if mt == "mistral":
        sw = raw.get("sliding_window")
        if sw:
            windows = [int(sw)] * L
    elif mt == "qwen2":
        sw = raw.get("sliding_window")
        if raw.get("use_sliding_window", False) and sw:
            mwl = int(raw.get("max_window_layers", L))
            windows = [int(sw) if i >= mwl else 0 for i in range(L)]
    rs = raw.get("rope_scaling")
    rope = None
    if rs:
        rtype = rs.get("rope_type", rs.get("type"))
        if rtype == "llama3":
            rope = {
                "factor": float(rs["factor"]),
                "low_freq_factor": float(rs["low_freq_factor"]),
                "high_freq_factor": float(rs["high_freq_factor"]),
                "original_max_position_embeddings": int(rs["original_max_position_embeddings"]),
            }
        elif rtype not in (None, "default"):
            raise ValueError(f"config: rope_scaling type {rtype!r} is not supported")
    return {
        "model_type": mt,
        "hidden_size": C,
        "intermediate_size": int(raw["intermediate_size"]),
        "n_layers": L,
        "n_heads": H,
        "n_kv_heads": Hkv,
        "head_dim": D,
        "vocab_size": int(raw["vocab_size"]),
        "rms_norm_eps": float(raw.get("rms_norm_eps", 1e-6)),
        "rope_theta": float(raw.get("rope_theta", 10000.0)),
        "rope_llama3": rope,
        "tie": bool(raw.get("tie_word_embeddings", False)),
        "qkv_bias": qkv_bias,
        "o_bias": o_bias,
        "windows": windows,
    }


def param_names(cfg):
    """Expected HF tensor names with shapes, in storage order."""
    C, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    H, Hkv, D = cfg["n_heads"], cfg["n_kv_heads"], cfg["head_dim"]
    out = [("model.embed_tokens.weight", (V, C))]
    for i in range(cfg["n_layers"]):
        p = f"model.layers.{i}."
        out.append((p + "input_layernorm.weight", (C,)))
        for proj, rows in (("q", H * D), ("k", Hkv * D), ("v", Hkv * D)):
            out.append((p + f"self_attn.{proj}_proj.weight", (rows, C)))
            if cfg["qkv_bias"]:
                out.append((p + f"self_attn.{proj}_proj.bias", (rows,)))
        out.append((p + "self_attn.o_proj.weight", (C, H * D)))
        if cfg["o_bias"]:
            out.append((p + "self_attn.o_proj.bias", (C,)))
        out.append((p + "post_attention_layernorm.weight", (C,)))
        out.append((p + "mlp.gate_proj.weight", (I, C)))
        out.append((p + "mlp.up_proj.weight", (I, C)))
        out.append((p + "mlp.down_proj.weight", (C, I)))
    out.append(("model.norm.weight", (C,)))
    if not cfg["tie"]:
        out.append(("lm_head.weight", (V, C)))
    return out


def load_model(model_dir):
    """Returns (resolved cfg, {hf name: tensor in the file dtype})."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = resolve_config(json.load(f))
    single = os.path.join(model_dir, "model.safetensors")
    index = os.path.join(model_dir, "model.safetensors.index.json")
    tensors = {}
    if os.path.exists(single):
        tensors = st.load(single)
    elif os.path.exists(index):
        with open(index) as f:
            wm = json.load(f)["weight_map"]
        for fn in sorted(set(wm.values())):
            part = st.load(os.path.join(model_dir, fn))
            for n, t in part.items():
                if wm.get(n) != fn:
                    raise ValueError(f"{fn}: tensor {n} is not mapped to this shard")
                tensors[n] = t
    else:
        raise FileNotFoundError(f"{model_dir}: no model.safetensors or index")
    expected = param_names(cfg)
    if cfg["tie"] and "lm_head.weight" in tensors:
        print("llama_ref: tied model has lm_head.weight; ignored", file=sys.stderr)
        del tensors["lm_head.weight"]
    names = {n for n, _ in expected}
    missing = [n for n in names if n not in tensors]
    extra = [n for n in tensors if n not in names]
    if missing or extra:
        raise ValueError(f"{model_dir}: missing tensors {sorted(missing)}, "
                         f"unexpected tensors {sorted(extra)}")
    for n, shape in expected:
        if tuple(tensors[n].shape) != shape:
            raise ValueError(f"{model_dir}: tensor {n} has shape {list(tensors[n].shape)}, "
                             f"expected {list(shape)}")
    return cfg, {n: tensors[n] for n, _ in expected}


# ------------------------------------------------------------------------------ RoPE

def rope_inv_freq(cfg, dtype=torch.float64):
    """inv_freq [head_dim/2] = theta^(-2i/head_dim), with HF's llama3 scaling
    (_compute_llama3_parameters): wavelen = 2 pi / f; with low_wl = old / low_freq_factor and
    high_wl = old / high_freq_factor: wavelen < high_wl keeps f, wavelen > low_wl gives
    f / factor, otherwise (1 - s) f / factor + s f with s = (old / wavelen - low) / (high - low).
    Computed in float64."""
    D = cfg["head_dim"]
    i = torch.arange(0, D, 2, dtype=torch.float64)
    f = 1.0 / (cfg["rope_theta"] ** (i / D))
    r = cfg.get("rope_llama3")
    if r:
        factor, low, high = r["factor"], r["low_freq_factor"], r["high_freq_factor"]
        old = float(r["original_max_position_embeddings"])
        low_wl, high_wl = old / low, old / high
        wavelen = 2.0 * math.pi / f
        scaled = torch.where(wavelen > low_wl, f / factor, f)
        s = (old / wavelen - low) / (high - low)
        smoothed = (1.0 - s) * scaled / factor + s * scaled
        medium = (wavelen >= high_wl) & (wavelen <= low_wl)
        f = torch.where(medium, smoothed, scaled)
    return f.to(dtype)


def rope_cos_sin(cfg, T, dtype):
    """cos, sin [T, head_dim]: emb = cat(freqs, freqs) with freqs[t, i] = t * inv_freq[i]."""
    inv = rope_inv_freq(cfg, torch.float64)
    pos = torch.arange(T, dtype=torch.float64)
    freqs = pos[:, None] * inv[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def apply_rope(x, cos, sin):
    """x [B, heads, T, D]; the rotate_half (GPT-NeoX / HF Llama) convention: dimension i pairs
    with dimension i + D/2, not with i + 1."""
    return x * cos + rotate_half(x) * sin


# ------------------------------------------------------------------------------ model

def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def causal_mask(T, window):
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = j <= i
    if window:
        allowed = allowed & (i - j < window)
    return allowed


def linear(x, P, name):
    y = x @ P[name + ".weight"].t()
    b = P.get(name + ".bias")
    return y + b if b is not None else y


def forward(cfg, P, input_ids):
    """P: {hf name: tensor} (all the same float dtype). input_ids: LongTensor [B, T].
    Returns logits [B, T, V]."""
    B, T = input_ids.shape
    H, Hkv, D = cfg["n_heads"], cfg["n_kv_heads"], cfg["head_dim"]
    eps = cfg["rms_norm_eps"]
    emb = P["model.embed_tokens.weight"]
    dtype = emb.dtype
    x = emb[input_ids]
    cos, sin = rope_cos_sin(cfg, T, dtype)
    n_rep = H // Hkv
    for l in range(cfg["n_layers"]):
        p = f"model.layers.{l}."
        h = rms_norm(x, P[p + "input_layernorm.weight"], eps)
        q = linear(h, P, p + "self_attn.q_proj").view(B, T, H, D).transpose(1, 2)
        k = linear(h, P, p + "self_attn.k_proj").view(B, T, Hkv, D).transpose(1, 2)
        v = linear(h, P, p + "self_attn.v_proj").view(B, T, Hkv, D).transpose(1, 2)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        # repeat_kv: query head h uses kv head h // n_rep.
        k = k.repeat_interleave(n_rep, dim=1)
        v = v.repeat_interleave(n_rep, dim=1)
        scores = (q @ k.transpose(-1, -2)) * (D ** -0.5)
        allowed = causal_mask(T, cfg["windows"][l])
        scores = scores.masked_fill(~allowed, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        o = (probs @ v).transpose(1, 2).reshape(B, T, H * D)
        x = x + linear(o, P, p + "self_attn.o_proj")
        h = rms_norm(x, P[p + "post_attention_layernorm.weight"], eps)
        m = F.silu(linear(h, P, p + "mlp.gate_proj")) * linear(h, P, p + "mlp.up_proj")
        x = x + linear(m, P, p + "mlp.down_proj")
    x = rms_norm(x, P["model.norm.weight"], eps)
    head = P["model.embed_tokens.weight"] if cfg["tie"] else P["lm_head.weight"]
    return x @ head.t()


def loss_fn(logits, targets):
    """Mean cross-entropy over positions with target != -100; returns (loss, n_tokens).
    With no such position the loss is 0 (and every gradient 0)."""
    V = logits.shape[-1]
    flat_t = targets.reshape(-1)
    n = int((flat_t != IGNORE).sum())
    total = F.cross_entropy(logits.reshape(-1, V), flat_t, ignore_index=IGNORE, reduction="sum")
    return total / max(n, 1), n


def load_batch(path):
    with open(path) as f:
        b = json.load(f)
    ids = torch.tensor(b["input_ids"], dtype=torch.long)
    tg = torch.tensor(b["targets"], dtype=torch.long)
    if ids.dim() != 2 or ids.shape != tg.shape:
        raise ValueError(f"{path}: input_ids and targets must both be B x T")
    return ids, tg


def run(cfg, weights, ids, targets, dtype=torch.float64):
    """Forward + backward. Returns (logits, loss, n_tokens, {name: grad})."""
    V = cfg["vocab_size"]
    if int(ids.min()) < 0 or int(ids.max()) >= V:
        raise ValueError("input_ids out of range")
    ok = (targets == IGNORE) | ((targets >= 0) & (targets < V))
    if not bool(ok.all()):
        raise ValueError("targets must be -100 or in [0, vocab_size)")
    P = {n: t.to(dtype).clone().requires_grad_(True) for n, t in weights.items()}
    logits = forward(cfg, P, ids)
    loss, n = loss_fn(logits, targets)
    grads = torch.autograd.grad(loss, list(P.values()), allow_unused=True)
    g = {}
    for (name, t), gr in zip(P.items(), grads):
        g[name] = gr if gr is not None else torch.zeros_like(t)
    return logits.detach(), loss.detach(), n, g


def main(argv=None):
    ap = argparse.ArgumentParser(description="Llama-family PyTorch reference (logits, loss, grads)")
    ap.add_argument("--model", required=True, help="HF model folder")
    ap.add_argument("--batch", required=True, help="batch.json (input_ids, targets)")
    ap.add_argument("--out", required=True, help="output .safetensors (F32)")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    ap.add_argument("--grad-prefix", default="grad.", help='gradient name prefix ("grad.")')
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    dtype = torch.float64 if a.dtype == "float64" else torch.float32
    cfg, weights = load_model(a.model)
    ids, targets = load_batch(a.batch)
    logits, loss, n, grads = run(cfg, weights, ids, targets, dtype)
    out = {
        "logits": logits,
        "loss": loss.reshape(1),
        "n_tokens": torch.tensor([float(n)]),
    }
    for name, gr in grads.items():
        out[a.grad_prefix + name] = gr
    st.save(out, a.out, dtype="F32")
    return 0


if __name__ == "__main__":
    sys.exit(main())
