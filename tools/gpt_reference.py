#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Independent PyTorch reference for ctml's GPT and its AdamW step.

Usage:
    ctml_gpt_dump DUMPDIR [--backend cpu]        # writes the dump (tools/gpt_dump.c)
    python3 tools/gpt_reference.py DUMPDIR [--tol 1e-4] [--json FILE]

The dump holds a small GPT's initial parameters (ctml layout), one batch, the
loss ctml computed, every parameter gradient d loss / d param, and every
parameter after one AdamW step taken by ct_trainer. This script rebuilds the
same architecture from standard torch modules (nn.Embedding, nn.LayerNorm with
eps 1e-5, nn.Linear, F.scaled_dot_product_attention with is_causal=True, GELU
with approximate="tanh", F.cross_entropy with mean reduction), loads the
initial weights (ctml stores linear weights [in, out]: nn.Linear.weight is the
transpose), computes loss and gradients on the same batch, and runs one
torch.optim.AdamW step with two parameter groups (weight decay for tensors of
dim >= 2, none for the rest). It does so twice: in float64 (the reference) and
in float32; both ctml and torch-float32 are compared against torch-float64.

What is measured, for each tensor a (ctml or torch-float32) against its
float64 reference b:
    rel  = max|a - b| / max(max|b|, 1e-30)       (tensor-scaled relative error)
    elem = max over elements of |a - b| / (1e-4 |b| + 1e-6 max|b|)
           (an elementwise view; <= 1 means every element is within 1e-4
           relative plus an absolute slack of 1e-6 of the tensor's scale)
    upd  = for updated parameters, rel of the update itself:
           max|(a_after - init) - (b_after - init)| / max|b_after - init|
    opt  = AdamW alone: rel of ctml's updated parameter against one float64
           torch.optim.AdamW step taken from ctml's initial values with ctml's
           own dumped gradients (separates the optimizer's arithmetic from
           gradient rounding; meaningful for every tensor, attn.bk included)
    optupd = the same for the update: max|(a_after - init) - (o - init)| /
           max|o - init|, o that float64 AdamW result
Scalars (loss, loss after the step, global gradient norm) use |a - b| / |b|.

PASS criterion (ctml only; torch-float32 is printed for scale): loss,
loss after the step and gradient norm within rel 1e-4; every gradient with
rel <= 1e-4; every updated parameter with rel <= 1e-4; every updated parameter
with opt <= 1e-4 and optupd <= 1e-3. `elem` and `upd` are informational.
optupd has a looser bound because the update is ~lr = 1e-3 of a parameter of
size ~1, and storing the parameter in float32 quantises the update at about
ulp(p)/2 / lr ~ 6e-5 of itself; it is there because a parameter-relative
1e-4 cannot see weight decay misapplied to gains and biases (that moves a
gain of ~1 by lr wd = 1e-4), while it moves the update by ~10%. (The trainer computes
its gradients in its own plan; `opt` assumes they equal the dumped ones, which
holds for deterministic backends.)

Exception, decided numerically and printed: a tensor whose float64 reference
gradient is zero in exact arithmetic (max|b| <= 1e-10 x the largest gradient
of the model; in a GPT this is attn.bk: adding a constant vector to every key
adds q.bk to a whole row of scores, which the softmax ignores). Its computed
gradient is pure rounding noise, and AdamW's first step turns noise g into an
update lr g / (|g| + eps), anything in [-lr, lr]. For such a tensor the checks
are: gradient max|a| <= 1e-4 x the largest gradient of the model (absolute,
model-scaled), and updated parameter max|a - b| <= lr (at most one step away:
any AdamW first step satisfies this, so it only checks sanity).

Exit status: 0 pass, 1 fail, 2 torch missing (or unreadable dump: 3).
"""
import argparse
import json
import math
import os
import sys

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover
    print(f"gpt_reference: torch is not available ({e})", file=sys.stderr)
    sys.exit(2)

ZERO_GRAD_FRACTION = 1e-10
OPT_UPD_TOL = 1e-3


def load_raw(path, dtype, shape):
    if sys.byteorder != "little":
        raise SystemExit("gpt_reference: the dump is little-endian; big-endian host unsupported")
    with open(path, "rb") as f:
        data = bytearray(f.read())
    t = torch.frombuffer(data, dtype=dtype).clone()
    n = math.prod(shape) if shape else 1
    if t.numel() != n:
        raise ValueError(f"{path}: {t.numel()} elements, expected {n} for shape {shape}")
    return t.reshape(shape)


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.q = nn.Linear(C, C)
        self.k = nn.Linear(C, C)
        self.v = nn.Linear(C, C)
        self.o = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        self.fc = nn.Linear(C, 4 * C)
        self.proj = nn.Linear(4 * C, C)

    def attn(self, x):
        B, T, C = x.shape
        H, D = self.H, C // self.H

        def heads(y):  # y[b,h,t,d] = x[b,t,h*D+d]
            return y.view(B, T, H, D).transpose(1, 2)

        y = F.scaled_dot_product_attention(heads(self.q(x)), heads(self.k(x)), heads(self.v(x)),
                                           is_causal=True)  # scale 1/sqrt(D)
        return self.o(y.transpose(1, 2).reshape(B, T, C))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.proj(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, V, L, layers, H, C):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(L, C)
        self.h = nn.ModuleList([Block(C, H) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(C, eps=1e-5)
        self.head = nn.Linear(C, V, bias=False)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for blk in self.h:
            x = blk(x)
        logits = self.head(self.ln_f(x))
        return F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))

    def ctml_map(self):
        """ctml parameter name -> (torch parameter, transposed?)."""
        m = {"wte": (self.wte.weight, False), "wpe": (self.wpe.weight, False)}
        for l, b in enumerate(self.h):
            p = f"h{l}."
            m.update({
                p + "ln1.gain": (b.ln_1.weight, False), p + "ln1.bias": (b.ln_1.bias, False),
                p + "attn.wq": (b.q.weight, True), p + "attn.bq": (b.q.bias, False),
                p + "attn.wk": (b.k.weight, True), p + "attn.bk": (b.k.bias, False),
                p + "attn.wv": (b.v.weight, True), p + "attn.bv": (b.v.bias, False),
                p + "attn.wo": (b.o.weight, True), p + "attn.bo": (b.o.bias, False),
                p + "ln2.gain": (b.ln_2.weight, False), p + "ln2.bias": (b.ln_2.bias, False),
                p + "mlp.w1": (b.fc.weight, True), p + "mlp.b1": (b.fc.bias, False),
                p + "mlp.w2": (b.proj.weight, True), p + "mlp.b2": (b.proj.bias, False),
            })
        m.update({"lnf.gain": (self.ln_f.weight, False), "lnf.bias": (self.ln_f.bias, False),
                  "head.w": (self.head.weight, True)})
        return m


def ctml_layout(t, transposed):
    return (t.t() if transposed else t).detach().clone()


def run_torch(cfg, init, inputs, targets, dtype):
    """Loss, gradients, params after one AdamW step and loss after it, all in ctml layout."""
    c = cfg["config"]
    torch.manual_seed(0)  # the values are overwritten; this only keeps module init quiet
    model = GPT(c["vocab"], c["block"], c["layers"], c["heads"], c["width"]).to(dtype)
    pmap = model.ctml_map()
    names = [t["name"] for t in cfg["tensors"]]
    if sorted(pmap) != sorted(names) or len(list(model.parameters())) != len(names):
        raise SystemExit(f"gpt_reference: parameter names differ: dump {names}, model {sorted(pmap)}")
    with torch.no_grad():
        for n in names:
            p, tr = pmap[n]
            v = init[n].to(dtype)
            p.copy_(v.t() if tr else v)
    loss = model(inputs, targets)
    model.zero_grad()
    loss.backward()
    grads = {n: ctml_layout(pmap[n][0].grad, pmap[n][1]) for n in names}
    gnorm = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads.values()))
    a = cfg["adamw"]
    decay = [pmap[n][0] for n in names if pmap[n][0].dim() >= 2]
    no_decay = [pmap[n][0] for n in names if pmap[n][0].dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a["lr"], betas=(a["beta1"], a["beta2"]), eps=a["eps"])
    opt.step()
    after = {n: ctml_layout(pmap[n][0], pmap[n][1]) for n in names}
    with torch.no_grad():
        loss_after = float(model(inputs, targets))
    return {"loss": float(loss.detach()), "grads": grads, "after": after, "grad_norm": gnorm,
            "loss_after": loss_after}


def adamw_on(cfg, init, grads):
    """One float64 torch.optim.AdamW step from ctml's own initial values and gradients."""
    a = cfg["adamw"]
    ps = {n: torch.nn.Parameter(v.double().clone()) for n, v in init.items()}
    for n, p in ps.items():
        p.grad = grads[n].double().clone()
    opt = torch.optim.AdamW(
        [{"params": [p for p in ps.values() if p.dim() >= 2], "weight_decay": a["weight_decay"]},
         {"params": [p for p in ps.values() if p.dim() < 2], "weight_decay": 0.0}],
        lr=a["lr"], betas=(a["beta1"], a["beta2"]), eps=a["eps"])
    opt.step()
    return {n: p.detach() for n, p in ps.items()}


def tensor_err(a, b):
    a, b = a.double(), b.double()
    d = (a - b).abs()
    scale = float(b.abs().max()) if b.numel() else 0.0
    rel = float(d.max()) / max(scale, 1e-30)
    elem = float((d / (1e-4 * b.abs() + 1e-6 * scale + 1e-300)).max())
    return rel, elem, float(d.max()), scale


def scalar_err(a, b):
    return abs(a - b) / max(abs(b), 1e-30)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dump")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--json", help="write the per-tensor results here")
    args = ap.parse_args()
    tol = args.tol
    try:
        with open(os.path.join(args.dump, "config.json")) as f:
            cfg = json.load(f)
        B, T = cfg["batch"]["batch"], cfg["batch"]["time"]
        inputs = load_raw(os.path.join(args.dump, cfg["batch"]["inputs"]), torch.int32, [B, T]).long()
        targets = load_raw(os.path.join(args.dump, cfg["batch"]["targets"]), torch.int32, [B, T]).long()
        ct, init = {"grads": {}, "after": {}}, {}
        for t in cfg["tensors"]:
            n, shape = t["name"], t["shape"]
            init[n] = load_raw(os.path.join(args.dump, t["init"]), torch.float32, shape)
            ct["grads"][n] = load_raw(os.path.join(args.dump, t["grad"]), torch.float32, shape)
            ct["after"][n] = load_raw(os.path.join(args.dump, t["after"]), torch.float32, shape)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        print(f"gpt_reference: cannot read the dump in {args.dump}: {e}", file=sys.stderr)
        return 3
    ct["loss"] = cfg["loss"]
    ct["grad_norm"] = cfg["trainer"]["grad_norm"]
    ct["loss_after"] = cfg["trainer"]["loss_after"]
    names = [t["name"] for t in cfg["tensors"]]

    torch.use_deterministic_algorithms(True)
    r64 = run_torch(cfg, init, inputs, targets, torch.float64)
    r32 = run_torch(cfg, init, inputs, targets, torch.float32)
    opt_ref = adamw_on(cfg, init, ct["grads"])

    c, a = cfg["config"], cfg["adamw"]
    print(f"torch {torch.__version__}; dump: backend {cfg['backend']}, "
          f"{cfg.get('init', 'ct_gpt_new')} init, config {c}, batch B={B} T={T}")
    print(f"AdamW lr {a['lr']:.9g} betas ({a['beta1']:.9g}, {a['beta2']:.9g}) eps {a['eps']:.9g} "
          f"weight decay {a['weight_decay']:.9g} (dim >= 2 only), one step")
    print(f"criterion: rel = max|x - ref| / max|ref| <= {tol:g} per tensor, ref = torch float64\n")

    gscale = max(float(g.abs().max()) for g in r64["grads"].values())
    zero_grad = {n for n in names if float(r64["grads"][n].abs().max()) <= ZERO_GRAD_FRACTION * gscale}

    failures, results = [], {"scalars": {}, "grads": {}, "after": {}, "zero_grad": sorted(zero_grad)}
    print(f"{'scalar':<12} {'float64 ref':>16} {'ctml':>16} {'rel ctml':>10} {'rel t32':>10}")
    for k in ("loss", "grad_norm", "loss_after"):
        rc, rt = scalar_err(ct[k], r64[k]), scalar_err(r32[k], r64[k])
        ok = rc <= tol
        results["scalars"][k] = {"ref": r64[k], "ctml": ct[k], "torch32": r32[k],
                                 "rel_ctml": rc, "rel_torch32": rt, "ok": ok}
        if not ok:
            failures.append(k)
        print(f"{k:<12} {r64[k]:>16.9g} {ct[k]:>16.9g} {rc:>10.2e} {rt:>10.2e}{'' if ok else '  FAIL'}")

    for kind in ("grads", "after"):
        title = "gradient d loss / d param" if kind == "grads" else "parameter after one AdamW step"
        print(f"\n{title}")
        hdr = f"{'tensor':<16} {'shape':<10} {'max|ref|':>9} {'rel ctml':>9} {'elem ctml':>9} {'rel t32':>9} {'elem t32':>9}"
        print(hdr + (f" {'upd ctml':>9} {'upd t32':>9} {'opt ctml':>9} {'optupd':>9}"
                     if kind == "after" else ""))
        for n in names:
            ref, x, y = r64[kind][n], ct[kind][n], r32[kind][n]
            rc, ec, dc, scale = tensor_err(x, ref)
            rt, et, dt, _ = tensor_err(y, ref)
            row = {"rel_ctml": rc, "elem_ctml": ec, "maxabs_ctml": dc, "rel_torch32": rt,
                   "elem_torch32": et, "maxabs_torch32": dt, "ref_scale": scale}
            shape = "x".join(str(s) for s in ref.shape)
            extra = ""
            if kind == "after":
                d0 = init[n].double()
                uc = tensor_err(x.double() - d0, ref - d0)[0]
                ut = tensor_err(y.double() - d0, ref - d0)[0]
                oc = tensor_err(x, opt_ref[n])[0]
                ou = tensor_err(x.double() - d0, opt_ref[n] - d0)[0]
                row.update({"upd_ctml": uc, "upd_torch32": ut, "opt_ctml": oc, "opt_upd_ctml": ou})
                extra = f" {uc:>9.2e} {ut:>9.2e} {oc:>9.2e} {ou:>9.2e}"
                if oc > tol or ou > OPT_UPD_TOL:
                    failures.append(f"adamw:{n}")
                    extra += "  FAIL(opt)"
            if n in zero_grad:
                if kind == "grads":
                    ok = float(x.abs().max()) <= tol * gscale
                    note = f"  zero in exact arithmetic: max|ctml| {float(x.abs().max()):.2e} " \
                           f"<= {tol:g} x max grad {gscale:.3g}: {'ok' if ok else 'FAIL'}"
                else:
                    ok = dc <= a["lr"] * (1 + 1e-6)
                    note = f"  noise gradient: max|ctml - ref| {dc:.2e} <= lr: {'ok' if ok else 'FAIL'}" \
                           f" (t32 {dt:.2e})"
                row["check"] = "zero-gradient"
            else:
                ok = rc <= tol
                note = "" if ok else "  FAIL"
                row["check"] = "rel"
            row["ok"] = ok
            results[kind][n] = row
            if not ok:
                failures.append(f"{kind}:{n}")
            print(f"{n:<16} {shape:<10} {scale:>9.2e} {rc:>9.2e} {ec:>9.2e} {rt:>9.2e} {et:>9.2e}{extra}{note}")

    def worst(kind, key):
        cand = [(results[kind][n][key], n) for n in names if n not in zero_grad]
        return max(cand) if cand else (0.0, "-")

    print("\nsummary (tensors with a nonzero reference gradient):")
    for kind in ("grads", "after"):
        wc, nc = worst(kind, "rel_ctml")
        wt, nt = worst(kind, "rel_torch32")
        print(f"  {kind:<6} worst rel ctml {wc:.2e} ({nc}); worst rel torch-float32 {wt:.2e} ({nt})")
    wu, nu = worst("after", "upd_ctml")
    wu32, nu32 = worst("after", "upd_torch32")
    print(f"  update worst rel ctml {wu:.2e} ({nu}); torch-float32 {wu32:.2e} ({nu32})")
    wo, no = max((results["after"][n]["opt_ctml"], n) for n in names)
    wou, nou = max((results["after"][n]["opt_upd_ctml"], n) for n in names)
    print(f"  AdamW alone (ctml vs float64 AdamW on ctml's own gradients, every tensor): "
          f"worst rel {wo:.2e} ({no}), of the update {wou:.2e} ({nou})")
    if zero_grad:
        print(f"  zero-gradient tensors (checked absolutely): {', '.join(sorted(zero_grad))}")
    if args.json:
        results["failures"] = failures
        results["torch"] = torch.__version__
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if failures:
        print(f"\nFAIL: {len(failures)} check(s): {', '.join(failures)}")
        return 1
    print(f"\nPASS: ctml within {tol:g} of the float64 reference on every check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
