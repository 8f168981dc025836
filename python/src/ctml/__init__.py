# SPDX-License-Identifier: MIT
"""ctml: typed morphisms that compose, trained on interchangeable backends.

Python bindings of libctml (ctypes over the public C API). See docs/python.md.

    >>> import ctml
    >>> E = ctml.Param("E", (5, 4)).init_book(1)
    >>> f = ctml.embedding(ctml.Object.tokens(1), E)
    >>> f.cod
    (HIDDEN f32[1,4],)
"""
from ._errors import (BackendAbsentError, DeviceError, Error, FileError, InternalError,
                      InvalidArgumentError, NonFiniteError, OutOfMemoryError, RangeError,
                      ShapeError, StateError, UnsupportedError)
from .book import BookResult, run_book, walkthrough
from .core import (Backend, BackendInfo, CheckEntry, CheckReport, DeviceInfo, DType, Morphism,
                   Object, Param, Plan, PlanStats, Role, TraceEvent, add, add_layernorm,
                   attn_apply, attn_scores, backend, backends, causal_attention, causal_softmax,
                   check, compose, copy, cross_entropy, discard, embedding, gelu, head_merge,
                   head_split, identity, kv_attention, layernorm, linear, linear_gelu, pair,
                   pos_embedding, qkv, self_attention, set_backend_option, single_head_attention,
                   softmax, softmax_cross_entropy, tensor, then, version)
from .gpt import GPT, Decoder, DecodeStats, GPTConfig
from .safetensors import SafetensorsFile, load_safetensors, save_safetensors
from .text import BatchSampler, Vocab, window_pairs
from .train import Optimizer, Trainer

__version__ = "0.1.0"

__all__ = [
    "Error", "InvalidArgumentError", "ShapeError", "RangeError", "NonFiniteError",
    "OutOfMemoryError", "BackendAbsentError", "DeviceError", "UnsupportedError", "FileError",
    "StateError", "InternalError",
    "DType", "Role", "Object", "Param", "Morphism", "Plan", "PlanStats", "TraceEvent",
    "CheckEntry", "CheckReport", "check", "Vocab", "BatchSampler", "window_pairs",
    "Backend", "BackendInfo", "DeviceInfo", "backend", "backends", "set_backend_option",
    "version", "identity", "compose", "then", "tensor", "pair", "embedding", "linear", "softmax",
    "cross_entropy", "softmax_cross_entropy", "copy", "add", "discard", "pos_embedding",
    "layernorm", "add_layernorm", "gelu", "linear_gelu", "qkv", "head_split", "head_merge",
    "attn_scores", "causal_softmax", "attn_apply", "causal_attention", "kv_attention",
    "self_attention", "single_head_attention",
    "Optimizer", "Trainer", "GPTConfig", "GPT", "Decoder", "DecodeStats",
    "SafetensorsFile", "save_safetensors", "load_safetensors",
    "BookResult", "walkthrough", "run_book",
]
