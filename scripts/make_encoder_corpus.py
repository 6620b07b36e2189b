#!/usr/bin/env python3
"""Generates the pretraining material of the small RoBERTa-style encoder (no third-party text):

  1. a corpus of English-like paragraphs from a grammar (the decoder corpus's grammar,
     scripts/make_pretrain_corpus.py, plus the encoder demo's sentence forms and more words:
     actions, places, times, quantities, questions and negations);
  2. a WordPiece tokenizer.json for it in the layout transformers reads: BertNormalizer
     (lowercasing), BertPreTokenizer, WordPiece ("##" continuations, [UNK] -> "<unk>"),
     RobertaProcessing ("<s> A </s>", pairs "<s> A </s></s> B </s>"), the WordPiece decoder; the
     special tokens <s>=0 <pad>=1 </s>=2 <unk>=3 <mask>=4 (RoBERTa's ids); every ASCII letter,
     digit and punctuation mark as a word start and as a "##" continuation, so any English word
     tokenizes (character pieces when it is not in the vocabulary), then the corpus's words and
     common suffixes;
  3. the corpus tokenized with that tokenizer (a plain-Python WordPiece, exact for ASCII text)
     as --format tokenized JSONL: train.jsonl and val.jsonl (held-out paragraphs).

    python3 scripts/make_encoder_corpus.py --out DIR [--paragraphs 40000] [--seed 11]
writes DIR/tokenizer.json, DIR/train.jsonl, DIR/val.jsonl (stdlib only);
    python3 scripts/make_encoder_corpus.py --init-model MODEL --tokenizer DIR/tokenizer.json
        [--hidden 128 --layers 4 --heads 4 --intermediate 512 --max-pos 130]
writes MODEL: a RobertaForMaskedLM folder initialised as transformers' _init_weights does
(Linear and embedding weights N(0, 0.02^2) from --seed, biases 0, LayerNorm 1 and 0; the pad
row of the embeddings 0) in fp32, with the tokenizer beside it.
"""
import argparse
import importlib.util
import json
import os
import random
import shutil
import string
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "scripts", name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


DEC = load("make_pretrain_corpus")
DEMO = load("make_encoder_demo")

TIMES = ("in the morning|at night|after lunch|before dinner|on monday|on sunday|in winter|"
         "in summer|every day|last week|next year|at noon").split("|")
NUMBERS = "two three four five six seven eight nine ten twelve twenty many some few".split()
QUESTIONS = ("where is|who sees|why does|when will|what does|how many").split("|")
CONNECT = ("because|although|while|so|but|and then|before|after").split("|")
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def sentence(rnd):
    kind = rnd.random()
    if kind < 0.35:
        s = DEC.sentence(rnd).rstrip(".!")
    elif kind < 0.6:
        f = {"subj": DEMO.pick_np(rnd), "obj": DEMO.pick_np(rnd), "verb": rnd.choice(DEMO.VERB_LIST),
             "place": rnd.choice(DEMO.PLACES), "neg": rnd.random() < 0.2}
        s = DEMO.render_facts(f, rnd).rstrip(".")
    elif kind < 0.75:
        s = (f"{rnd.choice(NUMBERS)} {rnd.choice(DEC.NOUNS)}s {rnd.choice(DEC.INTRANS)[:-1]} "
             f"{rnd.choice(TIMES)}")
    elif kind < 0.85:
        q = rnd.choice(QUESTIONS)
        s = f"{q} the {rnd.choice(DEC.ADJS)} {rnd.choice(DEC.NOUNS)} {rnd.choice(TIMES)}"
        return s[0].upper() + s[1:] + "?"
    else:
        a, b = DEC.sentence(rnd).rstrip(".!"), DEC.sentence(rnd).rstrip(".!")
        s = f"{a} {rnd.choice(CONNECT)} {b[0].lower() + b[1:]}"
    s = s[0].upper() + s[1:]
    return s + rnd.choice([".", ".", ".", "!", ";"])


def paragraph(rnd):
    return " ".join(sentence(rnd) for _ in range(rnd.randint(2, 6)))


# ---------------------------------------------------------------- WordPiece (ASCII text)

PUNCT = set(string.punctuation)


def pre_tokenize(text):
    """BertNormalizer (lowercase; ASCII: nothing else changes) and BertPreTokenizer: whitespace
    removed, each punctuation character a word of its own."""
    words, cur = [], ""
    for ch in text.lower():
        if ch.isspace():
            if cur:
                words.append(cur)
            cur = ""
        elif ch in PUNCT:
            if cur:
                words.append(cur)
            words.append(ch)
            cur = ""
        else:
            cur += ch
    if cur:
        words.append(cur)
    return words


def wordpiece(word, vocab, unk):
    """Greedy longest-match-first, "##" continuations; the whole word is <unk> when a piece is
    not found (HF's WordPiece)."""
    if len(word) > 100:
        return [unk]
    out, start = [], 0
    while start < len(word):
        end, piece = len(word), None
        while start < end:
            sub = word[start:end] if start == 0 else "##" + word[start:end]
            if sub in vocab:
                piece = vocab[sub]
                break
            end -= 1
        if piece is None:
            return [unk]
        out.append(piece)
        start = end
    return out


def encode(text, vocab):
    ids = [0]
    for w in pre_tokenize(text):
        ids += wordpiece(w, vocab, 3)
    return ids + [2]


