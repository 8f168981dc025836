#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The peer of `ctml bench`: the same GPT training step in PyTorch, timed the same way.

Same architecture as include/ctml/gpt.h (pre-LayerNorm blocks, tanh GELU, learned
positions, untied head without bias), AdamW with clipping, float32 (TF32 off unless
--tf32). Prints median and min ms/step over --runs steps after --warmup, and tokens/s.

  python3 tools/torch_gpt_bench.py --layers 6 --heads 6 --width 384 --block 256 --batch 64
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

    def forward(self, x, fused):
        b, t, c = x.shape
        y = self.ln1(x)
        q, k, v = (m(y).view(b, t, self.h, c // self.h).transpose(1, 2) for m in (self.q, self.k, self.v))
        if fused:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            s = (q @ k.transpose(-1, -2)) / math.sqrt(c // self.h)
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
            a = s.masked_fill(~mask, float("-inf")).softmax(-1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(b, t, c))
        return x + self.w2(F.gelu(self.w1(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab, block, layers, heads, width):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, width), nn.Embedding(block, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.lnf = nn.LayerNorm(width, eps=1e-5)
        self.head = nn.Linear(width, vocab, bias=False)

    def forward(self, idx, tgt, fused):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        for blk in self.blocks:
            x = blk(x, fused)
        logits = self.head(self.lnf(x))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), tgt.view(-1))


def main():
    ap = argparse.ArgumentParser()
    for name, default in (("vocab", 96), ("block", 256), ("layers", 6), ("heads", 6), ("width", 384),
                          ("batch", 64), ("warmup", 3), ("runs", 10)):
        ap.add_argument("--" + name, type=int, default=default)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--fused-attention", action="store_true",
                    help="scaled_dot_product_attention (flash) instead of the explicit T x T scores")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (default mode)")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.manual_seed(0)
    dev = torch.device(a.device)
    model = GPT(a.vocab, a.block, a.layers, a.heads, a.width).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    fwd = torch.compile(model) if a.compile else model
    idx = torch.randint(0, a.vocab, (a.batch, a.block), device=dev)
    tgt = torch.randint(0, a.vocab, (a.batch, a.block), device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = fwd(idx, tgt, a.fused_attention)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()  # waits for the device, as ctml's step reads its loss

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    tokens = a.batch * a.block
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}: "
          f"median {med * 1e3:.3f} ms/step (min {min(times) * 1e3:.3f}), {tokens / med:.0f} tokens/s, "
          f"tf32 {'on' if a.tf32 else 'off'}, attention {'fused' if a.fused_attention else 'explicit'}"
          f"{', torch.compile' if a.compile else ''}")


if __name__ == "__main__":
    main()
