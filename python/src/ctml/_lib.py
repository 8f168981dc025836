# SPDX-License-Identifier: MIT
"""Loading libctml and declaring the C API for ctypes (private).

The library is the one installed inside this package (ctml/lib/libctml.so);
the environment variable CTML_LIBRARY names another one (a build tree's).
"""
from __future__ import annotations

import ctypes as C
import os
from pathlib import Path

from ._errors import check

CT_MAX_RANK = 4


def _find() -> str:
    env = os.environ.get("CTML_LIBRARY")
    if env:
        return env
    here = Path(__file__).resolve().parent / "lib"
    for pattern in ("libctml.so", "libctml.so.*", "libctml.dylib", "libctml*.dylib", "ctml.dll"):
        found = sorted(here.glob(pattern))
        if found:
            return str(found[0])
    raise ImportError(
        f"ctml: no libctml in {here} (reinstall with 'pip install ./python', "
        "or set CTML_LIBRARY to a libctml.so)")


lib = C.CDLL(_find())

i64 = C.c_int64
i64p = C.POINTER(C.c_int64)
f32p = C.POINTER(C.c_float)
i32p = C.POINTER(C.c_int32)
vp = C.c_void_p
st = C.c_int  # ct_status


class Object(C.Structure):
    _fields_ = [("dtype", C.c_int), ("role", C.c_int), ("rank", C.c_int),
                ("dims", C.c_int64 * CT_MAX_RANK)]


class BackendInfo(C.Structure):
    _fields_ = [("name", C.c_char_p), ("built", C.c_bool), ("present", C.c_bool),
                ("simulated", C.c_bool), ("device", C.c_char * 128), ("reason", C.c_char * 1024)]


class DeviceInfo(C.Structure):
    _fields_ = [("name", C.c_char * 192), ("usable", C.c_bool), ("selected", C.c_bool),
                ("gpu", C.c_bool), ("reason", C.c_char * 192), ("memory_bytes", C.c_int64)]


class Optimizer(C.Structure):
    _fields_ = [("kind", C.c_int), ("lr", C.c_float), ("beta1", C.c_float), ("beta2", C.c_float),
                ("eps", C.c_float), ("weight_decay", C.c_float), ("clip_norm", C.c_float),
                ("warmup_steps", C.c_long), ("total_steps", C.c_long), ("min_lr", C.c_float)]


class GptConfig(C.Structure):
    _fields_ = [("vocab", i64), ("block", i64), ("layers", i64), ("heads", i64), ("width", i64)]


class AttentionParams(C.Structure):
    _fields_ = [(n, vp) for n in ("wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo")]


class BookResult(C.Structure):
    _fields_ = [("p_next_given_I", C.c_float * 5), ("loss_love", C.c_float),
                ("loss_before", C.c_float), ("loss_after", C.c_float),
                ("composed_equals_direct", C.c_bool), ("train_probs", (C.c_float * 5) * 7),
                ("rewrites", C.c_char * 512)]


class DecodeStats(C.Structure):
    _fields_ = [("prefill_tokens", i64), ("decode_tokens", i64), ("restarts", i64),
                ("prefill_seconds", C.c_double), ("decode_seconds", C.c_double)]


class PlanStats(C.Structure):
    _fields_ = [("nodes", C.c_int), ("steps", C.c_int), ("values", C.c_int), ("buffers", C.c_int),
                ("planned_bytes", C.c_size_t), ("naive_bytes", C.c_size_t),
                ("param_bytes", C.c_size_t)]


class StTensor(C.Structure):
    _fields_ = [("name", C.c_char_p), ("rank", C.c_int), ("dims", C.c_int64 * CT_MAX_RANK),
                ("data", f32p)]


class StMeta(C.Structure):
    _fields_ = [("key", C.c_char_p), ("value", C.c_char_p)]


