#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Crafted checkpoints: one metadata value of a small run's checkpoint is
changed, and 'ctml sample' (and 'ctml train --resume') must refuse it with
exit 1, naming the key and the allowed range (or the tensor whose shape does
not match), in well under a second: nothing is allocated before the checks.

  craft_checkpoint.py CTML DATA"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

CASES = [  # key, value, what the message must contain
    ("config.width", "16384", "metadata 'config.width' = 16384 is outside [1, 8192] (the range of --width)"),
    ("config.width", "8192", "tensor 'wte' has shape [76,16], the config (layers 1, heads 2, width 8192"),
    ("config.block", "1000000", "metadata 'config.block' = 1000000 is outside [1, 8192] (the range of --block)"),
    ("config.layers", "64", "tensor 'h1.ln1.gain' [16] of the config is missing"),
    ("config.layers", "0", "metadata 'config.layers' = 0 is outside [1, 64] (the range of --layers)"),
    ("config.heads", "3", "metadata 'config.heads' = 3 does not divide 'config.width' = 16"),
    ("config.vocab", "300", "metadata 'config.vocab' = 300 is outside [1, 256]"),
    ("train.eval_every", "0", "metadata 'train.eval_every' = 0 is outside [1, 16777216] (the range of --eval-every)"),
    ("train.eval_batches", "999999999", "metadata 'train.eval_batches' = 999999999 is outside [1, 100000] (the range of --eval-batches)"),
    ("train.eval_batches", "0", "metadata 'train.eval_batches' = 0 is outside [1, 100000]"),
    ("train.batch", "999999999", "metadata 'train.batch' = 999999999 is outside [1, 65536] (the range of --batch)"),
    ("train.lr", "1e40", "metadata 'train.lr' = 1e40 is outside [1e-12, 10] (the range of --lr)"),
    ("train.lr", "nan", "metadata 'train.lr' = 'nan' is not a finite number"),
    ("train.steps", "x", "metadata 'train.steps' = 'x' is not an integer"),
    ("step", "999999", "metadata 'step' = '999999' is not an integer in [0, 20]"),
    ("vocab", "0a0a", "metadata 'vocab'"),
]


def set_meta(src, dst, key, value):
    raw = open(src, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header["__metadata__"][key] = value
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    open(dst, "wb").write(struct.pack("<Q", len(text)) + text + raw[8 + n:])


def strip_to_weights(src, dst):
    """src without the optimizer moments and with only the config and
    vocabulary as metadata (no 'format'): a weights file as written by hand."""
    raw = open(src, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = {k: v for k, v in header["__metadata__"].items()
            if k.startswith("config.") and k != "config.name" or k == "vocab"}
    out, blobs, at = {"__metadata__": meta}, [], 0
    for name, e in header.items():
        if name == "__metadata__" or name.startswith("optim."):
            continue
        b, end = e["data_offsets"]
        out[name] = dict(e, data_offsets=[at, at + end - b])
        blobs.append(data[b:end])
        at += end - b
    text = json.dumps(out).encode()
    text += b" " * (-len(text) % 8)
    open(dst, "wb").write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    ctml, data = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="ctml-craft-")
    try:
        run = os.path.join(work, "r")
        subprocess.run([ctml, "train", "--data", data, "--steps", "20", "--eval-every", "20",
                        "--layers", "1", "--heads", "2", "--width", "16", "--block", "16",
                        "--batch", "4", "--backend", "cpu", "--out", run], check=True,
                       capture_output=True)
        good = os.path.join(run, "checkpoint.safetensors")
        bad = []
        for key, value, want in CASES:
            path = os.path.join(work, "crafted.safetensors")
            set_meta(good, path, key, value)
            for cmd in (["sample", "--checkpoint", path, "--backend", "cpu", "--tokens", "1"],
                        ["train", "--resume", path, "--data", data, "--backend", "cpu"]):
                t0 = time.monotonic()
                r = subprocess.run([ctml] + cmd, capture_output=True, text=True)
                dt = time.monotonic() - t0
                ok = r.returncode == 1 and want in r.stderr and dt < 1.0
                print(f"{key}={value} {cmd[0]}: exit {r.returncode} in {dt:.3f} s: {r.stderr.strip()}")
                if not ok:
                    bad.append(f"{key}={value} ({cmd[0]}): wanted exit 1 in < 1 s with '{want}'")
        # a weights file written by hand (no 'format', no training keys) is accepted
        hand = os.path.join(work, "hand.safetensors")
        strip_to_weights(good, hand)
        for cmd in (["sample", "--checkpoint", hand, "--backend", "cpu", "--tokens", "5"],
                    ["train", "--init-from", hand, "--data", data, "--backend", "cpu", "--steps", "2",
                     "--batch", "2", "--out", os.path.join(work, "ft")]):
            r = subprocess.run([ctml] + cmd, capture_output=True, text=True)
            print(f"hand-written weights file, {cmd[0]}: exit {r.returncode} {r.stderr.strip()[-200:]}")
            if r.returncode != 0:
                bad.append(f"hand-written weights file refused by {cmd[0]}: {r.stderr.strip()}")
        if bad:
            sys.exit("FAIL:\n" + "\n".join(bad))
        print(f"all crafted checkpoints refused ({len(CASES)} cases, sample and train --resume); "
              "a hand-written weights file accepted")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
