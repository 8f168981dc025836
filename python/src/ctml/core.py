# SPDX-License-Identifier: MIT
"""Objects, parameters, morphisms and their generators, backends and plans."""
from __future__ import annotations

import ctypes as C
import enum
from dataclasses import dataclass, field
from collections.abc import Iterable, Sequence

import numpy as np

from . import _lib
from ._lib import call, lib, new

__all__ = [
    "DType", "Role", "Object", "Param", "Morphism", "BackendInfo", "DeviceInfo", "Backend",
    "Plan", "PlanStats", "TraceEvent", "CheckEntry", "CheckReport", "check", "backends",
    "backend", "set_backend_option", "version", "pair",
    "identity", "compose", "then", "tensor", "embedding", "linear", "softmax", "cross_entropy",
    "softmax_cross_entropy", "copy", "add", "discard", "pos_embedding", "layernorm",
    "add_layernorm", "gelu", "linear_gelu", "qkv", "head_split", "head_merge", "attn_scores",
    "causal_softmax", "attn_apply", "causal_attention", "kv_attention", "self_attention",
    "single_head_attention",
]


def version() -> str:
    """The version of the libctml loaded ("MAJOR.MINOR.PATCH")."""
    return lib.ct_version().decode()


class DType(enum.IntEnum):
    """Element types (ct_dtype)."""
    F32 = 0
    I32 = 1

    @property
    def numpy(self) -> type:
        return np.float32 if self is DType.F32 else np.int32


class Role(enum.IntEnum):
    """What a value means (ct_role); TOKENS is i32, every other role f32."""
    TOKENS = 0
    HIDDEN = 1
    LOGITS = 2
    DIST = 3
    LOSS = 4
    PARAM = 5
    SEQ = 6
    HEADS = 7
    SCORES = 8
    ATTN = 9
    CACHE = 10


@dataclass(frozen=True)
class Object:
    """A type of morphisms: a dtype, a role and a shape, checked by ct_object_make.

    >>> Object(Role.HIDDEN, (7, 4))
    HIDDEN f32[7,4]
    """
    role: Role
    shape: tuple[int, ...] = ()
    # None: the role's, I32 for TOKENS, else F32 (always a DType once constructed)
    dtype: DType = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        role = Role(self.role)
        dtype = DType(self.dtype) if self.dtype is not None else (
            DType.I32 if role == Role.TOKENS else DType.F32)
        shape = tuple(int(d) for d in self.shape)
        object.__setattr__(self, "role", role)
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "shape", shape)
        self._c()  # validates

    # Shorthands, as in object.h.
    @classmethod
    def tokens(cls, n: int) -> Object:
        """TOKENS i32[n]."""
        return cls(Role.TOKENS, (n,))

    @classmethod
    def matrix(cls, role: Role, rows: int, cols: int) -> Object:
        """role f32[rows, cols]."""
        return cls(role, (rows, cols))

    @classmethod
    def loss(cls) -> Object:
        """LOSS f32[]."""
        return cls(Role.LOSS, ())

    @classmethod
    def token_seq(cls, batch: int, time: int) -> Object:
        """TOKENS i32[B, T]."""
        return cls(Role.TOKENS, (batch, time))

    @classmethod
    def seq(cls, batch: int, time: int, channels: int) -> Object:
        """SEQ f32[B, T, C]."""
        return cls(Role.SEQ, (batch, time, channels))

    def _c(self) -> _lib.Object:
        o = _lib.Object()
        dims = (C.c_int64 * _lib.CT_MAX_RANK)(*self.shape[:_lib.CT_MAX_RANK])
        call("ct_object_make", C.byref(o), int(self.dtype), int(self.role), len(self.shape), dims)
        return o

    @classmethod
    def _from_c(cls, o: _lib.Object) -> Object:
        return cls(Role(o.role), tuple(o.dims[: o.rank]), DType(o.dtype))

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __str__(self) -> str:
        buf = C.create_string_buffer(128)
        return lib.ct_object_str(C.byref(self._c()), buf, 128).decode()

    __repr__ = __str__


