# SPDX-License-Identifier: MIT
"""Byte-level text for character models: a vocabulary of the bytes that occur,
encoding and decoding, next-token pairs and seeded batches of windows."""
from __future__ import annotations

import ctypes as C

import numpy as np

from . import _lib
from ._lib import call

__all__ = ["Vocab", "BatchSampler", "window_pairs"]


def _bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


class Vocab:
    """The bytes of a text, ids in increasing byte order (ct_vocab)."""

    def __init__(self, text: bytes | str):
        b = _bytes(text)
        self._v = _lib.Vocab()
        buf = (C.c_uint8 * max(1, len(b))).from_buffer_copy(b or b"\0")
        call("ct_vocab_build", C.byref(self._v), buf, len(b))

    @classmethod
    def from_bytes(cls, symbols: bytes) -> Vocab:
        """From a list of distinct bytes in increasing order (as stored in checkpoints)."""
        v = cls.__new__(cls)
        v._v = _lib.Vocab()
        buf = (C.c_uint8 * max(1, len(symbols))).from_buffer_copy(symbols or b"\0")
        call("ct_vocab_from_bytes", C.byref(v._v), buf, len(symbols))
        return v

    @property
    def size(self) -> int:
        return self._v.size

    def __len__(self) -> int:
        return self.size

    @property
    def symbols(self) -> bytes:
        """id -> byte."""
        return bytes(self._v.byte_of[: self.size])

    def encode(self, text: bytes | str) -> np.ndarray:
        """Bytes -> ids, int32 (RangeError naming a byte not in the vocabulary)."""
        b = _bytes(text)
        ids = np.empty(len(b), np.int32)
        if b:
            buf = (C.c_uint8 * len(b)).from_buffer_copy(b)
            call("ct_vocab_encode", C.byref(self._v), buf, len(b), ids.ctypes.data_as(_lib.i32p))
        return ids

    def decode(self, ids) -> bytes:
        """Ids -> bytes (RangeError naming an id outside the vocabulary)."""
        a = np.ascontiguousarray(ids, np.int32).ravel()
        out = (C.c_uint8 * max(1, a.size))()
        if a.size:
            call("ct_vocab_decode", C.byref(self._v), a.ctypes.data_as(_lib.i32p), a.size, out)
        return bytes(out[: a.size])

    def __repr__(self) -> str:
        return f"Vocab({self.size} bytes: {self.symbols!r})"


class BatchSampler:
    """Batches of windows from a token sequence, drawn by splitmix64 from seed as
    `ctml train` draws them (ct_batch_draw)."""

    def __init__(self, ids, seed: int = 0):
        self.ids = np.ascontiguousarray(ids, np.int32).ravel()
        self.state = C.c_uint64(seed)

    def draw(self, batch: int, time: int) -> tuple[np.ndarray, np.ndarray]:
        """inputs, targets: int32[batch, time], targets the inputs shifted by one."""
        x = np.empty((batch, time), np.int32)
        y = np.empty((batch, time), np.int32)
        call("ct_batch_draw", C.byref(self.state), self.ids.ctypes.data_as(_lib.i32p),
             self.ids.size, batch, time, x.ctypes.data_as(_lib.i32p), y.ctypes.data_as(_lib.i32p))
        return x, y


def window_pairs(tokens, vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """The n-1 next-token pairs (t[i], t[i+1]) of tokens, ids checked against vocab."""
    t = np.ascontiguousarray(tokens, np.int32).ravel()
    cap = max(1, t.size - 1)
    x, y = np.empty(cap, np.int32), np.empty(cap, np.int32)
    n = C.c_int64()
    call("ct_window_pairs", t.ctypes.data_as(_lib.i32p), t.size, vocab,
         x.ctypes.data_as(_lib.i32p), y.ctypes.data_as(_lib.i32p), cap, C.byref(n))
    return x[: n.value], y[: n.value]
