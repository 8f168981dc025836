# SPDX-License-Identifier: MIT
"""Backends: listing, choosing by name, devices; the same results on OpenCL."""
import numpy as np

import ctml
from ctml import Object, Role


def test_backends_listed_and_cpu_present():
    infos = {b.name: b for b in ctml.backends()}
    assert {"cpu", "cuda", "opencl"} <= set(infos)
    assert infos["cpu"].present and infos["cpu"].built
    for b in infos.values():
        assert b.present or b.reason
    cpu = ctml.backend("cpu")
    assert cpu.name == "cpu" and cpu.device == infos["cpu"].device
    assert ctml.backend("auto").name in infos


def test_device_forward_and_reverse_agree_with_cpu(device):
    W = ctml.Param("W", (4, 5)).init_normal(0.5, 2)
    b = ctml.Param("b", (5,)).init_normal(0.5, 3)
    x_obj = Object.matrix(Role.HIDDEN, 3, 4)
    f = ctml.linear(x_obj, W, b) >> ctml.gelu(Object.matrix(Role.HIDDEN, 3, 5))
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    out = []
    for be in ("cpu", device):
        p = f.compile(be, "reverse")
        (y,) = p.forward(x)
        (gx,) = p.reverse()
        out.append((y, gx, p.param_grad(W)))
    for a, c in zip(*out):
        np.testing.assert_allclose(a, c, atol=1e-5)
    assert any(d.selected for d in device.info().devices)
