# SPDX-License-Identifier: MIT
"""The book's walkthrough (src/book.c) written with the Python API, and the
library's own run of it (ct_book_run, what `ctml demo` prints).

Vocabulary "<pad> I love Rust .", the sequence I love Rust . I love Rust .,
embedding -> linear -> softmax with d_model 4, the book's initialiser, and 80
full-batch gradient-descent steps (lr 1.0).
"""
from __future__ import annotations

import ctypes as C
import json
from dataclasses import dataclass

import numpy as np

from . import _lib
from ._lib import call
from .core import Backend, Object, Param, Role, _backend, embedding, identity, linear, softmax
from .core import cross_entropy, softmax_cross_entropy
from .train import Optimizer, Trainer

__all__ = ["VOCAB", "BookResult", "walkthrough", "run_book"]

VOCAB = ("<pad>", "I", "love", "Rust", ".")
D_MODEL = 4
STEPS = 80
SEQUENCE = (1, 2, 3, 4, 1, 2, 3, 4)


@dataclass
class BookResult:
    """What the walkthrough computes (ct_book_result)."""
    p_next_given_I: np.ndarray      # softmax(linear(embedding(I))), f32[5]
    loss_love: float                # -ln p(love | I)
    loss_before: float              # mean cross-entropy over the 7 pairs, before training
    loss_after: float               # ... and after 80 steps
    composed_equals_direct: bool    # the composed plan == generator by generator
    train_probs: np.ndarray         # p(. | input) after training, f32[7,5]
    rewrites: list[str]             # the rewrite rules that fired in the training plan

    def to_json(self) -> str:
        """The line `ctml demo --json` prints: each number with the fewest digits that
        read back as the same float32 (at most 9), as the tool writes them."""
        p = ", ".join(_num(x) for x in self.p_next_given_I)
        return (f'{{"p_next_given_I": [{p}], "loss_love": {_num(self.loss_love)}, '
                f'"loss_before": {_num(self.loss_before)}, "loss_after": {_num(self.loss_after)}, '
                f'"composed_equals_direct": {json.dumps(self.composed_equals_direct)}}}')


def _num(v: float) -> str:
    """A float32 value as the tool's JSON writes it (null when not finite)."""
    x = float(v)
    if not np.isfinite(x):
        return "null"
    if float(np.float32(x)) == x:
        for p in range(1, 9):
            s = f"{x:.{p}g}"
            if np.float32(float(s)) == np.float32(x):
                return s
    return f"{x:.9g}"


def walkthrough(backend: Backend | str = "cpu") -> BookResult:
    """The walkthrough, morphism by morphism, with ctml's Python API."""
    be = _backend(backend)
    V, D, n = len(VOCAB), D_MODEL, len(SEQUENCE) - 1
    E = Param("embedding", (V, D)).init_book(1)
    W = Param("output.weight", (D, V)).init_book(2)
    b = Param("output.bias", (V,))

    # predict = embedding ; linear ; softmax : TOKENS[1] -> DIST[1,5]
    tok1 = Object.tokens(1)
    embed1 = embedding(tok1, E)
    linear1 = linear(Object.matrix(Role.HIDDEN, 1, D), W, b, out_role=Role.LOGITS)
    softmax1 = softmax(Object.matrix(Role.LOGITS, 1, V))
    predict1 = embed1 >> linear1 >> softmax1

    tok_I, love = np.array([1], np.int32), np.array([2], np.int32)
    p = predict1(tok_I, backend=be)[0]
    h = embed1(tok_I, backend=be)
    direct = softmax1(linear1(h, backend=be), backend=be)[0]

    # -ln p(love | I) = (predict (x) id) ; cross_entropy
    loss_love = (predict1 & identity(tok1)) >> cross_entropy(Object.matrix(Role.DIST, 1, V), tok1)
    loss_love_value = float(loss_love(tok_I, love, backend=be))

    # Training: ((embedding ; linear) (x) id) ; softmax_cross_entropy on the 7 pairs.
    tok7 = Object.tokens(n)
    logits7 = embedding(tok7, E) >> linear(Object.matrix(Role.HIDDEN, n, D), W, b,
                                           out_role=Role.LOGITS)
    loss7 = (logits7 & identity(tok7)) >> softmax_cross_entropy(
        Object.matrix(Role.LOGITS, n, V), tok7)
    inputs = np.array(SEQUENCE[:-1], np.int32)
    targets = np.array(SEQUENCE[1:], np.int32)
    trainer = Trainer(loss7, be, Optimizer.sgd(1.0))
    trainer.set_inputs(inputs, targets)
    before = trainer.eval()
    trainer.step(STEPS)
    after = trainer.eval()
    trainer.store_params()
    probs = (logits7 >> softmax(Object.matrix(Role.LOGITS, n, V)))(inputs, backend=be)
    return BookResult(p, loss_love_value, before, after, bool(np.array_equal(p, direct)), probs,
                      trainer.rewrites)


def run_book(backend: Backend | str = "cpu") -> BookResult:
    """The library's own walkthrough (ct_book_run), as `ctml demo` runs it."""
    be = _backend(backend)
    r = _lib.BookResult()
    call("ct_book_run", be._h, C.byref(r), None)
    rewrites = [s for s in r.rewrites.decode().split("\n") if s]
    return BookResult(np.array(r.p_next_given_I[:], np.float32), float(r.loss_love),
                      float(r.loss_before), float(r.loss_after), bool(r.composed_equals_direct),
                      np.array([row[:] for row in r.train_probs], np.float32), rewrites)
