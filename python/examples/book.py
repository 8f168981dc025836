#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The book's walkthrough with ctml's Python API; prints what `ctml demo --json`
prints, then the predictions after training.

    python3 python/examples/book.py [--backend cpu|opencl|cuda|auto] [--json]
"""
import argparse
import sys

import numpy as np

import ctml
from ctml import Object, Role

VOCAB = ["<pad>", "I", "love", "Rust", "."]
SEQUENCE = [1, 2, 3, 4, 1, 2, 3, 4]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--json", action="store_true", help="only the line of `ctml demo --json`")
    args = ap.parse_args()
    be = ctml.backend(args.backend)

    # Parameters: the book's initialiser, seeds 1 and 2, a zero bias.
    E = ctml.Param("embedding", (5, 4)).init_book(1)
    W = ctml.Param("output.weight", (4, 5)).init_book(2)
    b = ctml.Param("output.bias", (5,))

    # predict = embedding ; linear ; softmax : TOKENS i32[1] -> DIST f32[1,5]
    tok = Object.tokens(1)
    embed = ctml.embedding(tok, E)
    lin = ctml.linear(Object.matrix(Role.HIDDEN, 1, 4), W, b, out_role=Role.LOGITS)
    soft = ctml.softmax(Object.matrix(Role.LOGITS, 1, 5))
    predict = embed >> lin >> soft
    tok_I, love = np.array([1], np.int32), np.array([2], np.int32)
    p = predict(tok_I, backend=be)[0]
    direct = soft(lin(embed(tok_I, backend=be), backend=be), backend=be)[0]

    # -ln p(love | tok_I): (predict (x) id) ; cross_entropy
    xent = ctml.cross_entropy(Object.matrix(Role.DIST, 1, 5), tok)
    loss_love = float(((predict & ctml.identity(tok)) >> xent)(tok_I, love, backend=be))

    # 80 steps of gradient descent (lr 1.0) on the 7 (input, target) pairs.
    n = len(SEQUENCE) - 1
    pairs = Object.tokens(n)
    logits = ctml.embedding(pairs, E) >> ctml.linear(
        Object.matrix(Role.HIDDEN, n, 4), W, b, out_role=Role.LOGITS)
    loss = (logits & ctml.identity(pairs)) >> ctml.softmax_cross_entropy(
        Object.matrix(Role.LOGITS, n, 5), pairs)
    trainer = ctml.Trainer(loss, be, ctml.Optimizer.sgd(1.0))
    inputs, targets = np.array(SEQUENCE[:-1], np.int32), np.array(SEQUENCE[1:], np.int32)
    trainer.set_inputs(inputs, targets)
    before = trainer.eval()
    trainer.step(80)
    after = trainer.eval()

    result = ctml.BookResult(p, loss_love, before, after, bool(np.array_equal(p, direct)),
                             np.zeros((n, 5), np.float32), trainer.rewrites)
    print(result.to_json())
    if args.json:
        return 0
    trainer.store_params()
    probs = (logits >> ctml.softmax(Object.matrix(Role.LOGITS, n, 5)))(inputs, backend=be)
    print(f"\nafter training on backend '{be.name}', the most likely next token:")
    for i in range(4):
        j = int(np.argmax(probs[i]))
        print(f"  {VOCAB[inputs[i]]:<5} -> {VOCAB[j]:<5} (p = {probs[i, j]:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
