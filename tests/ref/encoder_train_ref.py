#!/usr/bin/env python3
"""PyTorch reference trainer for encoders on task examples (BAdam, Adam, SGD-BCD), for
tests/test_encoder_train.c. The model math is bert_ref.forward (HF's BERT / RoBERTa, no dropout);
AdamW, clipping and the schedule are train_ref's (torch.optim.AdamW, clip_grad_norm_, HF's
LambdaLR schedules).

  encoder_train_ref.py make --out DIR --tokenizer FILE --type bert|roberta --head seq|choice
                            [--labels N] [--seed S]
      a random tiny *ForSequenceClassification / *ForMultipleChoice folder (dropout 0) whose
      vocabulary covers the tokenizer, with the tokenizer.json copied in
  encoder_train_ref.py many JOBS.json
      the runs JOBS.json lists (each an argument list of make or train), in one process
  encoder_train_ref.py train --model DIR --data SEGMENTS.json --config CONF.json --out OUT
      trains max_steps optimizer steps and writes every parameter to OUT (safetensors, F32)
      but the attention key biases and a multiple-choice classifier's bias (their gradient is 0
      in exact arithmetic: see train())

SEGMENTS.json: {"examples": [{"a": [ids], "b": [ids] | null, "choices": [[ids], ...] | null,
"label": int}]}: each example's segments tokenized without special tokens. This file builds the
rows itself: [CLS] a [SEP] b [SEP] with token types 0 | 1 (a TemplateProcessing tokenizer) or
<s> a </s></s> b </s> with types 0 (RobertaProcessing), the pair cut to seq_len by
"longest_first" (tokens are removed from the end of the longer segment, on equal lengths from the
segment that was shorter at the start, the second when they started equal), right-padded with
config.json's pad_token_id. Batches: batch_size examples (choice sets: questions) in file order,
epoch after epoch, the last batch of an epoch short. Loss of a step: the summed cross-entropy over
its labelled examples / their count. BAdam: blocks = encoder layers in ascending order, switch
every switch_every steps (Adam state discarded), the head (pooler, classifier) trained in every
block, the embeddings never; SGD-BCD the same blocks with plain SGD (train_ref.sgd_update).
Weight decay on matrices only.

CONF.json: method, lr, beta1, beta2, eps, weight_decay, schedule, warmup_steps, clip,
batch_size, grad_accum, max_steps, switch_every, seq_len.
"""
import argparse
import json
import math
import os
import shutil
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bert_ref  # noqa: E402
import st  # noqa: E402
import train_ref  # noqa: E402

IGNORE = -100


def make(args):
    with open(args.tokenizer) as f:
        tj = json.load(f)
    ids = list(tj["model"]["vocab"].values()) + [t["id"] for t in tj.get("added_tokens", [])]
    V = max(ids) + 1
    roberta = args.type == "roberta"
    pad = 0
    for t in tj.get("added_tokens", []):
        if t["content"] in ("[PAD]", "<pad>"):
            pad = t["id"]
    arch = ("Roberta" if roberta else "Bert") + (
        "ForMultipleChoice" if args.head == "choice" else "ForSequenceClassification")
    cfg = {"architectures": [arch], "model_type": args.type, "hidden_size": 16,
           "intermediate_size": 24, "num_hidden_layers": 3, "num_attention_heads": 2,
           "vocab_size": V, "max_position_embeddings": (pad + 2 if roberta else 0) + 48,
           "type_vocab_size": 1 if roberta else 2,
           "layer_norm_eps": 1e-5 if roberta else 1e-12, "hidden_act": "gelu",
           "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
           "classifier_dropout": None, "position_embedding_type": "absolute",
           "pad_token_id": pad, "torch_dtype": "float32"}
    if args.head == "seq":
        cfg["id2label"] = {str(i): f"LABEL_{i}" for i in range(args.labels)}
        cfg["label2id"] = {f"LABEL_{i}": i for i in range(args.labels)}
    g = torch.Generator().manual_seed(args.seed)
    tensors = {}
    for n, shp in bert_ref.shapes(cfg).items():
        if "LayerNorm.weight" in n:
            t = 1.0 + 0.1 * torch.randn(shp, generator=g)
        elif n.endswith("bias") or "LayerNorm" in n:
            t = 0.1 * torch.randn(shp, generator=g)
        else:
            t = 0.3 * torch.randn(shp, generator=g)
        tensors[n] = t
    os.makedirs(args.out, exist_ok=True)
    st.save(tensors, os.path.join(args.out, "model.safetensors"))
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    shutil.copy(args.tokenizer, os.path.join(args.out, "tokenizer.json"))


# ------------------------------------------------------------------------------ rows

def specials(model_dir):
    with open(os.path.join(model_dir, "tokenizer.json")) as f:
        pp = json.load(f)["post_processor"]
    if pp["type"] == "RobertaProcessing":
        return "roberta", pp["cls"][1], pp["sep"][1]
    sp = pp["special_tokens"]
    return "bert", sp["[CLS]"]["ids"][0], sp["[SEP]"]["ids"][0]


def longest_first(la, lb, budget):
    a, b = la, lb
    while a + b > budget:
        if a > b:
            a -= 1
        elif b > a:
            b -= 1
        elif la > lb:  # equal now: cut the one that was shorter
            b -= 1
        else:
            a -= 1
    return a, b