class TraceEvent(C.Structure):
    _fields_ = [("op", C.c_char * 40), ("shape", C.c_char * 96), ("flops", C.c_double),
                ("bytes", C.c_double), ("seconds", C.c_double)]


class Trace(C.Structure):
    _fields_ = [("events", C.POINTER(TraceEvent)), ("count", C.c_size_t),
                ("capacity", C.c_size_t)]


class CheckEntry(C.Structure):
    _fields_ = [("label", C.c_char * 96), ("node", C.c_int), ("dir", C.c_int),
                ("elements", i64), ("max_abs", C.c_double), ("max_ratio", C.c_double),
                ("nonfinite", C.c_bool), ("passed", C.c_bool), ("detail", C.c_char * 256)]


class CheckReport(C.Structure):
    _fields_ = [("count", C.c_int), ("entries", C.POINTER(CheckEntry)),
                ("first_divergent", C.c_int)]


class Vocab(C.Structure):
    _fields_ = [("size", C.c_int), ("byte_of", C.c_uint8 * 256), ("id_of", C.c_int16 * 256)]


ObjP = C.POINTER(Object)
vpp = C.POINTER(vp)


def _decl(name: str, restype, *argtypes) -> None:
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)


# status.h, version.h, generators.h
_decl("ct_status_name", C.c_char_p, st)
_decl("ct_last_error", C.c_char_p)
_decl("ct_version", C.c_char_p)
_decl("ct_op_name", C.c_char_p, C.c_int)
_decl("ct_opt_name", C.c_char_p, C.c_int)
# object.h
_decl("ct_object_make", st, ObjP, C.c_int, C.c_int, C.c_int, i64p)
_decl("ct_object_str", C.c_char_p, ObjP, C.c_char_p, C.c_size_t)
_decl("ct_role_name", C.c_char_p, C.c_int)
_decl("ct_dtype_name", C.c_char_p, C.c_int)
# param.h
_decl("ct_param_new", st, vpp, C.c_char_p, C.c_int, i64p)
_decl("ct_param_new_cache", st, vpp, C.c_char_p, i64, i64, i64, i64)
_decl("ct_param_free", None, vp)
_decl("ct_param_object", ObjP, vp)
_decl("ct_param_name", C.c_char_p, vp)
_decl("ct_param_numel", i64, vp)
_decl("ct_param_set", st, vp, f32p, i64)
_decl("ct_param_get", st, vp, f32p, i64)
_decl("ct_param_init_book", st, vp, C.c_int)
_decl("ct_param_fill", st, vp, C.c_float)
_decl("ct_param_init_normal", st, vp, C.c_float, C.c_uint64)
# morphism.h
_decl("ct_identity", st, vpp, ObjP, C.c_int)
_decl("ct_compose", st, vpp, vp, vp)
_decl("ct_then", st, vpp, vp, vp)
_decl("ct_tensor", st, vpp, vp, vp)
_decl("ct_embedding", st, vpp, ObjP, vp)
_decl("ct_linear", st, vpp, ObjP, C.c_int, vp, vp)
_decl("ct_softmax", st, vpp, ObjP)
_decl("ct_cross_entropy", st, vpp, ObjP, ObjP)
_decl("ct_softmax_cross_entropy", st, vpp, ObjP, ObjP)
_decl("ct_copy", st, vpp, ObjP)
_decl("ct_add", st, vpp, ObjP)
_decl("ct_discard", st, vpp, ObjP)
_decl("ct_pos_embedding", st, vpp, ObjP, vp)
_decl("ct_layernorm", st, vpp, ObjP, vp, vp)
_decl("ct_add_layernorm", st, vpp, ObjP, vp, vp)
_decl("ct_gelu", st, vpp, ObjP)
_decl("ct_linear_gelu", st, vpp, ObjP, C.c_int, vp, vp)
_decl("ct_qkv", st, vpp, ObjP, C.c_int, vp, vp, vp, vp, vp, vp)
_decl("ct_head_split", st, vpp, ObjP, i64)
_decl("ct_head_merge", st, vpp, ObjP)
_decl("ct_attn_scores", st, vpp, ObjP, ObjP)
_decl("ct_causal_softmax", st, vpp, ObjP)
_decl("ct_attn_apply", st, vpp, ObjP, ObjP)
_decl("ct_causal_attention", st, vpp, ObjP, i64)
_decl("ct_kv_attention", st, vpp, ObjP, ObjP, vp, vp)
_decl("ct_morphism_free", None, vp)
_decl("ct_morphism_dom_count", C.c_int, vp)
_decl("ct_morphism_cod_count", C.c_int, vp)
_decl("ct_morphism_dom", ObjP, vp, C.c_int)
_decl("ct_morphism_cod", ObjP, vp, C.c_int)
_decl("ct_morphism_node_count", C.c_int, vp)
_decl("ct_morphism_equal", C.c_bool, vp, vp)
_decl("ct_morphism_describe", st, vp, C.c_char_p, C.c_size_t)
# backend.h
_decl("ct_backend_get", st, C.c_char_p, vpp)
_decl("ct_backend_name", C.c_char_p, vp)
_decl("ct_backend_count", C.c_int)
_decl("ct_backend_index", st, C.c_char_p, C.POINTER(C.c_int))
_decl("ct_backend_info_get", st, C.c_int, C.POINTER(BackendInfo))
_decl("ct_backend_devices", st, C.c_int, C.POINTER(DeviceInfo), C.c_int, C.POINTER(C.c_int))
_decl("ct_backend_set_option", st, C.c_char_p, C.c_char_p, C.c_char_p)
# plan.h
_decl("ct_compile", st, vpp, vp, vp, C.c_int)
_decl("ct_plan_free", None, vp)
_decl("ct_plan_set_input", st, vp, C.c_int, vp, i64)
_decl("ct_plan_get_output", st, vp, C.c_int, vp, i64)
_decl("ct_plan_forward", st, vp)
_decl("ct_plan_set_output_grad", st, vp, C.c_int, f32p, i64)
_decl("ct_plan_reverse", st, vp)
_decl("ct_plan_get_input_grad", st, vp, C.c_int, f32p, i64)
_decl("ct_plan_get_param_grad", st, vp, vp, f32p, i64)
_decl("ct_plan_load_params", st, vp)
_decl("ct_plan_store_params", st, vp)
_decl("ct_plan_rewrite_count", C.c_int, vp)
_decl("ct_plan_rewrite", C.c_char_p, vp, C.c_int)
_decl("ct_plan_stats_get", st, vp, C.POINTER(PlanStats))
# train.h
OptP = C.POINTER(Optimizer)
_decl("ct_optimizer_sgd", st, OptP, C.c_float)
_decl("ct_optimizer_adamw", st, OptP, C.c_float)
_decl("ct_optimizer_validate", st, OptP)
_decl("ct_optimizer_lr_at", C.c_float, OptP, C.c_long)
_decl("ct_trainer_new_flags", st, vpp, vp, vp, OptP, C.c_int)
_decl("ct_trainer_free", None, vp)
_decl("ct_trainer_set_input", st, vp, C.c_int, vp, i64)
_decl("ct_trainer_step", st, vp, C.c_int)
_decl("ct_trainer_set_graph", st, vp, C.c_bool)
_decl("ct_trainer_set_optimizer", st, vp, OptP)
_decl("ct_trainer_last_lr", st, vp, f32p)
_decl("ct_trainer_last_grad_norm", st, vp, f32p)
_decl("ct_trainer_last_loss", st, vp, f32p)
_decl("ct_trainer_eval", st, vp, f32p)
_decl("ct_trainer_store_params", st, vp)
_decl("ct_trainer_steps", C.c_long, vp)
_decl("ct_trainer_set_steps", st, vp, C.c_long)
_decl("ct_trainer_state_size", st, vp, vp, i64p)
_decl("ct_trainer_get_state", st, vp, vp, f32p, i64)
_decl("ct_trainer_set_state", st, vp, vp, f32p, i64)
_decl("ct_trainer_plan", vp, vp)
# gpt.h
_decl("ct_self_attention", st, vpp, ObjP, i64, C.POINTER(AttentionParams))
_decl("ct_single_head_attention", st, vpp, ObjP, C.POINTER(AttentionParams))
_decl("ct_gpt_new", st, vpp, C.POINTER(GptConfig), C.c_uint64)
_decl("ct_gpt_free", None, vp)
_decl("ct_gpt_param_count", C.c_int, vp)
_decl("ct_gpt_param", vp, vp, C.c_int)
_decl("ct_gpt_numel", i64, vp)
_decl("ct_gpt_logits", st, vpp, vp, i64, i64)
_decl("ct_gpt_loss", st, vpp, vp, i64, i64)
# decode.h
_decl("ct_decoder_new", st, vpp, vp, vp, i64, C.c_int)
_decl("ct_decoder_free", None, vp)
_decl("ct_decoder_append", st, vp, i32p, i64, f32p)
_decl("ct_decoder_reset", st, vp)
_decl("ct_decoder_length", i64, vp)
_decl("ct_decoder_stats", st, vp, C.POINTER(DecodeStats))
# safetensors.h
_decl("ct_safetensors_write", st, C.c_char_p, C.POINTER(StTensor), C.c_int,
      C.POINTER(StMeta), C.c_int)