def _as_array(values, obj: Object, what: str) -> np.ndarray:
    """values as a C-contiguous array of obj's dtype and element count."""
    a: np.ndarray = np.ascontiguousarray(values, dtype=obj.dtype.numpy)
    if a.size != obj.numel:
        raise ValueError(f"ctml: {what} has {a.size} elements, {obj} needs {obj.numel} "
                         f"(shape {obj.shape})")
    return a


class Param:
    """A named f32 tensor that generators refer to (shared, not copied).

    `value` copies the host values out as a numpy array of the parameter's shape;
    assigning to it (or `set`) copies values in.
    """

    def __init__(self, name: str, shape: Sequence[int], *, _handle: int | None = None,
                 _owner: object = None):
        if _handle is None:
            shape = tuple(int(d) for d in shape)
            dims = (C.c_int64 * max(1, len(shape)))(*shape)
            _handle = new("ct_param_new", name.encode(), len(shape), dims)
            _owner = None
        self._h: int | None = _handle
        self._owner = _owner  # keeps the GPT that holds a borrowed parameter alive

    @classmethod
    def cache(cls, name: str, batch: int, heads: int, length: int, width: int) -> Param:
        """A zero-filled decoding cache CACHE f32[batch, heads, length, width]."""
        return cls(name, (), _handle=new("ct_param_new_cache", name.encode(), batch, heads,
                                         length, width))

    def __del__(self) -> None:
        h, self._h = getattr(self, "_h", None), None
        if h and self._owner is None:
            lib.ct_param_free(h)

    @property
    def object(self) -> Object:
        return Object._from_c(lib.ct_param_object(self._h).contents)

    @property
    def name(self) -> str:
        return lib.ct_param_name(self._h).decode()

    @property
    def shape(self) -> tuple[int, ...]:
        return self.object.shape

    @property
    def numel(self) -> int:
        return int(lib.ct_param_numel(self._h))

    @property
    def value(self) -> np.ndarray:
        out = np.empty(self.shape, dtype=np.float32)
        call("ct_param_get", self._h, out.ctypes.data_as(_lib.f32p), out.size)
        return out

    @value.setter
    def value(self, values) -> None:
        self.set(values)

    def numpy(self) -> np.ndarray:
        """A copy of the host values."""
        return self.value

    def set(self, values) -> Param:
        """Copies values in (the element count must match; all finite)."""
        a = _as_array(values, self.object, f"the values for parameter '{self.name}'")
        call("ct_param_set", self._h, a.ctypes.data_as(_lib.f32p), a.size)
        return self

    def init_book(self, seed: int) -> Param:
        """The book's deterministic initialiser (ct_param_init_book)."""
        call("ct_param_init_book", self._h, seed)
        return self

    def init_normal(self, std: float, seed: int) -> Param:
        """Normal(0, std) values from seed (ct_param_init_normal)."""
        call("ct_param_init_normal", self._h, std, seed)
        return self

    def fill(self, value: float) -> Param:
        call("ct_param_fill", self._h, value)
        return self

    def __repr__(self) -> str:
        return f"Param({self.name!r}, {self.object})"


def _ph(p: Param | None):
    return p._h if p is not None else None