def row(a, b, layout, cls, sep, seq_len):
    n_special = (4 if layout == "roberta" else 3) if b is not None else 2
    ka, kb = longest_first(len(a), len(b) if b is not None else 0, seq_len - n_special)
    a = a[:ka]
    if b is None:
        return [cls] + a + [sep], [0] * (ka + 2)
    b = b[:kb]
    if layout == "roberta":
        return [cls] + a + [sep, sep] + b + [sep], [0] * (ka + kb + 4)
    return [cls] + a + [sep] + b + [sep], [0] * (ka + 2) + [1] * (kb + 1)


def make_batch(units, layout, cls, sep, pad, seq_len):
    rows, types, labels = [], [], []
    for ex in units:
        segs = ex["choices"] if ex.get("choices") else [ex.get("b")]
        for b in segs:
            r, t = row(ex["a"], b, layout, cls, sep, seq_len)
            rows.append(r)
            types.append(t)
        labels.append(ex["label"] if ex["label"] >= 0 else IGNORE)
    T = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad] * (T - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (T - len(r)) for r in rows])
    tt = torch.tensor([t + [0] * (T - len(t)) for t in types])
    K = len(units[0]["choices"]) if units[0].get("choices") else 0
    return ids, mask, tt, torch.tensor(labels), K


# ------------------------------------------------------------------------------ training

def blocks_of(cfg, names):
    base, L = cfg["model_type"], cfg["num_hidden_layers"]
    layers = [[n for n in names if n.startswith(f"{base}.encoder.layer.{l}.")] for l in range(L)]
    head = [n for n in names if n.startswith("classifier.") or n.startswith(f"{base}.pooler.")]
    return layers, head


def train(args):
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    with open(args.data) as f:
        examples = json.load(f)["examples"]
    with open(args.config) as f:
        c = json.load(f)
    dt = torch.float32
    raw = st.load(os.path.join(args.model, "model.safetensors"))
    names = bert_ref.param_names(cfg)
    P = {n: raw[n].to(dt).clone() for n in names}
    layout, cls, sep = specials(args.model)
    pad = cfg["pad_token_id"]
    layers, head = blocks_of(cfg, names)
    bs, accum, n = c["batch_size"], c["grad_accum"], len(examples)
    nb = (n + bs - 1) // bs
    state, active, visit = {}, list(names), -1
    for s in range(c["max_steps"]):
        if c["method"] in ("badam", "sgd-bcd") and s // c["switch_every"] != visit:
            visit = s // c["switch_every"]
            active = layers[visit % len(layers)] + head
            state = {}
        grads = {nm: torch.zeros_like(P[nm]) for nm in active}
        total = 0
        for a in range(accum):
            k = (s * accum + a) % nb
            units = examples[k * bs:min(n, (k + 1) * bs)]
            ids, mask, tt, labels, K = make_batch(units, layout, cls, sep, pad, c["seq_len"])
            Q = {nm: P[nm].clone().requires_grad_(nm in active) for nm in names}
            logits = bert_ref.forward(cfg, Q, ids, mask, tt)
            if K:
                logits = logits.view(-1, K)
            loss = F.cross_entropy(logits, labels, ignore_index=IGNORE, reduction="sum")
            loss.backward()
            total += int((labels != IGNORE).sum())
            for nm in active:
                grads[nm] += Q[nm].grad
        g = [grads[nm].div_(max(total, 1)) for nm in active]
        train_ref.clip_grads_(g, c["clip"])
        lr = c["lr"] * train_ref.lr_factor(s, c["schedule"], c["warmup_steps"], c["max_steps"],
                                           0.0)
        for nm in active:
            wd = c["weight_decay"] if P[nm].dim() == 2 else 0.0
            if c["method"] == "sgd-bcd":
                train_ref.sgd_update(P[nm], grads[nm], lr, wd)
                continue
            if nm not in state:
                state[nm] = train_ref.AdamState(P[nm])
            train_ref.adamw_update(P[nm], grads[nm], state[nm], lr, c["beta1"], c["beta2"],
                                   c["eps"], wd)
    # attention.self.key.bias is left out: softmax is invariant to adding q . b_k to every score
    # of a query, so its gradient is 0 in exact arithmetic and Adam turns the rounding noise of
    # either implementation into an update of about lr (with no effect on any output)
    # (the same holds for the bias of a multiple-choice head's one-score classifier: it adds the
    # same constant to every choice of a group)
    skip = ("attention.self.key.bias",) + (("classifier.bias",) if
                                          bert_ref.head_kind(cfg) == "choice" else ())
    st.save({n: t for n, t in P.items() if not n.endswith(skip)}, args.out, dtype="F32")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("make")
    a.add_argument("--out", required=True)
    a.add_argument("--tokenizer", required=True)
    a.add_argument("--type", choices=("bert", "roberta"), required=True)
    a.add_argument("--head", choices=("seq", "choice"), required=True)
    a.add_argument("--labels", type=int, default=2)
    a.add_argument("--seed", type=int, default=1)
    t = sub.add_parser("train")
    t.add_argument("--model", required=True)
    t.add_argument("--data", required=True)
    t.add_argument("--config", required=True)
    t.add_argument("--out", required=True)
    m = sub.add_parser("many")
    m.add_argument("jobs", help="a JSON file: a list of argument lists of make / train")
    args = ap.parse_args()
    if args.cmd == "many":  # several runs in one process (one torch import)
        with open(args.jobs) as f:
            jobs = json.load(f)
        for job in jobs:
            a = ap.parse_args(job)
            make(a) if a.cmd == "make" else train(a)
    else:
        make(args) if args.cmd == "make" else train(args)


if __name__ == "__main__":
    main()
