#!/usr/bin/env python3
"""Writes a tiny random Hugging Face-style Llama-family model folder plus a test batch.

  make_tiny_model.py --out DIR --preset NAME [--seed S] [--dtype F32|BF16] [--shards N]

DIR receives:
  config.json          HF config (model_type, architectures, sizes, rope, bias flags, ...)
  model.safetensors    random weights with HF tensor names (or, with --shards N > 1,
                       model-0000k-of-0000N.safetensors + model.safetensors.index.json)
  batch.json           {"input_ids": [[...] * T] * B, "targets": [[...] * T] * B}

targets[b][t] is the token that position t predicts (input_ids[b][t+1]) or -100 when the
position is left out of the loss: the last real position of each sequence, every padded
position (right padding, pad id 0) and a random prompt prefix of 1..3 positions.

Presets: see PRESETS below (`--list` prints them).
"""
import argparse
import json
import math
import os
import random
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

PAD_ID = 0
BOS_ID = 1
EOS_ID = 2

# Each preset: "config" (merged over the model type's base config) and "batch"
# (B, T, lengths of the real part of each sequence; len(lengths) == B).
PRESETS = {
    # Qwen2: GQA 8 q heads / 2 kv heads, tied embeddings, q/k/v biases (no o_proj bias).
    "gqa_tied_bias": {
        "config": {
            "model_type": "qwen2",
            "architectures": ["Qwen2ForCausalLM"],
            "hidden_size": 64,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,
            "vocab_size": 101,
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "tie_word_embeddings": True,
            "max_position_embeddings": 64,
            "use_sliding_window": False,
            "sliding_window": 4096,
            "max_window_layers": 2,
        },
        "batch": {"B": 2, "T": 12, "lengths": [12, 12]},
    },
    # Llama with llama3 rope scaling, untied, right-padded batch. head_dim 8, theta 5e5,
    # original_max_position_embeddings 16: inv_freq[0] (wavelen 2*pi) falls in the smooth
    # band, inv_freq[1..3] are divided by the factor.
    "untied_pad_llama3": {
        "config": {
            "model_type": "llama",
            "architectures": ["LlamaForCausalLM"],
            "hidden_size": 48,
            "intermediate_size": 80,
            "num_hidden_layers": 3,
            "num_attention_heads": 6,
            "num_key_value_heads": 3,
            "vocab_size": 97,
            "rms_norm_eps": 1e-5,
            "rope_theta": 500000.0,
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 16,
            },
            "tie_word_embeddings": False,
            "attention_bias": False,
            "max_position_embeddings": 128,
        },
        "batch": {"B": 3, "T": 10, "lengths": [10, 7, 4]},
    },
    # Mistral with an explicit head_dim: q dim = 4 * 16 = 64 != hidden 32.
    "mistral_headdim": {
        "config": {
            "model_type": "mistral",
            "architectures": ["MistralForCausalLM"],
            "hidden_size": 32,
            "head_dim": 16,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "vocab_size": 89,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "tie_word_embeddings": False,
            "max_position_embeddings": 64,
            "sliding_window": None,
        },
        "batch": {"B": 2, "T": 8, "lengths": [8, 8]},
    },
    # Llama with attention_bias: q, k, v AND o_proj biases; tied.
    "llama_bias": {
        "config": {
            "model_type": "llama",
            "architectures": ["LlamaForCausalLM"],
            "hidden_size": 32,
            "intermediate_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "vocab_size": 67,
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "tie_word_embeddings": True,
            "attention_bias": True,
            "max_position_embeddings": 64,
        },
        "batch": {"B": 2, "T": 9, "lengths": [9, 9]},
    },
    # Llama3 rope scaling with a frequency in every regime (head_dim 16, theta 1e4,
    # original 64 -> high_freq_wavelen 16, low_freq_wavelen 64): inv_freq[0] kept
    # (wavelen 6.28), inv_freq[1] and [2] in the smooth band (19.87, 62.83), [3..7] divided.
    "llama3_regimes": {
        "config": {
            "model_type": "llama",
            "architectures": ["LlamaForCausalLM"],
            "hidden_size": 64,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "vocab_size": 71,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
            "tie_word_embeddings": False,
            "attention_bias": False,
            "max_position_embeddings": 256,
        },
        "batch": {"B": 2, "T": 10, "lengths": [10, 10]},
    },
    # Mistral with a sliding window shorter than the sequence: position i attends to
    # positions j with i - window < j <= i (window tokens including itself; HF convention).
    "mistral_swa": {
        "config": {
            "model_type": "mistral",
            "architectures": ["MistralForCausalLM"],
            "hidden_size": 32,
            "intermediate_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 1,
            "vocab_size": 59,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "tie_word_embeddings": False,
            "max_position_embeddings": 64,
            "sliding_window": 3,
        },
        "batch": {"B": 2, "T": 8, "lengths": [8, 6]},
    },
}


def make_config(preset, dtype):
    cfg = {
        "hidden_act": "silu",
        "initializer_range": 0.02,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "pad_token_id": PAD_ID,
        "use_cache": True,
        "attention_dropout": 0.0,
        "transformers_version": "4.44.0",
    }
    cfg.update(PRESETS[preset]["config"])
    if cfg["model_type"] == "llama":
        cfg.setdefault("mlp_bias", False)
        cfg.setdefault("pretraining_tp", 1)
    cfg["torch_dtype"] = {"F32": "float32", "BF16": "bfloat16"}[dtype]
    return cfg