class Morphism:
    """A morphism dom -> cod, an open graph of generator applications.

    `f >> g` is f ; g (first f, then g: ct_then), `g << f` is g . f (ct_compose),
    and `f & g` is f (x) g, the two side by side (ct_tensor). Calling a morphism
    runs it forward once on a backend (see `run`).
    """

    def __init__(self, handle: int):
        self._h: int | None = handle

    def __del__(self) -> None:
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.ct_morphism_free(h)

    @property
    def dom(self) -> tuple[Object, ...]:
        n = lib.ct_morphism_dom_count(self._h)
        return tuple(Object._from_c(lib.ct_morphism_dom(self._h, i).contents) for i in range(n))

    @property
    def cod(self) -> tuple[Object, ...]:
        n = lib.ct_morphism_cod_count(self._h)
        return tuple(Object._from_c(lib.ct_morphism_cod(self._h, i).contents) for i in range(n))

    @property
    def node_count(self) -> int:
        return lib.ct_morphism_node_count(self._h)

    def then(self, g: Morphism) -> Morphism:
        """self ; g: self's outputs feed g's inputs."""
        return Morphism(new("ct_then", self._h, g._h))

    def compose(self, f: Morphism) -> Morphism:
        """self . f: f's outputs feed self's inputs."""
        return Morphism(new("ct_compose", self._h, f._h))

    def tensor(self, g: Morphism) -> Morphism:
        """self (x) g: side by side, dom and cod concatenated."""
        return Morphism(new("ct_tensor", self._h, g._h))

    def __rshift__(self, g: Morphism) -> Morphism:
        return self.then(g)

    def __lshift__(self, f: Morphism) -> Morphism:
        return self.compose(f)

    def __and__(self, g: Morphism) -> Morphism:
        return self.tensor(g)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Morphism):
            return NotImplemented
        return bool(lib.ct_morphism_equal(self._h, other._h))

    __hash__ = None  # type: ignore[assignment]

    def describe(self) -> str:
        """The library's listing of the graph."""
        n = 1 << 14
        while True:
            buf = C.create_string_buffer(n)
            call("ct_morphism_describe", self._h, buf, n)
            if len(buf.value) < n - 1 or n >= 1 << 24:
                return buf.value.decode()
            n *= 4

    def compile(self, backend: Backend | str = "cpu", mode: str = "forward", *,
                keep: bool = False, rewrite: bool = True) -> Plan:
        """A plan of this morphism on a backend (see Plan)."""
        return Plan(self, backend, mode, keep=keep, rewrite=rewrite)

    def run(self, *inputs, backend: Backend | str = "cpu"):
        """Compiles a forward plan and runs it once: the output array, or a tuple of
        them when the codomain has several objects."""
        out = self.compile(backend).forward(*inputs)
        return out[0] if len(out) == 1 else out

    __call__ = run

    def __repr__(self) -> str:
        dom = " (x) ".join(map(str, self.dom)) or "I"
        cod = " (x) ".join(map(str, self.cod)) or "I"
        return f"<Morphism {dom} -> {cod}, {self.node_count} nodes>"


def _objs(objs: Iterable[Object]):
    objs = list(objs)
    arr = (_lib.Object * max(1, len(objs)))(*[o._c() for o in objs])
    return arr, len(objs)


def identity(*objs: Object) -> Morphism:
    """id on objs[0] (x) ... (x) objs[-1]; no objects: the unit I."""
    arr, n = _objs(objs)
    return Morphism(new("ct_identity", arr, n))


def compose(*ms: Morphism) -> Morphism:
    """compose(h, g, f) = h . g . f (the last applied first)."""
    return then(*reversed(ms))


def then(*ms: Morphism) -> Morphism:
    """then(f, g, h) = f ; g ; h (the first applied first)."""
    if not ms:
        raise ValueError("ctml.then: no morphisms")
    out = ms[0]
    for m in ms[1:]:
        out = out >> m
    return out


def tensor(*ms: Morphism) -> Morphism:
    """tensor(f, g, h) = f (x) g (x) h."""
    if not ms:
        raise ValueError("ctml.tensor: no morphisms (identity() is the unit)")
    out = ms[0]
    for m in ms[1:]:
        out = out & m
    return out


def pair(f: Morphism, g: Morphism) -> Morphism:
    """<f, g> : A -> B (x) C from f : A -> B and g : A -> C on one object A: copy ; (f (x) g).
    (The C API has no pairing or swap of its own; this is the composite.)"""
    dom = f.dom
    if len(dom) != 1 or g.dom != dom:
        raise ValueError(f"ctml.pair: f and g need the same one-object domain, not {f.dom} "
                         f"and {g.dom}")
    return copy(dom[0]) >> (f & g)


