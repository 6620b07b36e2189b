#!/usr/bin/env python3
"""Python port of badam's masked-LM masking (include/badam/mlm.h), for the exact-draw check of
tests/test_mlm_mask.c. Plain Python (no torch).

  mlm_mask_ref.py --seed S --epoch E --vocab V --mask M --pad P --special a,b,... \
                  --prob 0.15 --rows ROWS.json
ROWS.json: {"units": [u, ...], "ids": [[id, ...], ...]}; prints JSON
{"inputs": [[...]], "targets": [[...]]} for each row (real tokens only).
"""
import argparse
import json

M64 = (1 << 64) - 1


def rng_next(s):
    """splitmix64: returns (output, new state)."""
    s = (s + 0x9E3779B97F4A7C15) & M64
    z = s
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31), s


def rng_seed(seed, stream):
    a, s = rng_next(seed & M64)
    s = a ^ ((stream * 0xD1B54A32D192ED03) & M64)
    _, s = rng_next(s)
    return s


def unit_of(x):
    return (x >> 11) * 2.0 ** -53


def mask_row(seed, epoch, unit, ids, vocab, mask_id, special, prob):
    base = (rng_seed(seed, epoch) + unit * 0xA0761D6478BD642F) & M64
    inputs, targets = list(ids), [-100] * len(ids)
    for t, tok in enumerate(ids):
        if tok < 0 or tok >= vocab or tok in special:
            continue
        s = (base + t * 0xE7037ED1A0B428DB) & M64
        a, s = rng_next(s)
        c, s = rng_next(s)
        r, s = rng_next(s)
        if not unit_of(a) < prob:
            continue
        targets[t] = tok
        uc = unit_of(c)
        if uc < 0.8:
            inputs[t] = mask_id
        elif uc < 0.9:
            inputs[t] = int(unit_of(r) * float(vocab))
    return inputs, targets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--epoch", type=int, required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--mask", type=int, required=True)
    ap.add_argument("--pad", type=int, required=True)
    ap.add_argument("--special", default="")
    ap.add_argument("--prob", type=float, default=0.15)
    ap.add_argument("--rows", required=True)
    a = ap.parse_args()
    special = {int(x) for x in a.special.split(",") if x} | {a.mask, a.pad}
    with open(a.rows) as f:
        rows = json.load(f)
    out = {"inputs": [], "targets": []}
    for unit, ids in zip(rows["units"], rows["ids"]):
        i, t = mask_row(a.seed, a.epoch, unit, ids, a.vocab, a.mask, special, a.prob)
        out["inputs"].append(i)
        out["targets"].append(t)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
