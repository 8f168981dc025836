# SPDX-License-Identifier: MIT
"""Shared fixtures: the OpenCL backend when present, the ctml tool when found."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import ctml

REPO = Path(__file__).resolve().parents[2]


DEVICES = ["opencl", "cuda"]


def backend_or_skip(name: str) -> ctml.Backend:
    """The backend called name, or pytest.skip with the library's reason."""
    info = next((b for b in ctml.backends() if b.name == name), None)
    if info is None:
        pytest.skip(f"this libctml knows no '{name}' backend")
    if not info.present:
        reason = info.reason.splitlines()[0] if info.reason else "?"
        pytest.skip(f"{name} backend absent: {reason}")
    return ctml.backend(name)


def opencl_or_skip() -> ctml.Backend:
    return backend_or_skip("opencl")


@pytest.fixture(params=DEVICES)
def device(request) -> ctml.Backend:
    """Each device backend in turn (skipped, with the reason, when absent)."""
    return backend_or_skip(request.param)


def find_cli() -> str | None:
    """The ctml tool: $CTML_CLI, else `ctml` on PATH, else a build folder's."""
    env = os.environ.get("CTML_CLI")
    if env:
        return env
    on_path = shutil.which("ctml")
    if on_path:
        return on_path
    for cand in sorted(REPO.glob("build*/ctml")) + sorted(REPO.glob("build*/*/ctml")):
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return None
