#!/usr/bin/env python3
"""Greedy decoding reference for `badam generate`.

  generate_ref.py --model DIR --prompt-ids 1,5,7 --max-new-tokens N --out OUT.json
                  [--eos ID ...] [--dtype float64|float32]
  generate_ref.py --jobs JOBS.json

JOBS.json is a list of {"model", "prompt_ids", "max_new_tokens", "out", optional "eos",
"preset" (with "seed", "dtype" F32|BF16: make_tiny_model.py writes the model folder first)}:
many models in one process, so torch is imported once.

Rebuilds the model with llama_ref.py's forward (Hugging Face semantics, float64 by default) and
decodes greedily without any cache: at each step the whole sequence is run again and the next
token is argmax of the last position's logits (torch.argmax: the first index among equal
maxima). Stops after N new tokens or at a token listed in --eos (which is not part of the output).

OUT.json: {"ids": [new token ids], "margins": [top1 - top2 logit at each step],
           "stopped_at_eos": bool}
The margins let a test tell a real divergence from an fp32-vs-fp64 near-tie.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402
import make_tiny_model  # noqa: E402


def greedy(cfg, weights, prompt, max_new, eos, dtype):
    P = {n: t.to(dtype) for n, t in weights.items()}
    ids = list(prompt)
    out, margins, hit_eos = [], [], False
    with torch.no_grad():
        for _ in range(max_new):
            logits = llama_ref.forward(cfg, P, torch.tensor([ids], dtype=torch.long))[0, -1]
            top = torch.topk(logits, 2).values
            nxt = int(torch.argmax(logits))
            margins.append(float(top[0] - top[1]))
            if nxt in eos:
                hit_eos = True
                break
            out.append(nxt)
            ids.append(nxt)
    return out, margins, hit_eos


def run_job(model, prompt, max_new, eos, out, dtype):
    if not prompt:
        raise ValueError("the prompt is empty")
    cfg, weights = llama_ref.load_model(model)
    ids, margins, hit = greedy(cfg, weights, prompt, max_new, set(eos), dtype)
    with open(out, "w") as f:
        json.dump({"ids": ids, "margins": margins, "stopped_at_eos": hit}, f)


def main(argv=None):
    ap = argparse.ArgumentParser(description="greedy decoding with the PyTorch Llama reference")
    ap.add_argument("--model")
    ap.add_argument("--prompt-ids", help="comma-separated prompt token ids")
    ap.add_argument("--max-new-tokens", type=int)
    ap.add_argument("--eos", type=int, nargs="*", default=[])
    ap.add_argument("--out")
    ap.add_argument("--jobs", help="JSON list of jobs (see the module docstring)")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    dtype = torch.float64 if a.dtype == "float64" else torch.float32
    if a.jobs:
        with open(a.jobs) as f:
            jobs = json.load(f)
        for j in jobs:
            if j.get("preset"):
                make_tiny_model.main(["--out", j["model"], "--preset", j["preset"],
                                      "--seed", str(j.get("seed", 0)),
                                      "--dtype", j.get("dtype", "F32")])
            run_job(j["model"], [int(x) for x in j["prompt_ids"]], int(j["max_new_tokens"]),
                    j.get("eos", []), j["out"], dtype)
        return 0
    if not (a.model and a.prompt_ids and a.max_new_tokens is not None and a.out):
        ap.error("--model, --prompt-ids, --max-new-tokens and --out are required without --jobs")
    prompt = [int(x) for x in a.prompt_ids.split(",") if x.strip()]
    run_job(a.model, prompt, a.max_new_tokens, a.eos, a.out, dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
