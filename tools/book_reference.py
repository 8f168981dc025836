#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Independent reference for `ctml demo --json`: the book's walkthrough in plain
Python (double precision, parameters rounded to float32 as the book's initialiser
makes them). Prints the same JSON keys; compare with a tolerance of ~1e-5."""
import json, math, struct

def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]

def init(rows, cols, seed):
    return [[f32((((r * cols + c) * 37 + seed * 101) % 1000 / 1000.0 - 0.5) * 0.2)
             for c in range(cols)] for r in range(rows)]

V, D = 5, 4
E, W, b = init(V, D, 1), init(D, V, 2), [0.0] * V

def probs(tok):
    h = E[tok]
    z = [b[j] + sum(h[k] * W[k][j] for k in range(D)) for j in range(V)]
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return [v / s for v in e]

seq = [1, 2, 3, 4, 1, 2, 3, 4]
pairs = list(zip(seq[:-1], seq[1:]))

def loss():
    return sum(-math.log(max(probs(x)[t], 1e-9)) for x, t in pairs) / len(pairs)

p_I = probs(1)
out = {"p_next_given_I": p_I, "loss_love": -math.log(p_I[2]), "loss_before": loss()}
for _ in range(80):
    gE = [[0.0] * D for _ in range(V)]
    gW = [[0.0] * V for _ in range(D)]
    gb = [0.0] * V
    for x, t in pairs:
        p = probs(x)
        dz = [(p[j] - (1.0 if j == t else 0.0)) / len(pairs) for j in range(V)]
        for j in range(V):
            gb[j] += dz[j]
            for k in range(D):
                gW[k][j] += E[x][k] * dz[j]
        for k in range(D):
            gE[x][k] += sum(W[k][j] * dz[j] for j in range(V))
    for r in range(V):
        for c in range(D):
            E[r][c] -= gE[r][c]
    for r in range(D):
        for c in range(V):
            W[r][c] -= gW[r][c]
    for j in range(V):
        b[j] -= gb[j]
out["loss_after"] = loss()
out["composed_equals_direct"] = True
print(json.dumps(out))
