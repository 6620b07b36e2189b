#!/usr/bin/env python3
"""Self-check of the PyTorch reference (runs in a few seconds; exit 0 = all good).

  selfcheck.py [-v]

Checks:
  * st.py round trip (F32, BF16, F16, I32) and header alignment;
  * every preset of make_tiny_model.py -> llama_ref.py: output names, shapes, n_tokens, loss
    (one preset through the command lines, one from BF16 weights, one from shards);
  * loss against an explicit per-token log-softmax sum;
  * gradients against float64 central finite differences (single entries of several
    parameter kinds, and a directional derivative over all parameters at once);
  * llama3 RoPE inv_freq against hand-calculated values in each regime (kept, smooth, divided);
  * the rotate_half convention (dimension i pairs with i + head_dim/2, not with i + 1) and the
    relative-position property of RoPE;
  * the causal / sliding-window mask; right padding does not change real positions;
  * repeat_kv convention (query head h uses kv head h // (H / Hkv)); tied-embedding gradient
    = input-embedding gradient + LM-head gradient of the untied equivalent.
"""
import copy
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
import st  # noqa: E402

VERBOSE = "-v" in sys.argv
FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)
    elif VERBOSE:
        print("ok:", what)


def close(a, b, atol, rtol=0.0):
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    return bool(((a - b).abs() <= atol + rtol * b.abs()).all())


def make(tmp, preset, dtype="F32", shards=1, seed=0):
    d = os.path.join(tmp, f"{preset}_{dtype}_{shards}")
    args = ["--out", d, "--preset", preset, "--dtype", dtype, "--seed", str(seed)]
    if shards > 1:
        args += ["--shards", str(shards)]
    mk.main(args)
    return d


