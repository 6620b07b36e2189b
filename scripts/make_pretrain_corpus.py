#!/usr/bin/env python3
"""Generates the project's own pretraining corpus and fine-tuning task for the embedded default
model (no third-party text): simple English-like sentences from a small grammar, tokenized with
the byte-level tokenizer in tests/fixtures/data/tiny_tokenizer (id = byte value, <s> = 256,
</s> = 257), and an Alpaca-format instruction set for the demo task: "Write the word in capital
letters." Run with python3 (stdlib only):

    python3 scripts/make_pretrain_corpus.py [--sentences 60000]
writes data/demo/pretrain.jsonl, data/demo/uppercase_train.json, data/demo/uppercase_val.json.
"""
import argparse
import json
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "data", "demo")
BOS, EOS = 256, 257

NOUNS = ("cat dog bird fish horse cow sheep goat mouse rabbit fox wolf bear lion tiger frog "
         "duck owl bee ant tree flower river lake hill stone road house garden window door "
         "table chair book letter song story city village farm boat train car bell lamp "
         "apple bread cheese milk water tea cake soup basket box ship island forest cloud "
         "star moon sun wind rain snow storm field bridge tower market school child friend "
         "teacher farmer baker doctor sailor king queen girl boy mother father sister brother").split()
ADJS = ("small big old young quiet loud happy sad bright dark warm cold green red blue yellow "
        "white black brown soft hard quick slow tall short kind brave clever gentle wild calm "
        "busy lazy early late sweet fresh empty full round long little proud shy").split()
VERBS = ("sees finds likes wants helps follows watches paints carries builds reads writes "
         "visits opens closes cleans moves calls meets hears knows loves keeps brings takes "
         "makes draws catches feeds pulls pushes").split()
INTRANS = ("runs sleeps sings waits jumps walks swims laughs rests smiles dances plays shines "
           "falls grows flies works cries").split()
ADVS = "slowly quickly quietly happily often gently today again together early".split()
PLACES = ("in the garden|by the river|near the house|at the market|on the hill|in the forest|"
          "under the tree|across the field|in the village|at school").split("|")
NAMES = "Anna Ben Clara David Emma Felix Grace Hugo Iris Jack Lena Max Nora Otto Paula Sam".split()


def noun_phrase(rnd):
    if rnd.random() < 0.2:
        return rnd.choice(NAMES)
    det = rnd.choice(["the", "a", "the", "my", "our", "that"])
    if rnd.random() < 0.6:
        return f"{det} {rnd.choice(ADJS)} {rnd.choice(NOUNS)}"
    return f"{det} {rnd.choice(NOUNS)}"


def sentence(rnd):
    kind = rnd.random()
    if kind < 0.45:
        s = f"{noun_phrase(rnd)} {rnd.choice(VERBS)} {noun_phrase(rnd)}"
    elif kind < 0.75:
        s = f"{noun_phrase(rnd)} {rnd.choice(INTRANS)} {rnd.choice(ADVS)}"
    else:
        s = f"{noun_phrase(rnd)} {rnd.choice(INTRANS)} {rnd.choice(PLACES)}"
    if rnd.random() < 0.3:
        s += f" and {noun_phrase(rnd)} {rnd.choice(INTRANS)}"
    s = s[0].upper() + s[1:] + rnd.choice([".", ".", ".", "!"])
    if rnd.random() < 0.08:  # some shouting, so capital letters are common in the corpus
        s = s.upper()
    return s


KNOWN = set(NOUNS + ADJS + VERBS + INTRANS + ADVS)
ECHO_FORMS = ("The word{s} {w} in capitals: {W}.", "{w}, written in capital letters: {W}.",
              "Say {w} loudly: {W}!", "Capitals of {w}: {W}.", "{w} becomes {W} when shouted.")


def made_up_word(rnd):
    """A pronounceable word in no list above: copying it needs character-level copying, not
    recall of a known word's capitals."""
    while True:
        w = "".join(rnd.choice("bcdfghklmnprstvwz") + rnd.choice("aeiou")
                    for _ in range(rnd.randint(1, 3)))
        if rnd.random() < 0.5:
            w += rnd.choice("nrstlk")
        if w not in KNOWN:
            return w


def echo(rnd):
    """Text that repeats something in capital letters, so the base model can copy and
    capitalise in context (the skill the demo's instruction tuning then unlocks). Some words
    are made up, so the skill is copying letters rather than recalling known words."""
    if rnd.random() < 0.4:
        s = sentence(rnd)
        return f"{s} Once more, loudly: {s.upper()}"
    words = [made_up_word(rnd) if rnd.random() < 0.35 else rnd.choice(NOUNS + ADJS + VERBS + INTRANS)
             for _ in range(rnd.randint(1, 3))]
    w = " ".join(words)
    form = rnd.choice(ECHO_FORMS)
    text = form.format(s="s" if len(words) > 1 else "", w=w, W=w.upper())
    return text[0].upper() + text[1:] if form.startswith("{w}") and rnd.random() < 0.5 else text


def paragraph(rnd):
    return " ".join(echo(rnd) if rnd.random() < 0.5 else sentence(rnd)
                    for _ in range(rnd.randint(2, 5)))


def tokens(text):
    return [BOS] + list(text.encode("utf-8")) + [EOS]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--paragraphs", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "pretrain.jsonl"), "w") as f:
        for _ in range(a.paragraphs):
            ids = tokens(paragraph(rnd))
            f.write(json.dumps({"input_ids": ids, "labels": ids}, separators=(",", ":")) + "\n")
    words = sorted(set(NOUNS + ADJS + VERBS + INTRANS + ADVS))
    rnd.shuffle(words)
    val_words, train_words = words[:48], words[48:]

    def examples(ws, n):
        """n examples cycling through ws; about half are two-word phrases (the second word
        also from ws), in training and held-out data alike."""
        rows = []
        for i in range(n):
            w = ws[i % len(ws)]
            if rnd.random() < 0.5:
                w = f"{w} {rnd.choice(ws)}"
            rows.append({"instruction": "Write the words in capital letters.", "input": w,
                         "output": w.upper()})
        return rows

    with open(os.path.join(OUT, "uppercase_train.json"), "w") as f:
        json.dump(examples(train_words, 480), f, indent=1)
    with open(os.path.join(OUT, "uppercase_val.json"), "w") as f:
        json.dump(examples(val_words, 96), f, indent=1)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
