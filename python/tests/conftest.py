# SPDX-License-Identifier: MIT
"""Shared fixtures: the OpenCL backend when present, the ctml tool when found."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import ctml

REPO = Path(__file__).resolve().parents[2]


def opencl_or_skip() -> ctml.Backend:
    """The OpenCL backend, or pytest.skip with the library's reason."""
    info = next((b for b in ctml.backends() if b.name == "opencl"), None)
    if info is None:
        pytest.skip("this libctml knows no 'opencl' backend")
    if not info.present:
        pytest.skip(f"OpenCL backend absent: {info.reason.splitlines()[0] if info.reason else '?'}")
    return ctml.backend("opencl")


@pytest.fixture
def opencl() -> ctml.Backend:
    return opencl_or_skip()


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
