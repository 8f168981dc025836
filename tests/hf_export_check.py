#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks 'ctml export --hf' against a GPT-2 forward written here in float64
numpy from the Hugging Face layout alone (config.json, model.safetensors,
ctml_vocab.json): the logits of a batch agree with ctml's within 1e-5. Then
the same for the export converted to BF16 and read back ('ctml import'), and
'ctml eval' scores the export as it scores the run.

  hf_export_check.py --ctml BUILD/ctml --logits BUILD/tests/ctml_logits --data TEXT
                     [--work DIR] [--transformers]

--transformers also loads the export with transformers.GPT2LMHeadModel (torch
on the CPU, float64) and compares its logits (the by-hand check recorded in
docs/reference-checks.md)."""
import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

# Observed: ~1.4e-7 (float32 ctml against float64 numpy). 1e-4 would not tell
# the exact erf GELU from ctml's tanh one (2e-5 on this model); 1e-5 does.
TOL = 1e-5


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        if e["dtype"] == "F32":
            a = np.frombuffer(data[b:end], dtype="<f4")
        elif e["dtype"] == "BF16":
            a = (np.frombuffer(data[b:end], dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{path}: tensor {name} has dtype {e['dtype']}")
        out[name] = a.reshape(e["shape"]).astype(np.float64)
    return out, header.get("__metadata__", {})


def write_bf16(src, dst):
    """src's F32 tensors as BF16 (round to nearest even) in a new file."""
    tensors, meta = read_safetensors(src)
    header, blobs, at = {"__metadata__": meta}, [], 0
    for name, a in tensors.items():
        u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
        u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")
        blob = u.tobytes()
        header[name] = {"dtype": "BF16", "shape": list(a.shape), "data_offsets": [at, at + len(blob)]}
        blobs.append(blob)
        at += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def gelu_erf(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / np.sqrt(2.0)))


def gpt2_logits(hf_dir, ids, gelu=None):
    """GPT-2 forward in float64 from the HF layout: Conv1D weights [in,out],
    c_attn = [q | k | v] along the output, heads as channel = h*D + d."""
    cfg = json.load(open(os.path.join(hf_dir, "config.json")))
    w, _ = read_safetensors(os.path.join(hf_dir, "model.safetensors"))
    assert cfg["activation_function"] == "gelu_new" and cfg["tie_word_embeddings"] is False
    C, H, L, eps = cfg["n_embd"], cfg["n_head"], cfg["n_layer"], cfg["layer_norm_epsilon"]
    D = C // H
    B, T = ids.shape

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[p + ".weight"] + w[p + ".bias"]

    def gelu_new(x):
        return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))

    gelu = gelu or gelu_new

    x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][np.arange(T)]
    mask = np.triu(np.ones((T, T), dtype=bool), 1)
    for l in range(L):
        p = f"transformer.h.{l}."
        h = ln(x, p + "ln_1")
        qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = (a.reshape(B, T, H, D).transpose(0, 2, 1, 3) for a in np.split(qkv, 3, axis=-1))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(D)
        s[:, :, mask] = -np.inf
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        y = (s @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
        x = x + y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        h = ln(x, p + "ln_2")
        h = gelu(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        x = x + h @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    x = ln(x, "transformer.ln_f")
    return x @ w["lm_head.weight"].T


def run(*cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    return r.stdout


def ctml_logits(tool, weights, ids, work):
    ids_path, out_path = os.path.join(work, "ids.bin"), os.path.join(work, "logits.bin")
    ids.astype("<i4").tofile(ids_path)
    run(tool, weights, ids_path, out_path)
    return np.fromfile(out_path, dtype="<f4").reshape(ids.shape + (-1,)).astype(np.float64)


def compare(what, a, b):
    err = float(np.max(np.abs(a - b)))
    print(f"{what}: logits {a.shape}, max |difference| {err:.3g} (tolerance {TOL:g})")
    if not err <= TOL:
        sys.exit(f"FAIL: {what}: {err:.3g} > {TOL:g}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ctml", required=True)
    ap.add_argument("--logits", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--work")
    ap.add_argument("--transformers", action="store_true")
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="ctml-hf-")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    run_dir, hf = os.path.join(work, "run"), os.path.join(work, "hf")
    run(a.ctml, "train", "--data", a.data, "--steps", "40", "--eval-every", "40", "--layers", "2",
        "--heads", "4", "--width", "32", "--block", "16", "--batch", "4", "--backend", "cpu",
        "--out", run_dir)
    run(a.ctml, "export", "--hf", hf, "--checkpoint", run_dir)
    weights = os.path.join(work, "w.safetensors")
    run(a.ctml, "export", "--weights", weights, "--checkpoint", run_dir)

    # a batch of windows of the text, tokenized with the exported vocabulary
    vocab = json.load(open(os.path.join(hf, "ctml_vocab.json")))["bytes"]
    id_of = {b: i for i, b in enumerate(vocab)}
    text = open(a.data, "rb").read()
    T = json.load(open(os.path.join(hf, "config.json")))["n_positions"]
    starts = [0, 1000, 5000, len(text) - T]
    ids = np.array([[id_of[c] for c in text[s:s + T]] for s in starts], dtype=np.int64)

    mine = ctml_logits(a.logits, weights, ids, work)
    compare("numpy GPT-2 forward of the HF export vs ctml", gpt2_logits(hf, ids), mine)
    off = float(np.max(np.abs(gpt2_logits(hf, ids, gelu_erf) - mine)))
    print(f"the same forward with the exact erf GELU instead of tanh: {off:.3g} (must exceed {TOL:g})")
    if not off > TOL:
        sys.exit("FAIL: the check cannot tell the GELU variants apart")

    # BF16: the export rounded to BF16, read back through 'ctml import'
    hf16 = os.path.join(work, "hf-bf16")
    os.makedirs(hf16)
    for f in ("config.json", "ctml_vocab.json"):
        shutil.copy(os.path.join(hf, f), hf16)
    write_bf16(os.path.join(hf, "model.safetensors"), os.path.join(hf16, "model.safetensors"))
    w16 = os.path.join(work, "w16.safetensors")
    run(a.ctml, "import", hf16, "--out", w16)
    compare("numpy forward of the BF16 export vs ctml after import",
            gpt2_logits(hf16, ids), ctml_logits(a.logits, w16, ids, work))

    # eval reads the export directly and scores it as the run
    e_run = json.loads(run(a.ctml, "eval", "--checkpoint", run_dir, "--data", a.data, "--backend",
                           "cpu", "--json"))
    e_hf = json.loads(run(a.ctml, "eval", "--checkpoint", hf, "--data", a.data, "--backend", "cpu",
                          "--json"))
    print(f"ctml eval: run {e_run['loss']:.6f}, HF export {e_hf['loss']:.6f} nats/byte")
    if e_run["loss"] != e_hf["loss"] or e_run["tokens_scored"] != len(text) - 1:
        sys.exit("FAIL: eval of the export differs from the run's")

    if a.transformers:
        import torch
        from transformers import GPT2LMHeadModel
        model = GPT2LMHeadModel.from_pretrained(hf).double().eval()
        with torch.no_grad():
            theirs = model(torch.tensor(ids)).logits.numpy()
        compare(f"transformers {__import__('transformers').__version__} GPT2LMHeadModel vs ctml",
                theirs, mine)
    print("hf export check passed")


if __name__ == "__main__":
    main()
