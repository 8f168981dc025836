# SPDX-License-Identifier: MIT
"""Optimizers and the trainer: forward ; loss ; reverse ; update, on any backend."""
from __future__ import annotations

import ctypes as C
from dataclasses import asdict, dataclass

import numpy as np

from . import _lib
from ._lib import call, lib, new
from .core import Backend, Morphism, Param, _as_array, _backend

__all__ = ["Optimizer", "Trainer"]

_KINDS = {"sgd": 0, "adamw": 1}


@dataclass
class Optimizer:
    """An optimizer and its schedule (ct_optimizer). Use Optimizer.sgd(lr) or
    Optimizer.adamw(lr, ...) for the library's defaults."""
    kind: str = "sgd"
    lr: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    clip_norm: float = 0.0
    warmup_steps: int = 0
    total_steps: int = 0
    min_lr: float = 0.0

    @classmethod
    def sgd(cls, lr: float) -> Optimizer:
        """Plain gradient descent p <- p - lr g."""
        return cls._from_c(cls._default("ct_optimizer_sgd", lr))

    @classmethod
    def adamw(cls, lr: float, **fields) -> Optimizer:
        """AdamW with PyTorch's defaults (weight decay 0.01); fields override them."""
        opt = cls._from_c(cls._default("ct_optimizer_adamw", lr))
        for k, v in fields.items():
            if not hasattr(opt, k):
                raise TypeError(f"ctml.Optimizer.adamw: no field {k!r}")
            setattr(opt, k, v)
        opt._c()  # validates
        return opt

    @staticmethod
    def _default(fn: str, lr: float) -> _lib.Optimizer:
        o = _lib.Optimizer()
        call(fn, C.byref(o), lr)
        return o

    @classmethod
    def _from_c(cls, o: _lib.Optimizer) -> Optimizer:
        kind = lib.ct_opt_name(o.kind).decode()
        return cls(kind, o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.clip_norm,
                   o.warmup_steps, o.total_steps, o.min_lr)

    def _c(self) -> _lib.Optimizer:
        if self.kind not in _KINDS:
            raise ValueError(f"ctml.Optimizer: kind must be 'sgd' or 'adamw', not {self.kind!r}")
        d = asdict(self)
        d["kind"] = _KINDS[self.kind]
        o = _lib.Optimizer(**d)
        call("ct_optimizer_validate", C.byref(o))
        return o

    def lr_at(self, t: int) -> float:
        """The scheduled learning rate of step t >= 1, as the device computes it."""
        o = self._c()
        return float(lib.ct_optimizer_lr_at(C.byref(o), t))


class Trainer:
    """Training of a loss morphism (codomain one LOSS object) on a backend.

    The parameters are uploaded once; `store_params` copies the trained values
    back to the host Params. Inputs (the batch) stay until replaced.
    """

    def __init__(self, loss: Morphism, backend: Backend | str = "cpu",
                 optimizer: Optimizer | None = None, *, rewrite: bool = True):
        self.backend = _backend(backend)
        self.loss = loss
        self.optimizer = optimizer if optimizer is not None else Optimizer.sgd(0.1)
        opt = self.optimizer._c()
        self.dom = loss.dom
        flags = 0 if rewrite else 8  # CT_PLAN_NO_REWRITE
        self._h: int | None = new("ct_trainer_new_flags", loss._h, self.backend._h,
                                  C.byref(opt), flags)

    def __del__(self) -> None:
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.ct_trainer_free(h)

    def set_input(self, i: int, values) -> None:
        """Input i of the loss morphism's domain."""
        if not 0 <= i < len(self.dom):
            raise IndexError(f"ctml.Trainer: input {i} of {len(self.dom)}")
        a = _as_array(values, self.dom[i], f"input {i}")
        call("ct_trainer_set_input", self._h, i, a.ctypes.data_as(_lib.vp), a.size)

    def set_inputs(self, *inputs) -> None:
        """Every input of the domain, in order."""
        if len(inputs) != len(self.dom):
            raise ValueError(f"ctml.Trainer: {len(inputs)} inputs for a domain of "
                             f"{len(self.dom)} objects ({', '.join(map(str, self.dom))})")
        for i, x in enumerate(inputs):
            self.set_input(i, x)

    def step(self, n: int = 1) -> float:
        """Runs n steps on the current batch; returns the last step's loss (before its
        update). A NaN/Inf loss raises NonFiniteError."""
        call("ct_trainer_step", self._h, n)
        return self.last_loss

    def eval(self) -> float:
        """The loss of the current parameters on the current batch."""
        v = C.c_float()
        call("ct_trainer_eval", self._h, C.byref(v))
        return float(v.value)

    def _float(self, fn: str) -> float:
        v = C.c_float()
        call(fn, self._h, C.byref(v))
        return float(v.value)

    @property
    def last_loss(self) -> float:
        return self._float("ct_trainer_last_loss")

    @property
    def last_lr(self) -> float:
        return self._float("ct_trainer_last_lr")

    @property
    def last_grad_norm(self) -> float:
        return self._float("ct_trainer_last_grad_norm")

    @property
    def steps(self) -> int:
        return int(lib.ct_trainer_steps(self._h))

    @steps.setter
    def steps(self, n: int) -> None:
        call("ct_trainer_set_steps", self._h, n)

    def set_optimizer(self, optimizer: Optimizer) -> None:
        """New numbers for the optimizer (same kind), without recompiling."""
        opt = optimizer._c()
        call("ct_trainer_set_optimizer", self._h, C.byref(opt))
        self.optimizer = optimizer

    def set_graph(self, on: bool) -> None:
        """Records a step as a device graph (cuda); UnsupportedError elsewhere."""
        call("ct_trainer_set_graph", self._h, on)

    def store_params(self) -> None:
        """Copies the trained parameters back to the host Params."""
        call("ct_trainer_store_params", self._h)

    def load_params(self) -> None:
        """Copies the host Params' values into the trainer (after setting them)."""
        call("ct_plan_load_params", lib.ct_trainer_plan(self._h))

    def state(self, param: Param) -> np.ndarray:
        """The optimizer state of param (AdamW: first moments then second moments, as
        an array [2, *shape]; SGD: empty)."""
        n = C.c_int64()
        call("ct_trainer_state_size", self._h, param._h, C.byref(n))
        out = np.empty(n.value, np.float32)
        call("ct_trainer_get_state", self._h, param._h, out.ctypes.data_as(_lib.f32p), n.value)
        return out.reshape((-1,) + param.shape) if n.value else out

    def set_state(self, param: Param, values) -> None:
        """Copies optimizer state in (the size of `state(param)`)."""
        a = np.ascontiguousarray(values, np.float32).ravel()
        call("ct_trainer_set_state", self._h, param._h, a.ctypes.data_as(_lib.f32p), a.size)

    @property
    def rewrites(self) -> list[str]:
        """The rewrite rules that fired in the training plan."""
        p = lib.ct_trainer_plan(self._h)
        return [lib.ct_plan_rewrite(p, i).decode() for i in range(lib.ct_plan_rewrite_count(p))]

