# SPDX-License-Identifier: MIT
"""The book's walkthrough in Python against the library's and `ctml demo --json`."""
import json
import subprocess

import numpy as np
import pytest

import ctml
from conftest import find_cli

KEYS = ("loss_love", "loss_before", "loss_after")


def _close(py: ctml.BookResult, ref: dict) -> None:
    np.testing.assert_allclose(py.p_next_given_I, ref["p_next_given_I"], rtol=0, atol=1e-6)
    for k in KEYS:
        assert abs(getattr(py, k) - ref[k]) <= 1e-6, (k, getattr(py, k), ref[k])
    assert py.composed_equals_direct is ref["composed_equals_direct"] is True


def test_walkthrough_equals_the_library_run():
    py, lib = ctml.walkthrough("cpu"), ctml.run_book("cpu")
    _close(py, json.loads(lib.to_json()))
    np.testing.assert_allclose(py.train_probs, lib.train_probs, rtol=0, atol=1e-6)
    assert py.rewrites == lib.rewrites
    assert py.loss_after < 0.05 < py.loss_before


def test_walkthrough_equals_ctml_demo_json():
    cli = find_cli()
    if cli is None:
        pytest.skip("no ctml tool found (set CTML_CLI, put ctml on PATH, or build it in build/)")
    out = subprocess.run([cli, "demo", "--json"], check=True, capture_output=True, text=True)
    ref = json.loads(out.stdout)
    py = ctml.walkthrough("cpu")
    _close(py, ref)
    # on the CPU the same float32 numbers, whatever digits the tool writes
    assert np.array_equal(np.float32(ref["p_next_given_I"]), py.p_next_given_I)
    for k in KEYS:
        assert np.float32(ref[k]) == np.float32(getattr(py, k)), k


def test_walkthrough_on_device_equals_cpu(device):
    _close(ctml.walkthrough(device), json.loads(ctml.walkthrough("cpu").to_json()))


def test_example_script_prints_the_demo_line():
    import sys
    from conftest import REPO
    script = REPO / "python" / "examples" / "book.py"
    if not script.is_file():
        pytest.skip(f"{script} is not here (tests run outside the repository)")
    out = subprocess.run([sys.executable, str(script), "--json"], check=True, capture_output=True,
                         text=True)
    assert out.stdout.strip() == ctml.run_book("cpu").to_json()
    assert json.loads(out.stdout)["loss_after"] < 0.05
