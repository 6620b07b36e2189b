#!/usr/bin/env python3
"""PyTorch numerical reference for the encoder families bert and roberta, written from Hugging
Face's modeling_bert.py / modeling_roberta.py math (eval mode: no dropout); transformers is not
imported.

  bert_ref.py make --out DIR --preset NAME [--seed S]
      writes a random tiny HF folder (config.json, model.safetensors with HF names) and
      DIR/batch.json for it (presets: see PRESETS; `--list` prints them)
  bert_ref.py batch --model DIR --out BATCH.json [--seed S] [--pairs] [--choices K]
      writes a random batch for an existing folder (e.g. ../shared/data/tiny-random-bert)
  bert_ref.py run --model DIR --batch BATCH.json --out OUT.safetensors [--dtype float64]
                  [--lora ADAPTER_DIR]
      forward + autograd backward; with --lora, the PEFT LoRA adapters of ADAPTER_DIR
      (adapter_config.json r, lora_alpha; adapter_model.safetensors
      base_model.model.<module>.lora_A/B.weight) add (alpha / r) B A x to each adapted Linear's
      output, as PEFT's lora.Linear in eval mode; OUT holds (all F32):
        logits    [B, num_labels] (sequence classification) or [G, n_choices] (multiple choice)
        loss      [1]  mean cross-entropy over rows whose label is not -100
        n_rows    [1]  the number of such rows
        grad.<hf name>  gradient of loss for every parameter (and every lora_A / lora_B tensor,
                        under its PEFT name)

BATCH.json: {"input_ids": [[int]*T]*B, "attention_mask": [[0|1]*T]*B,
             "token_type_ids": [[int]*T]*B (optional), "labels": [int]*R,
             "n_choices": K (multiple choice: rows b*K .. b*K+K-1 form group b; R = B / K)}
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

# name: (model_type, architecture, C, I, L, H, V, max_pos, type_vocab, num_labels,
#        B rows, T, pairs, choices, position_ids buffer)
PRESETS = {
    "bert_pairs_pad": ("bert", "BertForSequenceClassification", 32, 37, 2, 4, 50, 24, 2, 3,
                       4, 9, True, 0, True),
    "roberta_pad": ("roberta", "RobertaForSequenceClassification", 24, 40, 3, 3, 60, 30, 1, 2,
                    5, 11, False, 0, False),
    "bert_choice": ("bert", "BertForMultipleChoice", 16, 20, 2, 2, 40, 20, 2, 1,
                    6, 7, True, 3, False),
    "roberta_choice": ("roberta", "RobertaForMultipleChoice", 16, 24, 2, 4, 45, 20, 1, 1,
                       4, 8, False, 2, True),
    "roberta_mlm": ("roberta", "RobertaForMaskedLM", 24, 40, 2, 3, 60, 30, 1, 0,
                    4, 10, False, 0, False),
    "bert_mlm": ("bert", "BertForMaskedLM", 16, 20, 2, 2, 50, 20, 2, 0,
                 3, 9, True, 0, True),
}

# the masked-LM heads (RobertaLMHead; BertOnlyMLMHead): dense, LayerNorm, bias; the decoder
# weight is the word embedding (tied)
MLM_HEAD = {"roberta": ["lm_head.dense.weight", "lm_head.dense.bias", "lm_head.layer_norm.weight",
                        "lm_head.layer_norm.bias", "lm_head.bias"],
            "bert": ["cls.predictions.transform.dense.weight",
                     "cls.predictions.transform.dense.bias",
                     "cls.predictions.transform.LayerNorm.weight",
                     "cls.predictions.transform.LayerNorm.bias", "cls.predictions.bias"]}


# ------------------------------------------------------------------------------ names

def param_names(cfg):
    base = cfg["model_type"]
    L = cfg["num_hidden_layers"]
    names = [f"{base}.embeddings.{n}" for n in (
        "word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight",
        "LayerNorm.weight", "LayerNorm.bias")]
    for l in range(L):
        p = f"{base}.encoder.layer.{l}."
        for mod in ("attention.self.query", "attention.self.key", "attention.self.value",
                    "attention.output.dense", "attention.output.LayerNorm",
                    "intermediate.dense", "output.dense", "output.LayerNorm"):
            names += [p + mod + ".weight", p + mod + ".bias"]
    if head_kind(cfg) == "mlm":
        names += MLM_HEAD[base]
    elif head_kind(cfg) == "roberta":
        names += ["classifier.dense.weight", "classifier.dense.bias",
                  "classifier.out_proj.weight", "classifier.out_proj.bias"]
    else:
        names += [f"{base}.pooler.dense.weight", f"{base}.pooler.dense.bias",
                  "classifier.weight", "classifier.bias"]
    return names


def head_kind(cfg):
    arch = (cfg.get("architectures") or ["SequenceClassification"])[0]
    if arch.endswith("ForMultipleChoice"):
        return "choice"
    if arch.endswith("ForMaskedLM"):
        return "mlm"
    return "roberta" if cfg["model_type"] == "roberta" else "pooler"


def num_labels(cfg):
    if head_kind(cfg) == "choice":
        return 1
    if "id2label" in cfg:
        return len(cfg["id2label"])
    return int(cfg.get("num_labels", 2))


def shapes(cfg):
    C, I = cfg["hidden_size"], cfg["intermediate_size"]
    out = {}
    for n in param_names(cfg):
        if head_kind(cfg) == "mlm" and n in MLM_HEAD[cfg["model_type"]]:
            j = MLM_HEAD[cfg["model_type"]].index(n)
            out[n] = [[C, C], [C], [C], [C], [cfg["vocab_size"]]][j]
        elif "word_embeddings" in n:
            out[n] = [cfg["vocab_size"], C]
        elif "position_embeddings" in n:
            out[n] = [cfg["max_position_embeddings"], C]
        elif "token_type_embeddings" in n:
            out[n] = [cfg["type_vocab_size"], C]
        elif n.startswith("classifier.") and ("out_proj" in n or "dense" not in n):
            out[n] = [num_labels(cfg), C] if n.endswith("weight") else [num_labels(cfg)]
        elif "intermediate.dense" in n:
            out[n] = [I, C] if n.endswith("weight") else [I]
        elif "output.dense" in n and "attention" not in n:
            out[n] = [C, I] if n.endswith("weight") else [C]
        elif "LayerNorm" in n or n.endswith("bias"):
            out[n] = [C]
        else:
            out[n] = [C, C]
    return out


# ------------------------------------------------------------------------------ model

def layer_norm(x, w, b, eps):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def forward(cfg, P, ids, mask, types, lora=None):
    """Logits of HF's *ForSequenceClassification / *ForMultipleChoice in eval mode; lora:
    {module name: (A, B, scale)} adapters on layer Linears."""
    lora = lora or {}
    B, T = ids.shape
    base, eps = cfg["model_type"], cfg.get("layer_norm_eps", 1e-12)
    C, H = cfg["hidden_size"], cfg["num_attention_heads"]
    D = C // H
    if base == "roberta":  # create_position_ids_from_input_ids
        pad = cfg.get("pad_token_id", 1)
        m = ids.ne(pad).long()
        pos = torch.cumsum(m, dim=1) * m + pad
    else:
        pos = torch.arange(T).unsqueeze(0).expand(B, T)
    e = f"{base}.embeddings."
    x = P[e + "word_embeddings.weight"][ids] + P[e + "position_embeddings.weight"][pos] + \
        P[e + "token_type_embeddings.weight"][types]
    x = layer_norm(x, P[e + "LayerNorm.weight"], P[e + "LayerNorm.bias"], eps)
    ext = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min

    def lin(t, name):
        y = F.linear(t, P[name + ".weight"], P[name + ".bias"])
        if name in lora:
            A, Bm, scale = lora[name]
            y = y + scale * F.linear(F.linear(t, A), Bm)
        return y

    for l in range(cfg["num_hidden_layers"]):
        p = f"{base}.encoder.layer.{l}."
        q, k, v = (lin(x, p + "attention.self." + n).view(B, T, H, D).transpose(1, 2)
                   for n in ("query", "key", "value"))
        s = q @ k.transpose(-1, -2) / math.sqrt(D) + ext
        ctx = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
        h = layer_norm(lin(ctx, p + "attention.output.dense") + x,
                       P[p + "attention.output.LayerNorm.weight"],
                       P[p + "attention.output.LayerNorm.bias"], eps)
        inter = F.gelu(lin(h, p + "intermediate.dense"))
        x = layer_norm(lin(inter, p + "output.dense") + h, P[p + "output.LayerNorm.weight"],
                       P[p + "output.LayerNorm.bias"], eps)
    if head_kind(cfg) == "mlm":  # logits [B, T, V]
        hd = MLM_HEAD[base]
        h = F.gelu(F.linear(x, P[hd[0]], P[hd[1]]))
        h = layer_norm(h, P[hd[2]], P[hd[3]], eps)
        return F.linear(h, P[e + "word_embeddings.weight"], P[hd[4]])
    c = x[:, 0]
    if head_kind(cfg) == "roberta":
        return lin(torch.tanh(lin(c, "classifier.dense")), "classifier.out_proj")
    return lin(torch.tanh(lin(c, f"{base}.pooler.dense")), "classifier")


def run(args):
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    with open(args.batch) as f:
        batch = json.load(f)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    raw = st.load(os.path.join(args.model, "model.safetensors"))
    P = {n: raw[n].to(dtype).requires_grad_(True) for n in param_names(cfg)}
    ids = torch.tensor(batch["input_ids"], dtype=torch.long)
    mask = torch.tensor(batch["attention_mask"], dtype=torch.long)
    types = torch.tensor(batch.get("token_type_ids") or [[0] * ids.shape[1]] * ids.shape[0],
                         dtype=torch.long)
    labels = torch.tensor(batch["labels"], dtype=torch.long)
    lora, lora_params = {}, {}
    if args.lora:
        with open(os.path.join(args.lora, "adapter_config.json")) as f:
            acfg = json.load(f)
        scale = float(acfg["lora_alpha"]) / int(acfg["r"])
        raw_lora = st.load(os.path.join(args.lora, "adapter_model.safetensors"))
        for n, t in raw_lora.items():
            lora_params[n] = t.to(dtype).requires_grad_(True)
        pre, a_suf = "base_model.model.", ".lora_A.weight"
        for n in raw_lora:
            if n.endswith(a_suf):
                mod = n[len(pre):-len(a_suf)]
                lora[mod] = (lora_params[n], lora_params[pre + mod + ".lora_B.weight"], scale)
    logits = forward(cfg, P, ids, mask, types, lora)
    if head_kind(cfg) == "choice":
        logits = logits.view(-1, int(batch["n_choices"]))
    if head_kind(cfg) == "mlm":  # mean over the positions with a label
        logits = logits.reshape(-1, logits.shape[-1])
        labels = labels.reshape(-1)
    loss = F.cross_entropy(logits, labels, ignore_index=IGNORE)
    loss.backward()
    out = {"logits": logits.detach().float(), "loss": loss.detach().float().reshape(1),
           "n_rows": torch.tensor([float((labels != IGNORE).sum())])}
    for n in param_names(cfg):
        out["grad." + n] = P[n].grad.float()
    for n, t in lora_params.items():
        out["grad." + n] = t.grad.float()
    st.save(out, args.out, dtype="F32")


# ------------------------------------------------------------------------------ data

def make_batch(cfg, g, B, T, pairs, choices):
    """Right-padded rows of random lengths (row 0 full), [CLS]/<s> first; pairs with token
    types 0 | 1; pad positions hold the pad id (RoBERTa's positions depend on it)."""
    V, pad = cfg["vocab_size"], cfg.get("pad_token_id", 0)
    ids, mask, types = [], [], []
    for b in range(B):
        n = T if b == 0 else int(torch.randint(2, T + 1, (1,), generator=g))
        row = [int(t) for t in torch.randint(0, V, (n,), generator=g)]
        row = [t if t != pad else (pad + 1) % V for t in row]
        row[0] = 2 % V
        cut = max(1, n // 2)
        ids.append(row + [pad] * (T - n))
        mask.append([1] * n + [0] * (T - n))
        types.append([0] * cut + [1 if pairs else 0] * (n - cut) + [0] * (T - n))
    rows = B // choices if choices else B
    if head_kind(cfg) == "mlm":  # a target token at about a third of the real positions
        labels = [[int(torch.randint(0, V, (1,), generator=g))
                   if mask[b][t] and float(torch.rand(1, generator=g)) < 0.35 else IGNORE
                   for t in range(T)] for b in range(B)]
        labels[0][1] = int(ids[0][1])
    else:
        K = choices if choices else num_labels(cfg)
        labels = [int(torch.randint(0, K, (1,), generator=g)) for _ in range(rows)]
        if rows > 2:
            labels[1] = IGNORE
    out = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if pairs:
        out["token_type_ids"] = types
    if choices:
        out["n_choices"] = choices
    return out


def make(args):
    (mt, arch, C, I, L, H, V, max_pos, tv, nl, B, T, pairs, choices,
     pos_buf) = PRESETS[args.preset]
    V = args.vocab or V
    max_pos = args.max_pos or max_pos
    cfg = {"architectures": [arch], "model_type": mt, "hidden_size": C, "intermediate_size": I,
           "num_hidden_layers": L, "num_attention_heads": H, "vocab_size": V,
           "max_position_embeddings": max_pos, "type_vocab_size": tv,
           "layer_norm_eps": 1e-5 if mt == "roberta" else 1e-12, "hidden_act": "gelu",
           "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
           "classifier_dropout": None, "position_embedding_type": "absolute",
           "pad_token_id": 1 if mt == "roberta" else 0, "torch_dtype": "float32"}
    if nl > 1:
        cfg["id2label"] = {str(i): f"LABEL_{i}" for i in range(nl)}
        cfg["label2id"] = {f"LABEL_{i}": i for i in range(nl)}
    g = torch.Generator().manual_seed(args.seed)
    tensors = {}
    for n, shp in shapes(cfg).items():
        if "LayerNorm.weight" in n or "layer_norm.weight" in n:
            t = 1.0 + 0.1 * torch.randn(shp, generator=g)
        elif n.endswith("bias") or "LayerNorm" in n or "layer_norm" in n:
            t = 0.1 * torch.randn(shp, generator=g)
        else:
            t = 0.3 * torch.randn(shp, generator=g)
        tensors[n] = t
    if pos_buf:  # the I64 buffer older transformers saved
        tensors[f"{mt}.embeddings.position_ids"] = torch.arange(max_pos).unsqueeze(0)
    os.makedirs(args.out, exist_ok=True)
    st.save(tensors, os.path.join(args.out, "model.safetensors"))
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(args.out, "batch.json"), "w") as f:
        json.dump(make_batch(cfg, g, B, T, pairs, choices), f)


def batch_for(args):
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    g = torch.Generator().manual_seed(args.seed)
    with open(args.out, "w") as f:
        json.dump(make_batch(cfg, g, args.rows, args.T, args.pairs, args.choices), f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("make")
    a.add_argument("--out")
    a.add_argument("--preset", choices=sorted(PRESETS))
    a.add_argument("--seed", type=int, default=1)
    a.add_argument("--list", action="store_true")
    a.add_argument("--vocab", type=int, default=0, help="override the preset's vocabulary size")
    a.add_argument("--max-pos", type=int, default=0, help="override max_position_embeddings")
    b = sub.add_parser("batch")
    b.add_argument("--model", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--rows", type=int, default=4)
    b.add_argument("--T", type=int, default=12)
    b.add_argument("--pairs", action="store_true")
    b.add_argument("--choices", type=int, default=0)
    r = sub.add_parser("run")
    r.add_argument("--model", required=True)
    r.add_argument("--batch", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    r.add_argument("--lora", help="a PEFT LoRA adapter folder to apply")
    args = ap.parse_args()
    if args.cmd == "make":
        if args.list:
            print("\n".join(sorted(PRESETS)))
            return
        if not args.out or not args.preset:
            ap.error("make needs --out and --preset")
        make(args)
    elif args.cmd == "batch":
        batch_for(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
