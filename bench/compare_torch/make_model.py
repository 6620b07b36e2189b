"""Writes a random Llama model folder (config.json + model.safetensors, bf16) and a pre-tokenized
JSONL dataset for bench/compare_torch. Tensors are generated and written one at a time (seeded),
so a 1.2B model needs no more than one tensor in memory.

usage: make_model.py --size 130m|1b|tiny --out DIR [--examples N] [--seq S] [--seed N]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from llama_folder import param_shapes, safetensors_header  # noqa: E402

CONFIGS = {
    # ~130M: hidden 768, 12 layers, 12 heads, intermediate 2048, vocab 32000.
    "130m": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                 num_attention_heads=12, num_key_value_heads=12, vocab_size=32000,
                 tie_word_embeddings=False, rope_theta=10000.0),
    # Llama-3.2-1B shape: hidden 2048, intermediate 8192, 16 layers, 32 heads, 8 kv heads,
    # vocab 128256, tied embeddings.
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
               num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
               tie_word_embeddings=True, rope_theta=500000.0),
    # Tiny, for a smoke run of the bench itself.
    "tiny": dict(hidden_size=128, intermediate_size=352, num_hidden_layers=4,
                 num_attention_heads=4, num_key_value_heads=2, vocab_size=1000,
                 tie_word_embeddings=False, rope_theta=10000.0),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="130m", choices=sorted(CONFIGS))
    ap.add_argument("--out", required=True)
    ap.add_argument("--examples", type=int, default=64)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    import torch  # here, so that compare.py can read CONFIGS without loading torch

    os.makedirs(a.out, exist_ok=True)
    cfg = dict(CONFIGS[a.size])
    cfg.update(architectures=["LlamaForCausalLM"], model_type="llama",
               max_position_embeddings=max(2048, a.seq), rms_norm_eps=1e-5, hidden_act="silu",
               attention_bias=False, bos_token_id=1, eos_token_id=2, torch_dtype="bfloat16")
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)

    shapes = param_shapes(cfg)
    header, _ = safetensors_header(shapes)
    g = torch.Generator().manual_seed(a.seed)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(header)
        for name, shape in shapes:
            if name.endswith("norm.weight"):
                t = torch.ones(shape)
            else:
                t = torch.randn(shape, generator=g) * 0.02
            f.write(t.to(torch.bfloat16).view(torch.int16).numpy().tobytes())
            del t

    V = cfg["vocab_size"]
    with open(os.path.join(a.out, "train.jsonl"), "w") as f:
        for _ in range(a.examples):
            ids = torch.randint(3, V, (a.seq,), generator=g).tolist()
            f.write(json.dumps({"input_ids": ids, "labels": ids}) + "\n")


if __name__ == "__main__":
    main()
