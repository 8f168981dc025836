# SPDX-License-Identifier: MIT
"""The ctypes structures and enums against the C headers: sizes, field offsets and
values, measured by a C compiler (skipped without one or without the repository's headers)."""
import ctypes as C
import shutil
import subprocess

import pytest

from ctml import DType, Role, _lib
from ctml._errors import _BY_CODE
from conftest import REPO

# ctypes structure -> (C type, its fields: C name where it differs from ctypes')
STRUCTS = {
    _lib.Object: ("ct_object", {}),
    _lib.BackendInfo: ("ct_backend_info", {}),
    _lib.DeviceInfo: ("ct_device_info", {}),
    _lib.Optimizer: ("ct_optimizer", {}),
    _lib.GptConfig: ("ct_gpt_config", {}),
    _lib.AttentionParams: ("ct_attention_params", {}),
    _lib.BookResult: ("ct_book_result", {}),
    _lib.DecodeStats: ("ct_decode_stats", {}),
    _lib.PlanStats: ("ct_plan_stats", {}),
    _lib.StTensor: ("ct_st_tensor", {}),
    _lib.StMeta: ("ct_st_meta", {}),
    _lib.TraceEvent: ("ct_trace_event", {}),
    _lib.Trace: ("ct_trace", {}),
    _lib.CheckEntry: ("ct_check_entry", {"passed": "pass"}),
    _lib.CheckReport: ("ct_check_report", {}),
    _lib.Vocab: ("ct_vocab", {}),
}
STATUS = {"InvalidArgumentError": "CT_ERR_INVALID_ARG", "ShapeError": "CT_ERR_SHAPE",
          "RangeError": "CT_ERR_RANGE", "NonFiniteError": "CT_ERR_NONFINITE",
          "OutOfMemoryError": "CT_ERR_NOMEM", "BackendAbsentError": "CT_ERR_BACKEND_ABSENT",
          "DeviceError": "CT_ERR_DEVICE", "UnsupportedError": "CT_ERR_UNSUPPORTED",
          "FileError": "CT_ERR_IO", "StateError": "CT_ERR_STATE",
          "InternalError": "CT_ERR_INTERNAL"}
HEADERS = ["object", "backend", "train", "gpt", "book", "decode", "plan", "safetensors",
           "trace", "check", "text"]


def test_structures_match_the_headers(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    include = REPO / "include"
    if cc is None or not (include / "ctml" / "object.h").is_file():
        pytest.skip("no C compiler or no include/ctml (tests run outside the repository)")
    lines = ["#include <stddef.h>", "#include <stdio.h>"]
    lines += [f'#include "ctml/{h}.h"' for h in HEADERS]
    lines.append("int main(void) {")
    want = []
    for cls, (ctype, rename) in STRUCTS.items():
        lines.append(f'  printf("%zu\\n", sizeof({ctype}));')
        want.append((f"sizeof({ctype})", C.sizeof(cls)))
        for name, *_ in cls._fields_:
            cname = rename.get(name, name)
            lines.append(f'  printf("%zu\\n", offsetof({ctype}, {cname}));')
            want.append((f"{ctype}.{cname}", getattr(cls, name).offset))
    for role in Role:
        lines.append(f'  printf("%d\\n", (int)CT_ROLE_{role.name});')
        want.append((f"CT_ROLE_{role.name}", int(role)))
    lines.append('  printf("%d\\n", (int)CT_ROLE_COUNT);')
    want.append(("CT_ROLE_COUNT", len(Role)))
    for dt in DType:
        lines.append(f'  printf("%d\\n", (int)CT_{dt.name});')
        want.append((f"CT_{dt.name}", int(dt)))
    for code, cls in enumerate(_BY_CODE[1:], start=1):
        lines.append(f'  printf("%d\\n", (int){STATUS[cls.__name__]});')
        want.append((STATUS[cls.__name__], code))
    lines += ["  return 0;", "}"]
    src = tmp_path / "abi.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "abi"
    subprocess.run([cc, "-std=c11", f"-I{include}", str(src), "-o", str(exe)], check=True)
    got = [int(v) for v in subprocess.run([str(exe)], check=True, capture_output=True,
                                          text=True).stdout.split()]
    assert len(got) == len(want)
    bad = [(what, py, c) for (what, py), c in zip(want, got) if py != c]
    assert not bad, f"ctypes differs from C (what, ctypes, C): {bad}"
