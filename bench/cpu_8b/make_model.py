"""Writes a random Llama model folder for bench/cpu_8b: config.json, bf16 safetensors shards
(model-0000i-of-0000N.safetensors + model.safetensors.index.json, as Hugging Face shards an 8B
model) and a pre-tokenized JSONL dataset. No tokenizer.json: the data is token ids, so badam
needs none.

Values are normal(0, 1) * 0.02 stored as bf16 (norm weights 1), generated from a seeded torch
generator in pieces of at most PIECE elements and written as they are made, so writing the 16 GB
of an 8B folder holds about 50 MB of Python memory, never a whole tensor.

usage: make_model.py --shape 8b|8b-2l|1b|tiny --out DIR [--examples N] [--seq S] [--seed N]
       make_model.py --shape 8b --out DIR --config-only     (config.json alone, for badam plan)
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from llama_folder import numel, param_shapes, safetensors_header  # noqa: E402

SHAPES = {
    # Llama-3-8B: hidden 4096, intermediate 14336, 32 layers, 32 heads, 8 kv heads,
    # vocab 128256, untied lm_head.
    "8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
               tie_word_embeddings=False, rope_theta=500000.0),
    # Llama-3-8B's widths and vocabulary with 2 layers: the same matrices (GEMM buffers, logits)
    # at 6.5 GiB; 8B time per step ~ head + 16 x (this step - head).
    "8b-2l": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=2,
                  num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                  tie_word_embeddings=False, rope_theta=500000.0),
    # 1B development shape (TinyLlama widths, 16 layers): same code path, a seventh of the bytes.
    "1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=16,
               num_attention_heads=32, num_key_value_heads=8, vocab_size=32000,
               tie_word_embeddings=False, rope_theta=10000.0),
    # Smoke shape for the script itself (seconds).
    "tiny": dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                 num_attention_heads=8, num_key_value_heads=4, vocab_size=1000,
                 tie_word_embeddings=False, rope_theta=10000.0),
}

PIECE = 1 << 23  # elements generated at a time (32 MiB of fp32)
SHARD_BYTES = 5 << 30  # Hugging Face's default max shard size (5 GB), here 5 GiB


def config_of(shape, seq):
    cfg = dict(SHAPES[shape])
    cfg.update(architectures=["LlamaForCausalLM"], model_type="llama",
               max_position_embeddings=max(8192, seq), rms_norm_eps=1e-5, hidden_act="silu",
               attention_bias=False, bos_token_id=1, eos_token_id=2, torch_dtype="bfloat16")
    return cfg



def folder_bytes(shape):
    """Bytes of the safetensors data of a shape (bf16), without headers."""
    return sum(numel(s) * 2 for _, s in param_shapes(config_of(shape, 512)))


def split_shards(shapes):
    """Consecutive groups of tensors of at most SHARD_BYTES each (a larger tensor alone)."""
    shards, cur, size = [], [], 0
    for name, shape in shapes:
        n = numel(shape) * 2
        if cur and size + n > SHARD_BYTES:
            shards.append(cur)
            cur, size = [], 0
        cur.append((name, shape))
        size += n
    if cur:
        shards.append(cur)
    return shards


def write_tensor(f, torch, g, name, shape):
    n = numel(shape)
    if name.endswith("norm.weight"):
        f.write(torch.ones(n).to(torch.bfloat16).view(torch.int16).numpy().tobytes())
        return
    done = 0
    while done < n:
        k = min(PIECE, n - done)
        t = torch.randn(k, generator=g).mul_(0.02).to(torch.bfloat16)
        f.write(memoryview(t.view(torch.int16).numpy()))
        done += k


def write_shard(path, torch, g, tensors):
    header, off = safetensors_header(tensors)
    with open(path, "wb") as f:
        f.write(header)
        for name, shape in tensors:
            write_tensor(f, torch, g, name, shape)
    return off


def write_weights(out, cfg, seed):
    import torch  # here, so that the driver can read SHAPES without loading torch

    g = torch.Generator().manual_seed(seed)
    shards = split_shards(param_shapes(cfg))
    weight_map, total = {}, 0
    for i, tensors in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        total += write_shard(os.path.join(out, fname), torch, g, tensors)
        for name, _ in tensors:
            weight_map[name] = fname
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def write_data(path, vocab, examples, seq, seed):
    """Pre-tokenized JSONL: `examples` records of `seq` random ids in [3, vocab), labels = ids."""
    import random

    r = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(examples):
            ids = [r.randrange(3, vocab) for _ in range(seq)]
            f.write(json.dumps({"input_ids": ids, "labels": ids}) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="8b", choices=sorted(SHAPES))
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", help="write the JSONL dataset here (default OUT/train.jsonl)")
    ap.add_argument("--examples", type=int, default=16)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config-only", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    cfg = config_of(a.shape, a.seq)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if a.config_only:
        return
    write_data(a.data or os.path.join(a.out, "train.jsonl"), cfg["vocab_size"], a.examples, a.seq,
               a.seed)
    write_weights(a.out, cfg, a.seed)


if __name__ == "__main__":
    main()