_decl("ct_safetensors_read", st, vpp, C.c_char_p)
_decl("ct_safetensors_free", None, vp)
_decl("ct_safetensors_count", C.c_int, vp)
_decl("ct_safetensors_name", C.c_char_p, vp, C.c_int)
_decl("ct_safetensors_meta", C.c_char_p, vp, C.c_char_p)
_decl("ct_safetensors_get", st, vp, C.c_char_p, C.POINTER(C.c_int), i64p, C.POINTER(f32p))
_decl("ct_gpt_decode", st, vpp, vp, vpp, i64, i64)
# trace.h, check.h
_decl("ct_plan_set_tracing", st, vp, C.c_bool)
_decl("ct_plan_take_trace", st, vp, C.POINTER(Trace))
_decl("ct_trace_free", None, C.POINTER(Trace))
_decl("ct_check", st, vp, vp, vp, C.POINTER(vp), C.c_uint64, C.POINTER(CheckReport))
_decl("ct_check_report_free", None, C.POINTER(CheckReport))
# text.h, data.h
u8p = C.POINTER(C.c_uint8)
_decl("ct_vocab_build", st, C.POINTER(Vocab), u8p, i64)
_decl("ct_vocab_from_bytes", st, C.POINTER(Vocab), u8p, C.c_int)
_decl("ct_vocab_encode", st, C.POINTER(Vocab), u8p, i64, i32p)
_decl("ct_vocab_decode", st, C.POINTER(Vocab), i32p, i64, u8p)
_decl("ct_batch_draw", st, C.POINTER(C.c_uint64), i32p, i64, i64, i64, i32p, i32p)
_decl("ct_window_pairs", st, i32p, i64, C.c_int32, i32p, i32p, i64, i64p)
# book.h
_decl("ct_book_run", st, vp, C.POINTER(BookResult), vp)


def call(fn: str, *args) -> None:
    """Calls lib.fn(*args) and raises the ctml.Error of a failing status."""
    check(getattr(lib, fn)(*args), lib)


def new(fn: str, *args) -> int:
    """Calls a constructor lib.fn(&out, *args) and returns the handle."""
    out = vp()
    check(getattr(lib, fn)(C.byref(out), *args), lib)
    if not out.value:
        raise RuntimeError(f"ctml: {fn} returned CT_OK and no handle")
    return out.value