def _o(o: Object):
    return C.byref(o._c())


def embedding(tokens: Object, table: Param) -> Morphism:
    """TOKENS i32[n] -> HIDDEN f32[n,D] (or TOKENS [B,T] -> SEQ [B,T,D]); table PARAM [V,D]."""
    return Morphism(new("ct_embedding", _o(tokens), table._h))


def linear(x: Object, W: Param, b: Param | None = None, out_role: Role = Role.HIDDEN) -> Morphism:
    """x . W + b over the last axis; W PARAM [K,M], b PARAM [M] or None."""
    return Morphism(new("ct_linear", _o(x), int(out_role), W._h, _ph(b)))


def softmax(logits: Object) -> Morphism:
    """LOGITS f32[..,C] -> DIST f32[..,C], row-wise."""
    return Morphism(new("ct_softmax", _o(logits)))


def cross_entropy(dist: Object, targets: Object) -> Morphism:
    """DIST f32[n,C] (x) TOKENS i32[n] -> LOSS, mean of -ln p[target]."""
    return Morphism(new("ct_cross_entropy", _o(dist), _o(targets)))


def softmax_cross_entropy(logits: Object, targets: Object) -> Morphism:
    """LOGITS (x) TOKENS -> LOSS: cross_entropy . (softmax (x) id), fused."""
    return Morphism(new("ct_softmax_cross_entropy", _o(logits), _o(targets)))


def copy(a: Object) -> Morphism:
    """A -> A (x) A."""
    return Morphism(new("ct_copy", _o(a)))


def add(a: Object) -> Morphism:
    """A (x) A -> A (f32)."""
    return Morphism(new("ct_add", _o(a)))


def discard(a: Object) -> Morphism:
    """A -> I."""
    return Morphism(new("ct_discard", _o(a)))


def pos_embedding(x: Object, P: Param) -> Morphism:
    """SEQ f32[B,T,C] -> SEQ, adding learned positions P [L,C] (L >= T)."""
    return Morphism(new("ct_pos_embedding", _o(x), P._h))


def layernorm(x: Object, gain: Param, bias: Param) -> Morphism:
    """Layer normalisation over the last axis of a HIDDEN or SEQ object."""
    return Morphism(new("ct_layernorm", _o(x), gain._h, bias._h))


def add_layernorm(x: Object, gain: Param, bias: Param) -> Morphism:
    """x (x) r -> (x + r) (x) layernorm(x + r), fused."""
    return Morphism(new("ct_add_layernorm", _o(x), gain._h, bias._h))


def gelu(x: Object) -> Morphism:
    """GELU (tanh approximation), element-wise on HIDDEN or SEQ."""
    return Morphism(new("ct_gelu", _o(x)))


def linear_gelu(x: Object, W: Param, b: Param | None = None,
                out_role: Role = Role.HIDDEN) -> Morphism:
    """gelu(x . W + b), fused."""
    return Morphism(new("ct_linear_gelu", _o(x), int(out_role), W._h, _ph(b)))


def qkv(x: Object, wq: Param, bq: Param | None, wk: Param, bk: Param | None, wv: Param,
        bv: Param | None, out_role: Role = Role.SEQ) -> Morphism:
    """x -> q (x) k (x) v, three linears of one input."""
    return Morphism(new("ct_qkv", _o(x), int(out_role), wq._h, _ph(bq), wk._h, _ph(bk), wv._h,
                        _ph(bv)))


def head_split(x: Object, heads: int) -> Morphism:
    """SEQ f32[B,T,C] -> HEADS f32[B,H,T,C/H]."""
    return Morphism(new("ct_head_split", _o(x), heads))


def head_merge(x: Object) -> Morphism:
    """HEADS f32[B,H,T,D] -> SEQ f32[B,T,H*D]."""
    return Morphism(new("ct_head_merge", _o(x)))


def attn_scores(q: Object, k: Object) -> Morphism:
    """q (x) k -> SCORES, causal scaled dot products."""
    return Morphism(new("ct_attn_scores", _o(q), _o(k)))


