#!/usr/bin/env python3
"""Masked-LM evaluation of a RobertaForMaskedLM / BertForMaskedLM folder with the PyTorch
reference (bert_ref.py's forward, float32) on a tokenized JSONL file ({"input_ids": [...]} per
line, one sequence each), masked exactly as `badam train --objective mlm` validates it
(mlm_mask_ref.py: unit = the line's index, epoch 0, the run's --seed; special tokens from the
tokenizer's added_tokens): prints the mean cross-entropy over the masked positions and the
masked-token accuracy (argmax = the original token), as JSON.

  mlm_eval_ref.py --model DIR --data val.jsonl [--seed 42] [--limit N]
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_ref  # noqa: E402
import mlm_mask_ref  # noqa: E402
import st  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    with open(os.path.join(a.model, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(a.model, "tokenizer.json")) as f:
        tok = json.load(f)
    # the tokenizer's size as badam counts it: the model's ids and the added tokens'
    vocab = 1 + max(list(tok["model"]["vocab"].values()) + [t["id"] for t in tok["added_tokens"]])
    ids_of = {t["content"]: t["id"] for t in tok["added_tokens"]}
    special = {t["id"] for t in tok["added_tokens"] if t.get("special")}
    mask_id = ids_of.get("<mask>", ids_of.get("[MASK]"))
    raw = st.load(os.path.join(a.model, "model.safetensors"))
    P = {n: raw[n].float() for n in bert_ref.param_names(cfg)}
    loss_sum, n, right = 0.0, 0, 0
    with open(a.data) as f:
        rows = [json.loads(line)["input_ids"] for line in f if line.strip()]
    if a.limit:
        rows = rows[: a.limit]
    with torch.no_grad():
        for unit, ids in enumerate(rows):
            inp, tgt = mlm_mask_ref.mask_row(a.seed, 0, unit, ids, vocab, mask_id, special, 0.15)
            if all(t == -100 for t in tgt):
                continue
            x = torch.tensor([inp])
            logits = bert_ref.forward(cfg, P, x, torch.ones_like(x), torch.zeros_like(x))[0]
            t = torch.tensor(tgt)
            keep = t != -100
            loss_sum += float(F.cross_entropy(logits[keep], t[keep], reduction="sum"))
            right += int((logits[keep].argmax(-1) == t[keep]).sum())
            n += int(keep.sum())
    print(json.dumps({"sequences": len(rows), "masked": n, "loss": loss_sum / n,
                      "accuracy": right / n, "perplexity": math.exp(loss_sum / n)}))


if __name__ == "__main__":
    main()