def param_specs(cfg):
    """[(hf_name, shape, kind)] in storage order; kind in {embed, norm, q, k, v, o, bias,
    gate, up, down, head}."""
    C = cfg["hidden_size"]
    I = cfg["intermediate_size"]
    V = cfg["vocab_size"]
    H = cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads") or H
    D = cfg.get("head_dim") or C // H
    mt = cfg["model_type"]
    qkv_bias = mt == "qwen2" or (mt == "llama" and cfg.get("attention_bias", False))
    o_bias = mt == "llama" and cfg.get("attention_bias", False)
    specs = [("model.embed_tokens.weight", [V, C], "embed")]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        specs.append((p + "input_layernorm.weight", [C], "norm"))
        specs.append((p + "self_attn.q_proj.weight", [H * D, C], "q"))
        if qkv_bias:
            specs.append((p + "self_attn.q_proj.bias", [H * D], "bias"))
        specs.append((p + "self_attn.k_proj.weight", [Hkv * D, C], "k"))
        if qkv_bias:
            specs.append((p + "self_attn.k_proj.bias", [Hkv * D], "bias"))
        specs.append((p + "self_attn.v_proj.weight", [Hkv * D, C], "v"))
        if qkv_bias:
            specs.append((p + "self_attn.v_proj.bias", [Hkv * D], "bias"))
        specs.append((p + "self_attn.o_proj.weight", [C, H * D], "o"))
        if o_bias:
            specs.append((p + "self_attn.o_proj.bias", [C], "bias"))
        specs.append((p + "post_attention_layernorm.weight", [C], "norm"))
        specs.append((p + "mlp.gate_proj.weight", [I, C], "gate"))
        specs.append((p + "mlp.up_proj.weight", [I, C], "up"))
        specs.append((p + "mlp.down_proj.weight", [C, I], "down"))
    specs.append(("model.norm.weight", [C], "norm"))
    if not cfg.get("tie_word_embeddings", False):
        specs.append(("lm_head.weight", [V, C], "head"))
    return specs


# Standard deviations: chosen so that logits are O(1) and attention is visibly non-uniform.
_STD = {"embed": 0.1, "q": 0.12, "k": 0.12, "v": 0.1, "o": 0.1, "gate": 0.1, "up": 0.1,
        "down": 0.1, "head": 0.12}


def make_weights(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape, kind in param_specs(cfg):
        x = torch.randn(shape, generator=g, dtype=torch.float32)
        if kind == "norm":
            x = 1.0 + 0.1 * x
        elif kind == "bias":
            x = 0.1 * x
        else:
            x = _STD[kind] * x
        out[name] = x
    return out


def make_batch(cfg, preset, seed):
    spec = PRESETS[preset]["batch"]
    B, T, lengths = spec["B"], spec["T"], spec["lengths"]
    assert len(lengths) == B and all(2 <= L <= T for L in lengths)
    V = cfg["vocab_size"]
    rng = random.Random(seed * 7919 + 17)
    ids, tg = [], []
    for b in range(B):
        L = lengths[b]
        row = [rng.randrange(3, V) for _ in range(L)]
        if b == 0 and L >= 4:
            row[3] = row[1]  # a repeated token: its embedding gradient accumulates
        row += [PAD_ID] * (T - L)
        tgt = [row[t + 1] if t < L - 1 else -100 for t in range(T)]
        n_prompt = rng.randint(1, min(3, L - 2))
        for t in range(n_prompt):
            tgt[t] = -100
        ids.append(row)
        tg.append(tgt)
    return {"input_ids": ids, "targets": tg}


def write_weights(weights, out, dtype, shards):
    names = list(weights)
    if shards <= 1:
        st.save(weights, os.path.join(out, "model.safetensors"), dtype=dtype)
        return
    per = math.ceil(len(names) / shards)
    weight_map = {}
    total = 0
    for k in range(shards):
        part = names[k * per:(k + 1) * per]
        fn = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        st.save({n: weights[n] for n in part}, os.path.join(out, fn), dtype=dtype)
        for n in part:
            weight_map[n] = fn
            total += weights[n].numel() * (4 if dtype == "F32" else 2)
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="output folder (created)")
    ap.add_argument("--preset", choices=sorted(PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=["F32", "BF16"], default="F32")
    ap.add_argument("--shards", type=int, default=1, help="write N shards + index (default 1)")
    ap.add_argument("--list", action="store_true", help="print the preset names and exit")
    a = ap.parse_args(argv)
    if a.list:
        print("\n".join(sorted(PRESETS)))
        return 0
    if not a.out or not a.preset:
        ap.error("--out and --preset are required")
    os.makedirs(a.out, exist_ok=True)
    cfg = make_config(a.preset, a.dtype)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    write_weights(make_weights(cfg, a.seed), a.out, a.dtype, a.shards)
    with open(os.path.join(a.out, "batch.json"), "w") as f:
        json.dump(make_batch(cfg, a.preset, a.seed), f)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
