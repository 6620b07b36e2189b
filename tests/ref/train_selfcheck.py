#!/usr/bin/env python3
"""Self-check of the training reference train_ref.py (a few seconds; exit 0 = all good).

  train_selfcheck.py [-v]

Checks:
  (a) adamw_update equals torch.optim.AdamW (bit for bit, fp32 and fp64; decayed 2-D and
      undecayed 1-D tensors, several steps, changing lr);
  (b) lr_factor equals the Hugging Face LambdaLR lambdas (written out as in transformers) and
      hand-computed values, for warmup + cosine / linear / constant, with and without min_lr;
  (c) BAdam with one block holding every parameter and K >= max_steps equals method adam
      (fp32 and bf16 storage);
  (d) the LoRA linear hook equals a plain linear with W + scale * B @ A, and the whole model
      forward with adapters equals the forward with merged weights (every target module);
  (e) clip_grads_ equals torch.nn.utils.clip_grad_norm_ (clipping and non-clipping cases);
  (f) bf16 storage: after a step the active block's bf16 weights equal master.to(bfloat16),
      the other weights are untouched;
  plus: batching (wrap-around, right padding, target shift); loss / gradients of a step equal
  llama_ref on the concatenated micro-batches (grad_accum normalisation); BAdam block switch
  (state restarts, frozen parameters unchanged, block visit order); SGD-BCD update by hand;
  the command line end to end (badam bf16 and lora) with the fixture generator.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import llama_ref as ref  # noqa: E402
import make_tiny_model as mk  # noqa: E402
import make_train_fixture as mf  # noqa: E402
import st  # noqa: E402
import train_ref as tr  # noqa: E402

VERBOSE = "-v" in sys.argv
# train_ref.adamw_update mirrors torch 1.13's _single_tensor_adamw op by op (bitwise equal);
# torch >= 2 updates the first moment with lerp_, equal only to rounding.
BITWISE = int(torch.__version__.split(".")[0]) < 2
FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)
    elif VERBOSE:
        print("ok:", what)


def maxrel(a, b):
    a, b = a.double(), b.double()
    m = float(b.abs().max())
    return float((a - b).abs().max()) / (m if m > 0 else 1.0)


def conf_of(**kw):
    base = dict(method="adam", lr=1e-3, max_steps=4, batch_size=2, grad_accum=1)
    base.update(kw)
    return tr.normalize_config(base)


def examples_for(cfg, n=6, seed=0, lo=4, hi=9):
    return [(e["input_ids"], e["labels"])
            for e in mf.make_examples(n, cfg["vocab_size"], lo, hi, seed)]


# ------------------------------------------------------------------------------ (a)

def check_adamw():
    for dtype in (torch.float32, torch.float64):
        g = torch.Generator().manual_seed(1)
        w2 = torch.randn(5, 7, generator=g, dtype=dtype)
        w1 = torch.randn(7, generator=g, dtype=dtype)
        tw2, tw1 = w2.clone().requires_grad_(True), w1.clone().requires_grad_(True)
        opt = torch.optim.AdamW([{"params": [tw2], "weight_decay": 0.1},
                                 {"params": [tw1], "weight_decay": 0.0}],
                                lr=1e-2, betas=(0.8, 0.95), eps=1e-6)
        s2, s1 = tr.AdamState(w2), tr.AdamState(w1)
        ok = True
        for step in range(6):
            lr = 1e-2 * (0.5 + 0.1 * step)
            g2 = torch.randn(5, 7, generator=g, dtype=dtype) * (10 ** -step)
            g1 = torch.randn(7, generator=g, dtype=dtype)
            for grp in opt.param_groups:
                grp["lr"] = lr
            tw2.grad, tw1.grad = g2.clone(), g1.clone()
            opt.step()
            tr.adamw_update(w2, g2, s2, lr, 0.8, 0.95, 1e-6, 0.1 if tr.decays(w2) else 0.0)
            tr.adamw_update(w1, g1, s1, lr, 0.8, 0.95, 1e-6, 0.1 if tr.decays(w1) else 0.0)
            if BITWISE:
                ok = ok and torch.equal(w2, tw2.detach()) and torch.equal(w1, tw1.detach())
            else:
                tol = 1e-6 if dtype == torch.float32 else 1e-13
                ok = ok and maxrel(w2, tw2.detach()) < tol and maxrel(w1, tw1.detach()) < tol
        how = "bit for bit" if BITWISE else "to rounding (torch >= 2 uses lerp)"
        check(ok, f"(a) adamw_update == torch.optim.AdamW {how} ({dtype})")
        check(s2.step == 6 and maxrel(s2.v, opt.state[tw2]["exp_avg_sq"]) < 1e-6,
              f"(a) AdamW state (step count, second moment) matches ({dtype})")


# ------------------------------------------------------------------------------ (b)

def hf_lambda(kind, warmup, total, min_lr_rate):
    """The transformers lr lambdas (optimization.py), written out."""
    def cosine(step):  # _get_cosine_schedule_with_warmup_lr_lambda (+ min_lr_rate variant)
        if step < warmup:
            return float(step) / float(max(1, warmup))
        progress = float(step - warmup) / float(max(1, total - warmup))
        factor = 0.5 * (1.0 + math.cos(math.pi * 2.0 * 0.5 * progress))
        factor = factor * (1 - min_lr_rate) + min_lr_rate
        return max(0, factor)

    def linear(step):  # _get_linear_schedule_with_warmup_lr_lambda (min_lr_rate = 0)
        if step < warmup:
            return float(step) / float(max(1, warmup))
        return max(0.0, float(total - step) / float(max(1, total - warmup)))

    def constant(step):  # _get_constant_schedule_with_warmup_lr_lambda
        if step < warmup:
            return float(step) / float(max(1.0, warmup))
        return 1.0
    return {"cosine": cosine, "linear": linear, "constant": constant}[kind]


def check_schedule():
    ok = True
    for kind in ("cosine", "linear", "constant"):
        for warmup, total, mr in ((3, 10, 0.0), (0, 7, 0.0), (2, 9, 0.1), (5, 5, 0.0)):
            if kind == "linear" and mr:
                continue
            f = hf_lambda(kind, warmup, total, mr)
            for s in range(total):
                ok = ok and abs(tr.lr_factor(s, kind, warmup, total, mr) - f(s)) < 1e-15
    check(ok, "(b) lr_factor == transformers lambdas (cosine, linear, constant, warmup)")
    hand = [(0, 0.0), (1, 1 / 3), (2, 2 / 3), (3, 1.0),
            (5, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 2 / 7))),
            (9, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 6 / 7)))]
    check(all(abs(tr.lr_factor(s, "cosine", 3, 10, 0.1) - v) < 1e-15 for s, v in hand),
          "(b) warmup 3 + cosine over 10 steps, min_lr_ratio 0.1: hand values")
    check(abs(tr.lr_factor(4, "linear", 2, 10, 0.2) - (0.2 + 0.8 * 0.75)) < 1e-15 and
          tr.lr_factor(1, "constant", 4, 10, 0) == 0.25,
          "(b) linear with min_lr_ratio and constant with warmup: hand values")


# ------------------------------------------------------------------------------ (c)

def check_badam_equals_adam(models):
    for dt in ("F32", "BF16"):
        d = models[("untied_pad_llama3", dt)]
        cfg, w = ref.load_model(d)
        ex = examples_for(cfg)
        common = dict(max_steps=5, lr=2e-3, weight_decay=0.05, clip=0.5, schedule="cosine",
                      warmup_steps=1, grad_accum=2,
                      dtype="float32" if dt == "F32" else "bfloat16")
        adam = tr.Trainer(cfg, w, conf_of(method="adam", **common))
        t_adam = adam.run(ex)
        badam = tr.Trainer(cfg, w, conf_of(method="badam", blocks=[list(w)], switch_every=5,
                                           **common))
        t_badam = badam.run(ex)
        a, b = adam.model_tensors(), badam.model_tensors()
        check(all(torch.equal(a[n], b[n]) for n in a) and
              [r["loss"] for r in t_adam] == [r["loss"] for r in t_badam],
              f"(c) BAdam(one block = all parameters, K >= steps) == adam ({dt})")
        check(any(not torch.equal(a[n], w[n].to(a[n].dtype)) for n in a),
              f"(c) the parameters did change ({dt})")


# ------------------------------------------------------------------------------ (d)

def check_lora(models, tmp):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 4, 6, generator=g, dtype=torch.float64)
    W = torch.randn(5, 6, generator=g, dtype=torch.float64)
    b = torch.randn(5, generator=g, dtype=torch.float64)
    A = torch.randn(2, 6, generator=g, dtype=torch.float64)
    B = torch.randn(5, 2, generator=g, dtype=torch.float64)
    P = {"lin.weight": W, "lin.bias": b}
    with tr.lora_forward({"lin": (A, B)}, 0.75):
        y = ref.linear(x, P, "lin")
    y0 = x @ (W + 0.75 * B @ A).t() + b
    check(float((y - y0).abs().max()) < 1e-12, "(d) LoRA linear == plain linear with merged W")
    check(ref.linear is tr._BASE_LINEAR, "(d) llama_ref.linear restored after the LoRA hook")

    d = models[("llama_bias", "F32")]  # o_proj has a bias here
    cfg, w = ref.load_model(d)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    adir = os.path.join(tmp, "ad_llama_bias")
    mf.make_adapter(d, adir, 3, 6, targets, std=0.1, seed=2)
    conf = conf_of(method="lora", lora_rank=3, lora_alpha=6, lora_targets=targets)
    ad = tr.load_adapter(adir, cfg, conf)
    check(len(ad) == 7 * cfg["n_layers"], "(d) adapter on every target module of every layer")
    ids, _ = tr.make_batch(examples_for(cfg, 3))
    Pd = {n: t.double() for n, t in w.items()}
    Pm = dict(Pd)
    for mod, (a_, b_) in ad.items():
        Pm[mod + ".weight"] = Pd[mod + ".weight"] + 2.0 * b_.double() @ a_.double()
    with tr.lora_forward({k: (a_.double(), b_.double()) for k, (a_, b_) in ad.items()}, 2.0):
        l_hook = ref.forward(cfg, Pd, ids)
    l_merged = ref.forward(cfg, Pm, ids)
    l_base = ref.forward(cfg, Pd, ids)
    check(float((l_hook - l_merged).abs().max()) < 1e-11 and
          float((l_hook - l_base).abs().max()) > 1e-3,
          "(d) model forward with adapters == forward with merged weights (and != base)")

    # lm_head adapter (untied model): merged into the head weight; training runs.
    d2 = models[("untied_pad_llama3", "F32")]
    cfg2, w2 = ref.load_model(d2)
    adir2 = os.path.join(tmp, "ad_head")
    mf.make_adapter(d2, adir2, 2, 4, ["v_proj", "lm_head"], seed=3)
    conf2 = conf_of(method="lora", lora_rank=2, lora_alpha=4, lora_targets=["v_proj", "lm_head"],
                    max_steps=2)
    t2 = tr.Trainer(cfg2, w2, conf2, adapters=tr.load_adapter(adir2, cfg2, conf2))
    t2.run(examples_for(cfg2))
    m2 = t2.model_tensors()
    check(all(torch.equal(m2[n], w2[n]) for n in w2) and
          "base_model.model.lm_head.lora_B.weight" in t2.adapter_tensors(),
          "(d) lora: base weights frozen; lm_head adapter trained")


# ------------------------------------------------------------------------------ (e)

def check_clip():
    g = torch.Generator().manual_seed(3)
    for max_norm in (0.5, 1e3):
        gs = [torch.randn(4, 3, generator=g), torch.randn(5, generator=g)]
        ps = [torch.zeros_like(t, requires_grad=True) for t in gs]
        for p, t in zip(ps, gs):
            p.grad = t.clone()
        tn = torch.nn.utils.clip_grad_norm_(ps, max_norm)
        mine = [t.clone() for t in gs]
        n = tr.clip_grads_(mine, max_norm)
        check(abs(n - float(tn)) <= 1e-6 * n and
              all(maxrel(m, p.grad) < 1e-6 for p, m in zip(ps, mine)),
              f"(e) clip_grads_ == clip_grad_norm_ (max_norm {max_norm})")
    gs = [torch.tensor([3.0, 0.0], dtype=torch.float64), torch.tensor([4.0], dtype=torch.float64)]
    n = tr.clip_grads_(gs, 1.0)
    check(n == 5.0 and abs(float(gs[0][0]) - 3.0 / (5.0 + 1e-6)) < 1e-15,
          "(e) norm 5 clipped to 1: g * 1 / (5 + 1e-6)")
    gs = [torch.tensor([3.0, 4.0], dtype=torch.float64)]
    check(tr.clip_grads_(gs, 0.0) == 5.0 and float(gs[0][1]) == 4.0,
          "(e) clip 0: norm measured, gradients untouched")


# ------------------------------------------------------------------------------ (f)

def check_bf16(models):
    d = models[("gqa_tied_bias", "BF16")]
    cfg, w = ref.load_model(d)
    blocks = tr.default_blocks(cfg, include_embedding=True)
    t = tr.Trainer(cfg, w, conf_of(method="badam", blocks=blocks, block_order=[1, 0],
                                   switch_every=2, dtype="bfloat16", lr=5e-3, max_steps=3))
    ex = examples_for(cfg)
    t.step(0, ex)
    act = blocks[1]
    check(all(t.store[n].dtype == torch.bfloat16 for n in t.names) and
          all(torch.equal(t.store[n], t.master[n].to(torch.bfloat16)) for n in act),
          "(f) bf16 weights == master.to(bfloat16) after a step")
    check(all(t.master[n].dtype == torch.float64 for n in act) and set(t.master) == set(act),
          "(f) masters only for the active block (compute dtype)")
    check(all(torch.equal(t.store[n], w[n]) for n in t.names if n not in act) and
          all(not torch.equal(t.store[n], w[n]) for n in act if n.endswith("proj.weight")),
          "(f) other weights untouched; active matrices changed")
    t.step(1, ex)
    t.step(2, ex)   # switch to block 0 (the embedding): master rebuilt from the bf16 weights
    check(t.block == 0 and set(t.master) == {"model.embed_tokens.weight"} and
          t.state["model.embed_tokens.weight"].step == 1,
          "(f) switch: new master and optimizer state for the new block")


# ------------------------------------------------------------------------------ extras

def check_batching():
    ex = [([5, 6, 7], [-100, 6, 7]), ([8, 9], [-100, -100]), ([3, 4, 5, 6], [-100, -100, 5, 6])]
    ids, tg = tr.make_batch([ex[0], ex[1], ex[2]])
    check(ids.tolist() == [[5, 6, 7, 0], [8, 9, 0, 0], [3, 4, 5, 6]] and
          tg.tolist() == [[6, 7, -100, -100], [-100, -100, -100, -100], [-100, 5, 6, -100]],
          "batch: right padding with 0, target[t] = ids[t+1] if labels[t+1] != -100")
    check(tr.micro_batch_indices(1, 1, 2, 2, 3) == [0, 1] and
          tr.micro_batch_indices(0, 1, 2, 2, 3) == [2, 0] and
          tr.micro_batch_indices(2, 0, 2, 2, 5) == [3, 4],
          "batch: micro-batch m = step*grad_accum + a takes examples (m*bs + j) mod N")


def check_step_grads(models):
    """Step loss / gradients == llama_ref on all micro-batches of the step at once."""
    d = models[("untied_pad_llama3", "F32")]
    cfg, w = ref.load_model(d)
    ex = examples_for(cfg, n=5, lo=3, hi=9)
    t = tr.Trainer(cfg, w, conf_of(method="adam", batch_size=2, grad_accum=3))
    batches = tr.step_batches(ex, 1, 2, 3)
    loss, n, grads = t._loss_and_grads(batches)
    rows = [examples_[i] for examples_ in [ex] for a in range(3)
            for i in tr.micro_batch_indices(1, a, 2, 3, 5)]
    ids, tg = tr.make_batch(rows)
    _, rloss, rn, rgrads = ref.run(cfg, w, ids, tg)
    check(n == rn and abs(loss - float(rloss)) < 1e-12,
          "step loss = sum of token losses of all micro-batches / their total target count")
    check(max(maxrel(grads[k], rgrads[k]) for k in rgrads) < 1e-10,
          "step gradients == llama_ref gradients of the concatenated micro-batches")


def check_block_switch(models):
    d = models[("mistral_headdim", "F32")]
    cfg, w = ref.load_model(d)
    blocks = tr.default_blocks(cfg)          # layer 0, layer 1 (embedding / norm / head: none)
    ex = examples_for(cfg)
    c = conf_of(method="badam", blocks=blocks, block_order=[1, 0], switch_every=2,
                max_steps=6, lr=1e-2, weight_decay=0.1)
    t = tr.Trainer(cfg, w, c)
    trace, snaps = [], []
    for s in range(6):
        trace.append(t.step(s, ex))
        snaps.append({n: v.clone() for n, v in t.store.items()})   # float64 weights
    check([r["block"] for r in trace] == [1, 1, 0, 0, 1, 1],
          "badam: block_order repeated cyclically, switch every K steps")
    check(t.state[blocks[1][0]].step == 2, "badam: optimizer state restarts at each visit")
    frozen = [n for n in w if not n.startswith("model.layers.")]
    check(all(torch.equal(snaps[-1][n], w[n].double()) for n in frozen),
          "badam: parameters in no block never change")
    check(all(torch.equal(snaps[3][n], snaps[1][n]) for n in blocks[1]) and
          all(torch.equal(snaps[1][n], w[n].double()) for n in blocks[0]),
          "badam: only the active block changes")
    # Visit 2 (block 1 again) == a new trainer (fresh AdamW state) started at step 4 from the
    # weights after step 3.
    t2 = tr.Trainer(cfg, w, c)
    t2.store = {n: v.clone() for n, v in snaps[3].items()}
    for s in (4, 5):
        t2.step(s, ex)
    check(all(torch.equal(t2.store[n], snaps[5][n]) for n in w),
          "badam: a revisit equals fresh AdamW on the block from the current weights")
    # SGD-BCD by hand.
    cs = conf_of(method="sgd-bcd", blocks=blocks, switch_every=1, max_steps=1, lr=0.1,
                 weight_decay=0.2)
    ts = tr.Trainer(cfg, w, cs)
    ts.step(0, ex)
    ids, tg = tr.make_batch([ex[0], ex[1]])
    _, _, _, g = ref.run(cfg, w, ids, tg)
    ok = True
    for n in w:
        p0 = w[n].double()
        exp = p0 * (1 - 0.1 * 0.2 * (p0.dim() == 2)) - 0.1 * g[n] if n in blocks[0] else p0
        ok = ok and maxrel(ts.store[n], exp) < 1e-12
    check(ok, "sgd-bcd: p = p*(1 - lr*wd) - lr*g on the active block (wd on matrices only)")


def check_cli(models, tmp):
    d = models[("gqa_tied_bias", "BF16")]
    cfg, _ = ref.load_model(d)
    data = os.path.join(tmp, "data")
    adir = os.path.join(tmp, "cli_adapter")
    mf.main(["--out", data, "--model", d, "--n", "7", "--min-len", "3", "--max-len", "10",
             "--n-masked", "1", "--adapter", adir, "--rank", "2", "--alpha", "4",
             "--targets", "q_proj", "down_proj", "--seed", "4"])
    lines = open(os.path.join(data, "train.jsonl")).read().splitlines()
    exs = [json.loads(x) for x in lines]
    check(len(exs) == 7 and all(3 <= len(e["input_ids"]) <= 10 for e in exs) and
          all(min(e["input_ids"]) >= 3 and max(e["input_ids"]) < cfg["vocab_size"] for e in exs)
          and all(set(e["labels"]) == {-100} for e in exs[-1:]) and
          all(e["labels"][0] == -100 and e["labels"][-1] == e["input_ids"][-1]
              for e in exs[:-1]),
          "fixture: lengths, id range, prompt prefix masked, masked example last")
    ad = st.load(os.path.join(adir, "adapter_model.safetensors"))
    check(len(ad) == 2 * 2 * cfg["n_layers"] and
          all(float(t.abs().min()) >= 0 and float(t.std()) > 0.01 for t in ad.values()),
          "fixture: adapter with nonzero A and B for each target of each layer")
    conf = dict(method="badam", dtype="bfloat16", lr=1e-3, max_steps=5, batch_size=3,
                grad_accum=2, switch_every=2, block_order=[1, 0], clip=1.0,
                schedule="linear", warmup_steps=1, weight_decay=0.01,
                blocks=tr.default_blocks(cfg, include_embedding=True))
    cpath = os.path.join(tmp, "badam.json")
    with open(cpath, "w") as f:
        json.dump(conf, f)
    out = os.path.join(tmp, "out_badam")
    r = subprocess.run([sys.executable, os.path.join(HERE, "train_ref.py"), "--model", d,
                        "--data", os.path.join(data, "train.jsonl"), "--config", cpath,
                        "--out", out], capture_output=True, text=True)
    check(r.returncode == 0, "cli badam: exit 0 " + r.stderr[-300:])
    if r.returncode == 0:
        trace = json.load(open(os.path.join(out, "trace.json")))
        hdr, _, _ = st.read_header(os.path.join(out, "model.safetensors"))
        check(len(trace) == 5 and [x["block"] for x in trace] == [1, 1, 0, 0, 1] and
              trace[0]["lr"] == 0.0 and all(x["loss"] > 0 and x["grad_norm"] > 0
                                            for x in trace),
              "cli badam: trace records (block, lr warmup, loss, grad_norm)")
        check(all(v["dtype"] == "BF16" for v in hdr.values()) and
              os.path.exists(os.path.join(out, "master.safetensors")),
              "cli badam: model.safetensors in BF16 + master.safetensors")
    lconf = dict(method="lora", dtype="bfloat16", lr=1e-3, max_steps=2, lora_rank=2,
                 lora_alpha=4, lora_targets=["q_proj", "down_proj"], weight_decay=0.1)
    lpath = os.path.join(tmp, "lora.json")
    with open(lpath, "w") as f:
        json.dump(lconf, f)
    out = os.path.join(tmp, "out_lora")
    r = subprocess.run([sys.executable, os.path.join(HERE, "train_ref.py"), "--model", d,
                        "--data", os.path.join(data, "train.jsonl"), "--config", lpath,
                        "--out", out, "--init-adapter", adir], capture_output=True, text=True)
    check(r.returncode == 0, "cli lora: exit 0 " + r.stderr[-300:])
    if r.returncode == 0:
        a2 = st.load(os.path.join(out, "adapter_model.safetensors"))
        m0, m2 = st.load(os.path.join(d, "model.safetensors")), st.load(
            os.path.join(out, "model.safetensors"))
        check(set(a2) == set(ad) and all(not torch.equal(a2[n], ad[n]) for n in ad) and
              all(torch.equal(m0[n], m2[n]) for n in m0),
              "cli lora: adapters trained (PEFT names), base weights unchanged")


def main():
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for preset, dt in (("untied_pad_llama3", "F32"), ("untied_pad_llama3", "BF16"),
                           ("gqa_tied_bias", "BF16"), ("llama_bias", "F32"),
                           ("mistral_headdim", "F32")):
            dd = os.path.join(tmp, f"{preset}_{dt}")
            mk.main(["--out", dd, "--preset", preset, "--dtype", dt])
            models[(preset, dt)] = dd
        check_adamw()
        check_schedule()
        check_badam_equals_adam(models)
        check_lora(models, tmp)
        check_clip()
        check_bf16(models)
        check_batching()
        check_step_grads(models)
        check_block_switch(models)
        check_cli(models, tmp)
    if FAILS:
        print(f"{len(FAILS)} check(s) failed")
        return 1
    print("train_selfcheck: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