def causal_softmax(scores: Object) -> Morphism:
    """SCORES -> ATTN, row i a distribution over j <= i."""
    return Morphism(new("ct_causal_softmax", _o(scores)))


def attn_apply(a: Object, v: Object) -> Morphism:
    """ATTN (x) values -> weighted values."""
    return Morphism(new("ct_attn_apply", _o(a), _o(v)))


def causal_attention(x: Object, heads: int) -> Morphism:
    """q (x) k (x) v -> y, causal multi-head attention in one generator (SEQ objects)."""
    return Morphism(new("ct_causal_attention", _o(x), heads))


def kv_attention(x: Object, positions: Object, k_cache: Param, v_cache: Param) -> Morphism:
    """q (x) k (x) v (x) positions -> y over decoding caches (forward only)."""
    return Morphism(new("ct_kv_attention", _o(x), _o(positions), k_cache._h, v_cache._h))


def _attn_params(wq, bq, wk, bk, wv, bv, wo, bo) -> _lib.AttentionParams:
    return _lib.AttentionParams(*[_ph(p) for p in (wq, bq, wk, bk, wv, bv, wo, bo)])


def self_attention(x: Object, heads: int, wq: Param, bq: Param | None, wk: Param,
                   bk: Param | None, wv: Param, bv: Param | None, wo: Param,
                   bo: Param | None) -> Morphism:
    """Multi-head causal self-attention SEQ [B,T,C] -> SEQ [B,T,C] (the composite)."""
    p = _attn_params(wq, bq, wk, bk, wv, bv, wo, bo)
    return Morphism(new("ct_self_attention", _o(x), heads, C.byref(p)))


def single_head_attention(x: Object, wq: Param, bq: Param | None, wk: Param, bk: Param | None,
                          wv: Param, bv: Param | None, wo: Param, bo: Param | None) -> Morphism:
    """One-head causal self-attention without split or merge."""
    p = _attn_params(wq, bq, wk, bk, wv, bv, wo, bo)
    return Morphism(new("ct_single_head_attention", _o(x), C.byref(p)))


# ---- backends --------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceInfo:
    """One device a backend can see (ct_device_info)."""
    name: str
    usable: bool
    selected: bool
    gpu: bool
    reason: str


@dataclass(frozen=True)
class BackendInfo:
    """A backend ctml knows of (ct_backend_info), present or not."""
    name: str
    built: bool
    present: bool
    simulated: bool
    device: str
    reason: str
    devices: tuple[DeviceInfo, ...] = field(default=())


def _devices(index: int) -> tuple[DeviceInfo, ...]:
    cap = 16
    while True:
        arr = (_lib.DeviceInfo * cap)()
        count = C.c_int(0)
        call("ct_backend_devices", index, arr, cap, C.byref(count))
        if count.value <= cap:
            return tuple(DeviceInfo(d.name.decode(errors="replace"), d.usable, d.selected, d.gpu,
                                    d.reason.decode(errors="replace"))
                         for d in arr[: count.value])
        cap = count.value


def _info(index: int) -> BackendInfo:
    i = _lib.BackendInfo()
    call("ct_backend_info_get", index, C.byref(i))
    return BackendInfo(i.name.decode(), i.built, i.present, i.simulated,
                       i.device.decode(errors="replace"), i.reason.decode(errors="replace"),
                       _devices(index))


def backends() -> list[BackendInfo]:
    """Every backend ctml knows of, present or not (each one listed is opened)."""
    return [_info(i) for i in range(lib.ct_backend_count())]


class Backend:
    """A present backend, found by name: "cpu", "cuda", "opencl" or "auto"."""

    def __init__(self, name: str = "cpu"):
        out = _lib.vp()
        call("ct_backend_get", name.encode(), C.byref(out))
        self._h = out.value
        self.name: str = lib.ct_backend_name(self._h).decode()

    def info(self) -> BackendInfo:
        """The backend's description, with its device and the devices it sees."""
        index = C.c_int(0)
        call("ct_backend_index", self.name.encode(), C.byref(index))
        return _info(index.value)

    @property
    def device(self) -> str:
        return self.info().device

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"


