#!/usr/bin/env python3
"""Reference SuperGLUE metrics in plain Python (no sklearn, no numpy), written from the
definitions, for tests/test_tasks_metrics_ref.c.

Definitions (SuperGLUE paper, Wang et al. 2019, table 1; the jiant scorer the benchmark ships):
  accuracy   fraction of examples predicted right.
  CB F1      macro-F1: the unweighted mean over the three classes of the per-class F1, where
             precision = tp / (tp + fp), recall = tp / (tp + fn), F1 = 2 P R / (P + R), and any
             0/0 is 0 (a class nobody predicts nor labels scores 0 and still counts).
  MultiRC    F1a: the F1 of the positive class (answer option correct) over all answer options;
             EM: the fraction of questions (grouped by question id) whose every option is right.

Usage: superglue_metrics_ref.py OUT.json [--seed S] [--cases N]
Writes {"cases": [{"task", "pred", "gold", "group"?, "accuracy", "macro_f1"?, "f1a"?, "em"?}]}:
random label sets of many shapes (skewed, a class absent, everything wrong or right, single
examples), with the metrics computed here.
"""
import json
import random
import sys


def precision_recall_f1(pred, gold, positive):
    tp = sum(1 for p, g in zip(pred, gold) if p == positive and g == positive)
    predicted = sum(1 for p in pred if p == positive)
    actual = sum(1 for g in gold if g == positive)
    precision = tp / predicted if predicted else 0.0
    recall = tp / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def accuracy(pred, gold):
    return sum(1 for p, g in zip(pred, gold) if p == g) / len(gold)


def macro_f1(pred, gold, labels):
    return sum(precision_recall_f1(pred, gold, c)[2] for c in labels) / len(labels)


def exact_match(pred, gold, question):
    right = {}
    for p, g, q in zip(pred, gold, question):
        right[q] = right.get(q, True) and p == g
    return sum(1 for ok in right.values() if ok) / len(right)


def draw_labels(rng, n, weights):
    return rng.choices(range(len(weights)), weights=weights, k=n)


def cb_case(rng):
    n = rng.choice([1, 2, 3, 5, 8, 13, 32, 56])
    shapes = [[1, 1, 1], [19, 10, 3], [1, 0, 0], [0, 1, 1], [5, 5, 0]]
    gold = draw_labels(rng, n, rng.choice(shapes))
    mode = rng.random()
    if mode < 0.15:
        pred = list(gold)
    elif mode < 0.3:
        pred = [(g + 1) % 3 for g in gold]
    elif mode < 0.45:
        pred = [rng.randrange(3)] * n
    else:
        pred = [g if rng.random() < 0.6 else rng.randrange(3) for g in gold]
    return {"task": "cb", "pred": pred, "gold": gold, "accuracy": accuracy(pred, gold),
            "macro_f1": macro_f1(pred, gold, [0, 1, 2])}


def multirc_case(rng):
    n_questions = rng.choice([1, 2, 3, 7, 20, 60])
    pred, gold, question = [], [], []
    ids = rng.sample(range(10000), n_questions)  # question ids in runs, values arbitrary
    p_true = rng.choice([0.0, 0.3, 0.45, 1.0])
    for q in ids:
        for _ in range(rng.randint(1, 6)):
            g = 1 if rng.random() < p_true else 0
            gold.append(g)
            question.append(q)
    mode = rng.random()
    if mode < 0.15:
        pred = list(gold)
    elif mode < 0.3:
        pred = [rng.randrange(2)] * len(gold)
    else:
        pred = [g if rng.random() < 0.8 else 1 - g for g in gold]
    return {"task": "multirc", "pred": pred, "gold": gold, "group": question,
            "accuracy": accuracy(pred, gold), "f1a": precision_recall_f1(pred, gold, 1)[2],
            "em": exact_match(pred, gold, question)}


def binary_case(rng):
    n = rng.choice([1, 4, 32, 277])
    gold = draw_labels(rng, n, rng.choice([[1, 1], [1, 3], [1, 0]]))
    pred = [g if rng.random() < 0.7 else 1 - g for g in gold]
    return {"task": "rte", "pred": pred, "gold": gold, "accuracy": accuracy(pred, gold)}


def selfcheck():
    # the hand-computed values of tests/test_tasks.c
    gold, pred = [0, 0, 1, 2, 2, 1], [0, 1, 1, 2, 0, 1]
    assert abs(macro_f1(pred, gold, [0, 1, 2]) - 59 / 90) < 1e-15
    mg, mp = [1, 0, 0, 1, 1, 0, 0, 1, 0], [1, 0, 1, 1, 1, 0, 0, 0, 0]
    q = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    assert abs(precision_recall_f1(mp, mg, 1)[2] - 0.75) < 1e-15
    assert abs(exact_match(mp, mg, q) - 1 / 3) < 1e-15
    assert macro_f1([0, 0, 1], [0, 0, 1], [0, 1, 2]) == 2 / 3


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    out, seed, n_cases = args[0], 18, 200
    if "--seed" in args:
        seed = int(args[args.index("--seed") + 1])
    if "--cases" in args:
        n_cases = int(args[args.index("--cases") + 1])
    selfcheck()
    rng = random.Random(seed)
    makers = [cb_case, multirc_case, binary_case]
    cases = [makers[i % 3](rng) for i in range(n_cases)]
    with open(out, "w") as f:
        json.dump({"seed": seed, "cases": cases}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
