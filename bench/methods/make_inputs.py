#!/usr/bin/env python3
"""Writes a random Llama model folder (bf16) and random pre-tokenized data for benchmarks.

  make_inputs.py --out DIR --hidden 768 --layers 12 --heads 12 --kv-heads 12 \
                 --intermediate 2048 --vocab 32000 [--tied] --seq 256 --examples 64
Run with /usr/bin/python3 (Debian python3-torch).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "ref"))
import st  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--kv-heads", type=int, default=None)
    ap.add_argument("--intermediate", type=int, default=2048)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--tied", action="store_true")
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--examples", type=int, default=64)
    a = ap.parse_args()
    kv = a.kv_heads or a.heads
    C, I, V, hd = a.hidden, a.intermediate, a.vocab, a.hidden // a.heads
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": C,
           "intermediate_size": I, "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
           "num_key_value_heads": kv, "vocab_size": V, "max_position_embeddings": 4096,
           "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "hidden_act": "silu",
           "tie_word_embeddings": a.tied, "torch_dtype": "bfloat16"}
    g = torch.Generator().manual_seed(0)
    t = {"model.embed_tokens.weight": torch.randn(V, C, generator=g) * 0.02}
    for i in range(a.layers):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = torch.ones(C)
        t[p + "post_attention_layernorm.weight"] = torch.ones(C)
        for name, shape in [("self_attn.q_proj", (a.heads * hd, C)),
                            ("self_attn.k_proj", (kv * hd, C)),
                            ("self_attn.v_proj", (kv * hd, C)),
                            ("self_attn.o_proj", (C, a.heads * hd)),
                            ("mlp.gate_proj", (I, C)), ("mlp.up_proj", (I, C)),
                            ("mlp.down_proj", (C, I))]:
            t[p + name + ".weight"] = torch.randn(*shape, generator=g) * 0.02
    t["model.norm.weight"] = torch.ones(C)
    if not a.tied:
        t["lm_head.weight"] = torch.randn(V, C, generator=g) * 0.02
    os.makedirs(a.out, exist_ok=True)
    st.save({k: v.to(torch.bfloat16) for k, v in t.items()}, os.path.join(a.out, "model.safetensors"))
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(a.out, "train.jsonl"), "w") as f:
        for _ in range(a.examples):
            ids = torch.randint(3, V, (a.seq,), generator=g).tolist()
            labels = [-100] * (a.seq // 4) + ids[a.seq // 4:]
            f.write(json.dumps({"input_ids": ids, "labels": labels}) + "\n")


if __name__ == "__main__":
    main()