def backend(name: str = "cpu") -> Backend:
    """The present backend called name (BackendAbsentError with the reason otherwise)."""
    return Backend(name)


def _backend(b: Backend | str) -> Backend:
    return b if isinstance(b, Backend) else Backend(b)


def set_backend_option(backend_name: str, key: str, value: str) -> None:
    """ct_backend_set_option, e.g. ("opencl", "device", "0") or ("cuda", "tf32", "on")."""
    call("ct_backend_set_option", backend_name.encode(), key.encode(), value.encode())


# ---- plans -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanStats:
    """ct_plan_stats."""
    nodes: int
    steps: int
    values: int
    buffers: int
    planned_bytes: int
    naive_bytes: int
    param_bytes: int


@dataclass(frozen=True)
class TraceEvent:
    """One kernel launch (ct_trace_event)."""
    op: str
    shape: str
    flops: float
    bytes: float
    seconds: float


@dataclass(frozen=True)
class CheckEntry:
    """One compared result of `check` (ct_check_entry)."""
    label: str
    node: int
    reverse: bool
    elements: int
    max_abs: float
    max_ratio: float
    nonfinite: bool
    passed: bool
    detail: str


@dataclass(frozen=True)
class CheckReport:
    """Every node's forward result, input cotangents and parameter gradient on two
    backends, compared (ct_check)."""
    entries: tuple[CheckEntry, ...]
    first_divergent: int | None

    @property
    def passed(self) -> bool:
        return self.first_divergent is None


def check(morphism: Morphism, a: Backend | str, b: Backend | str = "cpu", *inputs,
          seed: int = 0) -> CheckReport:
    """Runs morphism on backends a and b (the reference) on the same inputs (one per
    dom object) and random output cotangents from seed, and compares every result."""
    dom = morphism.dom
    if len(inputs) != len(dom):
        raise ValueError(f"ctml.check: {len(inputs)} inputs for a domain of {len(dom)} objects")
    arrays = [_as_array(x, o, f"input {i}") for i, (x, o) in enumerate(zip(inputs, dom))]
    ptrs = (_lib.vp * max(1, len(arrays)))(*[x.ctypes.data for x in arrays])
    r = _lib.CheckReport()
    call("ct_check", morphism._h, _backend(a)._h, _backend(b)._h, ptrs, seed, C.byref(r))
    try:
        entries = tuple(CheckEntry(e.label.decode(), e.node, e.dir == 1, e.elements, e.max_abs,
                                   e.max_ratio, e.nonfinite, e.passed,
                                   e.detail.decode(errors="replace"))
                        for e in r.entries[: r.count])
        return CheckReport(entries, r.first_divergent if r.first_divergent >= 0 else None)
    finally:
        lib.ct_check_report_free(C.byref(r))


_MODES = {"forward": 0, "reverse": 1}


