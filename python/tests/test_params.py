# SPDX-License-Identifier: MIT
"""Parameters and gradients as numpy arrays."""
import numpy as np
import pytest

import ctml
from ctml import Object, Role


def test_param_round_trip_keeps_shape_and_values():
    rng = np.random.default_rng(0)
    for shape in [(3,), (4, 5), (2, 3, 4)]:
        p = ctml.Param("p", shape)
        assert p.shape == shape and p.numel == int(np.prod(shape))
        np.testing.assert_array_equal(p.value, np.zeros(shape, np.float32))
        v = rng.standard_normal(shape).astype(np.float32)
        p.value = v
        out = p.value
        assert out.shape == shape and out.dtype == np.float32
        np.testing.assert_array_equal(out, v)
        out[...] = 0  # a copy: the parameter is not changed
        np.testing.assert_array_equal(p.value, v)
    with pytest.raises(ValueError):
        ctml.Param("q", (2, 2)).set(np.zeros(3))


def test_init_book_matches_its_formula():
    p = ctml.Param("E", (5, 4)).init_book(1)
    r, c = np.meshgrid(np.arange(5), np.arange(4), indexing="ij")
    want = ((((r * 4 + c) * 37 + 101) % 1000) / 1000 - 0.5) * 0.2
    np.testing.assert_allclose(p.value, want.astype(np.float32), rtol=0, atol=1e-7)


def _loss(E, W, b, n=6):
    tok = Object.tokens(n)
    logits = ctml.embedding(tok, E) >> ctml.linear(Object.matrix(Role.HIDDEN, n, 4), W, b,
                                                    out_role=Role.LOGITS)
    return (logits & ctml.identity(tok)) >> ctml.softmax_cross_entropy(
        Object.matrix(Role.LOGITS, n, 5), tok)


def test_gradients_match_finite_differences_and_numpy():
    E = ctml.Param("E", (5, 4)).init_normal(0.5, 1)
    W = ctml.Param("W", (4, 5)).init_normal(0.5, 2)
    b = ctml.Param("b", (5,)).init_normal(0.5, 3)
    x = np.array([1, 2, 3, 4, 0, 2], np.int32)
    y = np.array([2, 3, 4, 1, 1, 0], np.int32)
    m = _loss(E, W, b)
    plan = m.compile("cpu", "reverse")
    (loss,) = plan.forward(x, y)
    assert plan.reverse() == (None, None)  # token inputs have no cotangent
    gW, gE, gb = plan.param_grad(W), plan.param_grad(E), plan.param_grad(b)
    assert gW.shape == (4, 5) and gE.shape == (5, 4) and gb.shape == (5,)

    # numpy reference of the same loss and its gradient
    h = E.value[x].astype(np.float64)
    z = h @ W.value + b.value
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    want = -np.log(p[np.arange(6), y]).mean()
    assert abs(float(loss) - want) < 1e-5
    dz = p.copy()
    dz[np.arange(6), y] -= 1
    dz /= 6
    np.testing.assert_allclose(gW, h.T @ dz, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gb, dz.sum(0), rtol=1e-4, atol=1e-6)

    # central finite differences through the library's forward pass
    def f(Wv):
        W.value = Wv
        return float(m(x, y))
    W0 = W.value
    eps = 1e-2
    for (i, j) in [(0, 0), (1, 3), (3, 4)]:
        d = np.zeros_like(W0)
        d[i, j] = eps
        fd = (f(W0 + d) - f(W0 - d)) / (2 * eps)
        assert abs(fd - gW[i, j]) < 2e-3, (i, j, fd, gW[i, j])
    W.value = W0


def test_input_cotangents():
    a = Object.matrix(Role.HIDDEN, 2, 3)
    plan = (ctml.copy(a) >> ctml.add(a)).compile("cpu", "reverse")
    x = np.ones((2, 3), np.float32)
    (y,) = plan.forward(x)
    (gx,) = plan.reverse(np.full((2, 3), 0.5, np.float32))
    np.testing.assert_array_equal(gx, np.ones((2, 3)))
