#!/usr/bin/env python3
"""Writes training fixtures for train_ref.py and the C trainer.

  make_train_fixture.py --out DIR [--seed S] [--n N] [--vocab V | --model MODEL_DIR]
                        [--min-len A] [--max-len B] [--n-masked M]
  make_train_fixture.py --adapter DIR --model MODEL_DIR [--rank R] [--alpha A]
                        [--targets q_proj v_proj ...] [--std 0.05] [--seed S]

Data mode (--out): DIR/train.jsonl holds N examples {"input_ids": [...], "labels": [...]}
(one per line). Lengths are uniform in [A, B] (so micro-batches get padded); ids are uniform
in [3, V) (0 = pad, 1 = bos, 2 = eos are never drawn); each example has a random prompt
prefix of 1..L-1 positions labelled -100 and the rest labelled with its ids (labels[i] ==
input_ids[i]), so every example has at least one target. The last M examples
(--n-masked, default 0) have every label -100 (no targets at all). V comes from --vocab or
from MODEL_DIR/config.json.

Adapter mode (--adapter): a PEFT-layout LoRA adapter folder for MODEL_DIR with random nonzero
A [r, in] and B [out, r] (both N(0, std^2), F32) on every linear whose module name ends with
one of --targets: DIR/adapter_model.safetensors (names
base_model.model.<hf module name>.lora_A.weight / .lora_B.weight) and DIR/adapter_config.json
(peft_type LORA, r, lora_alpha, target_modules, lora_dropout 0, bias none).

Both modes may be given in one call. Same arguments give the same bytes.
"""
import argparse
import json
import os
import random
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import llama_ref as ref  # noqa: E402
import st  # noqa: E402
import train_ref  # noqa: E402

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_examples(n, vocab, min_len, max_len, seed, n_masked=0):
    if vocab <= 3:
        raise ValueError("vocab must be > 3")
    if not 2 <= min_len <= max_len:
        raise ValueError("need 2 <= min-len <= max-len")
    rng = random.Random(seed * 1000003 + 11)
    out = []
    for i in range(n):
        L = rng.randint(min_len, max_len)
        ids = [rng.randrange(3, vocab) for _ in range(L)]
        if i >= n - n_masked:
            labels = [-100] * L
        else:
            p = rng.randint(1, L - 1)
            labels = [-100] * p + ids[p:]
        out.append({"input_ids": ids, "labels": labels})
    return out


def write_jsonl(examples, path):
    with open(path, "w") as f:
        for ex in examples:
            f.write(json.dumps(ex, separators=(",", ":")) + "\n")


def make_adapter(model_dir, out_dir, rank, alpha, targets, std=0.05, seed=0):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = ref.resolve_config(json.load(f))
    mods = train_ref.lora_modules(cfg, targets)
    if not mods:
        raise ValueError(f"no linear module matches targets {targets}")
    g = torch.Generator().manual_seed(seed * 7 + 3)
    tensors = {}
    for m in mods:
        fin, fout = train_ref.lora_shapes(cfg, m)
        na, nb = train_ref.peft_names(m)
        tensors[na] = std * torch.randn(rank, fin, generator=g, dtype=torch.float32)
        tensors[nb] = std * torch.randn(fout, rank, generator=g, dtype=torch.float32)
    os.makedirs(out_dir, exist_ok=True)
    st.save(tensors, os.path.join(out_dir, "adapter_model.safetensors"), dtype="F32")
    ac = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": alpha,
          "target_modules": list(targets), "lora_dropout": 0.0, "bias": "none",
          "fan_in_fan_out": False, "use_rslora": False,
          "base_model_name_or_path": os.path.abspath(model_dir)}
    with open(os.path.join(out_dir, "adapter_config.json"), "w") as f:
        json.dump(ac, f, indent=2)
        f.write("\n")
    return tensors


def make_bottleneck(model_dir, out_dir, size, std=0.05, seed=0):
    """A bottleneck adapter folder (docs/file-formats.md) with random nonzero D, d, U, u for
    every layer's attention and MLP site, so every tensor gets a gradient from the first step."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = ref.resolve_config(json.load(f))
    C = cfg["hidden_size"]
    g = torch.Generator().manual_seed(seed * 7 + 5)
    tensors = {}
    for name in train_ref.bottleneck_names(cfg):
        shape = train_ref.bottleneck_shape(name, C, size)
        tensors[name] = std * torch.randn(*shape, generator=g, dtype=torch.float32)
    os.makedirs(out_dir, exist_ok=True)
    st.save(tensors, os.path.join(out_dir, "adapter_model.safetensors"), dtype="F32")
    train_ref.write_bottleneck_config(out_dir, cfg, size, os.path.abspath(model_dir))
    return tensors


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="data mode: folder for train.jsonl (created)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=16, help="number of examples (default 16)")
    ap.add_argument("--vocab", type=int, help="vocabulary size (default: from --model)")
    ap.add_argument("--min-len", type=int, default=4)
    ap.add_argument("--max-len", type=int, default=12)
    ap.add_argument("--n-masked", type=int, default=0,
                    help="the last M examples have every label -100")
    ap.add_argument("--adapter", help="adapter mode: output PEFT adapter folder (created)")
    ap.add_argument("--model", help="model folder (vocab for data mode; shapes for adapters)")
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=8.0)
    ap.add_argument("--targets", nargs="+", default=DEFAULT_TARGETS)
    ap.add_argument("--std", type=float, default=0.05)
    ap.add_argument("--bottleneck", type=int, default=0,
                    help="adapter mode: a bottleneck adapter folder of this width instead of LoRA")
    a = ap.parse_args(argv)
    if not a.out and not a.adapter:
        ap.error("give --out (data) and/or --adapter (LoRA adapter)")
    if a.out:
        vocab = a.vocab
        if vocab is None:
            if not a.model:
                ap.error("data mode needs --vocab or --model")
            with open(os.path.join(a.model, "config.json")) as f:
                vocab = int(json.load(f)["vocab_size"])
        if not 0 <= a.n_masked <= a.n or a.n < 1:
            ap.error("need n >= 1 and 0 <= n-masked <= n")
        os.makedirs(a.out, exist_ok=True)
        write_jsonl(make_examples(a.n, vocab, a.min_len, a.max_len, a.seed, a.n_masked),
                    os.path.join(a.out, "train.jsonl"))
    if a.adapter:
        if not a.model:
            ap.error("adapter mode needs --model")
        alpha = int(a.alpha) if float(a.alpha).is_integer() else a.alpha
        if a.bottleneck:
            make_bottleneck(a.model, a.adapter, a.bottleneck, a.std, a.seed)
        else:
            make_adapter(a.model, a.adapter, a.rank, alpha, a.targets, a.std, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