class Plan:
    """A morphism compiled for a backend. Parameters are uploaded when compiled
    (and by load_params); mode "reverse" also runs the reverse derivative."""

    def __init__(self, morphism: Morphism, backend: Backend | str = "cpu",
                 mode: str = "forward", *, keep: bool = False, rewrite: bool = True):
        if mode not in _MODES:
            raise ValueError(f"ctml.Plan: mode must be 'forward' or 'reverse', not {mode!r}")
        flags = _MODES[mode] | (2 if keep else 0) | (0 if rewrite else 8)
        self.backend = _backend(backend)
        self.morphism = morphism
        self.dom = morphism.dom
        self.cod = morphism.cod
        self._h: int | None = new("ct_compile", morphism._h, self.backend._h, flags)

    def __del__(self) -> None:
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.ct_plan_free(h)

    def set_input(self, i: int, values) -> None:
        if not 0 <= i < len(self.dom):
            raise IndexError(f"ctml.Plan: input {i} of {len(self.dom)}")
        a = _as_array(values, self.dom[i], f"input {i}")
        call("ct_plan_set_input", self._h, i, a.ctypes.data_as(_lib.vp), a.size)

    def output(self, i: int) -> np.ndarray:
        o = self.cod[i]
        out: np.ndarray = np.empty(o.shape, dtype=o.dtype.numpy)
        call("ct_plan_get_output", self._h, i, out.ctypes.data_as(_lib.vp), out.size)
        return out

    def forward(self, *inputs) -> tuple[np.ndarray, ...]:
        """Sets the inputs (one per dom object, if given), runs forward, returns every output."""
        if inputs:
            if len(inputs) != len(self.dom):
                raise ValueError(f"ctml.Plan.forward: {len(inputs)} inputs for a domain of "
                                 f"{len(self.dom)} objects ({', '.join(map(str, self.dom))})")
            for i, x in enumerate(inputs):
                self.set_input(i, x)
        call("ct_plan_forward", self._h)
        return tuple(self.output(i) for i in range(len(self.cod)))

    def reverse(self, *output_grads) -> tuple[np.ndarray | None, ...]:
        """After forward: sets the cotangent of each f32 output (default ones), runs the
        reverse pass and returns the input cotangents (None for i32 inputs)."""
        f32_out = [i for i, o in enumerate(self.cod) if o.dtype == DType.F32]
        if output_grads and len(output_grads) != len(f32_out):
            raise ValueError(f"ctml.Plan.reverse: {len(output_grads)} cotangents for "
                             f"{len(f32_out)} f32 outputs")
        for k, i in enumerate(f32_out):
            g = output_grads[k] if output_grads else np.ones(self.cod[i].shape, np.float32)
            a = _as_array(g, self.cod[i], f"the cotangent of output {i}")
            call("ct_plan_set_output_grad", self._h, i, a.ctypes.data_as(_lib.f32p), a.size)
        call("ct_plan_reverse", self._h)
        grads: list[np.ndarray | None] = []
        for i, o in enumerate(self.dom):
            if o.dtype != DType.F32:
                grads.append(None)
                continue
            g = np.empty(o.shape, np.float32)
            call("ct_plan_get_input_grad", self._h, i, g.ctypes.data_as(_lib.f32p), g.size)
            grads.append(g)
        return tuple(grads)

    def param_grad(self, param: Param) -> np.ndarray:
        """The gradient of param from the last reverse pass, shaped as param."""
        g = np.empty(param.shape, np.float32)
        call("ct_plan_get_param_grad", self._h, param._h, g.ctypes.data_as(_lib.f32p), g.size)
        return g

    def load_params(self) -> None:
        """Copies the host parameter values into the plan."""
        call("ct_plan_load_params", self._h)

    def store_params(self) -> None:
        """Copies the plan's parameter values out to the host parameters."""
        call("ct_plan_store_params", self._h)

    @property
    def rewrites(self) -> list[str]:
        """The rewrite rules that fired when compiled."""
        return [lib.ct_plan_rewrite(self._h, i).decode()
                for i in range(lib.ct_plan_rewrite_count(self._h))]

    def set_tracing(self, on: bool = True) -> None:
        """When on, every kernel launch appends an event to the plan's trace."""
        call("ct_plan_set_tracing", self._h, on)

    def take_trace(self) -> list[TraceEvent]:
        """The events traced so far (the plan's trace is cleared)."""
        t = _lib.Trace()
        call("ct_plan_take_trace", self._h, C.byref(t))
        try:
            return [TraceEvent(e.op.decode(), e.shape.decode(), e.flops, e.bytes, e.seconds)
                    for e in t.events[: t.count]]
        finally:
            lib.ct_trace_free(C.byref(t))

    def stats(self) -> PlanStats:
        s = _lib.PlanStats()
        call("ct_plan_stats_get", self._h, C.byref(s))
        return PlanStats(s.nodes, s.steps, s.values, s.buffers, s.planned_bytes, s.naive_bytes,
                         s.param_bytes)

