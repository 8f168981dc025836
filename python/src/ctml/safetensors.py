# SPDX-License-Identifier: MIT
"""Tensors and metadata in safetensors files, through libctml's reader and writer
(F32 tensors only, the file validated whole when read, written atomically)."""
from __future__ import annotations

import ctypes as C
import os
from collections.abc import Iterator, Mapping

import numpy as np

from . import _lib
from ._lib import call, lib, new

__all__ = ["SafetensorsFile", "save_safetensors", "load_safetensors"]


def save_safetensors(path: str | os.PathLike, tensors: Mapping[str, np.ndarray],
                     metadata: Mapping[str, str] | None = None) -> None:
    """Writes tensors (converted to float32, rank 0..4) in the order given, with
    string metadata, atomically (ct_safetensors_write)."""
    arrays = [(name, np.asarray(a, np.float32, order="C")) for name, a in tensors.items()]
    ts = (_lib.StTensor * max(1, len(arrays)))()
    for i, (name, a) in enumerate(arrays):
        if a.ndim > _lib.CT_MAX_RANK:
            raise ValueError(f"ctml.save_safetensors: tensor '{name}' has rank {a.ndim} "
                             f"(at most {_lib.CT_MAX_RANK})")
        ts[i].name = name.encode()
        ts[i].rank = a.ndim
        for k, d in enumerate(a.shape):
            ts[i].dims[k] = d
        ts[i].data = a.ctypes.data_as(_lib.f32p)
    meta = list((metadata or {}).items())
    ms = (_lib.StMeta * max(1, len(meta)))()
    for i, (key, value) in enumerate(meta):
        ms[i].key = str(key).encode()
        ms[i].value = str(value).encode()
    call("ct_safetensors_write", os.fsencode(path), ts, len(arrays), ms, len(meta))


class SafetensorsFile:
    """A safetensors file read and validated by libctml. Use as a mapping from
    tensor names to (copied) float32 arrays; `meta(key)` reads metadata."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._h: int | None = new("ct_safetensors_read", os.fsencode(path))

    def close(self) -> None:
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.ct_safetensors_free(h)

    __del__ = close

    def __enter__(self) -> SafetensorsFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _handle(self):
        if not self._h:
            raise ValueError(f"ctml: safetensors file {self.path} is closed")
        return self._h

    def names(self) -> list[str]:
        """Tensor names in file order."""
        h = self._handle()
        return [lib.ct_safetensors_name(h, i).decode() for i in range(lib.ct_safetensors_count(h))]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return lib.ct_safetensors_count(self._handle())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def __getitem__(self, name: str) -> np.ndarray:
        rank = C.c_int()
        dims = (C.c_int64 * _lib.CT_MAX_RANK)()
        data = _lib.f32p()
        call("ct_safetensors_get", self._handle(), name.encode(), C.byref(rank), dims,
             C.byref(data))
        shape = tuple(dims[: rank.value])
        n = int(np.prod(shape, dtype=np.int64))
        if n == 0:
            return np.zeros(shape, np.float32)
        return np.ctypeslib.as_array(data, shape=(n,)).reshape(shape).copy()

    def meta(self, key: str, default: str | None = None) -> str | None:
        """The metadata value of key, or default when absent."""
        v = lib.ct_safetensors_meta(self._handle(), key.encode())
        return v.decode() if v is not None else default

    def tensors(self) -> dict[str, np.ndarray]:
        return {name: self[name] for name in self.names()}


def load_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file, by name (metadata: SafetensorsFile.meta)."""
    with SafetensorsFile(path) as f:
        return f.tensors()
