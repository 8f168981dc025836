# SPDX-License-Identifier: MIT
"""The GPT built by composition from a config, its decoder, and its checkpoints."""
from __future__ import annotations

import ctypes as C
import os
from dataclasses import astuple, dataclass
from collections.abc import Sequence

import numpy as np

from . import _lib
from ._lib import call, lib, new
from .core import Backend, Morphism, Param, _backend
from .safetensors import SafetensorsFile, save_safetensors
from .train import Optimizer, Trainer

__all__ = ["GPTConfig", "GPT", "Decoder", "DecodeStats"]

CHECKPOINT_FORMAT = "ctml-python-gpt-1"


@dataclass(frozen=True)
class GPTConfig:
    """ct_gpt_config: token ids in [0, vocab), sequences up to block, layers
    transformer blocks of heads heads over width channels (MLP 4 width)."""
    vocab: int
    block: int
    layers: int = 1
    heads: int = 1
    width: int = 16


class GPT:
    """A GPT (ct_gpt): its parameters, named as in gpt.h, live in the library
    and are read and written as numpy arrays."""

    def __init__(self, config: GPTConfig, seed: int = 0):
        self.config = config
        cfg = _lib.GptConfig(*astuple(config))
        self._h: int | None = new("ct_gpt_new", C.byref(cfg), seed)
        self.params: list[Param] = [
            Param("", (), _handle=lib.ct_gpt_param(self._h, i), _owner=self)
            for i in range(lib.ct_gpt_param_count(self._h))]
        self._by_name = {p.name: p for p in self.params}

    def __del__(self) -> None:
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.ct_gpt_free(h)

    def param(self, name: str) -> Param:
        """The parameter called name (KeyError naming the known ones otherwise)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"ctml.GPT: no parameter {name!r} (have {', '.join(self._by_name)})") \
                from None

    @property
    def numel(self) -> int:
        """Total trainable floats."""
        return int(lib.ct_gpt_numel(self._h))

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter's values by name (copies)."""
        return {p.name: p.value for p in self.params}

    def load_state_dict(self, values: dict[str, np.ndarray]) -> None:
        """Sets the parameters named in values (every one must be known)."""
        for name, v in values.items():
            self.param(name).set(v)

    # The morphisms.
    def logits_morphism(self, batch: int, time: int) -> Morphism:
        """TOKENS i32[B,T] -> LOGITS f32[B,T,V] (ct_gpt_logits)."""
        return Morphism(new("ct_gpt_logits", self._h, batch, time))

    def loss_morphism(self, batch: int, time: int) -> Morphism:
        """TOKENS i32[B,T] (x) TOKENS i32[B,T] -> LOSS (ct_gpt_loss)."""
        return Morphism(new("ct_gpt_loss", self._h, batch, time))

    def decode_morphism(self, caches: Sequence[Param], batch: int, time: int) -> Morphism:
        """tokens (x) positions -> logits over decoding caches (ct_gpt_decode): caches
        [2l] and [2l+1] are layer l's keys and values, Param.cache(name, batch, heads,
        block, width // heads). Forward only; Decoder runs it for you."""
        if len(caches) != 2 * self.config.layers:
            raise ValueError(f"ctml.GPT.decode_morphism: {len(caches)} caches for "
                             f"{self.config.layers} layers (two each)")
        arr = (_lib.vp * len(caches))(*[c._h for c in caches])
        return Morphism(new("ct_gpt_decode", self._h, arr, batch, time))

    # Running them.
    def logits(self, tokens, backend: Backend | str = "cpu") -> np.ndarray:
        """The logits f32[B,T,V] of tokens i32[B,T] (a forward run)."""
        t = np.atleast_2d(np.asarray(tokens, np.int32))
        return self.logits_morphism(*t.shape).run(t, backend=backend)

    def forward_loss(self, inputs, targets, backend: Backend | str = "cpu") -> float:
        """The mean cross-entropy of predicting targets from inputs, both i32[B,T]."""
        x = np.atleast_2d(np.asarray(inputs, np.int32))
        y = np.atleast_2d(np.asarray(targets, np.int32))
        return float(self.loss_morphism(*x.shape).run(x, y, backend=backend))

    def trainer(self, batch: int, time: int, backend: Backend | str = "cpu",
                optimizer: Optimizer | None = None) -> Trainer:
        """A Trainer of the loss morphism for batches i32[batch, time] (AdamW lr 1e-3
        by default)."""
        opt = optimizer if optimizer is not None else Optimizer.adamw(1e-3)
        return Trainer(self.loss_morphism(batch, time), backend, opt)

    def decoder(self, backend: Backend | str = "cpu", batch: int = 1,
                cache: bool = True) -> Decoder:
        return Decoder(self, backend, batch, cache)

    def generate(self, prompt: Sequence[int], n: int, backend: Backend | str = "cpu", *,
                 temperature: float = 1.0, top_k: int | None = None, seed: int = 0) -> list[int]:
        """n tokens after prompt, sampled (temperature 0: greedy) with a cached decoder."""
        return self.decoder(backend).generate(prompt, n, temperature=temperature, top_k=top_k,
                                              seed=seed)

    # Checkpoints.
    def save(self, path: str | os.PathLike, trainer: Trainer | None = None,
             metadata: dict[str, str] | None = None) -> None:
        """Writes the parameters (by name) and the config (metadata config.*) to a
        safetensors file; with an AdamW trainer also its moments (optim.m.<name>,
        optim.v.<name>) and step count, as `ctml train` checkpoints name them. The
        trainer's parameters are stored to the host first."""
        tensors: dict[str, np.ndarray] = {}
        if trainer is not None:
            trainer.store_params()
        for p in self.params:
            tensors[p.name] = p.value
        meta = {"format": CHECKPOINT_FORMAT, "ctml.version": lib.ct_version().decode()}
        for k, v in zip(("vocab", "block", "layers", "heads", "width"), astuple(self.config)):
            meta[f"config.{k}"] = str(v)
        if trainer is not None:
            meta["step"] = str(trainer.steps)
            meta["optimizer"] = trainer.optimizer.kind
            for p in self.params:
                s = trainer.state(p)
                if s.size:
                    tensors[f"optim.m.{p.name}"] = s[0]
                    tensors[f"optim.v.{p.name}"] = s[1]
        meta.update(metadata or {})
        save_safetensors(path, tensors, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> GPT:
        """A GPT of the file's config (metadata config.*) with its parameters
        (a file of GPT.save or a `ctml train` checkpoint)."""
        with SafetensorsFile(path) as f:
            try:
                cfg = GPTConfig(*(int(f.meta(f"config.{k}"))  # type: ignore[arg-type]
                                  for k in ("vocab", "block", "layers", "heads", "width")))
            except TypeError:
                raise ValueError(f"ctml.GPT.load: {os.fspath(path)}: no config.* metadata "
                                 "(not a ctml GPT checkpoint)") from None
            g = cls(cfg)
            for p in g.params:
                p.set(f[p.name])
        return g

    def load_optimizer_state(self, path: str | os.PathLike, trainer: Trainer) -> None:
        """Restores an AdamW trainer from a checkpoint of save(path, trainer): the
        parameters, the moments and the step count."""
        with SafetensorsFile(path) as f:
            for p in self.params:
                p.set(f[p.name])
                trainer.set_state(p, np.stack([f[f"optim.m.{p.name}"], f[f"optim.v.{p.name}"]]))
            trainer.steps = int(f.meta("step", "0"))  # type: ignore[arg-type]
        trainer.load_params()


@dataclass(frozen=True)
class DecodeStats:
    """ct_decode_stats."""
    prefill_tokens: int
    decode_tokens: int
    restarts: int
    prefill_seconds: float
    decode_seconds: float


class Decoder:
    """Generation over a context window (ct_decoder): append tokens, get the logits
    predicting each row's next one. The GPT's parameters are copied now."""

    def __init__(self, gpt: GPT, backend: Backend | str = "cpu", batch: int = 1,
                 cache: bool = True):
        self.gpt = gpt
        self.batch = batch
        self.backend = _backend(backend)
        flags = 0 if cache else 1  # CT_DECODE_NO_CACHE
        self._h: int | None = new("ct_decoder_new", gpt._h, self.backend._h, batch, flags)

    def __del__(self) -> None:
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.ct_decoder_free(h)

    def append(self, tokens) -> np.ndarray:
        """Appends tokens i32[batch, n] (or [n] for batch 1) to every row; returns the
        logits f32[batch, vocab] of each row's next token."""
        t = np.ascontiguousarray(np.asarray(tokens, np.int32).reshape(self.batch, -1))
        logits = np.empty((self.batch, self.gpt.config.vocab), np.float32)
        call("ct_decoder_append", self._h, t.ctypes.data_as(_lib.i32p), t.shape[1],
             logits.ctypes.data_as(_lib.f32p))
        return logits

    def reset(self) -> None:
        """Empties the window."""
        call("ct_decoder_reset", self._h)

    def __len__(self) -> int:
        return int(lib.ct_decoder_length(self._h))

    def stats(self) -> DecodeStats:
        s = _lib.DecodeStats()
        call("ct_decoder_stats", self._h, C.byref(s))
        return DecodeStats(s.prefill_tokens, s.decode_tokens, s.restarts, s.prefill_seconds,
                           s.decode_seconds)

    def generate(self, prompt: Sequence[int], n: int, *, temperature: float = 1.0,
                 top_k: int | None = None, seed: int = 0) -> list[int]:
        """n tokens after prompt (batch 1): softmax(logits / temperature) over the top_k
        (all when None) sampled with numpy's generator from seed; temperature 0 is
        greedy. The window is reset first."""
        if self.batch != 1:
            raise ValueError("ctml.Decoder.generate: batch 1 only (use append for batches)")
        if not len(prompt):
            raise ValueError("ctml.Decoder.generate: an empty prompt")
        rng = np.random.default_rng(seed)
        self.reset()
        logits = self.append(list(prompt))[0]
        out: list[int] = []
        for i in range(n):
            tok = _pick(logits, temperature, top_k, rng)
            out.append(tok)
            if i + 1 < n:
                logits = self.append([tok])[0]
        return out


def _pick(logits: np.ndarray, temperature: float, top_k: int | None,
          rng: np.random.Generator) -> int:
    if temperature <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    if top_k is not None and 0 < top_k < z.size:
        z[z < np.sort(z)[-top_k]] = -np.inf
    p = np.exp(z - z.max())
    p /= p.sum()
    return int(rng.choice(z.size, p=p))
