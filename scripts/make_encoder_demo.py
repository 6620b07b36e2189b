#!/usr/bin/env python3
"""Generates the encoder demo task: a synthetic sentence-pair task in SuperGLUE's RTE format
(premise, hypothesis, label "entailment" | "not_entailment", idx), "does B say the same thing as
A?", from a small grammar (no third-party text). B is a paraphrase of A (passive voice, the place
moved to the front, a synonym, "it is true that ...") or a sentence that differs in meaning
(subject and object swapped, another adjective, verb or place, a negation), each possibly
paraphrased too, so word overlap alone does not decide the label. Labels are balanced (50/50:
the majority class is <= 60%). Run with python3 (stdlib only):

    python3 scripts/make_encoder_demo.py [--train 2000] [--val 400] [--seed 1]
writes data/demo/same_meaning_train.jsonl and data/demo/same_meaning_val.jsonl, for
`badam train --task rte --data data/demo/same_meaning_train.jsonl
 --val-data data/demo/same_meaning_val.jsonl`.
"""
import argparse
import json
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "data", "demo")

NOUNS = ("cat dog bird horse cow sheep goat mouse rabbit fox wolf bear lion tiger frog duck owl "
         "teacher farmer baker doctor sailor king queen girl boy mother father sister brother "
         "child friend").split()
# adjective -> synonym (a paraphrase may use either)
SYN = {"small": "little", "big": "large", "quick": "fast", "happy": "glad", "old": "aged",
       "quiet": "silent", "angry": "cross", "clever": "smart", "tired": "sleepy",
       "kind": "friendly", "brave": "bold", "sad": "unhappy"}
ADJS = sorted(SYN)
# verb: (present, past participle)
VERBS = {"sees": "seen", "finds": "found", "likes": "liked", "helps": "helped",
         "follows": "followed", "watches": "watched", "calls": "called", "meets": "met",
         "hears": "heard", "feeds": "fed", "pushes": "pushed", "paints": "painted"}
VERB_LIST = sorted(VERBS)
PLACES = ["in the garden", "by the river", "near the house", "at the market", "on the hill",
          "in the forest", "under the tree", "across the field", "in the village", "at school"]


# How hard the task is (--level): "hard" (the default, as committed) paraphrases with the passive
# voice, synonyms and "it is true that", and changes meaning by swapping subject and object too;
# "easy" keeps the active voice and the words as they are (a paraphrase only moves the place), and
# a change replaces one word or phrase or negates, so spotting the changed word decides the label.
LEVEL = {"p_syn": 0.3, "passive": True, "p_true": 0.15,
         "changes": ["swap", "adj", "verb", "place", "neg", "noun"]}
EASY = {"p_syn": 0.0, "passive": False, "p_true": 0.0,
        "changes": ["adj", "verb", "place", "neg", "noun"]}


def pick_np(rnd):
    return {"adj": rnd.choice(ADJS), "noun": rnd.choice(NOUNS)}


def np_text(np, synonym):
    adj = SYN[np["adj"]] if synonym else np["adj"]
    return f"the {adj} {np['noun']}"


def render(f, rnd):
    """A sentence for the (not negated) facts f, in a random surface form that keeps its
    meaning."""
    syn_s, syn_o = rnd.random() < LEVEL["p_syn"], rnd.random() < LEVEL["p_syn"]
    s, o = np_text(f["subj"], syn_s), np_text(f["obj"], syn_o)
    core = [f"{s} {f['verb']} {o}", f"{o} is {VERBS[f['verb']]} by {s}"]
    sent = rnd.choice(core) if LEVEL["passive"] else core[0]
    form = rnd.random()
    if form < 0.3:
        sent = f"{f['place']} {sent}"
    else:
        sent = f"{sent} {f['place']}"
    if rnd.random() < LEVEL["p_true"]:
        sent = f"it is true that {sent}"
    return sent[0].upper() + sent[1:] + "."


def base_form(verb):
    """The verb after "does not": sees -> see, watches -> watch, pushes -> push."""
    if verb.endswith(("ches", "shes")):
        return verb[:-2]
    return verb[:-1]


def render_facts(f, rnd):
    g = dict(f)
    if g["neg"]:
        s = np_text(g["subj"], rnd.random() < LEVEL["p_syn"])
        o = np_text(g["obj"], rnd.random() < LEVEL["p_syn"])
        sent = f"{s} does not {base_form(g['verb'])} {o}"
        sent = f"{g['place']} {sent}" if rnd.random() < 0.3 else f"{sent} {g['place']}"
        return sent[0].upper() + sent[1:] + "."
    return render(g, rnd)


def change(f, rnd):
    """Facts that differ from f in meaning."""
    g = {k: (dict(v) if isinstance(v, dict) else v) for k, v in f.items()}
    kind = rnd.choice(LEVEL["changes"])
    if kind == "swap" and f["subj"] != f["obj"]:
        g["subj"], g["obj"] = g["obj"], g["subj"]
    elif kind == "adj":
        who = rnd.choice(["subj", "obj"])
        g[who]["adj"] = rnd.choice([a for a in ADJS if a != f[who]["adj"]])
    elif kind == "verb":
        g["verb"] = rnd.choice([v for v in VERB_LIST if v != f["verb"]])
    elif kind == "place":
        g["place"] = rnd.choice([p for p in PLACES if p != f["place"]])
    elif kind == "noun":
        who = rnd.choice(["subj", "obj"])
        g[who]["noun"] = rnd.choice([n for n in NOUNS if n != f[who]["noun"]])
    else:
        g["neg"] = True
    return g


def example(rnd, idx, label):
    f = {"subj": pick_np(rnd), "obj": pick_np(rnd), "verb": rnd.choice(VERB_LIST),
         "place": rnd.choice(PLACES), "neg": False}
    while f["obj"] == f["subj"]:
        f["obj"] = pick_np(rnd)
    premise = render_facts(f, rnd)
    g = f if label == "entailment" else change(f, rnd)
    hypothesis = render_facts(g, rnd)
    while label == "entailment" and hypothesis == premise:
        hypothesis = render_facts(g, rnd)
    return {"premise": premise, "hypothesis": hypothesis, "label": label, "idx": idx}


def write(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--val", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--level", choices=("hard", "easy"), default="hard",
                    help="task difficulty (see LEVEL above)")
    a = ap.parse_args()
    if a.level == "easy":
        LEVEL.update(EASY)
    rnd = random.Random(a.seed)
    for name, n in (("train", a.train), ("val", a.val)):
        labels = ["entailment", "not_entailment"] * (n // 2) + ["entailment"] * (n % 2)
        rnd.shuffle(labels)
        rows = [example(rnd, i, lab) for i, lab in enumerate(labels)]
        write(os.path.join(a.out, f"same_meaning_{name}.jsonl"), rows)


if __name__ == "__main__":
    main()