def build_vocab(paragraphs):
    counts = {}
    for p in paragraphs:
        for w in pre_tokenize(p):
            counts[w] = counts.get(w, 0) + 1
    chars = string.ascii_lowercase + string.digits + string.punctuation
    pieces = list(SPECIALS) + list(chars) + ["##" + c for c in chars]
    suffixes = ["##s", "##es", "##ed", "##ing", "##ly", "##er", "##est", "##ness", "##ful", "##y"]
    words = sorted((w for w in counts if w not in pieces), key=lambda w: (-counts[w], w))
    seen = set(pieces)
    for p in suffixes + words:
        if p not in seen:
            pieces.append(p)
            seen.add(p)
    return {p: i for i, p in enumerate(pieces)}


def tokenizer_json(vocab):
    added = [{"id": i, "content": t, "single_word": False, "lstrip": t == "<mask>",
              "rstrip": False, "normalized": False, "special": True}
             for i, t in enumerate(SPECIALS)]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0],
                           "trim_offsets": True, "add_prefix_space": False},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "<unk>", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    }


def write_safetensors(path, tensors):
    """tensors: [(name, shape, list of floats)] as F32."""
    header, blobs, off = {}, [], 0
    for name, shape, vals in tensors:
        blob = struct.pack(f"<{len(vals)}f", *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def init_model(a):
    with open(a.tokenizer) as f:
        V = len(json.load(f)["model"]["vocab"])
    V += -V % 8
    C, I, L, P = a.hidden, a.intermediate, a.layers, a.max_pos
    rnd = random.Random(a.seed)

    def normal(n):
        return [rnd.gauss(0.0, 0.02) for _ in range(n)]

    t = []
    e = "roberta.embeddings."
    word = normal(V * C)
    word[1 * C:2 * C] = [0.0] * C  # padding_idx row
    pos = normal(P * C)
    pos[1 * C:2 * C] = [0.0] * C
    t += [(e + "word_embeddings.weight", [V, C], word), (e + "position_embeddings.weight", [P, C], pos),
          (e + "token_type_embeddings.weight", [1, C], normal(C)),
          (e + "LayerNorm.weight", [C], [1.0] * C), (e + "LayerNorm.bias", [C], [0.0] * C)]
    for l in range(L):
        p = f"roberta.encoder.layer.{l}."
        for mod, rows, cols in (("attention.self.query", C, C), ("attention.self.key", C, C),
                                ("attention.self.value", C, C), ("attention.output.dense", C, C),
                                ("intermediate.dense", I, C), ("output.dense", C, I)):
            t += [(p + mod + ".weight", [rows, cols], normal(rows * cols)),
                  (p + mod + ".bias", [rows], [0.0] * rows)]
            if mod in ("attention.output.dense", "output.dense"):
                ln = p + mod.replace("dense", "LayerNorm")
                t += [(ln + ".weight", [C], [1.0] * C), (ln + ".bias", [C], [0.0] * C)]
    t += [("lm_head.dense.weight", [C, C], normal(C * C)), ("lm_head.dense.bias", [C], [0.0] * C),
          ("lm_head.layer_norm.weight", [C], [1.0] * C), ("lm_head.layer_norm.bias", [C], [0.0] * C),
          ("lm_head.bias", [V], [0.0] * V)]
    os.makedirs(a.init_model, exist_ok=True)
    write_safetensors(os.path.join(a.init_model, "model.safetensors"), t)
    cfg = {"architectures": ["RobertaForMaskedLM"], "model_type": "roberta", "hidden_size": C,
           "intermediate_size": I, "num_hidden_layers": L, "num_attention_heads": a.heads,
           "vocab_size": V, "max_position_embeddings": P, "type_vocab_size": 1,
           "layer_norm_eps": 1e-5, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
           "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02,
           "position_embedding_type": "absolute", "pad_token_id": 1, "bos_token_id": 0,
           "eos_token_id": 2, "torch_dtype": "float32"}
    with open(os.path.join(a.init_model, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    shutil.copy(a.tokenizer, os.path.join(a.init_model, "tokenizer.json"))
    print(f"wrote {a.init_model}: vocabulary {V}, {sum(len(x[2]) for x in t)} parameters")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--init-model", help="write a randomly initialised RobertaForMaskedLM here")
    ap.add_argument("--tokenizer")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=512)
    ap.add_argument("--max-pos", type=int, default=130)
    ap.add_argument("--out")
    ap.add_argument("--paragraphs", type=int, default=40000)
    ap.add_argument("--val", type=int, default=1000, help="held-out paragraphs")
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    if a.init_model:
        return init_model(a)
    if not a.out:
        ap.error("--out (or --init-model) is required")
    rnd = random.Random(a.seed)
    paras = [paragraph(rnd) for _ in range(a.paragraphs + a.val)]
    vocab = build_vocab(paras[: a.paragraphs])
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "tokenizer.json"), "w") as f:
        json.dump(tokenizer_json(vocab), f, indent=1)
    for name, rows in (("train", paras[: a.paragraphs]), ("val", paras[a.paragraphs:])):
        with open(os.path.join(a.out, f"{name}.jsonl"), "w") as f:
            for p in rows:
                f.write(json.dumps({"input_ids": encode(p, vocab)}, separators=(",", ":")) + "\n")
    with open(os.path.join(a.out, "sample.txt"), "w") as f:
        f.write("\n".join(paras[:20]) + "\n")
    print(f"wrote {a.out}: {len(vocab)} tokens, {a.paragraphs} + {a.val} paragraphs")


if __name__ == "__main__":
    main()