def check_st(tmp):
    p = os.path.join(tmp, "rt.safetensors")
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, generator=g)
    t = {"a": x, "b": x.to(torch.bfloat16), "c": x.to(torch.float16),
         "d": torch.arange(7, dtype=torch.int32), "e": torch.zeros(0)}
    st.save(t, p)
    back = st.load(p)
    for k in t:
        check(back[k].dtype == t[k].dtype and torch.equal(back[k], t[k]), f"st round trip {k}")
    with open(p, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        hdr = json.loads(f.read(n))
    check(n % 8 == 0 and hdr["__metadata__"]["format"] == "pt", "st header padded, metadata")
    # BF16 bit patterns: 1.0 = 0x3F80, -2.0 = 0xC000 (little-endian on disk).
    st.save({"w": torch.tensor([1.0, -2.0])}, p, dtype="BF16")
    with open(p, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        f.seek(8 + n)
        raw = f.read()
    check(raw == bytes([0x80, 0x3F, 0x00, 0xC0]), "st BF16 bytes")


def check_presets(tmp):
    for preset in sorted(mk.PRESETS):
        d = make(tmp, preset)
        cfg, w = ref.load_model(d)
        ids, tg = ref.load_batch(os.path.join(d, "batch.json"))
        B, T = ids.shape
        spec = mk.PRESETS[preset]["batch"]
        check((B, T) == (spec["B"], spec["T"]), f"{preset}: batch shape")
        for b, L in enumerate(spec["lengths"]):
            row_ok = all(int(tg[b, t]) == (int(ids[b, t + 1]) if t < L - 1 else -100)
                         or int(tg[b, t]) == -100 for t in range(T))
            pads_ok = all(int(ids[b, t]) == mk.PAD_ID and int(tg[b, t]) == -100
                          for t in range(L, T))
            check(row_ok and pads_ok and int(tg[b, L - 1]) == -100, f"{preset}: targets row {b}")
        logits, loss, n, grads = ref.run(cfg, w, ids, tg)
        V = cfg["vocab_size"]
        check(tuple(logits.shape) == (B, T, V), f"{preset}: logits shape")
        check(n == int((tg != -100).sum()) and n > 0, f"{preset}: n_tokens")
        check(set(grads) == {nm for nm, _ in ref.param_names(cfg)}, f"{preset}: grad names")
        check(all(tuple(grads[k].shape) == tuple(w[k].shape) for k in grads), f"{preset}: shapes")
        check(("lm_head.weight" in grads) == (not cfg["tie"]), f"{preset}: lm_head grad iff untied")
        check(bool(torch.isfinite(loss)) and 0.5 * math.log(V) < float(loss) < 2 * math.log(V),
              f"{preset}: loss plausible ({float(loss):.3f})")
        check(0.2 < float(logits.std()) < 3.0, f"{preset}: logits O(1)")
        # Loss by an explicit per-token sum.
        s, cnt = 0.0, 0
        for b in range(B):
            for t in range(T):
                y = int(tg[b, t])
                if y == -100:
                    continue
                row = logits[b, t].double()
                s += float(torch.logsumexp(row, 0) - row[y])
                cnt += 1
        check(cnt == n and abs(s / cnt - float(loss)) < 1e-12, f"{preset}: loss = mean token CE")
        # Every non-embedding parameter gets a non-zero gradient.
        zero = [k for k, g in grads.items() if k != "model.embed_tokens.weight" and
                float(g.abs().max()) == 0.0]
        check(not zero, f"{preset}: non-zero grads (zero: {zero})")
        # float32 computation agrees with float64 to fp32 accuracy (a guide for C tolerances).
        l32, loss32, _, g32 = ref.run(cfg, w, ids, tg, torch.float32)
        dl = float((l32.double() - logits).abs().max())
        dg = max(float((g32[k].double() - grads[k]).abs().max() / (grads[k].abs().max() + 1e-30))
                 for k in grads)
        check(dl < 1e-4 and dg < 1e-3, f"{preset}: fp32 vs fp64 logits {dl:.1e}, grads rel {dg:.1e}")
        if VERBOSE:
            print(f"   {preset}: loss {float(loss):.6f} n {n}; fp32-fp64 max |dlogit| {dl:.2e}, "
                  f"max rel grad diff {dg:.2e}")


def check_cli_bf16_shards(tmp):
    # llama_ref.py's command line end to end (make_tiny_model.py's main() in-process: each
    # extra interpreter costs a second of torch import).
    d = os.path.join(tmp, "cli")
    py = sys.executable
    mk.main(["--out", d, "--preset", "gqa_tied_bias", "--seed", "3"])
    out = os.path.join(tmp, "cli.safetensors")
    subprocess.run([py, os.path.join(HERE, "llama_ref.py"), "--model", d, "--batch",
                    os.path.join(d, "batch.json"), "--out", out], check=True)
    o = st.load(out)
    cfg, w = ref.load_model(d)
    names = {"logits", "loss", "n_tokens"} | {"grad." + n for n, _ in ref.param_names(cfg)}
    check(set(o) == names and all(v.dtype == torch.float32 for v in o.values()),
          "cli: output names, F32")
    check(tuple(o["loss"].shape) == (1,) and tuple(o["n_tokens"].shape) == (1,), "cli: [1] scalars")
    ids, tg = ref.load_batch(os.path.join(d, "batch.json"))
    logits, loss, n, grads = ref.run(cfg, w, ids, tg)
    check(close(o["logits"], logits, 1e-6) and float(o["n_tokens"][0]) == n and
          close(o["grad.model.embed_tokens.weight"], grads["model.embed_tokens.weight"], 1e-7),
          "cli: file matches in-process run")
    # BF16 weights: the folder says bfloat16 and the file holds BF16; values are exact upcasts.
    d16 = make(tmp, "untied_pad_llama3", "BF16")
    with open(os.path.join(d16, "config.json")) as f:
        check(json.load(f)["torch_dtype"] == "bfloat16", "bf16: torch_dtype")
    hdr, _, _ = st.read_header(os.path.join(d16, "model.safetensors"))
    check(all(v["dtype"] == "BF16" for v in hdr.values()), "bf16: tensors stored as BF16")
    d32 = make(tmp, "untied_pad_llama3", "F32")
    _, w16 = ref.load_model(d16)
    _, w32 = ref.load_model(d32)
    check(all(torch.equal(w16[k].float(), w32[k].to(torch.bfloat16).float()) for k in w32),
          "bf16: weights are the F32 weights rounded to bf16")
    # Shards give the same tensors.
    dsh = make(tmp, "untied_pad_llama3", "F32", shards=3)
    _, wsh = ref.load_model(dsh)
    check(list(wsh) == list(w32) and all(torch.equal(wsh[k], w32[k]) for k in w32),
          "shards: same tensors as the single file")


def loss_of(cfg, P, ids, tg):
    return ref.loss_fn(ref.forward(cfg, P, ids), tg)[0]


def check_finite_differences(tmp):
    gen = torch.Generator().manual_seed(123)
    picks = {
        "gqa_tied_bias": ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.bias",
                          "model.layers.0.self_attn.k_proj.weight",
                          "model.layers.1.self_attn.v_proj.bias",
                          "model.layers.0.input_layernorm.weight", "model.norm.weight"],
        "untied_pad_llama3": ["model.layers.0.self_attn.q_proj.weight",
                              "model.layers.2.mlp.gate_proj.weight",
                              "model.layers.1.post_attention_layernorm.weight", "lm_head.weight",
                              "model.embed_tokens.weight"],
        "llama_bias": ["model.layers.0.self_attn.o_proj.bias",
                       "model.layers.1.self_attn.k_proj.bias", "model.layers.0.mlp.down_proj.weight"],
        "mistral_headdim": ["model.layers.0.self_attn.o_proj.weight",
                            "model.layers.1.mlp.up_proj.weight"],
        "mistral_swa": ["model.layers.0.self_attn.k_proj.weight", "lm_head.weight"],
        "llama3_regimes": ["model.layers.1.self_attn.q_proj.weight"],
    }
    eps = 1e-6
    for preset, names in picks.items():
        d = make(tmp, preset)
        cfg, w = ref.load_model(d)
        ids, tg = ref.load_batch(os.path.join(d, "batch.json"))
        _, _, _, grads = ref.run(cfg, w, ids, tg)
        P = {k: v.double() for k, v in w.items()}
        worst = 0.0
        with torch.no_grad():
            for name in names:
                flat = P[name].view(-1)
                g = grads[name].reshape(-1)
                # the entry with the largest gradient plus two random entries
                idx = [int(g.abs().argmax())] + torch.randint(0, flat.numel(), (2,),
                                                             generator=gen).tolist()
                for i in idx:
                    old = float(flat[i])
                    flat[i] = old + eps
                    lp = float(loss_of(cfg, P, ids, tg))
                    flat[i] = old - eps
                    lm = float(loss_of(cfg, P, ids, tg))
                    flat[i] = old
                    fd = (lp - lm) / (2 * eps)
                    err = abs(fd - float(g[i]))
                    worst = max(worst, err)
                    check(err <= 1e-8 + 1e-6 * abs(fd), f"{preset}: d loss / d {name}[{i}] "
                          f"autograd {float(g[i]):.10e} vs fd {fd:.10e}")
            # Directional derivative over all parameters at once.
            dirs = {k: torch.randn(v.shape, generator=gen, dtype=torch.float64) for k, v in P.items()}
            h = 1e-6
            Pp = {k: P[k] + h * dirs[k] for k in P}
            Pm = {k: P[k] - h * dirs[k] for k in P}
            fd = (float(loss_of(cfg, Pp, ids, tg)) - float(loss_of(cfg, Pm, ids, tg))) / (2 * h)
            an = sum(float((grads[k] * dirs[k]).sum()) for k in P)
            check(abs(fd - an) <= 1e-7 * max(1.0, abs(an)),
                  f"{preset}: directional derivative autograd {an:.10e} vs fd {fd:.10e}")
        if VERBOSE:
            print(f"   {preset}: worst single-entry |autograd - fd| = {worst:.2e}")
    # torch.autograd.gradcheck on a few parameters of a small preset.
    d = make(tmp, "mistral_swa")
    cfg, w = ref.load_model(d)
    ids, tg = ref.load_batch(os.path.join(d, "batch.json"))
    base = {k: v.double() for k, v in w.items()}
    sel = ["model.layers.1.input_layernorm.weight", "model.layers.1.self_attn.q_proj.weight"]

    def f(*xs):
        P = dict(base)
        P.update(zip(sel, xs))
        return loss_of(cfg, P, ids, tg)

    xs = tuple(base[k].clone().requires_grad_(True) for k in sel)
    check(torch.autograd.gradcheck(f, xs, eps=1e-6, atol=1e-8, rtol=1e-6, fast_mode=True),
          "gradcheck (fast mode) mistral_swa layer 1")


def check_rope():
    # llama3_regimes: head_dim 16, theta 1e4, factor 8, low 1, high 4, original 64
    # -> high_freq_wavelen = 64/4 = 16, low_freq_wavelen = 64/1 = 64.
    cfg = ref.resolve_config(mk.make_config("llama3_regimes", "F32"))
    inv = ref.rope_inv_freq(cfg)
    # i=0: f = 1, wavelen 2 pi = 6.283 < 16 -> kept: 1.
    check(float(inv[0]) == 1.0, "rope llama3: high frequency kept")
    # i=1: f = 1e4^(-2/16) = 0.31622776601683794, wavelen 19.869176531592203 in [16, 64]:
    # s = (64 / 19.8692 - 1) / (4 - 1) = 0.7403565248957235,
    # f' = (1 - s) f / 8 + s f = 0.24438459943539834.
    check(abs(float(inv[1]) - 0.24438459943539834) < 1e-15, "rope llama3: smooth band (i=1)")
    # i=2: f = 0.1, wavelen 62.83 in [16, 64]: s = (64/62.8319 - 1)/3 = 0.0061972119293767225,
    # f' = 0.013042256043820465.
    check(abs(float(inv[2]) - 0.013042256043820465) < 1e-16, "rope llama3: smooth band (i=2)")
    # i=3: f = 1e4^(-6/16) = 0.03162277660168379, wavelen 198.69 > 64 -> f / 8.
    check(abs(float(inv[3]) - 0.003952847075210474) < 1e-17, "rope llama3: low frequency / factor")
    for i in range(4, 8):
        check(abs(float(inv[i]) - 10000 ** (-2 * i / 16) / 8) < 1e-18, f"rope llama3: divided i={i}")
    # untied_pad_llama3: head_dim 8, theta 5e5, original 16 -> high_wl 4, low_wl 16.
    cfg = ref.resolve_config(mk.make_config("untied_pad_llama3", "F32"))
    inv = ref.rope_inv_freq(cfg)
    # i=0: f = 1, wavelen 6.283 in [4, 16]: s = (16/6.2832 - 1)/3 = 0.5154930298234418,
    # f' = (1 - s)/8 + s = 0.5760564010955116.
    check(abs(float(inv[0]) - 0.5760564010955116) < 1e-15, "rope llama3 preset: smooth i=0")
    # i=1: f = 5e5^(-2/8) = 0.03760603093086393, wavelen 167.08 > 16 -> 0.004700753866357992.
    check(abs(float(inv[1]) - 0.004700753866357992) < 1e-17, "rope llama3 preset: divided i=1")
    # No scaling: plain theta^(-2i/D).
    cfg = ref.resolve_config(mk.make_config("mistral_headdim", "F32"))
    inv = ref.rope_inv_freq(cfg)
    check(close(inv, [10000 ** (-2 * i / 16) for i in range(8)], 1e-18), "rope default inv_freq")

    # rotate_half convention: e_0 rotates into e_{D/2}; e_1 is untouched by frequency 0.
    D = 16
    cos, sin = ref.rope_cos_sin(cfg, 5, torch.float64)
    p = 3
    e0 = torch.zeros(1, 1, 5, D, dtype=torch.float64)
    e0[..., 0] = 1.0
    r = ref.apply_rope(e0, cos, sin)[0, 0, p]
    want = torch.zeros(D, dtype=torch.float64)
    want[0] = math.cos(p * 1.0)
    want[D // 2] = math.sin(p * 1.0)
    check(close(r, want, 1e-15), "rope rotate_half: (x0, x8) rotate together, x1 untouched")
    eh = torch.zeros(1, 1, 5, D, dtype=torch.float64)
    eh[..., D // 2] = 1.0
    r = ref.apply_rope(eh, cos, sin)[0, 0, p]
    want = torch.zeros(D, dtype=torch.float64)
    want[0] = -math.sin(p)
    want[D // 2] = math.cos(p)
    check(close(r, want, 1e-15), "rope rotate_half: x8 -> -sin x0 + cos x8")
    # pair i uses inv_freq[i] on dims (i, i + D/2)
    i = 3
    ei = torch.zeros(1, 1, 5, D, dtype=torch.float64)
    ei[..., i] = 1.0
    r = ref.apply_rope(ei, cos, sin)[0, 0, p]
    a = p * float(inv[i])
    check(abs(float(r[i]) - math.cos(a)) < 1e-15 and abs(float(r[i + D // 2]) - math.sin(a)) < 1e-15
          and float(r.abs().sum()) - abs(math.cos(a)) - abs(math.sin(a)) < 1e-15,
          "rope rotate_half: pair (3, 11) uses inv_freq[3]")
    # relative position: <R_m q, R_n k> depends on m - n only
    g = torch.Generator().manual_seed(5)
    q = torch.randn(1, 1, 1, D, generator=g, dtype=torch.float64).expand(1, 1, 5, D)
    k = torch.randn(1, 1, 1, D, generator=g, dtype=torch.float64).expand(1, 1, 5, D)
    rq, rk = ref.apply_rope(q, cos, sin)[0, 0], ref.apply_rope(k, cos, sin)[0, 0]
    check(abs(float(rq[3] @ rk[1]) - float(rq[4] @ rk[2])) < 1e-12, "rope relative position")


def check_masks_padding_gqa_tied(tmp):
    m = ref.causal_mask(6, 3)
    check([int(m[i].sum()) for i in range(6)] == [1, 2, 3, 3, 3, 3] and bool(m[5, 3]) and
          not bool(m[5, 2]) and not bool(m[2, 3]), "sliding window: i - 3 < j <= i")
    check(bool((ref.causal_mask(5, 0) == torch.ones(5, 5).tril().bool()).all()), "causal mask")
    # Sliding window really matters in mistral_swa (differs from full causal).
    d = make(tmp, "mistral_swa")
    cfg, w = ref.load_model(d)
    ids, tg = ref.load_batch(os.path.join(d, "batch.json"))
    P = {k: v.double() for k, v in w.items()}
    with torch.no_grad():
        a = ref.forward(cfg, P, ids)
        full = dict(cfg, windows=[0] * cfg["n_layers"])
        b = ref.forward(full, P, ids)
    check(close(a[:, :3], b[:, :3], 1e-12) and float((a - b).abs().max()) > 1e-3,
          "sliding window: same first 3 positions, different later")
    # Right padding: changing pad ids changes nothing at real positions.
    d = make(tmp, "untied_pad_llama3")
    cfg, w = ref.load_model(d)
    ids, tg = ref.load_batch(os.path.join(d, "batch.json"))
    P = {k: v.double() for k, v in w.items()}
    ids2 = ids.clone()
    real = torch.zeros_like(ids, dtype=torch.bool)
    for b, L in enumerate(mk.PRESETS["untied_pad_llama3"]["batch"]["lengths"]):
        real[b, :L] = True
    ids2[~real] = 5
    with torch.no_grad():
        a = ref.forward(cfg, P, ids)
        b = ref.forward(cfg, P, ids2)
    check(bool((~real).any()) and close(a[real], b[real], 1e-13) and
          float((a[~real] - b[~real]).abs().max()) > 1e-3, "padding: real positions unaffected")
    # GQA repeat_kv: expanding kv heads (head h <- kv head h // n_rep) gives the same logits.
    d = make(tmp, "gqa_tied_bias")
    cfg, w = ref.load_model(d)
    ids, tg = ref.load_batch(os.path.join(d, "batch.json"))
    H, Hkv, D = cfg["n_heads"], cfg["n_kv_heads"], cfg["head_dim"]
    n_rep = H // Hkv
    P = {k: v.double() for k, v in w.items()}
    Q = dict(P)
    for l in range(cfg["n_layers"]):
        for proj in ("k", "v"):
            for suf in ("weight", "bias"):
                k = f"model.layers.{l}.self_attn.{proj}_proj.{suf}"
                t = P[k].reshape(Hkv, D, -1)
                Q[k] = t.repeat_interleave(n_rep, dim=0).reshape(H * D, *P[k].shape[1:])
    cfg_mha = dict(cfg, n_kv_heads=H)
    with torch.no_grad():
        check(close(ref.forward(cfg, P, ids), ref.forward(cfg_mha, Q, ids), 1e-12),
              "GQA: kv head of query head h is h // n_rep")
    # Tied gradient = embedding grad + LM-head grad of the untied equivalent.
    _, _, _, gt = ref.run(cfg, w, ids, tg)
    wu = dict(w)
    wu["lm_head.weight"] = w["model.embed_tokens.weight"].clone()
    cfg_u = dict(cfg, tie=False)
    _, _, _, gu = ref.run(cfg_u, wu, ids, tg)
    check(close(gt["model.embed_tokens.weight"],
                gu["model.embed_tokens.weight"] + gu["lm_head.weight"], 1e-13),
          "tied: embedding grad = input use + output use")


def main():
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        check_st(tmp)
        check_presets(tmp)
        check_cli_bf16_shards(tmp)
        check_finite_differences(tmp)
        check_rope()
        check_masks_padding_gqa_tied(tmp)
    if FAILS:
        print(f"selfcheck: {len(FAILS)} check(s) failed")
        return 1
    print("selfcheck: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
