#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The peer of `ctml bench --decode`: generation with a key/value cache in PyTorch.

The GPT of include/ctml/gpt.h (as tools/torch_gpt_bench.py), random weights, batch 1,
float32, eager, under torch.inference_mode(). A prefill of --prompt tokens in one pass,
then --tokens decode steps of one token each over the cached keys and values (greedy,
the argmax read back every step as a sampler must). With --no-cache every step runs the
whole context again (at most the block). Prints the prefill time and the decode
tokens/s, median over --runs. --device cuda runs it on the GPU (the argmax read back
every step synchronises, as ctml's decoder does).

  python3 tools/torch_decode_bench.py --layers 6 --heads 6 --width 384 --block 256 --threads 2
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.h = h
        self.ln1 = nn.LayerNorm(c, eps=1e-5)
        self.q, self.k, self.v, self.o = (nn.Linear(c, c) for _ in range(4))
        self.ln2 = nn.LayerNorm(c, eps=1e-5)
        self.w1, self.w2 = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

    def forward(self, x, cache, start):
        """x: [1, t, c] at positions start..start+t-1; cache: (K, V) [1, h, block, d] or None."""
        b, t, c = x.shape
        y = self.ln1(x)
        q, k, v = (m(y).view(b, t, self.h, c // self.h).transpose(1, 2) for m in (self.q, self.k, self.v))
        if cache is not None:
            cache[0][:, :, start:start + t] = k
            cache[1][:, :, start:start + t] = v
            k, v = cache[0][:, :, :start + t], cache[1][:, :, :start + t]
        if t == 1:
            a = F.scaled_dot_product_attention(q, k, v)  # one query sees every cached key
        else:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o(a.transpose(1, 2).reshape(b, t, c))
        return x + self.w2(F.gelu(self.w1(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab, block, layers, heads, width):
        super().__init__()
        self.block, self.heads = block, heads
        self.wte, self.wpe = nn.Embedding(vocab, width), nn.Embedding(block, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.lnf = nn.LayerNorm(width, eps=1e-5)
        self.head = nn.Linear(width, vocab, bias=False)

    def forward(self, idx, caches, start):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(start, start + t, device=idx.device))
        for i, blk in enumerate(self.blocks):
            x = blk(x, caches[i] if caches else None, start)
        return self.head(self.lnf(x[:, -1:]))[0, -1]  # the last position's logits


def main():
    ap = argparse.ArgumentParser()
    for name, default in (("vocab", 96), ("block", 256), ("layers", 6), ("heads", 6), ("width", 384),
                          ("prompt", 16), ("tokens", 200), ("runs", 3), ("threads", 2)):
        ap.add_argument("--" + name, type=int, default=default)
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    a = ap.parse_args()
    dev = torch.device(a.device)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = GPT(a.vocab, a.block, a.layers, a.heads, a.width).eval().to(dev)
    d = a.width // a.heads
    if a.prompt + a.tokens > a.block and not a.no_cache:
        raise SystemExit(f"prompt + tokens = {a.prompt + a.tokens} must fit the block {a.block} "
                         "(this loop keeps no window)")
    prompt = torch.randint(0, a.vocab, (1, a.prompt)).to(dev)
    prefills, decodes = [], []
    with torch.inference_mode():
        for run in range(a.runs + 1):  # the first run warms up
            caches = None if a.no_cache else [
                (torch.zeros(1, a.heads, a.block, d, device=dev), torch.zeros(1, a.heads, a.block, d, device=dev))
                for _ in range(a.layers)]
            ctx = prompt.clone()
            t0 = time.perf_counter()
            nxt = int(model(ctx, caches, 0).argmax())
            t1 = time.perf_counter()
            for s in range(a.tokens):
                ctx = torch.cat([ctx, torch.tensor([[nxt]], device=dev)], 1)
                if caches is None:
                    window = ctx[:, -a.block:]
                    nxt = int(model(window, None, 0).argmax())
                else:
                    nxt = int(model(ctx[:, -1:], caches, ctx.shape[1] - 1).argmax())
            t2 = time.perf_counter()
            if run:
                prefills.append(t1 - t0)
                decodes.append(t2 - t1)
    pf, dc = statistics.median(prefills), statistics.median(decodes)
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu, {a.threads} threads"
    print(f"torch {torch.__version__} {where}, {'no cache' if a.no_cache else 'kv cache'}: "
          f"prefill {a.prompt} tokens {pf * 1e3:.2f} ms; decode {a.tokens} tokens {dc * 1e3:.1f} ms, "
          f"{a.tokens / dc:.1f} tokens/s (median of {a.runs})")


if __name__ == "__main__":
    main()
